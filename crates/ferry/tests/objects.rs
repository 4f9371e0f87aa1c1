//! Same-backend copies carry what the backend can recreate (issue 13, section 2): SQLite views,
//! triggers, full-text and R-tree tables with their rows; PostgreSQL views, materialized views,
//! functions, procedures, triggers with their functions, free sequences and comments. Each
//! object is asserted to exist and work on the target; across backends they are named as not
//! copied, except full-text holding its own text, which arrives as a plain table.

mod common;

use common::*;
use ferry::Status;
use mysql_async::prelude::Queryable;

/// A notes application's SQLite file, as an ORM and a hand-written migration leave it: an
/// `updated_at` trigger, a view, full-text search over its own text and over the posts table
/// (external content, rowids from the posts' keys), an FTS4 index, an R-tree of places, and a
/// contentless index whose text is stored nowhere.
const SQLITE_APP: &str = "
CREATE TABLE `posts` (`id` integer PRIMARY KEY AUTOINCREMENT, `created_at` datetime, `updated_at` datetime,
  `deleted_at` datetime, `title` text NOT NULL, `body` text, `views` integer DEFAULT 0);
CREATE INDEX `idx_posts_deleted_at` ON `posts`(`deleted_at`);
INSERT INTO posts (id, created_at, updated_at, deleted_at, title, body, views) VALUES
  (1, '2026-07-08 12:00:28.111135256+02:00', '2026-07-08 12:00:28.111135256+02:00', NULL, 'Hello ferry', 'copying databases between engines', 10),
  (2, '2026-07-09 08:00:00+02:00', '2026-07-09 08:00:00+02:00', NULL, 'Second post', 'full text search in sqlite', NULL),
  (5, '2026-07-10 09:30:00+02:00', '2026-07-10 09:30:00+02:00', '2026-07-11 10:00:00+02:00', 'Deleted', 'gone but kept', 3);
CREATE VIEW active_posts AS SELECT id, title FROM posts WHERE deleted_at IS NULL;
CREATE VIEW popular_active_posts AS SELECT * FROM active_posts WHERE id IN (SELECT id FROM posts WHERE views > 5);
CREATE TRIGGER posts_updated_at AFTER UPDATE OF title, body ON posts
  BEGIN UPDATE posts SET updated_at = '2000-01-01 00:00:00' WHERE id = NEW.id; END;
CREATE VIRTUAL TABLE notes_fts USING fts5(title, body, tokenize = 'porter unicode61');
INSERT INTO notes_fts (rowid, title, body) VALUES (3, 'shopping', 'buy apples and pears'), (40, 'work', 'ship the ferry release'), (41, NULL, 'note without a title');
CREATE VIRTUAL TABLE posts_fts USING fts5(title, body, content='posts', content_rowid='id');
INSERT INTO posts_fts(posts_fts) VALUES ('rebuild');
CREATE VIRTUAL TABLE legacy_fts USING fts4(subject, content);
INSERT INTO legacy_fts (docid, subject, content) VALUES (7, 'legacy', 'older full text module');
CREATE VIRTUAL TABLE places_rtree USING rtree(id, min_x, max_x, min_y, max_y);
INSERT INTO places_rtree VALUES (1, 0, 10, 0, 10), (9, 100, 110, -5, 5);
CREATE VIRTUAL TABLE tags_index USING fts5(tag, content='');
INSERT INTO tags_index (rowid, tag) VALUES (1, 'rust');
";

