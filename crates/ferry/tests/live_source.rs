//! Copying a source while its application writes: a writer moves money between accounts (the
//! total never changes) and counts its transfers in another table, while ferry copies with small
//! batches. The copy must hold the invariant (one consistent picture of every table), its own
//! verification must pass (it compares with the same picture), and the writer must keep working.
//! Against real servers: SQLite WAL and rollback journal, PostgreSQL, MySQL/MariaDB.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ferry::Status;
use mysql_async::prelude::Queryable;

const ACCOUNTS: i64 = 200_000;
const EVENTS: i64 = 50_000;
const BALANCE: i64 = 100;

/// What the writer did: transfers committed, and any error it met.
#[derive(Clone, Default)]
struct Tally {
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Tally {
    /// After the writer stopped: it never failed, and it committed during the copy.
    fn worked_during_copy(&self, during: u64) {
        assert!(self.errors.lock().unwrap().is_empty(), "{:?}", self.errors);
        assert!(during > 0, "the writer committed during the copy");
    }

    /// Tells the writer to stop and waits until it has.
    fn stop_writer(&self, writer: std::thread::JoinHandle<()>) {
        self.stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();
    }

    fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    async fn wait_for_commits(&self, n: u64) {
        for _ in 0..600 {
            if self.commits() >= n {
                return;
            }
            assert!(self.errors.lock().unwrap().is_empty(), "{:?}", self.errors);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the writer committed only {} transfers (waited for {n}): {:?}",
            self.commits(),
            self.errors.lock().unwrap()
        );
    }
}

/// Pseudo-random transfers (xorshift: no dependency for a test's dice).
struct Dice(u64);

impl Dice {
    fn transfer(&mut self) -> (i64, i64, i64) {
        let mut next = || {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        };
        let a = (next() % ACCOUNTS as u64) as i64 + 1;
        let b = (next() % ACCOUNTS as u64) as i64 + 1;
        let amount = (next() % 50) as i64 + 1;
        (a, b, amount)
    }
}

fn transfer_sql(a: i64, b: i64, amount: i64) -> String {
    format!(
        "UPDATE accounts SET balance = balance - {amount} WHERE id = {a};
         UPDATE accounts SET balance = balance + {amount} WHERE id = {b};
         INSERT INTO events (src, dst, amount) VALUES ({a}, {b}, {amount});
         UPDATE counter SET transfers = transfers + 1 WHERE id = 1;"
    )
}

fn sqlite_source(path: &std::path::Path, journal: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = {journal};
         CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
         CREATE TABLE events (id INTEGER PRIMARY KEY, src INTEGER NOT NULL, dst INTEGER NOT NULL, amount INTEGER NOT NULL);
         CREATE TABLE counter (id INTEGER PRIMARY KEY, transfers INTEGER NOT NULL);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {ACCOUNTS})
         INSERT INTO accounts SELECT i, {BALANCE} FROM s;
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {EVENTS})
         INSERT INTO events (src, dst, amount) SELECT 1, 1, 0 FROM s;
         INSERT INTO counter VALUES (1, {EVENTS});"
    ))
    .unwrap();
}

/// The application: a thread with its own connection, a busy timeout, one transfer per
/// transaction.
fn sqlite_writer(path: &std::path::Path, tally: &Tally) -> std::thread::JoinHandle<()> {
    let (path, tally) = (path.to_path_buf(), tally.clone());
    std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.busy_timeout(Duration::from_secs(120)).unwrap();
        let mut dice = Dice(0x9E37_79B9_7F4A_7C15);
        while !tally.stop.load(Ordering::SeqCst) {
            let (a, b, amount) = dice.transfer();
            let sql = format!("BEGIN IMMEDIATE; {} COMMIT;", transfer_sql(a, b, amount));
            match conn.execute_batch(&sql) {
                Ok(()) => {
                    tally.commits.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    tally.errors.lock().unwrap().push(e.to_string());
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    })
}

/// A temp dir holding `app.db`, made in `journal` mode, and a writer thread writing it:
/// (dir, file, the writer's tally, the writer).
fn written_sqlite_source(
    journal: &str,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Tally,
    std::thread::JoinHandle<()>,
) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app.db");
    sqlite_source(&src, journal);
    let tally = Tally::default();
    let writer = sqlite_writer(&src, &tally);
    (dir, src, tally, writer)
}

