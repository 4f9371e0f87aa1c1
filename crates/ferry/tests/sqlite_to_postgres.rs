//! SQLite → PostgreSQL against the real server: every quirk of the fixture arrives, typed and
//! verified; the source is untouched; safety rules hold.

mod common;

use common::*;
use ferry::Status;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_quirk_arrives_typed_and_verified() {
    let (dir, src) = temp_quirks_db();
    let before = snapshot(dir.path());
    let db = TestDb::new().await;

    let opts = with_tables(options(dir.path()), &[], &["bad_text"]);
    let report = copy_with(&sqlite(&src), &db.locator(), &opts).await;
    assert_eq!(report.status, Status::Completed, "{}", report.render());
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert!(
        report.verify.len() >= 17,
        "every table verified: {:?}",
        report.verify.keys()
    );
    assert!(
        report.verify.values().all(|v| v.ok()),
        "{}",
        report.render()
    );
    assert_eq!(
        snapshot(dir.path()),
        before,
        "the source directory is byte-for-byte unchanged, no -wal/-shm created"
    );

    // Nothing skipped silently.
    let not_copied = not_copied(&report);
    for expected in ["view v_tree", "trigger trg_tree"] {
        assert_listed(&not_copied, expected);
    }
    // Full text holding its own text arrives as a plain table, named.
    assert!(report.verify["search"].ok(), "{}", report.render());
    assert_any_line(&report.translations, |w| {
        w.contains("'search' is copied as a plain table")
    });
    assert!(
        not_copied
            .iter()
            .any(|s| s.starts_with("shadow table search_")),
        "{not_copied:?}"
    );
    // Every lossy step is named.
    let lossy = report.lossy.join("\n");
    for col in ["mixed.val", "mixed.anything", "sized.code"] {
        assert_mentions(&lossy, &[col]);
    }
    assert!(
        !lossy.contains("reals.r") && !lossy.contains("bigints.n"),
        "lossless columns are not reported:\n{lossy}"
    );

    let pg = db.client().await;
    let ty = |table: &str, col: &str| {
        let (table, col) = (table.to_string(), col.to_string());
        let pg = &pg;
        async move {
            pg.query_one(
                "SELECT format_type(atttypid, atttypmod), attnotnull FROM pg_attribute WHERE attrelid = quote_ident($1)::regclass AND attname = $2",
                &[&table, &col],
            )
            .await
            .map(|r| (r.get::<_, String>(0), r.get::<_, bool>(1)))
            .unwrap_or_else(|e| panic!("{table}.{col}: {e}"))
        }
    };
    assert_eq!(
        ty("flags", "active").await,
        ("boolean".into(), true),
        "NOT NULL kept"
    );
    for (table, col, want, why) in [
        ("events", "happened_at", "timestamp without time zone", ""),
        ("events", "day", "date", ""),
        ("events", "at_tz", "timestamp with time zone", ""),
        ("reals", "r", "double precision", "REAL is never float4"),
        ("bigints", "n", "bigint", ""),
        ("mixed", "val", "text", "INTEGER holding text is text"),
        ("mixed", "anything", "bytea", ""),
        ("money", "amount", "numeric(10,2)", ""),
        ("docs", "meta", "json", ""),
        ("docs", "ident", "uuid", ""),
        ("sized", "code", "text", "varchar(3) holding more widens"),
        ("order items", "group by", "double precision", ""),
    ] {
        assert_eq!(ty(table, col).await.0, want, "{table}.{col}: {why}");
    }

    // Values, exactly.
    let rows = pg_query(&pg, "SELECT r::text FROM reals ORDER BY id").await;
    let reals: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        reals,
        [
            "0.1",
            "0.3333333333333333",
            "1e+308",
            "-1e+308",
            "Infinity",
            "-Infinity",
            "5e-324",
            "123456789.12345679",
            "2"
        ]
    );
    let n: Vec<i64> = pg_column(&pg, "SELECT n FROM bigints ORDER BY id").await;
    assert_eq!(n, [i64::MAX, i64::MIN, 0]);
    let secret: String = pg_value(&pg, "SELECT secret FROM binaries WHERE id = 1").await;
    assert_eq!(
        secret,
        "ENC:v3:key-7:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
    let data: Vec<u8> = pg_value(&pg, "SELECT data FROM binaries WHERE id = 2").await;
    assert_eq!(data, [0, 1, 2, 0xff, 0xfe]);
    let empty: Vec<u8> = pg_value(&pg, "SELECT data FROM binaries WHERE id = 1").await;
    assert!(empty.is_empty(), "an empty blob stays empty, not NULL");
    let nulls: Vec<(Option<String>, String)> =
        pg_rows(&pg, "SELECT t, t2 FROM nulls ORDER BY id").await;
    assert_eq!(nulls[0], (None, String::new()));
    assert_eq!(
        nulls[1],
        (Some(String::new()), String::new()),
        "empty string is not NULL"
    );
    let flags: Vec<(bool, Option<bool>)> =
        pg_rows(&pg, "SELECT active, verified FROM flags ORDER BY id").await;
    assert_eq!(
        flags,
        [
            (true, Some(false)),
            (false, None),
            (true, Some(true)),
            (false, Some(false))
        ]
    );
    let tz: Vec<String> = pg_column(
        &pg,
        "SELECT to_char(at_tz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM events ORDER BY id",
    )
    .await;
    assert_eq!(
        tz,
        [
            "2024-01-02 03:04:05",
            "2024-01-02 03:04:05",
            "2024-07-01 05:00:00"
        ]
    );
    let old: String = pg_value(&pg, "SELECT happened_at::text FROM events WHERE id = 3").await;
    assert_eq!(old, "0999-06-15 12:00:00", "dates before year 1000 survive");
    let micro: String = pg_value(&pg, "SELECT happened_at::text FROM events WHERE id = 2").await;
    assert_eq!(micro, "2024-02-29 23:59:59.123456");
    let money: Vec<String> = pg_column(
        &pg,
        "SELECT amount::text FROM money WHERE amount IS NOT NULL ORDER BY id",
    )
    .await;
    assert_eq!(money, ["12.50", "99999999.99"]);
    let mixed: Vec<Option<String>> = pg_column(&pg, "SELECT val FROM mixed ORDER BY id").await;
    assert_eq!(
        mixed,
        [
            Some("42".into()),
            Some("forty-two".into()),
            None,
            Some("9223372036854775807".into())
        ]
    );
    let meta: String = pg_value(&pg, "SELECT meta::text FROM docs WHERE id = 1").await;
    assert_eq!(
        meta, r#"{"b": 1, "a": [1, 2]}"#,
        "JSON text kept byte for byte"
    );
    let uuid: String = pg_value(&pg, "SELECT ident::text FROM docs WHERE id = 2").await;
    assert_eq!(
        uuid, "6f1c1b6e-3f3c-4c8e-9a39-0c3a4d1e2f11",
        "a 16-byte blob UUID becomes a uuid"
    );
    let name: String = pg_value(&pg, "SELECT name FROM tree WHERE id = 10").await;
    assert_eq!(name, "Ünïcödé ✓");

    // Long names fit and stay distinct.
    let long: Vec<String> = pg_column(&pg, "SELECT relname::text FROM pg_class WHERE relkind = 'r' AND relname LIKE 'a_table_name%' ORDER BY 1").await;
    assert_eq!(long.len(), 2, "{long:?}");
    assert!(long.iter().all(|n| n.len() <= 63) && long[0] != long[1]);

    // Keys, indexes, foreign keys (the chicken/egg cycle included), identity past the maximum.
    let constraints: i64 = pg_value(&pg, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace").await;
    assert_eq!(constraints, 3, "tree→tree, chicken→egg, egg→chicken");
    let pk: i64 = pg_value(&pg, "SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid = 'composite'::regclass").await;
    assert_eq!(pk, 1);
    assert!(
        pg.query_one(
            "SELECT 1 FROM pg_class WHERE relname = 'idx_tree_parent'",
            &[]
        )
        .await
        .is_ok()
    );
    let next: i64 = pg_value(&pg, "INSERT INTO tree (name) VALUES ('new') RETURNING id").await;
    assert_eq!(next, 11, "the next id follows the copied maximum");
    let ts: bool = pg_value(&pg, "INSERT INTO events (happened_at) VALUES ('2025-01-01') RETURNING created IS NOT NULL AND epoch > 0 AND label = 'it''s'").await;
    assert!(ts, "translated defaults work");
    assert_mentions(&lossy, &["events.weird", "dropped"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_is_a_reported_row_failure() {
    let (dir, src) = temp_quirks_db();
    let db = TestDb::new().await;
    let opts = with_tables(options(dir.path()), &["bad_text"], &[]);
    let report = copy_with(&sqlite(&src), &db.locator(), &opts).await;
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.exit_code(), 1);
    let error = report.error.clone().unwrap();
    assert_mentions(&error, &["bad_text", "id=2", "UTF-8"]);

    let db = TestDb::new().await;
    let opts = ignoring_errors(with_tables(options(dir.path()), &["bad_text"], &[]));
    let report = copy_with(&sqlite(&src), &db.locator(), &opts).await;
    let stats = &report.stats["bad_text"];
    assert_eq!((stats.total, stats.migrated, stats.failed), (3, 2, 1));
    assert_eq!(report.exit_code(), 1, "failed rows mean exit code 1");
    let rejects =
        std::fs::read_to_string(dir.path().join("rejects/bad_text.rejects.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(rejects.lines().next().unwrap()).unwrap();
    assert_eq!(line["key"], "id=2");
    assert!(line["reason"].as_str().unwrap().contains("UTF-8"));
    assert_eq!(
        line["row"]["body"], "\\x61ff62",
        "the rejected bytes are kept, not mangled"
    );
    let v = &report.verify["bad_text"];
    assert_eq!((v.source_rows, v.target_rows), (3, 2));
    assert_eq!(v.missing_keys, ["id=2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_rows_are_isolated_by_splitting_batches() {
    // PostgreSQL rejects what SQLite accepted: text with a NUL character, and a varchar limit is
    // not at play; use NUL in a text column, spread over several batches.
    let (dir, path) = temp_sqlite("nul.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
         INSERT INTO t SELECT i, CASE WHEN i IN (17, 500, 999) THEN 'a' || char(0) || 'b' ELSE 'row ' || i END FROM n;");
    let db = TestDb::new().await;
    let opts = ferry::CopyOptions {
        ignore_errors: true,
        batch_rows: 64,
        ..options(dir.path())
    };
    let report = copy_with(&sqlite(&path), &db.locator(), &opts).await;
    let s = &report.stats["t"];
    assert_eq!((s.migrated, s.failed), (997, 3), "{}", report.render());
    let count: i64 = db.value("SELECT count(*) FROM t").await;
    assert_eq!(count, 997, "good rows written exactly once");
    assert_eq!(report.verify["t"].missing_keys.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_empty_target_is_refused_unless_forced_and_confirmed() {
    let (dir, src) = temp_quirks_db();
    let db = TestDb::new().await;
    let pg = db.client().await;
    pg.batch_execute(
        "CREATE TABLE tree (id int); INSERT INTO tree VALUES (99); CREATE TABLE flags (x int)",
    )
    .await
    .unwrap();
    // In create mode ferry makes these tables itself (auto mode would fill them: see
    // tests/existing_schema.rs).
    let opts = ferry::CopyOptions {
        schema_mode: ferry::SchemaMode::Create,
        ..with_tables(options(dir.path()), &["tree", "flags"], &[])
    };

    let err = copy_refused(&sqlite(&src), &db.locator(), &opts, true).await;
    assert_eq!(err.exit_code(), 2);
    assert_mentions(&err.to_string(), &["\"tree\" (1 row)", "--force"]);

    let forced = ferry::CopyOptions {
        force: true,
        ..opts.clone()
    };
    let err = copy_refused(&sqlite(&src), &db.locator(), &forced, false).await;
    assert_eq!(err.exit_code(), 2);
    assert_mentions(&err.to_string(), &["confirmation"]);
    let kept: i64 = pg_value(&pg, "SELECT count(*) FROM tree WHERE id = 99").await;
    assert_eq!(kept, 1, "nothing erased without confirmation");

    let report = ferry::copy(&sqlite(&src), &db.locator(), &forced, &context(true))
        .await
        .unwrap();
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert_eq!(db.count("tree").await, Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing() {
    let (dir, src) = temp_quirks_db();
    let db = TestDb::new().await;
    let opts = dry_run(options(dir.path()));
    let report = ferry::copy(&sqlite(&src), &db.locator(), &opts, &context(true))
        .await
        .unwrap();
    assert!(report.dry_run);
    let plan = report.plan.as_ref().expect("a dry run returns its plan");
    assert_eq!(plan.table("tree").unwrap().row_count, 4);
    assert!(!plan.ddl.create.is_empty());
    let order: Vec<&str> = plan.tables.iter().map(|t| t.source_name.as_str()).collect();
    assert!(order.iter().position(|&t| t == "tree").is_some());
    let tables: i64 = db
        .value("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")
        .await;
    assert_eq!(tables, 0, "not even the schema is written");

    let target = dir.path().join("never.db");
    let report = ferry::copy(&sqlite(&src), &sqlite(&target), &opts, &context(true))
        .await
        .unwrap();
    assert!(report.dry_run);
    assert!(
        !target.exists(),
        "a dry run does not create the SQLite target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_keys_that_differ() {
    let (dir, src) = temp_quirks_db();
    let db = TestDb::new().await;
    let opts = with_tables(options(dir.path()), &["tree", "composite", "nokey"], &[]);
    let report = copy_with(&sqlite(&src), &db.locator(), &opts).await;
    assert_eq!(report.exit_code(), 0, "{}", report.render());

    let pg = db.client().await;
    pg.batch_execute(
        "UPDATE tree SET name = 'changed' WHERE id = 2; DELETE FROM tree WHERE id = 10; INSERT INTO tree VALUES (50, NULL, 'extra');
         UPDATE composite SET c = 0.75 WHERE a = 1 AND b = 'x'; INSERT INTO nokey VALUES ('dup', 1);",
    )
    .await
    .unwrap();
    let filter =
        ferry::TableFilter::new(&["tree".into(), "composite".into(), "nokey".into()], &[]).unwrap();
    let report = ferry::verify(&sqlite(&src), &db.locator(), filter, 2, &context(false))
        .await
        .unwrap();
    assert_eq!(report.exit_code(), 1);
    let tree = &report.verify["tree"];
    assert!(!tree.checksum_match);
    assert_eq!(tree.different_keys, ["id=2"]);
    assert_eq!(tree.missing_keys, ["id=10"]);
    assert_eq!(tree.extra_keys, ["id=50"]);
    assert_eq!(report.verify["composite"].different_keys, ["a=1, b='x'"]);
    let nokey = &report.verify["nokey"];
    assert_eq!(
        (nokey.source_rows, nokey.target_rows),
        (4, 5),
        "a duplicate row in a keyless table is found"
    );
    assert!(!nokey.checksum_match);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// `pg_terminate_backend` on the copy's connection (57P01, as a server restart does): the batch
/// cut off is written again on a new connection, and the copy completes, verified equal.
async fn a_killed_connection_mid_copy_is_retried_and_the_copy_completes() {
    let (dir, path) = temp_sqlite(
        "big.db",
        "CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400000)
         INSERT INTO big SELECT i, hex(randomblob(40)) FROM n;",
    );
    let db = TestDb::new().await;
    let killer = {
        let name = db.name.clone();
        tokio::spawn(async move {
            let admin = pg_connect(&pg_admin_url()).await;
            for _ in 0..400 {
                let killed: i64 = admin
                    .query_one(
                        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'COPY%FROM STDIN%') k",
                        &[&name],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if killed > 0 {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            false
        })
    };
    let opts = ferry::CopyOptions {
        batch_rows: 2000,
        ..options(dir.path())
    };
    let report = copy_with(&sqlite(&path), &db.locator(), &opts).await;
    assert!(
        killer.await.unwrap(),
        "the copy's connection was found and terminated"
    );
    assert_eq!(report.status, Status::Completed, "{}", report.render());
    let stats = &report.stats["big"];
    assert_eq!(stats.migrated, 400_000, "{}", report.render());
    assert!(stats.retries >= 1, "{}", report.render());
    assert!(report.verify["big"].ok(), "{}", report.render());
    assert!(
        report
            .render()
            .contains("retried writes after transient faults: big: "),
        "{}",
        report.render()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_tables_are_copied_in_parallel_chunks() {
    let (dir, path) = temp_sqlite("chunks.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
         INSERT INTO t SELECT i * 3, CASE WHEN i IN (10, 290000) THEN 'a' || char(0) ELSE 'row ' || i END FROM n;");
    let db = TestDb::new().await;
    let opts = ferry::CopyOptions {
        ignore_errors: true,
        workers: 3,
        batch_rows: 7000,
        ..options(dir.path())
    };
    let report = copy_with(&sqlite(&path), &db.locator(), &opts).await;
    let s = &report.stats["t"];
    assert_eq!(
        (s.total, s.migrated, s.failed),
        (300_000, 299_998, 2),
        "{}",
        report.render()
    );
    let rejects = std::fs::read_to_string(dir.path().join("rejects/t.rejects.jsonl")).unwrap();
    let mut keys: Vec<String> = rejects
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["id=30", "id=870000"],
        "both chunks write to the one reject file"
    );
    let v = &report.verify["t"];
    assert_eq!((v.source_rows, v.target_rows), (300_000, 299_998));
    assert_eq!(v.missing_keys, ["id=30", "id=870000"]);
    db.assert_each_id_once("t", 299_998).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_rows_are_found_before_writing() {
    let (dir, path) = temp_sqlite("orphans.db", "PRAGMA foreign_keys = OFF;
         CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), title TEXT);
         INSERT INTO users VALUES (1, 'a'), (2, 'b');
         INSERT INTO posts VALUES (10, 1, 'ok'), (11, 99, 'orphan'), (12, NULL, 'no author'), (13, 77, 'orphan too');");

    let db = TestDb::new().await;
    let err = copy_refused(&sqlite(&path), &db.locator(), &options(dir.path()), false).await;
    assert_eq!(err.exit_code(), 1);
    let msg = err.to_string();
    assert_mentions(&msg, &["2 row(s) of \"posts\"", "id=11", "--ignore-errors"]);
    let tables: i64 = db
        .value("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")
        .await;
    assert_eq!(tables, 0, "nothing is written when orphans stop the run");

    let opts = ignoring_errors(options(dir.path()));
    let report = copy_with(&sqlite(&path), &db.locator(), &opts).await;
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert_any_line(&report.warnings, |w| {
        w.contains("posts") && w.contains("left out")
    });
    assert_eq!(report.stats["posts"].migrated, 4);
    let fks: i64 = db
        .value("SELECT count(*) FROM pg_constraint WHERE contype = 'f'")
        .await;
    assert_eq!(fks, 0, "the foreign key the orphans break is left out");
}

/// A run killed after loading rows leaves ferry's tables without their keys, indexes and
/// foreign keys (they come after the data) and its marker table: the next run does not mistake
/// them for the application's own tables (which it would fill and leave keyless) but, under
/// --force, drops and copies them again with everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_copy_is_redone_with_its_keys() {
    let (dir, path) = temp_sqlite(
        "app.db",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);
             INSERT INTO users VALUES (1, 'a@example.org'), (2, 'b@example.org');
             CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id));
             INSERT INTO posts VALUES (10, 1), (11, 2);",
    );
    let db = TestDb::new().await;
    let pg = db.client().await;
    pg.batch_execute(
        "CREATE TABLE users (id bigint NOT NULL, email text NOT NULL);
         INSERT INTO users VALUES (1, 'a@example.org');
         CREATE TABLE ferry_unfinished_tables (table_name varchar(255) NOT NULL);
         INSERT INTO ferry_unfinished_tables VALUES ('users'), ('posts');",
    )
    .await
    .unwrap();

    let err = copy_refused(&sqlite(&path), &db.locator(), &options(dir.path()), false).await;
    assert_eq!(err.exit_code(), 2);
    assert_mentions(&err.to_string(), &["\"users\""]);

    let report = forced_copy(&sqlite(&path), &db.locator(), dir.path()).await;
    assert_any_line(&report.warnings, |w| w.contains("interrupted ferry run"));
    let count = |sql: &'static str| {
        let pg = &pg;
        async move { pg.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        count("SELECT count(*) FROM pg_constraint WHERE contype IN ('p', 'u', 'f') AND connamespace = 'public'::regnamespace").await,
        4,
        "two primary keys, the unique email, the foreign key"
    );
    assert_eq!(
        count("SELECT count(*) FROM pg_tables WHERE tablename = 'ferry_unfinished_tables'").await,
        0,
        "the marker is gone once the run finished"
    );
    assert_eq!(count("SELECT count(*) FROM users").await, 2);
}

/// Two tables of 120,000 rows, each with a value between two sampled slices that the sampled
/// type does not hold: text in an INTEGER column, a time of day in a DATE column.
const SAMPLE_MISSES: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL, price DECIMAL(10,2), day DATE);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120000)
         INSERT INTO items SELECT i, i % 100, (i % 1000) / 4.0, date('2020-01-01', '+' || (i % 365) || ' days') FROM n;
         UPDATE items SET qty = 'many' WHERE id = 7000;
         CREATE TABLE visits (id INTEGER PRIMARY KEY, day DATE NOT NULL);
         INSERT INTO visits SELECT id, day FROM items;
         UPDATE visits SET day = '2020-05-05 10:30:00' WHERE id = 100000;";

/// A large table's types come from a sample of its rows (the source is read once): a value the
/// sample did not see (text in an INTEGER column, between two sampled slices) sends that table
/// back for a full profile; it is created and copied again with the type that holds every
/// value, named in the report, its rows counted once, and verified. `--profile full` gets the
/// same types without the second copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_the_sample_missed_widens_its_table_and_copies_it_again() {
    let (dir, path) = temp_sqlite(
        "big.db",
        &format!(
            "{SAMPLE_MISSES} CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             INSERT INTO tags VALUES (1, 'a'), (2, 'b');"
        ),
    );
    let widened = TestDb::new().await;
    let report = copy_with(&sqlite(&path), &widened.locator(), &options(dir.path())).await;
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert_warned(&report, &["\"qty\"", "'many'", "copied again"]);
    assert_warned(&report, &["2020-05-05 10:30:00", "copied again"]);
    assert!(
        report.lossy.iter().any(|l| l.starts_with("items.qty:")),
        "{:?}",
        report.lossy
    );
    assert_eq!(report.stats["items"].migrated, 120_000);
    assert_eq!(report.stats["visits"].migrated, 120_000);
    assert_eq!(
        column_types(&widened, "visits").await,
        ["id bigint", "day timestamp without time zone"]
    );
    assert!(
        report.verify.values().all(|v| v.ok()),
        "{}",
        report.render()
    );
    let value: String = pg_value(
        &widened.client().await,
        "SELECT qty FROM items WHERE id = 7000",
    )
    .await;
    assert_eq!(value, "many");

    let full = TestDb::new().await;
    let opts = ferry::CopyOptions {
        schema: ferry::SchemaOptions {
            sample: false,
            ..options(dir.path()).schema
        },
        ..options(dir.path())
    };
    let report = copy_with(&sqlite(&path), &full.locator(), &opts).await;
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert!(
        !report.warnings.iter().any(|w| w.contains("copied again")),
        "{:?}",
        report.warnings
    );
    assert_eq!(
        column_types(&widened, "items").await,
        column_types(&full, "items").await
    );
    assert_eq!(
        column_types(&full, "items").await,
        ["id bigint", "qty text", "price numeric(10,2)", "day date"]
    );

    // In small chunks, some of the table's chunks commit before the misfit stops it: created
    // again, its chunks are set back to pending in the ledger and every one is copied again
    // (a chunk left marked done would not commit its rows a second time).
    let chunked = TestDb::new().await;
    let opts = ferry::CopyOptions {
        chunk_rows: 10_000,
        ..options(dir.path())
    };
    let report = copy_with(&sqlite(&path), &chunked.locator(), &opts).await;
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert_warned(&report, &["\"qty\"", "'many'", "copied again"]);
    assert_eq!(report.stats["items"].migrated, 120_000);
    assert_eq!(report.stats["visits"].migrated, 120_000);
    for table in ["items", "visits"] {
        let rows: i64 = chunked
            .value(&format!("SELECT count(*) FROM {table}"))
            .await;
        assert_eq!(rows, 120_000, "{table}: every row once");
    }
    assert_eq!(
        column_types(&chunked, "items").await,
        column_types(&full, "items").await
    );
}

/// `ferry verify` types a large SQLite table from a sample as the copy does, instead of
/// profiling the whole file first: a table the copy widened (text in an INTEGER column, a time
/// of day in a DATE column, both outside the sample) still verifies equal, compared in the
/// widened types, and one changed cell in a large table, widened or not, is still found and
/// named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_of_a_widened_table_matches_and_still_finds_one_changed_cell() {
    let (dir, path) = temp_sqlite(
        "big.db",
        &format!(
            "{SAMPLE_MISSES} CREATE TABLE plain (a INTEGER NOT NULL, b INTEGER NOT NULL, price DECIMAL(10,2), day DATE, PRIMARY KEY (a, b));
             INSERT INTO plain SELECT id / 10, id % 10, price, day FROM items;"
        ),
    );
    let db = TestDb::new().await;
    let report = copy_with(&sqlite(&path), &db.locator(), &options(dir.path())).await;
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert_warned(&report, &["\"qty\"", "'many'", "copied again"]);
    assert_eq!(column_types(&db, "items").await[1], "qty text");

    let verify = || async {
        ferry::verify(
            &sqlite(&path),
            &db.locator(),
            ferry::TableFilter::default(),
            2,
            &context(false),
        )
        .await
        .unwrap()
    };
    let report = verify().await;
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    for table in ["items", "visits", "plain"] {
        let v = &report.verify[table];
        assert!(v.ok(), "{table}: {}", report.render());
        assert_eq!(
            (v.source_rows, v.target_rows),
            (120_000, 120_000),
            "{table}"
        );
    }

    db.client()
        .await
        .batch_execute(
            "UPDATE items SET qty = 'few' WHERE id = 7000;
             UPDATE visits SET day = '2020-05-05 10:30:01' WHERE id = 100000;
             UPDATE plain SET price = price + 0.01 WHERE a = 6543 AND b = 2;",
        )
        .await
        .unwrap();
    let report = verify().await;
    assert_eq!(report.exit_code(), 1, "{}", report.render());
    for (table, key) in [
        ("items", "id=7000"),
        ("visits", "id=100000"),
        ("plain", "a=6543, b=2"),
    ] {
        let v = &report.verify[table];
        assert!(!v.checksum_match, "{table}");
        assert_eq!(
            (v.different_count, v.missing_count, v.extra_count),
            (1, 0, 0),
            "{table}"
        );
        assert_eq!(v.different_keys, [key], "{table}");
    }
}

/// `name type` of each column of the target's `table`.
async fn column_types(db: &TestDb, table: &str) -> Vec<String> {
    pg_column(
        &db.client().await,
        &format!(
            "SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = '{table}'::regclass AND attnum > 0 ORDER BY attnum"
        ),
    )
    .await
}

/// Some warning of `report` names every one of `parts`.
fn assert_warned(report: &ferry::Report, parts: &[&str]) {
    assert!(
        report
            .warnings
            .iter()
            .any(|w| parts.iter().all(|p| w.contains(p))),
        "no warning names {parts:?}: {:?}",
        report.warnings
    );
}
