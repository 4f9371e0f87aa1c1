//! `ferry migrate --resume`, black-box: the real binary kills itself (`FERRY_TEST_KILL_AT`, a
//! real SIGKILL) in each phase of a move (rows, the location rewrite, the files, the end), then
//! `--resume` finishes it, and an independent check finds the rows equal (`ferry verify` for
//! the tables not rewritten, SQL for the rewritten one: every location rewritten exactly once)
//! and the files equal byte for byte, with no ledger left. The rewrite's new prefix starts
//! with its old one, so a rewrite applied twice would show.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{
    Launch, PgDb, Run, Seeded, ferry_bin, make_sqlite, run_ferry_with, sqlite_rows, sqlite_url,
    test_seed,
};
use ferry_testkit::files::{bytes, read_tree, write_tree};
use tempfile::TempDir;

/// Rows of `attachments` (the rewritten table) and of `notes` (copied as is).
const ATTACHMENTS: u32 = 30_000;
const NOTES: u32 = 12_000;
/// Files on disk: the attachments with id ≤ FILES are `uploaded`, the others `deleted`.
const FILES: u32 = 40;

/// The application: its database (attachments name their files by absolute path) and files.
struct App {
    dir: TempDir,
    source: String,
    files: PathBuf,
}

fn app() -> App {
    let dir = TempDir::new().unwrap();
    let files = dir.path().join("files");
    let tree: Vec<(String, Vec<u8>)> = (1..=FILES)
        .map(|i| {
            (
                format!("u{}/f{i}.bin", i % 7),
                bytes(u64::from(i), 3000 + i as usize * 97),
            )
        })
        .collect();
    let tree: Vec<(&str, Vec<u8>)> = tree.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    write_tree(&files, &tree);
    let sql = format!(
        "CREATE TABLE attachments (id INTEGER PRIMARY KEY, path TEXT NOT NULL, status TEXT NOT NULL);
         CREATE TABLE notes (id INTEGER PRIMARY KEY, attachment_id INTEGER REFERENCES attachments(id), body TEXT);
         CREATE INDEX notes_attachment ON notes(attachment_id);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {ATTACHMENTS})
         INSERT INTO attachments SELECT i, '/srv/files/u' || (i % 7) || '/f' || i || '.bin',
             CASE WHEN i <= {FILES} THEN 'uploaded' ELSE 'deleted' END FROM c;
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {NOTES})
         INSERT INTO notes SELECT i, 1 + i % {ATTACHMENTS}, 'note ' || i FROM c;"
    );
    let source = sqlite_url(&make_sqlite(&dir.path().join("app.db"), &sql));
    App { dir, source, files }
}

/// A spec moving the app into `target` and its files into `out`, in chunks of 5,000 rows.
fn spec(app: &App, name: &str, target: &str, out: &Path) -> PathBuf {
    let path = app.dir.path().join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
[database]
source = "{src}"
target = "{target}"
workers = 2
chunk_rows = 5000

[blobs]
source = "file://{files}"
target = "file://{out}"
manifest_sql = "SELECT substr(path, length('/srv/files/') + 1) FROM attachments WHERE status = 'uploaded'"
workers = 2

[[rewrite]]
table = "attachments"
column = "path"
from = "/srv/files/"
to = "/srv/files/moved/"
"#,
            src = app.source,
            files = app.files.display(),
            out = out.display()
        ),
    )
    .unwrap();
    path
}

