//! One consistent picture of a SQLite source for the source's whole life: every connection
//! ferry reads it with (schema, profiling scan, reads, orphan checks, verify) sits in a read
//! transaction on the same data, held until the source is dropped. How depends on the file:
//!
//! - WAL mode, `-wal` present (the application may be writing): the first connection's read
//!   transaction names a snapshot (`sqlite3_snapshot_get`) that every further connection joins
//!   (`sqlite3_snapshot_open`); writers go on undisturbed. When the WAL holds no transaction
//!   yet SQLite cannot name a snapshot, and the one connection serves every read in turn.
//! - Rollback journal: the first connection's read transaction holds SHARED, which blocks
//!   every commit until the source is dropped (writers wait, said in the log). Since the file
//!   cannot change meanwhile, further connections open it `immutable` (no locks of their own,
//!   so a writer queued for the lock cannot block them).
//! - WAL mode without `-wal`: no connection is open, so SQLite would have to create `-wal` and
//!   `-shm` beside the file to read it normally. It is opened `immutable` only when no other
//!   process has it open (Linux: any `/proc/*/fd` entry with the file's device and inode), and
//!   after every use ferry checks that its size, modification time and the absence of `-wal`
//!   are unchanged: an application that opened and wrote it meanwhile fails the run.
//! - `?snapshot=backup`: SQLite's online backup API copies the file (read as above) into a
//!   temporary folder, and everything reads that copy.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::locator::SqliteSnapshot;
use ferry_core::{Error, Result};
use rusqlite::Connection;

use crate::open::{self, sql_err};
use crate::wal_snapshot::WalSnapshot;

/// The connections reading one SQLite source, all on the same data.
pub struct Snapshot {
    /// The file read (the temporary copy with `?snapshot=backup`).
    path: PathBuf,
    /// Further connections open the file `immutable`.
    immutable: bool,
    /// WAL mode: the snapshot further connections join.
    wal: Option<WalSnapshot>,
    /// Only the first connection may read (WAL without a nameable snapshot).
    single: bool,
    /// Immutable reads of a file other processes could open: what must not change.
    stamp: Option<Stamp>,
    /// The first connection, kept out of the pool when its read transaction is what holds the
    /// picture for the others (the shared lock, the WAL snapshot): no read error can end it.
    _holder: Option<Mutex<Connection>>,
    idle: Mutex<Idle>,
    returned: Condvar,
    description: String,
    /// Dropped last (fields drop in order), after every connection to the copy is closed.
    _backup: Option<tempfile::TempDir>,
}

#[derive(Default)]
struct Idle {
    conns: Vec<Connection>,
    /// The single connection ended its transaction (an error): its snapshot is gone.
    lost: bool,
}

/// What an immutable read checks afterwards.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    wal: bool,
}

impl Stamp {
    fn of(path: &Path) -> Self {
        let meta = std::fs::metadata(path).ok();
        Self {
            len: meta.as_ref().map_or(0, std::fs::Metadata::len),
            modified: meta.and_then(|m| m.modified().ok()),
            wal: wal_file(path).exists(),
        }
    }
}

pub fn wal_file(path: &Path) -> PathBuf {
    path.with_file_name(format!(
        "{}-wal",
        path.file_name().unwrap_or_default().to_string_lossy()
    ))
}

/// A connection borrowed from the snapshot; it goes back when dropped.
pub struct Lease<'a> {
    owner: &'a Snapshot,
    conn: Option<Connection>,
}

impl std::ops::Deref for Lease<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("present until drop")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let mut idle = self.owner.lock();
        if conn.is_autocommit() {
            // Its read transaction ended (an error rolled it back): it no longer reads the
            // snapshot, so it is closed; the single connection cannot be replaced.
            idle.lost |= self.owner.single;
        } else {
            idle.conns.push(conn);
        }
        drop(idle);
        self.owner.returned.notify_one();
    }
}

