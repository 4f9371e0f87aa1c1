//! Values arrive as the application wrote them, and every change is announced or refused
//! (issue 13, sections 2 and 3), against the real servers: a shop's numeric totals and
//! timestamps keep SQLite's usual declared types and storage classes from PostgreSQL and from
//! MySQL; PostgreSQL domains arrive as their base type and arrays as JSON arrays; a SQLite
//! column holding what its declaration does not promise is announced by every run and refused,
//! before anything is written, under strict mode.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use mysql_async::prelude::Queryable;

/// A web shop as its ORM creates it in PostgreSQL: money as numeric(10,2), a big exact counter,
/// timestamps with and without a zone, a date, a flag.
const SHOP_PG: &str = "
    CREATE TABLE customers (
        id bigserial PRIMARY KEY,
        email varchar(120) NOT NULL UNIQUE,
        vip boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE orders (
        id bigserial PRIMARY KEY,
        customer_id bigint NOT NULL REFERENCES customers(id),
        total numeric(10,2) NOT NULL,
        placed_at timestamp(6) NOT NULL,
        ships_on date,
        pickup_at time,
        ledger_units numeric(20,4)
    );
    INSERT INTO customers (email, vip, created_at) VALUES
      ('ann@example.com', true, '2025-03-01 09:15:00.123456+01'),
      ('bob@example.com', false, '2025-03-02 18:00:00+00');
    INSERT INTO orders (customer_id, total, placed_at, ships_on, pickup_at, ledger_units) VALUES
      (1, 12.50, '2025-03-01 10:00:00', '2025-03-03', '14:30:00', 1234567890123456.7891),
      (1, 3.00, '2025-03-01 11:30:00.5', NULL, NULL, NULL),
      (2, 99999999.99, '2025-03-02 18:05:00', '2025-03-04', '09:00:00', 0.0001);
";

/// The same shop as a MySQL application declares it.
const SHOP_MY: &str = "
    CREATE TABLE customers (id bigint AUTO_INCREMENT PRIMARY KEY, email varchar(120) NOT NULL UNIQUE,
      vip tinyint(1) NOT NULL DEFAULT 0, created_at datetime(6) NOT NULL);
    CREATE TABLE orders (id bigint AUTO_INCREMENT PRIMARY KEY, customer_id bigint NOT NULL,
      total decimal(10,2) NOT NULL, placed_at datetime(6) NOT NULL, ships_on date, pickup_at time,
      ledger_units decimal(20,4),
      CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers(id));
    INSERT INTO customers (email, vip, created_at) VALUES
      ('ann@example.com', 1, '2025-03-01 08:15:00.123456'), ('bob@example.com', 0, '2025-03-02 18:00:00');
    INSERT INTO orders (customer_id, total, placed_at, ships_on, pickup_at, ledger_units) VALUES
      (1, 12.50, '2025-03-01 10:00:00', '2025-03-03', '14:30:00', 1234567890123456.7891),
      (1, 3.00, '2025-03-01 11:30:00.5', NULL, NULL, NULL),
      (2, 99999999.99, '2025-03-02 18:05:00', '2025-03-04', '09:00:00', 0.0001);
";

/// Each column's declared type, in order, as SQLite reports it.
fn declared(conn: &rusqlite::Connection, table: &str) -> Vec<(String, String)> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT name, type FROM pragma_table_info('{table}')"
        ))
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The declared type of each column of `table`, in order.
fn declared_types(conn: &rusqlite::Connection, table: &str) -> Vec<String> {
    declared(conn, table).into_iter().map(|(_, t)| t).collect()
}

/// Copies the shop from `src` (either server) into `dir/shop.db` and checks it as it arrived;
/// returns the file.
async fn shop_copied_to_sqlite(src: &ferry::Locator, dir: &Path) -> PathBuf {
    let file = dir.join("shop.db");
    let report = plain_copy(src, &sqlite(&file), dir).await;
    assert_shop_in_sqlite(&file, &report);
    file
}

