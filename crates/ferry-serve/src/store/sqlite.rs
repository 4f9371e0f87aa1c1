//! The SQLite job store: one connection behind a mutex, every call on the blocking pool (WAL
//! and a busy timeout, so `ferry admin` can write while a server runs). The file and its
//! `-wal`/`-shm` are readable by their owner only.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{InsertError, JobRecord, Role, Store, Turn, TurnRule, User};
use crate::error::{Error, Result};

const SCHEMA: &str = "
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

const JOB_COLUMNS: &str = "id, admin_user_id, kind, source_host, target_key, status, dry_run, stats, error_message, created_at, updated_at, started_at, finished_at";

pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    pub async fn open(path: &str) -> Result<Self> {
        let path = path.to_string();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection> {
            make_private(&path)?;
            let conn = Connection::open(&path)
                .map_err(|e| Error::new(format!("cannot open the job store {path}: {e}")))?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        })
        .await
        .map_err(|e| Error::new(format!("job store task failed: {e}")))??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conn
                .lock()
                .map_err(|_| Error::new("job store lock poisoned"))?;
            f(&guard).map_err(Error::from)
        })
        .await
        .map_err(|e| Error::new(format!("job store task failed: {e}")))?
    }
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

/// [`super::TURN_SQL`] and its friends are written in PostgreSQL's spelling.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
        .replace("GREATEST(", "max(")
        .replace("LEAST(", "min(")
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(3)?;
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        role: Role::parse(&role).unwrap_or(Role::User),
    })
}

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        id: r.get(0)?,
        admin_user_id: r.get(1)?,
        kind: r.get(2)?,
        source_host: r.get(3)?,
        target_key: r.get(4)?,
        status: r.get(5)?,
        dry_run: r.get::<_, i64>(6)? != 0,
        stats: r.get(7)?,
        error_message: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        started_at: r.get(11)?,
        finished_at: r.get(12)?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        self.call(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = key.to_string();
        self.call(move |c| {
            c.query_row("SELECT value FROM ferry_meta WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
        })
        .await
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        let (key, value) = (key.to_string(), value.to_vec());
        self.call(move |c| {
            c.execute(
                "INSERT INTO ferry_meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
        })
        .await
    }

    async fn user_count(&self) -> Result<u64> {
        self.call(|c| {
            c.query_row("SELECT count(*) FROM ferry_users", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .await
        .map(|n| n as u64)
    }

    async fn create_user(&self, username: &str, password_hash: &str, role: Role) -> Result<i64> {
        let (u, h) = (username.to_string(), password_hash.to_string());
        let name = u.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO ferry_users (username, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![u, h, role.as_str(), super::now()],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
        .map_err(|e| {
            if e.0.contains("UNIQUE") {
                Error::new(format!("a user named {name} already exists"))
            } else {
                e
            }
        })
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        let u = username.to_string();
        self.call(move |c| {
            c.query_row(
                "SELECT id, username, password_hash, role FROM ferry_users WHERE username = ?1",
                [u],
                user_row,
            )
            .optional()
        })
        .await
    }

    async fn insert_token(&self, token_hash: &str, user_id: i64, expires_at: i64) -> Result<()> {
        let h = token_hash.to_string();
        self.call(move |c| {
            c.execute(
                "INSERT INTO ferry_tokens (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
                params![h, user_id, expires_at],
            )
            .map(|_| ())
        })
        .await
    }

    async fn token_user(&self, token_hash: &str, now: i64) -> Result<Option<User>> {
        let h = token_hash.to_string();
        self.call(move |c| {
            c.query_row(
                "SELECT u.id, u.username, u.password_hash, u.role FROM ferry_tokens t
                 JOIN ferry_users u ON u.id = t.user_id
                 WHERE t.token_hash = ?1 AND t.revoked = 0 AND t.expires_at > ?2",
                params![h, now],
                user_row,
            )
            .optional()
        })
        .await
    }

    async fn revoke_tokens(&self, username: Option<&str>) -> Result<u64> {
        let u = username.map(str::to_string);
        self.call(move |c| {
            let n = match u {
                Some(u) => c.execute(
                    "UPDATE ferry_tokens SET revoked = 1 WHERE revoked = 0 AND user_id IN (SELECT id FROM ferry_users WHERE username = ?1)",
                    [u],
                )?,
                None => c.execute("UPDATE ferry_tokens SET revoked = 1 WHERE revoked = 0", [])?,
            };
            Ok(n as u64)
        })
        .await
    }

    async fn insert_job(&self, job: &JobRecord, sealed_body: &[u8]) -> Result<(), InsertError> {
        let (j, body) = (job.clone(), sealed_body.to_vec());
        let conn = self.conn.clone();
        let result = tokio::task::spawn_blocking(move || {
            let guard = conn.lock().map_err(|_| None)?;
            guard
                .execute(
                    &format!("INSERT INTO ferry_jobs ({JOB_COLUMNS}, sealed_body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
                    params![
                        j.id, j.admin_user_id, j.kind, j.source_host, j.target_key, j.status,
                        j.dry_run as i64, j.stats, j.error_message, j.created_at, j.updated_at,
                        j.started_at, j.finished_at, body
                    ],
                )
                .map_err(Some)
        })
        .await
        .map_err(|e| InsertError::Store(Error::new(format!("job store task failed: {e}"))))?;
        match result {
            Ok(_) => Ok(()),
            Err(Some(rusqlite::Error::SqliteFailure(e, _)))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(InsertError::Conflict)
            }
            Err(Some(e)) => Err(InsertError::Store(e.into())),
            Err(None) => Err(InsertError::Store(Error::new("job store lock poisoned"))),
        }
    }

    async fn job(&self, id: &str) -> Result<Option<JobRecord>> {
        let id = id.to_string();
        self.call(move |c| {
            c.query_row(
                &format!("SELECT {JOB_COLUMNS} FROM ferry_jobs WHERE id = ?1"),
                [id],
                job_row,
            )
            .optional()
        })
        .await
    }

    async fn job_body(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let id = id.to_string();
        self.call(move |c| {
            c.query_row(
                "SELECT sealed_body FROM ferry_jobs WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
        })
        .await
    }

    async fn jobs(&self, start: u64, count: u64) -> Result<(Vec<JobRecord>, u64)> {
        self.call(move |c| {
            let total: i64 = c.query_row("SELECT count(*) FROM ferry_jobs", [], |r| r.get(0))?;
            let mut stmt = c.prepare(&format!(
                "SELECT {JOB_COLUMNS} FROM ferry_jobs ORDER BY created_at DESC, id DESC LIMIT ?1 OFFSET ?2"
            ))?;
            let rows = stmt
                .query_map(params![count as i64, start as i64], job_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((rows, total as u64))
        })
        .await
    }

    async fn advance(&self, id: &str, status: &str, now: &str, started: bool) -> Result<bool> {
        let (id, status, now) = (id.to_string(), status.to_string(), now.to_string());
        self.call(move |c| {
            let n = c.execute(
                "UPDATE ferry_jobs SET status = ?2, updated_at = ?3,
                     started_at = CASE WHEN ?4 THEN coalesce(started_at, ?3) ELSE started_at END
                 WHERE id = ?1 AND status IN ('pending', 'validating', 'running', 'dry_run')",
                params![id, status, now, started],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn set_stats(&self, id: &str, stats: &str, now: &str) -> Result<()> {
        let (id, stats, now) = (id.to_string(), stats.to_string(), now.to_string());
        self.call(move |c| {
            c.execute(
                "UPDATE ferry_jobs SET stats = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, stats, now],
            )
            .map(|_| ())
        })
        .await
    }

    async fn finish(
        &self,
        id: &str,
        status: &str,
        stats: Option<&str>,
        error: Option<&str>,
        now: &str,
    ) -> Result<()> {
        let (id, status, now) = (id.to_string(), status.to_string(), now.to_string());
        let (stats, error) = (stats.map(str::to_string), error.map(str::to_string));
        self.call(move |c| {
            c.execute(
                "UPDATE ferry_jobs SET
                     status = CASE WHEN status = 'cancelled' THEN status ELSE ?2 END,
                     stats = coalesce(?3, stats),
                     error_message = CASE WHEN status = 'cancelled' THEN coalesce(error_message, ?4) ELSE ?4 END,
                     updated_at = ?5, finished_at = coalesce(finished_at, ?5)
                 WHERE id = ?1",
                params![id, status, stats, error, now],
            )
            .map(|_| ())
        })
        .await
    }

    async fn cancel(&self, id: &str, now: &str) -> Result<bool> {
        let (id, now) = (id.to_string(), now.to_string());
        self.call(move |c| {
            let n = c.execute(
                "UPDATE ferry_jobs SET status = 'cancelled', updated_at = ?2, finished_at = ?2
                 WHERE id = ?1 AND status IN ('pending', 'validating', 'running', 'dry_run')",
                params![id, now],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn fail_unfinished(&self, reason: &str, now: &str) -> Result<u64> {
        let (reason, now) = (reason.to_string(), now.to_string());
        self.call(move |c| {
            let n = c.execute(
                "UPDATE ferry_jobs SET error_message = replace(?1, '{status}', status),
                     status = 'failed', updated_at = ?2, finished_at = ?2
                 WHERE status IN ('pending', 'validating', 'running', 'dry_run')",
                params![reason, now],
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn status_counts(&self) -> Result<Vec<(String, u64)>> {
        self.call(|c| {
            let mut stmt = c.prepare("SELECT status, count(*) FROM ferry_jobs GROUP BY status")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect()
        })
        .await
    }

    async fn login_peek(&self, key: &str) -> Result<Option<(i64, i64)>> {
        let key = key.to_string();
        self.call(move |c| {
            c.prepare_cached(&sqlite_sql(super::PEEK_SQL))?
                .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .await
    }

    async fn login_turn(&self, key: &str, now_ms: i64, rule: &TurnRule) -> Result<Turn> {
        let (key, rule) = (key.to_string(), *rule);
        let (failures, next_ms, last_wait) = self
            .call(move |c| {
                c.prepare_cached(&sqlite_sql(&super::TURN_SQL))?.query_row(
                    params![
                        key,
                        now_ms,
                        rule.free_failures,
                        rule.base_ms,
                        rule.max_ms,
                        rule.forget_ms,
                        rule.max_wait_ms
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
            .await?;
        Ok(super::turn_of(now_ms, failures, next_ms, last_wait))
    }

    async fn login_hold(&self, key: &str, until_ms: i64, now_ms: i64) -> Result<()> {
        let key = key.to_string();
        self.call(move |c| {
            c.execute(&sqlite_sql(super::HOLD_SQL), params![key, until_ms, now_ms])
                .map(|_| ())
        })
        .await
    }

    async fn login_undo(&self, key: &str, next_ms: i64, start_ms: i64) -> Result<()> {
        let key = key.to_string();
        self.call(move |c| {
            c.execute(
                &sqlite_sql(super::UNDO_SQL),
                params![key, next_ms, start_ms],
            )
            .map(|_| ())
        })
        .await
    }

    async fn login_prune(&self, before_ms: i64) -> Result<()> {
        self.call(move |c| {
            c.execute(&sqlite_sql(super::PRUNE_SQL), params![before_ms])
                .map(|_| ())
        })
        .await
    }
}
