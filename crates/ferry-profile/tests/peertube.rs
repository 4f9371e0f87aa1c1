//! The PeerTube profile end to end against real PostgreSQL databases (throwaway source and
//! target per test): every entity checked field by field, dry runs, incremental re-runs, media
//! with a missing file, version checks, and profile errors with their line.

mod common;

use common::*;
use ferry_core::progress::Event;
use ferry_core::report::{Report, Status};
use ferry_profile::expr::entity_id;
use ferry_profile::{ImportOptions, Profile, import, validate_source};
use tokio_postgres::Client;

const HOST: &str = "pt.example";

fn profile() -> Profile {
    // The file at the repo root, loaded by path (the same text is embedded for `peertube`).
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/peertube.toml");
    Profile::load(&path).expect("the shipped profile loads")
}

fn options(
    src: &TestDb,
    dst: &TestDb,
    media: Option<(&std::path::Path, &std::path::Path)>,
) -> ImportOptions {
    let mut o = ImportOptions::new(src.locator(), dst.locator());
    if let Some((from, to)) = media {
        o.media_from = Some(format!("file://{}", from.display()));
        o.media_to = Some(format!("file://{}", to.display()));
    }
    o.batch_size = 2; // several pages per entity, so keyset paging is exercised
    o
}

async fn run(o: &ImportOptions) -> Report {
    let (cx, _) = context();
    import(&profile(), o, &cx).await.expect("the import runs")
}

fn id(entity: &str, n: i64) -> uuid::Uuid {
    entity_id(HOST, entity, &n.to_string())
}

async fn count(c: &Client, sql: &str) -> i64 {
    pg_value(c, sql).await
}

/// Asserts each `(query, expected)`: a `count(*)` query and the count it must return.
async fn assert_counts(c: &Client, expected: &[(&str, i64)]) {
    for (sql, n) in expected {
        assert_eq!(count(c, sql).await, *n, "{sql}");
    }
}

/// A report's counts for one key: (total, migrated, skipped, failed).
type Counts = (u64, u64, u64, u64);

/// Counts per entity after a first import of the fixture with its media.
const FIRST_RUN: [(&str, Counts); 9] = [
    ("users", (3, 3, 0, 0)),
    ("channels", (3, 2, 1, 0)),
    ("videos", (7, 6, 1, 0)),
    ("captions", (3, 2, 1, 0)),
    ("comments", (9, 6, 3, 0)),
    // 4 playlists (1 remote); 6 elements (deleted video, remote video, remote playlist).
    ("playlists", (4, 3, 1, 0)),
    ("playlist_items", (6, 3, 3, 0)),
    ("subscriptions", (4, 2, 2, 0)),
    // 33 files: 21 copied, 11 skipped (5 of remote content, 6 in object storage: no
    // --media-store), 1 missing.
    ("media", (33, 21, 11, 1)),
];

/// Asserts a completed first import: the [`FIRST_RUN`] counts, and every entity but media
/// (one file is missing) verified.
#[track_caller]
fn assert_first_run(r: &Report) {
    assert_eq!(r.status, Status::Completed, "{:?}", r.error);
    for (key, counts) in FIRST_RUN {
        assert_eq!(stat(r, key), counts, "{key}");
    }
    for (name, v) in &r.verify {
        if name != "media" {
            assert!(v.ok(), "verify {name}: {v:?}");
        }
    }
}