/// Checks the shop as it arrived in a SQLite file, from either server.
fn assert_shop_in_sqlite(file: &Path, report: &ferry::Report) {
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    let conn = rusqlite::Connection::open(file).unwrap();
    let types = declared_types(&conn, "orders");
    assert_eq!(
        types,
        [
            "INTEGER",
            "INTEGER",
            "NUMERIC(10,2)",
            "DATETIME",
            "DATE",
            "TIME",
            "DECIMAL_TEXT(20,4)"
        ],
        "the usual SQLite names; only the 20-digit column keeps text affinity"
    );
    // The application's own query compares numbers, not strings ('3.00' > '12.50' as text).
    let big: Vec<i64> = conn
        .prepare("SELECT id FROM orders WHERE total > 5 ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(big, [1, 3]);
    let classes: Vec<(String, String, String, String)> = conn
        .prepare("SELECT typeof(total), typeof(placed_at), typeof(ships_on), typeof(ledger_units) FROM orders ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let s = |a: &str, b: &str, c: &str, d: &str| (a.into(), b.into(), c.into(), d.into());
    assert_eq!(
        classes,
        [
            s("real", "text", "text", "text"),
            s("integer", "text", "null", "null"),
            s("real", "text", "text", "text"),
        ]
    );
    let (total, units): (f64, String) = conn
        .query_row(
            "SELECT total, ledger_units FROM orders WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(total, 12.5);
    assert_eq!(
        units, "1234567890123456.7891",
        "every digit kept beyond a REAL"
    );
    let vip: (String, String) = conn
        .query_row(
            "SELECT (SELECT type FROM pragma_table_info('customers') WHERE name = 'vip'), typeof(vip) FROM customers WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(vip, ("BOOLEAN".to_string(), "integer".to_string()));
    let lossy = report.lossy.join("\n");
    assert_mentions(
        &lossy,
        &[
            "orders.ledger_units: numeric(20,4) has more digits than SQLite's NUMERIC keeps exactly (15): declared DECIMAL_TEXT(20,4)",
        ],
    );
    assert!(
        report
            .render()
            .contains("lossy: orders.ledger_units: numeric(20,4)"),
        "a real run prints it:\n{}",
        report.render()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shop_keeps_numbers_and_dates_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let src = TestDb::with(SHOP_PG).await;
    let file = shop_copied_to_sqlite(&src.locator(), dir.path()).await;
    let conn = rusqlite::Connection::open(&file).unwrap();
    let created: (String, String) = conn
        .query_row(
            "SELECT (SELECT type FROM pragma_table_info('customers') WHERE name = 'created_at'), created_at FROM customers WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        created,
        (
            "TIMESTAMPTZ".to_string(),
            "2025-03-01T08:15:00.123456+00:00".to_string()
        )
    );

    // And back: PostgreSQL gets numeric(10,2), timestamptz and date again, verified.
    let back = TestDb::new().await;
    copied(&sqlite(&file), &back.locator(), dir.path()).await;
    let types: Vec<String> = back.column("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attnum > 0 ORDER BY attnum").await;
    assert_eq!(
        types,
        [
            "bigint",
            "bigint",
            "numeric(10,2)",
            "timestamp without time zone",
            "date",
            "time without time zone",
            "numeric(20,4)"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_shop_keeps_numbers_and_dates_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let my = MyDb::with(SHOP_MY).await;
    shop_copied_to_sqlite(&my.locator(), dir.path()).await;
}

/// A PostgreSQL application with domains (a `year` over integer with its CHECK) and `text[]`
/// tags.
const CATALOG: &str = "
    CREATE DOMAIN year AS integer CHECK (VALUE >= 1901 AND VALUE <= 2155);
    CREATE DOMAIN price AS numeric(8,2) CHECK (VALUE >= 0);
    CREATE TABLE films (
        id serial PRIMARY KEY,
        title text NOT NULL,
        release_year year,
        rental_rate price NOT NULL DEFAULT 4.99,
        special_features text[],
        scores integer[][]
    );
    INSERT INTO films (title, release_year, rental_rate, special_features, scores) VALUES
      ('ACADEMY DINOSAUR', 2006, 0.99, '{\"Deleted Scenes\",\"Behind the Scenes\"}', '{{1,2},{3,4}}'),
      ('ACE GOLDFINGER', 2006, 4.99, '{Trailers,\"Deleted Scenes\",\"it''s, \\\"quoted\\\"\"}', NULL),
      ('ADAPTATION HOLES', NULL, 2.99, '{}', '{}');
";

async fn catalog_db() -> TestDb {
    TestDb::with(CATALOG).await
}

fn assert_domains_and_arrays_named(report: &ferry::Report) {
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert!(report.verify["films"].ok(), "{}", report.render());
    let not_copied: Vec<String> = report
        .not_copied
        .iter()
        .map(|s| format!("{} {}: {}", s.kind, s.name, s.reason))
        .collect();
    assert!(
        not_copied.iter().any(|n| n
            == "domain year: its constraint CHECK (((VALUE >= 1901) AND (VALUE <= 2155))) is not copied; its columns arrive as integer"),
        "{not_copied:?}"
    );
    let lossy = report.lossy.join("\n");
    assert_mentions(
        &lossy,
        &[
            "films.special_features: text[] is copied as a JSON array (its element type is not kept)",
        ],
    );
    assert!(
        !lossy.contains("films.release_year") && !lossy.contains("films.rental_rate"),
        "a domain over a portable type is that type, not text: {lossy}"
    );
    let shown = report.render();
    assert_mentions(
        &shown,
        &["not copied: domain year:", "lossy: films.special_features"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_domains_and_arrays_arrive_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let src = catalog_db().await;
    let file = dir.path().join("films.db");
    let report = plain_copy(&src.locator(), &sqlite(&file), dir.path()).await;
    assert_domains_and_arrays_named(&report);
    let conn = rusqlite::Connection::open(&file).unwrap();
    let types = declared_types(&conn, "films");
    assert_eq!(
        types,
        [
            "INTEGER",
            "TEXT",
            "INTEGER",
            "NUMERIC(8,2)",
            "JSON_TEXT",
            "JSON_TEXT"
        ]
    );
    let (year, class, tags, scores): (i64, String, String, String) = conn
        .query_row(
            "SELECT release_year, typeof(release_year), special_features, scores FROM films WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((year, class.as_str()), (2006, "integer"));
    assert_eq!(tags, r#"["Deleted Scenes","Behind the Scenes"]"#);
    assert_eq!(scores, "[[1,2],[3,4]]");
    let tags: String = conn
        .query_row("SELECT special_features FROM films WHERE id = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    let parsed: Vec<String> = serde_json::from_str(&tags).unwrap();
    assert_eq!(
        parsed,
        ["Trailers", "Deleted Scenes", "it's, \"quoted\""],
        "{tags}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_domains_and_arrays_arrive_in_mysql() {
    let dir = tempfile::tempdir().unwrap();
    let src = catalog_db().await;
    let (my, report) = plain_copy_to_new::<MyDb>(&src.locator(), dir.path()).await;
    assert_domains_and_arrays_named(&report);
    let mut conn = my.conn().await;
    let types: Vec<(String, String)> = conn
        .query("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'films' ORDER BY ORDINAL_POSITION")
        .await
        .unwrap();
    let types: Vec<&str> = types.iter().map(|(_, t)| t.as_str()).collect();
    // MariaDB spells JSON as longtext with a json_valid check.
    assert!(
        types == ["int", "longtext", "int", "decimal", "json", "json"]
            || types == ["int", "longtext", "int", "decimal", "longtext", "longtext"],
        "{types:?}"
    );
    let (year, first): (i64, String) = my_first(&mut conn, "SELECT release_year, JSON_UNQUOTE(JSON_EXTRACT(special_features, '$[0]')) FROM films WHERE id = 1").await;
    assert_eq!((year, first.as_str()), (2006, "Deleted Scenes"));
    conn.disconnect().await.unwrap();
}

/// Between two PostgreSQL databases the domains are recreated: nothing is named as not copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_domains_stay_domains_between_postgres_databases() {
    let dir = tempfile::tempdir().unwrap();
    let src = catalog_db().await;
    let (dst, report) = copied_to_new::<TestDb>(&src.locator(), dir.path()).await;
    assert!(
        report.not_copied.is_empty() && report.lossy.is_empty(),
        "{}",
        report.render()
    );
    let d = dst.client().await;
    let year: String = pg_value(&d, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'films'::regclass AND attname = 'release_year'").await;
    assert_eq!(year, "year");
    assert!(
        d.execute("UPDATE films SET release_year = 1800 WHERE id = 1", &[])
            .await
            .is_err(),
        "the domain's check came along"
    );
}

/// A SQLite app whose `INTEGER` column holds some texts (SQLite allows it).
fn products_db(dir: &Path) -> PathBuf {
    let path = dir.join("inventory.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE products (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, qty INTEGER, price NUMERIC(8,2));
         CREATE VIEW in_stock AS SELECT * FROM products WHERE qty > 0;
         INSERT INTO products (name, qty, price) VALUES ('bolt', 120, 0.25), ('nut', 'lots', 0.1), ('gear', 7, 12);",
    )
    .unwrap();
    path
}

const QTY_NOTE: &str =
    "products.qty: declared INTEGER but holds 2 integers, 1 texts: copied as text";

/// A real run (not only a dry run) names the type change and the view left behind, in the
/// report's lists, its rendering and its JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_run_announces_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let src = products_db(dir.path());
    let (_db, report) = copied_to_new::<TestDb>(&sqlite(&src), dir.path()).await;
    assert!(!report.dry_run);
    assert_eq!(report.lossy, [QTY_NOTE]);
    let shown = report.render();
    assert_mentions(
        &shown,
        &[&format!("lossy: {QTY_NOTE}"), "not copied: view in_stock:"],
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["lossy"][0], QTY_NOTE);
    assert_eq!(json["not_copied"][0]["name"], "in_stock");
    let changes: Vec<String> = report.changes().iter().map(|c| c.to_string()).collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
}

/// Strict mode refuses the same copy with exit 2 before writing, naming every change; a copy
/// with no change passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_refuses_changes_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let src = products_db(dir.path());
    let db = TestDb::new().await;
    let strict = strict(options(dir.path()));
    let err = copy_refused(&sqlite(&src), &db.locator(), &strict, false).await;
    assert_eq!(err.exit_code(), 2, "{err}");
    let msg = err.to_string();
    assert_mentions(
        &msg,
        &[
            &format!("lossy: {QTY_NOTE}"),
            "not copied: view in_stock:",
            "2 changes",
        ],
    );
    let tables: i64 = db
        .value("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        .await;
    assert_eq!(tables, 0, "nothing was written");

    // Into SQLite the mixed column keeps its texts as SQLite keeps them: refused all the same
    // for the view; a table with no change copies under strict mode.
    let clean = dir.path().join("clean.db");
    make_sqlite(
        &clean,
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT NOT NULL); INSERT INTO tags (label) VALUES ('red');",
    );
    let report = copy_with(&sqlite(&clean), &db.locator(), &strict).await;
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert!(report.changes().is_empty());

    // PostgreSQL arrays and domains into MySQL: refused too, each named.
    let src = catalog_db().await;
    let my = MyDb::new().await;
    let err = copy_refused(&src.locator(), &my.locator(), &strict, false).await;
    assert_eq!(err.exit_code(), 2, "{err}");
    let msg = err.to_string();
    assert_mentions(
        &msg,
        &["not copied: domain year:", "lossy: films.special_features"],
    );
}

/// A SQLite app that indexes a JSON column (as PeerTube's playlists index their info-hash
/// arrays, which arrive in SQLite as JSON): PostgreSQL's json has no equality, so the index
/// could never be built; the column becomes jsonb, said as a lossy step, and preflight finds
/// nothing to refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexed_json_column_becomes_jsonb_in_postgres() {
    let (dir, file) = temp_sqlite(
        "app.db",
        r#"CREATE TABLE playlists (id INTEGER PRIMARY KEY, meta JSON, hashes JSON NOT NULL);
           CREATE INDEX playlists_hashes ON playlists (hashes);
           INSERT INTO playlists (meta, hashes) VALUES
             ('{"b": 1, "a": [1, 2]}', '["ab12", "cd34"]'), (NULL, '[]');"#,
    );
    let (db, report) = copied_to_new::<TestDb>(&sqlite(&file), dir.path()).await;
    assert!(report.verify["playlists"].ok(), "{}", report.render());
    assert_any_line(&report.lossy, |l| {
        l.contains("playlists.hashes") && l.contains("jsonb")
    });
    let types: Vec<(String, String)> = db
        .rows("SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'playlists'::regclass AND attname IN ('meta', 'hashes') ORDER BY attname").await;
    assert_eq!(
        types,
        [
            ("hashes".to_string(), "jsonb".to_string()),
            ("meta".to_string(), "json".to_string())
        ],
        "only the indexed column changes"
    );
}
