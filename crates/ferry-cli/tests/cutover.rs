//! `ferry cutover` end to end, against real servers only: a PostgreSQL source and target, the
//! media folders, `ferry serve` (health, ready, login), a static file server over the migrated
//! media started here (axum, a real HTTP server), `pg_dump` archives and `ffprobe` on videos
//! made by `ffmpeg`. GO on a consistent move; NO-GO on a deleted target row, a file changed by
//! one byte, a source write after the sync, an HTTP 500 or a wrong JSON shape, a corrupted
//! video; a warning keeps GO; a skipped blocker is NO-GO unless left out; JUnit and HTML parse.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_testkit::job::assert_mentions;
use ferry_testkit::pg::PgDb;
use ferry_testkit::run::{Run, ferry};
use ferry_testkit::serve::{Launch, Server};
use serde_json::Value;

const ADMIN: &str = "cutover-admin";
const ADMIN_PW: &str = "cutover-secret-pw-31";
const PW_ENV: &str = "FERRY_CUTOVER_TEST_PW";

/// A move from a video app's source to its target: databases, media folders, a static server
/// over the target media, and `ferry serve`.
struct Fixture {
    dir: tempfile::TempDir,
    source: PgDb,
    target: PgDb,
    media_from: PathBuf,
    media_to: PathBuf,
    files: String,
    serve: Server,
}

/// `ffmpeg` encoding a test pattern of `seconds` into `out` with the output options `options`.
fn ffmpeg(seconds: u32, options: &[&str], out: &Path) {
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=duration={seconds}:size=64x48:rate=10"))
        .args(["-pix_fmt", "yuv420p"])
        .args(options)
        .arg(out)
        .status()
        .expect("ffmpeg is installed (Debian/Ubuntu: apt-get install ffmpeg); the playable check is tested with real videos");
    assert!(status.success(), "ffmpeg failed for {}", out.display());
}

fn ffmpeg_video(path: &Path, seconds: u32) {
    ffmpeg(seconds, &["-c:v", "mpeg4"], path);
}

/// An HLS set as PeerTube keeps one: a variant playlist with its segments, and the master
/// playlist naming it (written here, as PeerTube writes its own).
fn ffmpeg_hls(dir: &Path, seconds: u32) {
    let segments = dir.join("240-%d.ts");
    ffmpeg(
        seconds,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "10",
            "-f",
            "hls",
            "-hls_time",
            "1",
            "-hls_playlist_type",
            "vod",
            "-hls_segment_filename",
            segments.to_str().unwrap(),
        ],
        &dir.join("240.m3u8"),
    );
    std::fs::write(
        dir.join("master.m3u8"),
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=100000,RESOLUTION=64x48\n240.m3u8\n",
    )
    .unwrap();
}

