//! The job store: users, tokens and jobs, behind one trait, kept in an embedded SQLite file
//! (the default) or PostgreSQL through the session the registry opens (`sql.rs`, the one
//! implementation). The schema is created on open.
//! At most one non-dry-run job per target that is unfinished or still has a server working on
//! it (`owner` set: a cancelled job until its work has stopped) is enforced by a partial unique
//! index, so it holds across several servers sharing a PostgreSQL store; the job leases
//! (`owner`, `lease_until`, see `crate::lease`) and the login slow-down's counters
//! (`ferry_login_slowdown`) live here for the same reason.

mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, Result};

/// Statuses in which a job is not finished.
pub const UNFINISHED: [&str; 4] = ["pending", "validating", "running", "dry_run"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
}

/// A job as stored, without its sealed request body.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: String,
    pub admin_user_id: i64,
    pub kind: String,
    pub source_host: String,
    /// Where the job writes, without credentials: the one-job-per-target key.
    pub target_key: String,
    pub status: String,
    pub dry_run: bool,
    /// The stats map, as JSON text.
    pub stats: String,
    pub error_message: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The servers that joined the job to copy its chunks (`crate::helpers`), in join order.
    pub helpers: Vec<String>,
}

/// A server's hold on a job: who (`owner`, the server's id) and until when (unix ms).
#[derive(Debug, Clone)]
pub struct Lease {
    pub owner: String,
    pub until_ms: i64,
}

/// How a job ended, as [`Store::finish`] records it.
#[derive(Debug, Clone, Copy)]
pub struct End<'a> {
    pub status: &'a str,
    pub stats: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// A job [`Store::claim_expired`] took over.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: String,
    pub kind: String,
    pub dry_run: bool,
    /// Its status when it was taken over.
    pub status: String,
}

/// Why a job could not be inserted.
#[derive(Debug)]
pub enum InsertError {
    /// Another unfinished non-dry-run job writes to the same target.
    Conflict,
    Store(Error),
}

