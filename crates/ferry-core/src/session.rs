//! `SqlSession`: a read-write connection that runs a caller's own SQL with parameters, for a
//! small store kept in a database (the job server's users, tokens and jobs). A backend opens it
//! with its own connect code (TLS, credentials files); the caller never touches a driver.

use async_trait::async_trait;

use crate::error::Error;
use crate::locator::Backend;
use crate::value::Value;

/// Why a statement of a session failed.
#[derive(Debug)]
pub enum SqlError {
    /// A unique or primary key refused the row: the caller usually has a sentence of its own.
    UniqueViolation(String),
    Failed(Error),
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlError::UniqueViolation(message) => f.write_str(message),
            SqlError::Failed(e) => e.fmt(f),
        }
    }
}

impl From<Error> for SqlError {
    fn from(e: Error) -> Self {
        SqlError::Failed(e)
    }
}

impl From<SqlError> for Error {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::UniqueViolation(message) => Error::run(message),
            SqlError::Failed(e) => e,
        }
    }
}

/// A read-write session. Parameters are written `$1`, `$2`… (PostgreSQL's spelling; SQLite reads
/// them as `?1`, `?2`…) and passed as [`Value`]s: `Null`, `Bool`, `Int`, `Float`, `Text` and
/// `Bytes`. A `Null` parameter is sent as text. Rows come back as `Value`s of the same kinds
/// (a SQLite boolean is an `Int`).
#[async_trait]
pub trait SqlSession: Send + Sync {
    fn backend(&self) -> Backend;

    /// Whether the connection was lost (the caller opens a new session).
    fn is_closed(&self) -> bool {
        false
    }

    /// Runs statements without parameters, separated by `;` (a schema).
    ///
    /// # Errors
    /// The first statement that fails.
    async fn batch(&self, sql: &str) -> Result<(), SqlError>;

    /// Runs one statement; returns how many rows it changed.
    ///
    /// # Errors
    /// When the statement fails.
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, SqlError>;

    /// Runs one query; returns every row.
    ///
    /// # Errors
    /// When the query fails or returns a type outside the kinds above.
    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError>;
}