/// Serves `root` under /static/, a 500 at /broken and a wrong-shaped JSON answer at /shape.
fn static_server(root: PathBuf) -> String {
    use axum::Router;
    use axum::extract::Path as UrlPath;
    use axum::http::StatusCode;
    use axum::routing::get;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Router::new()
                .route(
                    "/static/{*path}",
                    get(move |UrlPath(path): UrlPath<String>| {
                        let file = root.join(path);
                        async move {
                            match std::fs::read(file) {
                                Ok(bytes) => Ok(bytes),
                                Err(_) => Err(StatusCode::NOT_FOUND),
                            }
                        }
                    }),
                )
                .route(
                    "/broken",
                    get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database is down") }),
                )
                .route(
                    "/shape",
                    get(|| async {
                        (
                            [("content-type", "application/json")],
                            r#"{"items": [], "total": 0}"#,
                        )
                    }),
                );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{addr}")
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let media_from = dir.path().join("old-media");
        let media_to = dir.path().join("new-media");
        std::fs::create_dir_all(&media_to).unwrap();
        let source = PgDb::new();
        source.query(
            "CREATE TABLE users (id bigint PRIMARY KEY, username text NOT NULL, email text NOT NULL, \
               role text NOT NULL, updated_at timestamptz NOT NULL);
             CREATE TABLE videos (id bigint PRIMARY KEY, uuid uuid NOT NULL, \
               owner_id bigint NOT NULL REFERENCES users (id), title text NOT NULL, \
               file_path text NOT NULL, thumbnail_path text NOT NULL, size_bytes bigint NOT NULL, \
               duration_s integer NOT NULL, updated_at timestamptz NOT NULL);
             INSERT INTO users VALUES
               (1, 'alice', 'alice@example.org', 'admin', '2026-11-02 10:00:00+00'),
               (2, 'bob', 'bob@example.org', 'user', '2026-11-03 11:30:00+00'),
               (3, 'chloé', 'chloe@example.org', 'user', '2026-11-04 09:15:00+00');",
        );
        let titles = [
            "Bike repair 101",
            "Sourdough at home",
            "Lake at dawn",
            "Board games night",
        ];
        for (i, title) in titles.iter().enumerate() {
            let id = i + 1;
            let uuid = format!("{id:08}-aaaa-4aaa-8aaa-{id:012}");
            let file = format!("web-videos/{uuid}-240.mp4");
            let seconds = (id as u32 % 3) + 1;
            ffmpeg_video(&media_from.join(&file), seconds);
            let thumb = format!("thumbnails/{uuid}.jpg");
            ferry_testkit::files::write_tree(
                &media_from,
                &[(
                    thumb.as_str(),
                    ferry_testkit::files::bytes(id as u64, 2048 + id),
                )],
            );
            let size = std::fs::metadata(media_from.join(&file)).unwrap().len();
            source.query(&format!(
                "INSERT INTO videos VALUES ({id}, '{uuid}', {owner}, '{title}', '{file}', '{thumb}', {size}, {seconds}, \
                 '2026-11-1{id} 08:00:00+00')",
                owner = id % 3 + 1
            ));
        }
        let target = PgDb::new();
        let key = dir.path().join("master.key");
        let store = format!("sqlite://{}", dir.path().join("jobs.db").display());
        let serve = Launch {
            bin: &ferry_testkit::run::ferry_bin(),
            dir: dir.path(),
            store: &store,
            key: &key,
            extra: &[],
            admin_user: ADMIN,
            admin_password: ADMIN_PW,
        }
        .start();
        let files = static_server(media_to.clone());
        Self {
            dir,
            source,
            target,
            media_from,
            media_to,
            files,
            serve,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The spec: every kind, `extra` appended (more checks).
    fn spec(&self, extra: &str) -> PathBuf {
        let dump = self.path("source.dump");
        if !dump.exists() {
            let status = Command::new("pg_dump")
                .args(["-Fc", "-f"])
                .arg(&dump)
                .arg(&self.source.url)
                .status()
                .expect("pg_dump is installed");
            assert!(status.success());
        }
        let text = format!(
            r#"
[source]
database = "{source}"
media = "file://{from}"
[target]
database = "{target}"
media = "file://{to}"
url = "{serve}"

[vars]
video = "SELECT json_build_object('uuid', uuid, 'path', file_path, 'size', size_bytes)::text FROM videos ORDER BY random() LIMIT 1"

[[check]]
name = "rows"
kind = "reconcile"

[[check]]
name = "files"
kind = "media"
referenced_sql = "SELECT file_path FROM videos UNION ALL SELECT thumbnail_path FROM videos"

[[check]]
name = "source-frozen"
kind = "frozen"
watermarks = {{ users = "updated_at", videos = "updated_at" }}
watch_s = 0.3

[[check]]
name = "health"
kind = "http"
path = "/health"

[[check]]
name = "ready"
kind = "http"
path = "/ready"
max_latency_ms = 5000

[[check]]
name = "login"
kind = "http"
method = "POST"
path = "/api/v1/auth/login"
json_body = {{ username = "{ADMIN}", password = "{{env.{PW_ENV}}}" }}
json = [{{ at = "data.access_token", non_empty = true }}, {{ at = "/data/token_type", equals = "Bearer" }}]

[[check]]
name = "jobs-api"
kind = "http"
path = "/api/v1/admin/migrations"
headers = {{ Authorization = "Bearer {{login.data.access_token}}" }}

[[check]]
name = "video-file"
kind = "http"
base = "{files}"
path = "/static/{{video.path}}"
header_equals = {{ content-length = "{{video.size}}" }}

[[check]]
name = "backup"
kind = "backup"
dump = "{dump}"
media_backup = "file://{from}"

[[check]]
name = "rollback"
kind = "rollback"

[[check]]
name = "playable"
kind = "playable"
sample = 3
files_sql = "SELECT json_build_object('file', file_path, 'duration', duration_s)::text FROM videos"
{extra}
"#,
            source = self.source.url,
            target = self.target.url,
            from = self.media_from.display(),
            to = self.media_to.display(),
            serve = self.serve.base(),
            files = self.files,
            dump = dump.display(),
        );
        let path = self.path("cutover.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn cutover(&self, args: &[&str]) -> Run {
        let mut all = vec!["cutover"];
        all.extend_from_slice(args);
        if args.first() == Some(&"sync") {
            // The copy job's final pass erases and re-copies the target's tables.
            all.push("--yes");
        }
        // SAFETY: the variable is set before any thread reads the environment for it, and
        // every test sets the same value.
        unsafe { std::env::set_var(PW_ENV, ADMIN_PW) };
        ferry(self.dir.path(), &all)
    }

    /// `ferry cutover COMMAND --spec SPEC` writing every output file; the run and the files
    /// (summary, JUnit, HTML).
    fn cutover_with_files(&self, command: &str, spec: &str) -> (Run, [PathBuf; 3]) {
        let files = ["summary.json", "junit.xml", "report.html"].map(|n| self.path(n));
        let mut args = vec![command, "--spec", spec];
        for (flag, file) in ["--summary", "--junit", "--html"].iter().zip(&files) {
            args.extend([*flag, file.to_str().unwrap()]);
        }
        (self.cutover(&args), files)
    }

    /// `ferry cutover COMMAND --spec SPEC --only ONLY --summary …`, exiting `code`; the summary.
    fn only(&self, command: &str, spec: &str, only: &str, code: i32) -> Value {
        self.run_only(command, spec, only).expect_code(code);
        self.summary()
    }

    /// `ferry cutover COMMAND --spec SPEC --only ONLY --summary` to the fixture's summary file.
    fn run_only(&self, command: &str, spec: &str, only: &str) -> Run {
        let summary = self.path("summary.json");
        self.cutover(&[
            command,
            "--spec",
            spec,
            "--only",
            only,
            "--summary",
            summary.to_str().unwrap(),
        ])
    }

    /// The text of the fixture's spec with no extra checks, for a test to alter.
    fn spec_text(&self) -> String {
        std::fs::read_to_string(self.spec("")).unwrap()
    }

    /// Writes `text` as the spec file `name` in the fixture's folder; returns its path.
    fn write_spec(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn summary(&self) -> Value {
        let text = std::fs::read_to_string(self.path("summary.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

fn status_of(summary: &Value, name: &str) -> (String, String) {
    let check = summary["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {summary:#}"));
    (
        check["status"].as_str().unwrap().to_string(),
        check["evidence"].as_str().unwrap().to_string(),
    )
}

/// Parses `xml` fully; returns the names of the elements.
fn parse_xml(xml: &str) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut names = Vec::new();
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                names.push(e.name().into_inner().to_string());
            }
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "not well-formed XML at {}: {e}\n{xml}",
                reader.buffer_position()
            ),
        }
    }
    names
}

#[test]
fn sync_then_check_is_go_with_every_output_and_no_secret() {
    let f = Fixture::new();
    let spec = f.spec("");
    let spec = spec.to_str().unwrap();
    let (run, [summary, junit, html]) = f.cutover_with_files("sync", spec);
    run.expect_code(0);
    run.expect_stdout("GO: 11 checks, 0 failed, 0 skipped");
    run.expect_stdout("cutover window");
    run.expect_stdout("✓ rows (reconcile, blocker)");
    assert!(
        f.path("cutover.toml.state.json").is_file(),
        "sync records the source's state"
    );
    let s = f.summary();
    assert_eq!(s["verdict"], "GO");
    assert!(s["window_s"].as_f64().unwrap() > 0.0);
    assert_eq!(
        s["sync"]["files"], 8,
        "4 videos and 4 thumbnails copied: {s:#}"
    );
    for c in s["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "pass", "{c:#}");
        assert!(c["duration_s"].as_f64().is_some());
    }
    assert!(status_of(&s, "rows").1.contains("2 tables"), "{s:#}");
    assert!(status_of(&s, "files").1.contains("8 files"), "{s:#}");
    assert!(
        status_of(&s, "playable")
            .1
            .contains("3 files of 3 sampled videos (of 4) decode"),
        "{s:#}"
    );
    assert!(status_of(&s, "video-file").1.contains("→ 200"), "{s:#}");
    assert_eq!(s["reconciliation"]["rows"].as_array().unwrap().len(), 2);
    assert!(!s["rollback_steps"].as_array().unwrap().is_empty());

    let junit = std::fs::read_to_string(&junit).unwrap();
    let names = parse_xml(&junit);
    assert_eq!(names.iter().filter(|n| *n == "testcase").count(), 11);
    assert!(!names.contains(&"failure".to_string()));
    let html = std::fs::read_to_string(&html).unwrap();
    let names = parse_xml(html.trim_start_matches("<!DOCTYPE html>\n"));
    assert!(names.contains(&"table".to_string()));
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "no external assets"
    );
    assert!(html.contains("id=\"verdict\">GO<"), "{html}");

    // Secrets never appear: the password, nor the token the login returned.
    let everything = format!(
        "{}{}{}{}{}",
        run.stdout,
        run.stderr,
        std::fs::read_to_string(&summary).unwrap(),
        junit,
        html
    );
    assert!(!everything.contains(ADMIN_PW));
    assert!(!everything.contains("Bearer ey") && !everything.contains("access_token\":"));

    // The same spec checked again (no sync) is still GO; --only narrows it.
    f.cutover(&["check", "--spec", spec, "--only", "reconcile,media"])
        .expect_code(0);

    // The copy job's final pass erases the target's tables: without --yes and with no
    // terminal to ask on, it is refused and the target keeps its rows.
    let refused = ferry(f.dir.path(), &["cutover", "sync", "--spec", spec]);
    assert_ne!(refused.code, 0, "{}", refused.show());
    refused.expect_stderr("--yes");
    f.cutover(&["check", "--spec", spec, "--only", "reconcile"])
        .expect_code(0);
}

#[test]
fn no_go_on_a_deleted_row_a_changed_byte_and_a_source_write() {
    let f = Fixture::new();
    let spec = f.spec("");
    let spec = spec.to_str().unwrap();
    f.cutover(&["sync", "--spec", spec]).expect_code(0);

    f.target.query("DELETE FROM videos WHERE id = 3");
    let run = f.run_only("check", spec, "rows");
    run.expect_code(1);
    run.expect_stdout("✗ rows");
    run.expect_stdout("NO-GO");
    let (status, evidence) = status_of(&f.summary(), "rows");
    assert_eq!(status, "fail");
    assert!(
        evidence.contains("videos: 4 rows in the source, 3 in the target; 1 missing"),
        "{evidence}"
    );

    let file = f.media_to.join(
        f.source
            .scalar("SELECT thumbnail_path FROM videos WHERE id = 2")
            .unwrap(),
    );
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let s = f.only("check", spec, "media", 1);
    let (status, evidence) = status_of(&s, "files");
    assert_eq!(status, "fail");
    assert!(evidence.contains("1 files differ"), "{evidence}");

    f.source
        .query("UPDATE users SET email = 'bob@example.net', updated_at = now() WHERE id = 2");
    let s = f.only("check", spec, "frozen,rollback", 1);
    let (status, evidence) = status_of(&s, "source-frozen");
    assert_eq!(status, "fail");
    assert!(evidence.contains("users: last written"), "{evidence}");
    assert_eq!(status_of(&s, "rollback").0, "fail");
    assert_eq!(s["excluded"].as_array().unwrap().len(), 9, "{s:#}");

    f.source
        .query("INSERT INTO users VALUES (4, 'dan', 'dan@example.org', 'user', now())");
    let s = f.only("check", spec, "source-frozen", 1);
    assert!(
        status_of(&s, "source-frozen")
            .1
            .contains("users: 4 rows now, 3 in the last sync")
    );
}

#[test]
fn http_500_and_wrong_shape_fail_blockers_and_a_warning_keeps_go() {
    let f = Fixture::new();
    let broken = format!(
        "[[check]]\nname = \"broken\"\nkind = \"http\"\nbase = \"{0}\"\npath = \"/broken\"\n\
         [[check]]\nname = \"shape\"\nkind = \"http\"\nbase = \"{0}\"\npath = \"/shape\"\n\
         json = [{{ at = \"data\", min_count = 1 }}]\n",
        f.files
    );
    let spec = f.spec(&broken);
    let spec = spec.to_str().unwrap();
    f.cutover(&["sync", "--spec", spec, "--only", "reconcile"])
        .expect_code(0);
    let s = f.only("check", spec, "broken,shape", 1);
    let (status, evidence) = status_of(&s, "broken");
    assert_eq!(status, "fail");
    assert!(
        evidence.contains("GET /broken answered 500, expected 200"),
        "{evidence}"
    );
    let (status, evidence) = status_of(&s, "shape");
    assert_eq!(status, "fail");
    assert!(evidence.contains("data: not a list"), "{evidence}");

    // The same failures as warnings keep GO, and still show as ✗.
    let warned = std::fs::read_to_string(spec)
        .unwrap()
        .replace(
            "path = \"/broken\"",
            "path = \"/broken\"\nseverity = \"warning\"",
        )
        .replace(
            "path = \"/shape\"",
            "path = \"/shape\"\nseverity = \"warning\"",
        );
    let warned_path = f.write_spec("warned.toml", &warned);
    let run = f.cutover(&[
        "check",
        "--spec",
        warned_path.to_str().unwrap(),
        "--only",
        "broken,shape",
    ]);
    run.expect_code(0);
    run.expect_stdout("✗ broken (http, warning)");
    run.expect_stdout("GO: 2 checks, 2 failed");
}

#[test]
fn a_corrupted_video_is_not_playable() {
    let f = Fixture::new();
    let spec = f.spec("");
    let spec = spec.to_str().unwrap();
    f.cutover(&["sync", "--spec", spec, "--only", "playable"])
        .expect_code(0);
    for id in 1..=4 {
        let file = f.media_to.join(
            f.source
                .scalar(&format!("SELECT file_path FROM videos WHERE id = {id}"))
                .unwrap(),
        );
        std::fs::write(&file, b"this is not a video at all, just text").unwrap();
    }
    let s = f.only("check", spec, "playable", 1);
    let (status, evidence) = status_of(&s, "playable");
    assert_eq!(status, "fail");
    assert!(evidence.contains("ffprobe cannot read it"), "{evidence}");
}

#[test]
fn playable_probes_hls_master_playlists_and_a_broken_one_fails() {
    let f = Fixture::new();
    for id in 1..=4u32 {
        let uuid = f
            .source
            .scalar(&format!("SELECT uuid FROM videos WHERE id = {id}"))
            .unwrap();
        ffmpeg_hls(
            &f.media_from.join(format!("streaming-playlists/hls/{uuid}")),
            id % 3 + 1,
        );
    }
    let hls = "[[check]]\nname = \"hls\"\nkind = \"playable\"\nsample = 4\n\
               files_sql = \"SELECT json_build_object('file', file_path, 'duration', duration_s, \
               'hls', 'streaming-playlists/hls/' || uuid || '/master.m3u8')::text FROM videos\"\n";
    let spec = f.spec(hls);
    let spec = spec.to_str().unwrap();
    // The final pass copies the playlists and segments with the other files.
    let (status, evidence) = status_of(&f.only("sync", spec, "hls", 0), "hls");
    assert_eq!(status, "pass");
    assert!(
        evidence
            .contains("8 files of 4 sampled videos (of 4) decode (4 of them HLS master playlists)"),
        "{evidence}"
    );
    // One video's segments broken in the target: its playlist no longer plays.
    let uuid = f
        .source
        .scalar("SELECT uuid FROM videos WHERE id = 2")
        .unwrap();
    let dir = f.media_to.join(format!("streaming-playlists/hls/{uuid}"));
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ts") {
            std::fs::write(&path, b"not a video segment").unwrap();
        }
    }
    let (status, evidence) = status_of(&f.only("check", spec, "hls", 1), "hls");
    assert_eq!(status, "fail");
    assert!(
        evidence.contains(&format!("{uuid}/master.m3u8: ffprobe cannot read it")),
        "{evidence}"
    );
}

