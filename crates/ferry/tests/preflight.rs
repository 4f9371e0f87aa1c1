//! Issue 13 §1: nothing fails after rows are copied when it could have been known before. One
//! fixture per class, against the real servers: index names MySQL scopes to their table, a
//! SQLite key column holding NULLs, `SET NULL` on a `NOT NULL` column into MySQL, values that do
//! not fit a MySQL column, DDL the target refuses. Every run goes through `checked`, which
//! asserts the class invariant: a run either completes, or is refused with exit 2 before its
//! copy phase began, having written nothing.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use ferry::{Event, Observer, Report, Status};
use mysql_async::prelude::Queryable;

/// Records the phases a run went through.
#[derive(Default)]
struct Phases(Mutex<Vec<String>>);

impl Observer for Phases {
    fn event(&self, event: &Event) {
        if let Event::Phase(p) = event {
            self.0.lock().unwrap().push(p.clone());
        }
    }
}

/// The copy phase's marker (engine.rs): after it, rows are being written.
const COPYING: &str = "Copying rows";

/// Runs a copy and asserts that no error (DDL or other) surfaced after its copy phase began:
/// the run completed, or it was refused with exit 2 before that phase.
async fn checked(
    source: &ferry::Locator,
    target: &ferry::Locator,
    options: &ferry::CopyOptions,
) -> ferry::Result<Report> {
    let phases = Arc::new(Phases::default());
    let cx = ferry::Context {
        observer: phases.clone(),
        confirm: Arc::new(ferry::Answer(false)),
        cancel: tokio_util::sync::CancellationToken::new(),
    };
    let result = ferry::copy(source, target, options, &cx).await;
    let seen = phases.0.lock().unwrap().clone();
    let copying = seen.iter().any(|p| p == COPYING);
    match &result {
        Ok(report) => assert_eq!(
            report.status,
            Status::Completed,
            "a run that started must finish: {:?} (phases {seen:?})",
            report.error
        ),
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "a refusal is exit 2: {e}");
            assert!(!copying, "refused after the copy phase began: {e}");
        }
    }
    if !options.dry_run && result.is_ok() {
        assert!(copying, "{seen:?}");
        let proved = seen.iter().position(|p| p.starts_with("Proving"));
        let copied = seen.iter().position(|p| p == COPYING);
        assert!(proved < copied, "the plan is proved before rows: {seen:?}");
    }
    result
}

async fn mysql_tables(db: &MyDb) -> Vec<String> {
    let mut conn = db.conn().await;
    let names: Vec<String> = conn.query("SHOW TABLES").await.unwrap();
    conn.disconnect().await.unwrap();
    names
}

