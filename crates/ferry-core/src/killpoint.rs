//! Test-only kill points: `FERRY_TEST_KILL_AT=name` (or `name:n`, the n-th time the process
//! passes that point) makes the process send itself SIGKILL there, so the resume tests can
//! `kill -9` a copy at an exact moment of every phase (between a chunk's rows and its commit,
//! between a DDL statement and its ledger mark). Unset, a point costs one atomic load.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The point (and occurrence) named by `FERRY_TEST_KILL_AT`, read once.
fn wanted() -> Option<&'static (String, u64)> {
    static WANTED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    WANTED
        .get_or_init(|| {
            let text = std::env::var("FERRY_TEST_KILL_AT").ok()?;
            let (name, n) = match text.rsplit_once(':') {
                Some((name, n)) => (name.to_string(), n.parse().ok()?),
                None => (text, 1),
            };
            Some((name, n))
        })
        .as_ref()
}

/// Kills this process with SIGKILL (a real `kill -9`: no destructor, no rollback sent) when
/// `FERRY_TEST_KILL_AT` names this point and occurrence.
pub fn point(name: &str) {
    let Some((want, nth)) = wanted() else {
        return;
    };
    if want != name {
        return;
    }
    static SEEN: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    let count = {
        let mut seen = SEEN
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let c = seen.entry(name.to_string()).or_default();
        *c += 1;
        *c
    };
    if count != *nth {
        return;
    }
    eprintln!("FERRY_TEST_KILL_AT: killing this process at {name}:{count}");
    // SAFETY: kill(2) on this process's own id with a valid signal number; no memory is shared.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // The signal is delivered at once; nothing after this point may run.
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
