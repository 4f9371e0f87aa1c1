//! HTTP-level tests of `ferry serve` against the real binary, a real PostgreSQL and real
//! SQLite files: a copy job's whole lifecycle (with both job stores), three servers sharing one
//! job's chunks, two sharing a migrate job's rows (live stats counting both) and one taking
//! over a migrate job of a killed server, a migrate job, dry run, cancel, the
//! 400/401/403/404/409/413/415 paths, restart after kill -9, SIGTERM, wrong master key, the
//! login slow-down (parallel guesses, many names, two servers sharing a store), token expiry and
//! revocation, private store files, and credentials never leaked.

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{
    BAD_UTF8_SQL, PgDb, assert_mentions, min_source_blocking, sqlite_url, with_password, write_tree,
};
use ferry_testkit::serve::{Launch, Server};
use serde_json::{Value, json};

const ADMIN: &str = "admin";
const ADMIN_PW: &str = "admin-password-1";
/// Rows in the large sources: enough for a copy to last several stats intervals, so a test
/// can act while it runs.
const BIG: i64 = 1_000_000;

// ---------------------------------------------------------------------------------------------
// The server process

/// Starts `ferry serve` on a free port; `Err((exit code, stderr))` when it exits instead.
fn try_start(dir: &Path, store: &str, key: &Path, extra: &[&str]) -> Result<Server, (i32, String)> {
    launch(dir, store, key, extra).try_start()
}

fn start(dir: &Path, store: &str, key: &Path, extra: &[&str]) -> Server {
    launch(dir, store, key, extra).start()
}

