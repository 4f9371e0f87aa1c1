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

pub type Result<T, E = Error> = std::result::Result<T, E>;
