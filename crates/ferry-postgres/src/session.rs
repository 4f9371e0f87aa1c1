//! A read-write [`SqlSession`] on PostgreSQL, for a store kept in the database a server already
//! runs (the job server's): one plain connection opened by `connect::open` (TLS and `.pgpass` as
//! for every ferry connection, no copy-only settings), parameters typed from their values.

use async_trait::async_trait;
use ferry_core::locator::Backend;
use ferry_core::session::{SqlError, SqlSession};
use ferry_core::value::Value;
use ferry_core::{Error, Locator, Result};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row};

use crate::connect;
use crate::copy_binary::Decoded;

pub struct PostgresSession {
    client: Client,
}

impl PostgresSession {
    /// # Errors
    /// An input error saying what is wrong (unreachable, wrong password, no such database).
    pub async fn open(locator: &Locator) -> Result<Self> {
        let endpoint = connect::endpoint(locator)?;
        Ok(Self {
            client: connect::open(&endpoint).await?,
        })
    }
}

fn sql_error(e: &tokio_postgres::Error) -> SqlError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        SqlError::UniqueViolation(connect::error(e).to_string())
    } else {
        SqlError::Failed(connect::error(e))
    }
}

/// A parameter with the type its value names, so that PostgreSQL need not infer one (it cannot
/// in `$4 << …`). NULL is sent as text.
fn param(v: &Value) -> Result<(Box<dyn ToSql + Sync + Send>, Type), SqlError> {
    Ok(match v {
        Value::Null => (Box::new(None::<String>), Type::TEXT),
        Value::Bool(b) => (Box::new(*b), Type::BOOL),
        Value::Int(i) => (Box::new(*i), Type::INT8),
        Value::Float(f) => (Box::new(*f), Type::FLOAT8),
        Value::Text(s) => (Box::new(s.clone()), Type::TEXT),
        Value::Bytes(b) => (Box::new(b.clone()), Type::BYTEA),
        other => {
            return Err(SqlError::Failed(Error::run(format!(
                "a session parameter cannot be {other:?}: pass text, a number, a boolean or bytes"
            ))));
        }
    })
}

fn cell(row: &Row, i: usize) -> Result<Value, SqlError> {
    let ty = row.columns()[i].type_();
    if !matches!(
        *ty,
        Type::BOOL
            | Type::INT2
            | Type::INT4
            | Type::INT8
            | Type::FLOAT8
            | Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
            | Type::BYTEA
    ) {
        return Err(SqlError::Failed(Error::run(format!(
            "a session query returned a {ty} column: cast it to text, bigint, boolean or bytea"
        ))));
    }
    // The same decoding as the binary COPY reader's (`Decoded`), limited to the types above.
    row.try_get::<_, Decoded>(i)
        .map(|d| d.0)
        .map_err(|e| SqlError::Failed(Error::run(format!("PostgreSQL: {e}"))))
}

impl PostgresSession {
    async fn run(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqlError> {
        let owned = params.iter().map(param).collect::<Result<Vec<_>, _>>()?;
        let typed: Vec<(&(dyn ToSql + Sync), Type)> = owned
            .iter()
            .map(|(v, t)| (v.as_ref() as &(dyn ToSql + Sync), t.clone()))
            .collect();
        self.client
            .query_typed(sql, &typed)
            .await
            .map_err(|e| sql_error(&e))
    }
}

#[async_trait]
impl SqlSession for PostgresSession {
    fn backend(&self) -> Backend {
        crate::locator::BACKEND
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    async fn batch(&self, sql: &str) -> Result<(), SqlError> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| sql_error(&e))
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, SqlError> {
        // `query_typed` gives no count of changed rows: prepare with the values' types, then
        // execute.
        let owned = params.iter().map(param).collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&(dyn ToSql + Sync)> = owned
            .iter()
            .map(|(v, _)| v.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let types: Vec<Type> = owned.iter().map(|(_, t)| t.clone()).collect();
        let statement = self
            .client
            .prepare_typed(sql, &types)
            .await
            .map_err(|e| sql_error(&e))?;
        self.client
            .execute(&statement, &refs)
            .await
            .map_err(|e| sql_error(&e))
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        let rows = self.run(sql, params).await?;
        rows.iter()
            .map(|row| (0..row.len()).map(|i| cell(row, i)).collect())
            .collect()
    }
}
