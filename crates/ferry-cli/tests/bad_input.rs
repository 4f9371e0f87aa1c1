//! Black-box tests of bad input: each is exit code 2 with one line on stderr that says what is
//! wrong and what to do, and nothing written to the target. S3 cases use a real SeaweedFS (see
//! crates/ferry-testkit/src/s3.rs); PostgreSQL cases a real server.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{
    Run, ferry, pg_admin_url, read_summary, sqlite_url, temp_sqlite, with_database,
    write_migrate_spec,
};
use ferry_testkit::files::{bytes, file_url, write_tree};
use ferry_testkit::s3::s3;
use ferry_testkit::unique;
use tempfile::TempDir;

const APP_SQL: &str = "
    CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, body TEXT);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
    INSERT INTO users SELECT i, 'user ' || i FROM n;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
    INSERT INTO posts SELECT i, i, printf('%.200c', 'x') FROM n;
";

/// A tempdir holding `app.db` (a few pages of rows); returns (dir, its path).
fn app() -> (TempDir, PathBuf) {
    let (dir, db) = temp_sqlite("app.db", APP_SQL);
    (dir, db)
}

fn s(p: &Path) -> String {
    p.to_str().expect("UTF-8 temp path").to_string()
}

/// Asserts exit code 2 and exactly one line on stderr, starting `error: `, besides the INFO
/// progress lines a run without a terminal logs before it finds the problem (`Reading the
/// source schema`); returns the line.
#[track_caller]
fn one_error_line(run: &Run) -> String {
    run.expect_code(2);
    let progress = |l: &&str| {
        l.split_whitespace().nth(1) == Some("INFO") && l.starts_with(|c: char| c.is_ascii_digit())
    };
    let lines: Vec<&str> = run
        .stderr_lines()
        .into_iter()
        .filter(|l| !progress(l))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr\n{}",
        run.show()
    );
    assert!(lines[0].starts_with("error: "), "{}", run.show());
    lines[0].to_string()
}

#[track_caller]
fn assert_says(line: &str, words: &[&str]) {
    for w in words {
        assert!(line.contains(w), "the line should say {w:?}: {line}");
    }
}

