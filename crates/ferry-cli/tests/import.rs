//! `ferry import` from the outside: the built-in PeerTube profile run by name against real
//! PostgreSQL databases (the profile crate's fixtures), exit codes, the summary, a re-run that
//! changes nothing, one-line errors, and an import killed at any moment (`FERRY_TEST_KILL_AT`)
//! then resumed, compared with an import that was never stopped.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A temp dir, the small PeerTube source and an empty target: (dir, source, target).
fn peertube_databases() -> (tempfile::TempDir, PgDb, PgDb) {
    let dir = tempfile::tempdir().unwrap();
    (dir, min_source_blocking(), PgDb::new())
}

/// `ferry import PROFILE --source SOURCE --target TARGET`, for a test to add options to.
fn import_args<'a>(profile: &'a str, source: &'a str, target: &'a str) -> Vec<&'a str> {
    vec!["import", profile, "--source", source, "--target", target]
}

/// `ferry import peertube` from `source` into `target` as source host `pt.example`.
fn peertube_args<'a>(source: &'a PgDb, target: &'a PgDb) -> Vec<&'a str> {
    let mut args = import_args("peertube", &source.url, &target.url);
    args.extend(["--source-host", "pt.example"]);
    args
}

#[test]
fn peertube_import_by_name_then_a_rerun_changes_nothing() {
    let (dir, source, target) = peertube_databases();
    let summary = dir.path().join("s.json");
    let mut args = import_args("peertube", &source.url, &target.url);
    args.extend([
        "--source-host",
        "pt.example",
        "--summary",
        summary.to_str().unwrap(),
    ]);

    let dry = dir.path().join("dry.json");
    let mut dry_args = args.clone();
    dry_args.extend(["--dry-run"]);
    *dry_args.iter_mut().find(|a| a.ends_with("s.json")).unwrap() = dry.to_str().unwrap();
    ferry(dir.path(), &dry_args).expect_code(0);
    let d = read_summary(&dry);
    assert_eq!(d["dry_run"], true, "{d}");
    assert!(d["stats"]["videos"]["total"].as_u64().unwrap() > 0, "{d}");
    assert!(target.tables().is_empty(), "a dry run wrote to the target");

    let run = ferry(dir.path(), &args);
    run.expect_code(0);
    let s = read_summary(&summary);
    assert_eq!(s["status"], "completed", "{s}");
    for entity in ferry_testkit::peertube::ENTITIES {
        assert!(
            s["stats"][entity]["migrated"].as_u64().unwrap_or(0) > 0,
            "{entity}: {s}"
        );
    }
    let videos: i64 = target
        .scalar("SELECT count(*) FROM videos")
        .unwrap()
        .parse()
        .unwrap();
    assert!(videos > 0);

    ferry(dir.path(), &args).expect_code(0);
    let again = read_summary(&summary);
    for (entity, stats) in again["stats"].as_object().unwrap() {
        assert_eq!(
            stats["migrated"], 0,
            "{entity} changed on a re-run: {again}"
        );
    }
    let after: i64 = target
        .scalar("SELECT count(*) FROM videos")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(after, videos);
}

#[test]
fn bad_profiles_and_sources_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let target = PgDb::new();
    let run = ferry(
        dir.path(),
        &import_args("no-such-app", &target.url, &target.url),
    );
    run.expect_code(2);
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.show());

    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[profile]\nname = \"x\"\nversion = [\n").unwrap();
    let run = ferry(
        dir.path(),
        &import_args(broken.to_str().unwrap(), &target.url, &target.url),
    );
    run.expect_code(2);
    assert!(
        run.stderr.contains("broken.toml:"),
        "names the file and line: {}",
        run.show()
    );

    let run = ferry(
        dir.path(),
        &import_args(
            "peertube",
            "postgres://pt:hunter2secret@127.0.0.1:1/nowhere",
            &target.url,
        ),
    );
    run.expect_code(2);
    assert!(!run.stderr.contains("hunter2secret"), "{}", run.show());
}

