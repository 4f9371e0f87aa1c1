//! MySQL/MariaDB in both directions against the real server: its quirks (unsigned integers,
//! tinyint(1), ENUM/SET, YEAR, zero dates, latin1 text, AUTO_INCREMENT) arrive in PostgreSQL,
//! and SQLite's quirks arrive in MySQL, each verified.

mod common;

use common::*;
use ferry::Status;
use mysql_async::prelude::Queryable;

const FIXTURE: &str = r#"
SET sql_mode = '';
CREATE TABLE accounts (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  big BIGINT UNSIGNED,
  small TINYINT UNSIGNED,
  active TINYINT(1) NOT NULL DEFAULT 1,
  kind ENUM('free','pro') NOT NULL DEFAULT 'free',
  tags SET('a','b','c'),
  born YEAR,
  joined DATE,
  seen DATETIME(6),
  stamp TIMESTAMP NULL,
  span TIME,
  balance DECIMAL(30,10),
  ratio DOUBLE,
  approx FLOAT,
  name VARCHAR(40) CHARACTER SET latin1,
  bio TEXT,
  avatar BLOB,
  prefs JSON
) ENGINE=InnoDB;
INSERT INTO accounts VALUES
  (1, 18446744073709551615, 255, 1, 'pro', 'a,c', 2024, '0999-01-01', '2024-02-29 23:59:59.123456', '2024-01-02 03:04:05', '12:30:00', 12345678901234567890.0123456789, 0.1, 1.5, 'Zoë Ångström', 'bio', x'00ff', '{"b": 1, "a": [1, 2]}'),
  (2, 0, 0, 0, 'free', '', 1999, '2024-06-30', NULL, NULL, '00:00:01', -1.5, -1e308, NULL, 'plain', '', x'', NULL),
  (7, NULL, NULL, 1, 'free', NULL, NULL, '0000-00-00', '0000-00-00 00:00:00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE posts (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account_id INT UNSIGNED NOT NULL,
  title VARCHAR(200) NOT NULL,
  KEY by_account (account_id),
  CONSTRAINT posts_account FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
) ENGINE=InnoDB;
INSERT INTO posts (id, account_id, title) VALUES (10, 1, 'hello'), (11, 2, 'it''s'), (12, 1, 'back\\slash');
CREATE TABLE log (at DATETIME, msg TEXT);
INSERT INTO log VALUES ('2024-01-01 00:00:00', 'one'), ('2024-01-01 00:00:00', 'one');
CREATE VIEW pro AS SELECT * FROM accounts WHERE kind = 'pro';
"#;

async fn load_fixture(db: &MyDb) {
    let mut conn = db.conn().await;
    conn.query_drop(FIXTURE).await.expect("fixture loads");
    conn.disconnect().await.unwrap();
}

