//! Conformance against ../shared/fixtures (real data produced by real applications), when that
//! folder exists; CI always has it, so under CI a missing folder fails instead of skipping.
//!
//! The PeerTube 6.3 schema (63 tables, enums, identity and serial columns, json, timestamptz)
//! goes PostgreSQL → SQLite → PostgreSQL through ferry, verified at each hop.

mod common;

use common::*;

fn shared_fixture(rel: &str) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(rel);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have ../shared/fixtures/{rel} beside the checkout"
    );
    eprintln!(
        "NOTE: ../shared/fixtures/{rel} is not present: the shared-fixture conformance test did not run"
    );
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peertube_schema_round_trips_through_sqlite() {
    let Some(schema) = shared_fixture("peertube/schema.sql") else {
        return;
    };
    let source = TestDb::new().await;
    let pg = source.client().await;
    pg.batch_execute(&std::fs::read_to_string(schema).unwrap())
        .await
        .expect("the PeerTube schema loads");
    pg.batch_execute(
        "SET search_path = public;
         INSERT INTO application (id, \"migrationVersion\", \"nodeVersion\", \"nodeABIVersion\") VALUES (1, 865, 'v20.18.0', 115);
         INSERT INTO tag (name) VALUES ('music'), ('linux'), ('ünïcode');",
    )
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("peertube.db");
    let report = copied(&source.locator(), &sqlite(&file), dir.path()).await;
    assert_eq!(report.stats.len(), 63, "every PeerTube table is discovered");
    assert_eq!(report.verify.len(), 63);
    assert_eq!(report.stats["tag"].migrated, 3);

    let (again, report) = copied_to_new::<TestDb>(&sqlite(&file), dir.path()).await;
    assert_eq!(report.verify.len(), 63);
    let pg2 = again.client().await;
    let version: i64 = pg_value(&pg2, "SELECT \"migrationVersion\" FROM application").await;
    assert_eq!(version, 865);
    let ty: String = pg_value(&pg2, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '\"videoComment\"'::regclass AND attname = 'createdAt'").await;
    assert_eq!(
        ty, "timestamp with time zone",
        "types survive the trip through SQLite"
    );
}
