//! The SQLite job store's schema and session (the default store): WAL and a busy timeout, so
//! `ferry admin` can write while a server runs (see ferry-sqlite's `session`). The file and
//! its `-wal`/`-shm` are readable by their owner only.

use std::sync::Arc;

use ferry_core::session::SqlSession;
use ferry_sqlite::session::SqliteSession;

use crate::error::{Error, Result};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ferry_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ferry_users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ferry_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES ferry_users(id),
    expires_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ferry_jobs (
    id TEXT PRIMARY KEY,
    admin_user_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    source_host TEXT NOT NULL,
    target_key TEXT NOT NULL,
    status TEXT NOT NULL,
    dry_run INTEGER NOT NULL,
    stats TEXT NOT NULL,
    error_message TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    sealed_body BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ferry_jobs_one_per_target ON ferry_jobs (target_key)
    WHERE dry_run = 0 AND status IN ('pending', 'validating', 'running');
CREATE INDEX IF NOT EXISTS ferry_jobs_created ON ferry_jobs (created_at);
CREATE TABLE IF NOT EXISTS ferry_login_slowdown (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    next_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_wait INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ferry_login_slowdown_updated ON ferry_login_slowdown (updated_at);
";

/// Opens the store's file with a private mode.
pub(super) async fn connect(path: &str) -> Result<Arc<dyn SqlSession>> {
    make_private(path)?;
    let session = SqliteSession::open(path, std::time::Duration::from_secs(5))
        .await
        .map_err(|e| Error::new(format!("cannot open the job store {path}: {e}")))?;
    Ok(Arc::new(session))
}

/// The store holds sealed credentials and token hashes: only its owner may read it. The file
/// is created mode 0600 before SQLite opens it, and SQLite gives the `-wal` and `-shm` files it
/// creates the database file's mode; files an older ferry left readable to others are
/// tightened. (`:memory:` and `file:` URIs are left to SQLite.)
fn make_private(path: &str) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if path == ":memory:" || path.starts_with("file:") {
            return Ok(());
        }
        let cannot =
            |e: std::io::Error| Error::new(format!("cannot open the job store {path}: {e}"));
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
                tracing::warn!(
                    "Made the job store file {file} readable by its owner only (mode 0600)"
                );
            }
        }
    }
    Ok(())
}
