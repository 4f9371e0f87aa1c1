//! The PeerTube import never widens access and leaves nothing out silently, against real
//! PostgreSQL: every privacy × state × block combination arrives no more visible than in
//! PeerTube, the engine refuses a row that would be, passwords and blocks arrive, what the
//! profile does not take is counted under not_copied (rows, files and bytes), every non-empty
//! source table is read or declared, and verification says exactly what it compared.

mod common;

use std::collections::BTreeSet;

use common::*;
use ferry_core::report::{Report, Status};
use ferry_profile::expr::entity_id;
use ferry_profile::{ImportOptions, Profile, import};

const HOST: &str = "pt.example";

fn profile_text() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/peertube.toml"),
    )
    .unwrap()
}

fn profile() -> Profile {
    Profile::find("peertube").unwrap()
}

fn options(src: &TestDb, dst: &TestDb) -> ImportOptions {
    let mut o = ImportOptions::new(src.locator(), dst.locator());
    o.source_host = Some(HOST.into());
    o.batch_size = 7;
    o
}

async fn run_with(p: &Profile, o: &ImportOptions) -> Report {
    let (cx, _) = context();
    import(p, o, &cx).await.expect("the import runs")
}

fn id(entity: &str, n: i64) -> uuid::Uuid {
    entity_id(HOST, entity, &n.to_string())
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Who may watch a PeerTube 6.3 video (its own rules, written here apart from the profile):
/// privacy; only published videos and lives waiting or ended are shown to anyone but the owner
/// (a transcoding video counts as hidden, the safe side); a blocked video is the owner's and
/// moderators' only.
fn peertube_audience(privacy: i32, state: i32, blocked: bool) -> BTreeSet<String> {
    if blocked || ![1, 4, 5].contains(&state) {
        return set(&["owner"]);
    }
    match privacy {
        1 => set(&["listed", "link", "password", "members", "owner"]),
        2 => set(&["link", "password", "owner"]),
        3 => set(&["owner"]),
        4 => set(&["members", "owner"]),
        5 => set(&["password", "owner"]),
        other => panic!("privacy {other}"),
    }
}

/// Who may watch a video on the new platform (profiles/peertube-target.sql's comments).
fn target_audience(privacy: &str, state: &str, moderation: &str) -> BTreeSet<String> {
    if moderation != "none" || !["published", "waiting_for_live", "live_ended"].contains(&state) {
        return set(&["owner"]);
    }
    match privacy {
        "public" => set(&["listed", "link", "password", "members", "owner"]),
        "unlisted" => set(&["link", "password", "owner"]),
        "private" => set(&["owner"]),
        "internal" => set(&["members", "owner"]),
        "password_protected" => set(&["password", "owner"]),
        other => panic!("privacy {other}"),
    }
}

/// The source tables the report names as holding rows the profile neither reads nor
/// declares, with their row counts.
fn undeclared(r: &Report) -> Vec<(&str, Option<u64>)> {
    r.not_copied
        .iter()
        .filter(|x| x.reason.contains("neither reads nor declares"))
        .map(|x| (x.name.as_str(), x.count))
        .collect()
}

#[tokio::test]
async fn no_video_is_more_visible_in_the_target_than_in_peertube() {
    let src = min_source().await;
    // Every privacy × state × blocked combination, as bob's videos (ids 100…).
    let mut sql = String::new();
    let mut combos = Vec::new();
    let mut n = 100;
    for privacy in 1..=5 {
        for state in 1..=11 {
            for blocked in [false, true] {
                sql.push_str(&format!(
                    "INSERT INTO video (id, uuid, name, privacy, nsfw, duration, remote, \"commentsPolicy\", \"downloadEnabled\", state, \"publishedAt\", \"channelId\", \"createdAt\", \"updatedAt\")
                     VALUES ({n}, gen_random_uuid(), 'combo {n}', {privacy}, false, 10, false, 1, true, {state}, '2024-02-01 10:00+00', 2, '2024-02-01 10:00+00', '2024-02-01 10:00+00');\n"
                ));
                if blocked {
                    sql.push_str(&format!(
                        "INSERT INTO \"videoBlacklist\" (id, reason, unfederated, type, \"videoId\", \"createdAt\", \"updatedAt\")
                         VALUES ({n}, 'reason {n}', false, 1, {n}, '2024-02-02 10:00+00', '2024-02-02 10:00+00');\n"
                    ));
                }
                combos.push((n, privacy, state, blocked));
                n += 1;
            }
        }
    }
    src.execute(&sql).await;
    let dst = TestDb::new().await;
    let r = run_with(&profile(), &options(&src, &dst)).await;
    assert_eq!(r.status, Status::Completed, "{:?}", r.error);
    assert_eq!(
        r.stats["videos"].failed, 0,
        "{:?}",
        r.stats["videos"].errors
    );
    assert_eq!(combos.len(), 110);

    let c = dst.client().await;
    for (n, privacy, state, blocked) in combos {
        let row = c
            .query_one(
                "SELECT privacy, state, moderation_state, blocked_reason, blocked_at::text FROM videos WHERE id = $1",
                &[&id("videos", n)],
            )
            .await
            .unwrap_or_else(|e| panic!("video {n} arrives: {e}"));
        let (tp, ts, tm): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let source = peertube_audience(privacy, state, blocked);
        let target = target_audience(&tp, &ts, &tm);
        assert!(
            target.is_subset(&source),
            "video {n} (privacy {privacy}, state {state}, blocked {blocked}) → ({tp}, {ts}, {tm}): target {target:?} is wider than source {source:?}"
        );
        assert_eq!(tm == "blocked", blocked, "video {n}");
        if blocked {
            assert_eq!(row.get::<_, Option<String>>(3), Some(format!("reason {n}")));
            assert_eq!(
                row.get::<_, Option<String>>(4).as_deref(),
                Some("2024-02-02 10:00:00+00")
            );
        }
    }
}

#[tokio::test]
async fn the_engine_refuses_a_row_that_would_widen_access() {
    let src = min_source().await;
    let dst = TestDb::new().await;
    // A profile that forgets the block: the blocked cat video (1) would be public again.
    let text = profile_text().replace(
        "moderation_state = \"moderation_state\"",
        "moderation_state = \"'none'\"",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peertube.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/peertube-target.sql"),
        dir.path().join("peertube-target.sql"),
    )
    .unwrap();
    let p = Profile::load(&path).unwrap();
    let mut o = options(&src, &dst);
    o.dry_run = true;
    let r = run_with(&p, &o).await;
    let v = &r.stats["videos"];
    assert_eq!(v.failed, 1, "{v:?}");
    assert!(
        v.errors[0].starts_with(
            "videos 1: access: the target row would be visible to link, listed, members, password"
        ),
        "{:?}",
        v.errors
    );

    o.dry_run = false;
    let r = run_with(&p, &o).await;
    assert_eq!(r.stats["videos"].failed, 1);
    assert_eq!(r.exit_code(), 1);
    let n: i64 = dst
        .value(&format!(
            "SELECT count(*) FROM videos WHERE id = '{}'",
            id("videos", 1)
        ))
        .await;
    assert_eq!(n, 0, "the refused video is not written");
}

/// The torrent files the fixture names (the remote video's is not on this disk), with content.
fn torrents() -> Vec<(String, &'static str)> {
    vec![
        (
            "torrents/f1a2b3c4-0001-4000-8000-000000000001-720.torrent".into(),
            "d8:announce-720e",
        ),
        (
            "torrents/f1a2b3c4-0002-4000-8000-000000000002-480.torrent".into(),
            "d8:announce-480-privatee",
        ),
        (
            "torrents/f1a2b3c4-0005-4000-8000-000000000005-720-hls.torrent".into(),
            "d8:announce-hlse",
        ),
    ]
}

#[tokio::test]
async fn passwords_blocks_not_migrated_and_what_verify_compared() {
    let src = min_source().await;
    let dst = TestDb::new().await;
    let media = complete_media_dir("#EXTM3U");
    for (path, body) in torrents() {
        std::fs::write(media.path().join(path), body).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let mut o = options(&src, &dst);
    o.media_from = Some(format!("file://{}", media.path().display()));
    o.media_to = Some(format!("file://{}", out.path().display()));
    let r = run_with(&profile(), &o).await;
    assert_eq!(r.exit_code(), 0, "{}", r.render());

    // Passwords and the block arrive.
    let c = dst.client().await;
    let mut got: Vec<(uuid::Uuid, uuid::Uuid, String, String)> = pg_rows(
        &c,
        "SELECT id, video_id, password, created_at::text FROM video_passwords ORDER BY id",
    )
    .await;
    got.sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(
        got,
        [
            (
                id("video_passwords", 2),
                id("videos", 5),
                "band-members-2024".into(),
                "2024-01-03 14:05:00+00".into()
            ),
            (
                id("video_passwords", 1),
                id("videos", 5),
                "open sesame".into(),
                "2024-01-03 14:00:00+00".into()
            ),
        ]
    );
    let row = c
        .query_one(
            "SELECT privacy, moderation_state, blocked_reason, blocked_at::text FROM videos WHERE id = $1",
            &[&id("videos", 1)],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "public");
    assert_eq!(row.get::<_, String>(1), "blocked");
    assert_eq!(row.get::<_, String>(2), "Copyright claim by Cat Films Ltd");
    assert_eq!(row.get::<_, String>(3), "2024-01-08 10:00:00+00");
    let unblocked: i64 = pg_value(&c, "SELECT count(*) FROM videos WHERE moderation_state = 'none' AND blocked_reason IS NULL AND blocked_at IS NULL").await;
    assert_eq!(unblocked, 5, "the other local videos are not blocked");

    // What stays behind, counted: declared tables and files, nothing undeclared.
    let item = |name: &str| {
        r.not_copied
            .iter()
            .find(|o| o.name == name)
            .unwrap_or_else(|| panic!("{name} in not_copied: {:?}", r.not_copied))
    };
    let t = item("torrents");
    let bytes: u64 = torrents().iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(
        (t.kind.as_str(), t.count, t.bytes),
        ("files", Some(3), Some(bytes))
    );
    assert!(t.reason.contains("regenerates"), "{}", t.reason);
    assert!(
        !out.path().join("torrents").exists(),
        "torrents are not copied"
    );
    let h = item("userVideoHistory");
    assert_eq!(
        (h.kind.as_str(), h.count, h.bytes),
        ("table", Some(2), None)
    );
    assert_eq!(item("server").count, Some(1));
    // A declared table this source does not have counts 0.
    assert_eq!(item("videoLive").count, Some(0));
    assert!(
        r.not_copied
            .iter()
            .all(|o| !o.reason.contains("neither reads nor declares")),
        "{:?}",
        r.not_copied
    );
    let text = r.render();
    assert!(
        text.contains(&format!(
            "not copied: files torrents (3, {bytes} bytes): torrent files of web videos"
        )),
        "{text}"
    );
    assert!(
        text.contains("not copied: table userVideoHistory (2): watch history"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let entry = json["not_copied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "torrents")
        .unwrap();
    assert_eq!(entry["count"], 3);
    assert_eq!(entry["bytes"], bytes);

    // Verification compared content, and says so.
    // 14 entity tables and the media.
    assert_eq!(r.verify.len(), 15, "{:?}", r.verify.keys());
    for (name, v) in &r.verify {
        assert!(
            v.ok() && v.checksum_match && !v.counts_only,
            "{name}: {v:?}"
        );
        if name != "media" {
            assert!(
                v.rule.starts_with("content and row counts: "),
                "{name}: {}",
                v.rule
            );
            assert!(!v.rule.contains("no content checksum"), "{}", v.rule);
        }
    }
    assert!(
        text.contains("verify: 15 tables match (row counts and content checksums)"),
        "{text}"
    );

    // A rerun changes nothing and compares every row again; no file to verify is said.
    let again = run_with(&profile(), &o).await;
    assert_eq!(again.exit_code(), 0, "{}", again.render());
    for (key, s) in &again.stats {
        assert_eq!(s.migrated, 0, "{key}");
    }
    // The fixture's object-storage files were not given a store here, so the media watermark
    // stays back and the rerun looks at the files again: it compares them for real (the
    // "no file to verify" wording, when nothing is left, is asserted by peertube_completeness).
    let media = &again.verify["media"];
    assert!(
        media.source_rows > 0 && media.checksum_match && !media.counts_only,
        "{media:?}"
    );
    assert_eq!(again.verify["videos"].source_rows, 6);
    assert!(again.verify["videos"].checksum_match);
    assert!(
        again
            .render()
            .contains("verify: 15 tables match (row counts and content checksums)"),
        "{}",
        again.render()
    );

    // A target row changed behind ferry's back (after the watermark): verify finds it.
    c.batch_execute(&format!(
        "UPDATE videos SET name = 'Tampered' WHERE id = '{}'",
        id("videos", 3)
    ))
    .await
    .unwrap();
    let third = run_with(&profile(), &o).await;
    let v = &third.verify["videos"];
    assert!(!v.checksum_match && !v.ok(), "{v:?}");
    assert_eq!(
        (v.missing_count, v.different_count, v.extra_count),
        (0, 1, 0)
    );
    assert_eq!(v.different_keys, ["videos 3"]);
    assert_eq!(third.exit_code(), 1);
}

#[tokio::test]
async fn every_non_empty_source_table_is_read_or_declared() {
    let src = min_source().await;
    let dst = TestDb::new().await;
    let mut o = options(&src, &dst);
    o.dry_run = true;
    let r = run_with(&profile(), &o).await;
    assert_eq!(undeclared(&r), []);

    // A table nobody thought of (a plugin's, say) is named with its rows.
    src.execute(
        "CREATE TABLE \"pluginBadges\" (id integer PRIMARY KEY, label text);
             INSERT INTO \"pluginBadges\" VALUES (1, 'gold'), (2, 'silver');
             CREATE TABLE \"pluginEmpty\" (id integer PRIMARY KEY);",
    )
    .await;
    let r = run_with(&profile(), &o).await;
    assert_eq!(undeclared(&r), [("pluginBadges", Some(2))]);
    assert!(
        r.render().contains(
            "not copied: table pluginBadges (2): holds rows that profile peertube neither reads nor declares in [[not_migrated]]"
        ),
        "{}",
        r.render()
    );
}

#[tokio::test]
async fn the_real_peertube_schema_is_read_or_declared_and_never_widened() {
    let Some(schema) = real_schema() else {
        return;
    };
    let src = TestDb::with(&schema).await;
    let c = src.client().await;
    c.batch_execute(FULL_FILL).await.unwrap();
    c.batch_execute(DATA).await.unwrap();
    let dst = TestDb::new().await;
    let r = run_with(&profile(), &options(&src, &dst)).await;
    assert_eq!(r.status, Status::Completed, "{:?}", r.error);
    assert_eq!(r.stats["video_passwords"].migrated, 2);
    assert_eq!(r.stats["videos"].failed, 0);
    assert_eq!(undeclared(&r), []);
    let h = r
        .not_copied
        .iter()
        .find(|o| o.name == "userVideoHistory")
        .unwrap();
    assert_eq!(h.count, Some(2));
    // Every declared table exists in PeerTube 6.3 (no typo hides a table).
    for o in r.not_copied.iter().filter(|o| o.kind == "table") {
        assert!(
            schema.contains(&format!("CREATE TABLE public.\"{}\" (", o.name))
                || schema.contains(&format!("CREATE TABLE public.{} (", o.name)),
            "{} is not a PeerTube 6.3 table",
            o.name
        );
    }
    for (name, v) in &r.verify {
        assert!(v.ok() && v.checksum_match, "{name}: {v:?}");
    }
    let blocked: i64 = dst
        .value("SELECT count(*) FROM videos WHERE moderation_state = 'blocked'")
        .await;
    assert_eq!(blocked, 1);
}

#[tokio::test]
async fn the_readme_inventory_queries_match_the_dry_run() {
    let readme = include_str!("../../../README.md");
    let start = readme.find("<!-- inventory").expect("the inventory table");
    let end = readme.find("<!-- /inventory -->").unwrap();
    let queries: Vec<(String, String)> = readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            (
                cells[0]
                    .trim_start_matches("| ")
                    .trim_matches('`')
                    .to_string(),
                cells[2]
                    .trim_end_matches(" |")
                    .trim_matches('`')
                    .to_string(),
            )
        })
        .collect();
    let src = min_source().await;
    let dst = TestDb::new().await;
    let mut o = options(&src, &dst);
    o.dry_run = true;
    let r = run_with(&profile(), &o).await;
    let keys: BTreeSet<&str> = queries.iter().map(|(k, _)| k.as_str()).collect();
    let stats: BTreeSet<&str> = r
        .stats
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "media")
        .collect();
    assert_eq!(keys, stats, "one query per stats key");
    let c = src.client().await;
    for (key, sql) in &queries {
        let n: i64 = pg_value(&c, sql.as_str()).await;
        assert_eq!(n as u64, r.stats[key].total, "{key}: {sql}");
    }
    assert_eq!(r.stats["playlists"].total, 4, "playlists only");
}
