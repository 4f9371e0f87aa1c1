//! The PeerTube import leaves nothing of a local video behind (issue 14, data and files):
//! upload quotas, chapters, who rated what and the uploaded originals arrive with exact values;
//! originals, storyboards and HLS master/variant/sha256 files arrive byte for byte and are
//! named by target rows; files in object storage (a real S3 server) are moved from their media
//! store; every file of a local video on the source disk is in the target; a rerun changes
//! nothing. Real PostgreSQL and S3 (SeaweedFS) throughout.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::*;
use ferry_blobs::Manifest;
use ferry_core::report::{Report, Status};
use ferry_profile::expr::entity_id;
use ferry_profile::{ImportOptions, Profile, import};
use tokio_postgres::Client;

const HOST: &str = "pt.example";

fn profile() -> Profile {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/peertube.toml");
    Profile::load(&path).expect("the shipped profile loads")
}

fn id(entity: &str, n: i64) -> uuid::Uuid {
    entity_id(HOST, entity, &n.to_string())
}

async fn run(o: &ImportOptions) -> Report {
    let (cx, _) = context();
    import(&profile(), o, &cx).await.expect("the import runs")
}

/// The fixture's object storage uploaded to a fresh prefix of the S3 server, one prefix per
/// media store as PeerTube configures them (`object_storage.<kind>.prefix`): store → locator.
async fn object_storage() -> BTreeMap<String, String> {
    let s3 = s3();
    let root = unique("peertube-os");
    let dir = object_storage_dir();
    let mut stores = BTreeMap::new();
    for store in ["web_videos", "streaming_playlists", "original_video_files"] {
        let locator = s3.locator(&format!("{root}/{store}"));
        let from =
            ferry_blobs::Store::parse(&dir.path().join(store).display().to_string()).unwrap();
        let to = ferry_blobs::Store::parse(&locator).unwrap();
        let r = ferry_blobs::copy(
            &from,
            &to,
            &Manifest::Listing,
            &ferry_blobs::CopyOptions::default(),
            &ferry_blobs::Context::default(),
        )
        .await
        .expect("upload to S3");
        assert_eq!(r.stats["media"].failed, 0, "{:?}", r.stats["media"].errors);
        stores.insert(store.to_string(), locator);
    }
    stores
}

fn options(src: &TestDb, dst: &TestDb, from: &Path, to: &Path) -> ImportOptions {
    let mut o = ImportOptions::new(src.locator(), dst.locator());
    o.media_from = Some(format!("file://{}", from.display()));
    o.media_to = Some(format!("file://{}", to.display()));
    o.batch_size = 2;
    o
}

/// Every path a target row names (relative to the media root).
async fn referenced_paths(c: &Client) -> BTreeSet<String> {
    let sql = "
        SELECT avatar_path FROM users UNION ALL
        SELECT avatar_path FROM channels UNION ALL SELECT banner_path FROM channels UNION ALL
        SELECT thumbnail_path FROM videos UNION ALL SELECT preview_path FROM videos UNION ALL
        SELECT f->>'path' FROM videos, jsonb_array_elements(files) f UNION ALL
        SELECT path FROM captions UNION ALL SELECT thumbnail_path FROM playlists UNION ALL
        SELECT path FROM video_sources UNION ALL SELECT path FROM storyboards UNION ALL
        SELECT master_path FROM streaming_playlists UNION ALL
        SELECT segments_sha256_path FROM streaming_playlists UNION ALL
        SELECT v->>'playlist_path' FROM streaming_playlists, jsonb_array_elements(variants) v UNION ALL
        SELECT v->>'file_path' FROM streaming_playlists, jsonb_array_elements(variants) v";
    pg_query(c, sql)
        .await
        .iter()
        .filter_map(|r| r.get::<_, Option<String>>(0))
        .collect()
}