impl From<Error> for InsertError {
    fn from(e: Error) -> Self {
        InsertError::Store(e)
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Whether the store answers.
    async fn ping(&self) -> Result<()>;
    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>>;
    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<()>;

    async fn user_count(&self) -> Result<u64>;
    /// Creates a user; an error when the name is taken.
    async fn create_user(&self, username: &str, password_hash: &str, role: Role) -> Result<i64>;
    async fn user_by_name(&self, username: &str) -> Result<Option<User>>;

    async fn insert_token(&self, token_hash: &str, user_id: i64, expires_at: i64) -> Result<()>;
    /// The user of a token that exists, is not revoked and expires after `now`.
    async fn token_user(&self, token_hash: &str, now: i64) -> Result<Option<User>>;
    /// Revokes the tokens of one user (by name) or of everyone; returns how many.
    async fn revoke_tokens(&self, username: Option<&str>) -> Result<u64>;

    /// Inserts a job leased to `lease.owner` (the server that runs it) until `lease.until_ms`.
    async fn insert_job(
        &self,
        job: &JobRecord,
        sealed_body: &[u8],
        lease: &Lease,
    ) -> Result<(), InsertError>;
    async fn job(&self, id: &str) -> Result<Option<JobRecord>>;
    async fn job_body(&self, id: &str) -> Result<Option<Vec<u8>>>;
    /// A page of jobs, newest first, and the total count.
    async fn jobs(&self, start: u64, count: u64) -> Result<(Vec<JobRecord>, u64)>;
    /// Moves an unfinished job that `owner` holds to `status` (a no-op, returning false, once
    /// it is finished or another server took it over).
    async fn advance(
        &self,
        id: &str,
        owner: &str,
        status: &str,
        now: &str,
        started: bool,
    ) -> Result<bool>;
    /// Renews `lease` on a job its owner holds, storing `stats` when given. Returns the job's
    /// status (`cancelled` when any server cancelled it), or `None` when the owner no longer
    /// holds it (its lease expired and another server took it over).
    async fn renew(
        &self,
        id: &str,
        lease: &Lease,
        stats: Option<&str>,
        now: &str,
    ) -> Result<Option<String>>;
    /// Records the end of a job that `owner` holds and releases it (a no-op, returning false,
    /// when another server took it over); a job already cancelled stays cancelled.
    async fn finish(&self, id: &str, owner: &str, end: &End<'_>, now: &str) -> Result<bool>;
    /// Cancels an unfinished job; false when it had already finished. The server running it
    /// sees the status at its next renewal and stops the work.
    async fn cancel(&self, id: &str, now: &str) -> Result<bool>;
    /// Takes over the unfinished jobs whose lease expired before `now_ms` (or that have no
    /// owner: left by a ferry without leases), one atomic update per job so two servers never
    /// both win one, and releases the finished jobs whose owner died before it could. Returns
    /// the jobs now leased to `lease.owner`.
    async fn claim_expired(&self, lease: &Lease, now_ms: i64, now: &str) -> Result<Vec<Claimed>>;
    /// Whether several servers can share this store (PostgreSQL), and so share a job's chunks.
    fn shared(&self) -> bool;
    /// Lets other servers join a running job that `owner` holds (its chunk ledger and tables
    /// exist); false when it no longer holds it or it is not running.
    async fn open_to_helpers(&self, id: &str, owner: &str) -> Result<bool>;
    /// The running jobs other servers may join: open to helpers, held by a live server other
    /// than `server` (lease not expired at `now_ms`), oldest first, with their helpers.
    async fn joinable(&self, server: &str, now_ms: i64) -> Result<Vec<(String, Vec<String>)>>;
    /// Records `server` as a helper of a running job; false when the job is no longer running.
    async fn add_helper(&self, id: &str, server: &str) -> Result<bool>;
    async fn status_counts(&self) -> Result<Vec<(String, u64)>>;

    /// A login slow-down key's next turn and last change (`next_at`, `updated_at`), if any: a
    /// read, so that attempts refused as busy write nothing.
    async fn login_peek(&self, key: &str) -> Result<Option<(i64, i64)>>;
    /// Takes the next turn of a login slow-down key (one atomic statement, see [`TURN_SQL`]).
    async fn login_turn(&self, key: &str, now_ms: i64, rule: &TurnRule) -> Result<Turn>;
    /// No turn of `key` starts before `until_ms` (a failure just happened).
    async fn login_hold(&self, key: &str, until_ms: i64, now_ms: i64) -> Result<()>;
    /// Gives back a turn ([`Turn::Go`]) that ended in a success: one failure fewer, and the
    /// key's next turn back to `start_ms` unless another attempt took a turn since.
    async fn login_undo(&self, key: &str, next_ms: i64, start_ms: i64) -> Result<()>;
    /// Forgets the keys with no change since before `before_ms`.
    async fn login_prune(&self, before_ms: i64) -> Result<()>;
}

/// The numbers a login slow-down turn is computed from (milliseconds).
#[derive(Debug, Clone, Copy)]
pub struct TurnRule {
    /// Failures of a key that cost no delay.
    pub free_failures: i64,
    /// The delay after the first failure beyond the free ones; it doubles with each further one.
    pub base_ms: i64,
    pub max_ms: i64,
    /// A key with no change for this long starts again from zero.
    pub forget_ms: i64,
    /// A turn further ahead than this is not taken: the attempt is [`Turn::Busy`].
    pub max_wait_ms: i64,
}

/// The answer of [`Store::login_turn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// The turn starts at `start_ms` (wait until then); the key now counts `failures` (this
    /// attempt included, as if it failed) and its next turn is at `next_ms`.
    Go {
        start_ms: i64,
        next_ms: i64,
        failures: i64,
    },
    /// The key's next turn is more than `max_wait_ms` away: nothing was recorded.
    Busy { retry_ms: i64 },
}

/// A key's next turn: `start = max(now, next_at)`; when that is within `max_wait`, the key
/// counts one failure more and its next turn moves to `start + delay(failures)`. Written once,
/// in PostgreSQL's spelling (translated for SQLite, as all the store's SQL), as one upsert, so concurrent
/// attempts (from any number of servers) each get a turn of their own: PostgreSQL locks the
/// row for the conflict update, SQLite writes one statement at a time. `last_wait` returns this
/// statement's result (negative: busy, retry in that many ms) since `RETURNING` only sees the
/// new row. Parameters: key, now, free failures, base, max, forget, max wait (all ms).
pub static TURN_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let fresh = "(t.updated_at < $2 - $6)";
    let f0 = format!("(CASE WHEN {fresh} THEN 0 ELSE t.failures END)");
    let n0 = format!("(CASE WHEN {fresh} THEN 0 ELSE t.next_at END)");
    let start = format!("GREATEST($2, {n0})");
    let busy = format!("({start} - $2 > $7)");
    // The shift is the doubling; 30 bounds it long after any sane maximum is reached.
    let delay = |f: &str| {
        format!(
            "(CASE WHEN {f} < $3 THEN 0 ELSE LEAST($5, $4 << CAST(LEAST({f} - $3, 30) AS INTEGER)) END)"
        )
    };
    format!(
        "INSERT INTO ferry_login_slowdown AS t (key, failures, next_at, updated_at, last_wait)
         VALUES ($1, 1, $2 + {first}, $2, 0)
         ON CONFLICT (key) DO UPDATE SET
             failures = CASE WHEN {busy} THEN t.failures ELSE {f0} + 1 END,
             next_at = CASE WHEN {busy} THEN t.next_at ELSE {start} + {next} END,
             updated_at = CASE WHEN {busy} THEN t.updated_at ELSE $2 END,
             last_wait = CASE WHEN {busy} THEN $2 - {start} ELSE {start} - $2 END
         RETURNING failures, next_at, last_wait",
        first = delay("1"),
        next = delay(&format!("({f0} + 1)")),
    )
});