fn launch<'a>(dir: &'a Path, store: &'a str, key: &'a Path, extra: &'a [&'a str]) -> Launch<'a> {
    Launch {
        bin: Path::new(env!("CARGO_BIN_EXE_ferry")),
        dir,
        store,
        key,
        extra,
        admin_user: ADMIN,
        admin_password: ADMIN_PW,
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// A client that remembers every response body (for the leak checks).
struct Api {
    base: String,
    http: reqwest::blocking::Client,
    token: Option<String>,
    seen: Mutex<String>,
}

impl Api {
    fn new(server: &Server) -> Self {
        Self::from_address(server, None)
    }

    /// A client whose connections come from `local` (any of 127.0.0.0/8 reaches the server
    /// on 127.0.0.1, so a test can play several client addresses).
    fn from_address(server: &Server, local: Option<IpAddr>) -> Self {
        Self {
            base: format!("http://{}", server.url),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .local_address(local)
                .build()
                .unwrap(),
            token: None,
            seen: Mutex::new(String::new()),
        }
    }

    fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, String) {
        let typed = body.map(|b| ("application/json", b));
        let (status, _, text) = self.send(method, path, token, typed);
        (status, text)
    }

    /// A request with the body (if any) under the given Content-Type; the status, the
    /// Retry-After header and the body.
    fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> (u16, Option<String>, String) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some((content_type, b)) = body {
            if !content_type.is_empty() {
                req = req.header("content-type", content_type);
            }
            req = req.body(b);
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let text = resp.text().unwrap_or_default();
        self.seen.lock().unwrap().push_str(&text);
        (status, retry_after, text)
    }

    /// One login attempt: the status and how long it took.
    fn try_login(&self, user: &str, password: &str) -> (u16, Duration) {
        let started = Instant::now();
        let (status, _) = self.call(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": user, "password": password})),
        );
        (status, started.elapsed())
    }

    /// A request with the logged-in token; the body parsed (Null when empty).
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, text) = self.raw(
            method,
            path,
            self.token.as_deref(),
            body.map(|b| b.to_string().into_bytes()),
        );
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
        };
        (status, value)
    }

    fn login_as(&mut self, user: &str, password: &str) {
        let (status, body) = self.call(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": user, "password": password})),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["success"], true);
        assert_eq!(body["data"]["token_type"], "Bearer");
        assert!(body["data"]["expires_in"].as_u64().unwrap() > 0);
        self.token = Some(body["data"]["access_token"].as_str().unwrap().to_string());
    }

    fn login(server: &Server) -> Self {
        let mut api = Self::new(server);
        api.login_as(ADMIN, ADMIN_PW);
        api
    }

    /// Starts a job; asserts 201 and returns it.
    fn start(&self, kind: &str, body: Value) -> Value {
        let (status, resp) = self.call(
            "POST",
            &format!("/api/v1/admin/migrations/{kind}"),
            Some(body),
        );
        assert_eq!(status, 201, "{resp}");
        assert_eq!(resp["success"], true);
        resp["data"].clone()
    }

    fn job(&self, id: &str) -> Value {
        let (status, resp) = self.call("GET", &format!("/api/v1/admin/migrations/{id}"), None);
        assert_eq!(status, 200, "{resp}");
        resp["data"].clone()
    }

    /// Waits for `job` (as [`Api::start`] returned it) to end; returns it.
    fn finish(&self, job: &Value, within: Duration) -> Value {
        self.wait(job["id"].as_str().unwrap(), within, finished)
    }

    /// [`Api::finish`], asserting the job completed.
    fn complete(&self, job: &Value, within: Duration) -> Value {
        let done = self.finish(job, within);
        assert_eq!(done["status"], "completed", "{done}");
        done
    }

    /// Polls a job until `done` says so; panics after `within`.
    fn wait(&self, id: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let job = self.job(id);
            if done(&job) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job did not get there in {within:?}: {job}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Runs a `ferry admin` command; asserts it succeeded.
fn admin_command(cmd: &mut Command) {
    assert_succeeded(&cmd.output().unwrap());
}

fn assert_succeeded(run: &std::process::Output) {
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

fn finished(job: &Value) -> bool {
    matches!(
        job["status"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

fn migrated(job: &Value, table: &str) -> i64 {
    job["stats"][table]["migrated"].as_i64().unwrap_or(0)
}

/// Starts a copy of `source` into `target` slow enough (batches of 1000, one worker) for a test
/// to act while it runs; returns the job.
fn start_slow_copy(api: &Api, source: &Path, target: &PgDb) -> Value {
    api.start(
        "copy",
        json!({"source_url": sqlite_url(source), "target_url": target.url, "batch_size": 1000, "workers": 1}),
    )
}

/// [`start_slow_copy`], returning the job's id.
fn slow_copy_id(api: &Api, source: &Path, target: &PgDb) -> String {
    start_slow_copy(api, source, target)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A server on `store` running a slow copy of a big SQLite source into a throwaway PostgreSQL
/// database: where the lifecycle, cancel, kill and shutdown tests start. Fields drop in the
/// order the tests' own variables did (the job's handles first, the databases last).
struct SlowJob {
    id: String,
    job: Value,
    api: Api,
    server: Server,
    target: PgDb,
    source: PathBuf,
}

fn slow_job(s: &Setup, store: &str) -> SlowJob {
    let source = big_source(&s.path("src.db"), BIG);
    let target = PgDb::new();
    let server = start(s.dir.path(), store, &s.key, &[]);
    let api = Api::login(&server);
    let job = start_slow_copy(&api, &source, &target);
    let id = job["id"].as_str().unwrap().to_string();
    SlowJob {
        id,
        job,
        api,
        server,
        target,
        source,
    }
}

/// Waits until job `id` has copied rows into `items` (or ended); returns it.
fn wait_copying(api: &Api, id: &str) -> Value {
    api.wait(id, Duration::from_secs(120), |j| {
        migrated(j, "items") > 0 || finished(j)
    })
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// An SQLite file with `rows` rows in `items`.
fn big_source(path: &Path, rows: i64) -> PathBuf {
    ferry_testkit::sqlite::items_db(path, rows)
}

struct Setup {
    dir: tempfile::TempDir,
    key: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    Setup { dir, key }
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn sqlite_store(&self) -> String {
        format!("sqlite://{}", self.path("jobs.db").display())
    }
}

fn target_count(db: &PgDb) -> i64 {
    if !db.tables().contains(&"items".to_string()) {
        return 0;
    }
    db.scalar("SELECT count(*) FROM items")
        .unwrap()
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// create → (validating) → running → completed, stats growing while it runs.
fn lifecycle(store: &str, s: &Setup) {
    let SlowJob {
        source,
        target,
        server: _server,
        api,
        job,
        id,
    } = slow_job(s, store);
    for field in [
        "id",
        "admin_user_id",
        "kind",
        "source_host",
        "status",
        "dry_run",
        "stats",
        "error_message",
        "created_at",
        "updated_at",
        "started_at",
        "finished_at",
    ] {
        assert!(job.get(field).is_some(), "job lacks {field}: {job}");
    }
    assert_eq!(job["status"], "pending");
    assert_eq!(job["kind"], "copy");
    assert_eq!(job["dry_run"], false);
    assert_eq!(job["source_host"], source.display().to_string());
    assert!(job.get("source_url").is_none() && job.get("target_url").is_none());

    let order = ["pending", "validating", "running", "completed"];
    let mut seen: Vec<String> = Vec::new();
    let mut growing: Vec<i64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    let last = loop {
        let job = api.job(&id);
        let status = job["status"].as_str().unwrap().to_string();
        assert!(order.contains(&status.as_str()), "unexpected status: {job}");
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        let m = migrated(&job, "items");
        if status == "running" && m > 0 && m < BIG && growing.last() != Some(&m) {
            growing.push(m);
            assert_eq!(job["stats"]["items"]["total"], BIG, "{job}");
        }
        if finished(&job) {
            break job;
        }
        assert!(Instant::now() < deadline, "job did not finish: {job}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let ranks: Vec<usize> = seen
        .iter()
        .map(|s| order.iter().position(|o| o == s).unwrap())
        .collect();
    assert!(
        ranks.windows(2).all(|w| w[0] < w[1]),
        "statuses out of order: {seen:?}"
    );
    assert!(
        seen.contains(&"running".to_string()),
        "never seen running: {seen:?}"
    );
    assert!(
        growing.len() >= 2 && growing.windows(2).all(|w| w[0] < w[1]),
        "stats did not grow while running: {growing:?}"
    );
    assert_all_items_copied(&last, BIG);
    assert!(
        last["stats"]["items"]["errors"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(last["started_at"].is_string() && last["finished_at"].is_string());
    assert_eq!(target_count(&target), BIG);

    // The list: newest first, with the total.
    let second = api.start(
        "copy/dry-run",
        json!({"source_url": sqlite_url(&source), "target_url": target.url}),
    );
    let (status, page) = api.call("GET", "/api/v1/admin/migrations?count=1&start=0", None);
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"]["total"], 2);
    assert_eq!(page["data"]["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"]["data"][0]["id"], second["id"]);
    let (_, page) = api.call("GET", "/api/v1/admin/migrations", None);
    assert_eq!(page["data"]["data"][1]["id"].as_str(), Some(id.as_str()));
}

#[test]
fn copy_job_lifecycle_with_the_sqlite_store() {
    let s = setup();
    let store = s.sqlite_store();
    lifecycle(&store, &s);
}

#[test]
fn copy_job_lifecycle_with_the_postgres_store() {
    let s = setup();
    let store = PgDb::new();
    lifecycle(&store.url, &s);
    // The jobs really are in PostgreSQL.
    assert_eq!(
        store.scalar("SELECT count(*) FROM ferry_jobs").as_deref(),
        Some("2")
    );
}

#[test]
fn dry_run_writes_nothing_and_reports_counts() {
    let s = setup();
    let source = big_source(&s.path("src.db"), 1234);
    let target = PgDb::new();
    let server = start(s.dir.path(), &s.sqlite_store(), &s.key, &[]);
    let api = Api::login(&server);
    let job = api.start(
        "copy/dry-run",
        json!({"source_url": sqlite_url(&source), "target_url": target.url}),
    );
    assert_eq!(job["dry_run"], true);
    let done = api.complete(&job, Duration::from_secs(60));
    assert_eq!(done["dry_run"], true);
    assert_eq!(done["stats"]["items"]["total"], 1234, "{done}");
    assert!(
        target.tables().is_empty(),
        "a dry run wrote tables: {:?}",
        target.tables()
    );
}

#[test]
fn cancel_stops_a_large_job_within_seconds_leaving_whole_batches() {
    let s = setup();
    let SlowJob {
        source: _source,
        target,
        server,
        api,
        job: _job,
        id,
    } = slow_job(&s, &s.sqlite_store());
    wait_copying(&api, &id);
    let (status, body) = api.call("DELETE", &format!("/api/v1/admin/migrations/{id}"), None);
    assert_eq!(status, 204, "{body}");
    let cancelled_at = Instant::now();
    assert_eq!(api.job(&id)["status"], "cancelled");
    // The work itself ends (the runner logs it) within seconds, and the job stays cancelled.
    assert!(
        server.wait_for_log(&format!("Job {id} ended"), Duration::from_secs(10)),
        "the work did not stop within 10 s of the cancel:\n{}",
        server.output()
    );
    assert!(cancelled_at.elapsed() < Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    let a = target_count(&target);
    std::thread::sleep(Duration::from_secs(2));
    let b = target_count(&target);
    assert_eq!(a, b, "rows still arriving after the cancel");
    assert!(
        b < BIG,
        "the whole table was copied before the cancel landed"
    );
    assert_eq!(b % 1000, 0, "the target holds a partial batch: {b} rows");
    let after = api.job(&id);
    assert_eq!(after["status"], "cancelled", "{after}");
    assert!(after["finished_at"].is_string());
    // Cancelling a finished job: 400.
    let (status, body) = api.call("DELETE", &format!("/api/v1/admin/migrations/{id}"), None);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["success"], false);
}

#[test]
fn bad_requests_get_4xx_with_a_message() {
    let s = setup();
    let source = big_source(&s.path("src.db"), BIG);
    let target = PgDb::new();
    let server = start(s.dir.path(), &s.sqlite_store(), &s.key, &[]);
    let mut api = Api::new(&server);

    // 401: no token, a bad token, wrong credentials (same envelope).
    let (status, body) = api.call("GET", "/api/v1/admin/migrations", None);
    assert_eq!((status, &body["success"]), (401, &json!(false)), "{body}");
    assert!(body["error"].is_string());
    api.token = Some("not-a-token".into());
    assert_eq!(api.call("GET", "/api/v1/admin/migrations", None).0, 401);
    let (status, body) = api.call(
        "POST",
        "/api/v1/auth/login",
        Some(json!({"username": ADMIN, "password": "wrong-password"})),
    );
    assert_eq!((status, &body["success"]), (401, &json!(false)), "{body}");

    // 403: a user that is not an admin.
    admin_command(
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["admin", "create-user", "--store", &s.sqlite_store()])
            .args(["--username", "viewer", "--role", "user"])
            .env("FERRY_NEW_PASSWORD", "viewer-password"),
    );
    api.login_as("viewer", "viewer-password");
    let (status, body) = api.call("GET", "/api/v1/admin/migrations", None);
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        api.call("POST", "/api/v1/admin/migrations/copy", Some(json!({})))
            .0,
        403
    );

    api.login_as(ADMIN, ADMIN_PW);
    let copy = |body: Value| api.call("POST", "/api/v1/admin/migrations/copy", Some(body));
    let expect = |(status, body): (u16, Value), code: u16, text: &str| {
        assert_eq!(status, code, "{body}");
        assert_eq!(body["success"], false, "{body}");
        let e = body["error"].as_str().unwrap();
        assert!(e.contains(text), "error {e:?} does not mention {text:?}");
    };
    // 400: missing field named, wrong type, unknown field, bad value, malformed JSON.
    expect(copy(json!({"target_url": target.url})), 400, "source_url");
    expect(
        copy(
            json!({"source_url": sqlite_url(&source), "target_url": target.url, "batch_size": "many"}),
        ),
        400,
        "batch_size",
    );
    expect(
        copy(json!({"source_url": sqlite_url(&source), "target_url": target.url, "workers": 0})),
        400,
        "workers",
    );
    expect(
        copy(json!({"source_url": sqlite_url(&source), "target_url": target.url, "colour": "red"})),
        400,
        "colour",
    );
    expect(
        copy(json!({"source_url": "ftp://x", "target_url": target.url})),
        400,
        "source_url",
    );
    let copy_bytes = |body: &[u8]| {
        api.raw(
            "POST",
            "/api/v1/admin/migrations/copy",
            api.token.as_deref(),
            Some(body.to_vec()),
        )
    };
    let (status, text) = copy_bytes(b"{\"source_url\": ");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("malformed JSON"), "{text}");
    let (status, text) = copy_bytes(b"[1, 2]");
    assert_eq!(status, 400, "{text}");
    // A huge body: 413, and the server lives on.
    let huge = format!("{{\"source_url\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    // On its own connection: the server closes a connection whose body it refused.
    let (status, text) = Api::new(&server).raw(
        "POST",
        "/api/v1/admin/migrations/copy",
        api.token.as_deref(),
        Some(huge.into_bytes()),
    );
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("\"success\":false"), "{text}");
    expect(
        api.call("GET", "/api/v1/admin/migrations?count=500", None),
        400,
        "count",
    );
    expect(
        api.call("GET", "/api/v1/admin/migrations?count=abc", None),
        400,
        "count",
    );

    // 404: unknown kind, unknown id, unknown route.
    expect(
        api.call("POST", "/api/v1/admin/migrations/teleport", Some(json!({}))),
        404,
        "unknown migration kind",
    );
    // A profile import needs the server's own target database; this server has none.
    expect(
        api.call(
            "POST",
            "/api/v1/admin/migrations/peertube",
            Some(
                json!({"source_host": "pt.example", "source_db_host": "db", "source_db_name": "pt",
                        "source_db_user": "pt", "source_db_password": "x"}),
            ),
        ),
        400,
        "--target-db",
    );
    expect(
        api.call(
            "GET",
            "/api/v1/admin/migrations/00000000-0000-4000-8000-000000000000",
            None,
        ),
        404,
        "no migration",
    );
    expect(
        api.call(
            "DELETE",
            "/api/v1/admin/migrations/00000000-0000-4000-8000-000000000000",
            None,
        ),
        404,
        "no migration",
    );
    expect(
        api.call("GET", "/api/v1/admin/migrations/not-a-uuid", None),
        404,
        "no migration",
    );

    // 409: a second real job into the same target while the first runs; a dry run is fine.
    let first = start_slow_copy(&api, &source, &target);
    let id = first["id"].as_str().unwrap();
    expect(
        copy(json!({"source_url": sqlite_url(&source), "target_url": target.url})),
        409,
        "target",
    );
    // The same database under another spelling is the same target: `localhost` for
    // `127.0.0.1`, the default port left out, a password given (trust authentication accepts it).
    let mut spellings = common::other_spellings(&target.url);
    let mut with_password = url::Url::parse(&spellings[0]).unwrap();
    with_password.set_password(Some("any-password")).unwrap();
    spellings.push(with_password.to_string());
    for spelling in spellings {
        expect(
            copy(json!({"source_url": sqlite_url(&source), "target_url": spelling})),
            409,
            "target",
        );
    }
    api.start(
        "copy/dry-run",
        json!({"source_url": sqlite_url(&source), "target_url": target.url}),
    );
    assert_eq!(
        api.call("DELETE", &format!("/api/v1/admin/migrations/{id}"), None)
            .0,
        204
    );
    api.wait(id, Duration::from_secs(30), finished);
    // Once it ended, the target is free again.
    let again = api.start(
        "copy/dry-run",
        json!({"source_url": sqlite_url(&source), "target_url": target.url}),
    );
    assert_eq!(again["status"], "pending");

    assert_eq!(api.call("GET", "/health", None).0, 200);
    assert_eq!(api.call("GET", "/ready", None).0, 200);
    let (status, doc) = api.call("GET", "/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    assert!(doc["paths"]["/api/v1/admin/migrations/{id}"]["delete"].is_object());
    let (status, metrics) = api.raw("GET", "/metrics", None, None);
    assert_eq!(status, 200);
    assert_mentions(
        &metrics,
        &[
            "ferry_jobs{status=\"cancelled\"} 1",
            "ferry_rows_migrated_total",
            "ferry_bytes_migrated_total",
            "ferry_http_request_duration_seconds_bucket",
        ],
    );
}

/// Short job leases, so the tests that kill a server see its jobs taken over in seconds.
const SHORT_LEASE: [&str; 2] = ["--job-lease", "3"];

/// The target holds exactly the source's `items` (`rows` of them): every row once, with its
/// values.
fn assert_target_equal(target: &PgDb, rows: i64) {
    let want = ferry_testkit::sqlite::items_sums(rows)
        .map(|n| n.to_string())
        .join(",");
    assert_eq!(
        target.scalar(ferry_testkit::sqlite::ITEMS_SUMS_SQL),
        Some(want),
        "the target's items differ from the source's"
    );
}

/// Waits for job `id` to end, asserting on the way that it is never shown failed or finished
/// before it is; returns it, completed, with every row (`rows`) counted and verified.
fn wait_completed_after_takeover(api: &Api, id: &str, rows: i64) -> Value {
    let job = api.wait(id, Duration::from_secs(300), |j| {
        assert_ne!(j["status"], "failed", "{j}");
        assert!(finished(j) || j["finished_at"].is_null(), "{j}");
        finished(j)
    });
    assert_all_items_copied(&job, rows);
    job
}

/// `job` completed without an error, every one of the `rows` rows of `items` counted and
/// migrated, none failed.
fn assert_all_items_copied(job: &Value, rows: i64) {
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["error_message"], Value::Null, "{job}");
    let items = &job["stats"]["items"];
    assert_eq!(
        (
            items["total"].as_i64(),
            items["migrated"].as_i64(),
            items["failed"].as_i64()
        ),
        (Some(rows), Some(rows), Some(0)),
        "{job}"
    );
}

#[test]
fn a_job_running_when_the_server_is_killed_is_taken_over_on_restart() {
    let s = setup();
    let store = s.sqlite_store();
    let source = big_source(&s.path("src.db"), BIG);
    let target = PgDb::new();
    let mut server = start(s.dir.path(), &store, &s.key, &SHORT_LEASE);
    let api = Api::login(&server);
    let id = slow_copy_id(&api, &source, &target);
    let running = wait_copying(&api, &id);
    assert_eq!(running["status"], "running", "{running}");
    server.kill9();

    let server = start(s.dir.path(), &store, &s.key, &SHORT_LEASE);
    let api = Api::login(&server);
    completed_after_takeover_by(&server, &api, &id, &running, BIG);
    assert_target_equal(&target, BIG);
}

/// Waits for job `id`, whose server was killed while it ran (`running`), to be taken over by
/// `server` and to complete with every one of its `rows` rows; it keeps its start and ends
/// after the kill.
fn completed_after_takeover_by(
    server: &Server,
    api: &Api,
    id: &str,
    running: &Value,
    rows: i64,
) -> Value {
    // The last change the killed server made: the job's end must come after it.
    let killed_at = api.job(id)["updated_at"].as_str().unwrap().to_string();
    let done = wait_completed_after_takeover(api, id, rows);
    assert!(
        server.output().contains(&format!("Took over job {id}")),
        "{}",
        server.output()
    );
    assert_eq!(done["started_at"], running["started_at"]);
    assert!(
        done["finished_at"].as_str().unwrap() > killed_at.as_str(),
        "{done}"
    );
    done
}

/// Two servers A and B (short leases) sharing a fresh PostgreSQL store, and a source of `rows`
/// rows with an empty target for their job: the store, source, target, A and B.
fn two_servers(s: &Setup, rows: i64) -> (PgDb, PathBuf, PgDb, Server, Server) {
    let store = PgDb::new();
    let source = big_source(&s.path("src.db"), rows);
    let target = PgDb::new();
    let a = start(s.dir.path(), &store.url, &s.key, &SHORT_LEASE);
    let b = start(s.dir.path(), &store.url, &s.key, &SHORT_LEASE);
    (store, source, target, a, b)
}

/// Rows of the three-servers test: its copy must outlast a server's start, more than a lease of
/// watching, and a kill, even on an idle machine (1,000,000 rows finished in 5 s there).
const THREE_SERVERS_ROWS: i64 = 3 * BIG;

/// Three servers on one PostgreSQL store: a server starting while another runs a job leaves it
/// alone; a second writer into the job's target is refused on every server; after the server
/// running the job is killed, another takes it over once the lease expires, and the job ends
/// completed and verified, with its stats and finish time right.
#[test]
fn three_servers_sharing_a_postgres_store_finish_the_job_of_a_killed_one() {
    let s = setup();
    let (store, source, target, mut a, b) = two_servers(&s, THREE_SERVERS_ROWS);
    let on_a = Api::login(&a);
    let id = slow_copy_id(&on_a, &source, &target);
    let running = wait_copying(&on_a, &id);
    assert_eq!(running["status"], "running", "{running}");
    // C starts while A runs the job: it does not touch it, for longer than a lease.
    let c = start(s.dir.path(), &store.url, &s.key, &SHORT_LEASE);
    let on_c = Api::login(&c);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let job = on_c.job(&id);
        assert_eq!(job["status"], "running", "{job}");
        assert!(job["finished_at"].is_null(), "{job}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!c.output().contains("Took over"), "{}", c.output());
    // The one-job-per-target guard holds on every server.
    let (status, body) = on_c.call(
        "POST",
        "/api/v1/admin/migrations/copy",
        Some(json!({"source_url": sqlite_url(&source), "target_url": target.url, "force": true})),
    );
    assert_eq!(status, 409, "{body}");
    let owner = store
        .scalar(&format!("SELECT owner FROM ferry_jobs WHERE id = '{id}'"))
        .unwrap();

    a.kill9();
    let on_b = Api::login(&b);
    let killed_at = on_b.job(&id)["updated_at"].as_str().unwrap().to_string();
    let done = wait_completed_after_takeover(&on_b, &id, THREE_SERVERS_ROWS);
    let took_over = [&b, &c]
        .iter()
        .filter(|server| server.output().contains(&format!("Took over job {id}")))
        .count();
    assert_eq!(took_over, 1, "B:\n{}\nC:\n{}", b.output(), c.output());
    assert_eq!(done["started_at"], running["started_at"]);
    assert!(
        done["finished_at"].as_str().unwrap() > killed_at.as_str(),
        "{done}"
    );
    assert_eq!(on_c.job(&id), done, "the servers show one job");
    assert_target_equal(&target, THREE_SERVERS_ROWS);
    // Released: no owner any more (A's was replaced, then cleared at the end).
    assert_ne!(owner, "");
    assert_eq!(
        store.scalar(&format!(
            "SELECT coalesce(owner, '-') FROM ferry_jobs WHERE id = '{id}'"
        )),
        Some("-".to_string())
    );
}

/// A server's id, as it logs it at start-up (`host:pid:random`).
fn server_id(server: &Server) -> String {
    assert!(
        server.wait_for_log("Server id ", Duration::from_secs(30)),
        "{}",
        server.output()
    );
    let output = server.output();
    let rest = &output[output.find("Server id ").unwrap() + "Server id ".len()..];
    rest.split_whitespace().next().unwrap().to_string()
}

/// The servers (ids) with chunks of the target's ledger committed (`done`) or claimed now
/// (`claimed`: a claim not run out); none when the ledger is not (or no longer) there.
fn ledger_servers(target: &PgDb, which: &str) -> Vec<String> {
    let filter = match which {
        "done" => "state = 'done'",
        _ => {
            "state = 'pending' AND claim_until > (extract(epoch from clock_timestamp()) * 1000)::bigint"
        }
    };
    let sql = format!(
        "SELECT DISTINCT split_part(claimed_by, '#', 1) FROM ferry_ledger
         WHERE kind = 'chunk' AND claimed_by IS NOT NULL AND {filter}"
    );
    ferry_testkit::pg::pg_try_query(&target.url, &sql)
        .map(|rows| rows.into_iter().filter_map(|r| r[0].clone()).collect())
        .unwrap_or_default()
}

/// Three servers with short leases on the PostgreSQL store `store`.
fn three_servers(s: &Setup, store: &PgDb) -> [Server; 3] {
    [(); 3].map(|()| start(s.dir.path(), &store.url, &s.key, &SHORT_LEASE))
}

/// Chunks of the target's ledger committed so far (`None`: no ledger).
fn done_chunks(target: &PgDb) -> Option<i64> {
    ferry_testkit::pg::pg_try_query(
        &target.url,
        "SELECT count(*) FROM ferry_ledger WHERE kind = 'chunk' AND state = 'done'",
    )
    .ok()
    .and_then(|rows| rows[0][0].as_deref()?.parse().ok())
}

/// Starts a copy job of `source` into `target` on `api` in small chunks (one worker per
/// server), for servers to share; returns its id.
fn shared_copy_id(api: &Api, source: &Path, target: &PgDb) -> String {
    api.start(
        "copy",
        json!({"source_url": sqlite_url(source), "target_url": target.url, "batch_size": 1000, "workers": 1, "chunk_rows": 20000}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Waits until the servers `helpers` have joined job `id` and the ledger shows chunks
/// committed by at least two servers and a live claim of each server in `claiming`.
fn wait_shared(api: &Api, target: &PgDb, id: &str, helpers: &[&str], claiming: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let job = api.job(id);
        assert!(
            !finished(&job),
            "the job ended before the servers shared it: {job}"
        );
        let joined: Vec<&str> = job["helpers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let (done, claimed) = (
            ledger_servers(target, "done"),
            ledger_servers(target, "claimed"),
        );
        if helpers.iter().all(|h| joined.contains(h))
            && done.len() >= 2
            && claiming.iter().all(|c| claimed.iter().any(|s| s == c))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the servers did not share the job: {job}; committed by {done:?}, claimed by {claimed:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Three servers on one PostgreSQL store copy one job's chunks together: the two that did not
/// create it join it and commit chunks beside its owner; one of them is killed with its claims
/// held, which run out and are copied by the others; the job ends completed and verified, its
/// rows counted exactly once, its helpers listed.
#[test]
fn three_servers_share_one_jobs_chunks_and_finish_those_of_a_killed_helper() {
    let s = setup();
    let store = PgDb::new();
    let source = big_source(&s.path("src.db"), THREE_SERVERS_ROWS);
    let target = PgDb::new();
    let [a, b, mut c] = three_servers(&s, &store);
    let (a_id, b_id, c_id) = (server_id(&a), server_id(&b), server_id(&c));
    let on_a = Api::login(&a);
    let id = shared_copy_id(&on_a, &source, &target);
    wait_shared(&on_a, &target, &id, &[&b_id, &c_id], &[&c_id]);
    c.kill9();
    let done = wait_completed_after_takeover(&on_a, &id, THREE_SERVERS_ROWS);
    // The owner lived: nobody took the job over; the killed helper's chunks were claimed again.
    for server in [&a, &b] {
        assert!(
            !server.output().contains("Took over"),
            "{}",
            server.output()
        );
    }
    let helpers = done["helpers"].as_array().unwrap();
    assert!(
        helpers.contains(&json!(b_id))
            && helpers.contains(&json!(c_id))
            && !helpers.contains(&json!(a_id)),
        "{done}"
    );
    assert_target_equal(&target, THREE_SERVERS_ROWS);
    assert_eq!(
        done_chunks(&target),
        None,
        "the ledger of a completed copy is dropped"
    );
}

/// A cancel sent to server B stops the job server A runs and B and C help with, within
/// seconds (no chunk commits after), and the target stays guarded until A's work has stopped.
#[test]
fn a_cancel_sent_to_another_server_stops_the_job() {
    let s = setup();
    let store = PgDb::new();
    let source = big_source(&s.path("src.db"), THREE_SERVERS_ROWS);
    let target = PgDb::new();
    let [a, b, c] = three_servers(&s, &store);
    let (b_id, c_id) = (server_id(&b), server_id(&c));
    let on_a = Api::login(&a);
    let on_b = Api::login(&b);
    let id = shared_copy_id(&on_a, &source, &target);
    // B and C help A with the job's chunks: the cancel must stop all three.
    wait_shared(&on_a, &target, &id, &[&b_id, &c_id], &[&c_id]);
    let (status, body) = on_b.call("DELETE", &format!("/api/v1/admin/migrations/{id}"), None);
    assert_eq!(status, 204, "{body}");
    assert_eq!(on_a.job(&id)["status"], "cancelled");
    assert!(
        a.wait_for_log(
            &format!("Job {id} ended: cancelled"),
            Duration::from_secs(10)
        ),
        "A did not stop the work within 10 s of the cancel sent to B:\n{}",
        a.output()
    );
    for (name, helper) in [("B", &b), ("C", &c)] {
        assert!(
            helper.wait_for_log(
                &format!("Stopped helping job {id}"),
                Duration::from_secs(10)
            ),
            "{name} did not stop helping within 10 s of the cancel:\n{}",
            helper.output()
        );
    }
    let (n, chunks) = (target_count(&target), done_chunks(&target));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        (target_count(&target), done_chunks(&target)),
        (n, chunks),
        "rows or chunks still committed after the cancel"
    );
    assert!(
        n < THREE_SERVERS_ROWS,
        "the whole table was copied before the cancel landed"
    );
    let after = on_b.job(&id);
    assert_eq!(after["status"], "cancelled", "{after}");
    assert!(after["finished_at"].is_string());
    let (status, body) = on_b.call("DELETE", &format!("/api/v1/admin/migrations/{id}"), None);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("already cancelled"),
        "{body}"
    );
    // The work has stopped: the target is free again, on any server.
    on_b.start(
        "copy/dry-run",
        json!({"source_url": sqlite_url(&source), "target_url": target.url}),
    );
    let again = on_b.start(
        "copy",
        json!({"source_url": sqlite_url(&source), "target_url": target.url, "force": true, "batch_size": 10000}),
    );
    on_a.complete(&again, Duration::from_secs(300));
    assert_target_equal(&target, THREE_SERVERS_ROWS);
}

/// Rows per chunk of the shared migrate jobs: with one worker per server, the most rows a
/// server has written and not committed at any moment.
const SHARED_CHUNK_ROWS: i64 = 20_000;

/// Starts a move of `source`'s rows into `target` on `api` (rows only, in small chunks, one
/// worker per server) with a rewrite of every `items.note`; returns its id.
fn shared_migrate_id(api: &Api, source: &Path, target: &PgDb) -> String {
    api.start(
        "migrate",
        json!({"database": {"source": sqlite_url(source), "target": target.url,
                            "batch_size": 1000, "workers": 1, "chunk_rows": SHARED_CHUNK_ROWS},
               "metadata_only": true,
               "rewrite": [{"table": "items", "column": "note", "from": "some words", "to": "other words"}]}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The rows of the chunks committed in the target's ledger by server `server` and by all
/// (`None`: no ledger).
fn ledger_rows(target: &PgDb, server: &str) -> Option<(i64, i64)> {
    let sql = format!(
        "SELECT coalesce(sum(row_count) FILTER (WHERE split_part(claimed_by, '#', 1) = '{server}'), 0),
                coalesce(sum(row_count), 0)
         FROM ferry_ledger WHERE kind = 'chunk' AND state = 'done'"
    );
    let rows = ferry_testkit::pg::pg_try_query(&target.url, &sql).ok()?;
    let cell = |i: usize| -> Option<i64> { rows[0][i].as_deref()?.parse().ok() };
    Some((cell(0)?, cell(1)?))
}

/// The move's rows are in the target, verified, with every `items.note` rewritten, and its
/// ledger is gone.
fn assert_moved(target: &PgDb, rows: i64) {
    assert_target_equal(target, rows);
    assert_eq!(
        target.scalar("SELECT count(*) FROM items WHERE note LIKE 'other words%'"),
        Some(rows.to_string()),
        "the stored locations were not rewritten once each"
    );
    assert_eq!(
        done_chunks(target),
        None,
        "a completed move drops its ledger"
    );
}

/// Two servers on one PostgreSQL store move one job's rows together: the server that did not
/// create the move joins it and commits chunks; the owner alone rewrites and verifies. While it
/// runs, the job's live `migrated` never goes down, counts the helper's rows (it goes beyond
/// anything the owner alone can have written), never counts a row twice (never beyond the
/// rows committed plus the owner's one chunk in flight), and ends at the final figure.
#[test]
fn two_servers_share_a_migrate_jobs_rows_and_its_live_stats_count_both() {
    let s = setup();
    let rows = THREE_SERVERS_ROWS;
    let (_store, source, target, a, b) = two_servers(&s, rows);
    let (a_id, b_id) = (server_id(&a), server_id(&b));
    let on_a = Api::login(&a);
    let id = shared_migrate_id(&on_a, &source, &target);
    let (mut last, mut beyond_owner, mut helper_rows) = (0, false, 0);
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = loop {
        let job = on_a.job(&id);
        let live = migrated(&job, "items");
        if finished(&job) {
            break job;
        }
        assert!(
            live >= last,
            "live rows went down from {last} to {live}: {job}"
        );
        last = live;
        // Read after the job: every row it shows was committed by then, or is in the owner's
        // one chunk in flight.
        if let Some((by_owner, all)) = ledger_rows(&target, &a_id) {
            assert!(
                live <= all + SHARED_CHUNK_ROWS,
                "{live} rows shown, {all} committed: counted twice? {job}"
            );
            beyond_owner |= live > by_owner + SHARED_CHUNK_ROWS;
            helper_rows = helper_rows.max(all - by_owner);
        }
        assert!(Instant::now() < deadline, "the move did not end: {job}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_all_items_copied(&done, rows);
    assert!(last <= rows, "{last}");
    assert!(helper_rows > 0, "the helper committed no chunk: {done}");
    assert!(
        beyond_owner,
        "the live stats never counted the helper's rows (helper committed {helper_rows}): {done}"
    );
    // B is listed first; A too only if a loaded machine made it miss its lease renewals and B
    // took the move over (it then ends just as right, which the rest checks).
    let helpers = done["helpers"].as_array().unwrap();
    assert_eq!(helpers.first(), Some(&json!(b_id)), "{done}");
    assert!(
        helpers.len() == 1 || b.output().contains(&format!("Took over job {id}")),
        "{done}\nA:\n{}\nB:\n{}",
        a.output(),
        b.output()
    );
    assert!(
        b.output().contains(&format!("Helping job {id}")),
        "{}",
        b.output()
    );
    assert_moved(&target, rows);
}

/// A move whose server is killed with `kill -9` while it copies rows is taken over by the
/// other server sharing the store once the lease expires, resumed from the ledger, and ends
/// completed and verified, its rows counted exactly once and rewritten once.
#[test]
fn a_migrate_job_of_a_killed_server_is_taken_over_and_resumed() {
    let s = setup();
    let rows = THREE_SERVERS_ROWS;
    let (_store, source, target, mut a, b) = two_servers(&s, rows);
    let on_a = Api::login(&a);
    let id = shared_migrate_id(&on_a, &source, &target);
    let running = wait_copying(&on_a, &id);
    assert_eq!(running["status"], "running", "{running}");
    // Killed with chunks committed, so the server taking over resumes rather than restarts.
    let deadline = Instant::now() + Duration::from_secs(120);
    while done_chunks(&target).unwrap_or(0) < 2 {
        assert!(Instant::now() < deadline, "no chunk was committed");
        std::thread::sleep(Duration::from_millis(50));
    }
    a.kill9();
    let on_b = Api::login(&b);
    let done = completed_after_takeover_by(&b, &on_b, &id, &running, rows);
    assert_eq!(done["kind"], "migrate");
    assert_moved(&target, rows);
}

#[test]
fn sigterm_cancels_running_jobs_and_exits() {
    let s = setup();
    let store = s.sqlite_store();
    let SlowJob {
        source: _source,
        target: _target,
        mut server,
        api,
        job: _job,
        id,
    } = slow_job(&s, &store);
    wait_copying(&api, &id);
    assert_eq!(
        server.terminate(Duration::from_secs(30)),
        0,
        "{}",
        server.output()
    );

    let server = start(s.dir.path(), &store, &s.key, &[]);
    let api = Api::login(&server);
    let after = api.job(&id);
    assert_eq!(after["status"], "cancelled", "{after}");
}

#[test]
fn a_different_or_malformed_master_key_is_a_clear_startup_error() {
    let s = setup();
    let store = s.sqlite_store();
    let mut server = start(s.dir.path(), &store, &s.key, &[]);
    assert!(
        server.output().contains(&s.key.display().to_string()),
        "the created key file is not named:\n{}",
        server.output()
    );
    assert_eq!(server.terminate(Duration::from_secs(20)), 0);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&s.key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    let other = s.path("other.key");
    std::fs::write(&other, format!("{}\n", "ab".repeat(32))).unwrap();
    let (code, err) = match try_start(s.dir.path(), &store, &other, &[]) {
        Ok(_) => panic!("the server started with another master key"),
        Err(e) => e,
    };
    assert_eq!(code, 2, "{err}");
    assert_mentions(&err, &["master key", "differs"]);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );

    let bad = s.path("bad.key");
    std::fs::write(&bad, "not hex at all").unwrap();
    let (code, err) = match try_start(s.dir.path(), &store, &bad, &[]) {
        Ok(_) => panic!("the server started with a malformed key"),
        Err(e) => e,
    };
    assert_eq!(code, 2, "{err}");
    assert_mentions(&err, &["malformed", "64 hex"]);
    assert!(!err.contains("not hex at all"), "{err}");
}

#[test]
fn credentials_never_leak() {
    const PW: &str = "Zq9-unguessable-Pw-7731";
    let s = setup();
    let source = PgDb::new();
    source.query("CREATE TABLE things (id int PRIMARY KEY, name text); INSERT INTO things SELECT g, 'n' || g FROM generate_series(1, 500) g;");
    let target = PgDb::new();
    let (source_url, _) = with_password(&source.url, PW);
    let (target_url, _) = with_password(&target.url, PW);
    let store = s.sqlite_store();
    let mut server = start(s.dir.path(), &store, &s.key, &[]);
    let api = Api::login(&server);
    let good = api.start(
        "copy",
        json!({"source_url": source_url, "target_url": target_url}),
    );
    let dry = api.start(
        "copy/dry-run",
        json!({"source_url": source_url, "target_url": target_url}),
    );
    // A source that refuses the connection: its error must not carry the password either.
    let bad = api.start("copy", json!({"source_url": format!("postgres://postgres:{PW}@127.0.0.1:1/nowhere"), "target_url": format!("sqlite://{}", s.path("t.db").display())}));
    // Bad values and wrong types of secret fields are not echoed.
    api.call(
        "POST",
        "/api/v1/admin/migrations/copy",
        Some(json!({"source_url": source_url, "target_url": PW})),
    );
    api.call(
        "POST",
        "/api/v1/admin/migrations/copy",
        Some(json!({"source_url": [PW], "target_url": target_url})),
    );
    api.call(
        "POST",
        "/api/v1/auth/login",
        Some(json!({"username": ADMIN, "password": [PW]})),
    );
    for job in [&good, &dry, &bad] {
        let id = job["id"].as_str().unwrap();
        let done = api.wait(id, Duration::from_secs(60), finished);
        assert_ne!(done["status"], "running");
    }
    assert_eq!(api.job(good["id"].as_str().unwrap())["status"], "completed");
    let failed = api.job(bad["id"].as_str().unwrap());
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error_message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    api.call("GET", "/api/v1/admin/migrations?count=100", None);
    api.raw("GET", "/metrics", None, None);
    assert_eq!(
        target.scalar("SELECT count(*) FROM things").as_deref(),
        Some("500")
    );
    server.terminate(Duration::from_secs(20));

    let seen = api.seen.lock().unwrap().clone();
    assert!(
        seen.contains(good["id"].as_str().unwrap()),
        "responses were not recorded"
    );
    if let Some(at) = seen.find(PW) {
        let from = seen[..at]
            .char_indices()
            .rev()
            .nth(200)
            .map_or(0, |(i, _)| i);
        panic!(
            "a response holds the password: …{}…",
            &seen[from..(at + PW.len() + 50).min(seen.len())]
        );
    }
    let output = server.output();
    assert!(output.contains("listening on"), "output not captured");
    assert!(
        !output.contains(PW),
        "the server's output holds the password:\n{output}"
    );
    let mut files = 0;
    for entry in std::fs::read_dir(s.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("jobs.db")
        {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(PW.len()).any(|w| w == PW.as_bytes()),
                "{} holds the password",
                path.display()
            );
            files += 1;
        }
    }
    assert!(files >= 1, "no store file found");
}

#[test]
fn repeated_failed_logins_are_slowed_down() {
    let s = setup();
    let server = start(s.dir.path(), &s.sqlite_store(), &s.key, &[]);
    let api = Api::new(&server);
    let attempt = |pw: &str| api.try_login(ADMIN, pw);
    let (status, first) = attempt("wrong-1");
    assert_eq!(status, 401);
    assert!(
        first < Duration::from_millis(450),
        "the first failure was already slow: {first:?}"
    );
    for i in 2..=4 {
        assert_eq!(attempt(&format!("wrong-{i}")).0, 401);
    }
    let (status, fifth) = attempt("wrong-5");
    assert_eq!(status, 401);
    assert!(
        fifth >= Duration::from_millis(900),
        "the fifth failure was not slowed down: {fifth:?}"
    );
    // The right password still works (after the address's turn) and gives its turn back, so
    // it does not hold the next attempt.
    let (status, _) = attempt(ADMIN_PW);
    assert_eq!(status, 200);
    let (_, quick) = attempt("wrong-again");
    assert!(quick < Duration::from_millis(450), "{quick:?}");
}

#[test]
fn tokens_expire_and_can_be_revoked() {
    let s = setup();
    let store = s.sqlite_store();
    let server = start(s.dir.path(), &store, &s.key, &["--token-ttl", "2"]);
    let api = Api::login(&server);
    assert_eq!(api.call("GET", "/api/v1/admin/migrations", None).0, 200);
    std::thread::sleep(Duration::from_millis(3100));
    let (status, body) = api.call("GET", "/api/v1/admin/migrations", None);
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    let api = Api::login(&server);
    assert_eq!(api.call("GET", "/api/v1/admin/migrations", None).0, 200);
    admin_command(Command::new(env!("CARGO_BIN_EXE_ferry")).args([
        "admin",
        "revoke-tokens",
        "--store",
        &store,
        "--username",
        ADMIN,
    ]));
    assert_eq!(api.call("GET", "/api/v1/admin/migrations", None).0, 401);

    // A second admin, password from standard input; a name already taken is refused.
    let create = |name: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([
                "admin",
                "create-user",
                "--store",
                &store,
                "--username",
                name,
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"stdin-password-9\n")
            .unwrap();
        child.wait_with_output().unwrap()
    };
    assert_succeeded(&create("second"));
    let mut second = Api::new(&server);
    second.login_as("second", "stdin-password-9");
    assert_eq!(second.call("GET", "/api/v1/admin/migrations", None).0, 200);
    let run = create("second");
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("already exists"));
}

#[test]
fn failed_rows_complete_with_a_summary_or_fail_the_job_with_the_reason() {
    let s = setup();
    let source = common::make_sqlite(&s.path("bad.db"), BAD_UTF8_SQL);
    let server = start(s.dir.path(), &s.sqlite_store(), &s.key, &[]);
    let api = Api::login(&server);

    let target = PgDb::new();
    let job = api.start(
        "copy",
        json!({"source_url": sqlite_url(&source), "target_url": target.url, "ignore_errors": true}),
    );
    let done = api.complete(&job, Duration::from_secs(60));
    assert_eq!(done["stats"]["notes"]["failed"], 1, "{done}");
    assert_eq!(done["stats"]["notes"]["migrated"], 2, "{done}");
    let errors = done["stats"]["notes"]["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e.as_str().unwrap().contains("UTF-8")),
        "{done}"
    );
    let message = done["error_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("1 rows failed") && message.contains("notes"),
        "{done}"
    );

    let target = PgDb::new();
    let job = api.start(
        "copy",
        json!({"source_url": sqlite_url(&source), "target_url": target.url}),
    );
    let done = api.finish(&job, Duration::from_secs(60));
    assert_eq!(done["status"], "failed", "{done}");
    let reason = done["error_message"].as_str().unwrap_or_default();
    assert!(
        reason.contains("notes") && reason.contains("id=2"),
        "{done}"
    );
}

#[test]
fn blobs_job_copies_files_and_counts_them() {
    let s = setup();
    let tree = [("a/one.txt", b"one".to_vec()), ("two.bin", vec![7u8; 5000])];
    let from = write_tree(&s.path("files"), &tree);
    let to = s.path("copied");
    let server = start(s.dir.path(), &s.sqlite_store(), &s.key, &[]);
    let api = Api::login(&server);
    let body = json!({"from": format!("file://{}", from.display()), "to": format!("file://{}", to.display())});

    let dry = api.start("blobs/dry-run", body.clone());
    let dry = api.complete(&dry, Duration::from_secs(60));
    assert_eq!(dry["stats"]["media"]["total"], 2, "{dry}");
    assert!(!to.join("two.bin").exists(), "a dry run copied files");

    let job = api.start("blobs", body);
    assert_eq!(job["kind"], "blobs");
    assert_eq!(job["source_host"], from.display().to_string());
    let done = api.complete(&job, Duration::from_secs(60));
    assert_eq!(done["stats"]["media"]["migrated"], 2, "{done}");
    assert_eq!(std::fs::read(to.join("a/one.txt")).unwrap(), b"one");

    let (status, body) = api.call(
        "POST",
        "/api/v1/admin/migrations/blobs",
        Some(json!({"from": "file:///x", "to": "file:///y", "manifest_db": "sqlite:///m.db"})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("manifest_sql"),
        "{body}"
    );
    // The PeerTube dry-run alias checks a PeerTube body.
    let (status, body) = api.call(
        "POST",
        "/api/v1/admin/migrations/dry-run/dry-run",
        Some(json!({})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("source_host"),
        "{body}"
    );
}

/// The `migrate` kind: a migrate spec as JSON runs rows, rewrites and files as one job, with
/// the dry run writing nothing, stats per table and for the files, the one-job-per-target rule
/// on its database target, and cancel.
#[test]
fn migrate_job_moves_rows_rewrites_locations_and_copies_files() {
    let s = setup();
    let files = write_tree(
        &s.path("files"),
        &[
            ("u1/a.jpg", vec![3u8; 5000]),
            ("u2/b c.pdf", b"%PDF-1.4 minimal".to_vec()),
        ],
    );
    let app = s.path("app.db");
    rusqlite::Connection::open(&app)
        .unwrap()
        .execute_batch(
            "CREATE TABLE attachments(id INTEGER PRIMARY KEY, path TEXT NOT NULL, status TEXT,
                                      created_at DATETIME);
             INSERT INTO attachments VALUES
               (1, '/srv/files/u1/a.jpg', 'uploaded', '2026-07-08 12:00:28'),
               (2, '/srv/files/u2/b c.pdf', 'uploaded', '2026-07-09 08:15:00'),
               (3, '/srv/files/u3/never.txt', 'deleted', NULL);
             CREATE TABLE sessions(id INTEGER PRIMARY KEY, token TEXT);
             INSERT INTO sessions VALUES (1, 'left behind');",
        )
        .unwrap();
    let target = PgDb::new();
    let out = s.path("out");
    let server = start(s.dir.path(), &s.sqlite_store(), &s.key, &[]);
    let api = Api::login(&server);
    let body = json!({
        "database": {"source": sqlite_url(&app), "target": target.url, "exclude": ["sessions"],
                     "workers": 2, "batch_size": 500},
        "blobs": {"source": format!("file://{}", files.display()),
                  "target": format!("file://{}", out.display()),
                  "manifest_sql": "SELECT substr(path, length('/srv/files/') + 1) FROM attachments WHERE status = 'uploaded'"},
        "rewrite": [{"table": "attachments", "column": "path", "from": "/srv/files/", "to": "s3://media/"}]
    });

    let dry = api.start("migrate/dry-run", body.clone());
    assert_eq!(
        (&dry["kind"], &dry["dry_run"]),
        (&json!("migrate"), &json!(true))
    );
    let dry = api.complete(&dry, Duration::from_secs(60));
    assert_eq!(dry["stats"]["media"]["total"], 2, "{dry}");
    assert!(!out.exists(), "a dry run copied files");
    assert!(target.tables().is_empty(), "a dry run wrote rows");

    let job = api.start("migrate", body);
    assert_eq!(job["kind"], "migrate");
    assert_eq!(job["source_host"], app.display().to_string());
    let done = api.complete(&job, Duration::from_secs(120));
    assert_eq!(migrated(&done, "attachments"), 3, "{done}");
    assert_eq!(migrated(&done, "media"), 2, "{done}");
    assert!(done["stats"].get("sessions").is_none(), "excluded: {done}");
    assert_eq!(
        target
            .scalar("SELECT string_agg(path, ' ' ORDER BY id) FROM attachments")
            .as_deref(),
        Some("s3://media/u1/a.jpg s3://media/u2/b c.pdf s3://media/u3/never.txt")
    );
    assert_eq!(
        std::fs::read(out.join("u1/a.jpg")).unwrap(),
        vec![3u8; 5000]
    );

    // A field the server does not let a caller set is named, in its section.
    let (status, resp) = api.call(
        "POST",
        "/api/v1/admin/migrations/migrate",
        Some(
            json!({"database": {"source": sqlite_url(&app), "target": target.url,
                                 "reject_dir": "/etc"}, "metadata_only": true}),
        ),
    );
    assert_eq!(status, 400, "{resp}");
    assert!(
        resp["error"].as_str().unwrap().contains("reject_dir"),
        "{resp}"
    );

    // A running move holds its database target: a copy into it waits its turn; cancel stops it.
    let big = big_source(&s.path("big.db"), BIG);
    let second = PgDb::new();
    let running = api.start(
        "migrate",
        json!({"database": {"source": sqlite_url(&big), "target": second.url, "batch_size": 1000,
                            "workers": 1}, "metadata_only": true}),
    );
    let id = running["id"].as_str().unwrap();
    let (status, resp) = api.call(
        "POST",
        "/api/v1/admin/migrations/copy",
        Some(json!({"source_url": sqlite_url(&app), "target_url": second.url})),
    );
    assert_eq!(status, 409, "{resp}");
    api.wait(id, Duration::from_secs(60), |j| {
        migrated(j, "items") > 0 || finished(j)
    });
    assert_eq!(
        api.call("DELETE", &format!("/api/v1/admin/migrations/{id}"), None)
            .0,
        204
    );
    let ended = api.wait(id, Duration::from_secs(30), finished);
    assert_eq!(ended["status"], "cancelled", "{ended}");
    assert!(target_count(&second) < BIG, "cancel did not stop the copy");
}

/// The `peertube` kind: the built-in profile from a PeerTube database (fields of the request)
/// into the server's own `--target-db`; the compatibility dry-run route writes nothing; the
/// real run fills the target with per-entity stats; the source password never shows.
#[test]
fn peertube_jobs_import_into_the_servers_target_database() {
    let s = setup();
    let source = min_source_blocking();
    let target = PgDb::new();
    let server = start(
        s.dir.path(),
        &s.sqlite_store(),
        &s.key,
        &["--target-db", &target.url],
    );
    let api = Api::login(&server);
    let url = url::Url::parse(&source.url).unwrap();
    let body = json!({
        "source_host": "pt.example",
        "source_db_host": url.host_str().unwrap(),
        "source_db_port": url.port().unwrap_or(5432),
        "source_db_name": url.path().trim_start_matches('/'),
        "source_db_user": url.username(),
        "source_db_password": url.password().unwrap_or("not-needed-with-trust"),
    });

    let dry = api.start("dry-run/dry-run", body.clone());
    assert_eq!(dry["kind"], "peertube", "{dry}");
    assert_eq!(dry["dry_run"], true, "{dry}");
    let dry = api.complete(&dry, Duration::from_secs(120));
    assert!(
        dry["stats"]["users"]["total"].as_i64().unwrap() > 0,
        "{dry}"
    );
    assert!(target.tables().is_empty(), "a dry run wrote to the target");

    let job = api.start("peertube", body);
    assert_eq!(job["source_host"], "pt.example");
    let done = api.complete(&job, Duration::from_secs(120));
    for entity in ferry_testkit::peertube::ENTITIES {
        assert!(
            done["stats"][entity]["migrated"].as_i64().unwrap_or(0) > 0,
            "{entity}: {done}"
        );
    }
    assert!(
        done["stats"]["videos"]["skipped"].as_i64().unwrap_or(0) > 0,
        "remote videos are skipped: {done}"
    );
    // What the profile leaves out is part of the job, with the source's counts, and is not
    // mistaken for a table in the stats.
    let left_out = |name: &str| {
        done["not_copied"]
            .as_array()
            .and_then(|a| a.iter().find(|o| o["name"] == name))
            .unwrap_or_else(|| panic!("{name} in the job's not_copied: {done}"))
            .clone()
    };
    let history = left_out("userVideoHistory");
    assert_eq!(
        (&history["kind"], &history["count"]),
        (&json!("table"), &json!(2))
    );
    let torrents = left_out("torrents");
    assert_eq!(
        (&torrents["kind"], &torrents["count"]),
        (&json!("files"), &json!(3))
    );
    assert!(done["stats"].get("$not_copied").is_none(), "{done}");
    let listed = api.call("GET", "/api/v1/admin/migrations", None).1;
    assert!(listed.to_string().contains("userVideoHistory"), "{listed}");
    assert!(!target.tables().is_empty());
}

#[test]
fn ready_is_503_when_the_postgres_store_goes_away() {
    let s = setup();
    let store = PgDb::new();
    let server = start(s.dir.path(), &store.url, &s.key, &[]);
    let api = Api::new(&server);
    let (status, body) = api.call("GET", "/ready", None);
    assert_eq!(status, 200, "{body}");
    // Dropping the store's database ends its connections and makes reconnecting fail.
    let name = store.name.clone();
    drop(store);
    common::pg_try_query(
        &common::pg_admin_url(),
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )
    .unwrap();
    let (status, body) = api.call("GET", "/ready", None);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(api.call("GET", "/health", None).0, 200);
}

// ---------------------------------------------------------------------------------------------
// The login slow-down under parallel attempts, private store files, log lines, content types

/// Shortened slow-down delays for the parallel tests (the real 0.5 s → 8 s would make 60
/// failures last minutes; the real defaults' rate is tested in ferry-serve's store tests and
/// by the sequential and two-server tests below).
const FAST_DELAYS: [&str; 4] = ["--login-delay-ms", "25", "--login-max-delay-ms", "50"];

/// The least time 60 failures of one key can take under FAST_DELAYS: the turns after failures
/// 1 and 2 are free, after the 3rd 25 ms, after each further one 50 ms.
const SIXTY_FAILURES_AT_LEAST: Duration = Duration::from_millis(25 + 56 * 50);

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

/// 60 wrong passwords from 127.0.0.1, 30 at a time, for `name(i)`; an attempt answered 429 is
/// sent again 100 ms later (sooner than its Retry-After). Returns how long the 60 failures took and
/// how many 429s came back.
fn flood(server: &Server, name: impl Fn(usize) -> String + Sync) -> (Duration, usize) {
    let failures = std::sync::atomic::AtomicUsize::new(0);
    let busy = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..30 {
            scope.spawn(|| {
                let api = Api::from_address(server, ip("127.0.0.1"));
                loop {
                    let i = failures.load(std::sync::atomic::Ordering::SeqCst);
                    if i >= 60 {
                        return;
                    }
                    let body = json!({"username": name(i), "password": format!("guess-{i}")});
                    let (status, retry_after, text) = api.send(
                        "POST",
                        "/api/v1/auth/login",
                        None,
                        Some(("application/json", body.to_string().into_bytes())),
                    );
                    match status {
                        401 => {
                            failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        429 => {
                            let secs: u64 = retry_after
                                .expect("429 without Retry-After")
                                .parse()
                                .unwrap();
                            assert!(secs >= 1, "{secs}");
                            assert!(text.contains("\"success\":false"), "{text}");
                            busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        other => panic!("a wrong password got {other}: {text}"),
                    }
                }
            });
        }
    });
    (
        started.elapsed(),
        busy.load(std::sync::atomic::Ordering::SeqCst),
    )
}

#[test]
fn parallel_guesses_at_one_name_are_spaced_and_its_owner_still_logs_in_promptly() {
    let s = setup();
    let server = start(s.dir.path(), &s.sqlite_store(), &s.key, &FAST_DELAYS);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (took, busy, owner) = std::thread::scope(|scope| {
        // The admin, from an address of their own, logs in while the guessing goes on.
        let owner = scope.spawn(|| {
            let api = Api::from_address(&server, ip("127.0.0.2"));
            let mut latencies = Vec::new();
            std::thread::sleep(Duration::from_millis(500));
            while !done.load(std::sync::atomic::Ordering::SeqCst) || latencies.is_empty() {
                let (status, took) = api.try_login(ADMIN, ADMIN_PW);
                assert_eq!(status, 200);
                latencies.push(took);
                std::thread::sleep(Duration::from_millis(300));
            }
            latencies
        });
        let (took, busy) = flood(&server, |_| ADMIN.to_string());
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (took, busy, owner.join().unwrap())
    });
    println!(
        "60 failures in {took:?} ({busy} attempts answered 429); the owner's logins took {owner:?}"
    );
    assert!(
        took >= SIXTY_FAILURES_AT_LEAST,
        "60 parallel failures took {took:?}, less than the slow-down allows ({SIXTY_FAILURES_AT_LEAST:?})"
    );
    assert!(busy > 0, "30 at a time never found the address busy");
    assert!(owner.len() >= 2, "{owner:?}");
    // Thirty argon2 checks at once on two cores make every login slow for a moment: the
    // bound says the owner did not queue behind the name's turns, not that the CPU was idle.
    // (The two-server test, with the real delays, bounds the owner's wait at 2 s.)
    assert!(
        owner.iter().all(|t| *t < Duration::from_secs(5)),
        "the right password waited: {owner:?}"
    );
    let log = server.output();
    assert!(
        log.contains("Failed login for user name \"admin\" from 127.0.0.1"),
        "{log}"
    );
}

#[test]
fn guesses_spread_over_many_names_from_one_address_are_spaced() {
    let s = setup();
    let server = start(s.dir.path(), &s.sqlite_store(), &s.key, &FAST_DELAYS);
    let (took, busy) = flood(&server, |i| format!("user-{i}"));
    println!("60 failures for 60 names in {took:?} ({busy} attempts answered 429)");
    assert!(
        took >= SIXTY_FAILURES_AT_LEAST,
        "60 failures for 60 names took {took:?}, less than the slow-down allows ({SIXTY_FAILURES_AT_LEAST:?})"
    );
    // Another address is not held by them.
    let (status, took) = Api::from_address(&server, ip("127.0.0.2")).try_login(ADMIN, ADMIN_PW);
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// With the real delays (3 free failures, then 0.5 s doubling): failures recorded by server A
/// hold the same address, and the same name, on server B.
#[test]
fn two_servers_sharing_a_postgres_store_share_the_slow_down() {
    let s = setup();
    let store = PgDb::new();
    let a = start(s.dir.path(), &store.url, &s.key, &[]);
    let b = start(s.dir.path(), &store.url, &s.key, &[]);
    let on_a = Api::from_address(&a, ip("127.0.0.1"));
    for i in 1..=4 {
        assert_eq!(on_a.try_login(ADMIN, &format!("wrong-{i}")).0, 401);
    }
    // The 5th attempt from that address, on B, waits for its turn: 1 s after the 4th failure.
    let (status, took) = Api::from_address(&b, ip("127.0.0.1")).try_login(ADMIN, "wrong-5");
    assert_eq!(status, 401);
    assert!(
        took >= Duration::from_millis(900),
        "not held on B: {took:?}"
    );
    // A new address guessing the same name on B: checked at once, but its failure is
    // answered at the name's turn (2 s after the 5th failure).
    let (status, took) = Api::from_address(&b, ip("127.0.0.3")).try_login(ADMIN, "wrong-6");
    assert_eq!(status, 401);
    assert!(
        took >= Duration::from_millis(1500),
        "name not held on B: {took:?}"
    );
    // The admin's right password, from an address of their own, does not wait.
    let (status, took) = Api::from_address(&b, ip("127.0.0.4")).try_login(ADMIN, ADMIN_PW);
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        store
            .scalar("SELECT count(*) FROM ferry_login_slowdown")
            .is_some_and(|n| n.parse::<i64>().unwrap() >= 3),
        "the counts are not in the shared store"
    );
}

#[test]
fn the_sqlite_store_and_its_wal_and_shm_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // A new store, and one an older ferry left readable to everyone.
    let fresh = setup();
    let old = setup();
    std::fs::write(old.path("jobs.db"), b"").unwrap();
    std::fs::set_permissions(old.path("jobs.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    for s in [&fresh, &old] {
        let server = start(s.dir.path(), &s.sqlite_store(), &s.key, &[]);
        // A login writes a token: the -wal and -shm exist while the server runs.
        Api::login(&server);
        for name in ["jobs.db", "jobs.db-wal", "jobs.db-shm"] {
            let path = s.path(name);
            assert!(path.exists(), "{name} missing");
            assert_eq!(mode(&path), 0o600, "{name} is {:o}", mode(&path));
        }
    }
}

#[test]
fn a_failed_login_is_logged_with_the_escaped_name_and_the_address_never_the_password() {
    const PW: &str = "Log-Check-Password-8812";
    let s = setup();
    let server = start(s.dir.path(), &s.sqlite_store(), &s.key, &[]);
    let api = Api::new(&server);
    let name = format!("mallory\nFAKE LOG LINE\u{1b}[2J{}", "x".repeat(500));
    assert_eq!(api.try_login(&name, PW).0, 401);
    assert_eq!(api.try_login(ADMIN, PW).0, 401);
    assert!(
        server.wait_for_log("user name \"admin\"", Duration::from_secs(5)),
        "{}",
        server.output()
    );
    let log = server.output();
    let kept = 64 - "mallory\nFAKE LOG LINE\u{1b}[2J".chars().count();
    let shown = format!(
        "Failed login for user name \"mallory\\nFAKE LOG LINE\\u{{1b}}[2J{}…\" from 127.0.0.1",
        "x".repeat(kept)
    );
    assert!(log.contains(&shown), "no {shown:?} in:\n{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("FAKE LOG LINE")) && !log.contains('\u{1b}'),
        "the name was logged raw:\n{log}"
    );
    assert!(!log.contains(PW), "the password was logged:\n{log}");
}

#[test]
fn json_endpoints_refuse_other_content_types_with_415() {
    let s = setup();
    let server = start(s.dir.path(), &s.sqlite_store(), &s.key, &[]);
    let api = Api::login(&server);
    let login = json!({"username": ADMIN, "password": ADMIN_PW}).to_string();
    let copy =
        json!({"source_url": "sqlite:///nowhere.db", "target_url": "sqlite:///t.db"}).to_string();
    for (path, token, body) in [
        ("/api/v1/auth/login", None, &login),
        ("/api/v1/admin/migrations/copy", api.token.as_deref(), &copy),
        (
            "/api/v1/admin/migrations/copy/dry-run",
            api.token.as_deref(),
            &copy,
        ),
    ] {
        for content_type in ["text/plain", "application/x-www-form-urlencoded", ""] {
            let (status, _, text) = api.send(
                "POST",
                path,
                token,
                Some((content_type, body.clone().into_bytes())),
            );
            assert_eq!(status, 415, "{path} with {content_type:?}: {text}");
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["success"], false);
            assert!(
                body["error"].as_str().unwrap().contains("application/json"),
                "{body}"
            );
        }
    }
    // Parameters of the media type are fine.
    let (status, _, text) = api.send(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(("Application/JSON; charset=utf-8", login.into_bytes())),
    );
    assert_eq!(status, 200, "{text}");
}
