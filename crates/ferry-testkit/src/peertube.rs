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

/// The real PeerTube schema's SQL, or `None` (with a NOT RUN line) when it is missing outside
/// CI. Under CI it must be there (CI always has ../shared): a missing file panics.
pub fn real_schema() -> Option<String> {
    let path = real_schema_path();
    match std::fs::read_to_string(&path) {
        Ok(schema) => Some(schema),
        Err(_) if std::env::var_os("CI").is_some() => panic!(
            "{} is missing and CI is set: the full-schema test must run in CI",
            path.display()
        ),
        Err(_) => {
            eprintln!(
                "NOT RUN: {} is missing (the real PeerTube schema lives beside the workspace; FERRY_PEERTUBE_SCHEMA names another copy)",
                path.display()
            );
            None
        }
    }
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

/// [`min_source`] for a synchronous test (black-box tests of the `ferry` binary).
pub fn min_source_blocking() -> crate::pg::PgDb {
    let db = crate::pg::PgDb::new();
    db.query(MIN_SCHEMA);
    db.query(DATA);
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
pub const U4: &str = "44444444-4444-4444-8444-444444444444";

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
        // issue 14: completeness
        "original-video-files/b7f3c2a1-0d9e-4c8b-a7f6-5e4d3c2b1a09.mov".into(),
        "storyboards/v1-storyboard.jpg".into(),
        "storyboards/v3-storyboard.jpg".into(),
    ]
}

/// Files of remote content the fixture's rows name (on the disk too: PeerTube caches some):
/// counted as skipped, never copied.
pub fn remote_files() -> Vec<String> {
    vec!["storyboards/v7-storyboard.jpg".into()]
}

/// The fixture's files in PeerTube's object storage (`storage` = 1; the internal video 4):
/// (media store, object key, the path the target rows name).
pub fn object_storage_files() -> Vec<(&'static str, String, String)> {
    let hls = |f: &str| {
        (
            "streaming_playlists",
            format!("hls/{U4}/{f}"),
            format!("streaming-playlists/hls/private/{U4}/{f}"),
        )
    };
    vec![
        (
            "web_videos",
            format!("{U4}-1080.mp4"),
            format!("web-videos/private/{U4}-1080.mp4"),
        ),
        hls("e2d1c0b9-master.m3u8"),
        hls("e2d1c0b9-segments-sha256.json"),
        hls("f3a2b1c0-1080-fragmented.mp4"),
        hls("f3a2b1c0-1080.m3u8"),
        (
            "original_video_files",
            "c8e4d3b2-1f0a-4d9c-b8a7-6f5e4d3c2b10.mp4".into(),
            "original-video-files/c8e4d3b2-1f0a-4d9c-b8a7-6f5e4d3c2b10.mp4".into(),
        ),
    ]
}

/// PeerTube's object storage as folders, one per media store (content = the key, repeated),
/// to be uploaded to S3 by the test.
pub fn object_storage_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (store, key, _) in object_storage_files() {
        let p = dir.path().join(store).join(&key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("{store}:{key}").repeat(7)).unwrap();
    }
    dir
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
    for f in remote_files() {
        let p = dir.path().join(&f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "remote").unwrap();
    }
    // A file no row names: never copied.
    std::fs::create_dir_all(dir.path().join("torrents")).unwrap();
    std::fs::write(dir.path().join("torrents/x.torrent"), "t").unwrap();
    dir
}

/// [`media_dir`] with the one file the fixture leaves missing present too, holding
/// `playlist`: a media folder every row's file can be copied from.
pub fn complete_media_dir(playlist: &str) -> tempfile::TempDir {
    let dir = media_dir();
    std::fs::write(dir.path().join(missing_file()), playlist).unwrap();
    dir
}

/// What a PeerTube import test starts from, as `(src, dst, media, out)`: the minimal source,
/// an empty target, the media folder the source's files are in, and an empty folder to copy
/// them to.
pub async fn fixture() -> (TestDb, TestDb, tempfile::TempDir, tempfile::TempDir) {
    with_media(media_dir()).await
}

/// [`fixture`] with a [`complete_media_dir`] holding `playlist`: a run that must be complete.
pub async fn complete_fixture(
    playlist: &str,
) -> (TestDb, TestDb, tempfile::TempDir, tempfile::TempDir) {
    with_media(complete_media_dir(playlist)).await
}

async fn with_media(
    media: tempfile::TempDir,
) -> (TestDb, TestDb, tempfile::TempDir, tempfile::TempDir) {
    (
        min_source().await,
        TestDb::new().await,
        media,
        tempfile::tempdir().unwrap(),
    )
}
