//! The one error type of ferry's libraries: a kind (which decides the exit code) and a sentence
//! that says what is wrong and what to do.

use std::fmt;

/// What went wrong, coarsely: enough to choose an exit code and to decide whether to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad usage or bad input: unknown scheme, missing file, unreachable server, wrong password,
    /// refused non-empty target. Exit code 2.
    Input,
    /// The run started but failed: a rejected row, a lost connection, a failed statement. Exit 1.
    Run,
    /// The run was cancelled by the operator. Exit 1.
    Cancelled,
    /// A value of a table whose types were chosen from a sample does not fit them: the engine
    /// profiles that table in full and copies it again (`widen.rs`). Exit 1 if it ever escapes.
    Widen,
}

/// A ferry error. `Display` prints one line meant for an operator; it never holds a password.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// Set by the backend that raised it: a fault that a retry after a pause, on a new
    /// connection, may not meet again (a connection reset, a server restart, a serialization
    /// failure, a deadlock). See `crate::retry`.
    transient: bool,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn input(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Input,
            message: message.into(),
            transient: false,
        }
    }

    pub fn run(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Run,
            message: message.into(),
            transient: false,
        }
    }

    pub fn widen(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Widen,
            message: message.into(),
            transient: false,
        }
    }

    pub fn cancelled() -> Self {
        Self {
            kind: ErrorKind::Cancelled,
            message: "cancelled by the operator".into(),
            transient: false,
        }
    }

    /// Marks the error transient when `transient` (see [`Error::is_transient`]).
    #[must_use]
    pub fn transient_if(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
    }

    /// Whether the backend that raised it classified it transient: the unit of work that
    /// failed may be retried on a new connection (`crate::retry`).
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with where it happened ("table \"users\": ...").
    #[must_use]
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// The process exit code this error stands for (see ARCHITECTURE.md, "Exit codes").
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Input => 2,
            ErrorKind::Run | ErrorKind::Cancelled | ErrorKind::Widen => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
