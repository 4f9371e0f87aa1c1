//! SQLite's snapshot API (`sqlite3_snapshot_get`/`_open`/`_free`), written by hand because
//! rusqlite has no safe wrapper for it; the C code exists only when SQLite is compiled with
//! `SQLITE_ENABLE_SNAPSHOT` (set in the workspace's `.cargo/config.toml`).

use std::ffi::CStr;

use rusqlite::{Connection, ffi};

const MAIN: &CStr = c"main";

/// The snapshot a WAL read transaction sees; other connections join it with [`Self::join`].
/// It stays usable while some connection keeps a read transaction open on it (so no checkpoint
/// can overwrite the pages it needs).
pub struct WalSnapshot(*mut ffi::sqlite3_snapshot);

// SAFETY: a sqlite3_snapshot is an immutable record (WAL header fields) that SQLite only reads
// in sqlite3_snapshot_open and frees in sqlite3_snapshot_free; it refers to no connection, so it
// may be read from any thread and freed from any thread.
unsafe impl Send for WalSnapshot {}
// SAFETY: see above: shared use only ever reads it.
unsafe impl Sync for WalSnapshot {}

impl WalSnapshot {
    /// The snapshot of `conn`'s open read transaction (after `BEGIN` and a first read).
    /// Fails when the WAL holds no transaction yet (SQLite can then not name a snapshot).
    pub fn get(conn: &Connection) -> Result<Self, String> {
        let mut snapshot: *mut ffi::sqlite3_snapshot = std::ptr::null_mut();
        // SAFETY: the handle is a live connection used only by this thread for the call;
        // `snapshot` is a valid out-pointer; on success SQLite allocates the record, which this
        // value owns and frees in Drop.
        let rc = unsafe { ffi::sqlite3_snapshot_get(conn.handle(), MAIN.as_ptr(), &mut snapshot) };
        if rc != ffi::SQLITE_OK || snapshot.is_null() {
            return Err(format!("sqlite3_snapshot_get returned {rc}"));
        }
        Ok(Self(snapshot))
    }

    /// Starts `conn`'s read transaction on this snapshot: after `BEGIN`, before any read in
    /// that transaction, and after a first read before it (SQLite opens the WAL on a
    /// connection's first read and cannot move a connection without one to a snapshot).
    pub fn join(&self, conn: &Connection) -> Result<(), String> {
        // SAFETY: the handle is a live connection used only by this thread for the call; the
        // snapshot record is alive (owned by self) and SQLite only reads it.
        let rc = unsafe { ffi::sqlite3_snapshot_open(conn.handle(), MAIN.as_ptr(), self.0) };
        if rc != ffi::SQLITE_OK {
            return Err(format!("sqlite3_snapshot_open returned {rc}"));
        }
        Ok(())
    }
}

impl Drop for WalSnapshot {
    fn drop(&mut self) {
        // SAFETY: the record was allocated by sqlite3_snapshot_get and is freed exactly once.
        unsafe { ffi::sqlite3_snapshot_free(self.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `.cargo/config.toml` must reach the C build (a build without it would not even link).
    #[test]
    fn sqlite_is_built_with_the_snapshot_api() {
        let conn = Connection::open_in_memory().unwrap();
        let options: Vec<String> = conn
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "ENABLE_SNAPSHOT"),
            "{options:?}"
        );
    }

    /// A second connection joins the first one's snapshot, not the data committed since.
    #[test]
    fn a_joined_connection_sees_the_snapshot() {
        let (_dir, path, app) = crate::test_file(
            "w.db",
            "PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);",
        );
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap()
        };
        let first = Connection::open(&path).unwrap();
        first.execute_batch("BEGIN").unwrap();
        assert_eq!(count(&first), 1);
        let snapshot = WalSnapshot::get(&first).unwrap();
        app.execute_batch("INSERT INTO t VALUES (2)").unwrap();
        let second = Connection::open(&path).unwrap();
        assert_eq!(count(&second), 2);
        second.execute_batch("BEGIN").unwrap();
        snapshot.join(&second).unwrap();
        assert_eq!(count(&second), 1);
        assert_eq!(count(&app), 2);
    }
}