fn migrate(app: &App, spec: &Path, extra: &[&str], kill_at: Option<&str>) -> Run {
    let mut args = vec!["migrate", "--spec", spec.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_ferry_with(
        &ferry_bin(),
        app.dir.path(),
        &args,
        &Launch::killed_at(kill_at),
    )
}

/// Runs the move killed at each of `kills` in turn (the first a plain run, the others
/// `--resume`), then `--resume` to the end.
fn kill_and_resume(app: &App, spec: &Path, kills: &[&str]) {
    for (i, point) in kills.iter().enumerate() {
        let extra: &[&str] = if i == 0 { &[] } else { &["--resume"] };
        let run = migrate(app, spec, extra, Some(point));
        assert_eq!(
            run.signal,
            Some(9),
            "the move was to be killed at {point}\n{}",
            run.show()
        );
    }
    // A plain rerun refuses the unfinished move and names --resume.
    let run = migrate(app, spec, &[], None);
    run.expect_code(2);
    run.expect_stderr("--resume");
    migrate(app, spec, &["--resume"], None).expect_code(0);
}

/// The independent check of the files: the uploaded ones, byte for byte, and nothing else.
fn check_files(app: &App, out: &Path, kills: &[&str]) {
    assert!(
        read_tree(out) == read_tree(&app.files),
        "the files differ after {kills:?}"
    );
}

/// The independent check of the tables not rewritten: a separate `ferry verify`.
fn check_notes(app: &App, target: &str) {
    let args = [
        "verify",
        "--source",
        &app.source,
        "--target",
        target,
        "--exclude",
        "attachments",
    ];
    run_ferry_with(&ferry_bin(), app.dir.path(), &args, &Launch::default()).expect_code(0);
}

/// Kill points over every phase: the copy's chunks and steps, the rewrite (before it and
/// once it committed), the files (after a few copied), the end (before the ledger goes), and
/// sequences of kills in different phases.
const KILLS: [&[&str]; 8] = [
    &["chunk-committed:2"],
    &["step-done:1"],
    &["rewrite-start"],
    &["rewrite-committed"],
    &["file-copied:5"],
    &["before-migrate-ledger-drop"],
    &[
        "chunk-before-commit:3",
        "rewrite-committed",
        "file-copied:3",
    ],
    &[
        "rewrite-start",
        "file-copied:10",
        "before-migrate-ledger-drop",
    ],
];

#[test]
fn a_move_killed_in_any_phase_resumes_into_postgres() {
    let app = app();
    for (n, kills) in KILLS.iter().enumerate() {
        let db = PgDb::new();
        let out = app.dir.path().join(format!("out{n}"));
        let spec = spec(&app, &format!("move{n}"), &db.url, &out);
        kill_and_resume(&app, &spec, kills);
        check_postgres_move(&app, &db, &out, kills);
    }
}

/// The issue's acceptance for a move: SIGKILL sent at seeded-random moments of a move into
/// PostgreSQL (landing in whatever phase it is in: rows, keys, rewrite, files, the end), each
/// followed by `--resume` (itself killed at another random moment in a third of the trials)
/// to the end, and the independent checks. `FERRY_TEST_SEED=n` replays another set.
#[test]
fn a_move_killed_at_random_moments_resumes_into_postgres_each_time() {
    let app = app();
    let seed = test_seed(16);
    // An uninterrupted move sets the clock the kills are drawn from.
    let db = PgDb::new();
    let spec0 = spec(&app, "clock", &db.url, &app.dir.path().join("clock-out"));
    let started = Instant::now();
    migrate(&app, &spec0, &[], None).expect_code(0);
    let full_ms = started.elapsed().as_millis() as u64;
    drop(db);
    let mut rng = Seeded(seed);
    for n in 0..6 {
        let mut kills = vec![full_ms / 20 + rng.below(full_ms * 9 / 10)];
        if rng.below(3) == 0 {
            kills.push(full_ms / 20 + rng.below(full_ms / 2));
        }
        let what =
            format!("SIGKILL after {kills:?} ms (FERRY_TEST_SEED={seed}, full move {full_ms} ms)");
        let db = PgDb::new();
        let out = app.dir.path().join(format!("random-out{n}"));
        let spec = spec(&app, &format!("random{n}"), &db.url, &out);
        let mut finished = false;
        for (i, ms) in kills.iter().enumerate() {
            let mut args = vec!["migrate", "--spec", spec.to_str().unwrap()];
            if i > 0 {
                args.push("--resume");
            }
            let launch = Launch {
                kill_after: Some(Duration::from_millis(*ms)),
                ..Launch::default()
            };
            let run = run_ferry_with(&ferry_bin(), app.dir.path(), &args, &launch);
            // Done before the kill: nothing is left to resume.
            if run.signal.is_none() {
                run.expect_code(0);
                finished = true;
                break;
            }
        }
        if !finished {
            migrate(&app, &spec, &["--resume"], None).expect_code(0);
        }
        check_postgres_move(&app, &db, &out, &[what.as_str()]);
    }
}

/// The independent checks of a move into PostgreSQL: every row there, every location
/// rewritten exactly once, the other table equal (`ferry verify`), the files equal, and
/// ferry's own tables gone.
fn check_postgres_move(app: &App, db: &PgDb, out: &Path, kills: &[&str]) {
    let count = |sql: &str| db.scalar(sql).unwrap_or_default();
    assert_eq!(
        count("SELECT count(*) FROM attachments"),
        ATTACHMENTS.to_string(),
        "after {kills:?}"
    );
    // Every location rewritten exactly once.
    assert_eq!(
        count(
            "SELECT count(*) FROM attachments WHERE path = '/srv/files/moved/u' || (id % 7) || '/f' || id || '.bin'"
        ),
        ATTACHMENTS.to_string(),
        "locations after {kills:?}"
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM attachments WHERE status = CASE WHEN id <= {FILES} THEN 'uploaded' ELSE 'deleted' END"
        )),
        ATTACHMENTS.to_string(),
        "statuses after {kills:?}"
    );
    check_notes(app, &db.url);
    check_files(app, out, kills);
    assert_eq!(
        count(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('ferry_ledger', 'ferry_unfinished_tables')"
        ),
        "0",
        "ferry's tables left after {kills:?}"
    );
}

