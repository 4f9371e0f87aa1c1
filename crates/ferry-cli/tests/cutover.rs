//! `ferry cutover` end to end, against real servers only: a PostgreSQL source and target, the
//! media folders, `ferry serve` (health, ready, login), a static file server over the migrated
//! media started here (axum, a real HTTP server), `pg_dump` archives and `ffprobe` on videos
//! made by `ffmpeg`. GO on a consistent move; NO-GO on a deleted target row, a file changed by
//! one byte, a source write after the sync, an HTTP 500 or a wrong JSON shape, a corrupted
//! video; a warning keeps GO; a skipped blocker is NO-GO unless left out; JUnit and HTML parse.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

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

fn ffmpeg_video(path: &Path, seconds: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=duration={seconds}:size=64x48:rate=10"))
        .args(["-pix_fmt", "yuv420p", "-c:v", "mpeg4"])
        .arg(path)
        .status()
        .expect("ffmpeg is installed (Debian/Ubuntu: apt-get install ffmpeg); the playable check is tested with real videos");
    assert!(status.success(), "ffmpeg failed for {}", path.display());
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
    let (summary, junit, html) = (
        f.path("summary.json"),
        f.path("junit.xml"),
        f.path("report.html"),
    );
    let run = f.cutover(&[
        "sync",
        "--spec",
        spec,
        "--summary",
        summary.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("GO: 11 checks, 0 failed, 0 skipped"),
        "{}",
        run.show()
    );
    assert!(run.stdout.contains("cutover window"), "{}", run.show());
    assert!(
        run.stdout.contains("✓ rows (reconcile, blocker)"),
        "{}",
        run.show()
    );
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
    assert!(refused.stderr.contains("--yes"), "{}", refused.show());
    f.cutover(&["check", "--spec", spec, "--only", "reconcile"])
        .expect_code(0);
}

#[test]
fn no_go_on_a_deleted_row_a_changed_byte_and_a_source_write() {
    let f = Fixture::new();
    let spec = f.spec("");
    let spec = spec.to_str().unwrap();
    f.cutover(&["sync", "--spec", spec]).expect_code(0);
    let summary = f.path("summary.json");
    let summary = summary.to_str().unwrap();

    f.target.query("DELETE FROM videos WHERE id = 3");
    let run = f.cutover(&[
        "check",
        "--spec",
        spec,
        "--only",
        "rows",
        "--summary",
        summary,
    ]);
    run.expect_code(1);
    assert!(run.stdout.contains("✗ rows"), "{}", run.show());
    assert!(run.stdout.contains("NO-GO"), "{}", run.show());
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
    let run = f.cutover(&[
        "check",
        "--spec",
        spec,
        "--only",
        "media",
        "--summary",
        summary,
    ]);
    run.expect_code(1);
    let (status, evidence) = status_of(&f.summary(), "files");
    assert_eq!(status, "fail");
    assert!(evidence.contains("1 files differ"), "{evidence}");

    f.source
        .query("UPDATE users SET email = 'bob@example.net', updated_at = now() WHERE id = 2");
    let run = f.cutover(&[
        "check",
        "--spec",
        spec,
        "--only",
        "frozen,rollback",
        "--summary",
        summary,
    ]);
    run.expect_code(1);
    let s = f.summary();
    let (status, evidence) = status_of(&s, "source-frozen");
    assert_eq!(status, "fail");
    assert!(evidence.contains("users: last written"), "{evidence}");
    assert_eq!(status_of(&s, "rollback").0, "fail");
    assert_eq!(s["excluded"].as_array().unwrap().len(), 9, "{s:#}");

    f.source
        .query("INSERT INTO users VALUES (4, 'dan', 'dan@example.org', 'user', now())");
    let run = f.cutover(&[
        "check",
        "--spec",
        spec,
        "--only",
        "source-frozen",
        "--summary",
        summary,
    ]);
    run.expect_code(1);
    assert!(
        status_of(&f.summary(), "source-frozen")
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
    let summary = f.path("summary.json");
    let summary = summary.to_str().unwrap();
    let run = f.cutover(&[
        "check",
        "--spec",
        spec,
        "--only",
        "broken,shape",
        "--summary",
        summary,
    ]);
    run.expect_code(1);
    let s = f.summary();
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
    let warned_path = f.path("warned.toml");
    std::fs::write(&warned_path, warned).unwrap();
    let run = f.cutover(&[
        "check",
        "--spec",
        warned_path.to_str().unwrap(),
        "--only",
        "broken,shape",
    ]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("✗ broken (http, warning)"),
        "{}",
        run.show()
    );
    assert!(
        run.stdout.contains("GO: 2 checks, 2 failed"),
        "{}",
        run.show()
    );
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
    let summary = f.path("summary.json");
    let run = f.cutover(&[
        "check",
        "--spec",
        spec,
        "--only",
        "playable",
        "--summary",
        summary.to_str().unwrap(),
    ]);
    run.expect_code(1);
    let (status, evidence) = status_of(&f.summary(), "playable");
    assert_eq!(status, "fail");
    assert!(evidence.contains("ffprobe cannot read it"), "{evidence}");
}

#[test]
fn skipped_blockers_bad_specs_and_unreachable_services() {
    let f = Fixture::new();
    // No platform URL and no dump: those checks are skipped with the reason, and a skipped
    // blocker is NO-GO unless it is left out.
    let spec = std::fs::read_to_string(f.spec(""))
        .unwrap()
        .lines()
        .filter(|l| {
            !l.starts_with("url = ")
                && !l.starts_with("dump = ")
                && !l.starts_with("media_backup = ")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let bare = f.path("bare.toml");
    std::fs::write(&bare, &spec).unwrap();
    let bare = bare.to_str().unwrap();
    f.cutover(&["sync", "--spec", bare, "--only", "reconcile"])
        .expect_code(0);
    let run = f.cutover(&["check", "--spec", bare, "--only", "health,backup,reconcile"]);
    run.expect_code(1);
    assert!(
        run.stdout
            .contains("- health (http, blocker): skipped: no platform URL"),
        "{}",
        run.show()
    );
    assert!(
        run.stdout
            .contains("- backup (backup, blocker): skipped: no backup named"),
        "{}",
        run.show()
    );
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
    let bad = f.path("bad.toml");
    std::fs::write(&bad, spec.replace("watch_s = 0.3", "watch_seconds = 0.3")).unwrap();
    let run = f.cutover(&["check", "--spec", bad.to_str().unwrap()]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("check 'source-frozen'") && run.stderr.contains("watch_seconds"),
        "{}",
        run.show()
    );
    let run = f.cutover(&["check", "--spec", bare, "--only", "nonsense"]);
    run.expect_code(2);
    assert!(run.stderr.contains("--only nonsense"), "{}", run.show());

    // A platform that does not answer: exit 2.
    let port = ferry_testkit::ports::free_port();
    let down = f.path("down.toml");
    std::fs::write(&down, format!("{spec}\n[[check]]\nname = \"down\"\nkind = \"http\"\nbase = \"http://127.0.0.1:{port}\"\npath = \"/health\"\n")).unwrap();
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
    assert!(
        run.stdout.contains("final pass: profile import"),
        "{}",
        run.show()
    );
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
    // Without a platform URL the http checks are skipped, so NO-GO until left out.
    let run = ferry(dir.path(), &args("check", "health"));
    run.expect_code(1);
    assert!(
        run.stdout.contains("skipped: no platform URL"),
        "{}",
        run.show()
    );
}
