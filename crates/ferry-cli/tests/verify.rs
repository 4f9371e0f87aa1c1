//! Black-box tests of `ferry verify` at scale and against a live source: the real binary, so its
//! own peak RSS (the summary's `peak_rss_mb`) is what is measured.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{assert_mentions, ferry, make_sqlite, read_summary, sqlite_url};
use tempfile::TempDir;

/// Keys listed per kind of difference.
const SHOWN: usize = 20;

/// `ferry verify` of two SQLite files, writing the summary.
fn verify(dir: &Path, src: &Path, dst: &Path, summary: &Path) -> common::Run {
    ferry(
        dir,
        &[
            "verify",
            "--source",
            &sqlite_url(src),
            "--target",
            &sqlite_url(dst),
            "--summary",
            summary.to_str().unwrap(),
        ],
    )
}

/// A temp dir holding the SQLite source `names.0` made by `sql` and its copy `names.1`: a
/// SQLite → SQLite copy replays the source's DDL and values, so the file itself is one (once
/// the last connection closed, a WAL source is checkpointed into the file). (dir, source, copy)
fn source_and_copy(names: (&str, &str), sql: &str) -> (TempDir, PathBuf, PathBuf) {
    let dir = TempDir::new().unwrap();
    let (src, dst) = (dir.path().join(names.0), dir.path().join(names.1));
    make_sqlite(&src, sql);
    std::fs::copy(&src, &dst).unwrap();
    (dir, src, dst)
}

fn ids(keys: &serde_json::Value) -> Vec<i64> {
    keys.as_array()
        .unwrap_or_else(|| panic!("not a list: {keys}"))
        .iter()
        .map(|k| {
            let k = k.as_str().expect("a key is text");
            k.strip_prefix("id=")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not an `id=N` key: {k}"))
        })
        .collect()
}

#[test]
fn a_tenth_of_a_million_rows_changed_is_counted_exactly_in_bounded_memory() {
    let (dir, src, dst) = source_and_copy(
        ("src.db", "dst.db"),
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
         INSERT INTO items SELECT i, 'item number ' || i, i % 97 FROM n;",
    );
    // 100,000 rows (10 %) changed, spread over every key bucket: 40,000 different, 40,000
    // missing, 20,000 extra.
    make_sqlite(
        &dst,
        "UPDATE items SET qty = qty + 1 WHERE id % 25 = 1;
         DELETE FROM items WHERE id % 25 = 2;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO items SELECT 1000000 + i, 'extra', 0 FROM n;",
    );
    let summary = dir.path().join("summary.json");
    let started = Instant::now();
    let run = verify(dir.path(), &src, &dst, &summary);
    let took = started.elapsed();
    run.expect_code(1);
    eprintln!("ferry verify of 1M rows, 10 % changed: {took:.1?}");

    let j = read_summary(&summary);
    let v = &j["verify"]["items"];
    assert_eq!(v["source_rows"], 1_000_000, "{v:#}");
    assert_eq!(v["target_rows"], 980_000, "{v:#}");
    assert_eq!(v["checksum_match"], false, "{v:#}");
    assert_eq!(v["missing_count"], 40_000, "{v:#}");
    assert_eq!(v["different_count"], 40_000, "{v:#}");
    assert_eq!(v["extra_count"], 20_000, "{v:#}");
    assert!(v.get("counts_partial").is_none(), "{v:#}");
    assert!(
        v.get("source_changed").is_none(),
        "a source nobody writes to did not change: {v:#}"
    );
    let (missing, different, extra) = (
        ids(&v["missing_keys"]),
        ids(&v["different_keys"]),
        ids(&v["extra_keys"]),
    );
    assert_eq!(missing.len(), SHOWN, "{v:#}");
    assert_eq!(different.len(), SHOWN, "{v:#}");
    assert_eq!(extra.len(), SHOWN, "{v:#}");
    assert!(missing.iter().all(|id| id % 25 == 2), "{missing:?}");
    assert!(different.iter().all(|id| id % 25 == 1), "{different:?}");
    assert!(
        extra.iter().all(|id| *id > 1_000_000 && *id <= 1_020_000),
        "{extra:?}"
    );

    let rss = j["peak_rss_mb"]
        .as_f64()
        .expect("peak_rss_mb in the summary");
    eprintln!("peak RSS {rss:.0} MB");
    assert!(
        rss < 100.0,
        "ferry verify peaked at {rss:.0} MB (limit 100)"
    );

    run.expect_stderr("40000 missing in target, 20000 extra, 40000 different");
}

#[test]
fn a_source_taking_writes_is_told_apart_from_a_failed_copy() {
    let (dir, src, dst) = source_and_copy(
        ("live.db", "copy.db"),
        "PRAGMA journal_mode = WAL;
         CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT);
         INSERT INTO settings VALUES ('theme', 'dark');
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
         INSERT INTO events SELECT i, 'event ' || i FROM n;",
    );

    // The application keeps writing while ferry verifies.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (src, stop, written) = (src.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&src).unwrap();
            conn.busy_timeout(Duration::from_secs(10)).unwrap();
            // No fsync per insert: a busy test machine would make every commit slow.
            conn.execute_batch("PRAGMA synchronous = OFF").unwrap();
            while !stop.load(Ordering::Relaxed) {
                conn.execute("INSERT INTO events (body) VALUES ('written live')", [])
                    .unwrap();
                written.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    while written.load(Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let summary = dir.path().join("summary.json");
    let run = verify(dir.path(), &src, &dst, &summary);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    run.expect_code(1);

    let j = read_summary(&summary);
    let events = &j["verify"]["events"];
    let said = events["source_changed"]
        .as_str()
        .unwrap_or_else(|| panic!("no source_changed for a table taking writes: {j:#}"));
    assert!(said.contains("table events is taking writes"), "{said}");
    assert!(
        j["verify"]["settings"].get("source_changed").is_none(),
        "an unchanged table is not said to change: {j:#}"
    );
    assert_eq!(j["verify"]["settings"]["checksum_match"], true, "{j:#}");
    let line = run.stderr_line("no line about the live source", |l| {
        l.contains("the source changed while verifying")
    });
    assert_mentions(line, &["events", "not a failed copy"]);
}