#[tokio::test]
async fn peertube_import_maps_every_entity_field_by_field() {
    let (src, dst, media, out) = fixture().await;
    let o = options(&src, &dst, Some((media.path(), out.path())));
    let (cx, rec) = context();
    let r = import(&profile(), &o, &cx).await.unwrap();
    assert_first_run(&r);
    assert_eq!(stat(&r, "video_passwords"), (2, 2, 0, 0));
    let mut keys: Vec<_> = r.stats.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "captions",
            "channels",
            "chapters",
            "comments",
            "media",
            "playlist_items",
            "playlists",
            "ratings",
            "storyboards",
            "streaming_playlists",
            "subscriptions",
            "users",
            "video_passwords",
            "video_sources",
            "videos"
        ]
    );
    assert_any_line(&r.warnings, |w| {
        w == "playlist_items: 1 skipped (playlist element whose video was deleted)"
    });
    // Live stats a server shows: started/progress/finished per stats key (each of the keys
    // just listed).
    let events = rec.0.lock().unwrap().clone();
    for key in keys {
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::TableStarted { table, .. } if table == key)),
            "{key} started"
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::TableFinished { table, .. } if table == key)),
            "{key} finished"
        );
        let started: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                Event::TableStarted { table, rows } if table == key => Some(*rows),
                _ => None,
            })
            .collect();
        assert_eq!(
            started,
            [r.stats[key].total],
            "{key} starts once with its whole total"
        );
        let done: u64 = events
            .iter()
            .filter_map(|e| match e {
                Event::TableProgress {
                    table,
                    rows,
                    failed,
                    ..
                } if table == key => Some(rows + failed),
                _ => None,
            })
            .sum();
        assert_eq!(
            done, r.stats[key].total,
            "{key}: progress adds up to the total"
        );
    }

    check_every_field(&dst.client().await).await;

    // media: every present file copied with the same bytes; the missing one reported.
    for f in present_files() {
        let copied = std::fs::read(out.path().join(&f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(copied, std::fs::read(media.path().join(&f)).unwrap(), "{f}");
    }
    assert!(
        !out.path().join("torrents/x.torrent").exists(),
        "only named files are copied"
    );
    let m = &r.stats["media"];
    assert_eq!(m.errors.len(), 1);
    assert!(m.errors[0].contains(&missing_file()), "{:?}", m.errors);
    assert!(
        m.errors[0].contains("missing in the source"),
        "{:?}",
        m.errors
    );
    assert_eq!(r.verify["media"].missing_keys, [missing_file()]);
    assert_eq!(
        r.exit_code(),
        1,
        "a failed media entry makes the exit code 1, the run still completes"
    );
}

#[tokio::test]
async fn a_missing_media_file_is_a_failed_entry_not_a_failed_run() {
    let (src, dst, media, out) = fixture().await;
    let r = run(&options(&src, &dst, Some((media.path(), out.path())))).await;
    assert_eq!(r.status, Status::Completed);
    assert_eq!(r.stats["media"].failed, 1);
    assert_eq!(r.stats["media"].migrated, 21);
    assert!(
        r.stats["media"].errors[0].starts_with(&missing_file()),
        "{:?}",
        r.stats["media"].errors
    );
    // The rows are all there despite the missing file.
    assert_eq!(r.stats["videos"].migrated, 6);
    // Once the file appears, the next run copies it (media's watermark did not advance).
    let p = media.path().join(missing_file());
    std::fs::write(&p, "#EXTM3U").unwrap();
    let r = run(&options(&src, &dst, Some((media.path(), out.path())))).await;
    assert_eq!(r.stats["media"].failed, 0, "{:?}", r.stats["media"].errors);
    assert_eq!(
        r.stats["media"].migrated, 1,
        "only the missing file is copied"
    );
    assert_eq!(r.exit_code(), 0);
    assert!(out.path().join(missing_file()).exists());
}

#[tokio::test]
async fn dry_run_counts_and_writes_nothing() {
    let (src, dst, media, out) = fixture().await;
    let target_dir = out.path().join("new-storage");
    let mut o = options(&src, &dst, Some((media.path(), &target_dir)));
    o.dry_run = true;
    let r = run(&o).await;
    assert!(r.dry_run);
    assert_eq!(r.status, Status::Completed, "{:?}", r.error);
    assert_eq!(stat(&r, "videos"), (7, 6, 1, 0));
    assert_eq!(stat(&r, "comments"), (9, 6, 3, 0));
    assert_eq!(stat(&r, "playlists"), (4, 3, 1, 0));
    assert_eq!(stat(&r, "playlist_items"), (6, 3, 3, 0));
    let m = &r.stats["media"];
    assert_eq!((m.total, m.migrated, m.skipped, m.failed), (33, 21, 11, 1));
    let bytes: u64 = present_files().iter().map(|f| (f.len() * 10) as u64).sum();
    assert_eq!(m.bytes, bytes, "the inventory's bytes");
    assert_any_line(&r.warnings, |w| {
        w.starts_with("dry run: media inventory: 21 files")
    });
    assert!(r.verify.is_empty());

    let c = dst.client().await;
    assert_eq!(
        count(&c, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'").await,
        0,
        "no table, index or sequence in the target"
    );
    assert!(!target_dir.exists(), "no media folder created");
}

#[tokio::test]
async fn second_run_changes_nothing_and_a_third_brings_only_new_rows() {
    let (src, dst, media, out) = fixture().await;
    let o = options(&src, &dst, Some((media.path(), out.path())));
    // The missing file would keep media's watermark back; provide it.
    std::fs::write(media.path().join(missing_file()), "#EXTM3U").unwrap();
    let first = run(&o).await;
    assert_eq!(first.exit_code(), 0, "{}", first.render());
    let c = dst.client().await;
    let snapshot = "SELECT string_agg(t::text, '|' ORDER BY t::text) FROM (SELECT id, updated_at, xmin::text AS x FROM videos UNION ALL SELECT id, updated_at, xmin::text FROM comments UNION ALL SELECT id, updated_at, xmin::text FROM users UNION ALL SELECT id, updated_at, xmin::text FROM playlist_items UNION ALL SELECT NULL, finished_at, xmin::text FROM ferry_import_state) t";
    let before: String = pg_value(&c, snapshot).await;

    let second = run(&o).await;
    assert_eq!(second.exit_code(), 0, "{}", second.render());
    for (key, s) in &second.stats {
        assert_eq!(s.migrated, 0, "{key} migrated nothing");
        assert_eq!(s.skipped + s.failed, s.total, "{key}: the rest is skipped");
        assert_eq!(s.failed, 0, "{key}");
    }
    let after: String = pg_value(&c, snapshot).await;
    assert_eq!(
        before, after,
        "no row rewritten (xmin and updated_at unchanged)"
    );
    for (name, v) in &second.verify {
        assert!(v.ok() || name == "media", "{name}: {v:?}");
    }

    // New in the source: a video (with a web file) and a comment on an old video.
    let s = src.client().await;
    s.batch_execute(
        "INSERT INTO video (id, uuid, name, privacy, nsfw, duration, remote, \"commentsPolicy\", \"downloadEnabled\", state, \"publishedAt\", \"channelId\", \"createdAt\", \"updatedAt\")
           VALUES (8, '88888888-8888-4888-8888-888888888888', 'New video', 1, false, 10, false, 1, true, 1, now(), 2, now(), now());
         INSERT INTO \"videoFile\" (id, resolution, size, fps, filename, \"videoId\", storage, \"createdAt\", \"updatedAt\")
           VALUES (7, 360, 10, 30, '88888888-8888-4888-8888-888888888888-360.mp4', 8, 0, now(), now());
         INSERT INTO \"videoComment\" (id, text, \"heldForReview\", \"originCommentId\", \"inReplyToCommentId\", \"videoId\", \"accountId\", \"createdAt\", \"updatedAt\")
           VALUES (30, 'A late reply', false, 10, 10, 1, 2, now(), now());",
    )
    .await
    .unwrap();
    std::fs::write(
        media
            .path()
            .join("web-videos/88888888-8888-4888-8888-888888888888-360.mp4"),
        "new",
    )
    .unwrap();
    let third = run(&o).await;
    assert_eq!(third.exit_code(), 0, "{}", third.render());
    assert_eq!(stat(&third, "videos"), (8, 1, 7, 0));
    assert_eq!(stat(&third, "comments"), (10, 1, 9, 0));
    assert_eq!(third.stats["media"].migrated, 1);
    assert_eq!(third.stats["users"].migrated, 0);
    assert_eq!(third.stats["playlists"].migrated, 0);
    assert_eq!(
        count(
            &c,
            &format!(
                "SELECT count(*) FROM videos WHERE id = '{}' AND name = 'New video'",
                id("videos", 8)
            )
        )
        .await,
        1
    );
    let parent: Option<uuid::Uuid> = pg_value(
        &c,
        &format!(
            "SELECT parent_id FROM comments WHERE id = '{}'",
            id("comments", 30)
        ),
    )
    .await;
    assert_eq!(parent, Some(id("comments", 10)));
    assert!(
        out.path()
            .join("web-videos/88888888-8888-4888-8888-888888888888-360.mp4")
            .exists()
    );
    assert_eq!(count(&c, "SELECT count(*) FROM videos").await, 7);

    // A fourth run: the fresh rows sit inside the watermark's lag and are read again, but are
    // identical, so nothing is rewritten or counted as migrated.
    let before: String = pg_value(&c, snapshot).await;
    let fourth = run(&o).await;
    assert_eq!(fourth.exit_code(), 0, "{}", fourth.render());
    for (key, s) in &fourth.stats {
        assert_eq!(s.migrated, 0, "{key} migrated nothing");
    }
    assert_any_line(&fourth.warnings, |w| {
        w == "videos: 1 skipped (identical in the target)"
    });
    let after: String = pg_value(&c, snapshot).await;
    assert_eq!(before, after, "no row rewritten");
}

#[tokio::test]
async fn an_unsupported_version_stops_in_validating_unless_overridden() {
    let src = min_source().await;
    let dst = TestDb::new().await;
    src.execute("UPDATE application SET \"migrationVersion\" = 900")
        .await;
    let mut o = options(&src, &dst, None);
    let e = validate_source(&profile(), &o).await.unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert_mentions(
        &msg,
        &["version 900", "supports 865", "--allow-unsupported-version"],
    );
    let (cx, _) = context();
    let e = import(&profile(), &o, &cx).await.unwrap_err();
    assert!(e.to_string().contains("version 900"), "{e}");
    assert!(dst.tables().await.is_empty(), "nothing written");

    o.allow_unsupported_version = true;
    let info = validate_source(&profile(), &o).await.unwrap();
    assert!(!info.supported);
    assert_eq!(info.version.as_deref(), Some("900"));
    assert_eq!(info.source_host, HOST, "from the instance actor's URL");
    let r = run(&o).await;
    assert_eq!(r.stats["videos"].migrated, 6);
    assert_any_line(&r.warnings, |w| {
        w.contains("900") && w.contains("running anyway")
    });
}

#[tokio::test]
async fn password_reset_and_remote_content_options() {
    let src = min_source().await;
    let dst = TestDb::new().await;
    let mut o = options(&src, &dst, None);
    o.require_password_reset = true;
    o.include_remote = true;
    o.source_host = Some("old.example".into());
    let r = run(&o).await;
    assert_eq!(r.status, Status::Completed, "{:?}", r.error);
    assert_eq!(stat(&r, "videos"), (7, 7, 0, 0));
    assert_eq!(stat(&r, "channels"), (3, 3, 0, 0));
    // The deleted comment without replies stays skipped; remote ones come.
    assert_eq!(stat(&r, "comments"), (9, 8, 1, 0));
    assert_eq!(r.stats["subscriptions"].migrated, 3);
    let c = dst.client().await;
    let vid = entity_id("old.example", "videos", "1");
    assert_counts(
        &c,
        &[
            (
                "SELECT count(*) FROM users WHERE password_hash IS NOT NULL OR NOT must_reset_password",
                0,
            ),
            ("SELECT count(*) FROM videos WHERE NOT is_local", 1),
            ("SELECT count(*) FROM videos WHERE source_host <> 'old.example'", 0),
            (&format!("SELECT count(*) FROM videos WHERE id = '{vid}'"), 1),
        ],
    )
    .await;
    assert!(
        r.warnings.iter().any(|w| w.contains("not copied")),
        "no media stores: said so"
    );
    assert_eq!(r.stats["media"].skipped, r.stats["media"].total);
    // Files were not copied, so a later run with the stores still copies every one.
    let media = media_dir();
    let out = tempfile::tempdir().unwrap();
    let mut o2 = options(&src, &dst, Some((media.path(), out.path())));
    o2.source_host = o.source_host.clone();
    o2.include_remote = true;
    let r = run(&o2).await;
    assert_eq!(r.stats["videos"].migrated, 0, "rows are unchanged");
    assert_eq!(r.stats["media"].migrated, 21, "{:?}", r.stats["media"]);
}

#[tokio::test]
async fn a_profile_with_an_error_reports_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/peertube.toml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("peertube-target.sql"), "SELECT 1").unwrap();
    let path = dir.path().join("broken.toml");

    // An expression naming an enum map that does not exist.
    let broken = text.replace(
        "role = \"enum(role, role)\"",
        "role = \"enum(roles, role)\"",
    );
    std::fs::write(&path, &broken).unwrap();
    let line = broken
        .lines()
        .position(|l| l.contains("enum(roles, role)"))
        .unwrap()
        + 1;
    let e = Profile::load(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:{line}:", path.display())),
        "{e} (line {line})"
    );
    assert!(e.contains("enum map 'roles'"), "{e}");

    // A TOML syntax error.
    let broken = text.replacen("key = \"id\"", "key = \"id", 1);
    std::fs::write(&path, &broken).unwrap();
    let line = broken.lines().position(|l| l == "key = \"id").unwrap() + 1;
    let e = Profile::load(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:{line}:", path.display())),
        "{e} (line {line})"
    );

    // A source query that lacks a column the profile reads: caught before any work.
    let broken = text.replace(
        "u.blocked, a.name AS display_name",
        "a.name AS display_name",
    );
    std::fs::write(&path, &broken).unwrap();
    let p = Profile::load(&path).unwrap();
    let src = min_source().await;
    let dst = TestDb::new().await;
    let (cx, _) = context();
    let e = import(&p, &options(&src, &dst, None), &cx)
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string()
            .contains("entity users: the source query returns no column 'blocked'"),
        "{e}"
    );
}

