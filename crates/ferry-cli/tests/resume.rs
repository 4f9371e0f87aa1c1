//! Resume and shards, black-box: the real `ferry` binary is killed with SIGKILL (a real
//! `kill -9`, sent by the test after a delay or by the process itself at a named moment through
//! `FERRY_TEST_KILL_AT`) in every phase of a copy of a generated multi-table database, then
//! `--resume` finishes it and an independent `ferry verify` (and, on PostgreSQL, row counts
//! read with SQL) finds the target equal each time, into PostgreSQL, MySQL and SQLite. Shards: three processes with `--shard K/3`
//! at once, one of them killed and rerun, then `--finish`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    Launch, PgDb, Run, Seeded, ferry_bin, make_sqlite, run_ferry_with, sqlite_url, temp_sqlite,
    test_seed,
};
use tempfile::TempDir;

/// Rows in each table of the generated source (200,000 in all).
const TABLES: [(&str, u32); 5] = [
    ("users", 20_000),
    ("posts", 120_000),
    ("events", 50_000),
    ("tags", 5_000),
    ("settings", 5_000),
];

/// An application database: integer keys (chunked by value), a keyless table (rowid ranges),
/// a text key, a WITHOUT ROWID table (one chunk), an index, a unique key and a foreign key.
fn generated_source(dir: &Path) -> String {
    let n = |t: &str| TABLES.iter().find(|(n, _)| *n == t).unwrap().1;
    let fill = |table: &str, select: &str| {
        format!(
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {}) INSERT INTO {table} {select};",
            n(table)
        )
    };
    let sql = [
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE, joined DATETIME);".to_string(),
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), title TEXT, score REAL);".into(),
        "CREATE INDEX posts_user ON posts(user_id);".into(),
        "CREATE TABLE events (kind TEXT, n INTEGER);".into(),
        "CREATE TABLE tags (name TEXT PRIMARY KEY, weight REAL);".into(),
        "CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;".into(),
        fill("users", "SELECT i, 'user ' || i, 'u' || i || '@example.org', '2024-01-01 00:00:00' FROM c"),
        fill("posts", &format!("SELECT i, 1 + i % {}, 'post ' || i, i * 0.25 FROM c", n("users"))),
        fill("events", "SELECT 'kind ' || (i % 7), i FROM c"),
        fill("tags", "SELECT 'tag ' || i, i / 3.0 FROM c"),
        fill("settings", "SELECT 'key ' || i, 'value ' || i FROM c"),
    ]
    .join("\n");
    sqlite_url(&make_sqlite(&dir.join("app.db"), &sql))
}

/// How a run is ended early.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// The process kills itself with SIGKILL at this `FERRY_TEST_KILL_AT` point.
    At(&'static str),
    /// The test sends SIGKILL after this many milliseconds (the run may finish first).
    After(u64),
}

/// `ferry copy` from `source` to `target` with small chunks, `extra` flags, ended by `kill`.
fn copy(dir: &Path, source: &str, target: &str, extra: &[&str], kill: Option<Kill>) -> Run {
    let mut args = vec![
        "copy",
        "--source",
        source,
        "--target",
        target,
        "--chunk-rows",
        "10000",
    ];
    if !extra.contains(&"--workers") {
        args.extend(["--workers", "2"]);
    }
    args.extend_from_slice(extra);
    let launch = match kill {
        Some(Kill::At(point)) => Launch {
            env: vec![("FERRY_TEST_KILL_AT".into(), point.into())],
            ..Launch::default()
        },
        Some(Kill::After(ms)) => Launch {
            kill_after: Some(Duration::from_millis(ms)),
            ..Launch::default()
        },
        None => Launch::default(),
    };
    run_ferry_with(&ferry_bin(), dir, &args, &launch)
}

/// [`copy`] killed at the named `point`; asserts it was.
fn killed_at(dir: &Path, source: &str, target: &str, extra: &[&str], point: &'static str) -> Run {
    let run = copy(dir, source, target, extra, Some(Kill::At(point)));
    assert_eq!(
        run.signal,
        Some(9),
        "the run was to be killed at {point}\n{}",
        run.show()
    );
    run
}