/// `ferry copy SOURCE → dir/out.db` and `ferry verify SOURCE ↔ dir/app.db` with `extra` flags.
fn copy_and_verify(dir: &Path, source: &Path, extra: &[&str]) -> (Run, Run, PathBuf) {
    let target = dir.join("out.db");
    let mut args = vec![
        "copy".to_string(),
        "--source".into(),
        sqlite_url(source),
        "--target".into(),
        sqlite_url(&target),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let copy = ferry(dir, &args);
    args[0] = "verify".into();
    args[4] = sqlite_url(&dir.join("app.db"));
    let verify = ferry(dir, &args);
    (copy, verify, target)
}

#[test]
fn a_truncated_sqlite_file_is_refused_before_anything_is_written() {
    let (dir, db) = app();
    let full = std::fs::read(&db).unwrap();
    assert!(full.len() > 8 * 4096, "the source spans many pages");
    for (name, len) in [
        ("half.db", full.len() / 2),
        ("cut.db", full.len() / 2 + 1234),
        ("header-only.db", 100),
    ] {
        let cut = dir.path().join(name);
        std::fs::write(&cut, &full[..len]).unwrap();
        let (copy, verify, target) = copy_and_verify(dir.path(), &cut, &[]);
        for run in [&copy, &verify] {
            let line = one_error_line(run);
            assert_says(&line, &[name, "truncated", "copy the whole file again"]);
        }
        assert!(!target.exists(), "nothing may be written: {}", copy.show());
    }
}

#[test]
fn workers_0_and_a_huge_batch_size_are_refused() {
    let (dir, db) = app();
    let (copy, verify, target) = copy_and_verify(dir.path(), &db, &["--workers", "0"]);
    for run in [&copy, &verify] {
        assert_says(&one_error_line(run), &["--workers must be at least 1"]);
    }
    assert!(!target.exists());

    let summary = dir.path().join("s.json");
    let copy_in_batches_of = |rows: &str| {
        ferry(
            dir.path(),
            &[
                "copy",
                "--source",
                &sqlite_url(&db),
                "--target",
                &sqlite_url(&target),
                "--batch-size",
                rows,
                "--summary",
                &s(&summary),
            ],
        )
    };
    let run = copy_in_batches_of("1000000000");
    assert_says(
        &one_error_line(&run),
        &["--batch-size 1000000000 is too large", "at most 1000000"],
    );
    assert!(!target.exists());
    assert_eq!(read_summary(&summary)["status"], "failed");

    // The largest accepted batch does not reserve rows × width up front.
    copy_in_batches_of("1000000").expect_code(0);
    let rss = read_summary(&summary)["peak_rss_mb"].as_f64().unwrap();
    assert!(rss < 200.0, "peak RSS {rss:.0} MB for 6,000 small rows");
}

#[test]
fn table_selection_mistakes() {
    let (dir, db) = app();
    // A --tables name the source lacks: verify refuses it as copy does.
    let (copy, verify, target) = copy_and_verify(dir.path(), &db, &["--tables", "NoSuchTable"]);
    for run in [&copy, &verify] {
        assert_says(
            &one_error_line(run),
            &["--tables names tables the source does not have: NoSuchTable"],
        );
    }
    assert!(!target.exists());

    // The same name in both lists.
    let (copy, verify, target) = copy_and_verify(
        dir.path(),
        &db,
        &["--tables", "users", "--exclude", "users"],
    );
    for run in [&copy, &verify] {
        assert_says(&one_error_line(run), &["users", "cancel out"]);
    }
    assert!(!target.exists());

    // An --exclude name the source lacks only warns, naming it; the run goes on.
    let summary = dir.path().join("s.json");
    let (copy, verify, target) = copy_and_verify(
        dir.path(),
        &db,
        &["--exclude", "sesions", "--summary", &s(&summary)],
    );
    for run in [&copy, &verify] {
        run.expect_code(0);
        let warning = run.stderr_line("no warning", |l| l.starts_with("warning: --exclude"));
        assert_says(warning, &["sesions", "does not have"]);
    }
    assert!(target.exists());
    let j = read_summary(&summary);
    assert!(
        j["warnings"][0].as_str().unwrap().contains("sesions"),
        "{j:#}"
    );
}

#[test]
fn zero_batch_size_or_workers_in_a_migrate_spec() {
    let (dir, db) = app();
    let target = dir.path().join("new.db");
    for (section, key) in [
        ("[database]", "batch_size = 0"),
        ("[database]", "workers = 0"),
        ("[blobs]", "workers = 0"),
    ] {
        let (database_extra, blobs_extra) = if section == "[database]" {
            (key, "")
        } else {
            ("", key)
        };
        let spec = write_migrate_spec(
            &dir.path().join("move.toml"),
            &sqlite_url(&db),
            &sqlite_url(&target),
            &format!(
                "{database_extra}\n\n[blobs]\nsource = \"{}\"\ntarget = \"{}\"\n{blobs_extra}\n",
                file_url(&dir.path().join("files")),
                file_url(&dir.path().join("out"))
            ),
        );
        let run = ferry(dir.path(), &["migrate", "--spec", &s(&spec)]);
        let line = one_error_line(&run);
        let name = key.split(' ').next().unwrap();
        assert_says(&line, &[section, name, "at least 1"]);
        assert!(!target.exists(), "{}", run.show());
        assert!(!dir.path().join("out").exists(), "{}", run.show());
    }
}

/// `ferry blobs copy` of a folder of one file (made in `dir/src`) to `to`.
fn blobs_copy(dir: &Path, to: &str, extra: &[&str]) -> Run {
    let from = file_url(&write_tree(&dir.join("src"), &[("a", bytes(1, 10))]));
    let mut args = vec!["blobs", "copy", "--from", &from, "--to", to];
    args.extend_from_slice(extra);
    ferry(dir, &args)
}

#[test]
fn an_unreachable_s3_endpoint_is_one_line_after_a_short_retry() {
    let dir = TempDir::new().unwrap();
    // Nothing listens on port 9 of the loopback interface (discard, never run in tests).
    let to = "s3://bucket/p?endpoint=http://127.0.0.1:9&access_key_id=AKIDEXAMPLE&secret_access_key=secret9";
    let started = Instant::now();
    let run = blobs_copy(dir.path(), to, &[]);
    let took = started.elapsed();
    let line = one_error_line(&run);
    assert_says(
        &line,
        &["cannot reach", "Connection refused", "check the endpoint"],
    );
    assert!(!line.contains("secret9"), "{line}");
    // Three retries 1, 2 and 4 s apart (with jitter): bounded, not the minute-long default.
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn s3_refusing_the_credentials_is_one_short_line() {
    let s3 = s3();
    let dir = TempDir::new().unwrap();
    let from = file_url(&write_tree(&dir.path().join("src"), &[("a", bytes(2, 10))]));
    let good = s3.locator(&unique("auth"));
    for (bad, code) in [
        (
            good.replace(&s3.access_key, "NOSUCHKEY"),
            "403 InvalidAccessKeyId",
        ),
        (
            good.replace(&s3.secret_key, "WRONG-SECRET-xyz"),
            "403 SignatureDoesNotMatch",
        ),
    ] {
        for verb in ["copy", "verify"] {
            let run = ferry(dir.path(), &["blobs", verb, "--from", &from, "--to", &bad]);
            let line = one_error_line(&run);
            assert_says(
                &line,
                &[
                    &format!("S3 refused the credentials ({code})"),
                    "check access_key_id",
                ],
            );
            assert!(line.len() < 300, "{} characters: {line}", line.len());
            assert!(!line.contains("headers"), "{line}");
            assert!(!line.contains("WRONG-SECRET-xyz"), "{line}");
            assert!(!line.contains(&s3.secret_key), "{line}");
        }
    }
}

#[test]
fn a_postgres_refusal_names_the_servers_reason_not_db_error() {
    let dir = TempDir::new().unwrap();
    let missing_db = with_database(&pg_admin_url(), "ferry_no_such_database_h3");
    let run = blobs_copy(
        dir.path(),
        &format!("file://{}", dir.path().join("out").display()),
        &["--manifest-db", &missing_db, "--manifest-sql", "SELECT 'a'"],
    );
    let line = one_error_line(&run);
    assert_says(&line, &["ferry_no_such_database_h3", "does not exist"]);
    assert!(!line.ends_with("db error"), "{line}");
    assert!(!dir.path().join("out").exists());
}

/// A `[[rewrite]]` naming a table or column the copy does not create would fail after every
/// row was copied: it is refused before anything is written, naming each one.
#[test]
fn a_rewrite_naming_a_missing_table_or_column_is_refused_before_writing() {
    let (dir, db) = app();
    let target = dir.path().join("new.db");
    let spec = write_migrate_spec(
        &dir.path().join("move.toml"),
        &sqlite_url(&db),
        &sqlite_url(&target),
        r#"
[[rewrite]]
table = "post"
column = "body"
from = "/srv/"
to = "s3://media/"

[[rewrite]]
table = "users"
column = "avatar_path"
from = "/srv/"
to = "s3://media/"
"#,
    );
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec![
            "migrate",
            "--spec",
            spec.to_str().unwrap(),
            "--metadata-only",
        ];
        args.extend(extra);
        let run = ferry(dir.path(), &args);
        let line = one_error_line(&run);
        assert_says(&line, &["[[rewrite]]", "\"post\"", "\"avatar_path\""]);
        assert!(!target.exists(), "nothing may be written\n{}", run.show());
    }
}