#[tokio::test]
async fn the_profile_is_shipped_by_name() {
    let p = Profile::find("peertube").unwrap();
    assert_eq!(p.name, "peertube");
    assert_eq!(
        p.target_schema,
        include_str!("../../../profiles/peertube-target.sql")
    );
    let e = Profile::find("no-such-profile").unwrap_err().to_string();
    assert!(e.contains("peertube"), "names the shipped profiles: {e}");
}

/// The real PeerTube 6.3 schema (../shared/fixtures/peertube/schema.sql) with the same data.
#[tokio::test]
async fn conformance_with_the_real_peertube_schema() {
    let Some(schema) = real_schema() else {
        return;
    };
    let src = TestDb::new().await;
    src.client()
        .await
        .batch_execute(&schema)
        .await
        .expect("the real schema loads");
    // pg_dump's script empties search_path on its session: a fresh one for the data.
    let c = src.client().await;
    c.batch_execute(FULL_FILL)
        .await
        .expect("defaults for the columns the fixture leaves out");
    c.batch_execute(DATA)
        .await
        .expect("the data fixture fits the real schema");
    let dst = TestDb::new().await;
    let media = media_dir();
    let out = tempfile::tempdir().unwrap();
    let r = run(&options(&src, &dst, Some((media.path(), out.path())))).await;
    assert_first_run(&r);
    let t = dst.client().await;
    check_every_field(&t).await;
    assert_counts(
        &t,
        &[
            (
                "SELECT count(*) FROM videos WHERE tags = ARRAY['cats','funny']",
                1,
            ),
            ("SELECT count(*) FROM comments WHERE status = 'deleted'", 1),
            (
                "SELECT count(*) FROM playlists WHERE kind = 'watch_later'",
                2,
            ),
        ],
    )
    .await;
}

