//! SQL a caller writes itself (profiles): a `Session` runs statements and queries on one
//! connection, parameters sent as text (cast where used: `$1::text::timestamptz`), rows as
//! portable values; its `UpsertWriter` writes batches with `INSERT … ON CONFLICT DO UPDATE`.

use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::connector::{TableWriter, WriteError};
use ferry_core::value::{Batch, Value};
use ferry_core::{Error, Locator, Result};
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use crate::connect::{self, error};
use crate::copy_binary::Decoded;
use crate::dialect::quote;

/// One connection for the caller's own SQL. A read-only session cannot write even by mistake.
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
        client
            .batch_execute("SET jit = off")
            .await
            .map_err(|e| error(&e))?;
        Ok(Self {
            client: Arc::new(client),
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
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<_, Decoded>(i).map(|d| d.0).map_err(|e| {
                            Error::run(format!(
                                "PostgreSQL: cannot decode column \"{}\": {e}",
                                r.columns()[i].name()
                            ))
                        })
                    })
                    .collect()
            })
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
            Err(e) if e.as_db_error().is_some() => Err(WriteError::Rejected {
                row: None,
                reason: error(&e).to_string(),
            }),
            Err(e) => Err(WriteError::Fatal(error(&e))),
        }
    }
}
