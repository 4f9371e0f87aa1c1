//! ferry's SQLite backend: a read-only source (introspection with type profiling, keyset
//! reader) and a target (dialect, DDL, writer). One file per operation, as in every backend.

pub mod demo;
mod dialect;
mod introspect;
pub mod locator;
mod objects;
mod open;
mod query;
mod read;
pub mod session;
mod snapshot;
mod type_map;
mod value_io;
mod wal_snapshot;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::connector::{
    Ddl, Dialect, Identity, Proof, ReadRequest, SchemaOptions, Source, StatementRunner,
    TableWriter, Target,
};
use ferry_core::plan::TablePlan;
use ferry_core::schema::{ForeignKey, Schema, Table};
use ferry_core::{Error, Locator, Result};

pub use dialect::SqliteDialect;
pub use locator::{SqliteLocator, SqliteRegistration, SqliteSnapshot};

/// A SQLite file opened read-only: never modified, no `-wal`/`-shm` files created beside it.
/// Every read (schema, profiling, rows, orphans, verification) sees one snapshot, taken at the
/// first use and held until the source is dropped (`snapshot.rs`).
pub struct SqliteSource {
    locator: Locator,
    path: PathBuf,
    how: SqliteSnapshot,
    /// Log how the file is read (not for a target read back by its own writer, ferry).
    announce: bool,
    snapshot: tokio::sync::OnceCell<Arc<snapshot::Snapshot>>,
}

impl SqliteSource {
    /// # Errors
    /// An input error when the locator is not SQLite, or the file is missing or is not a
    /// SQLite database.
    pub fn open(locator: &Locator) -> Result<Self> {
        let SqliteLocator { path, snapshot } = locator::of(locator)?;
        open::check_source_file(path)?;
        Ok(Self {
            locator: locator.clone(),
            path: path.clone(),
            how: *snapshot,
            announce: true,
            snapshot: tokio::sync::OnceCell::new(),
        })
    }

    /// The snapshot, taken on first use.
    async fn snapshot(&self) -> Result<Arc<snapshot::Snapshot>> {
        self.snapshot
            .get_or_try_init(|| {
                let (path, how, announce) = (self.path.clone(), self.how, self.announce);
                blocking(move || snapshot::Snapshot::open(&path, how, announce).map(Arc::new))
            })
            .await
            .cloned()
    }

    /// Runs `f` on a connection of the snapshot, on a blocking thread, then checks that an
    /// immutable file did not change meanwhile.
    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection, &snapshot::Snapshot) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let snapshot = self.snapshot().await?;
        blocking(move || {
            let out = {
                let conn = snapshot.checkout()?;
                f(&conn, &snapshot)
            };
            snapshot.check()?;
            out
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::run(format!("SQLite task failed: {e}")))?
}

#[async_trait]
impl Source for SqliteSource {
    fn locator(&self) -> &Locator {
        &self.locator
    }

    async fn identity(&self) -> Result<Option<Identity>> {
        open::identity(&self.path)
    }

    fn snapshot_method(&self) -> Option<String> {
        self.snapshot.get().map(|s| s.description().to_string())
    }

    async fn schema(&self, options: &SchemaOptions) -> Result<Schema> {
        let options = options.clone();
        self.with_conn(move |conn, pool| introspect::schema(conn, pool, &options))
            .await
    }

    async fn read(&self, request: ReadRequest<'_>) -> Result<()> {
        let table = request.table.clone();
        let (rows, tx, cancel) = (request.batch_rows, request.tx, request.cancel);
        self.with_conn(move |conn, _| read::read_table(conn, &table, rows, &tx, &cancel))
            .await
    }

    async fn orphans(
        &self,
        table: &Table,
        fk: &ForeignKey,
        limit: usize,
    ) -> Result<Option<(u64, Vec<String>)>> {
        let (table, fk) = (table.clone(), fk.clone());
        self.with_conn(move |conn, _| introspect::orphans(conn, &table, &fk, limit).map(Some))
            .await
    }

    async fn query_keys(&self, sql: &str) -> Result<Vec<Option<String>>> {
        let sql = sql.to_string();
        self.with_conn(move |conn, _| query::first_column(conn, &sql))
            .await
    }
}

/// A SQLite file written by ferry. It is created on the first write, never by a check or a
/// dry run.
pub struct SqliteTarget {
    locator: Locator,
    path: PathBuf,
    dialect: SqliteDialect,
}

impl SqliteTarget {
    /// # Errors
    /// An input error when the file's folder does not exist.
    pub fn open(path: &Path) -> Result<Self> {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(Error::input(format!(
                "the folder of the target SQLite file {} does not exist: create it first",
                path.display()
            )));
        }
        if path.exists() {
            open::check_sqlite_header(path)?;
        }
        Ok(Self {
            locator: locator::file(path),
            path: path.to_path_buf(),
            dialect: SqliteDialect,
        })
    }
}

/// A write transaction killed with its process (a chunk of a copy killed with `kill -9`) leaves
/// a hot `-journal`, which only a read-write connection rolls back: read-only connections,
/// which check the target, would refuse the file ("attempt to write a readonly database").
/// One read-write open rolls it back before the target is read.
fn recover_hot_journal(path: &Path) -> Result<()> {
    let journal = PathBuf::from(format!("{}-journal", path.display()));
    if std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0) {
        let conn = write::open_rw(path, &[])?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(open::sql_err)?;
    }
    Ok(())
}

#[async_trait]
impl Target for SqliteTarget {
    fn locator(&self) -> &Locator {
        &self.locator
    }

    fn dialect(&self) -> &dyn Dialect {
        &self.dialect
    }

    async fn identity(&self) -> Result<Option<Identity>> {
        open::identity(&self.path)
    }

    async fn existing_tables(&self) -> Result<Vec<(String, u64)>> {
        let path = self.path.clone();
        if !path.exists()
            || std::fs::metadata(&path)
                .map(|m| m.len() == 0)
                .unwrap_or(true)
        {
            return Ok(Vec::new());
        }
        blocking(move || {
            recover_hot_journal(&path)?;
            let conn = open::read_only(&path)?;
            introspect::tables_with_counts(&conn)
        })
        .await
    }

    async fn statements(&self, statements: &[String]) -> Result<Box<dyn StatementRunner>> {
        let (path, all) = (self.path.clone(), statements.to_vec());
        let conn = blocking(move || write::open_rw(&path, &all)).await?;
        Ok(Box::new(write::Statements(Some(conn))))
    }

    /// Runs the DDL in an in-memory database: the file is not opened for writing.
    async fn preflight(&self, ddl: &Ddl, _erase: bool, _existing: &[String]) -> Result<Proof> {
        let statements: Vec<String> = ddl.proved().cloned().collect();
        blocking(move || write::prove(&statements)).await
    }

    async fn writer(&self, table: &TablePlan) -> Result<Box<dyn TableWriter>> {
        let (path, table) = (self.path.clone(), table.clone());
        let w = blocking(move || write::SqliteWriter::open(&path, &table)).await?;
        Ok(Box::new(w))
    }

    async fn as_source(&self) -> Result<Arc<dyn Source>> {
        let mut source = SqliteSource::open(&self.locator)?;
        source.announce = false;
        Ok(Arc::new(source))
    }
}

/// Tests: a new SQLite file `name` in a fresh folder (removed when the folder is dropped),
/// filled by `sql`, and the connection that filled it.
#[cfg(test)]
fn test_file(
    name: &str,
    sql: &str,
) -> (tempfile::TempDir, std::path::PathBuf, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(sql).unwrap();
    (dir, path, conn)
}
