//! A read-write [`SqlSession`] on a SQLite file, for a store kept in SQLite (the job server's):
//! one connection behind a mutex, every call on the blocking pool, WAL and a busy timeout so
//! another process (`ferry admin`) can write while a server runs; the file readable by its
//! owner only (it holds sealed credentials and token hashes).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ferry_core::locator::Backend;
use ferry_core::session::{SqlError, SqlSession};
use ferry_core::value::Value;
use ferry_core::{Error, Result};
use rusqlite::Connection;

use crate::value_io::{Bind, from_ref};

pub struct SqliteSession {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteSession {
    /// Opens (or creates) the file at `path` (`:memory:` and `file:` URIs too) in WAL mode,
    /// waiting up to `busy` for another writer.
    ///
    /// # Errors
    /// When the file cannot be opened or is not a SQLite database.
    pub async fn open(path: &str, busy: std::time::Duration) -> Result<Self> {
        let path = path.to_string();
        let conn = crate::blocking(move || {
            let cannot = |e: rusqlite::Error| {
                Error::input(format!("cannot open the SQLite database {path}: {e}"))
            };
            let conn = Connection::open(&path).map_err(cannot)?;
            conn.busy_timeout(busy).map_err(cannot)?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(cannot)?;
            Ok(conn)
        })
        .await?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The session the registry opens for ferry's own tables: the file made private first
    /// ([`make_private`]), then opened with a 5 s busy timeout.
    ///
    /// # Errors
    /// When the file cannot be created, tightened or opened.
    pub async fn open_private(path: &str) -> Result<Self> {
        make_private(path)?;
        Self::open(path, std::time::Duration::from_secs(5)).await
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, SqlError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conn
                .lock()
                .map_err(|_| Error::run("SQLite session lock poisoned"))?;
            f(&guard).map_err(sql_error)
        })
        .await
        .map_err(|e| Error::run(format!("SQLite task failed: {e}")))?
    }
}

fn sql_error(e: rusqlite::Error) -> SqlError {
    let message = format!("SQLite: {}", e.to_string().replace('\n', " "));
    match e.sqlite_error().map(|f| f.extended_code) {
        Some(
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
        ) => SqlError::UniqueViolation(message),
        _ => SqlError::Failed(Error::run(message)),
    }
}

/// ferry's own tables hold sealed credentials and token hashes: only the file's owner may read
/// it. The file is created mode 0600 before SQLite opens it, and SQLite gives the `-wal` and
/// `-shm` files it creates the database file's mode; files an older ferry left readable to
/// others are tightened. (`:memory:` and `file:` URIs are left to SQLite.)
fn make_private(path: &str) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if path == ":memory:" || path.starts_with("file:") {
            return Ok(());
        }
        let cannot = |e: std::io::Error| Error::input(format!("cannot open {path}: {e}"));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(cannot)?;
        for file in [
            path.to_string(),
            format!("{path}-wal"),
            format!("{path}-shm"),
        ] {
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .map_err(cannot)?;
                tracing::warn!("Made {file} readable by its owner only (mode 0600)");
            }
        }
    }
    Ok(())
}

/// The callers' SQL (PostgreSQL's spelling) in SQLite's: `$1` as `?1` (SQLite would read `$1` as
/// a named parameter, numbered by first appearance), `GREATEST(`/`LEAST(` as `max(`/`min(`.
fn spelled(sql: &str) -> String {
    numbered(sql)
        .replace("GREATEST(", "max(")
        .replace("LEAST(", "min(")
}

/// `$n` as `?n`.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

#[async_trait]
impl SqlSession for SqliteSession {
    fn backend(&self) -> Backend {
        crate::locator::BACKEND
    }

    async fn batch(&self, sql: &str) -> Result<(), SqlError> {
        let sql = sql.to_string();
        self.call(move |c| c.execute_batch(&sql)).await
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, SqlError> {
        let (sql, params) = (spelled(sql), params.to_vec());
        self.call(move |c| {
            let bound: Vec<Bind<'_>> = params.iter().map(Bind).collect();
            let n = c
                .prepare_cached(&sql)?
                .execute(rusqlite::params_from_iter(bound.iter()))?;
            Ok(n as u64)
        })
        .await
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        let (sql, params) = (spelled(sql), params.to_vec());
        self.call(move |c| {
            let bound: Vec<Bind<'_>> = params.iter().map(Bind).collect();
            let mut stmt = c.prepare_cached(&sql)?;
            let width = stmt.column_count();
            let mut rows = stmt.query(rusqlite::params_from_iter(bound.iter()))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut values = Vec::with_capacity(width);
                for i in 0..width {
                    values.push(from_ref(row.get_ref(i)?));
                }
                out.push(values);
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbered_parameters_become_sqlite_ones() {
        assert_eq!(
            super::numbered("SELECT $1, '$x', $12 FROM t WHERE a = $2"),
            "SELECT ?1, '$x', ?12 FROM t WHERE a = ?2"
        );
        assert_eq!(
            super::spelled("SET a = GREATEST(a, $2), b = LEAST($3, 30)"),
            "SET a = max(a, ?2), b = min(?3, 30)"
        );
    }
}