async fn pg_tables(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Sakila's habit: index names unique per table only, so three tables each have an
/// `idx_fk_address_id`.
const SAKILA_LIKE: &str = r#"
CREATE TABLE address (
  address_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  address VARCHAR(50) NOT NULL,
  last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB;
INSERT INTO address (address_id, address) VALUES (1, '47 MySakila Drive'), (2, '28 MySQL Boulevard');
CREATE TABLE customer (
  customer_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  address_id SMALLINT UNSIGNED NOT NULL,
  email VARCHAR(50),
  KEY idx_fk_address_id (address_id),
  KEY idx_email (email),
  CONSTRAINT fk_customer_address FOREIGN KEY (address_id) REFERENCES address (address_id) ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB;
INSERT INTO customer VALUES (1, 1, 'mary.smith@sakilacustomer.org'), (2, 2, NULL);
CREATE TABLE staff (
  staff_id TINYINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  address_id SMALLINT UNSIGNED NOT NULL,
  KEY idx_fk_address_id (address_id),
  CONSTRAINT fk_staff_address FOREIGN KEY (address_id) REFERENCES address (address_id) ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB;
INSERT INTO staff VALUES (1, 1);
CREATE TABLE store (
  store_id TINYINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  address_id SMALLINT UNSIGNED NOT NULL,
  KEY idx_fk_address_id (address_id),
  CONSTRAINT fk_store_address FOREIGN KEY (address_id) REFERENCES address (address_id) ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB;
INSERT INTO store VALUES (1, 2);
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_index_names_are_scoped_to_their_table_in_postgres_and_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let my = MyDb::new().await;
    let mut conn = my.conn().await;
    conn.query_drop(SAKILA_LIKE).await.unwrap();
    conn.disconnect().await.unwrap();
    let renamed = ["customer", "staff", "store"].map(|t| format!("{t}_idx_fk_address_id"));

    let pg = TestDb::new().await;
    // The dry run proves the DDL in a transaction it rolls back: nothing stays behind.
    let dry = ferry::CopyOptions {
        dry_run: true,
        ..options(dir.path())
    };
    checked(&my.locator(), &pg.locator(), &dry).await.unwrap();
    assert!(pg_tables(&pg).await.is_empty());

    let report = checked(&my.locator(), &pg.locator(), &options(dir.path()))
        .await
        .unwrap();
    assert!(report.verify.values().all(|v| v.ok()), "{report:?}");
    for name in &renamed {
        assert!(
            report
                .translations
                .iter()
                .any(|w| w.contains(&format!("renamed '{name}'"))),
            "{name} named: {:?}",
            report.translations
        );
    }
    let indexes: Vec<String> = pg_column(
        &pg.client().await,
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'",
    )
    .await;
    for name in renamed.iter().map(String::as_str).chain(["idx_email"]) {
        assert!(indexes.iter().any(|i| i == name), "{name}: {indexes:?}");
    }
    assert!(
        !report
            .translations
            .iter()
            .any(|w| w.contains("longer than")),
        "no name here is too long: {:?}",
        report.translations
    );

    let out = dir.path().join("sakila.db");
    let report = checked(&my.locator(), &sqlite(&out), &options(dir.path()))
        .await
        .unwrap();
    assert!(report.verify.values().all(|v| v.ok()), "{report:?}");
    let conn = rusqlite::Connection::open(&out).unwrap();
    for name in &renamed {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?1",
                [name],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "{name}");
    }
}

/// gorm writes `PRIMARY KEY (key)` on a text column: SQLite then lets the key hold NULLs.
const NULL_KEYS: &str = r#"
CREATE TABLE `settings` (`key` varchar(40),`value` text,PRIMARY KEY (`key`));
INSERT INTO settings VALUES ('theme', 'dark'), (NULL, 'left by an old version'), (NULL, 'another');
CREATE TABLE `user_settings` (`id` integer PRIMARY KEY AUTOINCREMENT,`user_id` integer NOT NULL,`setting_key` varchar(40) REFERENCES `settings`);
INSERT INTO user_settings VALUES (1, 7, 'theme'), (2, 8, NULL);
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_key_holding_nulls_becomes_unique_in_postgres_and_mysql() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app.db");
    rusqlite::Connection::open(&src)
        .unwrap()
        .execute_batch(NULL_KEYS)
        .unwrap();
    let named = |r: &Report| {
        r.lossy
            .iter()
            .any(|l| l.starts_with("settings.key:") && l.contains("created as UNIQUE"))
    };

    let pg = TestDb::new().await;
    let report = checked(&sqlite(&src), &pg.locator(), &options(dir.path()))
        .await
        .unwrap();
    assert!(named(&report), "{:?}", report.lossy);
    assert!(report.verify.values().all(|v| v.ok()), "{report:?}");
    let kinds: Vec<String> = pg_column(
        &pg.client().await,
        "SELECT contype::text FROM pg_constraint WHERE conrelid = 'settings'::regclass ORDER BY 1",
    )
    .await;
    assert_eq!(kinds, ["u"]);
    let rows: i64 = pg_value(
        &pg.client().await,
        "SELECT count(*) FROM settings WHERE key IS NULL",
    )
    .await;
    assert_eq!(rows, 2);

    let my = MyDb::new().await;
    let report = checked(&sqlite(&src), &my.locator(), &options(dir.path()))
        .await
        .unwrap();
    assert!(named(&report), "{:?}", report.lossy);
    assert!(report.verify.values().all(|v| v.ok()), "{report:?}");
    let mut conn = my.conn().await;
    let kinds: Vec<String> = conn
        .exec(
            "SELECT constraint_type FROM information_schema.table_constraints WHERE table_schema = ? AND table_name = 'settings'",
            (my.name.clone(),),
        )
        .await
        .unwrap();
    assert_eq!(kinds, ["UNIQUE"]);
    conn.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_null_on_a_not_null_column_becomes_no_action_in_mysql() {
    let dir = tempfile::tempdir().unwrap();
    let pg = TestDb::new().await;
    pg.client()
        .await
        .batch_execute(
            "CREATE TABLE authors (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text NOT NULL);
             CREATE TABLE books (
               id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
               author_id bigint NOT NULL REFERENCES authors ON DELETE SET NULL ON UPDATE CASCADE,
               editor_id bigint REFERENCES authors ON DELETE SET NULL,
               title text NOT NULL);
             INSERT INTO authors (name) VALUES ('Le Guin'), ('Pratchett');
             INSERT INTO books (author_id, editor_id, title) VALUES (1, 2, 'The Dispossessed'), (2, NULL, 'Mort');",
        )
        .await
        .unwrap();
    let my = MyDb::new().await;
    let report = checked(&pg.locator(), &my.locator(), &options(dir.path()))
        .await
        .unwrap();
    assert!(report.verify.values().all(|v| v.ok()), "{report:?}");
    assert!(
        report
            .translations
            .iter()
            .any(|w| w.contains("books(author_id)")
                && w.contains("ON DELETE SET NULL")
                && w.contains("NO ACTION")),
        "{:?}",
        report.translations
    );
    let mut conn = my.conn().await;
    let rules: Vec<(String, String)> = conn
        .exec(
            "SELECT k.column_name, r.delete_rule FROM information_schema.referential_constraints r
             JOIN information_schema.key_column_usage k
               ON k.constraint_schema = r.constraint_schema AND k.constraint_name = r.constraint_name
             WHERE r.constraint_schema = ? ORDER BY 1",
            (my.name.clone(),),
        )
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert!(
        matches!(rules[0].1.as_str(), "NO ACTION" | "RESTRICT"),
        "{rules:?}"
    );
    // The nullable column keeps its action.
    assert_eq!(rules[1], ("editor_id".to_string(), "SET NULL".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_that_do_not_fit_mysql_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app.db");
    let long_slug = "a-very-long-slug-".repeat(20);
    let conn = rusqlite::Connection::open(&src).unwrap();
    conn.execute_batch(
        "CREATE TABLE pages (slug TEXT PRIMARY KEY NOT NULL, title TEXT);
         CREATE TABLE counters (id INTEGER PRIMARY KEY, hits INTEGER NOT NULL);
         INSERT INTO pages VALUES ('home', 'Home');
         INSERT INTO counters VALUES (1, 12), (2, 5000000000);",
    )
    .unwrap();
    conn.execute("INSERT INTO pages VALUES (?1, 'Long')", [&long_slug])
        .unwrap();
    drop(conn);

    // A text key is bounded to varchar(255) by MySQL's key size: the 340-character slug.
    let my = MyDb::new().await;
    let only = |t: &str| with_tables(options(dir.path()), &[t], &[]);
    let e = checked(&sqlite(&src), &my.locator(), &only("pages"))
        .await
        .unwrap_err();
    let message = e.to_string();
    for word in ["pages.slug", "1 value", "varchar(255)", "--ignore-errors"] {
        assert!(message.contains(word), "{word}: {message}");
    }
    assert!(mysql_tables(&my).await.is_empty(), "nothing written");

    // The application's own table, narrower than the source's values: out-of-range integers.
    let mut conn = my.conn().await;
    conn.query_drop("CREATE TABLE counters (id int NOT NULL PRIMARY KEY, hits int NOT NULL)")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    let e = checked(&sqlite(&src), &my.locator(), &only("counters"))
        .await
        .unwrap_err();
    let message = e.to_string();
    for word in ["counters.hits", "id=2", "out of range", "--ignore-errors"] {
        assert!(message.contains(word), "{word}: {message}");
    }
    let mut conn = my.conn().await;
    let rows: Option<i64> = conn
        .query_first("SELECT count(*) FROM counters")
        .await
        .unwrap();
    assert_eq!(rows, Some(0), "nothing written");
    conn.disconnect().await.unwrap();

    // The dry run names the same problem as a warning; --ignore-errors sends the row to a
    // reject file and copies the others.
    let dry = ferry::CopyOptions {
        dry_run: true,
        ..only("counters")
    };
    let report = checked(&sqlite(&src), &my.locator(), &dry).await.unwrap();
    assert!(
        report.warnings.iter().any(|w| w.contains("counters.hits")),
        "{:?}",
        report.warnings
    );
    let ignoring = ferry::CopyOptions {
        ignore_errors: true,
        ..only("counters")
    };
    let report = checked(&sqlite(&src), &my.locator(), &ignoring)
        .await
        .unwrap();
    assert_eq!(report.stats["counters"].migrated, 1, "{report:?}");
    assert_eq!(report.stats["counters"].failed, 1, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_the_target_refuses_is_found_before_writing_and_the_scratch_database_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let pg = TestDb::new().await;
    // Four varchar(255) columns make a 4,080-byte utf8mb4 key: over InnoDB's 3,072.
    pg.client()
        .await
        .batch_execute(
            "CREATE TABLE addresses (id serial PRIMARY KEY, street varchar(255), city varchar(255),
               region varchar(255), country varchar(255));
             CREATE INDEX addresses_lookup ON addresses (street, city, region, country);
             INSERT INTO addresses (street, city, region, country) VALUES ('1 Main St', 'Springfield', 'IL', 'US');",
        )
        .await
        .unwrap();
    let my = MyDb::new().await;
    for dry_run in [true, false] {
        let o = ferry::CopyOptions {
            dry_run,
            ..options(dir.path())
        };
        let e = checked(&pg.locator(), &my.locator(), &o).await.unwrap_err();
        let message = e.to_string();
        for word in [
            "refuses 1 statement",
            "addresses_lookup",
            "nothing was written",
        ] {
            assert!(message.contains(word), "{word}: {message}");
        }
        assert!(mysql_tables(&my).await.is_empty(), "nothing written");
    }
    let mut conn = my.conn().await;
    let left: Vec<String> = conn
        .query(format!(
            "SHOW DATABASES LIKE 'ferry\\_preflight\\_{}\\_%'",
            std::process::id()
        ))
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    assert!(left.is_empty(), "scratch databases left: {left:?}");
}
