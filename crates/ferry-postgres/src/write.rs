//! Writing to PostgreSQL with binary COPY: one COPY per batch, so each batch is atomic and a
//! rejected one can be split by the engine; PostgreSQL's error context names the failing line.
//! A chunk's batches run in one transaction (a savepoint per batch when rejected rows are
//! isolated), committed together with its ledger row.

use std::collections::HashMap;

use async_trait::async_trait;
use bytes::BytesMut;
use ferry_core::connector::{TableWriter, WriteError};
use ferry_core::plan::TablePlan;
use ferry_core::schema::DataType;
use ferry_core::value::Batch;
use ferry_core::{Error, Result};
use futures_util::{SinkExt, pin_mut};
use tokio_postgres::Client;

use crate::connect::error;
use crate::copy_binary::{Encoding, encode_row, header, trailer};
use crate::dialect::quote;

pub struct PostgresWriter {
    client: Client,
    sql: String,
    types: Vec<Encoding>,
    buf: BytesMut,
    /// Inside a chunk's transaction: whether each batch runs under a savepoint.
    chunk: Option<bool>,
}

impl PostgresWriter {
    pub async fn new(client: Client, table: &TablePlan) -> Result<Self> {
        if table.existing {
            // The application's table keeps its foreign keys and triggers: as a superuser,
            // load it the way a restore does (no FK checks or triggers for these rows, the
            // source was checked for orphans first); otherwise parents load before children.
            let _ = client
                .batch_execute("SET session_replication_role = replica")
                .await;
        }
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| quote(&c.target_name))
            .collect();
        let elem_oids = array_element_types(&client, &table.target_name).await?;
        let types = table
            .columns
            .iter()
            .map(|c| {
                let t = c.convert_to.clone().ok_or_else(|| {
                    Error::run(format!(
                        "internal: column {} has no target type",
                        c.source_name
                    ))
                })?;
                Ok(match t {
                    DataType::Json if c.native_type == "jsonb" => Encoding::Jsonb,
                    DataType::Native { .. } => Encoding::Native {
                        elem_oid: elem_oids.get(&c.target_name).copied().unwrap_or(0),
                    },
                    t => Encoding::Portable(t),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            client,
            sql: format!(
                "COPY {} ({}) FROM STDIN (FORMAT binary)",
                quote(&table.target_name),
                cols.join(", ")
            ),
            types,
            buf: BytesMut::with_capacity(1 << 20),
            chunk: None,
        })
    }
}

#[async_trait]
impl TableWriter for PostgresWriter {
    async fn write(&mut self, batch: &Batch) -> Result<(), WriteError> {
        self.buf.clear();
        header(&mut self.buf);
        for (i, row) in batch.rows().enumerate() {
            if let Err(reason) = encode_row(&mut self.buf, &self.types, row) {
                return Err(WriteError::Rejected {
                    row: Some(i),
                    reason,
                });
            }
        }
        trailer(&mut self.buf);
        let data = self.buf.split().freeze();
        let savepoint = self.chunk == Some(true);
        let result: Result<u64, tokio_postgres::Error> = async {
            if savepoint {
                self.client.batch_execute("SAVEPOINT ferry_batch").await?;
            }
            let sink = self.client.copy_in::<_, bytes::Bytes>(&self.sql).await?;
            pin_mut!(sink);
            sink.send(data).await?;
            sink.as_mut().finish().await
        }
        .await;
        let undo = if result.is_ok() {
            "RELEASE SAVEPOINT ferry_batch"
        } else {
            "ROLLBACK TO SAVEPOINT ferry_batch"
        };
        if savepoint && let Err(e) = self.client.batch_execute(undo).await {
            return Err(WriteError::Fatal(error(&e)));
        }
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(classify(&e)),
        }
    }

    async fn run_sql(&mut self, sql: &str) -> Result<u64> {
        self.client.execute(sql, &[]).await.map_err(|e| error(&e))
    }

    fn set_chunk(&mut self, isolate_batches: Option<bool>) {
        self.chunk = isolate_batches;
    }
}

/// The element type of each array column of the target table (domains over arrays included).
async fn array_element_types(client: &Client, table: &str) -> Result<HashMap<String, u32>> {
    let rows = client
        .query(
            "SELECT a.attname, coalesce(nullif(t.typelem, 0), b.typelem, 0)::oid \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_type b ON b.oid = t.typbasetype \
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped \
             AND coalesce(nullif(t.typcategory, 'U'), b.typcategory) = 'A'",
            &[&quote(table)],
        )
        .await
        .map_err(|e| error(&e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Data errors (class 22) and constraint violations (class 23) reject the batch; anything else
/// (a lost connection, a full disk) ends the run.
fn classify(e: &tokio_postgres::Error) -> WriteError {
    let Some(db) = e.as_db_error() else {
        return WriteError::Fatal(error(e));
    };
    let code = db.code().code();
    if !(code.starts_with("22") || code.starts_with("23")) {
        return WriteError::Fatal(error(e));
    }
    // "COPY t, line 3, column c: ..." — lines count rows from 1.
    let row = db.where_().and_then(|w| {
        let rest = &w[w.find(", line ")? + 7..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<usize>().ok()?.checked_sub(1)
    });
    let mut reason = db.message().to_string();
    if let Some(d) = db.detail() {
        reason.push_str(&format!(" ({d})"));
    }
    WriteError::Rejected { row, reason }
}