/// Runs the copy ended by each of `kills` in turn (the first a plain run, the others
/// `--resume`), then `--resume` to the end, then the independent check.
fn kill_and_resume(dir: &Path, source: &str, target: &str, kills: &[Kill]) {
    let mut started = false;
    for kill in kills {
        let extra: &[&str] = if started { &["--resume"] } else { &[] };
        let run = copy(dir, source, target, extra, Some(*kill));
        match kill {
            Kill::At(point) => assert_eq!(
                run.signal,
                Some(9),
                "the run was to be killed at {point}\n{}",
                run.show()
            ),
            // Killed by the test, or done before the delay (then nothing is left to resume).
            Kill::After(_) if run.signal.is_none() => {
                run.expect_code(0);
                return verify(dir, source, target);
            }
            Kill::After(_) => {}
        }
        started = true;
    }
    let run = copy(dir, source, target, &["--resume"], None);
    run.expect_code(0);
    // Every table ends verified: compared in this run or recorded as matched by a killed one.
    let tables = format!("verify: {} tables match", TABLES.len());
    assert!(
        run.stdout.contains(&tables) || run.stderr.contains(&tables),
        "{}",
        run.show()
    );
    // Every named point comes after the ledger is written (a timed kill may come before).
    if matches!(kills.last(), Some(Kill::At(_))) {
        run.expect_stderr("resuming the copy");
    }
    verify(dir, source, target);
}

/// The independent check: a separate `ferry verify` process compares every table's rows and
/// content checksums.
fn verify(dir: &Path, source: &str, target: &str) {
    let args = ["verify", "--source", source, "--target", target];
    let run = run_ferry_with(&ferry_bin(), dir, &args, &Launch::default());
    run.expect_code(0);
}

/// The acceptance at test size: `kill -9` at 20 seeded-random moments across every
/// phase of a SQLite → PostgreSQL copy (21 chunks, 2 workers), each into its own database and
/// followed by `--resume` to the end and the independent check. Trial `i` takes phase `i` of
/// [`PHASES`] in turn (so every phase is hit whatever the seed) at a random occurrence, or, for
/// the wall-clock phase, a SIGKILL sent by the test at a random fraction of a full run's time
/// (which lands in whatever phase the run is in); a third of the trials are killed a second
/// time, by the clock, while resuming. `FERRY_TEST_SEED=n` replays another set.
const PHASES: [(&str, u64); 8] = [
    ("", 0),
    ("ledger-written", 1),
    ("tables-created", 1),
    ("chunk-before-commit", 21),
    ("chunk-committed", 21),
    ("step-done", 8),
    ("table-verified", 5),
    ("before-ledger-drop", 1),
];

/// Twenty kill sequences from `seed`; `full_ms` is an uninterrupted run's time.
fn seeded_kills(seed: u64, full_ms: u64) -> Vec<Vec<Kill>> {
    let mut rng = Seeded(seed);
    let clock = |rng: &mut Seeded| Kill::After(full_ms / 20 + rng.below(full_ms * 9 / 10));
    (0..20)
        .map(|i| {
            let (point, occurrences) = PHASES[i % PHASES.len()];
            let first = if point.is_empty() {
                clock(&mut rng)
            } else {
                let n = 1 + rng.below(occurrences);
                Kill::At(Box::leak(format!("{point}:{n}").into_boxed_str()))
            };
            let mut kills = vec![first];
            if rng.below(3) == 0 {
                kills.push(clock(&mut rng));
            }
            kills
        })
        .collect()
}

