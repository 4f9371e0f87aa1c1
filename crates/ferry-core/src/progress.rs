//! Typed progress events. The engine emits them; the CLI draws progress bars or log lines, and
//! the job server stores them as live job stats. Events never carry credentials.

/// One thing that happened during a run.
#[derive(Debug, Clone)]
pub enum Event {
    /// A phase began ("Reading the source schema", "Creating indexes", ...).
    Phase(String),
    /// A table's copy began; `rows` is the source row count.
    TableStarted {
        table: String,
        rows: u64,
    },
    /// Rows written (and failed) since the last event for this table.
    TableProgress {
        table: String,
        rows: u64,
        failed: u64,
        bytes: u64,
    },
    TableFinished {
        table: String,
        migrated: u64,
        failed: u64,
        elapsed_s: f64,
    },
    /// One attempt at one chunk of `table` ended: the rows and failures it reported in
    /// `TableProgress` were committed with the chunk (`kept`), or rolled back (a transient
    /// fault retried, another worker committed the chunk first, a stop).
    ChunkEnded {
        table: String,
        rows: u64,
        failed: u64,
        kept: bool,
    },
    /// A run sharing its chunks with other workers (`CopyOptions::claims`), about every
    /// second: the rows and failures of `table`'s chunks committed in the ledger by every
    /// worker but this run (other servers, earlier runs), so a live total is this run's own
    /// rows plus these, each committed chunk counted once.
    CommittedByOthers {
        table: String,
        rows: u64,
        failed: u64,
    },
    /// Verification of a table began (`rows` on the source side).
    VerifyStarted {
        table: String,
        rows: u64,
    },
    VerifyFinished {
        table: String,
        matched: bool,
    },
    Warning(String),
}

/// Receives events; must be cheap and must not block (it is called from the copy's hot path).
pub trait Observer: Send + Sync {
    fn event(&self, event: &Event);
}

/// Discards events.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _event: &Event) {}
}

/// Answers the one question a run may need to ask: may these non-empty tables be erased?
pub trait Confirm: Send + Sync {
    fn confirm_erase(&self, tables: &[String]) -> bool;
}

/// Always answers the same (`--yes`, or a server job with `force`).
pub struct Answer(pub bool);

impl Confirm for Answer {
    fn confirm_erase(&self, _tables: &[String]) -> bool {
        self.0
    }
}