fn sqlite_app(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("notes.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(SQLITE_APP).unwrap();
    path
}

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_objects_are_recreated_between_sqlite_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = sqlite_app(dir.path());
    let dst = dir.path().join("copy.db");
    let report = plain_copy(&sqlite(&src), &sqlite(&dst), dir.path()).await;
    assert_eq!(report.status, Status::Completed, "{}", report.render());
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert_recreated_and_shown(
        &report,
        &[
            "view active_posts",
            "view popular_active_posts",
            "trigger posts_updated_at",
            "virtual table notes_fts",
            "virtual table posts_fts",
            "virtual table legacy_fts",
            "virtual table places_rtree",
        ],
    );
    let not_copied = not_copied(&report);
    assert_listed(&not_copied, "virtual table tags_index");
    assert!(
        !not_copied
            .iter()
            .any(|s| s.starts_with("view") || s.starts_with("trigger")),
        "{not_copied:?}"
    );
    // Tables with rows are verified; views are not tables.
    for table in ["notes_fts", "legacy_fts", "places_rtree", "posts"] {
        assert!(report.verify[table].ok(), "{table}: {}", report.render());
    }
    assert!(!report.verify.contains_key("active_posts"));
    assert!(!report.verify.contains_key("posts_fts"));

    let conn = rusqlite::Connection::open(&dst).unwrap();
    // Shadow tables exist only as the modules' own storage, never as copied plain tables.
    let plain_shadows = count(
        &conn,
        "SELECT count(*) FROM pragma_table_list WHERE type = 'table' AND (name LIKE '%\\_data' ESCAPE '\\' OR name LIKE '%\\_node' ESCAPE '\\' OR name LIKE '%\\_segdir' ESCAPE '\\')",
    );
    assert_eq!(plain_shadows, 0);
    assert_eq!(count(&conn, "SELECT count(*) FROM active_posts"), 2);
    assert_eq!(count(&conn, "SELECT count(*) FROM popular_active_posts"), 1);
    // Full text holding its own text: rows and rowids arrive, MATCH finds them.
    assert_eq!(
        count(
            &conn,
            "SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'ferry'"
        ),
        40
    );
    assert_eq!(
        count(
            &conn,
            "SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'apple'"
        ),
        3,
        "the porter tokenizer came along"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT docid FROM legacy_fts WHERE legacy_fts MATCH 'older'"
        ),
        7
    );
    // External content: recreated and rebuilt from the copied posts.
    assert_eq!(
        count(
            &conn,
            "SELECT rowid FROM posts_fts WHERE posts_fts MATCH 'search'"
        ),
        2
    );
    // The R-tree answers range queries.
    assert_eq!(
        count(
            &conn,
            "SELECT id FROM places_rtree WHERE min_x >= 50 AND max_y <= 6"
        ),
        9
    );
    // The trigger did not fire during the copy, and fires now.
    let updated: String = conn
        .query_row("SELECT updated_at FROM posts WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(updated, "2026-07-08 12:00:28.111135256+02:00");
    conn.execute("UPDATE posts SET title = 'Hello again' WHERE id = 1", [])
        .unwrap();
    let updated: String = conn
        .query_row("SELECT updated_at FROM posts WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(updated, "2000-01-01 00:00:00");
    drop(conn);

    // A second run with --force erases and recreates everything.
    let mut again = options(dir.path());
    again.force = true;
    let report = ferry::copy(&sqlite(&src), &sqlite(&dst), &again, &context(true))
        .await
        .unwrap();
    assert_eq!(report.exit_code(), 0, "{}", report.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_full_text_with_its_own_text_reaches_postgres_as_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let src = sqlite_app(dir.path());
    let (db, report) = copied_to_new::<TestDb>(&sqlite(&src), dir.path()).await;
    assert!(report.recreated.is_empty(), "{:?}", report.recreated);
    for table in ["notes_fts", "legacy_fts"] {
        assert!(report.verify[table].ok(), "{table}: {}", report.render());
        assert_any_line(&report.translations, |w| {
            w.contains(&format!("'{table}' is copied as a plain table"))
        });
    }
    let not_copied = not_copied(&report);
    assert_all_listed(
        &not_copied,
        &[
            "view active_posts",
            "trigger posts_updated_at",
            "virtual table posts_fts",
            "virtual table places_rtree",
            "virtual table tags_index",
        ],
    );
    assert!(!report.verify.contains_key("places_rtree"));
    let pg = db.client().await;
    let bodies: Vec<String> = pg_column(&pg, "SELECT body FROM notes_fts ORDER BY body").await;
    assert_eq!(
        bodies,
        [
            "buy apples and pears",
            "note without a title",
            "ship the ferry release"
        ]
    );
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE '%fts\\_%'")
            .await,
        0,
        "shadow tables are never copied as tables"
    );
}

/// A billing application's PostgreSQL schema: a plpgsql `updated_at` trigger function, a view
/// over a view, a materialized view with a unique index (as `REFRESH ... CONCURRENTLY` needs),
/// an invoice-number sequence no column owns, a function taking a table's row type, a
/// procedure, and comments.
const PG_APP: &str = "
CREATE SEQUENCE invoice_numbers AS integer START WITH 1000 INCREMENT BY 5;
SELECT nextval('invoice_numbers'), nextval('invoice_numbers');
CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := '2000-01-01 00:00:00+00'; RETURN NEW; END $$;
CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, active boolean NOT NULL DEFAULT true,
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE invoices (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id),
  number integer NOT NULL, total numeric(12,2) NOT NULL);
