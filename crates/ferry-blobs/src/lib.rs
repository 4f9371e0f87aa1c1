//! ferry blobs: copies and verifies the files an application's rows point at between storage
//! backends (Apache OpenDAL), with the file list from a listing or a SQL query. Entry points:
//! [`copy`] and [`verify`]; both return ferry's [`Report`] (one `stats`/`verify` entry per
//! manifest).

mod copy;
mod local;
pub mod manifest;
mod pool;
mod stamp;
pub mod store;
mod transfer;
mod verify;

use std::sync::Arc;

pub use copy::{copy, human_bytes};
pub use ferry_core::error::{Error, ErrorKind, Result};
pub use ferry_core::progress::Confirm;
pub use ferry_core::report::{Report, Status};
pub use manifest::Manifest;
pub use store::{Kind, Store};
use tokio_util::sync::CancellationToken;
pub use verify::verify;

/// What a run reports while it works; the CLI draws a progress bar, a server stores stats.
/// Events never carry credentials.
#[derive(Debug, Clone)]
pub enum BlobEvent {
    /// A phase began ("Listing the source", "Verifying").
    Phase(String),
    /// The manifest is known: this many files (bytes are added as files are looked at).
    Started {
        files: u64,
    },
    /// One file is done: copied (`moved` bytes), skipped, or failed.
    File {
        key: String,
        outcome: Outcome,
        size: u64,
        moved: u64,
    },
    /// Bytes moved so far for a file still in flight (large files).
    Bytes(u64),
    Warning(String),
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Copied,
    Skipped,
    Failed,
    /// Dry run: would be copied.
    WouldCopy,
    /// Verify: identical on both sides.
    Matched,
    /// Verify: missing at the target, different, or unreadable.
    Differs,
}

/// Receives events; must be cheap and must not block.
pub trait BlobObserver: Send + Sync {
    fn event(&self, event: &BlobEvent);
}

/// Discards events.
pub struct Quiet;

impl BlobObserver for Quiet {
    fn event(&self, _event: &BlobEvent) {}
}

/// How a run talks to its caller.
#[derive(Clone)]
pub struct Context {
    pub observer: Arc<dyn BlobObserver>,
    /// Asked before `--delete-extra` deletes anything.
    pub confirm: Arc<dyn Confirm>,
    pub cancel: CancellationToken,
}

impl Default for Context {
    fn default() -> Self {
        Self {
            observer: Arc::new(Quiet),
            confirm: Arc::new(ferry_core::progress::Answer(false)),
            cancel: CancellationToken::new(),
        }
    }
}

/// Options of a copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Parallel transfers; `None` sizes for the backends (see [`default_workers`]).
    pub workers: Option<usize>,
    pub dry_run: bool,
    /// Count and list failures and go on (the run still ends with exit code 1).
    pub ignore_errors: bool,
    /// Check each copied file: between local folders by reading both back; into S3 with a
    /// local source, by the server's CRC32C check of every part and the bytes sent hashed
    /// against the source's hash; otherwise by reading the object back.
    pub verify: bool,
    /// Read every copied object back and compare its hash, even where the server checks parts.
    pub read_back: bool,
    /// The name of the manifest in the report's `stats` (default `media`).
    pub name: String,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            workers: None,
            dry_run: false,
            ignore_errors: false,
            verify: true,
            read_back: false,
            name: "media".into(),
        }
    }
}

/// Options of a verification.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub workers: Option<usize>,
    /// Delete objects at the target that the manifest does not name (asks first).
    pub delete_extra: bool,
    pub name: String,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            workers: None,
            delete_extra: false,
            name: "media".into(),
        }
    }
}

/// Tells the observer how many `files` a run (copy or verify) goes through, and returns the
/// parallel transfers it uses: `wanted`, else [`default_workers`]; at least one.
pub(crate) fn start(
    ctx: &Context,
    files: usize,
    wanted: Option<usize>,
    source: &Store,
    target: &Store,
) -> usize {
    ctx.observer.event(&BlobEvent::Started {
        files: files as u64,
    });
    wanted
        .unwrap_or_else(|| default_workers(source, target))
        .max(1)
}

/// Parallel transfers by backend: local disks saturate with a few streams (more only add
/// file-system lock contention; measured on bench/blobs), object stores need many requests
/// in flight to hide per-request latency.
pub fn default_workers(source: &Store, target: &Store) -> usize {
    if source.kind() == Kind::Local && target.kind() == Kind::Local {
        4
    } else {
        32
    }
}