/// `--media-store NAME=LOCATOR`: a malformed value is a usage error; a name the profile does
/// not declare is one line naming the stores it has; neither writes anything.
#[test]
fn media_store_options_are_checked_before_any_work() {
    let (dir, source, target) = peertube_databases();
    let out = dir.path().join("out");
    let mut base = import_args("peertube", &source.url, &target.url);
    base.extend(["--media-to", out.to_str().unwrap()]);
    let mut args = base.clone();
    args.extend(["--media-store", "web_videos"]);
    let run = ferry(dir.path(), &args);
    run.expect_code(2);
    run.expect_stderr("is not NAME=LOCATOR");

    let mut args = base.clone();
    args.extend([
        "--media-store",
        "videos=s3://bucket/x?endpoint=http://127.0.0.1:1",
    ]);
    let run = ferry(dir.path(), &args);
    run.expect_code(2);
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.show());
    run.expect_stderr("profile peertube has no media store 'videos' (it has: original_video_files, streaming_playlists, web_videos)");
    assert!(target.tables().is_empty(), "nothing written");
    assert!(!out.exists(), "no media folder created");
}

/// The platform's tables as `(table, rows, md5 of every row's text in order)`: ferry's own
/// tables (state, progress) left out.
fn content(db: &PgDb) -> Vec<Vec<Option<String>>> {
    let tables = db.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'ferry\\_%' ORDER BY 1",
    );
    tables
        .iter()
        .map(|t| {
            let t = t[0].clone().unwrap();
            let mut row = db.query(&format!(
                "SELECT '{t}', count(*)::text, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM \"{t}\" x"
            ));
            row.remove(0)
        })
        .collect()
}

/// What an import never stopped left: its media folder and its tables ([`content`]).
type Full = (PathBuf, Vec<Vec<Option<String>>>);

/// The small PeerTube source, its media, and the import of it every kill test runs.
struct Imports {
    dir: tempfile::TempDir,
    source: PgDb,
    _media: tempfile::TempDir,
    media_from: String,
}

impl Imports {
    fn new() -> Self {
        let media = complete_media_dir("#EXTM3U\n");
        Self {
            dir: tempfile::tempdir().unwrap(),
            source: min_source_blocking(),
            media_from: format!("file://{}", media.path().display()),
            _media: media,
        }
    }

    /// `ferry import peertube` into `target`, its media into `out`, two rows a page, with
    /// `extra` flags, launched as `launch` says; returns the run and its summary's path.
    fn run(&self, target: &PgDb, out: &str, extra: &[&str], launch: &Launch) -> (Run, PathBuf) {
        let summary = self.dir.path().join(format!("{}.json", unique("s")));
        let mut args = peertube_args(&self.source, target);
        args.extend([
            "--media-from",
            &self.media_from,
            "--media-to",
            out,
            "--batch-size",
            "2",
            "--summary",
            summary.to_str().unwrap(),
        ]);
        args.extend_from_slice(extra);
        let run = run_ferry_with(&ferry_bin(), self.dir.path(), &args, launch);
        (run, summary)
    }

    /// An import never stopped, into its own target: its out folder and its tables, and how
    /// long it took (ms).
    fn full(&self) -> (Full, u64) {
        let full = PgDb::new();
        let full_out = self.dir.path().join(unique("full"));
        let out_url = format!("file://{}", full_out.display());
        let started = std::time::Instant::now();
        let (run, _) = self.run(&full, &out_url, &[], &Launch::default());
        let ms = started.elapsed().as_millis() as u64;
        run.expect_code(0);
        let expected = content(&full);
        assert!(expected.len() >= 8, "{expected:?}");
        ((full_out, expected), ms)
    }
}

/// The checks after a resumed import (`what` names its kills): completed, the same tables and
/// files as an import never stopped, no progress left, every entity verified equal by the
/// resumed run itself. Returns the summary.
fn check_resumed_import(
    target: &PgDb,
    out: &Path,
    (full_out, expected): &Full,
    summary: &Path,
    what: &str,
) -> serde_json::Value {
    let s = read_summary(summary);
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(&content(target), expected, "tables after {what}");
    assert!(read_tree(out) == read_tree(full_out), "files after {what}");
    assert_eq!(
        target.scalar("SELECT count(*) FROM ferry_import_progress"),
        Some("0".into()),
        "progress left after {what}"
    );
    for (entity, v) in s["verify"].as_object().unwrap() {
        assert_eq!(v["checksum_match"], true, "{entity} after {what}: {s}");
    }
    s
}

