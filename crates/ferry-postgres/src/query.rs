//! SQL a caller writes itself, on one connection: the one PostgreSQL `Session`, used by profiles
//! (parameters sent as text, cast where used: `$1::text::timestamptz`; its `UpsertWriter` writes
//! batches with `INSERT … ON CONFLICT DO UPDATE`) and, as a [`SqlSession`], by the job store
//! (parameters typed from their values).

use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::connector::{TableWriter, WriteError};
use ferry_core::locator::Backend;
use ferry_core::session::{SqlError, SqlSession};
use ferry_core::value::{Batch, Value};
use ferry_core::{Error, Locator, Result};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row};

use crate::connect::{self, error};
use crate::copy_binary::Decoded;
use crate::dialect::quote;

/// One connection for the caller's own SQL. A read-only session cannot write even by mistake.
/// The job store opens it with [`Session::open_store`] and uses it as a [`SqlSession`].
pub struct Session {
    client: Arc<Client>,
}

fn params(values: &[Option<String>]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Session {
    /// Opens a connection to the locator's database (and schema).
    ///
    /// # Errors
    /// An input error saying what is wrong (unreachable, wrong password, no such database).
    pub async fn open(locator: &Locator, read_only: bool) -> Result<Self> {
        let endpoint = connect::endpoint(locator)?;
        let client = connect::connect(&endpoint, read_only).await?;
        // No JIT: callers run many small queries, and a costly-looking plan (a correlated
        // subquery that rarely runs) made PostgreSQL spend ~0.4 s compiling each one.
        crate::connect::batch(&client, "SET jit = off").await?;
        Ok(Self {
            client: Arc::new(client),
        })
    }

    /// Opens a plain read-write connection for a store kept in the database (the job server's):
    /// TLS and `.pgpass` as for every ferry connection, durable commits, no copy-only settings.
    ///
    /// # Errors
    /// An input error saying what is wrong (unreachable, wrong password, no such database).
    pub async fn open_store(locator: &Locator) -> Result<Self> {
        let endpoint = connect::endpoint(locator)?;
        Ok(Self {
            client: Arc::new(connect::open(&endpoint).await?),
        })
    }

    /// Runs statements without parameters (DDL, `BEGIN … READ ONLY`).
    ///
    /// # Errors
    /// PostgreSQL's error, in one line.
    pub async fn batch_execute(&self, sql: &str) -> Result<()> {
        self.client.batch_execute(sql).await.map_err(|e| error(&e))
    }

    /// Runs one statement; returns the rows it changed.
    ///
    /// # Errors
    /// PostgreSQL's error, in one line.
    pub async fn execute(&self, sql: &str, values: &[Option<String>]) -> Result<u64> {
        self.client
            .execute(sql, &params(values))
            .await
            .map_err(|e| error(&e))
    }

    /// Runs one query; each row as portable values, in the query's column order.
    ///
    /// # Errors
    /// PostgreSQL's error, in one line; a value that cannot be decoded.
    pub async fn query(&self, sql: &str, values: &[Option<String>]) -> Result<Vec<Vec<Value>>> {
        let rows = self
            .client
            .query(sql, &params(values))
            .await
            .map_err(|e| error(&e))?;
        rows.iter()
            .map(|r| (0..r.len()).map(|i| decode(r, i)).collect())
            .collect()
    }

    /// The names of the columns a query returns, without running it.
    ///
    /// # Errors
    /// PostgreSQL's error when the query does not parse or names what does not exist.
    pub async fn column_names(&self, sql: &str) -> Result<Vec<String>> {
        let stmt = self.client.prepare(sql).await.map_err(|e| error(&e))?;
        Ok(stmt
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect())
    }

    /// A writer of `columns` (a batch's values in this order) into `table`, inserting new rows
    /// and updating those whose `key` exists: see [`UpsertWriter`].
    pub fn upsert_writer(&self, table: &str, columns: &[String], key: &[String]) -> UpsertWriter {
        UpsertWriter::new(self.client.clone(), table, columns, key)
    }
}

/// A column of a row as a portable value (the binary COPY reader's decoding, [`Decoded`]).
fn decode(row: &Row, i: usize) -> Result<Value> {
    row.try_get::<_, Decoded>(i).map(|d| d.0).map_err(|e| {
        Error::run(format!(
            "PostgreSQL: cannot decode column \"{}\": {e}",
            row.columns()[i].name()
        ))
    })
}

fn sql_error(e: &tokio_postgres::Error) -> SqlError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        SqlError::UniqueViolation(error(e).to_string())
    } else {
        SqlError::Failed(error(e))
    }
}

