//! A profile written from docs/profiles.md alone, for a made-up notes application: inline
//! target schema, a table entity that also names files (media templates), an entity without a
//! watermark, `{since}` pushed into the query, enum maps, a row failure that does not stop the
//! run, and a dry run.

mod common;

use common::*;
use ferry_core::report::Status;
use ferry_profile::expr::entity_id;
use ferry_profile::{ImportOptions, Profile, import};

const PROFILE: &str = r#"
[profile]
name = "notes"
source = "Notes 1.0"
version_query = "SELECT '3' AS v"
supported_versions = ["3"]

[target]
schema = '''
CREATE TABLE IF NOT EXISTS authors (id uuid PRIMARY KEY, source_host text NOT NULL, name text NOT NULL);
CREATE TABLE IF NOT EXISTS notes (
    id uuid PRIMARY KEY, source_host text NOT NULL, author_id uuid REFERENCES authors (id),
    title text NOT NULL, kind text NOT NULL, attachment text, updated_at timestamptz NOT NULL
);
'''

[enums.kind]
1 = "memo"
2 = "todo"

[[entity]]
name = "authors"
table = "authors"
key = "id"
source = "SELECT id, name FROM author"
[entity.columns]
name = "name"

[[entity]]
name = "notes"
depends_on = ["authors"]
table = "notes"
key = "id"
watermark = "updated_at"
source = '''
SELECT n.id, n.author_id, n.title, n.kind, n.file, n.updated_at, n.trashed
FROM note n WHERE n.updated_at > {since}
'''
skip = [{ when = "trashed", reason = "in the trash" }]
media = ["'files/{author_id}/{file}'"]
[entity.columns]
author_id = "uuid5(authors, author_id)"
title = "title"
kind = "enum(kind, kind)"
attachment = "'files/{author_id}/{file}'"
updated_at = "updated_at"
"#;

const SOURCE: &str = "
CREATE TABLE author (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE note (id integer PRIMARY KEY, author_id integer, title text NOT NULL, kind integer NOT NULL,
                   file text, updated_at timestamptz NOT NULL, trashed boolean NOT NULL DEFAULT false);
INSERT INTO author VALUES (1, 'Ann'), (2, 'Ben');
INSERT INTO note VALUES
  (1, 1, 'Groceries', 2, 'list.txt', '2024-02-01 10:00+00', false),
  (2, 1, 'Idea', 1, NULL, '2024-02-01 11:00+00', false),
  (3, 2, 'Old', 1, 'old.txt', '2024-02-01 12:00+00', true),
  (4, 2, 'Weird kind', 9, NULL, '2024-02-01 13:00+00', false),
  (5, 2, 'Plan', 2, 'plan.txt', '2024-02-01 14:00+00', false);
";

#[tokio::test]
async fn a_profile_for_another_application() {
    let profile = Profile::parse(PROFILE, "notes.toml").expect("valid profile");
    let src = TestDb::with(SOURCE).await;
    let dst = TestDb::new().await;
    let files = tempfile::tempdir().unwrap();
    for f in ["files/1/list.txt", "files/2/plan.txt"] {
        std::fs::create_dir_all(files.path().join(f).parent().unwrap()).unwrap();
        std::fs::write(files.path().join(f), f).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let mut o = ImportOptions::new(src.locator(), dst.locator());
    o.source_host = Some("notes.example".into());
    o.media_from = Some(files.path().display().to_string());
    o.media_to = Some(format!("file://{}", out.path().display()));

    // Dry run first: counts, nothing written.
    o.dry_run = true;
    let (cx, _) = context();
    let r = import(&profile, &o, &cx).await.unwrap();
    assert_eq!(r.stats["notes"].migrated, 3, "1, 2, 5 would be migrated");
    assert_eq!(r.stats["notes"].failed, 1);
    assert_eq!(r.stats["media"].migrated, 2);
    let c = dst.client().await;
    let tables: i64 = dst
        .value("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        .await;
    assert_eq!(tables, 0);

    o.dry_run = false;
    let r = import(&profile, &o, &cx).await.unwrap();
    assert_eq!(r.status, Status::Completed);
    let n = &r.stats["notes"];
    assert_eq!((n.total, n.migrated, n.skipped, n.failed), (5, 3, 1, 1));
    assert!(
        n.errors[0].contains("notes 4")
            && n.errors[0].contains("value 9 is not in the enum map 'kind'"),
        "{:?}",
        n.errors
    );
    assert_eq!(r.stats["authors"].migrated, 2);
    assert_eq!(r.stats["media"].migrated, 2);
    assert_eq!(
        std::fs::read_to_string(out.path().join("files/2/plan.txt")).unwrap(),
        "files/2/plan.txt"
    );
    assert!(
        !r.verify["notes"].ok(),
        "the failed row makes the counts differ"
    );
    assert_eq!(r.exit_code(), 1);

    let row = c
        .query_one(
            "SELECT author_id, title, kind, attachment FROM notes WHERE id = $1",
            &[&entity_id("notes.example", "notes", "1")],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, Option<uuid::Uuid>>(0),
        Some(entity_id("notes.example", "authors", "1"))
    );
    assert_eq!(row.get::<_, String>(1), "Groceries");
    assert_eq!(row.get::<_, String>(2), "todo");
    assert_eq!(
        row.get::<_, Option<String>>(3).as_deref(),
        Some("files/1/list.txt")
    );
    let none: Option<String> = c
        .query_one(
            "SELECT attachment FROM notes WHERE id = $1",
            &[&entity_id("notes.example", "notes", "2")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(none, None, "a template over a NULL column is NULL");

    // Fix the bad row in the source: the failed entity kept its watermark back, so the next run
    // reads every note again and brings the fixed one; authors (no watermark) are re-read and
    // found identical.
    src.execute("UPDATE note SET kind = 1 WHERE id = 4").await;
    let r = import(&profile, &o, &cx).await.unwrap();
    let n = &r.stats["notes"];
    assert_eq!((n.total, n.migrated, n.skipped, n.failed), (5, 1, 4, 0));
    assert_eq!(r.stats["authors"].migrated, 0);
    assert_eq!(r.stats["authors"].skipped, 2);
    assert_eq!(r.exit_code(), 0, "{}", r.render());
    // And now the watermark is stored: nothing to read.
    let r = import(&profile, &o, &cx).await.unwrap();
    let n = &r.stats["notes"];
    assert_eq!((n.total, n.migrated, n.skipped), (5, 0, 5));
    assert_any_line(&r.warnings, |w| {
        w == "notes: 5 skipped (unchanged since the last run)"
    });
}