/// Every file under `dir`, relative to it.
fn walk(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// A snapshot of every row the completeness entities wrote, with xmin: a rerun that rewrites
/// anything changes it.
const SNAPSHOT: &str = "SELECT string_agg(t, '|' ORDER BY t) FROM (
    SELECT id::text || xmin::text || video_quota_bytes || '/' || video_quota_daily_bytes AS t FROM users
    UNION ALL SELECT id::text || xmin::text FROM chapters
    UNION ALL SELECT id::text || xmin::text FROM ratings
    UNION ALL SELECT id::text || xmin::text FROM video_sources
    UNION ALL SELECT id::text || xmin::text FROM storyboards
    UNION ALL SELECT id::text || xmin::text FROM streaming_playlists
    UNION ALL SELECT entity || xmin::text FROM ferry_import_state) x";

#[tokio::test]
async fn every_file_and_value_of_a_local_video_arrives_from_disk_and_object_storage() {
    // The one file the fixture leaves missing is on the disk here: this run must be complete.
    let (src, dst, media, out) = complete_fixture("#EXTM3U\n#EXT-X-VERSION:7\n").await;
    let mut o = options(&src, &dst, media.path(), out.path());
    o.media_stores = object_storage().await;
    let r = run(&o).await;
    assert_eq!(r.status, Status::Completed, "{:?}", r.error);
    assert_eq!(r.exit_code(), 0, "{}", r.render());

    assert_eq!(stat(&r, "users"), (3, 3, 0, 0));
    assert_eq!(stat(&r, "chapters"), (4, 3, 1, 0));
    assert_eq!(stat(&r, "ratings"), (5, 3, 2, 0));
    assert_eq!(stat(&r, "video_sources"), (3, 3, 0, 0));
    assert_eq!(stat(&r, "storyboards"), (3, 2, 1, 0));
    assert_eq!(stat(&r, "streaming_playlists"), (3, 3, 0, 0));
    // 33 files: 5 of remote content skipped, the other 28 (6 of them from S3) copied.
    assert_eq!(stat(&r, "media"), (33, 28, 5, 0));
    for (name, v) in &r.verify {
        assert!(v.ok(), "verify {name}: {v:?}");
    }
    assert_all_listed(
        &r.warnings,
        &[
            "chapters: 1 skipped (chapter of a remote video)",
            "ratings: 1 skipped (rating by a remote account (counted in the video's totals))",
            "ratings: 1 skipped (rating of a remote video)",
            "storyboards: 1 skipped (storyboard of a remote video)",
        ],
    );
    assert!(
        !r.not_copied
            .iter()
            .any(|n| n.kind == "files" && n.name.starts_with("media store")),
        "every media store was given: {:?}",
        r.not_copied
    );

    let c = dst.client().await;
    check_values(&c).await;

    // Every path a target row names is in the target, with the source's bytes (from the disk
    // or from S3).
    let os = object_storage_dir();
    let by_path: BTreeMap<String, Vec<u8>> = object_storage_files()
        .into_iter()
        .map(|(store, key, path)| {
            (
                path,
                std::fs::read(os.path().join(store).join(key)).unwrap(),
            )
        })
        .collect();
    let referenced = referenced_paths(&c).await;
    assert_eq!(referenced.len(), 27, "{referenced:#?}");
    for p in &referenced {
        let want = by_path.get(p).cloned().unwrap_or_else(|| {
            std::fs::read(media.path().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
        });
        let got = std::fs::read(out.path().join(p))
            .unwrap_or_else(|e| panic!("{p} not in the target: {e}"));
        assert_eq!(got, want, "{p}");
    }
    // Every file of local content on the source disk is in the target (torrents are h1's
    // declared omission; remote content is not this instance's), and every file in the
    // object storage.
    let remote: BTreeSet<String> = remote_files().into_iter().collect();
    let on_disk: BTreeSet<String> = walk(media.path())
        .into_iter()
        .filter(|f| !f.starts_with("torrents/") && !remote.contains(f))
        .collect();
    let in_target = walk(out.path());
    let missing: Vec<&String> = on_disk.difference(&in_target).collect();
    assert!(
        missing.is_empty(),
        "source files not in the target: {missing:?}"
    );
    for p in by_path.keys() {
        assert!(
            in_target.contains(p),
            "{p} (object storage) not in the target"
        );
    }
    // The target holds the files its rows name, and one more: PeerTube keeps an avatar in
    // several sizes, the target row names the largest.
    let unnamed: Vec<&String> = in_target.difference(&referenced).collect();
    assert_eq!(unnamed, ["avatars/alice-avatar-120.png"]);

    // A rerun changes nothing: no row rewritten, no file copied.
    let before: String = pg_value(&c, SNAPSHOT).await;
    let again = run(&o).await;
    assert_eq!(again.exit_code(), 0, "{}", again.render());
    for (key, s) in &again.stats {
        assert_eq!(s.migrated, 0, "{key} migrated nothing on a rerun");
        assert_eq!(s.failed, 0, "{key}");
        assert_eq!(s.skipped, s.total, "{key}: everything skipped");
    }
    let after: String = pg_value(&c, SNAPSHOT).await;
    assert_eq!(before, after, "no row rewritten");
    // With every store given, no file is left to look at: verification says it compared no
    // file instead of reporting a match of 0 against 0.
    assert!(!again.verify.contains_key("media"), "{:?}", again.verify);
    assert_any_line(&again.warnings, |w| {
        w.starts_with("media: no file to verify")
    });
}

/// Quotas, chapters, ratings, sources, storyboards and streaming playlists, value by value.
async fn check_values(c: &Client) {
    let quotas: Vec<(String, i64, i64)> = pg_rows(
        c,
        "SELECT username, video_quota_bytes, video_quota_daily_bytes FROM users ORDER BY username",
    )
    .await;
    assert_eq!(
        quotas,
        [
            ("alice".to_string(), 10_737_418_240, -1),
            ("bob".to_string(), 1_073_741_824, 104_857_600),
            ("dave".to_string(), -1, -1),
        ]
    );

    let chapters: Vec<(uuid::Uuid, uuid::Uuid, i32, String, String)> = pg_rows(c, "SELECT id, video_id, timecode_s, title, created_at::text FROM chapters ORDER BY timecode_s").await;
    let v1 = id("videos", 1);
    let at = "2024-01-03 10:00:00+00".to_string();
    assert_eq!(
        chapters,
        [
            (id("chapters", 1), v1, 0, "Intro".to_string(), at.clone()),
            (
                id("chapters", 2),
                v1,
                30,
                "The cat appears".to_string(),
                at.clone()
            ),
            (id("chapters", 3), v1, 95, "Credits".to_string(), at.clone()),
        ]
    );

    let ratings: Vec<(uuid::Uuid, uuid::Uuid, uuid::Uuid, String, String)> = pg_rows(
        c,
        "SELECT id, video_id, user_id, rating, created_at::text FROM ratings ORDER BY created_at",
    )
    .await;
    assert_eq!(
        ratings,
        [
            (
                id("ratings", 1),
                v1,
                id("users", 2),
                "like".to_string(),
                "2024-01-05 09:00:00+00".to_string()
            ),
            (
                id("ratings", 2),
                v1,
                id("users", 3),
                "dislike".to_string(),
                "2024-01-05 09:30:00+00".to_string()
            ),
            (
                id("ratings", 5),
                id("videos", 3),
                id("users", 1),
                "like".to_string(),
                "2024-01-05 11:00:00+00".to_string()
            ),
        ]
    );

    type Source = (
        uuid::Uuid,
        String,
        Option<String>,
        Option<i32>,
        Option<i32>,
        Option<i32>,
        Option<i32>,
        Option<i64>,
    );
    let sources: Vec<Source> = pg_query(c, "SELECT video_id, original_filename, path, resolution, width, height, fps, size_bytes FROM video_sources ORDER BY created_at").await
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            (
                v1,
                "My cat (final).MOV".to_string(),
                Some("original-video-files/b7f3c2a1-0d9e-4c8b-a7f6-5e4d3c2b1a09.mov".to_string()),
                Some(1080),
                Some(1920),
                Some(1080),
                Some(30),
                Some(52000)
            ),
            (
                id("videos", 2),
                "draft.mp4".to_string(),
                None,
                Some(720),
                Some(1280),
                Some(720),
                Some(25),
                Some(9000)
            ),
            (
                id("videos", 4),
                "Internal song.wav.mp4".to_string(),
                Some("original-video-files/c8e4d3b2-1f0a-4d9c-b8a7-6f5e4d3c2b10.mp4".to_string()),
                Some(1080),
                Some(1920),
                Some(1080),
                Some(30),
                Some(64000)
            ),
        ]
    );

    let boards: Vec<(uuid::Uuid, String, i32, i32, i32, i32, i32)> = pg_rows(c, "SELECT video_id, path, total_width, total_height, sprite_width, sprite_height, sprite_duration_s FROM storyboards ORDER BY path").await;
    assert_eq!(
        boards,
        [
            (
                v1,
                "storyboards/v1-storyboard.jpg".to_string(),
                1920,
                1080,
                192,
                108,
                2
            ),
            (
                id("videos", 3),
                "storyboards/v3-storyboard.jpg".to_string(),
                960,
                540,
                96,
                54,
                1
            ),
        ]
    );

    let playlists: Vec<(uuid::Uuid, uuid::Uuid, String, String, Option<String>, String)> = pg_rows(c, "SELECT id, video_id, kind, master_path, segments_sha256_path, variants::text FROM streaming_playlists ORDER BY master_path").await;
    let variants = |dir: &str, res: i64, fps: i64, size: i64, playlist: &str, file: &str| {
        serde_json::json!([{
            "resolution": res, "fps": fps, "size": size,
            "playlist_path": format!("{dir}{playlist}"), "file_path": format!("{dir}{file}")
        }])
    };
    let d1 = format!("streaming-playlists/hls/{U1}/");
    let d3 = format!("streaming-playlists/hls/private/{U3}/");
    let d4 = format!("streaming-playlists/hls/private/{U4}/");
    let expected = [
        (
            id("streaming_playlists", 10),
            id("videos", 4),
            format!("{d4}e2d1c0b9-master.m3u8"),
            Some(format!("{d4}e2d1c0b9-segments-sha256.json")),
            variants(
                &d4,
                1080,
                30,
                3200,
                "f3a2b1c0-1080.m3u8",
                "f3a2b1c0-1080-fragmented.mp4",
            ),
        ),
        (
            id("streaming_playlists", 2),
            id("videos", 3),
            format!("{d3}v3-master.m3u8"),
            Some(format!("{d3}v3-segments-sha256.json")),
            variants(
                &d3,
                480,
                30,
                700,
                &format!("{U3}-480.m3u8"),
                &format!("{U3}-480-fragmented.mp4"),
            ),
        ),
        (
            id("streaming_playlists", 1),
            v1,
            format!("{d1}v1-master.m3u8"),
            Some(format!("{d1}v1-segments-sha256.json")),
            variants(
                &d1,
                720,
                30,
                1100,
                &format!("{U1}-720.m3u8"),
                &format!("{U1}-720-fragmented.mp4"),
            ),
        ),
    ];
    let mut got: Vec<_> = playlists
        .into_iter()
        .map(|(i, v, kind, master, sha, vars)| {
            assert_eq!(kind, "hls");
            (
                i,
                v,
                master,
                sha,
                serde_json::from_str::<serde_json::Value>(&vars).unwrap(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.2.cmp(&b.2));
    let mut expected = expected.to_vec();
    expected.sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(got, expected);
}

#[tokio::test]
async fn object_storage_files_without_their_store_are_named_then_moved_by_a_later_run() {
    let (src, dst, media, out) = complete_fixture("#EXTM3U\n").await;
    let mut o = options(&src, &dst, media.path(), out.path());

    // No --media-store: the 6 files in object storage are skipped and named, in the warnings
    // and in not_copied, per store; the run still completes.
    let r = run(&o).await;
    assert_eq!(r.exit_code(), 0, "{}", r.render());
    assert_eq!(stat(&r, "media"), (33, 22, 11, 0));
    let named: BTreeMap<String, String> = r
        .not_copied
        .iter()
        // The stores left out (the profile's declared torrents are files too).
        .filter(|n| n.kind == "files" && n.name.starts_with("media store"))
        .map(|n| (n.name.clone(), n.reason.clone()))
        .collect();
    let names: Vec<&str> = named.keys().map(|k| k.split(' ').nth(2).unwrap()).collect();
    assert_eq!(
        names,
        ["original_video_files", "streaming_playlists", "web_videos"]
    );
    let reasons: Vec<&str> = named.values().map(String::as_str).collect();
    assert_eq!(
        reasons,
        [
            "1 files not copied: give --media-store original_video_files=<locator>",
            "4 files not copied: give --media-store streaming_playlists=<locator>",
            "1 files not copied: give --media-store web_videos=<locator>",
        ]
    );
    assert_any_line(&r.warnings, |w| {
        w.starts_with("media: media store web_videos (object storage of web videos")
    });
    for (_, _, path) in object_storage_files() {
        assert!(!out.path().join(&path).exists(), "{path}");
    }

    // A dry run with the stores looks at the object storage too.
    o.media_stores = object_storage().await;
    let mut dry = o.clone();
    dry.dry_run = true;
    let d = run(&dry).await;
    assert_eq!(d.stats["media"].migrated, 6, "{:?}", d.stats["media"]);
    assert!(
        d.not_copied
            .iter()
            .all(|n| !(n.kind == "files" && n.name.starts_with("media store")))
    );

    // The media watermark stayed back: the next run with the stores moves exactly those 6.
    let r = run(&o).await;
    assert_eq!(r.exit_code(), 0, "{}", r.render());
    assert_eq!(stat(&r, "media"), (33, 6, 27, 0));
    let os = object_storage_dir();
    for (store, key, path) in object_storage_files() {
        assert_eq!(
            std::fs::read(out.path().join(&path)).unwrap_or_else(|e| panic!("{path}: {e}")),
            std::fs::read(os.path().join(store).join(key)).unwrap(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn media_store_mistakes_are_refused_before_any_work() {
    let (src, dst, media, out) = fixture().await;
    let mut o = options(&src, &dst, media.path(), out.path());
    o.media_stores.insert(
        "videos".into(),
        "s3://bucket/x?endpoint=http://127.0.0.1:1".into(),
    );
    let (cx, _) = context();
    let e = import(&profile(), &o, &cx).await.unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string().contains(
            "--media-store videos: profile peertube has no media store 'videos' (it has: original_video_files, streaming_playlists, web_videos)"
        ),
        "{e}"
    );

    // A store without --media-to.
    let mut o = ImportOptions::new(src.locator(), dst.locator());
    o.media_stores.insert(
        "web_videos".into(),
        format!("file://{}", media.path().display()),
    );
    let e = import(&profile(), &o, &cx).await.unwrap_err();
    assert!(
        e.to_string().contains("--media-store needs --media-to"),
        "{e}"
    );
    assert!(
        pg_query(
            &dst.client().await,
            "SELECT 1 FROM pg_tables WHERE schemaname = 'public'"
        )
        .await
        .is_empty(),
        "nothing written"
    );
}