#[test]
fn a_copy_killed_at_twenty_random_moments_resumes_to_an_equal_postgres_target_each_time() {
    let dir = TempDir::new().unwrap();
    let source = generated_source(dir.path());
    let seed = test_seed(16);
    // An uninterrupted run sets the clock the timed kills are drawn from.
    let db = PgDb::new();
    let started = std::time::Instant::now();
    copy(dir.path(), &source, &db.url, &[], None).expect_code(0);
    let full_ms = started.elapsed().as_millis() as u64;
    drop(db);
    let trials = seeded_kills(seed, full_ms);
    // Two halves at once (each trial into its own database), to stay near a minute or two.
    std::thread::scope(|s| {
        for half in trials.chunks(trials.len() / 2) {
            let (dir, source) = (dir.path(), &source);
            s.spawn(move || {
                for kills in half {
                    let db = PgDb::new();
                    let what = format!("{kills:?} (FERRY_TEST_SEED={seed}, full run {full_ms} ms)");
                    kill_and_resume(dir, source, &db.url, kills);
                    for (table, rows) in TABLES {
                        let count = db.scalar(&format!("SELECT count(*) FROM {table}"));
                        assert_eq!(count, Some(rows.to_string()), "{table} after {what}");
                    }
                    let left = db.scalar(
                        "SELECT count(*) FROM pg_tables WHERE tablename IN ('ferry_ledger', 'ferry_unfinished_tables')",
                    );
                    assert_eq!(left, Some("0".into()), "ferry's tables left after {what}");
                }
            });
        }
    });
}

#[test]
fn a_copy_killed_in_any_phase_resumes_to_an_equal_mysql_target() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = TempDir::new().unwrap();
    let source = generated_source(dir.path());
    // MySQL commits each DDL statement: a kill between a key's statement and its ledger mark
    // leaves the key built, which the resumed run must recognise.
    let kills: [&[Kill]; 5] = [
        &[Kill::At("tables-created")],
        &[Kill::At("chunk-before-commit:3")],
        &[Kill::At("step-before-mark:1")],
        &[Kill::At("step-before-mark:7")],
        &[Kill::After(1500)],
    ];
    for kills in kills {
        let db = rt.block_on(common::MyDb::new());
        kill_and_resume(dir.path(), &source, &db.url, kills);
    }
}

#[test]
fn a_rerun_refuses_a_ledger_and_a_changed_schema_refuses_resume() {
    let dir = TempDir::new().unwrap();
    let source = generated_source(dir.path());
    let db = PgDb::new();
    killed_at(dir.path(), &source, &db.url, &[], "chunk-committed:3");
    let plain = copy(dir.path(), &source, &db.url, &[], None);
    plain.expect_code(2);
    let line = plain.stderr_lines().last().unwrap().to_string();
    assert!(
        line.contains("ledger of an unfinished ferry copy of this source (")
            && line.contains(" of 21 chunks done)")
            && line.contains("--resume")
            && line.contains("--force"),
        "{}",
        plain.show()
    );
    // The schema changes: resume is refused with the reason, nothing written.
    let changed = dir.path().join("app.db");
    make_sqlite(&changed, "ALTER TABLE posts ADD COLUMN extra TEXT;");
    let resume = copy(dir.path(), &source, &db.url, &["--resume"], None);
    resume.expect_code(2);
    assert!(
        resume
            .stderr
            .contains("the source's schema changed since it was written: table \"posts\": its columns or types changed"),
        "{}",
        resume.show()
    );
    // --force starts over.
    copy(dir.path(), &source, &db.url, &["--force", "--yes"], None).expect_code(0);
    verify(dir.path(), &source, &db.url);
}

