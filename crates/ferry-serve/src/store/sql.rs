//! The one `Store` implementation: the store's SQL, written once in PostgreSQL's spelling, run
//! through the [`SqlSession`] the registry opens for the store's locator (the session speaks
//! its database's spelling; `sqlite.rs` and `postgres.rs` own each schema). This crate holds no
//! database client and opens no backend crate directly.

use std::sync::Arc;

use async_trait::async_trait;
use ferry::{Locator, SqlError, SqlSession};
use ferry_core::value::Value;

use super::{Claimed, End, InsertError, JobRecord, Lease, Role, Store, Turn, TurnRule, User};
use crate::error::{Error, Result};

const JOB_COLUMNS: &str = "id, admin_user_id, kind, source_host, target_key, status, dry_run, stats, error_message, created_at, updated_at, started_at, finished_at, helpers";
/// The columns [`SqlStore::insert_job`] writes: all but `helpers`, which starts empty.
const INSERT_COLUMNS: &str = "id, admin_user_id, kind, source_host, target_key, status, dry_run, stats, error_message, created_at, updated_at, started_at, finished_at";

/// A job nobody has finished.
const UNFINISHED_SQL: &str = "status IN ('pending', 'validating', 'running', 'dry_run')";
/// A job whose lease ran out before `$1` (unix ms), or that has no owner: a ferry before leases
/// left it, or its owner died between inserting it and leasing it (it never does both apart).
const EXPIRED_SQL: &str = "(owner IS NULL OR coalesce(lease_until, 0) < $1)";

pub struct SqlStore {
    /// Where the store lives, to reopen its session.
    locator: Locator,
    session: tokio::sync::Mutex<Arc<dyn SqlSession>>,
}

/// A session on the store's database, through the registry (TLS, credentials files and, for a
/// file, its private mode, as the backend opens it).
async fn connect(locator: &Locator) -> Result<Arc<dyn SqlSession>> {
    ferry::open_session(locator).await.map_err(|e| {
        Error::new(
            e.context(format!("the job store {}", locator.redacted()))
                .to_string(),
        )
    })
}

fn failed(e: SqlError) -> Error {
    Error::new(format!("job store: {e}"))
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn opt_text(s: Option<&str>) -> Value {
    s.map_or(Value::Null, text)
}

fn unexpected(what: &str, v: &Value) -> Error {
    Error::new(format!(
        "job store: {what} expected, found {v:?}: is this a ferry job store?"
    ))
}

fn get_text(v: &Value) -> Result<String> {
    match v {
        Value::Text(s) => Ok(s.clone()),
        other => Err(unexpected("text", other)),
    }
}

fn get_opt_text(v: &Value) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        other => get_text(other).map(Some),
    }
}

fn get_int(v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(unexpected("an integer", other)),
    }
}

/// A boolean column: PostgreSQL's `boolean`, SQLite's 0/1.
fn get_flag(v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Int(i) => Ok(*i != 0),
        other => Err(unexpected("a boolean", other)),
    }
}

fn get_bytes(v: &Value) -> Result<Vec<u8>> {
    match v {
        Value::Bytes(b) => Ok(b.clone()),
        other => Err(unexpected("bytes", other)),
    }
}

fn cell(row: &[Value], i: usize) -> Result<&Value> {
    row.get(i)
        .ok_or_else(|| Error::new(format!("job store: a row has no column {i}")))
}

fn user_row(r: &[Value]) -> Result<User> {
    Ok(User {
        id: get_int(cell(r, 0)?)?,
        username: get_text(cell(r, 1)?)?,
        password_hash: get_text(cell(r, 2)?)?,
        role: Role::parse(&get_text(cell(r, 3)?)?).unwrap_or(Role::User),
    })
}