fn with_zero_dates_null(db: &MyDb) -> ferry::Locator {
    ferry::parse_locator(&format!("{}?zero_dates=null", db.url)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_quirks_arrive_in_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let my = MyDb::new().await;
    load_fixture(&my).await;

    // Zero dates are row failures by default, named by key.
    let (_pg, report) = plain_copy_to_new::<TestDb>(&my.locator(), dir.path()).await;
    assert_eq!(report.status, Status::Failed);
    let error = report.error.unwrap();
    assert_mentions(&error, &["accounts", "id=7", "zero date"]);

    // With the explicit option they become NULL, and everything verifies.
    let (pg, report) = copied_to_new::<TestDb>(&with_zero_dates_null(&my), dir.path()).await;
    assert_eq!(report.verify.len(), 3);
    assert!(
        report
            .not_copied
            .iter()
            .any(|s| s.kind == "view" && s.name == "pro")
    );
    let lossy = report.lossy.join("\n");
    assert_mentions(&lossy, &["accounts.kind", "accounts.tags"]);

    let c = pg.client().await;
    let ty = |col: &'static str| {
        let c = &c;
        async move {
            let r = c
                .query_one("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attname = $1", &[&col])
                .await
                .unwrap();
            r.get::<_, String>(0)
        }
    };
    assert_eq!(ty("id").await, "bigint", "INT UNSIGNED widens");
    assert_eq!(
        ty("big").await,
        "numeric(20,0)",
        "BIGINT UNSIGNED holds 2^64-1"
    );
    assert_eq!(ty("active").await, "boolean");
    assert_eq!(ty("stamp").await, "timestamp with time zone");
    assert_eq!(ty("seen").await, "timestamp without time zone");
    assert_eq!(ty("balance").await, "numeric(30,10)");
    assert_eq!(ty("ratio").await, "double precision");
    assert_eq!(ty("approx").await, "real");
    let row = c
        .query_one(
            "SELECT big::text, small, active, kind, tags, born, joined::text, seen::text, balance::text, name, avatar, prefs::text FROM accounts WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "18446744073709551615");
    assert_eq!(row.get::<_, i16>(1), 255);
    assert!(row.get::<_, bool>(2));
    assert_eq!(row.get::<_, String>(3), "pro");
    assert_eq!(row.get::<_, String>(4), "a,c");
    assert_eq!(row.get::<_, i16>(5), 2024);
    assert_eq!(
        row.get::<_, String>(6),
        "0999-01-01",
        "dates before year 1000 survive"
    );
    assert_eq!(row.get::<_, String>(7), "2024-02-29 23:59:59.123456");
    assert_eq!(row.get::<_, String>(8), "12345678901234567890.0123456789");
    assert_eq!(
        row.get::<_, String>(9),
        "Zoë Ångström",
        "latin1 text arrives as the same characters"
    );
    assert_eq!(row.get::<_, Vec<u8>>(10), [0, 0xff]);
    let zero: Option<String> = pg_value(&c, "SELECT joined::text FROM accounts WHERE id = 7").await;
    assert_eq!(zero, None);
    let titles: Vec<String> = pg_column(&c, "SELECT title FROM posts ORDER BY id").await;
    assert_eq!(titles, ["hello", "it's", "back\\slash"]);
    let next: i64 = pg_value(
        &c,
        "INSERT INTO accounts (active, kind) VALUES (true, 'x') RETURNING id",
    )
    .await;
    assert_eq!(
        next, 8,
        "AUTO_INCREMENT becomes an identity past the copied maximum"
    );
    let fks: i64 = pg_value(&c, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'").await;
    assert_eq!(fks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_quirks_arrive_in_mysql_and_come_back() {
    let (dir, src) = temp_quirks_db();
    let my = MyDb::new().await;
    // MySQL stores neither invalid UTF-8 nor infinities: those tables are checked below.
    let opts = with_tables(options(dir.path()), &[], &["bad_text", "reals"]);
    let report = copy_with(&sqlite(&src), &my.locator(), &opts).await;
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert!(report.verify.values().all(|v| v.ok()));

    let mut conn = my.conn().await;
    let (flag, meta): (i64, String) = my_first(
        &mut conn,
        "SELECT active, meta FROM flags, docs WHERE flags.id = 1 AND docs.id = 1",
    )
    .await;
    assert_eq!((flag, meta.as_str()), (1, r#"{"b": 1, "a": [1, 2]}"#));
    let name: String = my_first(&mut conn, "SELECT name FROM tree WHERE id = 10").await;
    assert_eq!(name, "Ünïcödé ✓");
    let long: Vec<String> = conn.query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'a_table%'").await.unwrap();
    assert_eq!(long.len(), 2);
    assert!(long.iter().all(|n| n.len() <= 64));
    conn.disconnect().await.unwrap();

    // Back from MySQL into a new SQLite file: verified again.
    let back = dir.path().join("back.db");
    let report = copied(&my.locator(), &sqlite(&back), dir.path()).await;
    assert!(report.verify.len() >= 15);

    // Values MySQL cannot hold are reported row failures, not silent changes.
    let my2 = MyDb::new().await;
    let opts = ignoring_errors(with_tables(
        options(dir.path()),
        &["reals", "bad_text"],
        &[],
    ));
    let report = copy_with(&sqlite(&src), &my2.locator(), &opts).await;
    assert_eq!(report.exit_code(), 1);
    assert_eq!(
        report.stats["reals"].failed, 2,
        "+Infinity and -Infinity: {:?}",
        report.stats["reals"].errors
    );
    assert_eq!(report.stats["bad_text"].failed, 1);
    assert!(
        report.stats["reals"]
            .errors
            .iter()
            .all(|e| e.contains("infinity")),
        "{:?}",
        report.stats["reals"].errors
    );
}

/// Rows loaded with `foreign_key_checks` off (how dumps are restored) can be orphans: found
/// before any write and reported by key, as for SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_orphans_are_found_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let my = MyDb::with("CREATE TABLE users (id INT PRIMARY KEY, name TEXT) ENGINE=InnoDB;
         CREATE TABLE posts (id INT PRIMARY KEY, user_id INT, FOREIGN KEY (user_id) REFERENCES users(id)) ENGINE=InnoDB;
         INSERT INTO users VALUES (1, 'a');
         SET foreign_key_checks = 0;
         INSERT INTO posts VALUES (10, 1), (11, 99), (12, NULL);
         SET foreign_key_checks = 1;").await;
    let db = TestDb::new().await;
    let err = copy_refused(&my.locator(), &db.locator(), &options(dir.path()), false).await;
    let msg = err.to_string();
    assert_mentions(&msg, &["1 row(s) of \"posts\"", "id=11"]);
}

/// `localhost` and `127.0.0.1` are one MySQL server: copying a database into itself is refused
/// before anything is written, `--force` or not, and the source keeps its rows.
#[tokio::test(flavor = "multi_thread")]
async fn the_same_mysql_database_under_another_spelling_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let my = MyDb::new().await;
    let mut conn = my.conn().await;
    conn.query_drop(
        "CREATE TABLE items (id INT PRIMARY KEY, name TEXT) ENGINE=InnoDB;
         INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    )
    .await
    .unwrap();
    let rows = "SELECT id, name FROM items ORDER BY id";
    let before: Vec<(i32, String)> = conn.query(rows).await.unwrap();
    let source = my.locator();
    let mut url = url::Url::parse(&my.url).unwrap();
    let other = match url.host_str() {
        Some("127.0.0.1") => "localhost",
        Some("localhost") => "127.0.0.1",
        other => panic!("this test spells the server as localhost and 127.0.0.1, not {other:?}"),
    };
    url.set_host(Some(other)).unwrap();
    let mut targets = vec![ferry::parse_locator(url.as_str()).unwrap()];
    // The default port written or left out (only where the server listens on it).
    let mut port = url::Url::parse(&my.url).unwrap();
    if port.port_or_known_default().unwrap_or(3306) == 3306 {
        let toggled = if port.port().is_some() {
            None
        } else {
            Some(3306)
        };
        port.set_port(toggled).unwrap();
        targets.push(ferry::parse_locator(port.as_str()).unwrap());
    }
    for (target, force) in targets
        .iter()
        .flat_map(|t| [(t.clone(), false), (t.clone(), true)])
    {
        let o = ferry::CopyOptions {
            force,
            ..options(dir.path())
        };
        let err = copy_refused(&source, &target, &o, true).await;
        assert_eq!(err.exit_code(), 2, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("are the same database")
                && msg.contains(&format!("schema `{}`", my.name))
                && !msg.contains('\n'),
            "{msg}"
        );
        let after: Vec<(i32, String)> = conn.query(rows).await.unwrap();
        assert_eq!(after, before);
    }
    conn.disconnect().await.unwrap();
}
