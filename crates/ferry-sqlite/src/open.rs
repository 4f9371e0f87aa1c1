//! Opening SQLite files: read-only sources that leave no trace, and checks that turn a wrong
//! path into a one-line error before anything else happens.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use ferry_core::connector::Identity;
use ferry_core::{Error, Result};
use rusqlite::{Connection, OpenFlags};

const HEADER: &[u8; 16] = b"SQLite format 3\0";

/// # Errors
/// An input error when the file is missing, unreadable or not SQLite.
pub fn check_source_file(path: &Path) -> Result<()> {
    if !path.exists() {
        return Err(Error::input(format!(
            "the SQLite file {} does not exist: check the path (absolute paths are written sqlite:///path/app.db)",
            path.display()
        )));
    }
    check_sqlite_header(path)
}

pub fn check_sqlite_header(path: &Path) -> Result<()> {
    let mut header = [0u8; 100];
    let n = read_prefix(path, &mut header)
        .map_err(|e| Error::input(format!("cannot read {}: {e}", path.display())))?;
    if n == 0 {
        return Ok(()); // An empty file is an empty database.
    }
    if n < 16 || &header[..16] != HEADER {
        return Err(Error::input(format!(
            "{} is not a SQLite database file",
            path.display()
        )));
    }
    check_whole(path, &header[..n])
}

/// A file cut short (an interrupted download or copy) has a valid header but not the pages it
/// promises; SQLite itself says only "database disk image is malformed" once a query reaches
/// the missing part, possibly after a copy has created tables. Checked from the 100-byte
/// header (file format: sqlite.org/fileformat.html, 1.3): the page size, and the page count
/// when the header's "version-valid-for" number says it is current.
fn check_whole(path: &Path, header: &[u8]) -> Result<()> {
    let truncated = |detail: String| {
        Error::input(format!(
            "the SQLite file {} is truncated ({detail}): copy the whole file again or restore it from a backup",
            path.display()
        ))
    };
    if header.len() < 100 {
        return Err(truncated(format!(
            "{} bytes, shorter than the 100-byte header",
            header.len()
        )));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536u64,
        n => u64::from(n),
    };
    if !page_size.is_power_of_two() || !(512..=65_536).contains(&page_size) {
        return Err(Error::input(format!(
            "{} is damaged: its header gives a page size of {page_size} bytes: restore it from a backup",
            path.display()
        )));
    }
    let size = std::fs::metadata(path)
        .map_err(|e| Error::input(format!("cannot read {}: {e}", path.display())))?
        .len();
    if size < page_size || size % page_size != 0 {
        return Err(truncated(format!(
            "{size} bytes, not a whole number of its {page_size}-byte pages"
        )));
    }
    let word = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let pages = u64::from(word(28));
    // With a -wal file beside it, the newest pages may live there until a checkpoint.
    let wal = path.with_file_name(format!(
        "{}-wal",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    if word(92) == word(24) && pages * page_size > size && !wal.exists() {
        return Err(truncated(format!(
            "{size} bytes, but its header counts {pages} pages of {page_size} bytes"
        )));
    }
    Ok(())
}

fn read_prefix(path: &Path, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut total = 0;
    while total < buf.len() {
        let n = f.read(&mut buf[total..])?;
        if n == 0 {
            break;
        }
        total += n;
    }
    Ok(total)
}

/// The file's device and inode (symbolic links followed, so an alias by symbolic link, hard
/// link or `..` is the same file), and its `-wal`'s when there is one: a target sharing either
/// with the source would write into it. `None` when neither exists yet.
///
/// # Errors
/// An input error when the file exists but cannot be examined.
pub fn identity(path: &Path) -> Result<Option<Identity>> {
    let mut parts = Vec::new();
    let mut label = None;
    for file in [path.to_path_buf(), crate::snapshot::wal_file(path)] {
        let meta = match std::fs::metadata(&file) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::input(format!(
                    "cannot examine {}: {e}",
                    file.display()
                )));
            }
        };
        parts.push(format!("sqlite:{}:{}", meta.dev(), meta.ino()));
        if label.is_none() {
            let real = file.canonicalize().unwrap_or(file);
            label = Some(format!(
                "the file {} (device {}, inode {})",
                real.display(),
                meta.dev(),
                meta.ino()
            ));
        }
    }
    Ok(label.map(|label| Identity { parts, label }))
}