/// A [`SqlSession`] parameter with the type its value names, so that PostgreSQL need not infer
/// one (it cannot in `$4 << …`). NULL is sent as text.
fn typed(v: &Value) -> Result<(Box<dyn ToSql + Sync + Send>, Type), SqlError> {
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

/// A [`SqlSession`] cell: only the kinds that trait promises.
fn store_cell(row: &Row, i: usize) -> Result<Value, SqlError> {
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
    Ok(decode(row, i)?)
}

#[async_trait]
impl SqlSession for Session {
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
        let owned = params.iter().map(typed).collect::<Result<Vec<_>, _>>()?;
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
        let owned = params.iter().map(typed).collect::<Result<Vec<_>, _>>()?;
        let typed: Vec<(&(dyn ToSql + Sync), Type)> = owned
            .iter()
            .map(|(v, t)| (v.as_ref() as &(dyn ToSql + Sync), t.clone()))
            .collect();
        let rows = self
            .client
            .query_typed(sql, &typed)
            .await
            .map_err(|e| sql_error(&e))?;
        rows.iter()
            .map(|row| (0..row.len()).map(|i| store_cell(row, i)).collect())
            .collect()
    }
}

/// Idempotent batches: `INSERT … ON CONFLICT (key) DO UPDATE`, one statement per batch (so a
/// batch is atomic and the engine can split a rejected one). Rows identical to what the table
/// holds are not rewritten (no dead tuples, no trigger runs); [`UpsertWriter::changed`] counts
/// the rows that were inserted or changed.
pub struct UpsertWriter {
    client: Arc<Client>,
    columns: Vec<String>,
    sql: String,
    changed: u64,
}

impl UpsertWriter {
    fn new(client: Arc<Client>, table: &str, columns: &[String], key: &[String]) -> Self {
        let list = columns
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", ");
        let rest: Vec<&String> = columns.iter().filter(|c| !key.contains(c)).collect();
        let joined = |f: &dyn Fn(&str) -> String| {
            rest.iter()
                .map(|c| f(&quote(c)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let set = joined(&|q| format!("{q} = EXCLUDED.{q}"));
        let old = joined(&|q| format!("t.{q}"));
        let new = joined(&|q| format!("EXCLUDED.{q}"));
        let key = key.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "INSERT INTO {t} AS t ({list}) SELECT {list} FROM jsonb_populate_recordset(NULL::{t}, $1::text::jsonb) \
             ON CONFLICT ({key}) DO UPDATE SET {set} WHERE ({old}) IS DISTINCT FROM ({new}) RETURNING 1",
            t = quote(table)
        );
        Self {
            client,
            columns: columns.to_vec(),
            sql,
            changed: 0,
        }
    }

    /// Rows inserted or changed so far (rows written identical to the table's are not).
    pub fn changed(&self) -> u64 {
        self.changed
    }

    /// The batch as a JSON array of objects, one key per column; JSON values stay documents.
    fn json(&self, batch: &Batch) -> String {
        let mut out = String::from("[");
        for (i, row) in batch.rows().enumerate() {
            out.push_str(if i == 0 { "{" } else { ",{" });
            for (j, (c, v)) in self.columns.iter().zip(row).enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(c.clone()).to_string());
                out.push(':');
                match v {
                    Value::Json(doc) => out.push_str(doc),
                    v => out.push_str(&v.to_json().to_string()),
                }
            }
            out.push('}');
        }
        out.push(']');
        out
    }
}

#[async_trait]
impl TableWriter for UpsertWriter {
    /// Any error PostgreSQL raises for the statement rejects the batch (PostgreSQL does not say
    /// which row of an `INSERT … SELECT`); a lost connection ends the run.
    async fn write(&mut self, batch: &Batch) -> Result<(), WriteError> {
        let all = Some(self.json(batch));
        match self.client.query(&self.sql, &params(&[all])).await {
            Ok(rows) => {
                self.changed += rows.len() as u64;
                Ok(())
            }
            Err(e) if e.as_db_error().is_some() && !error(&e).is_transient() => {
                Err(WriteError::Rejected {
                    row: None,
                    reason: error(&e).to_string(),
                })
            }
            Err(e) => Err(WriteError::Fatal(error(&e))),
        }
    }
}
