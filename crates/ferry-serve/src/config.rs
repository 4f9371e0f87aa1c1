//! How `ferry serve` runs: listen address, job store, master key, token lifetime, login
//! slow-down, job lease.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything the server needs to start; the CLI fills it from flags and environment.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// `sqlite://ferry.db`, `sqlite:///abs/path.db` or `postgres://…`.
    pub store: String,
    /// The master key file; `None` means `FERRY_MASTER_KEY`, else `ferry-master.key`.
    pub master_key_file: Option<PathBuf>,
    /// Lifetime of an access token, in seconds.
    pub token_ttl_s: u64,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Where profile imports (`peertube`) write: never taken from a request.
    pub targets: Targets,
    /// The failed-login slow-down (tests shorten its delays).
    pub login_slow_down: crate::auth::SlowDown,
    /// How long a running job's lease lasts without renewal: after a server dies, another
    /// server sharing the store takes its jobs over this long after its last renewal.
    pub job_lease: std::time::Duration,
}

/// The server's own destinations for profile imports (`--target-db`, `--media-target`).
#[derive(Clone, Default)]
pub struct Targets {
    /// The new platform's database (postgres://…).
    pub database: Option<String>,
    /// Where imported media files go (a ferry blobs locator).
    pub media: Option<String>,
}

impl std::fmt::Debug for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Both may hold credentials.
        f.debug_struct("Targets")
            .field("database", &self.database.as_ref().map(|_| "(set)"))
            .field("media", &self.media.as_ref().map(|_| "(set)"))
            .finish()
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            store: "sqlite://ferry.db".into(),
            master_key_file: None,
            token_ttl_s: 3600,
            body_limit: 256 * 1024,
            targets: Targets::default(),
            login_slow_down: crate::auth::SlowDown::default(),
            job_lease: crate::lease::DEFAULT_LEASE,
        }
    }
}

/// The default master key file when neither a file nor `FERRY_MASTER_KEY` is given.
pub const DEFAULT_KEY_FILE: &str = "ferry-master.key";