/// Whether the file's header says WAL mode.
pub fn wal_header(path: &Path) -> bool {
    let mut header = [0u8; 100];
    let n = read_prefix(path, &mut header).unwrap_or(0);
    n >= 20 && (header[18] == 2 || header[19] == 2)
}

/// Opens `path` read-only. A database in WAL mode whose `-wal` file does not exist is opened
/// `immutable`, because a plain read-only open would create `-wal` and `-shm` files beside it;
/// when the `-wal` file exists (the application is running or was not closed cleanly) it holds
/// committed rows, so the normal read-only mode is used to see them. (Sources read through
/// `snapshot::Snapshot`, which also checks that no other process has the file open.)
///
/// # Errors
/// An input error when the file cannot be opened.
pub fn read_only(path: &Path) -> Result<Connection> {
    let immutable = wal_header(path) && !crate::snapshot::wal_file(path).exists();
    let conn = connect(path, immutable)?;
    register_unknown_collations(&conn, &[])?;
    Ok(conn)
}

/// Opens `path` read-only (`immutable`: without locks, trusting that nothing writes it), with
/// a busy timeout.
///
/// # Errors
/// An input error when the file cannot be opened.
pub fn connect(path: &Path, immutable: bool) -> Result<Connection> {
    let uri = format!(
        "file:{}?mode=ro{}",
        uri_path(path),
        if immutable { "&immutable=1" } else { "" }
    );
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    open_with(&uri, flags, 30, |e| {
        format!("cannot open SQLite file {} read-only: {e}", path.display())
    })
}

/// Opens `target` (a path, or a `file:` URI with `SQLITE_OPEN_URI`) with `flags`, waiting up to
/// `busy_secs` for another connection's lock; `failed` words the input error.
///
/// # Errors
/// An input error when the file cannot be opened.
pub fn open_with(
    target: impl AsRef<Path>,
    flags: OpenFlags,
    busy_secs: u64,
    failed: impl FnOnce(rusqlite::Error) -> String,
) -> Result<Connection> {
    let conn = Connection::open_with_flags(target, flags).map_err(|e| Error::input(failed(e)))?;
    conn.busy_timeout(std::time::Duration::from_secs(busy_secs))
        .map_err(sql_err)?;
    Ok(conn)
}

/// Applications register their own collations (`COLLATE unicode_nocase`); without them SQLite
/// refuses any statement that compares such a column, and any CREATE that names one. Register
/// a binary stand-in for each unknown name: reading is in rowid order, which no collation
/// affects; an index a copy builds on such a column is in binary order until the application
/// runs REINDEX with its own collation (ARCHITECTURE.md, "Known limits").
pub fn register_unknown_collations(conn: &Connection, extra_sql: &[String]) -> Result<()> {
    let mut sql: Vec<String> = conn
        .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect())
        .map_err(sql_err)?;
    sql.extend_from_slice(extra_sql);
    let mut names = std::collections::BTreeSet::new();
    for text in &sql {
        let lower = text.to_ascii_lowercase();
        let mut rest = lower.as_str();
        while let Some(i) = rest.find("collate") {
            rest = &rest[i + 7..];
            let name: String = rest
                .trim_start()
                .trim_start_matches(['"', '`', '[', '\''])
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && !matches!(name.as_str(), "binary" | "nocase" | "rtrim") {
                names.insert(name);
            }
        }
    }
    for name in names {
        conn.create_collation(name.as_str(), |a: &str, b: &str| a.cmp(b))
            .map_err(sql_err)?;
    }
    Ok(())
}

/// `path` in a `file:` URI: `%` first, so that the escapes added after stay as they are.
fn uri_path(path: &Path) -> String {
    path.to_string_lossy()
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23")
}

pub fn sql_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    if matches!(e.sqlite_error_code(), Some(DatabaseCorrupt | NotADatabase)) {
        return Error::input(format!(
            "SQLite: the database file is damaged ({e}): restore it from a backup or copy the whole file again"
        ));
    }
    Error::run(format!("SQLite: {e}"))
}

/// Quotes an identifier for SQLite.
pub fn quote(name: &str) -> String {
    ferry_core::capabilities::quote_with('"', name)
}
