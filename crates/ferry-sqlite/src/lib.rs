//! ferry's SQLite backend: a read-only source (introspection with type profiling, keyset
//! reader) and a target (dialect, DDL, writer). One file per operation, as in every backend.

mod dialect;
mod introspect;
mod open;
mod read;
mod type_map;
mod value_io;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::connector::{Dialect, Identity, SchemaOptions, Source, TableWriter, Target};
use ferry_core::plan::TablePlan;
use ferry_core::schema::{ForeignKey, Schema, Table};
use ferry_core::value::Batch;
use ferry_core::{Error, Locator, Result};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use dialect::SqliteDialect;

/// A SQLite file opened read-only: never modified, no `-wal`/`-shm` files created beside it.
pub struct SqliteSource {
    locator: Locator,
    path: PathBuf,
}

impl SqliteSource {
    /// # Errors
    /// An input error when the file is missing or is not a SQLite database.
    pub fn open(path: &Path) -> Result<Self> {
        open::check_source_file(path)?;
        Ok(Self {
            locator: Locator::Sqlite {
                path: path.to_path_buf(),
            },
            path: path.to_path_buf(),
        })
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

    async fn schema(&self, options: &SchemaOptions) -> Result<Schema> {
        let (path, options) = (self.path.clone(), options.clone());
        blocking(move || {
            let conn = open::read_only(&path)?;
            introspect::schema(&conn, &path, &options)
        })
        .await
    }

    async fn read(
        &self,
        table: &Table,
        batch_rows: usize,
        tx: mpsc::Sender<Batch>,
        cancel: CancellationToken,
    ) -> Result<()> {
        let (path, table) = (self.path.clone(), table.clone());
        blocking(move || {
            let conn = open::read_only(&path)?;
            read::read_table(&conn, &table, batch_rows, &tx, &cancel)
        })
        .await
    }

    async fn orphans(
        &self,
        table: &Table,
        fk: &ForeignKey,
        limit: usize,
    ) -> Result<Option<(u64, Vec<String>)>> {
        let (path, table, fk) = (self.path.clone(), table.clone(), fk.clone());
        blocking(move || {
            let conn = open::read_only(&path)?;
            introspect::orphans(&conn, &table, &fk, limit).map(Some)
        })
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
            locator: Locator::Sqlite {
                path: path.to_path_buf(),
            },
            path: path.to_path_buf(),
            dialect: SqliteDialect,
        })
    }
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
            let conn = open::read_only(&path)?;
            introspect::tables_with_counts(&conn)
        })
        .await
    }

    async fn execute(&self, statements: &[String]) -> Result<()> {
        let (path, statements) = (self.path.clone(), statements.to_vec());
        blocking(move || write::execute(&path, &statements)).await
    }

    async fn writer(&self, table: &TablePlan) -> Result<Box<dyn TableWriter>> {
        let (path, table) = (self.path.clone(), table.clone());
        let w = blocking(move || write::SqliteWriter::open(&path, &table)).await?;
        Ok(Box::new(w))
    }

    async fn as_source(&self) -> Result<Arc<dyn Source>> {
        Ok(Arc::new(SqliteSource::open(&self.path)?))
    }
}