#[test]
fn three_shards_then_finish_copy_everything_and_a_killed_shard_resumes() {
    let dir = TempDir::new().unwrap();
    let source = generated_source(dir.path());
    let db = PgDb::new();
    // --finish before any shard has nothing to finish.
    let early = copy(dir.path(), &source, &db.url, &["--finish"], None);
    early.expect_code(2);
    early.expect_stderr("found no ferry ledger");
    // Three shards at once; shard 1 is killed after its second chunk commits.
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|k| {
                let (dir, source, target) = (dir.path(), &source, &db.url);
                s.spawn(move || {
                    let shard = format!("{k}/3");
                    let kill = (k == 1).then_some(Kill::At("chunk-committed:2"));
                    copy(dir, source, target, &["--shard", &shard], kill)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    runs[0].expect_code(0);
    assert_eq!(runs[1].signal, Some(9), "{}", runs[1].show());
    runs[2].expect_code(0);
    // Shard 1's chunks are missing: --finish names them.
    let refused = copy(dir.path(), &source, &db.url, &["--finish"], None);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("--finish refuses:")
            && refused.stderr.contains("are not done: chunk ")
            && refused.stderr.contains("rerun the shards that own them"),
        "{}",
        refused.show()
    );
    // The orchestrator reruns shard 1 with the same K/N: it resumes.
    let rerun = copy(dir.path(), &source, &db.url, &["--shard", "1/3"], None);
    rerun.expect_code(0);
    rerun.expect_stderr("resuming");
    let finish = copy(dir.path(), &source, &db.url, &["--finish"], None);
    finish.expect_code(0);
    verify(dir.path(), &source, &db.url);
    for (table, rows) in TABLES {
        let count = db.scalar(&format!("SELECT count(*) FROM {table}"));
        assert_eq!(count, Some(rows.to_string()), "{table}");
    }
    // The keys and the foreign key exist: --finish built them.
    let fks = db.scalar(
        "SELECT count(*) FROM information_schema.table_constraints WHERE table_schema = 'public' AND constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY')",
    );
    assert_eq!(
        fks,
        Some("5".into()),
        "four primary keys and the foreign key"
    );
}

#[test]
fn a_copy_killed_mid_chunk_resumes_to_an_equal_sqlite_target() {
    let dir = TempDir::new().unwrap();
    let source = generated_source(dir.path());
    // A write transaction killed with its process leaves a hot journal in the target file,
    // which the resumed run rolls back before reading the target.
    let kills: [&[Kill]; 2] = [
        &[Kill::At("chunk-before-commit:3")],
        &[Kill::At("chunk-committed:7"), Kill::At("step-done:1")],
    ];
    for (i, kills) in kills.into_iter().enumerate() {
        let target = dir.path().join(format!("copy-{i}.db"));
        kill_and_resume(dir.path(), &source, &sqlite_url(&target), kills);
        let tables = common::sqlite_rows(
            &target,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'ferry_%'",
        );
        assert!(tables.is_empty(), "ferry's tables left: {tables:?}");
    }
}

/// Orphans (looked for in the target once its rows and keys are in) and the ledger: a copy
/// with `--ignore-errors` killed while copying, resumed and killed again among its DDL steps,
/// then resumed to the end, leaves out the foreign key the orphans break (its ledger step
/// marked done without running, so no resumed run tries to add it) and keeps the other one.
#[test]
fn orphans_found_in_the_target_leave_their_foreign_key_out_across_resumes() {
    let (dir, path) = temp_sqlite("orphans.db", "PRAGMA foreign_keys = OFF;
         CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), title TEXT);
         CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER REFERENCES posts(id));
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 30000)
         INSERT INTO users SELECT i, 'user ' || i FROM c;
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 30000)
         INSERT INTO posts SELECT i, i, 'post ' || i FROM c;
         UPDATE posts SET user_id = 99999 WHERE id IN (7, 25000);
         INSERT INTO comments SELECT id, id FROM posts;");
    let source = sqlite_url(&path);
    let db = PgDb::new();
    let flags = ["--ignore-errors"];
    killed_at(dir.path(), &source, &db.url, &flags, "chunk-committed:2");
    let resumed = ["--ignore-errors", "--resume"];
    // Its keys, foreign keys and statistics are built table by table as their rows are in
    // (`keys.rs`: steps 1 to 7, the orphan check among them, in an order the timing decides);
    // the eighth step, the first counter, comes after all of them.
    let second = killed_at(dir.path(), &source, &db.url, &resumed, "step-done:8");
    second.expect_stderr("2 row(s) of \"posts\"");
    let last = copy(dir.path(), &source, &db.url, &resumed, None);
    last.expect_code(0);
    verify(dir.path(), &source, &db.url);
    let fks = db.scalar(
        "SELECT string_agg(conrelid::regclass::text, ',') FROM pg_constraint WHERE contype = 'f'",
    );
    assert_eq!(fks.as_deref(), Some("comments"), "{}", last.show());
    assert_eq!(
        db.scalar("SELECT count(*) FROM posts WHERE user_id = 99999")
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'ferry_%'")
            .as_deref(),
        Some("0"),
        "the ledger and the marker are gone"
    );
}