impl Snapshot {
    /// Opens `path` and starts the snapshot every later read uses. `announce`: log how (not
    /// for a target read back for verification, whose writer is ferry itself).
    ///
    /// # Errors
    /// An input error when the file cannot be opened, or is open elsewhere in a state ferry
    /// cannot read without touching it.
    pub fn open(path: &Path, how: SqliteSnapshot, announce: bool) -> Result<Self> {
        open::check_source_file(path)?;
        match how {
            SqliteSnapshot::InPlace => Self::live(path, announce),
            SqliteSnapshot::Backup => Self::backup(path),
        }
    }

    /// How the source is read, for the report.
    pub fn description(&self) -> &str {
        &self.description
    }

    fn live(path: &Path, announce: bool) -> Result<Self> {
        let wal_header = open::wal_header(path);
        if wal_header && !wal_file(path).exists() {
            if let Some(pid) = open_elsewhere(path) {
                return Err(Error::input(format!(
                    "{} is in WAL mode and open in process {pid} but has no -wal file yet: retry in a moment (ferry reads it in place only without creating files beside it)",
                    path.display()
                )));
            }
            let stamp = Stamp::of(path);
            let conn = open::connect(path, true)?;
            begin(&conn)?;
            return Ok(Self::new(
                path,
                conn,
                true,
                None,
                Some(stamp),
                "SQLite file read immutable (no process had it open)".into(),
                None,
            ));
        }
        let conn = open::connect(path, false)?;
        let wal_mode = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
            .map_err(sql_err)?
            .eq_ignore_ascii_case("wal");
        begin(&conn)?;
        if wal_mode {
            return Ok(match WalSnapshot::get(&conn) {
                Ok(snapshot) => Self::new(
                    path,
                    conn,
                    false,
                    Some(snapshot),
                    None,
                    "SQLite WAL snapshot".into(),
                    None,
                ),
                Err(why) => {
                    tracing::debug!("no shareable WAL snapshot of {}: {why}", path.display());
                    Self::new(
                        path,
                        conn,
                        false,
                        None,
                        None,
                        "SQLite WAL read transaction on one connection".into(),
                        None,
                    )
                    .single()
                }
            });
        }
        if announce {
            tracing::info!(
                "{} uses a rollback journal: ferry holds its shared lock until the copy and its verification end, so the application's writes wait until then",
                path.display()
            );
        }
        Ok(Self::new(
            path,
            conn,
            true,
            None,
            None,
            "SQLite shared lock (writers wait)".into(),
            None,
        ))
    }

    fn backup(path: &Path) -> Result<Self> {
        let live = Self::live(path, false)?;
        let dir = tempfile::Builder::new()
            .prefix("ferry-backup-")
            .tempdir()
            .map_err(|e| Error::run(format!("cannot create a temporary folder: {e}")))?;
        let copy = dir
            .path()
            .join(path.file_name().unwrap_or("copy.db".as_ref()));
        tracing::info!(
            "copying {} with SQLite's online backup API into {} ({}), then reading the copy",
            path.display(),
            copy.display(),
            live.description()
        );
        {
            let src = live.checkout()?;
            let mut dst = Connection::open(&copy).map_err(sql_err)?;
            let failed = |e: rusqlite::Error| {
                Error::run(format!("SQLite backup of {}: {e}", path.display()))
            };
            let backup = rusqlite::backup::Backup::new(&src, &mut dst).map_err(failed)?;
            // Every page in one step: the source connection's read transaction stays open
            // throughout, so the copy is exactly its snapshot.
            loop {
                use rusqlite::backup::StepResult;
                match backup.step(-1).map_err(failed)? {
                    StepResult::Done => break,
                    StepResult::More => {}
                    _ => std::thread::sleep(std::time::Duration::from_millis(50)),
                }
            }
            drop(backup);
            dst.pragma_update(None, "journal_mode", "DELETE")
                .map_err(sql_err)?;
        }
        live.check()?;
        let description = format!(
            "SQLite online backup copy (taken in a {})",
            live.description
        );
        drop(live);
        let conn = open::connect(&copy, true)?;
        begin(&conn)?;
        Ok(Self::new(
            &copy,
            conn,
            true,
            None,
            None,
            description,
            Some(dir),
        ))
    }

