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
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' AND name NOT LIKE 'search%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let cols: Vec<String> = conn
            .prepare(&format!("PRAGMA table_info(\"{t}\")"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(1))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let exprs: Vec<String> = cols
            .iter()
            .map(|c| format!("typeof(\"{c}\") || ':' || coalesce(hex(\"{c}\"), '')"))
            .collect();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM \"{t}\" ORDER BY 1",
                exprs.join(" || '|' || ")
            ))
            .unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.push(format!("{t}: {}", rows.join(" ; ")));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let src = quirks_db(dir.path());
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
    let dir = tempfile::tempdir().unwrap();
    let src = closed_wal_db(&dir.path().join("wal.db"));
    assert!(!dir.path().join("wal.db-wal").exists());
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
    let err = ferry::copy(
        &sqlite(&missing),
        &sqlite(&dir.path().join("t.db")),
        &options(dir.path()),
        &context(false),
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_mentions(&err.to_string(), &["does not exist"]);
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello, not a database").unwrap();
    let err = ferry::copy(
        &sqlite(&text),
        &sqlite(&dir.path().join("t.db")),
        &options(dir.path()),
        &context(false),
    )
    .await
    .unwrap_err();
    assert_mentions(&err.to_string(), &["is not a SQLite database"]);
    let src = quirks_db(dir.path());
    let err = copy_refused(&sqlite(&src), &sqlite(&src), &options(dir.path()), false).await;
    assert_mentions(&err.to_string(), &["same database"]);
}