/// An import killed (SIGKILL, at named moments: after a page's upsert and before its
/// progress mark, after the mark, after an entity's state, mid-files) then resumed with
/// `--resume`, once or several times, ends with the same tables and files as an import never
/// stopped, and says what it skipped; a rerun without `--resume` redoes the entity instead,
/// to the same end.
#[test]
fn a_killed_import_resumes_to_the_same_target_as_a_full_import() {
    let imports = Imports::new();
    let (full, _) = imports.full();
    let sequences: [(&[&str], &[&str]); 6] = [
        (&["import-page-written:3"], &["--resume"]),
        (&["import-page-recorded:4"], &["--resume"]),
        (&["import-entity-done:2"], &["--resume"]),
        (&["file-copied:5"], &["--resume"]),
        (
            &[
                "import-page-recorded:2",
                "import-page-written:6",
                "file-copied:3",
            ],
            &["--resume"],
        ),
        // Without --resume the stopped entity is read again from its start.
        (&["import-page-recorded:5"], &[]),
    ];
    for (kills, last) in sequences {
        let target = PgDb::new();
        let out = imports.dir.path().join(unique("out"));
        let out_url = format!("file://{}", out.display());
        for (i, point) in kills.iter().enumerate() {
            let extra: &[&str] = if i == 0 { &[] } else { &["--resume"] };
            let (run, _) = imports.run(&target, &out_url, extra, &Launch::killed_at(Some(point)));
            assert_eq!(
                run.signal,
                Some(9),
                "to be killed at {point}\n{}",
                run.show()
            );
        }
        let (run, summary) = imports.run(&target, &out_url, last, &Launch::default());
        run.expect_code(0);
        let what = format!("{kills:?}");
        let s = check_resumed_import(&target, &out, &full, &summary, &what);
        if kills[kills.len() - 1].starts_with("import-page-recorded") {
            let said = if last.is_empty() {
                "pass --resume"
            } else {
                "written by the stopped run"
            };
            assert!(
                s["warnings"].to_string().contains(said),
                "after {kills:?}: {s}"
            );
        }
    }
}

/// The acceptance for an import: SIGKILL sent at seeded-random moments of a PeerTube
/// import (whatever it is doing then: an entity's pages, its state, the files), each followed
/// by `--resume` (itself killed at another random moment in a third of the trials) to the end,
/// which matches an import never stopped. `FERRY_TEST_SEED=n` replays another set.
#[test]
fn an_import_killed_at_random_moments_resumes_to_the_same_target_each_time() {
    let imports = Imports::new();
    let (full, full_ms) = imports.full();
    let seed = test_seed(16);
    let mut rng = Seeded(seed);
    for _ in 0..6 {
        let mut kills = vec![full_ms / 20 + rng.below(full_ms * 9 / 10)];
        if rng.below(3) == 0 {
            kills.push(full_ms / 20 + rng.below(full_ms / 2));
        }
        let what = format!(
            "SIGKILL after {kills:?} ms (FERRY_TEST_SEED={seed}, full import {full_ms} ms)"
        );
        let target = PgDb::new();
        let out = imports.dir.path().join(unique("out"));
        let out_url = format!("file://{}", out.display());
        let mut done = None;
        for (i, ms) in kills.iter().enumerate() {
            let extra: &[&str] = if i == 0 { &[] } else { &["--resume"] };
            let launch = Launch {
                kill_after: Some(std::time::Duration::from_millis(*ms)),
                ..Launch::default()
            };
            let (run, summary) = imports.run(&target, &out_url, extra, &launch);
            // Done before the kill: nothing is left to resume.
            if run.signal.is_none() {
                run.expect_code(0);
                done = Some(summary);
                break;
            }
        }
        let summary = done.unwrap_or_else(|| {
            let (run, summary) = imports.run(&target, &out_url, &["--resume"], &Launch::default());
            run.expect_code(0);
            summary
        });
        check_resumed_import(&target, &out, &full, &summary, &what);
    }
}
