//! PeerTube as a source for tests: ferry's minimal PeerTube schema and data fixture (kept in
//! crates/ferry-profile/tests/fixtures), the real 6.3 schema beside the workspace, and the media
//! folder the profile copies files from.

use std::path::{Path, PathBuf};

use crate::pg::TestDb;

pub const MIN_SCHEMA: &str = include_str!("../../ferry-profile/tests/fixtures/peertube-min.sql");
pub const DATA: &str = include_str!("../../ferry-profile/tests/fixtures/peertube-data.sql");
pub const FULL_FILL: &str =
    include_str!("../../ferry-profile/tests/fixtures/peertube-full-fill.sql");

/// The real PeerTube 6.3 schema beside the workspace (`../shared/fixtures/peertube`).
/// `FERRY_PEERTUBE_SCHEMA` names another copy (a worktree that is not beside ../shared).
pub fn real_schema_path() -> PathBuf {
    if let Some(p) = std::env::var_os("FERRY_PEERTUBE_SCHEMA") {
        return PathBuf::from(p);
    }
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

/// The entities a PeerTube import reports, each with rows in the fixture.
pub const ENTITIES: [&str; 8] = [
    "users",
    "channels",
    "videos",
    "comments",
    "playlists",
    "playlist_items",
    "subscriptions",
    "video_passwords",
];

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