fn copy_options(dir: &std::path::Path) -> ferry::CopyOptions {
    ferry::CopyOptions {
        batch_rows: 500,
        ..options(dir)
    }
}

/// Copies `source` into a new PostgreSQL database once the writer runs: the report, the
/// target and how many transfers the writer committed during the copy.
async fn copy_during_writes(
    source: &ferry::Locator,
    tally: &Tally,
    dir: &std::path::Path,
) -> (ferry::Report, TestDb, u64) {
    tally.wait_for_commits(5).await;
    let pg = TestDb::new().await;
    let before = tally.commits();
    let report = copy_with(source, &pg.locator(), &copy_options(dir)).await;
    (report, pg, tally.commits() - before)
}

/// The copy in PostgreSQL: the total, the events and the transfer counter.
async fn copied(pg: &TestDb) -> (i64, i64, i64) {
    let row = pg
        .client()
        .await
        .query_one(
            "SELECT (SELECT sum(balance)::bigint FROM accounts),
                    (SELECT count(*) FROM events)::bigint,
                    (SELECT transfers::bigint FROM counter WHERE id = 1)",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// The copy is one consistent picture, verified against that same picture.
async fn assert_consistent(report: &ferry::Report, pg: &TestDb, how: &str) {
    assert_eq!(report.status, Status::Completed, "{}", report.render());
    assert!(!report.has_failures(), "{}", report.render());
    assert_eq!(report.verify.len(), 3, "{}", report.render());
    assert!(
        report
            .source_snapshot
            .as_deref()
            .is_some_and(|s| s.contains(how)),
        "source read as {:?}, expected {how}",
        report.source_snapshot
    );
    assert!(report.to_json().contains("\"source_snapshot\""));
    assert!(report.render().contains("source read: "));
    let (total, events, transfers) = copied(pg).await;
    assert_eq!(total, ACCOUNTS * BALANCE, "money appeared or vanished");
    assert_eq!(
        events, transfers,
        "events and the counter come from one moment"
    );
    assert!(transfers >= EVENTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_source_copied_while_written() {
    let (dir, src, tally, writer) = written_sqlite_source("WAL");
    let (report, pg, during) = copy_during_writes(&sqlite(&src), &tally, dir.path()).await;
    tally.stop_writer(writer);
    tally.worked_during_copy(during);
    assert_consistent(&report, &pg, "SQLite WAL snapshot").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rollback_journal_source_makes_writers_wait() {
    let (dir, src, tally, writer) = written_sqlite_source("DELETE");
    tally.wait_for_commits(5).await;
    let pg = TestDb::new().await;
    let report = copy_with(&sqlite(&src), &pg.locator(), &copy_options(dir.path())).await;
    // The shared lock is gone with the source: the writer, which waited, goes on.
    let after = tally.commits();
    tally.wait_for_commits(after + 5).await;
    tally.stop_writer(writer);
    assert!(tally.errors.lock().unwrap().is_empty());
    assert_consistent(&report, &pg, "SQLite shared lock (writers wait)").await;
    assert!(
        !dir.path().join("app.db-wal").exists() && !dir.path().join("app.db-shm").exists(),
        "a rollback-journal source gets no -wal/-shm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backup_snapshot_of_a_wal_file_being_written() {
    let (dir, src, tally, writer) = written_sqlite_source("WAL");
    tally.wait_for_commits(5).await;
    let files_before: Vec<String> = snapshot(dir.path()).into_iter().map(|(n, _)| n).collect();
    let pg = TestDb::new().await;
    let locator =
        ferry::parse_locator(&format!("sqlite://{}?snapshot=backup", src.display())).unwrap();
    let before = tally.commits();
    let report = ferry::copy(
        &locator,
        &pg.locator(),
        &copy_options(&dir.path().join("out")),
        &context(false),
    )
    .await
    .unwrap();
    let during = tally.commits() - before;
    let files_after: Vec<String> = snapshot(dir.path()).into_iter().map(|(n, _)| n).collect();
    tally.stop_writer(writer);
    tally.worked_during_copy(during);
    assert_consistent(&report, &pg, "SQLite online backup copy").await;
    assert_eq!(
        files_after, files_before,
        "nothing was created beside the source"
    );
}

/// A WAL file no process has open is read `immutable` (nothing created beside it); if an
/// application opens and writes it meanwhile, the next read fails instead of mixing pictures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_immutable_read_is_guarded() {
    let (dir, src) = closed_wal_db("app.db");
    let before = snapshot(dir.path());

    // Open in another handle (here this process's, as /proc shows it): refused, untouched.
    let held = std::fs::File::open(&src).unwrap();
    let source = ferry::open_source(&sqlite(&src)).await.unwrap();
    let err = source
        .schema(&ferry::SchemaOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert_mentions(&err.to_string(), &["open in process"]);
    drop((source, held));
    assert_eq!(snapshot(dir.path()), before);

    let source = ferry::open_source(&sqlite(&src)).await.unwrap();
    let schema = source
        .schema(&ferry::SchemaOptions::default())
        .await
        .unwrap();
    assert_eq!(
        source.snapshot_method().as_deref(),
        Some("SQLite file read immutable (no process had it open)")
    );
    assert_eq!(snapshot(dir.path()), before, "no -wal or -shm appeared");
    {
        let app = rusqlite::Connection::open(&src).unwrap();
        app.execute_batch("INSERT INTO t VALUES (3, 'c')").unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let err = source
            .read(ferry::ReadRequest::new(
                &schema.tables[0],
                100,
                tx,
                tokio_util::sync::CancellationToken::new(),
            ))
            .await
            .unwrap_err();
        assert_mentions(&err.to_string(), &["changed while ferry read it"]);
    }
}

#[test]
fn sqlite_locator_parameters_are_checked() {
    let err = ferry::parse_locator("sqlite:///tmp/app.db?mode=ro").unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(err.to_string().lines().count(), 1);
    assert_mentions(&err.to_string(), &["?snapshot=backup"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_snapshot_is_for_sources_only() {
    let dir = tempfile::tempdir().unwrap();
    let locator = ferry::parse_locator(&format!(
        "sqlite://{}?snapshot=backup",
        dir.path().join("t.db").display()
    ))
    .unwrap();
    let err = ferry::open_target(&locator).await.err().unwrap();
    assert_eq!(err.exit_code(), 2);
    assert_mentions(&err.to_string(), &["source only"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_source_copied_while_written() {
    let dir = tempfile::tempdir().unwrap();
    let src = TestDb::with(&format!(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL);
             CREATE TABLE events (id bigserial PRIMARY KEY, src bigint NOT NULL, dst bigint NOT NULL, amount bigint NOT NULL);
             CREATE TABLE counter (id bigint PRIMARY KEY, transfers bigint NOT NULL);
             INSERT INTO accounts SELECT i, {BALANCE} FROM generate_series(1, {ACCOUNTS}) i;
             INSERT INTO events (src, dst, amount) SELECT 1, 1, 0 FROM generate_series(1, {EVENTS});
             INSERT INTO counter VALUES (1, {EVENTS});"
        )).await;
    let tally = Tally::default();
    let writer = {
        let (client, tally) = (src.client().await, tally.clone());
        tokio::spawn(async move {
            let mut dice = Dice(0x2545_F491_4F6C_DD1D);
            while !tally.stop.load(Ordering::SeqCst) {
                let (a, b, amount) = dice.transfer();
                let sql = format!("BEGIN; {} COMMIT;", transfer_sql(a, b, amount));
                if let Err(e) = client.batch_execute(&sql).await {
                    tally.errors.lock().unwrap().push(e.to_string());
                    return;
                }
                tally.commits.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let (report, pg, during) = copy_during_writes(&src.locator(), &tally, dir.path()).await;
    tally.stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    tally.worked_during_copy(during);
    assert_consistent(&report, &pg, "PostgreSQL exported snapshot").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_source_copied_while_written() {
    let dir = tempfile::tempdir().unwrap();
    let my = MyDb::new().await;
    {
        let mut conn = my.conn().await;
        conn.query_drop(format!(
            "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB;
             CREATE TABLE events (id BIGINT AUTO_INCREMENT PRIMARY KEY, src BIGINT NOT NULL, dst BIGINT NOT NULL, amount BIGINT NOT NULL) ENGINE=InnoDB;
             CREATE TABLE counter (id BIGINT PRIMARY KEY, transfers BIGINT NOT NULL) ENGINE=InnoDB;
             INSERT INTO counter VALUES (1, {EVENTS});"
        ))
        .await
        .unwrap();
        // Multi-row INSERTs (recursive CTE limits differ between MySQL and MariaDB).
        for start in (1..=ACCOUNTS).step_by(10_000) {
            let rows: Vec<String> = (start..start + 10_000)
                .map(|i| format!("({i}, {BALANCE})"))
                .collect();
            conn.query_drop(format!("INSERT INTO accounts VALUES {}", rows.join(",")))
                .await
                .unwrap();
        }
        for _ in 0..EVENTS / 10_000 {
            let rows = vec!["(1, 1, 0)"; 10_000].join(",");
            conn.query_drop(format!(
                "INSERT INTO events (src, dst, amount) VALUES {rows}"
            ))
            .await
            .unwrap();
        }
        conn.disconnect().await.unwrap();
    }
    let tally = Tally::default();
    let writer = {
        let (mut conn, tally) = (my.conn().await, tally.clone());
        tokio::spawn(async move {
            let mut dice = Dice(0xD1B5_4A32_D192_ED03);
            while !tally.stop.load(Ordering::SeqCst) {
                let (a, b, amount) = dice.transfer();
                let sql = format!("START TRANSACTION; {} COMMIT;", transfer_sql(a, b, amount));
                if let Err(e) = conn.query_drop(sql).await {
                    tally.errors.lock().unwrap().push(e.to_string());
                    return;
                }
                tally.commits.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let _ = conn.disconnect().await;
        })
    };
    let (report, pg, during) = copy_during_writes(&my.locator(), &tally, dir.path()).await;
    tally.stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    tally.worked_during_copy(during);
    assert_consistent(&report, &pg, "MySQL consistent snapshot on 2 connections").await;
    assert!(
        report
            .source_snapshot
            .as_deref()
            .is_some_and(|s| s.contains("FLUSH TABLES WITH READ LOCK held")),
        "{:?}",
        report.source_snapshot
    );
}

/// A user without the RELOAD privilege cannot take FLUSH TABLES WITH READ LOCK: one
/// connection's snapshot serves every read, and the report says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_without_reload_reads_on_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let my = MyDb::new().await;
    let user = format!("ferry_noreload_{}", std::process::id());
    let mut admin = my_connect(&mysql_admin_url()).await;
    admin
        .query_drop(format!(
            "CREATE TABLE {db}.a (id INT PRIMARY KEY, v INT); INSERT INTO {db}.a VALUES (1, 10), (2, 20);
             CREATE TABLE {db}.b (id INT PRIMARY KEY); INSERT INTO {db}.b VALUES (1);
             DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%';
             GRANT SELECT, SHOW VIEW ON {db}.* TO '{user}'@'%';",
            db = my.name
        ))
        .await
        .unwrap();
    let mut url = url::Url::parse(&my.url).unwrap();
    url.set_username(&user).unwrap();
    let pg = TestDb::new().await;
    let report = ferry::copy(
        &ferry::parse_locator(url.as_str()).unwrap(),
        &pg.locator(),
        &options(dir.path()),
        &context(false),
    )
    .await;
    admin
        .query_drop(format!("DROP USER '{user}'@'%'"))
        .await
        .unwrap();
    admin.disconnect().await.unwrap();
    let report = report.unwrap();
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    assert_eq!(report.verify.len(), 2);
    let how = report.source_snapshot.unwrap();
    assert!(
        how.starts_with(
            "MySQL consistent snapshot on 1 connection (FLUSH TABLES WITH READ LOCK refused"
        ),
        "{how}"
    );
}
