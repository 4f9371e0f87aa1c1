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

/// [`checked`] for a run that must be refused: its message.
async fn refusal(
    source: &ferry::Locator,
    target: &ferry::Locator,
    options: &ferry::CopyOptions,
) -> String {
    checked(source, target, options)
        .await
        .expect_err("refused")
        .to_string()
}

/// Sakila's habit: index names unique per table only, so three tables each have an
/// `idx_fk_address_id` (`staff` and `store` are one shape: a key and an address).
fn sakila_like() -> String {
    let branch = |table: &str, address: u8| {
        format!(
            "CREATE TABLE {table} (
  {table}_id TINYINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  address_id SMALLINT UNSIGNED NOT NULL,
  KEY idx_fk_address_id (address_id),
  CONSTRAINT fk_{table}_address FOREIGN KEY (address_id) REFERENCES address (address_id) ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB;
INSERT INTO {table} VALUES (1, {address});
"
        )
    };
    format!(
        r#"
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
{}{}"#,
        branch("staff", 1),
        branch("store", 2)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_index_names_are_scoped_to_their_table_in_postgres_and_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let my = MyDb::with(&sakila_like()).await;
    let renamed = ["customer", "staff", "store"].map(|t| format!("{t}_idx_fk_address_id"));

    let pg = TestDb::new().await;
    // The dry run proves the DDL in a transaction it rolls back: nothing stays behind.
    let dry = dry_run(options(dir.path()));
    checked(&my.locator(), &pg.locator(), &dry).await.unwrap();
    assert!(pg.tables().await.is_empty());

    let report = checked(&my.locator(), &pg.locator(), &options(dir.path()))
        .await
        .unwrap();
    assert_verified(&report);
    for name in &renamed {
        assert_any_line(&report.translations, |w| {
            w.contains(&format!("renamed '{name}'"))
        });
    }
    let indexes: Vec<String> = pg
        .column("SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'")
        .await;
    for name in renamed.iter().map(String::as_str).chain(["idx_email"]) {
        assert!(indexes.iter().any(|i| i == name), "{name}: {indexes:?}");
    }
    assert_no_line(&report.translations, |w| w.contains("longer than"));

    let out = dir.path().join("sakila.db");
    let report = checked(&my.locator(), &sqlite(&out), &options(dir.path()))
        .await
        .unwrap();
    assert_verified(&report);
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
    let (dir, src) = temp_sqlite("app.db", NULL_KEYS);
    let named = |r: &Report| {
        r.lossy
            .iter()
            .any(|l| l.starts_with("settings.key:") && l.contains("created as UNIQUE"))
    };
    // A copy into `target` names the change and verifies.
    let copy_into = async |target: &ferry::Locator| {
        let report = checked(&sqlite(&src), target, &options(dir.path()))
            .await
            .unwrap();
        assert!(named(&report), "{:?}", report.lossy);
        assert_verified(&report);
    };

    let pg = TestDb::new().await;
    copy_into(&pg.locator()).await;
    let kinds: Vec<String> = pg.column("SELECT contype::text FROM pg_constraint WHERE conrelid = 'settings'::regclass ORDER BY 1").await;
    assert_eq!(kinds, ["u"]);
    let rows: i64 = pg
        .value("SELECT count(*) FROM settings WHERE key IS NULL")
        .await;
    assert_eq!(rows, 2);

    let my = MyDb::new().await;
    copy_into(&my.locator()).await;
    let kinds: Vec<String> = my
        .rows("SELECT constraint_type FROM information_schema.table_constraints WHERE table_schema = ? AND table_name = 'settings'")
        .await;
    assert_eq!(kinds, ["UNIQUE"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_null_on_a_not_null_column_becomes_no_action_in_mysql() {
    let dir = tempfile::tempdir().unwrap();
    let pg = TestDb::with("CREATE TABLE authors (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text NOT NULL);
             CREATE TABLE books (
               id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
               author_id bigint NOT NULL REFERENCES authors ON DELETE SET NULL ON UPDATE CASCADE,
               editor_id bigint REFERENCES authors ON DELETE SET NULL,
               title text NOT NULL);
             INSERT INTO authors (name) VALUES ('Le Guin'), ('Pratchett');
             INSERT INTO books (author_id, editor_id, title) VALUES (1, 2, 'The Dispossessed'), (2, NULL, 'Mort');").await;
    let my = MyDb::new().await;
    let report = checked(&pg.locator(), &my.locator(), &options(dir.path()))
        .await
        .unwrap();
    assert_verified(&report);
    assert_any_line(&report.translations, |w| {
        w.contains("books(author_id)")
            && w.contains("ON DELETE SET NULL")
            && w.contains("NO ACTION")
    });
    let rules: Vec<(String, String)> = my.rows("SELECT k.column_name, r.delete_rule FROM information_schema.referential_constraints r
             JOIN information_schema.key_column_usage k
               ON k.constraint_schema = r.constraint_schema AND k.constraint_name = r.constraint_name
             WHERE r.constraint_schema = ? ORDER BY 1").await;
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
    let message = refusal(&sqlite(&src), &my.locator(), &only("pages")).await;
    assert_mentions(
        &message,
        &["pages.slug", "1 value", "varchar(255)", "--ignore-errors"],
    );
    assert!(my.tables().await.is_empty(), "nothing written");

    // The application's own table, narrower than the source's values: out-of-range integers.
    my.execute("CREATE TABLE counters (id int NOT NULL PRIMARY KEY, hits int NOT NULL)")
        .await;
    let message = refusal(&sqlite(&src), &my.locator(), &only("counters")).await;
    assert_mentions(
        &message,
        &["counters.hits", "id=2", "out of range", "--ignore-errors"],
    );
    let rows: Vec<i64> = my.rows("SELECT count(*) FROM counters").await;
    assert_eq!(rows, [0], "nothing written");

    // The dry run names the same problem as a warning; --ignore-errors sends the row to a
    // reject file and copies the others.
    let dry = dry_run(only("counters"));
    let report = checked(&sqlite(&src), &my.locator(), &dry).await.unwrap();
    assert_any_line(&report.warnings, |w| w.contains("counters.hits"));
    let ignoring = ignoring_errors(only("counters"));
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
    pg.execute("CREATE TABLE addresses (id serial PRIMARY KEY, street varchar(255), city varchar(255),
               region varchar(255), country varchar(255));
             CREATE INDEX addresses_lookup ON addresses (street, city, region, country);
             INSERT INTO addresses (street, city, region, country) VALUES ('1 Main St', 'Springfield', 'IL', 'US');").await;
    let my = MyDb::new().await;
    for dry_run in [true, false] {
        let o = ferry::CopyOptions {
            dry_run,
            ..options(dir.path())
        };
        let message = refusal(&pg.locator(), &my.locator(), &o).await;
        assert_mentions(
            &message,
            &[
                "refuses 1 statement",
                "addresses_lookup",
                "nothing was written",
            ],
        );
        assert!(my.tables().await.is_empty(), "nothing written");
    }
    let left: Vec<String> = my
        .rows(&format!(
            "SHOW DATABASES LIKE 'ferry\\_preflight\\_{}\\_%'",
            std::process::id()
        ))
        .await;
    assert!(left.is_empty(), "scratch databases left: {left:?}");
}

/// PostgreSQL compares keys byte for byte; MariaDB's `utf8mb4_bin` (and every `PAD SPACE`
/// collation) ignores trailing spaces, so `'rust'` and `'rust '` would be one key there and
/// `ADD PRIMARY KEY` would fail after every row was copied. Found by the scan before writing:
/// those columns are created with the server's `NO PAD` binary collation, named as a
/// translation (refused by strict mode). Case differences stay distinct too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_values_differing_by_trailing_spaces_or_case_stay_distinct_in_mysql() {
    let dir = tempfile::tempdir().unwrap();
    let pg = TestDb::with("CREATE TABLE tags (name text PRIMARY KEY, uses int NOT NULL DEFAULT 0);
             INSERT INTO tags VALUES ('rust', 4), ('rust ', 1), ('Rust', 2);
             CREATE TABLE accounts (id serial PRIMARY KEY, handle varchar(40) NOT NULL UNIQUE, note text);
             INSERT INTO accounts (handle, note) VALUES ('ada', 'first'), ('Ada', 'case'), ('bob', NULL);
             CREATE TABLE labels (id serial PRIMARY KEY, label text NOT NULL);
             INSERT INTO labels (label) VALUES ('x'), ('x ');").await;
    let my = MyDb::new().await;

    let message = refusal(&pg.locator(), &my.locator(), &strict(options(dir.path()))).await;
    assert_mentions(
        &message,
        &["strict", "tags(name)", "trailing spaces", "name='rust'"],
    );
    assert!(
        !message.contains("accounts(handle)"),
        "case is kept by utf8mb4_bin: {message}"
    );
    assert!(my.tables().await.is_empty(), "nothing written");

    let report = checked(&pg.locator(), &my.locator(), &options(dir.path()))
        .await
        .unwrap();
    assert_verified(&report);
    assert_eq!(report.stats["tags"].migrated, 3);
    let translated: Vec<&String> = report
        .translations
        .iter()
        .filter(|t| t.contains("trailing spaces"))
        .collect();
    assert_eq!(
        translated.len(),
        1,
        "only tags.name: {:?}",
        report.translations
    );
    assert!(translated[0].contains("COLLATE"), "{translated:?}");
    let collations: Vec<(String, String, String)> = my
        .rows(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns
             WHERE table_schema = ? AND collation_name IS NOT NULL ORDER BY 1, 2",
        )
        .await;
    for (table, column, collation) in &collations {
        let nopad = collation.contains("nopad") || collation.contains("0900");
        assert_eq!(
            nopad,
            table == "tags" && column == "name",
            "{table}.{column} {collation}"
        );
    }
    let rows: Vec<(String, i32)> = my.rows("SELECT name, uses FROM tags ORDER BY uses").await;
    assert_eq!(
        rows,
        [
            ("rust ".to_string(), 1),
            ("Rust".to_string(), 2),
            ("rust".to_string(), 4)
        ]
    );
}

/// Go (`time.Time` via gorm) writes nine fractional digits; PostgreSQL keeps microseconds. A
/// real run counts the rounded values as it copies; strict mode finds them before writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_refuses_sub_microsecond_rounding_before_writing() {
    let (dir, src) = temp_sqlite("gorm.db", "CREATE TABLE `events` (`id` integer PRIMARY KEY AUTOINCREMENT,`name` text,`created_at` datetime);
             INSERT INTO events VALUES (1, 'signup', '2026-07-08 12:00:28.111135256'),
               (2, 'login', '2026-07-08 12:01:02.5'), (3, 'logout', '2026-07-08 12:03:00.000001000');");
    let pg = TestDb::new().await;
    let message = refusal(&sqlite(&src), &pg.locator(), &strict(options(dir.path()))).await;
    assert_mentions(
        &message,
        &[
            "strict",
            "events.created_at",
            "1 value had sub-microsecond digits",
            "id=1",
        ],
    );
    assert!(pg.tables().await.is_empty(), "nothing written");

    // The dry run names it as lossy; a real run copies and counts it.
    let dry = dry_run(options(dir.path()));
    let report = checked(&sqlite(&src), &pg.locator(), &dry).await.unwrap();
    assert_any_line(&report.lossy, |l| {
        l.starts_with("events.created_at: 1 value had sub-microsecond")
    });
    let report = checked(&sqlite(&src), &pg.locator(), &options(dir.path()))
        .await
        .unwrap();
    assert_any_line(&report.lossy, |l| {
        l.starts_with("events.created_at: 1 value had sub-microsecond")
    });
}

/// AUTO_INCREMENT on BIGINT UNSIGNED, on a key's second column, and on a column that is not
/// the primary key: MySQL needs the column to be an integer (error 1063) and the first
/// column of a key at creation (error 1075). Each copy succeeds and the counter keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_increment_columns_are_recreated_in_mysql_from_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    async fn autos(my: &MyDb) -> Vec<(String, String, String)> {
        my.rows(
            "SELECT table_name, column_name, column_type FROM information_schema.columns
             WHERE table_schema = ? AND extra LIKE '%auto_increment%' ORDER BY 1",
        )
        .await
    }
    async fn insert_without_keys(my: &MyDb, statements: &[&str]) {
        for s in statements {
            my.execute(s).await;
        }
    }

    // MySQL → MySQL.
    let src = MyDb::with("CREATE TABLE downloads (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, file VARCHAR(100) NOT NULL) ENGINE=InnoDB;
         INSERT INTO downloads VALUES (18446744073709551000, 'iso'), (7, 'tar');
         CREATE TABLE order_lines (order_id INT UNSIGNED NOT NULL, line_no INT UNSIGNED NOT NULL AUTO_INCREMENT,
           sku VARCHAR(20) NOT NULL, PRIMARY KEY (order_id, line_no), KEY line_no (line_no)) ENGINE=InnoDB;
         INSERT INTO order_lines VALUES (1, 1, 'A-1'), (1, 2, 'B-2'), (2, 3, 'A-1');
         CREATE TABLE invoices (code CHAR(12) NOT NULL PRIMARY KEY, number INT UNSIGNED NOT NULL AUTO_INCREMENT UNIQUE) ENGINE=InnoDB;
         INSERT INTO invoices VALUES ('INV-A', 1), ('INV-B', 2);").await;
    let my = MyDb::new().await;
    let report = checked(&src.locator(), &my.locator(), &options(dir.path()))
        .await
        .unwrap();
    assert_verified(&report);
    assert_eq!(
        autos(&my).await,
        [
            (
                "downloads".into(),
                "id".into(),
                "bigint(20) unsigned".into()
            ),
            (
                "invoices".into(),
                "number".into(),
                "int(10) unsigned".into()
            ),
            (
                "order_lines".into(),
                "line_no".into(),
                "int(10) unsigned".into()
            ),
        ]
    );
    insert_without_keys(
        &my,
        &[
            "INSERT INTO downloads (file) VALUES ('zip')",
            "INSERT INTO order_lines (order_id, sku) VALUES (2, 'C-3')",
            "INSERT INTO invoices (code) VALUES ('INV-C')",
        ],
    )
    .await;

    // PostgreSQL → MySQL: an identity on a key's second column, a serial that is not the key.
    let pg = TestDb::with("CREATE TABLE order_lines (order_id int NOT NULL, line_no int GENERATED BY DEFAULT AS IDENTITY,
               sku text NOT NULL, PRIMARY KEY (order_id, line_no));
             INSERT INTO order_lines (order_id, sku) VALUES (1, 'A-1'), (1, 'B-2'), (2, 'A-1');
             CREATE TABLE invoices (code varchar(12) PRIMARY KEY, number serial UNIQUE);
             INSERT INTO invoices (code) VALUES ('INV-A'), ('INV-B');").await;
    let my = MyDb::new().await;
    let report = checked(&pg.locator(), &my.locator(), &options(dir.path()))
        .await
        .unwrap();
    assert_verified(&report);
    let found: Vec<(String, String)> = autos(&my)
        .await
        .into_iter()
        .map(|(t, c, _)| (t, c))
        .collect();
    assert_eq!(
        found,
        [
            ("invoices".into(), "number".into()),
            ("order_lines".into(), "line_no".into())
        ]
    );
    insert_without_keys(
        &my,
        &[
            "INSERT INTO order_lines (order_id, sku) VALUES (2, 'C-3')",
            "INSERT INTO invoices (code) VALUES ('INV-C')",
        ],
    )
    .await;

    // SQLite → MySQL.
    let file = dir.path().join("notes.db");
    make_sqlite(
        &file,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
             INSERT INTO notes (body) VALUES ('one'), ('two');",
    );
    let my = MyDb::new().await;
    let report = checked(&sqlite(&file), &my.locator(), &options(dir.path()))
        .await
        .unwrap();
    assert_verified(&report);
    assert_eq!(autos(&my).await.len(), 1);
    insert_without_keys(&my, &["INSERT INTO notes (body) VALUES ('three')"]).await;
}

/// PostgreSQL defaults that are expressions: replayed verbatim between two PostgreSQL
/// databases (a sequence the column does not own included), translated across backends where
/// the target has the same meaning, and every dropped one named (so strict mode refuses it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_expression_defaults_are_kept_translated_or_named() {
    let dir = tempfile::tempdir().unwrap();
    let pg = TestDb::with("CREATE SEQUENCE ticket_numbers START 1000;
             CREATE FUNCTION default_team() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'triage' $$;
             COMMENT ON FUNCTION default_team() IS 'Where new tickets land';
             CREATE TABLE tickets (
               id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
               number bigint NOT NULL DEFAULT nextval('ticket_numbers'),
               token uuid NOT NULL DEFAULT gen_random_uuid(),
               opened_at timestamptz NOT NULL DEFAULT now(),
               opened_on date NOT NULL DEFAULT CURRENT_DATE,
               due_on date DEFAULT (CURRENT_DATE + 30),
               queue text NOT NULL DEFAULT lower('SUPPORT'),
               status text NOT NULL DEFAULT 'open'::text,
               urgent boolean NOT NULL DEFAULT false,
               team text NOT NULL DEFAULT default_team());
             INSERT INTO tickets DEFAULT VALUES;").await;
    let columns = "SELECT column_name::text, coalesce(column_default, '') FROM information_schema.columns WHERE table_name = 'tickets' ORDER BY ordinal_position";

    // PostgreSQL → PostgreSQL: every default as the source has it.
    let copy = TestDb::new().await;
    let report = checked(&pg.locator(), &copy.locator(), &options(dir.path()))
        .await
        .unwrap();
    assert_verified(&report);
    assert_no_line(&report.lossy, |l| l.contains("default"));
    let read = |rows: Vec<tokio_postgres::Row>| -> Vec<(String, String)> {
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    // now() and CURRENT_TIMESTAMP are one function to PostgreSQL (ferry models both as "the
    // current instant"); everything else is the source's text.
    let source: Vec<(String, String)> = read(pg_query(&pg.client().await, columns).await)
        .into_iter()
        .map(|(c, d)| (c, d.replace("now()", "CURRENT_TIMESTAMP")))
        .collect();
    let target = read(pg_query(&copy.client().await, columns).await);
    assert_eq!(source, target);
    copy.execute("INSERT INTO tickets DEFAULT VALUES").await;
    let comment: Option<String> = pg_value(
        &copy.client().await,
        "SELECT obj_description('default_team'::regproc, 'pg_proc')",
    )
    .await;
    assert_eq!(comment.as_deref(), Some("Where new tickets land"));

    // PostgreSQL → MySQL: the portable ones translated, the others named as dropped.
    let my = MyDb::new().await;
    assert_mentions(
        &refusal(&pg.locator(), &my.locator(), &strict(options(dir.path()))).await,
        &[
            "tickets.number",
            "nextval",
            "tickets.token",
            "tickets.queue",
        ],
    );
    let report = checked(&pg.locator(), &my.locator(), &options(dir.path()))
        .await
        .unwrap();
    assert_verified(&report);
    for column in ["number", "token", "due_on", "queue", "team"] {
        assert_any_line(&report.lossy, |l| {
            l.starts_with(&format!("tickets.{column}:")) && l.contains("dropped")
        });
    }
    for column in ["opened_at", "opened_on", "status", "urgent"] {
        assert_no_line(&report.lossy, |l| {
            l.starts_with(&format!("tickets.{column}:")) && l.contains("default")
        });
    }
    my.execute(
        "INSERT INTO tickets (number, token, queue, team) VALUES (5, 'x', 'support', 'triage')",
    )
    .await;
    let rows: Vec<(String, String, i64)> = my
        .rows("SELECT status, CAST(opened_on AS CHAR), urgent FROM tickets WHERE number = 5")
        .await;
    let [(status, opened_on, urgent)] = rows.try_into().expect("one ticket numbered 5");
    assert_eq!((status.as_str(), urgent), ("open", 0));
    assert_eq!(opened_on.len(), 10, "{opened_on}");
}

/// `--ignore-errors` copies orphan rows and leaves their foreign key out of the target: a
/// constraint not copied, which strict mode refuses before writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_refuses_a_foreign_key_left_out_for_orphans() {
    let (dir, src) = temp_sqlite("blog.db", "PRAGMA foreign_keys = OFF;
             CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER REFERENCES authors(id), title TEXT NOT NULL);
             INSERT INTO authors VALUES (1, 'Ann');
             INSERT INTO posts VALUES (10, 1, 'Hello'), (11, 99, 'Left behind by a deleted author');");
    let pg = TestDb::new().await;
    let ignoring = ignoring_errors(options(dir.path()));
    let message = refusal(&sqlite(&src), &pg.locator(), &strict(ignoring.clone())).await;
    assert_mentions(
        &message,
        &[
            "strict",
            "not copied: foreign key posts(author_id)",
            "id=11",
        ],
    );
    assert!(pg.tables().await.is_empty(), "nothing written");

    let report = checked(&sqlite(&src), &pg.locator(), &ignoring)
        .await
        .unwrap();
    assert_eq!(report.stats["posts"].migrated, 2);
    assert!(
        report
            .not_copied
            .iter()
            .any(|o| o.kind == "foreign key" && o.name.starts_with("posts(author_id)")),
        "{:?}",
        report.not_copied
    );
}
