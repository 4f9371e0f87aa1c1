//! Test support: a throwaway PostgreSQL database per test (never a mock), the PeerTube source
//! fixtures, and the media folder the profile copies from.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use ferry_core::engine::Context;
use ferry_core::progress::{Answer, Event, Observer};
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

/// The admin URL: `FERRY_TEST_PG_URL`, else the local service. Tests never skip without it.
pub fn pg_admin_url() -> String {
    std::env::var("FERRY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub async fn pg_connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is needed for this test and {url} does not answer ({e}): run scripts/test, which finds or starts one, or set FERRY_TEST_PG_URL")
    });
    tokio::spawn(conn);
    client
}

/// A database created for one test and dropped when it ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new() -> Self {
        let admin = pg_admin_url();
        let client = pg_connect(&admin).await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "ferry_test_profile_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin).expect("admin URL");
        url.set_path(&name);
        Self {
            name,
            url: url.to_string(),
        }
    }

    pub async fn client(&self) -> Client {
        pg_connect(&self.url).await
    }

    pub fn locator(&self) -> ferry_core::Locator {
        ferry_postgres::locator::parse(&self.url).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) = tokio_postgres::connect(&pg_admin_url(), NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

pub const MIN_SCHEMA: &str = include_str!("../fixtures/peertube-min.sql");
pub const DATA: &str = include_str!("../fixtures/peertube-data.sql");
pub const FULL_FILL: &str = include_str!("../fixtures/peertube-full-fill.sql");

/// The real PeerTube 6.3 schema beside the workspace (`../shared/fixtures/peertube`).
pub fn real_schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/peertube/schema.sql")
}

/// A source database with ferry's minimal PeerTube schema and the data fixture.
pub async fn min_source() -> TestDb {
    let db = TestDb::new().await;
    let c = db.client().await;
    c.batch_execute(MIN_SCHEMA)
        .await
        .expect("minimal schema loads");
    c.batch_execute(DATA).await.expect("data fixture loads");
    db
}

/// Video uuids of the fixture.
pub const U1: &str = "11111111-1111-4111-8111-111111111111";
pub const U3: &str = "33333333-3333-4333-8333-333333333333";

/// Files the fixture's rows name (local, on the file system), except the one left missing.
pub fn present_files() -> Vec<String> {
    vec![
        format!("web-videos/{U1}-720.mp4"),
        format!("web-videos/private/{U3}-480.mp4"),
        format!("streaming-playlists/hls/{U1}/v1-master.m3u8"),
        format!("streaming-playlists/hls/{U1}/v1-segments-sha256.json"),
        format!("streaming-playlists/hls/{U1}/{U1}-720-fragmented.mp4"),
        format!("streaming-playlists/hls/{U1}/{U1}-720.m3u8"),
        format!("streaming-playlists/hls/private/{U3}/v3-master.m3u8"),
        format!("streaming-playlists/hls/private/{U3}/v3-segments-sha256.json"),
        format!("streaming-playlists/hls/private/{U3}/{U3}-480-fragmented.mp4"),
        "thumbnails/v1-thumb.jpg".into(),
        "previews/v1-preview.jpg".into(),
        "thumbnails/v3-thumb.jpg".into(),
        "thumbnails/pl1-thumb.jpg".into(),
        "captions/v1-en.vtt".into(),
        "captions/v3-fr.vtt".into(),
        "avatars/alice-avatar-120.png".into(),
        "avatars/alice-avatar-600.png".into(),
        "avatars/alice-videos-banner.jpg".into(),
    ]
}

/// The one file the database names and the disk lacks.
pub fn missing_file() -> String {
    format!("streaming-playlists/hls/private/{U3}/{U3}-480.m3u8")
}

/// A PeerTube storage folder with every present file (content = its path, repeated).
pub fn media_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in present_files() {
        let p = dir.path().join(&f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, f.repeat(10)).unwrap();
    }
    // A file no row names: never copied.
    std::fs::create_dir_all(dir.path().join("torrents")).unwrap();
    std::fs::write(dir.path().join("torrents/x.torrent"), "t").unwrap();
    dir
}

/// Records events so tests can check what a server would show.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Event>>);

impl Observer for Recorder {
    fn event(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

pub fn context() -> (Context, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    (
        Context {
            observer: rec.clone(),
            confirm: Arc::new(Answer(false)),
            cancel: CancellationToken::new(),
        },
        rec,
    )
}