#[test]
fn a_move_killed_in_the_rewrite_and_files_resumes_into_sqlite() {
    let app = app();
    for (n, kills) in [
        &["chunk-committed:3", "rewrite-committed"][..],
        &["rewrite-start", "file-copied:7"][..],
    ]
    .iter()
    .enumerate()
    {
        let target = app.dir.path().join(format!("new{n}.db"));
        let out = app.dir.path().join(format!("sqlite-out{n}"));
        let spec = spec(&app, &format!("sqlite{n}"), &sqlite_url(&target), &out);
        kill_and_resume(&app, &spec, kills);
        let rows = sqlite_rows(
            &target,
            "SELECT count(*), sum(path = '/srv/files/moved/u' || (id % 7) || '/f' || id || '.bin') FROM attachments",
        );
        assert_eq!(
            rows[0],
            vec![Some(ATTACHMENTS.to_string()), Some(ATTACHMENTS.to_string())],
            "after {kills:?}"
        );
        let left = sqlite_rows(
            &target,
            "SELECT count(*) FROM sqlite_master WHERE name IN ('ferry_ledger', 'ferry_unfinished_tables')",
        );
        assert_eq!(left[0][0].as_deref(), Some("0"), "after {kills:?}");
        check_notes(&app, &sqlite_url(&target));
        check_files(&app, &out, kills);
    }
}

#[test]
fn a_resume_refuses_a_move_recorded_with_other_rewrite_rules() {
    let app = app();
    let db = PgDb::new();
    let out = app.dir.path().join("out");
    let spec_path = spec(&app, "move", &db.url, &out);
    let run = migrate(&app, &spec_path, &[], Some("file-copied:2"));
    assert_eq!(run.signal, Some(9), "{}", run.show());
    // The same move with another `to`: resuming would rewrite rewritten rows.
    let text = std::fs::read_to_string(&spec_path)
        .unwrap()
        .replace("/srv/files/moved/", "/srv/files/elsewhere/");
    std::fs::write(&spec_path, text).unwrap();
    let run = migrate(&app, &spec_path, &["--resume"], None);
    run.expect_code(2);
    run.expect_stderr("another rewrite");
    // --force starts over: the rows copied again and rewritten once, by the new rules.
    migrate(&app, &spec_path, &["--resume", "--force", "--yes"], None).expect_code(0);
    assert_eq!(
        db.scalar("SELECT count(*) FROM attachments WHERE path LIKE '/srv/files/elsewhere/u%' AND path NOT LIKE '/srv/files/elsewhere/elsewhere/%'"),
        Some(ATTACHMENTS.to_string())
    );
    check_files(&app, &out, &[]);
}
