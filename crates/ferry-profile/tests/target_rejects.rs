//! Rows the target refuses (a CHECK the source never had), written through ferry-core's batch
//! splitting: the bad rows fail alone and are named, every other row of their batch is written
//! once, values arrive as the expressions made them (JSON documents, fractions, NULLs), and a
//! re-run rewrites nothing that is already identical.

mod common;

use common::*;
use ferry_core::report::Status;
use ferry_profile::expr::entity_id;
use ferry_profile::{ImportOptions, Profile, import};

const PROFILE: &str = r#"
[profile]
name = "tasks"
source = "Tasks 2.1"

[target]
schema = '''
CREATE TABLE IF NOT EXISTS tasks (
    id uuid PRIMARY KEY, source_host text NOT NULL,
    title text NOT NULL CONSTRAINT tasks_title_short CHECK (length(title) <= 12),
    estimate numeric(6,2), labels jsonb, done_at timestamptz
);
'''

[[entity]]
name = "tasks"
table = "tasks"
key = "id"
source = "SELECT id, title, estimate, labels, done_at FROM task"
[entity.columns]
title = "title"
estimate = "estimate"
labels = "labels"
done_at = "done_at"
"#;

/// Seven tasks as an ORM writes them; 3 and 6 have titles the new platform's CHECK refuses.
const SOURCE: &str = r#"
CREATE TABLE task (id bigint PRIMARY KEY, title text NOT NULL, estimate numeric(6,2),
                   labels jsonb, done_at timestamptz);
INSERT INTO task VALUES
  (1, 'Buy milk', 0.5, '["home"]', '2025-03-01 09:15:00.123456+00'),
  (2, 'Call Ann', NULL, '{"who": {"name": "Ann"}, "tags": ["phone", 2]}', NULL),
  (3, 'Write the quarterly report', 12.25, NULL, NULL),
  (4, 'Pay rent', 1, '[]', '2025-03-02 18:00:00+00'),
  (5, 'Fix "bike"', 3.75, '{"n": 12345678901}', NULL),
  (6, 'Renew the passport before June', 2, NULL, NULL),
  (7, 'Sleep', NULL, NULL, NULL);
"#;

/// A target row: id, title, then estimate, labels and done_at as text.
type Task = (
    uuid::Uuid,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

#[tokio::test]
async fn refused_rows_fail_alone_and_the_rest_is_written_once() {
    let (src, dst) = (TestDb::new().await, TestDb::new().await);
    src.execute(SOURCE).await;
    let profile = Profile::parse(PROFILE, "tasks.toml").expect("valid profile");
    let o = ImportOptions {
        source_host: Some("tasks.example".into()),
        // Two pages: 1–4 and 5–7, one bad row each, split until the bad row is alone.
        batch_size: 4,
        ..ImportOptions::new(src.locator(), dst.locator())
    };
    let (cx, _) = context();

    let r = import(&profile, &o, &cx).await.unwrap();
    assert_eq!(r.status, Status::Completed);
    let t = &r.stats["tasks"];
    assert_eq!((t.total, t.migrated, t.skipped, t.failed), (7, 5, 0, 2));
    assert_eq!(t.errors.len(), 2, "{:?}", t.errors);
    for (e, id) in t.errors.iter().zip(["3", "6"]) {
        assert!(
            e.starts_with(&format!("tasks {id}: ")) && e.contains("tasks_title_short"),
            "{:?}",
            t.errors
        );
    }
    assert!(!r.verify["tasks"].ok(), "two rows are missing");
    assert_eq!(r.exit_code(), 1);

    let c = dst.client().await;
    let got: Vec<Task> = pg_rows(&c, "SELECT id, title, estimate::text, labels::text, (done_at AT TIME ZONE 'UTC')::text FROM tasks ORDER BY title").await;
    let id = |n: &str| entity_id("tasks.example", "tasks", n);
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        got,
        vec![
            (
                id("1"),
                "Buy milk".into(),
                s("0.50"),
                s(r#"["home"]"#),
                s("2025-03-01 09:15:00.123456")
            ),
            (
                id("2"),
                "Call Ann".into(),
                None,
                s(r#"{"who": {"name": "Ann"}, "tags": ["phone", 2]}"#),
                None
            ),
            (
                id("5"),
                "Fix \"bike\"".into(),
                s("3.75"),
                s(r#"{"n": 12345678901}"#),
                None
            ),
            (
                id("4"),
                "Pay rent".into(),
                s("1.00"),
                s("[]"),
                s("2025-03-02 18:00:00")
            ),
            (id("7"), "Sleep".into(), None, None, None),
        ]
    );

    // Again: the written rows are identical (not rewritten), the refused ones fail again.
    let r = import(&profile, &o, &cx).await.unwrap();
    let t = &r.stats["tasks"];
    assert_eq!((t.total, t.migrated, t.skipped, t.failed), (7, 0, 5, 2));
    let identical = "tasks: 5 skipped (identical in the target)".to_string();
    assert!(r.warnings.contains(&identical), "{:?}", r.warnings);
}
