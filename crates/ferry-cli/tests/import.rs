//! `ferry import` from the outside: the built-in PeerTube profile run by name against real
//! PostgreSQL databases (the profile crate's fixtures), exit codes, the summary, a re-run that
//! changes nothing, and one-line errors.

mod common;

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