fn job_row(r: &[Value]) -> Result<JobRecord> {
    Ok(JobRecord {
        id: get_text(cell(r, 0)?)?,
        admin_user_id: get_int(cell(r, 1)?)?,
        kind: get_text(cell(r, 2)?)?,
        source_host: get_text(cell(r, 3)?)?,
        target_key: get_text(cell(r, 4)?)?,
        status: get_text(cell(r, 5)?)?,
        dry_run: get_flag(cell(r, 6)?)?,
        stats: get_text(cell(r, 7)?)?,
        error_message: get_opt_text(cell(r, 8)?)?,
        created_at: get_text(cell(r, 9)?)?,
        updated_at: get_text(cell(r, 10)?)?,
        started_at: get_opt_text(cell(r, 11)?)?,
        finished_at: get_opt_text(cell(r, 12)?)?,
        helpers: helper_list(get_opt_text(cell(r, 13)?)?.as_deref()),
    })
}

/// The `helpers` column: server ids separated by commas (a server id has none).
fn helper_list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl SqlStore {
    /// Opens the store and creates its schema (`schema`, in the database's spelling, runs once,
    /// on the first session), then runs `upgrades` one by one: one that finds its column
    /// already there ("duplicate column", SQLite's answer to a repeated `ADD COLUMN`) is done.
    pub async fn open(locator: Locator, schema: &str, upgrades: &[&str]) -> Result<Self> {
        let session = connect(&locator).await?;
        session.batch(schema).await.map_err(failed)?;
        for statement in upgrades {
            match session.execute(statement, &[]).await {
                Ok(_) => {}
                Err(e) if e.to_string().contains("duplicate column") => {}
                Err(e) => return Err(failed(e)),
            }
        }
        Ok(Self {
            locator,
            session: tokio::sync::Mutex::new(session),
        })
    }

    /// A live session, reconnecting when the connection dropped.
    async fn session(&self) -> Result<Arc<dyn SqlSession>> {
        let mut guard = self.session.lock().await;
        if guard.is_closed() {
            *guard = connect(&self.locator).await?;
        }
        Ok(guard.clone())
    }

    async fn rows(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>> {
        let s = self.session().await?;
        s.query(sql, params).await.map_err(failed)
    }

    async fn row(&self, sql: &str, params: &[Value]) -> Result<Option<Vec<Value>>> {
        Ok(self.rows(sql, params).await?.into_iter().next())
    }

    async fn count(&self, sql: &str, params: &[Value]) -> Result<u64> {
        match self.row(sql, params).await? {
            Some(r) => Ok(get_int(cell(&r, 0)?)? as u64),
            None => Err(Error::new("job store: a count returned no row")),
        }
    }

    async fn run(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let s = self.session().await?;
        s.execute(sql, params).await.map_err(failed)
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        self.rows("SELECT 1", &[]).await.map(|_| ())
    }

    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.row("SELECT value FROM ferry_meta WHERE key = $1", &[text(key)])
            .await?
            .map(|r| get_bytes(cell(&r, 0)?))
            .transpose()
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        self.run(
            "INSERT INTO ferry_meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[text(key), Value::Bytes(value.to_vec())],
        )
        .await
        .map(|_| ())
    }

    async fn user_count(&self) -> Result<u64> {
        self.count("SELECT count(*) FROM ferry_users", &[]).await
    }

    async fn create_user(&self, username: &str, password_hash: &str, role: Role) -> Result<i64> {
        let s = self.session().await?;
        let rows = s
            .query(
                "INSERT INTO ferry_users (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                &[text(username), text(password_hash), text(role.as_str()), text(&super::now())],
            )
            .await
            .map_err(|e| match e {
                SqlError::UniqueViolation(_) => {
                    Error::new(format!("a user named {username} already exists"))
                }
                e => failed(e),
            })?;
        match rows.first() {
            Some(r) => get_int(cell(r, 0)?),
            None => Err(Error::new("job store: creating a user returned no id")),
        }
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        self.row(
            "SELECT id, username, password_hash, role FROM ferry_users WHERE username = $1",
            &[text(username)],
        )
        .await?
        .map(|r| user_row(&r))
        .transpose()
    }

    async fn insert_token(&self, token_hash: &str, user_id: i64, expires_at: i64) -> Result<()> {
        self.run(
            "INSERT INTO ferry_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
            &[
                text(token_hash),
                Value::Int(user_id),
                Value::Int(expires_at),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn token_user(&self, token_hash: &str, now: i64) -> Result<Option<User>> {
        self.row(
            "SELECT u.id, u.username, u.password_hash, u.role FROM ferry_tokens t
             JOIN ferry_users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND NOT t.revoked AND t.expires_at > $2",
            &[text(token_hash), Value::Int(now)],
        )
        .await?
        .map(|r| user_row(&r))
        .transpose()
    }

    async fn revoke_tokens(&self, username: Option<&str>) -> Result<u64> {
        match username {
            Some(u) => {
                self.run(
                    "UPDATE ferry_tokens SET revoked = true WHERE NOT revoked AND user_id IN (SELECT id FROM ferry_users WHERE username = $1)",
                    &[text(u)],
                )
                .await
            }
            None => {
                self.run(
                    "UPDATE ferry_tokens SET revoked = true WHERE NOT revoked",
                    &[],
                )
                .await
            }
        }
    }

    async fn insert_job(
        &self,
        j: &JobRecord,
        sealed_body: &[u8],
        lease: &Lease,
    ) -> Result<(), InsertError> {
        let result = self
            .session()
            .await?
            .execute(
                &format!("INSERT INTO ferry_jobs ({INSERT_COLUMNS}, sealed_body, owner, lease_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"),
                &[
                    text(&j.id),
                    Value::Int(j.admin_user_id),
                    text(&j.kind),
                    text(&j.source_host),
                    text(&j.target_key),
                    text(&j.status),
                    Value::Bool(j.dry_run),
                    text(&j.stats),
                    opt_text(j.error_message.as_deref()),
                    text(&j.created_at),
                    text(&j.updated_at),
                    opt_text(j.started_at.as_deref()),
                    opt_text(j.finished_at.as_deref()),
                    Value::Bytes(sealed_body.to_vec()),
                    text(&lease.owner),
                    Value::Int(lease.until_ms),
                ],
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SqlError::UniqueViolation(_)) => Err(InsertError::Conflict),
            Err(e) => Err(InsertError::Store(failed(e))),
        }
    }

    async fn job(&self, id: &str) -> Result<Option<JobRecord>> {
        self.row(
            &format!("SELECT {JOB_COLUMNS} FROM ferry_jobs WHERE id = $1"),
            &[text(id)],
        )
        .await?
        .map(|r| job_row(&r))
        .transpose()
    }

    async fn job_body(&self, id: &str) -> Result<Option<Vec<u8>>> {
        self.row(
            "SELECT sealed_body FROM ferry_jobs WHERE id = $1",
            &[text(id)],
        )
        .await?
        .map(|r| get_bytes(cell(&r, 0)?))
        .transpose()
    }

    async fn jobs(&self, start: u64, count: u64) -> Result<(Vec<JobRecord>, u64)> {
        let total = self.count("SELECT count(*) FROM ferry_jobs", &[]).await?;
        let rows = self
            .rows(
                &format!("SELECT {JOB_COLUMNS} FROM ferry_jobs ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"),
                &[Value::Int(count as i64), Value::Int(start as i64)],
            )
            .await?;
        let jobs = rows.iter().map(|r| job_row(r)).collect::<Result<_>>()?;
        Ok((jobs, total))
    }

    async fn advance(
        &self,
        id: &str,
        owner: &str,
        status: &str,
        now: &str,
        started: bool,
    ) -> Result<bool> {
        let n = self
            .run(
                "UPDATE ferry_jobs SET status = $3, updated_at = $4,
                     started_at = CASE WHEN $5 THEN coalesce(started_at, $4) ELSE started_at END
                 WHERE id = $1 AND owner = $2
                     AND status IN ('pending', 'validating', 'running', 'dry_run')",
                &[
                    text(id),
                    text(owner),
                    text(status),
                    text(now),
                    Value::Bool(started),
                ],
            )
            .await?;
        Ok(n > 0)
    }

    async fn renew(
        &self,
        id: &str,
        lease: &Lease,
        stats: Option<&str>,
        now: &str,
    ) -> Result<Option<String>> {
        self.row(
            "UPDATE ferry_jobs SET lease_until = $3, stats = coalesce($4, stats),
                 updated_at = CASE WHEN $4 IS NULL THEN updated_at ELSE $5 END
             WHERE id = $1 AND owner = $2
             RETURNING status",
            &[
                text(id),
                text(&lease.owner),
                Value::Int(lease.until_ms),
                opt_text(stats),
                text(now),
            ],
        )
        .await?
        .map(|r| get_text(cell(&r, 0)?))
        .transpose()
    }

    async fn finish(&self, id: &str, owner: &str, end: &End<'_>, now: &str) -> Result<bool> {
        let n = self
            .run(
                "UPDATE ferry_jobs SET
                     status = CASE WHEN status = 'cancelled' THEN status ELSE $3 END,
                     stats = coalesce($4, stats),
                     error_message = CASE WHEN status = 'cancelled' THEN coalesce(error_message, $5) ELSE $5 END,
                     updated_at = $6, finished_at = coalesce(finished_at, $6),
                     owner = NULL, lease_until = NULL
                 WHERE id = $1 AND owner = $2",
                &[
                    text(id),
                    text(owner),
                    text(end.status),
                    opt_text(end.stats),
                    opt_text(end.error),
                    text(now),
                ],
            )
            .await?;
        Ok(n > 0)
    }

    async fn cancel(&self, id: &str, now: &str) -> Result<bool> {
        let n = self
            .run(
                "UPDATE ferry_jobs SET status = 'cancelled', updated_at = $2, finished_at = $2
                 WHERE id = $1 AND status IN ('pending', 'validating', 'running', 'dry_run')",
                &[text(id), text(now)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn claim_expired(&self, lease: &Lease, now_ms: i64, now: &str) -> Result<Vec<Claimed>> {
        // A finished job whose owner died before releasing it (cancelled under it) holds its
        // target's one-writer slot: nothing runs it any more.
        self.run(
            "UPDATE ferry_jobs SET owner = NULL, lease_until = NULL
             WHERE owner IS NOT NULL AND coalesce(lease_until, 0) < $1
                 AND status NOT IN ('pending', 'validating', 'running', 'dry_run')",
            &[Value::Int(now_ms)],
        )
        .await?;
        let expired = self
            .rows(
                &format!(
                    "SELECT id FROM ferry_jobs WHERE {UNFINISHED_SQL} AND {EXPIRED_SQL}
                     ORDER BY created_at"
                ),
                &[Value::Int(now_ms)],
            )
            .await?;
        let mut claimed = Vec::new();
        for row in &expired {
            let id = get_text(cell(row, 0)?)?;
            // The same test again, in the update itself: of several servers claiming at once,
            // the row lock (PostgreSQL) or the single writer (SQLite) lets one win.
            let won = self
                .row(
                    &format!(
                        "UPDATE ferry_jobs SET owner = $2, lease_until = $3, updated_at = $4
                         WHERE id = $5 AND {UNFINISHED_SQL} AND {EXPIRED_SQL}
                         RETURNING kind, dry_run, status"
                    ),
                    &[
                        Value::Int(now_ms),
                        text(&lease.owner),
                        Value::Int(lease.until_ms),
                        text(now),
                        text(&id),
                    ],
                )
                .await?;
            if let Some(r) = won {
                claimed.push(Claimed {
                    id,
                    kind: get_text(cell(&r, 0)?)?,
                    dry_run: get_flag(cell(&r, 1)?)?,
                    status: get_text(cell(&r, 2)?)?,
                });
            }
        }
        Ok(claimed)
    }

    fn shared(&self) -> bool {
        self.locator.backend().id() == "postgres"
    }

    async fn open_to_helpers(&self, id: &str, owner: &str) -> Result<bool> {
        let n = self
            .run(
                "UPDATE ferry_jobs SET joinable = true
                 WHERE id = $1 AND owner = $2 AND status = 'running' AND NOT dry_run",
                &[text(id), text(owner)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn joinable(&self, server: &str, now_ms: i64) -> Result<Vec<(String, Vec<String>)>> {
        self.rows(
            "SELECT id, helpers FROM ferry_jobs
             WHERE joinable AND status = 'running' AND owner IS NOT NULL AND owner <> $1
                 AND coalesce(lease_until, 0) >= $2
             ORDER BY created_at",
            &[text(server), Value::Int(now_ms)],
        )
        .await?
        .iter()
        .map(|r| {
            Ok((
                get_text(cell(r, 0)?)?,
                helper_list(get_opt_text(cell(r, 1)?)?.as_deref()),
            ))
        })
        .collect()
    }

    async fn add_helper(&self, id: &str, server: &str) -> Result<bool> {
        let n = self
            .run(
                "UPDATE ferry_jobs SET helpers = coalesce(helpers || ',', '') || $2
                 WHERE id = $1 AND status = 'running'",
                &[text(id), text(server)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn status_counts(&self) -> Result<Vec<(String, u64)>> {
        self.rows(
            "SELECT status, count(*) FROM ferry_jobs GROUP BY status",
            &[],
        )
        .await?
        .iter()
        .map(|r| Ok((get_text(cell(r, 0)?)?, get_int(cell(r, 1)?)? as u64)))
        .collect()
    }

    async fn login_peek(&self, key: &str) -> Result<Option<(i64, i64)>> {
        self.row(super::PEEK_SQL, &[text(key)])
            .await?
            .map(|r| Ok((get_int(cell(&r, 0)?)?, get_int(cell(&r, 1)?)?)))
            .transpose()
    }

    async fn login_turn(&self, key: &str, now_ms: i64, rule: &TurnRule) -> Result<Turn> {
        let r = self
            .row(
                &super::TURN_SQL,
                &[
                    text(key),
                    Value::Int(now_ms),
                    Value::Int(rule.free_failures),
                    Value::Int(rule.base_ms),
                    Value::Int(rule.max_ms),
                    Value::Int(rule.forget_ms),
                    Value::Int(rule.max_wait_ms),
                ],
            )
            .await?
            .ok_or_else(|| Error::new("job store: the login turn returned no row"))?;
        Ok(super::turn_of(
            now_ms,
            get_int(cell(&r, 0)?)?,
            get_int(cell(&r, 1)?)?,
            get_int(cell(&r, 2)?)?,
        ))
    }

    async fn login_hold(&self, key: &str, until_ms: i64, now_ms: i64) -> Result<()> {
        self.run(
            super::HOLD_SQL,
            &[text(key), Value::Int(until_ms), Value::Int(now_ms)],
        )
        .await
        .map(|_| ())
    }

    async fn login_undo(&self, key: &str, next_ms: i64, start_ms: i64) -> Result<()> {
        self.run(
            super::UNDO_SQL,
            &[text(key), Value::Int(next_ms), Value::Int(start_ms)],
        )
        .await
        .map(|_| ())
    }

    async fn login_prune(&self, before_ms: i64) -> Result<()> {
        self.run(super::PRUNE_SQL, &[Value::Int(before_ms)])
            .await
            .map(|_| ())
    }
}
