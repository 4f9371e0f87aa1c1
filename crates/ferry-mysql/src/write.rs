//! Writing to MySQL: multi-row INSERTs with inline literals (the fastest portable bulk path;
//! LOAD DATA LOCAL needs server and client opt-in), split to stay under the server's
//! `max_allowed_packet`, inside one transaction per batch so a rejected batch leaves nothing.
//! A chunk's batches run in one InnoDB transaction (a savepoint per batch when rejected rows
//! are isolated), committed together with its ledger row.

use async_trait::async_trait;
use ferry_core::Result;
use ferry_core::connector::{TableWriter, WriteError};
use ferry_core::convert::float_text;
use ferry_core::plan::TablePlan;
use ferry_core::value::{Batch, Value, hex};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::connect::{error, quote};

pub struct MysqlWriter {
    conn: Conn,
    prefix: String,
    max_statement: usize,
    /// Inside a chunk's transaction: whether each batch runs under a savepoint.
    chunk: Option<bool>,
}

impl MysqlWriter {
    pub async fn new(mut conn: Conn, table: &TablePlan) -> Result<Self> {
        let packet: Option<u64> = conn
            .query_first("SELECT @@max_allowed_packet")
            .await
            .map_err(|e| error(&e))?;
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| quote(&c.target_name))
            .collect();
        Ok(Self {
            conn,
            prefix: format!(
                "INSERT INTO {} ({}) VALUES ",
                quote(&table.target_name),
                cols.join(", ")
            ),
            // Half the packet limit, at most 16 MiB: big enough to amortise round trips.
            max_statement: (packet.unwrap_or(4 << 20) as usize / 2).clamp(64 << 10, 16 << 20),
            chunk: None,
        })
    }

    async fn run(&mut self, statements: &[String]) -> Result<(), mysql_async::Error> {
        // In a chunk the batch is part of the chunk's transaction (under a savepoint when its
        // rows may be rejected and the rest kept); alone it is its own transaction.
        let (begin, undo, end) = match self.chunk {
            None => (Some("START TRANSACTION"), "ROLLBACK", Some("COMMIT")),
            Some(true) => (
                Some("SAVEPOINT ferry_batch"),
                "ROLLBACK TO SAVEPOINT ferry_batch",
                Some("RELEASE SAVEPOINT ferry_batch"),
            ),
            Some(false) => (None, "ROLLBACK", None),
        };
        if let Some(begin) = begin {
            self.conn.query_drop(begin).await?;
        }
        for s in statements {
            if let Err(e) = self.conn.query_drop(s.as_str()).await {
                let _ = self.conn.query_drop(undo).await;
                return Err(e);
            }
        }
        match end {
            Some(end) => self.conn.query_drop(end).await,
            None => Ok(()),
        }
    }
}

/// A value as a MySQL literal (sessions run with NO_BACKSLASH_ESCAPES, so only quotes double).
fn literal(v: &Value, out: &mut String) -> Result<(), String> {
    use std::fmt::Write;
    match v {
        Value::Null => out.push_str("NULL"),
        Value::Bool(b) => out.push(if *b { '1' } else { '0' }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) if f.is_finite() => out.push_str(&float_text(*f)),
        Value::Float(f) => {
            return Err(format!(
                "{f} cannot be stored: MySQL has no NaN or infinity"
            ));
        }
        Value::Decimal(s) if s.starts_with(|c: char| c.is_ascii_digit() || c == '-') => {
            let _ = write!(out, "'{s}'");
        }
        Value::Decimal(s) => {
            return Err(format!(
                "{s} cannot be stored: MySQL decimals have no NaN or infinity"
            ));
        }
        Value::Text(s) | Value::Json(s) => {
            out.push('\'');
            out.push_str(&s.replace('\'', "''"));
            out.push('\'');
        }
        Value::RawText(_) => {
            return Err("text is not valid UTF-8: MySQL utf8mb4 cannot store it unchanged".into());
        }
        Value::Bytes(b) => {
            let _ = write!(out, "X'{}'", hex(b));
        }
        Value::Date(d) => {
            let _ = write!(out, "'{}'", d.format("%Y-%m-%d"));
        }
        Value::Time(t) => {
            let _ = write!(out, "'{}'", t.format("%H:%M:%S%.6f"));
        }
        Value::Timestamp(t) => {
            let _ = write!(out, "'{}'", t.format("%Y-%m-%d %H:%M:%S%.6f"));
        }
        Value::TimestampTz(t) => {
            let _ = write!(out, "'{}'", t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f"));
        }
        Value::Uuid(u) => {
            let _ = write!(out, "'{u}'");
        }
    }
    Ok(())
}

#[async_trait]
impl TableWriter for MysqlWriter {
    async fn write(&mut self, batch: &Batch) -> Result<(), WriteError> {
        let mut statements = Vec::new();
        let mut sql = String::with_capacity(self.max_statement.min(1 << 20));
        for (i, row) in batch.rows().enumerate() {
            let mut tuple = String::from("(");
            for (k, v) in row.iter().enumerate() {
                if k > 0 {
                    tuple.push_str(", ");
                }
                literal(v, &mut tuple).map_err(|reason| WriteError::Rejected {
                    row: Some(i),
                    reason,
                })?;
            }
            tuple.push(')');
            if !sql.is_empty() && sql.len() + tuple.len() + 2 > self.max_statement {
                statements.push(std::mem::take(&mut sql));
            }
            if sql.is_empty() {
                sql.push_str(&self.prefix);
            } else {
                sql.push_str(", ");
            }
            sql.push_str(&tuple);
        }
        if !sql.is_empty() {
            statements.push(sql);
        }
        match self.run(&statements).await {
            Ok(()) => Ok(()),
            Err(mysql_async::Error::Server(s)) if is_data_error(s.code) => {
                // "... at row N" counts rows of the failing statement; only exact for one statement.
                let row = (statements.len() == 1)
                    .then(|| {
                        s.message
                            .rsplit_once(" at row ")
                            .and_then(|(_, n)| n.trim().parse::<usize>().ok())
                    })
                    .flatten()
                    .and_then(|n| n.checked_sub(1));
                Err(WriteError::Rejected {
                    row,
                    reason: s.message.clone(),
                })
            }
            Err(e) => Err(WriteError::Fatal(error(&e))),
        }
    }

    async fn run_sql(&mut self, sql: &str) -> Result<u64> {
        self.conn.query_drop(sql).await.map_err(|e| error(&e))?;
        Ok(self.conn.affected_rows())
    }

    fn set_chunk(&mut self, isolate_batches: Option<bool>) {
        self.chunk = isolate_batches;
    }
}

/// Errors caused by the data (duplicate key, out of range, too long, bad value, NULL), as
/// opposed to the server or the connection.
fn is_data_error(code: u16) -> bool {
    matches!(
        code,
        1048 | 1062 | 1264 | 1265 | 1292 | 1366 | 1367 | 1406 | 1416 | 3140 | 4025 | 1452 | 1451
    )
}