pub const PEEK_SQL: &str = "SELECT next_at, updated_at FROM ferry_login_slowdown WHERE key = $1";
pub const HOLD_SQL: &str = "UPDATE ferry_login_slowdown SET next_at = GREATEST(next_at, $2), updated_at = $3 WHERE key = $1";
pub const UNDO_SQL: &str = "UPDATE ferry_login_slowdown SET failures = GREATEST(failures - 1, 0),
     next_at = CASE WHEN next_at = $2 THEN $3 ELSE next_at END WHERE key = $1";
pub const PRUNE_SQL: &str = "DELETE FROM ferry_login_slowdown WHERE updated_at < $1";

impl TurnRule {
    /// The answer [`TURN_SQL`] would give a key whose row [`Store::login_peek`] read, when it
    /// is busy; `None` when it would take a turn.
    pub fn busy(&self, now_ms: i64, peeked: Option<(i64, i64)>) -> Option<Turn> {
        let (next_at, updated_at) = peeked?;
        let fresh = updated_at < now_ms - self.forget_ms;
        (!fresh && next_at - now_ms > self.max_wait_ms).then_some(Turn::Busy {
            retry_ms: next_at - now_ms,
        })
    }
}

/// A [`TURN_SQL`] row (failures, next_at, last_wait) as a [`Turn`].
fn turn_of(now_ms: i64, failures: i64, next_ms: i64, last_wait: i64) -> Turn {
    if last_wait < 0 {
        Turn::Busy {
            retry_ms: -last_wait,
        }
    } else {
        Turn::Go {
            start_ms: now_ms + last_wait,
            next_ms,
            failures,
        }
    }
}

const STORE_URLS: &str = "--store must be sqlite://FILE or postgres://user@host/db";

