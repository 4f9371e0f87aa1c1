//! The job store: users, tokens and jobs, behind one trait with two implementations (an
//! embedded SQLite file, the default, and PostgreSQL). The schema is created on open.
//! At most one unfinished non-dry-run job per target is enforced by a partial unique index, so
//! it holds across several servers sharing a PostgreSQL store.

mod postgres;
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

    async fn insert_job(&self, job: &JobRecord, sealed_body: &[u8]) -> Result<(), InsertError>;
    async fn job(&self, id: &str) -> Result<Option<JobRecord>>;
    async fn job_body(&self, id: &str) -> Result<Option<Vec<u8>>>;
    /// A page of jobs, newest first, and the total count.
    async fn jobs(&self, start: u64, count: u64) -> Result<(Vec<JobRecord>, u64)>;
    /// Moves an unfinished job to `status` (a no-op, returning false, once it is finished).
    async fn advance(&self, id: &str, status: &str, now: &str, started: bool) -> Result<bool>;
    async fn set_stats(&self, id: &str, stats: &str, now: &str) -> Result<()>;
    /// Records the end of a job; a job already cancelled stays cancelled.
    async fn finish(
        &self,
        id: &str,
        status: &str,
        stats: Option<&str>,
        error: Option<&str>,
        now: &str,
    ) -> Result<()>;
    /// Cancels an unfinished job; false when it had already finished.
    async fn cancel(&self, id: &str, now: &str) -> Result<bool>;
    /// Marks every unfinished job failed with `reason` (a server died under them).
    async fn fail_unfinished(&self, reason: &str, now: &str) -> Result<u64>;
    async fn status_counts(&self) -> Result<Vec<(String, u64)>>;
}

/// Opens (and creates the schema of) the store a URL names.
///
/// # Errors
/// An unknown scheme, or a store that cannot be opened.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(Error::new(
                "--store sqlite:// needs a file: sqlite://ferry.db or sqlite:///var/lib/ferry/ferry.db",
            ));
        }
        return Ok(Arc::new(sqlite::SqliteStore::open(path).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PostgresStore::open(url).await?));
    }
    Err(Error::new(
        "--store must be sqlite://FILE or postgres://user@host/db",
    ))
}

/// Now, in the fixed-width UTC form the stores sort by.
pub fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