/// Cancels the run when the first batch of a stats key is reported.
struct CancelOn {
    key: &'static str,
    token: tokio_util::sync::CancellationToken,
}

impl ferry_core::progress::Observer for CancelOn {
    fn event(&self, event: &Event) {
        if let Event::TableProgress { table, .. } = event
            && table == self.key
        {
            self.token.cancel();
        }
    }
}

#[tokio::test]
async fn cancel_stops_between_batches_and_a_rerun_finishes() {
    let src = min_source().await;
    let dst = TestDb::new().await;
    let o = options(&src, &dst, None);
    let token = tokio_util::sync::CancellationToken::new();
    let cx = ferry_core::engine::Context {
        observer: std::sync::Arc::new(CancelOn {
            key: "videos",
            token: token.clone(),
        }),
        confirm: std::sync::Arc::new(ferry_core::progress::Answer(false)),
        cancel: token,
    };
    let r = import(&profile(), &o, &cx).await.unwrap();
    assert_eq!(r.status, Status::Cancelled);
    assert_eq!(r.exit_code(), 1);
    assert_eq!(
        r.stats["videos"].migrated, 2,
        "one batch of two, then stopped"
    );
    assert!(
        !r.stats.contains_key("comments"),
        "later entities never started"
    );
    let c = dst.client().await;
    assert_eq!(count(&c, "SELECT count(*) FROM videos").await, 2);
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM ferry_import_state WHERE entity = 'videos'"
        )
        .await,
        0,
        "a cancelled entity keeps no watermark"
    );

    let r = run(&o).await;
    assert_eq!(r.status, Status::Completed, "{:?}", r.error);
    assert_eq!(
        stat(&r, "users"),
        (3, 0, 3, 0),
        "finished entities are not redone"
    );
    assert_eq!(
        stat(&r, "videos"),
        (7, 4, 3, 0),
        "the two written videos are identical: skipped"
    );
    assert_eq!(stat(&r, "comments"), (9, 6, 3, 0));
}

