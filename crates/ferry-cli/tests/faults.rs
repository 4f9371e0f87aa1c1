//! Transient faults during a copy, against real servers: the target PostgreSQL (a private
//! instance this test starts, so it can restart it) restarted with `pg_ctl restart -m fast`
//! in the middle of a copy. The batches cut off are written again on new connections; the copy
//! finishes, verifies equal, and its summary counts the retries.

use std::path::Path;
use std::time::Duration;

use ferry_testkit::certs::Certs;
use ferry_testkit::pg::PrivatePg;
use ferry_testkit::run::{ferry, read_summary};
use ferry_testkit::sqlite::{ITEMS_SUMS_SQL, items_db, items_sums, sqlite_url};

/// Enough rows, in batches of 1000, for the copy to be well under way when the restart lands.
const ROWS: i64 = 1_000_000;
const PASSWORD: &str = "faults-password-1";

fn target_rows(pg: &PrivatePg) -> i64 {
    pg.scalar("SELECT count(*) FROM items")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_copy_survives_a_restart_of_the_target_postgres_and_counts_its_retries() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::generate(dir.path());
    let pg = PrivatePg::start(&certs, "ferry_faults", PASSWORD);
    let source = items_db(&dir.path().join("src.db"), ROWS);
    let target = pg.url(
        "127.0.0.1",
        Some(PASSWORD),
        &format!("sslmode=verify-full&sslrootcert={}", certs.ca.display()),
    );
    let summary = dir.path().join("summary.json");
    let copy = {
        let (cwd, source, target, summary) = (
            dir.path().to_path_buf(),
            sqlite_url(&source),
            target.clone(),
            summary.display().to_string(),
        );
        std::thread::spawn(move || {
            ferry(
                Path::new(&cwd),
                &[
                    "copy",
                    "--source",
                    &source,
                    "--target",
                    &target,
                    "--batch-size",
                    "1000",
                    "--workers",
                    "1",
                    "--summary",
                    &summary,
                ],
            )
        })
    };
    assert!(
        ferry_testkit::poll_until(Duration::from_secs(120), Duration::from_millis(20), || {
            target_rows(&pg) >= 20_000 || copy.is_finished()
        }),
        "no rows arrived in the target within 120 s"
    );
    let before = target_rows(&pg);
    assert!(
        before < ROWS / 2,
        "the copy was too far along when the restart came ({before} rows): nothing tested"
    );
    pg.restart();
    let run = copy.join().unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("copying the chunk again"),
        "no retry was reported:\n{}",
        run.stderr
    );

    let j = read_summary(&summary);
    assert_eq!(j["status"], "completed", "{j:#}");
    let stats = &j["stats"]["items"];
    assert_eq!(stats["migrated"], ROWS, "{j:#}");
    assert!(
        stats["retries"].as_u64().is_some_and(|n| n > 0),
        "no retries counted: {j:#}"
    );
    let verify = &j["verify"]["items"];
    assert_eq!(verify["target_rows"], ROWS, "{j:#}");
    assert_eq!(verify["checksum_match"], true, "{j:#}");
    // An independent content check: every row once, with its values.
    let want = items_sums(ROWS).map(|n| n.to_string()).join(",");
    assert_eq!(pg.scalar(ITEMS_SUMS_SQL), Some(want));
}
