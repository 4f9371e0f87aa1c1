//! Test support shared by ferry's crates, written once: throwaway databases on the shared
//! PostgreSQL and MySQL servers, private servers a test starts with its own settings (TLS,
//! passwords), an S3 server, SQLite fixtures, the `ferry serve` launcher, free ports, polling,
//! and test certificates. Nothing is mocked; a missing server or tool fails the test loudly with
//! what to install or set, never a silent pass.

pub mod certs;
pub mod files;
pub mod job;
pub mod mysql;
pub mod peertube;
pub mod pg;
pub mod ports;
pub mod run;
pub mod s3;
pub mod serve;
pub mod sqlite;

pub use ports::free_port;

/// Everything a test usually needs, for one glob re-export in a crate's `tests/common`: a glob
/// of this is used by every test binary, where a glob per module would be unused in some.
pub mod prelude {
    pub use crate::files::*;
    pub use crate::job::*;
    pub use crate::mysql::*;
    pub use crate::peertube::*;
    pub use crate::pg::*;
    pub use crate::run::*;
    pub use crate::s3::*;
    pub use crate::sqlite::*;
    pub use crate::{Throwaway, eventually, free_port, unique};
}

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A throwaway database on a shared server ([`pg::TestDb`], [`mysql::MyDb`]): what a test does
/// with either kind, written once.
pub trait Throwaway: Sized + Send + Sync {
    /// A fresh, empty database.
    fn create() -> impl std::future::Future<Output = Self> + Send;

    /// The database as ferry's source or target.
    fn locator(&self) -> ferry_core::Locator;

    /// Runs `sql` (one or more statements, no parameters) on a connection of its own; panics
    /// with the SQL when it fails.
    fn execute(&self, sql: &str) -> impl std::future::Future<Output = ()> + Send;

    /// A fresh database filled by `sql` (one or more statements): a test's source.
    fn with(sql: &str) -> impl std::future::Future<Output = Self> + Send {
        async move {
            let db = Self::create().await;
            db.execute(sql).await;
            db
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `{prefix}_{pid}_{n}_{nanos}`: a name no other test, test binary or earlier run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The blocking twin of [`eventually`]: polls `check` every `every` until it is true or `within`
/// has passed; returns whether it became true.
pub fn poll_until(within: Duration, every: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(every);
    }
    false
}

/// Runs `work` to completion on a fresh current-thread runtime in its own OS thread: usable from
/// `Drop`, which may run inside a test's runtime where blocking on another one would panic.
pub(crate) fn on_own_runtime<F>(work: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(work());
        }
    })
    .join();
}

/// The first of `names` found in PATH, in `dirs`, or in the usual system directories.
pub fn find_bin(names: &[&str], dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut search: Vec<PathBuf> = std::env::split_paths(&path).collect();
    search.extend(dirs.iter().cloned());
    search.extend(["/usr/sbin", "/usr/local/bin", "/usr/bin"].map(PathBuf::from));
    names
        .iter()
        .flat_map(|n| search.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Runs `cmd`, panicking with its output when it fails.
pub fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `contents` to `path` with mode 0600 (servers refuse key files others can read).
pub(crate) fn write_private(path: &Path, contents: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