#[test]
fn skipped_blockers_bad_specs_and_unreachable_services() {
    let f = Fixture::new();
    // No platform URL and no dump: those checks are skipped with the reason, and a skipped
    // blocker is NO-GO unless it is left out.
    let spec = f
        .spec_text()
        .lines()
        .filter(|l| {
            !l.starts_with("url = ")
                && !l.starts_with("dump = ")
                && !l.starts_with("media_backup = ")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let bare = f.write_spec("bare.toml", &spec);
    let bare = bare.to_str().unwrap();
    f.cutover(&["sync", "--spec", bare, "--only", "reconcile"])
        .expect_code(0);
    let run = f.cutover(&["check", "--spec", bare, "--only", "health,backup,reconcile"]);
    run.expect_code(1);
    run.expect_stdout("- health (http, blocker): skipped: no platform URL");
    run.expect_stdout("- backup (backup, blocker): skipped: no backup named");
    f.cutover(&[
        "check",
        "--spec",
        bare,
        "--only",
        "health,backup,reconcile",
        "--skip",
        "http,backup",
    ])
    .expect_code(0);

    // Bad specs: exit 2 before connecting, naming the problem.
    let bad = f.write_spec(
        "bad.toml",
        &spec.replace("watch_s = 0.3", "watch_seconds = 0.3"),
    );
    let run = f.cutover(&["check", "--spec", bad.to_str().unwrap()]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("check 'source-frozen'") && run.stderr.contains("watch_seconds"),
        "{}",
        run.show()
    );
    let run = f.cutover(&["check", "--spec", bare, "--only", "nonsense"]);
    run.expect_code(2);
    run.expect_stderr("--only nonsense");

    // A platform that does not answer: exit 2.
    let port = ferry_testkit::ports::free_port();
    let down = f.write_spec("down.toml", &format!("{spec}\n[[check]]\nname = \"down\"\nkind = \"http\"\nbase = \"http://127.0.0.1:{port}\"\npath = \"/health\"\n"));
    let run = f.cutover(&["check", "--spec", down.to_str().unwrap(), "--only", "down"]);
    run.expect_code(2);
    assert!(
        run.stdout.contains("✗ down") && run.stdout.contains("cannot reach"),
        "{}",
        run.show()
    );
}

#[test]
fn the_peertube_preset_syncs_the_profile_import_and_reconciles_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = PgDb::new();
    source.query(ferry_testkit::peertube::MIN_SCHEMA);
    source.query(ferry_testkit::peertube::DATA);
    let target = PgDb::new();
    let state = dir.path().join("pt.state.json");
    let summary = dir.path().join("summary.json");
    let args = |command: &str, only: &str| {
        vec![
            "cutover".to_string(),
            command.into(),
            "--profile".into(),
            "peertube".into(),
            "--source".into(),
            source.url.clone(),
            "--target".into(),
            target.url.clone(),
            "--state".into(),
            state.display().to_string(),
            "--only".into(),
            only.into(),
            "--summary".into(),
            summary.display().to_string(),
        ]
    };
    let run = ferry(dir.path(), &args("sync", "reconcile,frozen,rollback"));
    run.expect_code(0);
    run.expect_stdout("final pass: profile import");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let (status, evidence) = status_of(&s, "rows");
    assert_eq!(status, "pass", "{s:#}");
    assert!(
        evidence.contains("entities, the import's verification"),
        "{evidence}"
    );
    for entity in ferry_testkit::peertube::ENTITIES {
        assert!(
            s["reconciliation"]["rows"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == entity && r["matched"] == true),
            "{entity}: {s:#}"
        );
    }
    // A row deleted in the target after the sync: reconcile verifies again now and says so.
    target.query("DELETE FROM comments WHERE id = (SELECT id FROM comments ORDER BY id LIMIT 1)");
    let run = ferry(dir.path(), &args("check", "reconcile"));
    run.expect_code(1);
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let (status, evidence) = status_of(&s, "rows");
    assert_eq!(status, "fail", "{s:#}");
    assert!(
        evidence.starts_with("comments: ") && evidence.contains("1 missing"),
        "{evidence}"
    );
    // A PeerTube write after the sync: frozen and rollback say so.
    source.query(
        "UPDATE video SET name = 'renamed after the sync', \"updatedAt\" = now() WHERE id = 1",
    );
    let run = ferry(dir.path(), &args("check", "frozen,rollback"));
    run.expect_code(1);
    assert!(
        run.stdout.contains("✗ source-frozen") && run.stdout.contains("video: last written"),
        "{}",
        run.show()
    );
    // playable probes each video's web video and its HLS master playlist (the streaming
    // playlist the import carried); the fixture has no files on disk, so both fail, by name.
    let mut playable = args("check", "playable");
    playable.extend([
        "--media-to".into(),
        format!("file://{}", dir.path().display()),
    ]);
    ferry(dir.path(), &playable).expect_code(1);
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let details = s["checks"][0]["details"].to_string();
    assert!(
        details.contains("-master.m3u8: ffprobe cannot read it")
            && details.contains(".mp4: ffprobe cannot read it"),
        "{s:#}"
    );
    // Without a platform URL the http checks are skipped, so NO-GO until left out.
    let run = ferry(dir.path(), &args("check", "health"));
    run.expect_code(1);
    run.expect_stdout("skipped: no platform URL");
}

// ---------------------------------------------------------------------------------------------
// The same checklist as a `ferry serve` job

/// An admin session on the fixture's `ferry serve`; remembers every answer for the leak check.
struct Admin {
    base: String,
    http: reqwest::blocking::Client,
    token: String,
    seen: std::cell::RefCell<String>,
}

impl Admin {
    fn login(serve: &Server) -> Self {
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap();
        let base = serve.base();
        let answer: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": ADMIN, "password": ADMIN_PW}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let token = answer["data"]["access_token"].as_str().unwrap().to_string();
        Self {
            base,
            http,
            token,
            seen: std::cell::RefCell::new(String::new()),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        self.seen.borrow_mut().push_str(&text);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Starts a cutover job (`step`: check or sync); its id.
    fn start(&self, step: &str, body: &Value) -> String {
        let (status, answer) =
            self.call("POST", &format!("/api/v1/admin/cutover/{step}"), Some(body));
        assert_eq!(status, 201, "{answer:#}");
        assert_eq!(answer["data"]["kind"], format!("cutover-{step}"));
        answer["data"]["id"].as_str().unwrap().to_string()
    }

    /// Polls a job until it is finished; the job.
    fn finished(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let (_, job) = self.call("GET", &format!("/api/v1/admin/migrations/{id}"), None);
            let job = job["data"].clone();
            if ["completed", "failed", "cancelled"].contains(&job["status"].as_str().unwrap()) {
                return job;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job {id} did not finish: {job:#}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

/// The fixture's spec as the JSON the API takes (the `cutover.toml` structure), without its
/// `state` (the server keeps it).
fn spec_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let spec: toml::Value = toml::from_str(&text).unwrap();
    serde_json::to_value(spec).unwrap()
}

#[test]
fn serve_jobs_sync_and_check_go_then_no_go_without_leaking_the_password() {
    let f = Fixture::new();
    let spec = spec_json(&f.spec(""));
    let api = Admin::login(&f.serve);
    let secrets = serde_json::json!({ PW_ENV: ADMIN_PW });

    // sync of a copy spec erases the target's tables: refused without force.
    let (status, answer) = api.call(
        "POST",
        "/api/v1/admin/cutover/sync",
        Some(&serde_json::json!({"spec": spec, "secrets": secrets})),
    );
    assert_eq!(status, 400, "{answer:#}");
    assert!(
        answer["error"].as_str().unwrap().starts_with("force:"),
        "{answer:#}"
    );
    // A bad spec is a 400 naming the check and the parameter, before any job exists.
    let mut bad = spec.clone();
    bad["check"][2]["watch_seconds"] = serde_json::json!(1);
    let (status, answer) = api.call(
        "POST",
        "/api/v1/admin/cutover/check",
        Some(&serde_json::json!({"spec": bad})),
    );
    assert_eq!(status, 400);
    let e = answer["error"].as_str().unwrap();
    assert_mentions(e, &["check 'source-frozen'", "watch_seconds"]);
    let (status, _) = api.call(
        "POST",
        "/api/v1/admin/cutover/nope",
        Some(&serde_json::json!({"spec": spec})),
    );
    assert_eq!(status, 404);

    // The final pass, then every check: GO, with the window.
    let id = api.start(
        "sync",
        &serde_json::json!({"spec": spec, "secrets": secrets, "force": true}),
    );
    let job = api.finished(&id);
    assert_eq!(job["status"], "completed", "{job:#}");
    let s = &job["cutover"];
    assert_eq!(s["verdict"], "GO", "{s:#}");
    assert!(s["window_s"].as_f64().unwrap() > 0.0, "{s:#}");
    assert_eq!(s["sync"]["files"], 8, "{s:#}");
    assert_eq!(s["checks"].as_array().unwrap().len(), 11);
    for c in s["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "pass", "{c:#}");
        for field in ["name", "kind", "severity", "evidence", "duration_s"] {
            assert!(!c[field].is_null(), "{field} in {c:#}");
        }
    }
    assert!(job["error_message"].is_null(), "{job:#}");

    // A check job reads the state the sync job recorded (frozen, rollback): still GO.
    let id = api.start(
        "check",
        &serde_json::json!({"spec": spec, "secrets": secrets}),
    );
    let job = api.finished(&id);
    assert_eq!(job["cutover"]["verdict"], "GO", "{job:#}");
    assert_eq!(status_of(&job["cutover"], "source-frozen").0, "pass");

    // One row deleted in the target: NO-GO, the evidence says which, the message names it.
    f.target.query("DELETE FROM videos WHERE id = 3");
    let id = api.start(
        "check",
        &serde_json::json!({"spec": spec, "only": ["reconcile", "http"], "secrets": secrets}),
    );
    let job = api.finished(&id);
    assert_eq!(job["status"], "completed", "{job:#}");
    let s = &job["cutover"];
    assert_eq!(s["verdict"], "NO-GO", "{s:#}");
    let (status, evidence) = status_of(s, "rows");
    assert_eq!(status, "fail");
    assert!(
        evidence.contains("videos: 4 rows in the source, 3 in the target; 1 missing"),
        "{evidence}"
    );
    assert_eq!(status_of(s, "login").0, "pass", "{s:#}");
    assert_eq!(job["error_message"], "NO-GO: rows failed", "{job:#}");
    assert_eq!(s["excluded"].as_array().unwrap().len(), 5, "{s:#}");

    // A job reads only its own secrets and the server's FERRY_CUTOVER_* variables: a
    // placeholder naming another server variable is not filled (the check is skipped).
    let mut other = spec.clone();
    other["check"][5]["json_body"]["password"] = serde_json::json!("{env.HOME}");
    let id = api.start(
        "check",
        &serde_json::json!({"spec": other, "only": ["login"]}),
    );
    let job = api.finished(&id);
    let (status, evidence) = status_of(&job["cutover"], "login");
    assert_eq!(status, "skipped", "{job:#}");
    assert!(evidence.contains("FERRY_CUTOVER_*"), "{evidence}");

    // The password, and the token the login returned, appear in no answer and no log line.
    let (_, list) = api.call("GET", "/api/v1/admin/migrations", None);
    let everything = format!("{}{list}{}", api.seen.borrow(), f.serve.output());
    assert!(!everything.contains(ADMIN_PW), "the admin password leaked");
    assert!(!everything.contains("access_token\":") && !everything.contains(&api.token));
}

#[test]
fn a_serve_cutover_job_can_be_cancelled() {
    let f = Fixture::new();
    let mut spec = spec_json(&f.spec(""));
    // The frozen check watches the source for a minute: long enough to cancel it.
    spec["check"][2]["watch_s"] = serde_json::json!(60);
    let api = Admin::login(&f.serve);
    let id = api.start(
        "check",
        &serde_json::json!({"spec": spec, "only": ["frozen"]}),
    );
    let started = std::time::Instant::now();
    assert!(ferry_testkit::poll_until(
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(100),
        || api
            .call("GET", &format!("/api/v1/admin/migrations/{id}"), None)
            .1["data"]["status"]
            == "running"
    ));
    let (status, _) = api.call("DELETE", &format!("/api/v1/admin/migrations/{id}"), None);
    assert_eq!(status, 204);
    let job = api.finished(&id);
    assert_eq!(job["status"], "cancelled", "{job:#}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the watch was not cut short"
    );
}

#[test]
fn a_bad_spec_still_writes_the_files_asked_for_with_the_error() {
    let f = Fixture::new();
    let bad = f.write_spec(
        "bad.toml",
        &f.spec_text()
            .replace("kind = \"media\"", "kind = \"medias\""),
    );
    let (run, [_, junit, html]) = f.cutover_with_files("check", bad.to_str().unwrap());
    run.expect_code(2);
    run.expect_stderr("unknown kind 'medias'");
    let s = f.summary();
    assert_eq!(s["verdict"], "NO-GO", "{s:#}");
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .contains("unknown kind 'medias'"),
        "{s:#}"
    );
    let (status, evidence) = status_of(&s, "spec");
    assert_eq!(status, "fail");
    assert!(evidence.contains("medias"), "{evidence}");
    let junit = std::fs::read_to_string(&junit).unwrap();
    let names = parse_xml(&junit);
    assert!(names.contains(&"failure".to_string()), "{junit}");
    assert!(junit.contains("medias"), "{junit}");
    let html = std::fs::read_to_string(&html).unwrap();
    parse_xml(html.trim_start_matches("<!DOCTYPE html>\n"));
    assert!(
        html.contains("id=\"verdict\">NO-GO<") && html.contains("medias"),
        "{html}"
    );
}
