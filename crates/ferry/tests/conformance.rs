//! The connector conformance suite: the same test list, run unchanged against every backend
//! (as a target and as a source). Adding a backend means adding one line to `backends!` below.

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
}

/// Quirk tables not every backend can hold (MySQL stores no infinities, PostgreSQL and MySQL no
/// invalid UTF-8): their row failures have their own tests.
const NOT_PORTABLE: &[&str] = &["bad_text", "reals"];

async fn round_trip(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let src = quirks_db(dir.path());
    let place = Place::new(backend).await;
    let opts = with_tables(options(dir.path()), &[], NOT_PORTABLE);
    let there = ferry::copy(&sqlite(&src), &place.locator(), &opts, &context(false))
        .await
        .unwrap();
    assert_eq!(there.exit_code(), 0, "into {backend}:\n{}", there.render());
    assert_eq!(
        there.verify.len(),
        there.stats.len(),
        "every table verified"
    );
    let back = dir.path().join("back.db");
    let report = ferry::copy(
        &place.locator(),
        &sqlite(&back),
        &options(dir.path()),
        &context(false),
    )
    .await
    .unwrap();
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
        &NOT_PORTABLE
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let v = ferry::verify(&sqlite(&src), &place.locator(), filter, 2, &context(false))
        .await
        .unwrap();
    assert_eq!(v.exit_code(), 0, "{}", v.render());
}

async fn refuses_a_second_copy(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let src = quirks_db(dir.path());
    let place = Place::new(backend).await;
    let opts = ferry::CopyOptions {
        schema_mode: ferry::SchemaMode::Create,
        ..with_tables(options(dir.path()), &["tree", "flags"], &[])
    };
    let first = ferry::copy(&sqlite(&src), &place.locator(), &opts, &context(false))
        .await
        .unwrap();
    assert_eq!(first.exit_code(), 0, "{}", first.render());
    let err = ferry::copy(&sqlite(&src), &place.locator(), &opts, &context(true))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    let auto = with_tables(options(dir.path()), &["tree", "flags"], &[]);
    let err = ferry::copy(&sqlite(&src), &place.locator(), &auto, &context(true))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("rows)"),
        "filled tables are refused too: {err}"
    );
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
    let dir = tempfile::tempdir().unwrap();
    let src = quirks_db(dir.path());
    let place = Place::new(backend).await;
    let opts = ferry::CopyOptions {
        dry_run: true,
        ..options(dir.path())
    };
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

macro_rules! backends {
    ($($backend:ident),*) => {$(
        mod $backend {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn round_trip() { super::round_trip(stringify!($backend)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn refuses_a_second_copy() { super::refuses_a_second_copy(stringify!($backend)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dry_run_writes_nothing() { super::dry_run_writes_nothing(stringify!($backend)).await }
        }
    )*};
}

backends!(sqlite, postgres, mysql);