#[test]
fn options_print_without_secrets() {
    let mut o = ImportOptions::new(
        ferry_postgres::locator::parse("postgres://u:hunter2@h/db").unwrap(),
        ferry_postgres::locator::parse("postgres://u:hunter3@h/db").unwrap(),
    );
    o.media_to = Some("s3://b/p?endpoint=http://x&region=r&secret_access_key=hunter4".into());
    let shown = format!("{o:?}");
    for secret in ["hunter2", "hunter3", "hunter4"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains("s3://b/p"), "{shown}");
}

/// The imported fixture, entity by entity and field by field.
async fn check_every_field(c: &Client) {
    // users
    let rows = pg_query(c, "SELECT id, source_host, username, email, email_verified, display_name, description, role, password_hash, password_scheme, must_reset_password, two_factor_enabled, blocked, avatar_path, created_at::text, updated_at::text FROM users ORDER BY username").await;
    assert_eq!(rows.len(), 3);
    let alice = &rows[0];
    assert_eq!(alice.get::<_, uuid::Uuid>(0), id("users", 1));
    assert_eq!(alice.get::<_, String>(1), HOST);
    assert_eq!(alice.get::<_, String>(2), "alice");
    assert_eq!(alice.get::<_, String>(3), "alice@pt.example");
    assert_eq!(alice.get::<_, Option<bool>>(4), Some(true));
    assert_eq!(alice.get::<_, String>(5), "Alice A.");
    assert_eq!(
        alice.get::<_, Option<String>>(6).as_deref(),
        Some("I film cats")
    );
    assert_eq!(alice.get::<_, String>(7), "admin");
    assert!(
        alice
            .get::<_, Option<String>>(8)
            .unwrap()
            .starts_with("$2a$10$alice")
    );
    assert_eq!(alice.get::<_, Option<String>>(9).as_deref(), Some("bcrypt"));
    assert!(!alice.get::<_, bool>(10));
    assert!(!alice.get::<_, bool>(11));
    assert!(!alice.get::<_, bool>(12));
    assert_eq!(
        alice.get::<_, Option<String>>(13).as_deref(),
        Some("avatars/alice-avatar-600.png")
    );
    assert_eq!(alice.get::<_, String>(14), "2024-01-01 10:00:00+00");
    assert_eq!(alice.get::<_, String>(15), "2024-01-02 10:00:00+00");
    let bob = &rows[1];
    assert_eq!(bob.get::<_, String>(7), "user");
    assert!(bob.get::<_, bool>(11), "bob has 2FA");
    assert!(bob.get::<_, bool>(12), "bob is blocked");
    assert_eq!(bob.get::<_, Option<String>>(13), None);
    let dave = &rows[2];
    assert_eq!(dave.get::<_, String>(7), "moderator");
    assert_eq!(
        dave.get::<_, Option<String>>(8),
        None,
        "external auth: no hash"
    );
    assert!(dave.get::<_, bool>(10), "no password: must reset");

    // channels: handle from the actor, display name from the channel, owner computed.
    let rows = pg_query(c, "SELECT id, owner_id, handle, display_name, description, support, is_local, avatar_path, banner_path FROM channels ORDER BY handle").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<_, uuid::Uuid>(0), id("channels", 1));
    assert_eq!(
        rows[0].get::<_, Option<uuid::Uuid>>(1),
        Some(id("users", 1))
    );
    assert_eq!(rows[0].get::<_, String>(2), "alice_videos");
    assert_eq!(rows[0].get::<_, String>(3), "Alice Videos");
    assert_eq!(
        rows[0].get::<_, Option<String>>(4).as_deref(),
        Some("Cats, mostly")
    );
    assert_eq!(
        rows[0].get::<_, Option<String>>(5).as_deref(),
        Some("Tip jar")
    );
    assert!(rows[0].get::<_, bool>(6));
    assert_eq!(rows[0].get::<_, Option<String>>(7), None);
    assert_eq!(
        rows[0].get::<_, Option<String>>(8).as_deref(),
        Some("avatars/alice-videos-banner.jpg")
    );
    assert_eq!(rows[1].get::<_, String>(2), "bob_music");
    assert_eq!(
        rows[1].get::<_, Option<uuid::Uuid>>(1),
        Some(id("users", 2))
    );

    // videos
    let rows = pg_query(c, "SELECT id, uuid::text, channel_id, name, description, support, privacy, state, comments_policy, duration_s, views, likes, dislikes, language, category, licence, nsfw, is_live, download_enabled, is_local, tags, thumbnail_path, preview_path, files::text, published_at::text, originally_published_at::text FROM videos ORDER BY uuid").await;
    assert_eq!(rows.len(), 6, "the remote video is not imported");
    let v1 = &rows[0];
    assert_eq!(v1.get::<_, uuid::Uuid>(0), id("videos", 1));
    assert_eq!(v1.get::<_, String>(1), U1, "uuid kept");
    assert_eq!(v1.get::<_, uuid::Uuid>(2), id("channels", 1));
    assert_eq!(v1.get::<_, String>(3), "Cat video");
    assert_eq!(v1.get::<_, Option<String>>(4).as_deref(), Some("A cat"));
    assert_eq!(
        v1.get::<_, Option<String>>(5).as_deref(),
        Some("Tips welcome")
    );
    assert_eq!(v1.get::<_, String>(6), "public");
    assert_eq!(v1.get::<_, String>(7), "published");
    assert_eq!(v1.get::<_, String>(8), "enabled");
    assert_eq!(v1.get::<_, i32>(9), 120);
    assert_eq!(
        (
            v1.get::<_, i64>(10),
            v1.get::<_, i64>(11),
            v1.get::<_, i64>(12)
        ),
        (42, 5, 1)
    );
    assert_eq!(v1.get::<_, Option<String>>(13).as_deref(), Some("en"));
    assert_eq!(
        (v1.get::<_, Option<i32>>(14), v1.get::<_, Option<i32>>(15)),
        (Some(15), Some(1))
    );
    assert!(!v1.get::<_, bool>(16));
    assert!(!v1.get::<_, bool>(17));
    assert!(v1.get::<_, bool>(18));
    assert!(v1.get::<_, bool>(19));
    assert_eq!(v1.get::<_, Vec<String>>(20), ["cats", "funny"]);
    assert_eq!(
        v1.get::<_, Option<String>>(21).as_deref(),
        Some("thumbnails/v1-thumb.jpg")
    );
    assert_eq!(
        v1.get::<_, Option<String>>(22).as_deref(),
        Some("previews/v1-preview.jpg")
    );
    let files: serde_json::Value = serde_json::from_str(&v1.get::<_, String>(23)).unwrap();
    assert_eq!(
        files,
        serde_json::json!([
            {"kind": "web_video", "resolution": 720, "size": 1000, "fps": 30, "path": format!("web-videos/{U1}-720.mp4")},
            {"kind": "hls", "resolution": 720, "size": 1100, "fps": 30, "path": format!("streaming-playlists/hls/{U1}/{U1}-720-fragmented.mp4")},
        ])
    );
    assert_eq!(v1.get::<_, String>(24), "2024-01-03 10:00:00+00");
    assert_eq!(
        v1.get::<_, Option<String>>(25).as_deref(),
        Some("2023-12-24 10:00:00+00")
    );
    let by_uuid = |u: &str| {
        rows.iter()
            .find(|r| r.get::<_, String>(1).starts_with(u))
            .unwrap()
    };
    assert_eq!(by_uuid("22222222").get::<_, String>(6), "unlisted");
    assert_eq!(by_uuid("22222222").get::<_, String>(7), "to_transcode");
    assert_eq!(by_uuid("22222222").get::<_, String>(8), "disabled");
    assert_eq!(by_uuid("33333333").get::<_, String>(6), "private");
    assert_eq!(by_uuid("33333333").get::<_, String>(8), "requires_approval");
    assert!(
        by_uuid("33333333")
            .get::<_, String>(23)
            .contains("web-videos/private/")
    );
    assert!(
        by_uuid("33333333")
            .get::<_, String>(23)
            .contains("streaming-playlists/hls/private/")
    );
    assert_eq!(by_uuid("44444444").get::<_, String>(6), "internal");
    assert_eq!(
        by_uuid("44444444").get::<_, String>(7),
        "transcoding_failed"
    );
    assert_eq!(by_uuid("44444444").get::<_, Vec<String>>(20), ["music"]);
    assert_eq!(
        by_uuid("55555555").get::<_, String>(6),
        "password_protected"
    );
    assert_eq!(by_uuid("55555555").get::<_, String>(7), "to_edit");
    assert_eq!(by_uuid("66666666").get::<_, String>(7), "waiting_for_live");
    assert!(by_uuid("66666666").get::<_, bool>(17));
    assert_eq!(
        by_uuid("66666666").get::<_, Vec<String>>(20),
        Vec::<String>::new()
    );

    // captions
    let rows = pg_query(c, "SELECT id, video_id, language, path, automatically_generated FROM captions ORDER BY language").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<_, uuid::Uuid>(0), id("captions", 1));
    assert_eq!(rows[0].get::<_, uuid::Uuid>(1), id("videos", 1));
    assert_eq!(rows[0].get::<_, String>(2), "en");
    assert_eq!(rows[0].get::<_, String>(3), "captions/v1-en.vtt");
    assert!(!rows[0].get::<_, bool>(4));
    assert!(rows[1].get::<_, bool>(4));

    // comments: parent and thread kept, placeholders, pending.
    let rows = pg_query(c, "SELECT id, video_id, author_id, parent_id, thread_id, body, status, deleted_at IS NOT NULL FROM comments").await;
    assert_eq!(rows.len(), 6);
    let com = |n: i64| {
        rows.iter()
            .find(|r| r.get::<_, uuid::Uuid>(0) == id("comments", n))
            .unwrap_or_else(|| panic!("comment {n}"))
    };
    let c10 = com(10);
    assert_eq!(c10.get::<_, uuid::Uuid>(1), id("videos", 1));
    assert_eq!(c10.get::<_, Option<uuid::Uuid>>(2), Some(id("users", 2)));
    assert_eq!(c10.get::<_, Option<uuid::Uuid>>(3), None);
    assert_eq!(
        c10.get::<_, uuid::Uuid>(4),
        id("comments", 10),
        "a root is its own thread"
    );
    assert_eq!(
        c10.get::<_, Option<String>>(5).as_deref(),
        Some("Great video")
    );
    assert_eq!(c10.get::<_, String>(6), "published");
    let c5 = com(5);
    assert_eq!(
        c5.get::<_, Option<uuid::Uuid>>(3),
        Some(id("comments", 12)),
        "reply to a higher id"
    );
    assert_eq!(c5.get::<_, uuid::Uuid>(4), id("comments", 10));
    assert_eq!(
        com(12).get::<_, Option<uuid::Uuid>>(3),
        Some(id("comments", 10))
    );
    let c20 = com(20);
    assert_eq!(c20.get::<_, String>(6), "deleted");
    assert_eq!(c20.get::<_, Option<String>>(5), None);
    assert_eq!(c20.get::<_, Option<uuid::Uuid>>(2), None);
    assert!(c20.get::<_, bool>(7));
    assert_eq!(
        com(21).get::<_, Option<uuid::Uuid>>(3),
        Some(id("comments", 20))
    );
    assert_eq!(com(23).get::<_, String>(6), "pending");
    assert_eq!(com(23).get::<_, uuid::Uuid>(1), id("videos", 3));
    // Every parent a reply names exists in the target.
    assert_eq!(count(c, "SELECT count(*) FROM comments c WHERE parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM comments p WHERE p.id = c.parent_id)").await, 0);

    // playlists and their items
    let rows = pg_query(c, "SELECT id, uuid::text, owner_id, channel_id, kind, name, description, privacy, thumbnail_path FROM playlists ORDER BY uuid").await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].get::<_, uuid::Uuid>(0), id("playlists", 1));
    assert_eq!(
        rows[0].get::<_, Option<uuid::Uuid>>(2),
        Some(id("users", 1))
    );
    assert_eq!(
        rows[0].get::<_, Option<uuid::Uuid>>(3),
        Some(id("channels", 1))
    );
    assert_eq!(rows[0].get::<_, String>(4), "regular");
    assert_eq!(rows[0].get::<_, String>(5), "Favourites");
    assert_eq!(
        rows[0].get::<_, Option<String>>(6).as_deref(),
        Some("Best cats")
    );
    assert_eq!(rows[0].get::<_, String>(7), "public");
    assert_eq!(
        rows[0].get::<_, Option<String>>(8).as_deref(),
        Some("thumbnails/pl1-thumb.jpg")
    );
    assert_eq!(rows[1].get::<_, String>(4), "watch_later");
    assert_eq!(rows[1].get::<_, String>(7), "private");
    assert_eq!(
        rows[1].get::<_, Option<uuid::Uuid>>(2),
        Some(id("users", 1))
    );
    assert_eq!(rows[2].get::<_, String>(4), "watch_later");
    assert_eq!(
        rows[2].get::<_, Option<uuid::Uuid>>(2),
        Some(id("users", 2))
    );
    let items = c
        .query("SELECT video_id, position, start_s, stop_s FROM playlist_items WHERE playlist_id = $1 ORDER BY position", &[&id("playlists", 1)])
        .await
        .unwrap();
    let got: Vec<(uuid::Uuid, i32, Option<i32>, Option<i32>)> = items
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        got,
        [
            (id("videos", 1), 1, None, None),
            (id("videos", 3), 3, Some(10), Some(20))
        ]
    );
    assert_eq!(count(c, "SELECT count(*) FROM playlist_items").await, 3);

    // subscriptions
    let mut got: Vec<(uuid::Uuid, uuid::Uuid, uuid::Uuid)> = pg_rows(
        c,
        "SELECT id, user_id, channel_id FROM subscriptions ORDER BY id",
    )
    .await;
    got.sort();
    let mut want = vec![
        (id("subscriptions", 1), id("users", 2), id("channels", 1)),
        (id("subscriptions", 4), id("users", 3), id("channels", 1)),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_target_table_of_another_shape_is_refused_before_any_work() {
    let src = min_source().await;
    let dst = TestDb::with("CREATE TABLE videos (id uuid PRIMARY KEY, title text)").await;
    let (cx, _) = context();
    let e = import(&profile(), &options(&src, &dst, None), &cx)
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert_mentions(&msg, &["target table videos", "source_host", "channel_id"]);
    assert_eq!(
        dst.tables().await,
        ["videos"],
        "nothing created: only the foreign table is there"
    );
}

/// A server spawns imports on its runtime: the futures must be `Send` (checked at compile time).
#[allow(dead_code)]
fn entry_points_are_send(p: &Profile, o: &ImportOptions, cx: &ferry_core::engine::Context) {
    fn send<T: Send>(_: T) {}
    send(import(p, o, cx));
    send(validate_source(p, o));
}