/// Tables are copied one after another, heaviest first (`chunks::copy_order`: `posts` and its
/// foreign-key partner `users`, then `events`, ...): with one worker, a kill right after the
/// twelfth chunk commits leaves `posts` (twelve chunks) complete and no chunk of another table
/// done, and the resumed run copies only the other tables (the chunks of every table used to
/// take turns, so every table was part-done until the end).
#[test]
fn the_heaviest_table_is_copied_first_so_a_resume_copies_only_the_tables_left() {
    let dir = TempDir::new().unwrap();
    let source = generated_source(dir.path());
    let db = PgDb::new();
    let one = ["--workers", "1"];
    killed_at(dir.path(), &source, &db.url, &one, "chunk-committed:12");
    let done = db.scalar(
        "SELECT string_agg(table_name || ':' || n, ',' ORDER BY table_name) FROM (SELECT table_name, count(*) AS n FROM ferry_ledger WHERE kind = 'chunk' AND state = 'done' GROUP BY table_name) d",
    );
    assert_eq!(done.as_deref(), Some("posts:12"), "chunks done per table");
    let resumed = copy(
        dir.path(),
        &source,
        &db.url,
        &["--resume", "--workers", "1"],
        None,
    );
    resumed.expect_code(0);
    resumed.expect_stderr("12 of 21 chunks");
    for table in ["users", "events", "tags", "settings"] {
        resumed.expect_stderr(&format!("Copying table table={table} "));
    }
    assert!(
        !resumed.stderr.contains("Copying table table=posts "),
        "posts was copied again\n{}",
        resumed.show()
    );
    verify(dir.path(), &source, &db.url);
}

/// The create-table step after a kill: the killed run's server session may still be inside its
/// uncommitted `CREATE TABLE` transaction when the resumed run starts (the server notices the
/// client is gone only after the statement at hand). The engine sends one statement per round
/// trip, so that transaction can never commit once its client is dead (unlike a multi-statement
/// batch, which the server runs to its end); the resumed run's `CREATE TABLE` waits for it to
/// end, then creates the tables, instead of failing with "already exists".
#[test]
fn a_resume_waits_for_the_killed_sessions_uncommitted_create_table() {
    let dir = TempDir::new().unwrap();
    let source = generated_source(dir.path());
    let db = PgDb::new();
    killed_at(dir.path(), &source, &db.url, &[], "ledger-written");
    // The killed run's session, still inside its transaction, holding the tables' names.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (client, conn) = rt
        .block_on(tokio_postgres::connect(&db.url, tokio_postgres::NoTls))
        .unwrap();
    rt.spawn(conn);
    let creates: Vec<String> = TABLES
        .iter()
        .map(|(t, _)| format!("CREATE TABLE {t} (id int)"))
        .collect();
    rt.block_on(client.batch_execute(&format!("BEGIN; {}", creates.join("; "))))
        .unwrap();
    let ended = rt.spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        client.batch_execute("ROLLBACK").await
    });
    let resumed = copy(dir.path(), &source, &db.url, &["--resume"], None);
    resumed.expect_code(0);
    resumed.expect_stderr("resuming the copy");
    // The other session's transaction was still open when the run reached its create step.
    rt.block_on(ended).unwrap().unwrap();
    verify(dir.path(), &source, &db.url);
}