/// Opens (and creates the schema of) the store a URL names, through the registry's session for
/// its backend.
///
/// # Errors
/// An unknown scheme, a backend the store has no schema for, or a store that cannot be opened.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.trim() == "sqlite://" {
        return Err(Error::new(
            "--store sqlite:// needs a file: sqlite://ferry.db or sqlite:///var/lib/ferry/ferry.db",
        ));
    }
    let locator =
        ferry::parse_locator(url).map_err(|e| Error::new(format!("{STORE_URLS} ({e})")))?;
    let (schema, upgrades) = schema(locator.backend()).ok_or_else(|| {
        Error::new(format!(
            "{STORE_URLS}: the job store cannot live in {}",
            locator.backend().label()
        ))
    })?;
    Ok(Arc::new(
        sql::SqlStore::open(locator, &schema, upgrades).await?,
    ))
}

/// The store's tables, the same in every backend but for the types, written as `{key}` (an
/// integer key the database assigns), `{int}` (64 bits), `{bool}` (and `{false}`), `{bytes}`.
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS ferry_meta (key TEXT PRIMARY KEY, value {bytes} NOT NULL);
CREATE TABLE IF NOT EXISTS ferry_users (
    id {key},
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ferry_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id {int} NOT NULL REFERENCES ferry_users(id),
    expires_at {int} NOT NULL,
    revoked {bool} NOT NULL DEFAULT {false}
);
CREATE TABLE IF NOT EXISTS ferry_jobs (
    id TEXT PRIMARY KEY,
    admin_user_id {int} NOT NULL,
    kind TEXT NOT NULL,
    source_host TEXT NOT NULL,
    target_key TEXT NOT NULL,
    status TEXT NOT NULL,
    dry_run {bool} NOT NULL,
    stats TEXT NOT NULL,
    error_message TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    sealed_body {bytes} NOT NULL
);
CREATE INDEX IF NOT EXISTS ferry_jobs_created ON ferry_jobs (created_at);
CREATE TABLE IF NOT EXISTS ferry_login_slowdown (
    key TEXT PRIMARY KEY,
    failures {int} NOT NULL,
    next_at {int} NOT NULL,
    updated_at {int} NOT NULL,
    last_wait {int} NOT NULL
);
CREATE INDEX IF NOT EXISTS ferry_login_slowdown_updated ON ferry_login_slowdown (updated_at);
";

/// A backend's names for the types of [`TABLES`].
struct Spelling {
    key: &'static str,
    int: &'static str,
    bool: &'static str,
    r#false: &'static str,
    bytes: &'static str,
}

impl Spelling {
    fn tables(&self) -> String {
        TABLES
            .replace("{key}", self.key)
            .replace("{int}", self.int)
            .replace("{bool}", self.bool)
            .replace("{false}", self.r#false)
            .replace("{bytes}", self.bytes)
    }
}

/// The store's schema in a backend's spelling, and the statements that upgrade a store made
/// by an earlier ferry, run one by one after it.
fn schema(backend: ferry::Backend) -> Option<(String, &'static [&'static str])> {
    match backend.id() {
        "sqlite" => Some((sqlite::SPELLING.tables(), &sqlite::UPGRADES)),
        // Two servers starting at once may race on CREATE ... IF NOT EXISTS: serialise. Its
        // upgrades are in the schema (ADD COLUMN IF NOT EXISTS), under the same lock.
        "postgres" => Some((
            format!(
                "SELECT pg_advisory_lock(7244711); {}{} SELECT pg_advisory_unlock(7244711);",
                postgres::SPELLING.tables(),
                postgres::UPGRADES
            ),
            &[],
        )),
        _ => None,
    }
}

/// Now, in unix milliseconds: lease times (the clock chunk claims use too).
pub use ferry_core::claims::now_ms;

