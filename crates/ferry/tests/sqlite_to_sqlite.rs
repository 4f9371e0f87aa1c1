//! SQLite → SQLite: a byte-identical copy (storage classes, invalid UTF-8, application
//! collations), from a source that is never modified, WAL mode included.

mod common;

use common::*;
use ferry::Status;

/// Every value of every table as (typeof, hex) text, in rowid order.
fn dump(path: &std::path::Path) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.create_collation("unicode_nocase", |a: &str, b: &str| a.cmp(b))
        .unwrap();
    let tables: Vec<String> = sqlite_column(
        &conn,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' AND name NOT LIKE 'search%' ORDER BY name",
        0,
    );
    let mut out = Vec::new();
    for t in tables {
        let cols: Vec<String> = sqlite_column(&conn, &format!("PRAGMA table_info(\"{t}\")"), 1);
        let exprs: Vec<String> = cols
            .iter()
            .map(|c| format!("typeof(\"{c}\") || ':' || coalesce(hex(\"{c}\"), '')"))
            .collect();
        let rows: Vec<String> = sqlite_column(
            &conn,
            &format!(
                "SELECT {} FROM \"{t}\" ORDER BY 1",
                exprs.join(" || '|' || ")
            ),
            0,
        );
        out.push(format!("{t}: {}", rows.join(" ; ")));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_are_byte_identical() {
    let (dir, src) = temp_quirks_db();
    let before = snapshot(dir.path());
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("copy.db");
    let report = plain_copy(&sqlite(&src), &sqlite(&dst), out.path()).await;
    assert_eq!(report.status, Status::Completed, "{}", report.render());
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert!(
        report.verify.contains_key("bad_text"),
        "invalid UTF-8 needs no conversion between SQLite files"
    );
    assert!(
        report.lossy.is_empty(),
        "nothing is lossy between SQLite files: {:?}",
        report.lossy
    );
    assert_eq!(dump(&src), dump(&dst));
    assert_eq!(snapshot(dir.path()), before, "source untouched");
    // The schema is the source's own: declared types, WITHOUT ROWID, indexes.
    let conn = rusqlite::Connection::open(&dst).unwrap();
    let sql: String = conn
        .query_row("SELECT sql FROM sqlite_master WHERE name = 'wr'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_mentions(&sql, &["WITHOUT ROWID"]);
    let partial: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'partial_idx'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        partial, 1,
        "partial indexes are recreated between SQLite files"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_source_is_read_without_creating_files() {
    let (dir, src) = closed_wal_db("wal.db");
    let before = snapshot(dir.path());
    let out = tempfile::tempdir().unwrap();
    let report = copied(&sqlite(&src), &sqlite(&out.path().join("t.db")), out.path()).await;
    assert_eq!(report.stats["t"].migrated, 2);
    assert_eq!(
        snapshot(dir.path()),
        before,
        "no -wal or -shm file appeared beside the source"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_foreign_files_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello, not a database").unwrap();
    let (target, opts) = (sqlite(&dir.path().join("t.db")), options(dir.path()));
    for (source, why) in [
        (missing, "does not exist"),
        (text, "is not a SQLite database"),
    ] {
        let err = copy_refused(&sqlite(&source), &target, &opts, false).await;
        assert_eq!(err.exit_code(), 2, "{err}");
        assert_mentions(&err.to_string(), &[why]);
    }
    let src = quirks_db(dir.path());
    let err = copy_refused(&sqlite(&src), &sqlite(&src), &options(dir.path()), false).await;
    assert_mentions(&err.to_string(), &["same database"]);
}
