//! The crate's error: one line a person can act on. Never carries a credential.

/// A start-up, store or crypto failure, as one sentence.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Self(format!("job store (SQLite): {e}"))
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Self(format!("job store (PostgreSQL): {}", pg_message(&e)))
    }
}

/// The server's own message (tokio-postgres' `Display` says only "db error" for those), else
/// the error with its cause.
pub(crate) fn pg_message(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => db.message().to_string(),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