/// Now, in the fixed-width UTC form the stores sort by.
pub fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1000;

    /// The real defaults (auth::SlowDown::default) in milliseconds.
    const DEFAULTS: TurnRule = TurnRule {
        free_failures: 3,
        base_ms: 500,
        max_ms: 8 * SECOND,
        forget_ms: 15 * 60 * SECOND,
        max_wait_ms: 16 * SECOND,
    };

    async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = open(&format!("sqlite://{}", path.display())).await.unwrap();
        (dir, store)
    }

    fn start(turn: Turn) -> i64 {
        match turn {
            Turn::Go { start_ms, .. } => start_ms,
            Turn::Busy { .. } => panic!("busy: {turn:?}"),
        }
    }

    #[tokio::test]
    async fn the_default_rule_allows_456_guesses_an_hour_per_key() {
        let (_dir, s) = store().await;
        // A client that comes back exactly at each turn, for an hour.
        let (mut now, mut turns) = (0, 0);
        let mut starts = Vec::new();
        while now <= 3600 * SECOND {
            let at = start(s.login_turn("k", now, &DEFAULTS).await.unwrap());
            assert!(at >= now);
            if at > 3600 * SECOND {
                break;
            }
            starts.push(at);
            turns += 1;
            now = at;
        }
        assert_eq!(
            &starts[..8],
            &[0, 0, 0, 500, 1500, 3500, 7500, 15500],
            "3 free, then 0.5, 1, 2, 4, 8 s"
        );
        assert!(starts.windows(2).skip(7).all(|w| w[1] - w[0] == 8 * SECOND));
        assert_eq!(turns, 456);
    }

    #[tokio::test]
    async fn simultaneous_attempts_get_spaced_turns_or_busy() {
        let (_dir, s) = store().await;
        let mut answers = Vec::new();
        for _ in 0..30 {
            answers.push(s.login_turn("k", 0, &DEFAULTS).await.unwrap());
        }
        let starts: Vec<i64> = answers[..8].iter().map(|t| start(*t)).collect();
        assert_eq!(starts, [0, 0, 0, 500, 1500, 3500, 7500, 15500]);
        // The next turn is 23.5 s away, past the 16 s a turn may wait: nothing recorded.
        assert!(
            answers[8..]
                .iter()
                .all(|t| *t == Turn::Busy { retry_ms: 23500 }),
            "{answers:?}"
        );
        // A success gives its turn back; a failure holds the key.
        let last = s.login_turn("k", 23500, &DEFAULTS).await.unwrap();
        assert_eq!(start(last), 23500);
        let Turn::Go {
            start_ms, next_ms, ..
        } = last
        else {
            unreachable!()
        };
        s.login_undo("k", next_ms, start_ms).await.unwrap();
        let again = s.login_turn("k", 23500, &DEFAULTS).await.unwrap();
        assert_eq!(last, again, "the undone turn is handed out again");
        s.login_hold("k", 60 * SECOND, 23500).await.unwrap();
        assert_eq!(
            s.login_turn("k", 30 * SECOND, &DEFAULTS).await.unwrap(),
            Turn::Busy {
                retry_ms: 30 * SECOND
            }
        );
        // The read-only check agrees.
        let peeked = s.login_peek("k").await.unwrap();
        assert_eq!(
            DEFAULTS.busy(30 * SECOND, peeked),
            Some(Turn::Busy {
                retry_ms: 30 * SECOND
            })
        );
        assert_eq!(DEFAULTS.busy(50 * SECOND, peeked), None);
        assert_eq!(DEFAULTS.busy(0, None), None);
        // Other keys are not affected; a key is forgotten after 15 minutes without a change.
        assert_eq!(
            start(s.login_turn("other", 100, &DEFAULTS).await.unwrap()),
            100
        );
        let later = 23500 + DEFAULTS.forget_ms + 1;
        match s.login_turn("k", later, &DEFAULTS).await.unwrap() {
            Turn::Go {
                start_ms, failures, ..
            } => assert_eq!((start_ms, failures), (later, 1)),
            busy => panic!("{busy:?}"),
        }
        s.login_prune(later).await.unwrap();
        assert_eq!(
            start(s.login_turn("other", later, &DEFAULTS).await.unwrap()),
            later
        );
    }
}
