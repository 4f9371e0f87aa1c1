//! A read-only query's first column as text: the keys of a blob manifest
//! (`Source::query_keys`). The text protocol returns every value as text, whatever its type.

use ferry_core::Result;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

use crate::connect;

/// Every row's first column (`None` for NULL), on a connection of the source's snapshot (a
/// READ ONLY transaction). The session is made read-only too: a statement that commits the
/// transaction implicitly (DDL) still cannot write.
pub async fn first_column(conn: &mut Conn, sql: &str) -> Result<Vec<Option<String>>> {
    let rows: Vec<mysql_async::Row> = async {
        conn.query_drop("SET SESSION TRANSACTION READ ONLY").await?;
        conn.query(sql).await
    }
    .await
    .map_err(|e| connect::error(&e))?;
    Ok(rows
        .iter()
        .map(|row| match row.as_ref(0) {
            Some(Value::NULL) | None => None,
            Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Some(other) => Some(other.as_sql(true).trim_matches('\'').to_string()),
        })
        .collect())
}
