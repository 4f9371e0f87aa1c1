//! Black-box tests of `ferry blobs copy|verify`: exit codes, summary JSON, dry-run listing,
//! credentials never printed, and a killed run resumed. S3 is a real SeaweedFS (see
//! crates/ferry-testkit/src/s3.rs).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Run, ferry, make_sqlite, read_summary, sqlite_url, write_migrate_spec};
use ferry_testkit::files::{bytes, file_url, read_tree, write_tree};
use ferry_testkit::s3::s3;
use ferry_testkit::unique;

/// `ferry blobs copy|verify --from FROM --to TO --summary SUMMARY` in `dir`.
fn blobs(
    dir: &std::path::Path,
    command: &str,
    from: &str,
    to: &str,
    summary: &std::path::Path,
) -> Run {
    ferry(
        dir,
        &[
            "blobs",
            command,
            "--from",
            from,
            "--to",
            to,
            "--summary",
            summary.to_str().unwrap(),
        ],
    )
}

#[test]
fn copy_with_a_sql_manifest_naming_a_missing_file_exits_1_and_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = write_tree(
        &dir.path().join("files"),
        &[("7/a b.png", bytes(1, 3000)), ("7/c", bytes(2, 10))],
    );
    let db = make_sqlite(
        &dir.path().join("app.db"),
        "CREATE TABLE f(dir INTEGER, name TEXT, status TEXT);
         INSERT INTO f VALUES (7, 'a b.png', 'uploaded'), (7, 'gone', 'uploaded'), (7, 'c', 'draft');",
    );
    let summary = dir.path().join("s.json");
    let from = format!("file://{}", src.display());
    let to = format!("file://{}", dir.path().join("out").display());
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "blobs",
            "copy",
            "--from",
            &from,
            "--to",
            &to,
            "--manifest-db",
            &sqlite_url(&db),
            "--manifest-sql",
            "SELECT dir || '/' || name FROM f WHERE status = 'uploaded'",
            "--summary",
            summary.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    // Dry run: lists each file's fate on stdout, writes nothing.
    let run = ferry(dir.path(), &args(&["--dry-run", "--ignore-errors"]));
    run.expect_code(1);
    run.expect_stdout("copy\t3000\t7/a b.png");
    assert!(
        !dir.path().join("out").exists(),
        "a dry run creates nothing"
    );

    let run = ferry(dir.path(), &args(&["--ignore-errors"]));
    run.expect_code(1);
    run.expect_stderr("7/gone: missing in the source");
    let s = read_summary(&summary);
    let m = &s["stats"]["media"];
    assert_eq!(
        (
            m["total"].as_u64(),
            m["migrated"].as_u64(),
            m["failed"].as_u64(),
            m["bytes"].as_u64()
        ),
        (Some(2), Some(1), Some(1), Some(3000)),
        "{s}"
    );
    assert_eq!(s["status"], "completed");
    assert_eq!(
        std::fs::read(dir.path().join("out/7/a b.png")).unwrap(),
        bytes(1, 3000)
    );

    // Without --ignore-errors: stops, status failed, exit 1.
    let run = ferry(dir.path(), &args(&[]));
    run.expect_code(1);
    assert_eq!(read_summary(&summary)["status"], "failed");

    // Bad input is exit 2 with one line.
    let run = ferry(
        dir.path(),
        &["blobs", "copy", "--from", "ftp9://x/y", "--to", &to],
    );
    run.expect_code(2);
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.show());
}

#[test]
fn a_target_inside_the_source_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("files");
    write_tree(&src, &[("a", bytes(1, 10))]);
    let from = format!("file://{}", src.display());
    let inside = format!("file://{}", src.join("copy").display());
    for verb in ["copy", "verify"] {
        let run = ferry(
            dir.path(),
            &["blobs", verb, "--from", &from, "--to", &inside],
        );
        run.expect_code(2);
        assert_eq!(run.stderr_lines().len(), 1, "{}", run.show());
        run.expect_stderr("overlap");
    }
    assert!(!src.join("copy").exists(), "nothing created");
}

#[test]
fn s3_credentials_are_never_printed() {
    let s3 = s3();
    let dir = tempfile::tempdir().unwrap();
    let from = file_url(&write_tree(
        &dir.path().join("src"),
        &[("x", bytes(3, 100))],
    ));
    let summary = dir.path().join("s.json");
    let good = s3.locator(&unique("creds"));
    let run = blobs(dir.path(), "copy", &from, &good, &summary);
    run.expect_code(0);
    let all = format!(
        "{}{}{}",
        run.stdout,
        run.stderr,
        std::fs::read_to_string(&summary).unwrap()
    );
    assert!(!all.contains(&s3.secret_key), "{all}");

    // A wrong secret: the server refuses; the message must not echo the secret either.
    let bad = good.replace(&s3.secret_key, "WRONG-SECRET-abc123");
    let run = blobs(dir.path(), "verify", &from, &bad, &summary);
    assert_ne!(run.code, 0, "{}", run.show());
    let all = format!(
        "{}{}{}",
        run.stdout,
        run.stderr,
        std::fs::read_to_string(&summary).unwrap()
    );
    assert!(!all.contains("WRONG-SECRET-abc123"), "{all}");
    assert!(!all.contains(&s3.secret_key), "{all}");
}