CREATE TRIGGER customers_touch BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE FUNCTION invoice_label(i invoices) RETURNS text LANGUAGE sql AS $$ SELECT 'INV-' || i.number $$;
CREATE PROCEDURE deactivate(customer bigint) LANGUAGE sql AS $$ UPDATE customers SET active = false WHERE id = customer $$;
CREATE VIEW active_customers AS SELECT id, name FROM customers WHERE active;
CREATE VIEW active_customer_names AS SELECT name FROM active_customers;
CREATE MATERIALIZED VIEW revenue AS SELECT customer_id, sum(total) AS total FROM invoices GROUP BY customer_id;
CREATE UNIQUE INDEX revenue_customer ON revenue (customer_id);
COMMENT ON TABLE customers IS 'People we bill';
COMMENT ON COLUMN customers.name IS 'Legal name, as on the invoice';
COMMENT ON VIEW active_customers IS 'Customers not deactivated';
INSERT INTO customers (name, active, updated_at) VALUES ('Ada', true, '2026-01-01 10:00+00'), ('Bob', false, '2026-01-02 10:00+00');
INSERT INTO invoices (customer_id, number, total) VALUES (1, 1000, 12.50), (1, 1005, 7.50), (2, 1010, 100);
REFRESH MATERIALIZED VIEW revenue;
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_objects_are_recreated_between_postgres_databases() {
    let dir = tempfile::tempdir().unwrap();
    let src = TestDb::with(PG_APP).await;
    let (dst, report) = copied_to_new::<TestDb>(&src.locator(), dir.path()).await;
    assert_recreated(
        &report,
        &[
            "sequence invoice_numbers",
            "function touch_updated_at()",
            "function invoice_label(i invoices)",
            "procedure deactivate(IN customer bigint)",
            "view active_customers",
            "view active_customer_names",
            "materialized view revenue",
            "trigger customers_touch on customers",
            "comments on customers",
            "comments on active_customers",
        ],
    );
    assert!(report.not_copied.is_empty(), "{:?}", report.not_copied);
    // Views are not verified as tables; the tables are.
    assert_eq!(
        report.verify.keys().collect::<Vec<_>>(),
        ["customers", "invoices"]
    );

    let pg = dst.client().await;
    pg.batch_execute("SET TIME ZONE 'UTC'").await.unwrap();
    let one = |sql: &'static str| {
        let pg = &pg;
        async move {
            pg.query_one(sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        }
    };
    // The trigger did not fire during the copy (updated_at kept), and fires on an update.
    let kept: String = pg_value(
        &pg,
        "SELECT updated_at::text FROM customers WHERE name = 'Ada'",
    )
    .await;
    assert_eq!(kept, "2026-01-01 10:00:00+00");
    pg.batch_execute("UPDATE customers SET name = 'Ada L.' WHERE id = 1")
        .await
        .unwrap();
    let touched: String =
        pg_value(&pg, "SELECT updated_at::text FROM customers WHERE id = 1").await;
    assert_eq!(touched, "2000-01-01 00:00:00+00");
    // The materialized view was refreshed over the copied rows, with its index.
    let total: String =
        pg_value(&pg, "SELECT total::text FROM revenue WHERE customer_id = 1").await;
    assert_eq!(total, "20.00");
    pg.batch_execute("REFRESH MATERIALIZED VIEW CONCURRENTLY revenue")
        .await
        .unwrap();
    let names: i64 = pg_value(&pg, "SELECT count(*) FROM active_customer_names").await;
    assert_eq!(names, 1);
    // The free sequence continues where the source's was.
    let next: i32 = pg_value(&pg, "SELECT nextval('invoice_numbers')::int").await;
    assert_eq!(next, 1010);
    let label: String = pg_value(
        &pg,
        "SELECT invoice_label(i) FROM invoices i WHERE number = 1005",
    )
    .await;
    assert_eq!(label, "INV-1005");
    pg.batch_execute("CALL deactivate(1)").await.unwrap();
    let active: i64 = pg_value(&pg, "SELECT count(*) FROM active_customers").await;
    assert_eq!(active, 0);
    let comments: (Option<String>, Option<String>, Option<String>) = {
        let r = one(
            "SELECT obj_description('customers'::regclass, 'pg_class'), \
             col_description('customers'::regclass, 2), \
             obj_description('active_customers'::regclass, 'pg_class')",
        )
        .await;
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(
        comments,
        (
            Some("People we bill".into()),
            Some("Legal name, as on the invoice".into()),
            Some("Customers not deactivated".into())
        )
    );

    // Left out by the filter: the view reading it and the trigger on it are named instead.
    let dst2 = TestDb::new().await;
    let report = ferry::copy(
        &src.locator(),
        &dst2.locator(),
        &with_tables(options(dir.path()), &["invoices"], &[]),
        &context(false),
    )
    .await
    .unwrap();
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    let not_copied = not_copied(&report);
    for expected in [
        "view active_customers",
        "view active_customer_names",
        "trigger customers_touch on customers",
    ] {
        assert_listed(&not_copied, expected);
    }
    assert!(
        report
            .recreated
            .contains(&"materialized view revenue".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_objects_are_named_not_copied_into_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let src = TestDb::with(PG_APP).await;
    let report = copied(
        &src.locator(),
        &sqlite(&dir.path().join("billing.db")),
        dir.path(),
    )
    .await;
    assert!(report.recreated.is_empty());
    let not_copied = not_copied(&report);
    for expected in [
        "sequence invoice_numbers",
        "function touch_updated_at()",
        "materialized view revenue",
        "trigger customers_touch on customers",
        "comments on customers",
    ] {
        assert_listed(&not_copied, expected);
    }
}

/// A shop's MySQL schema: a view over a view, a BEFORE INSERT trigger as Laravel-era apps
/// write them, and a view reading a table the second copy leaves out.
const MYSQL_APP: &str = "
CREATE TABLE products (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, sku VARCHAR(32) NOT NULL,
  price DECIMAL(10,2) NOT NULL, slug VARCHAR(64) NULL, deleted_at TIMESTAMP NULL) ENGINE=InnoDB;
CREATE TABLE audit_log (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, msg TEXT) ENGINE=InnoDB;
INSERT INTO products (sku, price, slug) VALUES ('A-1', 9.99, 'a-1'), ('B-2', 120.00, 'b-2');
CREATE VIEW live_products AS SELECT id, sku, price FROM products WHERE deleted_at IS NULL;
CREATE VIEW premium_products AS SELECT sku FROM live_products WHERE price > 100;
CREATE VIEW audit_tail AS SELECT msg FROM audit_log;
CREATE TRIGGER products_slug BEFORE INSERT ON products FOR EACH ROW
  BEGIN IF NEW.slug IS NULL THEN SET NEW.slug = LOWER(NEW.sku); END IF; END;
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_views_and_triggers_are_recreated_between_mysql_databases() {
    let dir = tempfile::tempdir().unwrap();
    let src = MyDb::new().await;
    {
        let mut conn = src.conn().await;
        conn.query_drop(MYSQL_APP).await.expect("fixture loads");
        conn.disconnect().await.unwrap();
    }
    let dst = MyDb::new().await;
    let report = ferry::copy(
        &src.locator(),
        &dst.locator(),
        &with_tables(options(dir.path()), &[], &["audit_log"]),
        &context(false),
    )
    .await
    .unwrap();
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert_recreated(
        &report,
        &[
            "view live_products",
            "view premium_products",
            "trigger products_slug",
        ],
    );
    assert!(
        report
            .not_copied
            .iter()
            .any(|s| s.kind == "view" && s.name == "audit_tail" && s.reason.contains("audit_log")),
        "{:?}",
        report.not_copied
    );
    let mut conn = dst.conn().await;
    let premium: Vec<String> = conn
        .query("SELECT sku FROM premium_products")
        .await
        .unwrap();
    assert_eq!(premium, ["B-2"]);
    conn.query_drop("INSERT INTO products (sku, price) VALUES ('C-3', 1.00)")
        .await
        .unwrap();
    let slug: Option<String> = conn
        .query_first("SELECT slug FROM products WHERE sku = 'C-3'")
        .await
        .unwrap();
    assert_eq!(
        slug.as_deref(),
        Some("c-3"),
        "the trigger fires on the target"
    );
    let definer: Vec<String> = conn
        .query("SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()")
        .await
        .unwrap();
    assert_eq!(definer.len(), 2);
    conn.disconnect().await.unwrap();
}

/// Every one of `objects` is in the report's `recreated` list.
fn assert_recreated(report: &ferry::Report, objects: &[&str]) {
    for object in objects {
        assert!(
            report.recreated.iter().any(|r| r == object),
            "{object} recreated: {:?}",
            report.recreated
        );
    }
}

/// [`assert_recreated`], and each is shown in the rendered report.
fn assert_recreated_and_shown(report: &ferry::Report, objects: &[&str]) {
    assert_recreated(report, objects);
    let shown = report.render();
    for object in objects {
        assert_mentions(&shown, &[&format!("recreated: {object}")]);
    }
}
