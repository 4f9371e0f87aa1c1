//! SQLite for tests: URLs for files, sources made from SQL, rows read back as text, and the
//! fixture files several tests share.

use std::path::{Path, PathBuf};

/// `sqlite:///abs/path` for a file.
pub fn sqlite_url(path: &Path) -> String {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap().join(path)
    };
    format!("sqlite://{}", abs.display())
}

/// Creates an SQLite database at `path` by running `sql`.
pub fn make_sqlite(path: &Path, sql: &str) -> PathBuf {
    let conn = rusqlite::Connection::open(path).expect("create the SQLite source");
    conn.execute_batch(sql).expect("fill the SQLite source");
    drop(conn);
    path.to_path_buf()
}

/// An SQLite file at `path` with `rows` rows in `items (id, name, qty, note)`: the large
/// source of the tests that act while a copy runs (`qty` is `id % 97`).
pub fn items_db(path: &Path, rows: i64) -> PathBuf {
    let mut conn = rusqlite::Connection::open(path).expect("create the SQLite source");
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, note TEXT);",
    )
    .expect("create items");
    let tx = conn.transaction().expect("begin");
    {
        let mut stmt = tx
            .prepare("INSERT INTO items (id, name, qty, note) VALUES (?1, ?2, ?3, ?4)")
            .expect("prepare");
        for i in 1..=rows {
            stmt.execute(rusqlite::params![
                i,
                format!("item number {i}"),
                i % 97,
                "some words to make the row a bit wider than tiny"
            ])
            .expect("insert");
        }
    }
    tx.commit().expect("commit");
    path.to_path_buf()
}

/// The sums an independent content check of [`items_db`]'s `rows` rows compares:
/// `count(*)`, `sum(id)`, `sum(qty)`, `sum(length(name))`.
pub fn items_sums(rows: i64) -> [i64; 4] {
    let ids = 1..=rows;
    [
        rows,
        ids.clone().sum(),
        ids.clone().map(|i| i % 97).sum(),
        ids.map(|i| format!("item number {i}").len() as i64).sum(),
    ]
}

/// The SQL giving [`items_sums`] in a copy of `items` (PostgreSQL and SQLite spelling).
pub const ITEMS_SUMS_SQL: &str =
    "SELECT count(*) || ',' || sum(id) || ',' || sum(qty) || ',' || sum(length(name)) FROM items";

/// Runs a query on an SQLite file and returns every row with each value rendered as text
/// (NULL as `None`).
pub fn sqlite_rows(path: &Path, sql: &str) -> Vec<Vec<Option<String>>> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                use rusqlite::types::ValueRef;
                Ok(match r.get_ref(i)? {
                    ValueRef::Null => None,
                    ValueRef::Integer(v) => Some(v.to_string()),
                    ValueRef::Real(v) => Some(v.to_string()),
                    ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Some(format!("{b:?}")),
                })
            })
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
    .collect::<rusqlite::Result<Vec<_>>>()
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Column `index` of every row `sql` returns on `conn`, decoded as `T`; panics with the query
/// when it fails.
pub fn sqlite_column<T: rusqlite::types::FromSql>(
    conn: &rusqlite::Connection,
    sql: &str,
    index: usize,
) -> Vec<T> {
    conn.prepare(sql)
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(index))?.collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A temp dir holding the SQLite file `name` made by `sql`: (dir, file).
pub fn temp_sqlite(name: &str, sql: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = make_sqlite(&dir.path().join(name), sql);
    (dir, path)
}

/// A temp dir holding `name`, a closed WAL-mode file with table `t (id INTEGER PRIMARY KEY,
/// v TEXT)` holding rows (1, 'a') and (2, 'b'). Closing checkpoints and removes -wal/-shm
/// (asserted), so only the file is left: what an application leaves behind when it stops.
/// (dir, file)
pub fn closed_wal_db(name: &str) -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = temp_sqlite(
        name,
        "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO t VALUES (1, 'a'), (2, 'b');",
    );
    let wal = dir.path().join(format!("{name}-wal"));
    assert!(!wal.exists(), "{} is left after closing", wal.display());
    (dir, path)
}

/// Builds the quirks fixture (crates/ferry/tests/fixtures/quirks.sql: every storage-class and
/// schema oddity ferry must survive) at `dir/quirks.db`.
pub fn quirks_db(dir: &Path) -> PathBuf {
    let path = dir.join("quirks.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    // The application's own collation: ferry does not have it and must still read the table.
    conn.create_collation("unicode_nocase", |a: &str, b: &str| {
        a.to_lowercase().cmp(&b.to_lowercase())
    })
    .unwrap();
    conn.execute_batch(include_str!("../../ferry/tests/fixtures/quirks.sql"))
        .unwrap();
    drop(conn);
    path
}

/// A temp dir holding [`quirks_db`]: (dir, file).
pub fn temp_quirks_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = quirks_db(dir.path());
    (dir, path)
}

/// A source whose `notes` row id=2 holds invalid UTF-8 in a TEXT column (what SQLite lets an
/// application store), beside a clean `fine` table: the rejected-row cases.
pub const BAD_UTF8_SQL: &str = "
    CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
    INSERT INTO notes VALUES (1, 'first'), (2, CAST(x'61ff62' AS TEXT)), (3, 'third');
    CREATE TABLE fine (id INTEGER PRIMARY KEY, v TEXT);
    INSERT INTO fine VALUES (1, 'a'), (2, 'b');
";