#[test]
fn a_killed_copy_resumed_copies_only_the_rest_and_verifies() {
    let s3 = s3();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let files: Vec<(String, Vec<u8>)> = (0..1000)
        .map(|i| (format!("d{}/f{i}", i % 7), bytes(i, 8 * 1024)))
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    write_tree(&src, &refs);
    let from = format!("file://{}", src.display());

    // Kill (SIGKILL) a run part-way. How far a run gets in a given time depends on the
    // machine, so try a few delays until a kill lands mid-run (some files copied, not all).
    for delay_ms in [400, 200, 100, 800, 1500] {
        let to = s3.locator(&unique("killed"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([
                "--no-progress",
                "blobs",
                "copy",
                "--workers",
                "1",
                "--from",
                &from,
                "--to",
                &to,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // no chance to clean up
        if child.wait().unwrap().code().is_some() {
            continue; // it had already finished
        }
        let summary = dir.path().join("s.json");
        let run = blobs(dir.path(), "copy", &from, &to, &summary);
        run.expect_code(0);
        let m = read_summary(&summary)["stats"]["media"].clone();
        let (skipped, migrated) = (
            m["skipped"].as_u64().unwrap(),
            m["migrated"].as_u64().unwrap(),
        );
        assert_eq!(skipped + migrated, 1000, "{m}");
        if skipped == 0 {
            continue; // killed before the first file landed
        }
        assert!(migrated > 0, "{m}");

        let run = ferry(
            dir.path(),
            &["blobs", "verify", "--from", &from, "--to", &to],
        );
        run.expect_code(0);
        // And back to disk, byte for byte.
        let back = dir.path().join("back");
        let back_url = format!("file://{}", back.display());
        ferry(
            dir.path(),
            &["blobs", "copy", "--from", &to, "--to", &back_url],
        )
        .expect_code(0);
        assert!(read_tree(&back) == read_tree(&src));
        return;
    }
    panic!("no kill landed mid-run (every run finished first or had copied nothing)");
}

#[test]
fn migrate_spec_moves_rows_rewrites_locations_and_copies_files() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_tree(
        &dir.path().join("files"),
        &[
            ("u1/a.jpg", bytes(20, 5000)),
            ("u2/b c.pdf", bytes(21, 700)),
        ],
    );
    let db = make_sqlite(
        &dir.path().join("app.db"),
        "CREATE TABLE attachments(id INTEGER PRIMARY KEY, path TEXT NOT NULL, status TEXT);
         INSERT INTO attachments VALUES (1, '/srv/files/u1/a.jpg', 'uploaded'),
                                        (2, '/srv/files/u2/b c.pdf', 'uploaded'),
                                        (3, '/srv/files/u3/never.txt', 'deleted');
         CREATE TABLE sessions(id INTEGER PRIMARY KEY, token TEXT);
         INSERT INTO sessions VALUES (1, 'left behind');",
    );
    let target_db = dir.path().join("new.db");
    let out = dir.path().join("out");
    let spec = write_migrate_spec(
        &dir.path().join("move.toml"),
        &sqlite_url(&db),
        &sqlite_url(&target_db),
        &format!(
            r#"exclude = ["sessions"]
workers = 2
batch_size = 500

[blobs]
source = "file://{files}"
target = "file://{out}"
manifest_sql = "SELECT substr(path, length('/srv/files/') + 1) FROM attachments WHERE status = 'uploaded'"

[[rewrite]]
table = "attachments"
column = "path"
from = "/srv/files/"
to = "s3://media/"
"#,
            files = files.display(),
            out = out.display()
        ),
    );
    let spec_arg = spec.to_str().unwrap();

    // Mutually exclusive flags: exit 2.
    ferry(
        dir.path(),
        &[
            "migrate",
            "--spec",
            spec_arg,
            "--metadata-only",
            "--data-only",
        ],
    )
    .expect_code(2);
    // A dry run covers both and writes nothing.
    let run = ferry(dir.path(), &["migrate", "--spec", spec_arg, "--dry-run"]);
    run.expect_code(0);
    assert!(!target_db.exists() && !out.exists(), "{}", run.show());
    run.expect_stdout("rewrite (not run, dry run): UPDATE");

    let summary = dir.path().join("s.json");
    let run = ferry(
        dir.path(),
        &[
            "migrate",
            "--spec",
            spec_arg,
            "--summary",
            summary.to_str().unwrap(),
        ],
    );
    run.expect_code(0);
    let s = read_summary(&summary);
    assert_eq!(s["stats"]["media"]["migrated"], 2, "{s}");
    assert_eq!(s["stats"]["attachments"]["migrated"], 3, "{s}");
    assert!(s["stats"].get("sessions").is_none(), "excluded: {s}");
    assert_eq!(
        std::fs::read(out.join("u2/b c.pdf")).unwrap(),
        bytes(21, 700)
    );
    let rows = common::sqlite_rows(&target_db, "SELECT path FROM attachments ORDER BY id");
    assert_eq!(rows[0][0].as_deref(), Some("s3://media/u1/a.jpg"));
    assert_eq!(rows[2][0].as_deref(), Some("s3://media/u3/never.txt"));

    // --data-only reruns the files alone: all skipped.
    let run = ferry(
        dir.path(),
        &[
            "migrate",
            "--spec",
            spec_arg,
            "--data-only",
            "--summary",
            summary.to_str().unwrap(),
        ],
    );
    run.expect_code(0);
    let s = read_summary(&summary);
    assert_eq!(s["stats"]["media"]["skipped"], 2, "{s}");
    assert!(s["stats"].get("attachments").is_none(), "{s}");
}
