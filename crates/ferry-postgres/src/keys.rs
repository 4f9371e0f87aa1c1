//! A read-only query's first column as text: the keys of a blob manifest
//! (`Source::query_keys`). The simple protocol returns every value as text, whatever its type.

use ferry_core::Result;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::connect;

/// Every row's first column (`None` for NULL), on `client`'s read-only session.
pub async fn first_column(client: &Client, sql: &str) -> Result<Vec<Option<String>>> {
    let messages = client
        .simple_query(sql)
        .await
        .map_err(|e| connect::error(&e))?;
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
            _ => None,
        })
        .collect())
}

/// The same inside the source's snapshot transaction, under a savepoint so that a failing
/// query does not end the transaction every later read of the snapshot needs.
pub async fn first_column_in_snapshot(client: &Client, sql: &str) -> Result<Vec<Option<String>>> {
    connect::batch(client, "SAVEPOINT ferry_query_keys").await?;
    let keys = first_column(client, sql).await;
    let end = if keys.is_ok() {
        "RELEASE SAVEPOINT ferry_query_keys"
    } else {
        "ROLLBACK TO SAVEPOINT ferry_query_keys"
    };
    connect::batch(client, end).await?;
    keys
}
