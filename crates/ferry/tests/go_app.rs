//! A Go application's SQLite file (gorm-style DDL: double-quoted defaults, nanosecond
//! timestamps) copied to PostgreSQL and MySQL against the real servers: values arrive rounded
//! the way PostgreSQL rounds them, the rounding is named, and the defaults work for the
//! application's next INSERT.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use mysql_async::prelude::Queryable;

/// `raw` keeps each timestamp's source text so PostgreSQL can parse it itself for comparison.
const GORM: &str = r#"
CREATE TABLE `events` (`id` integer PRIMARY KEY AUTOINCREMENT,`created_at` datetime,`raw` text,
  `status` text DEFAULT "pending",`user_id` text NOT NULL DEFAULT "",`note` text DEFAULT "say ""hi""");
INSERT INTO events (created_at, raw, status, user_id) VALUES
  ('2026-07-08 12:00:28.111135256+02:00', '2026-07-08 12:00:28.111135256+02:00', 'done', 'u1'),
  ('2026-07-08 12:00:29.0000005+02:00', '2026-07-08 12:00:29.0000005+02:00', 'done', 'u2'),
  ('2026-07-08 12:00:30.0000015+02:00', '2026-07-08 12:00:30.0000015+02:00', 'done', 'u3'),
  ('2026-07-08 12:00:31.1234560+02:00', '2026-07-08 12:00:31.1234560+02:00', 'done', 'u4'),
  ('2026-12-31 23:59:59.9999999+00:00', '2026-12-31 23:59:59.9999999+00:00', 'done', 'u5');
"#;

/// Copies the Go app's file to `target` and checks what both targets share: the copy verifies,
/// the rounding is named, the double-quoted defaults are kept.
async fn copy_go_app(target: &ferry::Locator) {
    let dir = tempfile::tempdir().unwrap();
    let src = go_app_db(dir.path());
    let report = plain_copy(&sqlite(&src), target, dir.path()).await;
    assert_rounding_named(&report);
}

fn go_app_db(dir: &Path) -> PathBuf {
    let path = dir.join("go.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(GORM).unwrap();
    path
}

fn assert_rounding_named(report: &ferry::Report) {
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert!(
        report.verify.values().all(|v| v.ok()),
        "{}",
        report.render()
    );
    let lossy = report.lossy.join("\n");
    assert_mentions(
        &lossy,
        &["events.created_at: 4 values had sub-microsecond digits, rounded to microseconds"],
    );
    assert!(
        !lossy.contains("events.status") && !lossy.contains("events.user_id"),
        "double-quoted defaults are translated, not dropped:\n{lossy}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_app_sqlite_to_postgres() {
    let db = TestDb::new().await;
    copy_go_app(&db.locator()).await;

    let pg = db.client().await;
    // Every value is the instant PostgreSQL itself reads from the same text: same rounding.
    let differ: i64 = pg_value(
        &pg,
        "SELECT count(*) FROM events WHERE created_at IS DISTINCT FROM raw::timestamptz",
    )
    .await;
    assert_eq!(differ, 0, "ferry rounds exactly as PostgreSQL does");
    let first: String = pg_value(&pg, "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM events WHERE user_id = 'u1'").await;
    assert_eq!(first, "2026-07-08 10:00:28.111135");

    // The application's next INSERT relies on the defaults.
    let row = pg
        .query_one(
            "INSERT INTO events (created_at) VALUES (now()) RETURNING status, user_id, note",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("pending"));
    assert_eq!(row.get::<_, String>(1), "");
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("say \"hi\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_app_sqlite_to_mysql() {
    let db = MyDb::new().await;
    copy_go_app(&db.locator()).await;

    let mut my = db.conn().await;
    let got: Vec<(String, String)> = my
        .query(
            "SELECT user_id, DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f') FROM events ORDER BY id",
        )
        .await
        .unwrap();
    let want = [
        ("u1", "2026-07-08 10:00:28.111135"),
        ("u2", "2026-07-08 10:00:29.000000"),
        ("u3", "2026-07-08 10:00:30.000002"),
        ("u4", "2026-07-08 10:00:31.123456"),
        ("u5", "2027-01-01 00:00:00.000000"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want);

    my.query_drop("INSERT INTO events (created_at) VALUES (NOW())")
        .await
        .unwrap();
    let row: Option<(Option<String>, String, Option<String>)> = my
        .query_first("SELECT status, user_id, note FROM events WHERE id = LAST_INSERT_ID()")
        .await
        .unwrap();
    assert_eq!(
        row,
        Some((
            Some("pending".into()),
            String::new(),
            Some("say \"hi\"".into())
        ))
    );
    my.disconnect().await.unwrap();
}
