//! Writing to SQLite: prepared INSERTs, one transaction per batch (atomic, so the engine can
//! split a rejected batch), foreign key checks off during the load as the file has no other
//! writer. Needs a multi-threaded tokio runtime (`block_in_place`), which the CLI and server use.
//! A chunk's batches run in one write transaction (a savepoint each), committed together with
//! its ledger row.

use std::path::Path;

use async_trait::async_trait;
use ferry_core::connector::{StatementRunner, TableWriter, WriteError};
use ferry_core::plan::TablePlan;
use ferry_core::value::Batch;
use ferry_core::{Error, Result};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::open::{quote, sql_err};
use crate::value_io::Bind;

pub fn open_rw(path: &Path, extra_sql: &[String]) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = crate::open::open_with(path, flags, 60, |e| {
        format!("cannot open or create SQLite file {}: {e}", path.display())
    })?;
    // A crash mid-copy leaves a run that is reported failed and re-run with --force, so the
    // load does not pay for per-commit fsyncs.
    conn.execute_batch("PRAGMA foreign_keys = OFF; PRAGMA synchronous = OFF;")
        .map_err(sql_err)?;
    crate::open::register_unknown_collations(&conn, extra_sql)?;
    Ok(conn)
}

/// Runs DDL statements one at a time on the blocking pool, for [`Target::execute`].
///
/// [`Target::execute`]: ferry_core::connector::Target::execute
pub struct Statements(pub Option<Connection>);

/// Runs `statements` in a fresh in-memory database, each one whatever the others did, and
/// returns those SQLite refused (a target's preflight: the file is never touched).
pub fn prove(statements: &[String]) -> Result<ferry_core::connector::Proof> {
    let conn = Connection::open_in_memory().map_err(sql_err)?;
    // As the real load runs them (see `open_rw`).
    conn.execute_batch("PRAGMA foreign_keys = OFF")
        .map_err(sql_err)?;
    crate::open::register_unknown_collations(&conn, statements)?;
    let mut proof = ferry_core::connector::Proof::default();
    for s in statements {
        if let Err(e) = conn.execute_batch(s) {
            proof.failures.push((s.clone(), format!("SQLite: {e}")));
        }
    }
    Ok(proof)
}

#[async_trait]
impl StatementRunner for Statements {
    async fn run(&mut self, statement: &str) -> Result<()> {
        let conn = self
            .0
            .take()
            .ok_or_else(|| Error::run("the SQLite connection was lost after a failed task"))?;
        let statement = statement.to_string();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = conn.execute_batch(&statement);
            (conn, result)
        })
        .await
        .map_err(|e| Error::run(format!("SQLite task failed: {e}")))?;
        self.0 = Some(conn);
        result.map_err(|e| Error::run(format!("SQLite: {e}")))
    }
}

pub struct SqliteWriter {
    conn: Connection,
    sql: String,
    /// The same insert with the source's rowid first, for tables that keep it.
    sql_with_rowid: Option<String>,
    /// Inside a chunk's transaction: each batch is a savepoint of it.
    in_chunk: bool,
}

impl SqliteWriter {
    pub fn open(path: &Path, table: &TablePlan) -> Result<Self> {
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| quote(&c.target_name))
            .collect();
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(&table.target_name),
            cols.join(", "),
            marks.join(", ")
        );
        // Full-text rowids are what applications join on: between two SQLite files they stay.
        let sql_with_rowid =
            crate::objects::keeps_rowid(table.source.native_sql.as_deref()).then(|| {
                format!(
                    "INSERT INTO {} (rowid, {}) VALUES (?{}, {})",
                    quote(&table.target_name),
                    cols.join(", "),
                    cols.len() + 1,
                    marks.join(", ")
                )
            });
        Ok(Self {
            conn: open_rw(path, &[])?,
            sql,
            sql_with_rowid,
            in_chunk: false,
        })
    }

    fn write_blocking(&mut self, batch: &Batch) -> Result<(), WriteError> {
        let fatal = |e: rusqlite::Error| WriteError::Fatal(sql_err(e));
        let rowids = self
            .sql_with_rowid
            .as_ref()
            .filter(|_| batch.locators.len() == batch.len());
        // SQLite savepoints are cheap: in a chunk every batch is one, so a rejected batch
        // leaves the chunk's others in place.
        if self.in_chunk {
            let sp = self.conn.savepoint().map_err(fatal)?;
            insert_rows(&sp, rowids.unwrap_or(&self.sql), rowids.is_some(), batch)?;
            return sp.commit().map_err(fatal);
        }
        let tx = self.conn.transaction().map_err(fatal)?;
        insert_rows(&tx, rowids.unwrap_or(&self.sql), rowids.is_some(), batch)?;
        tx.commit().map_err(fatal)
    }
}

/// Inserts every row of `batch` with `sql` (the source's rowid last when `rowids`), in the
/// caller's transaction or savepoint.
fn insert_rows(
    conn: &Connection,
    sql: &str,
    rowids: bool,
    batch: &Batch,
) -> Result<(), WriteError> {
    let fatal = |e: rusqlite::Error| WriteError::Fatal(sql_err(e));
    let mut stmt = conn.prepare_cached(sql).map_err(fatal)?;
    let rowid_values: Vec<ferry_core::value::Value> = if rowids {
        batch
            .locators
            .iter()
            .map(|&l| ferry_core::value::Value::Int(l))
            .collect()
    } else {
        Vec::new()
    };
    for (i, row) in batch.rows().enumerate() {
        let mut params: Vec<Bind<'_>> = row.iter().map(Bind).collect();
        if let Some(rowid) = rowid_values.get(i) {
            params.push(Bind(rowid));
        }
        if let Err(e) = stmt.execute(rusqlite::params_from_iter(params.iter())) {
            let rejected = matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::ConstraintViolation | ErrorCode::TypeMismatch | ErrorCode::TooBig)
            );
            return Err(if rejected {
                WriteError::Rejected {
                    row: Some(i),
                    reason: e.to_string(),
                }
            } else {
                fatal(e)
            });
        }
    }
    Ok(())
}

#[async_trait]
impl TableWriter for SqliteWriter {
    async fn write(&mut self, batch: &Batch) -> Result<(), WriteError> {
        tokio::task::block_in_place(|| self.write_blocking(batch))
    }

    async fn run_sql(&mut self, sql: &str) -> Result<u64> {
        // IMMEDIATE: a chunk only writes, so it takes the file's write lock at once.
        let sql = if sql == "BEGIN" {
            "BEGIN IMMEDIATE"
        } else {
            sql
        };
        let changed = tokio::task::block_in_place(|| self.conn.execute(sql, []));
        Ok(changed.map_err(sql_err)? as u64)
    }

    fn set_chunk(&mut self, isolate_batches: Option<bool>) {
        // Every batch of a chunk is a savepoint (cheap in SQLite).
        self.in_chunk = isolate_batches.is_some();
    }
}
