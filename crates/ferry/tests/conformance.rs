//! The connector conformance suite: the same test list, run unchanged against every backend
//! (as a target and as a source). Adding a backend means adding one line to `backends!` below
//! (and its throwaway database to `Place`). As in OpenDAL's behaviour suite, what a test asserts
//! follows from the backend's `Capabilities` (its dialect's), never from its name.

mod common;

use common::*;

/// A throwaway database of one backend, alive as long as the value.
enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(TestDb),
    Mysql(MyDb),
}

impl Place {
    async fn new(backend: &str) -> Self {
        match backend {
            "sqlite" => Place::Sqlite(tempfile::tempdir().unwrap()),
            "postgres" => Place::Postgres(TestDb::new().await),
            "mysql" => Place::Mysql(MyDb::new().await),
            other => panic!("no such backend {other}"),
        }
    }

    fn locator(&self) -> ferry::Locator {
        match self {
            Place::Sqlite(dir) => sqlite(&dir.path().join("db.sqlite")),
            Place::Postgres(db) => db.locator(),
            Place::Mysql(db) => db.locator(),
        }
    }

    /// What the backend says it can do: the suite decides on this.
    fn capabilities(&self) -> ferry::Capabilities {
        ferry::dialect(&self.locator()).unwrap().capabilities()
    }
}

/// Quirk tables a statically typed backend cannot hold (MySQL stores no infinities, PostgreSQL
/// and MySQL no invalid UTF-8): their row failures have their own tests. A dynamically typed
/// backend (SQLite, like the source) takes their values untouched, so it round-trips them too.
const NOT_PORTABLE: &[&str] = &["bad_text", "reals"];

fn not_portable(caps: &ferry::Capabilities) -> &'static [&'static str] {
    if caps.dynamic_typing {
        &[]
    } else {
        NOT_PORTABLE
    }
}

async fn round_trip(backend: &str) {
    let (dir, src) = temp_quirks_db();
    let place = Place::new(backend).await;
    let skipped = not_portable(&place.capabilities());
    let opts = with_tables(options(dir.path()), &[], skipped);
    let there = copy_with(&sqlite(&src), &place.locator(), &opts).await;
    assert_eq!(there.exit_code(), 0, "into {backend}:\n{}", there.render());
    assert_eq!(
        there.verify.len(),
        there.stats.len(),
        "every table verified"
    );
    let back = dir.path().join("back.db");
    let report = plain_copy(&place.locator(), &sqlite(&back), dir.path()).await;
    assert_eq!(
        report.exit_code(),
        0,
        "out of {backend}:\n{}",
        report.render()
    );
    let rows = |r: &ferry::Report| r.stats.values().map(|s| s.migrated).sum::<u64>();
    assert_eq!(
        rows(&report),
        rows(&there),
        "every row comes back out of {backend}"
    );
    // And a standalone verify of the first hop agrees.
    let filter = ferry::TableFilter::new(
        &[],
        &skipped.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    )
    .unwrap();
    let v = ferry::verify(&sqlite(&src), &place.locator(), filter, 2, &context(false))
        .await
        .unwrap();
    assert_eq!(v.exit_code(), 0, "{}", v.render());
}

async fn refuses_a_second_copy(backend: &str) {
    let (dir, src) = temp_quirks_db();
    let place = Place::new(backend).await;
    let opts = ferry::CopyOptions {
        schema_mode: ferry::SchemaMode::Create,
        ..with_tables(options(dir.path()), &["tree", "flags"], &[])
    };
    let first = copy_with(&sqlite(&src), &place.locator(), &opts).await;
    assert_eq!(first.exit_code(), 0, "{}", first.render());
    let err = copy_refused(&sqlite(&src), &place.locator(), &opts, true).await;
    assert_eq!(err.exit_code(), 2, "{err}");
    let auto = with_tables(options(dir.path()), &["tree", "flags"], &[]);
    let err = copy_refused(&sqlite(&src), &place.locator(), &auto, true).await;
    assert_mentions(&err.to_string(), &["rows)"]);
    let forced = ferry::CopyOptions {
        force: true,
        ..auto
    };
    let again = ferry::copy(&sqlite(&src), &place.locator(), &forced, &context(true))
        .await
        .unwrap();
    assert_eq!(
        again.exit_code(),
        0,
        "re-run with --force is idempotent:\n{}",
        again.render()
    );
    assert_eq!(again.stats["tree"].migrated, 4);
}

async fn dry_run_writes_nothing(backend: &str) {
    let (dir, src) = temp_quirks_db();
    let place = Place::new(backend).await;
    let opts = dry_run(options(dir.path()));
    let report = ferry::copy(&sqlite(&src), &place.locator(), &opts, &context(true))
        .await
        .unwrap();
    assert!(report.plan.is_some());
    let target = ferry::open_target(&place.locator()).await.unwrap();
    assert!(
        target.existing_tables().await.unwrap().is_empty(),
        "{backend} holds no table after a dry run"
    );
}

/// A 64-byte table name (and its index), as a long-named Rails table gets: kept where the
/// backend's identifier limit allows it (MySQL's 64, SQLite's), else fitted to the limit and announced in the report;
/// the rows land either way and verification finds the renamed table.
async fn long_names_fit_the_limit(backend: &str) {
    const LONG: &str = "subscription_renewal_reminder_deliveries_by_customer_and_channel";
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("billing.db");
    make_sqlite(
        &src,
        &format!(
            "CREATE TABLE {LONG} (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, \
             channel TEXT NOT NULL, sent_at TEXT NOT NULL);
             CREATE INDEX idx_reminders_customer ON {LONG} (customer_id);
             INSERT INTO {LONG} VALUES (1, 4021, 'email', '2024-03-01 09:00:00'),
                 (2, 4021, 'sms', '2024-03-02 09:00:00'), (3, 977, 'email', '2024-03-02 10:30:00');"
        ),
    );
    let place = Place::new(backend).await;
    let max = place.capabilities().max_identifier_bytes;
    let report = plain_copy(&sqlite(&src), &place.locator(), dir.path()).await;
    assert_eq!(
        report.exit_code(),
        0,
        "into {backend}:\n{}",
        report.render()
    );
    let tables = ferry::open_target(&place.locator())
        .await
        .unwrap()
        .existing_tables()
        .await
        .unwrap();
    assert_eq!(tables.len(), 1, "{tables:?}");
    let (name, rows) = &tables[0];
    assert_eq!(*rows, 3, "every row lands in {name}");
    let announced = report.translations.iter().any(|t| t.contains(LONG));
    if LONG.len() > max {
        assert!(name.len() <= max, "{name} fits {max} bytes");
        assert!(
            announced,
            "the rename is announced: {:?}",
            report.translations
        );
    } else {
        assert_eq!(name, LONG, "a name within {max} bytes is kept");
        assert!(!announced, "nothing to announce: {:?}", report.translations);
    }
    assert_eq!(report.verify.len(), 1, "the renamed table is verified too");
}

macro_rules! backends {
    ($($backend:ident),*) => {$(
        mod $backend {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn round_trip() { super::round_trip(stringify!($backend)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn refuses_a_second_copy() { super::refuses_a_second_copy(stringify!($backend)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dry_run_writes_nothing() { super::dry_run_writes_nothing(stringify!($backend)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn long_names_fit_the_limit() { super::long_names_fit_the_limit(stringify!($backend)).await }
        }
    )*};
}

backends!(sqlite, postgres, mysql);