    fn new(
        path: &Path,
        first: Connection,
        immutable: bool,
        wal: Option<WalSnapshot>,
        stamp: Option<Stamp>,
        description: String,
        backup: Option<tempfile::TempDir>,
    ) -> Self {
        // Rollback journal (immutable readers behind the first one's lock) and WAL snapshots:
        // the first connection only holds.
        let hold = (immutable && stamp.is_none() && backup.is_none()) || wal.is_some();
        let (holder, conns) = if hold {
            (Some(Mutex::new(first)), Vec::new())
        } else {
            (None, vec![first])
        };
        Self {
            path: path.to_path_buf(),
            immutable,
            wal,
            single: false,
            stamp,
            _holder: holder,
            idle: Mutex::new(Idle { conns, lost: false }),
            returned: Condvar::new(),
            description,
            _backup: backup,
        }
    }

    fn single(mut self) -> Self {
        self.single = true;
        self
    }

    /// Whether several connections can read at once (else the one connection serves in turn).
    pub fn parallel(&self) -> bool {
        !self.single
    }

    fn lock(&self) -> MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection reading the snapshot: an idle one, a new one joining it, or (single
    /// connection) the one, once it is given back.
    ///
    /// # Errors
    /// When a new connection cannot join the snapshot.
    pub fn checkout(&self) -> Result<Lease<'_>> {
        let mut idle = self.lock();
        loop {
            if let Some(conn) = idle.conns.pop() {
                return Ok(Lease {
                    owner: self,
                    conn: Some(conn),
                });
            }
            if !self.single {
                drop(idle);
                return Ok(Lease {
                    owner: self,
                    conn: Some(self.join()?),
                });
            }
            if idle.lost {
                return Err(Error::run(format!(
                    "the read transaction on {} ended after an error: rerun the copy",
                    self.path.display()
                )));
            }
            idle = self.returned.wait(idle).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn join(&self) -> Result<Connection> {
        let conn = open::connect(&self.path, self.immutable)?;
        if self.wal.is_some() {
            // SQLite can only move a connection to a snapshot once it has opened the WAL,
            // which its first read does.
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
                .map_err(sql_err)?;
        }
        conn.execute_batch("BEGIN").map_err(sql_err)?;
        if let Some(wal) = &self.wal {
            let mut tries = 0;
            while let Err(why) = wal.join(&conn) {
                tries += 1;
                if tries == 50 {
                    return Err(Error::run(format!(
                        "cannot join the snapshot of {} ({why}): rerun the copy",
                        self.path.display()
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        begin_reading(&conn)?;
        Ok(conn)
    }

    /// After an immutable read of a file another process could open: fails when the file
    /// changed (the rows read may not be one consistent picture).
    ///
    /// # Errors
    /// A run error naming the file.
    pub fn check(&self) -> Result<()> {
        if let Some(stamp) = &self.stamp
            && Stamp::of(&self.path) != *stamp
        {
            return Err(Error::run(format!(
                "{} changed while ferry read it without locks (an application opened and wrote it during the copy): the rows read may be inconsistent; rerun the copy (it then reads through SQLite's locks, or use ?snapshot=backup)",
                self.path.display()
            )));
        }
        Ok(())
    }
}

/// `BEGIN` and a first read, so the read transaction (and its lock or WAL snapshot) starts now.
fn begin(conn: &Connection) -> Result<()> {
    conn.execute_batch("BEGIN").map_err(sql_err)?;
    begin_reading(conn)
}

fn begin_reading(conn: &Connection) -> Result<()> {
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
        .map_err(sql_err)?;
    open::register_unknown_collations(conn, &[])
}

/// A process (this one included) with `path` open, found by device and inode among the
/// entries of `/proc/*/fd`. Other users' processes are visible only to root; elsewhere than
/// Linux nothing is found and only the check after reading remains.
fn open_elsewhere(path: &Path) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        let (dev, ino) = (meta.dev(), meta.ino());
        for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = proc_entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                if let Ok(m) = std::fs::metadata(fd.path())
                    && m.dev() == dev
                    && m.ino() == ino
                {
                    return Some(pid);
                }
            }
        }
        None
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}
