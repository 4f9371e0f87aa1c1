//! The dashboard in a real headless Chromium against a real `ferry serve`: log in, start a
//! copy from the form, watch a progress bar move, cancel, and see a finished job's summary;
//! start a cutover check from its form and read its checklist (GO, then NO-GO).
//! Needs Chromium and chromedriver (`apt-get install chromium chromium-driver`), PostgreSQL
//! (FERRY_TEST_PG_URL) and the ferry binary (`cargo build -p ferry-cli`, or FERRY_BIN).

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferry_e2e::browser::Browser;
use ferry_e2e::serve::Serve;
use ferry_e2e::{eventually, fixtures, pg::TestDb};
use futures_util::FutureExt;

/// Rows in the big source: enough for a copy at batch size 500 to run for many seconds here.
const BIG_ROWS: u64 = 1_500_000;

/// Runs `body` with a browser and closes the browser whether it passed or not, then shows
/// the server's output when it failed.
async fn with_browser<F>(serve: &Serve, body: F)
where
    F: AsyncFnOnce(&Browser),
{
    let browser = Browser::start().await;
    let result = AssertUnwindSafe(body(&browser)).catch_unwind().await;
    if result.is_err() {
        let _ = browser.screenshot("failure").await;
    }
    browser.close().await;
    if let Err(panic) = result {
        eprintln!("--- ferry serve output ---\n{}", serve.output());
        std::panic::resume_unwind(panic);
    }
}

/// What the small-source tests start from: a temp dir holding the small SQLite source, an
/// empty PostgreSQL target and a running `ferry serve`.
async fn small_setup() -> (tempfile::TempDir, PathBuf, TestDb, Serve) {
    let dir = tempfile::tempdir().unwrap();
    let source = fixtures::small_source(dir.path());
    (dir, source, TestDb::new().await, Serve::start().await)
}

/// Opens the dashboard and submits the login form as the admin with `password`.
async fn submit_login(browser: &Browser, serve: &Serve, password: &str) {
    browser
        .client
        .goto(&format!("{}/", serve.base))
        .await
        .expect("open the dashboard");
    browser.fill("#login-username", &serve.admin_user).await;
    browser.fill("#login-password", password).await;
    browser.click("#login-submit").await;
}

async fn log_in(browser: &Browser, serve: &Serve) {
    submit_login(browser, serve, &serve.admin_password).await;
    eventually(
        Duration::from_secs(15),
        "the job list after logging in",
        || async { browser.displayed("#app").await.then_some(()) },
    )
    .await;
    assert!(
        !browser.displayed("#login").await,
        "the login form stays visible after logging in"
    );
}

/// Fills the job form and presses Start copy (or Dry run); returns the new job's id, taken
/// from the first (newest) job on the page once one with a new id appears.
async fn start_job(
    browser: &Browser,
    source: &str,
    target: &str,
    extra: &[(&str, &str)],
    dry_run: bool,
) -> String {
    let before = browser.attr("[data-testid=job]", "data-job-id").await;
    browser.fill("#job-source", source).await;
    browser.fill("#job-target", target).await;
    for (css, value) in extra {
        browser.fill(css, value).await;
    }
    browser
        .click(if dry_run {
            "#job-dry-run"
        } else {
            "#job-start"
        })
        .await;
    new_job(browser, before, "#job-form-error").await
}

/// The id of the newest job once it differs from `before`; panics with the form's error
/// (`error_css`) when the server refused the job.
async fn new_job(browser: &Browser, before: Option<String>, error_css: &str) -> String {
    eventually(
        Duration::from_secs(15),
        "the new job in the list",
        || async {
            if let Some(error) = browser.text(error_css).await.filter(|t| !t.is_empty()) {
                panic!("the server refused the job: {error}");
            }
            let id = browser.attr("[data-testid=job]", "data-job-id").await?;
            (Some(&id) != before.as_ref()).then_some(id)
        },
    )
    .await
}

/// Pastes a cutover request into the dashboard's cutover form and presses Run check.
async fn start_cutover_check(browser: &Browser, body: &serde_json::Value) -> String {
    let before = browser.attr("[data-testid=job]", "data-job-id").await;
    browser.fill("#cutover-body", &body.to_string()).await;
    browser.click("#cutover-check").await;
    new_job(browser, before, "#cutover-form-error").await
}

fn job_css(id: &str, inner: &str) -> String {
    format!("[data-job-id=\"{id}\"] {inner}")
}

async fn status_of(browser: &Browser, id: &str) -> Option<String> {
    browser
        .attr(&format!("[data-job-id=\"{id}\"]"), "data-status")
        .await
}

/// Waits until job `id` shows `status` in the dashboard.
async fn wait_status(browser: &Browser, id: &str, status: &str, within: Duration) {
    eventually(within, &format!("job {id} to show {status}"), || async {
        (status_of(browser, id).await.as_deref() == Some(status)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_starts_watches_and_cancels_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let source = fixtures::big_source(dir.path(), BIG_ROWS);
    let target = TestDb::new().await;
    let serve = Serve::start().await;
    let api = serve.admin().await;

    with_browser(&serve, async |browser| {
        log_in(browser, &serve).await;
        let id = start_job(
            browser,
            &fixtures::sqlite_url(&source),
            &target.url,
            &[("#job-batch-size", "500"), ("#job-workers", "1")],
            false,
        )
        .await;
        println!("job {id} started from the form");

        // The bar of `events` moves between two reads while the job runs.
        let bar = job_css(&id, "[data-table=events] progress");
        let value = async || -> Option<f64> { browser.prop(&bar, "value").await?.parse().ok() };
        let first = eventually(
            Duration::from_secs(90),
            "the events bar to start moving",
            || async { value().await.filter(|v| *v > 0.0) },
        )
        .await;
        let max: f64 = browser
            .prop(&bar, "max")
            .await
            .and_then(|m| m.parse().ok())
            .expect("the bar has a max");
        assert_eq!(
            max, BIG_ROWS as f64,
            "the bar's max is the table's row count"
        );
        let second = eventually(
            Duration::from_secs(30),
            "the events bar to move again",
            || async { value().await.filter(|v| *v > first) },
        )
        .await;
        println!("progress: {first} then {second} of {max} rows");
        assert!(
            second < max,
            "the job finished before it could be cancelled: make BIG_ROWS larger"
        );
        assert_eq!(status_of(browser, &id).await.as_deref(), Some("running"));
        let rate = browser
            .text(&job_css(
                &id,
                "[data-table=events] [data-testid=table-rate]",
            ))
            .await
            .unwrap_or_default();
        assert!(
            rate.ends_with("rows/s"),
            "a rate is shown while it runs, got {rate:?}"
        );

        // Cancel: the first click arms the button, the second sends the DELETE.
        let cancel = job_css(&id, "[data-testid=job-cancel]");
        browser.click(&cancel).await;
        assert_eq!(
            browser.attr(&cancel, "data-confirm").await.as_deref(),
            Some("1")
        );
        let clicked = Instant::now();
        browser.click(&cancel).await;
        wait_status(browser, &id, "cancelled", Duration::from_secs(30)).await;
        let took = clicked.elapsed();
        println!("cancelled {took:?} after the click");
        assert!(took < Duration::from_secs(20), "cancel took {took:?}");
        assert_eq!(
            browser
                .text(&job_css(&id, "[data-testid=job-status]"))
                .await
                .as_deref(),
            Some("cancelled")
        );
        assert!(
            !browser.displayed(&cancel).await,
            "a cancelled job offers no cancel button"
        );

        // The server agrees, and the work really stopped mid-table.
        let job = api.job(&id).await;
        assert_eq!(job["status"], "cancelled", "{job}");
        let migrated = job["stats"]["events"]["migrated"].as_u64().unwrap_or(0);
        assert!(
            migrated < BIG_ROWS,
            "cancelled after all rows were copied: {job}"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rows = target.count("events").await.unwrap_or(0) as u64;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let later = target.count("events").await.unwrap_or(0) as u64;
        assert_eq!(
            rows, later,
            "rows still arrive in the target after the cancel"
        );
        assert!(rows < BIG_ROWS, "the target holds every row after a cancel");

        let shot = browser.screenshot("dashboard-cancelled").await;
        assert!(
            std::fs::metadata(&shot)
                .map(|m| m.len() > 1000)
                .unwrap_or(false)
        );
    })
    .await;
    serve.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_a_finished_job_and_api_errors() {
    let (_dir, source, target, serve) = small_setup().await;

    with_browser(&serve, async |browser| {
        // A wrong password: the envelope's error is on the page, and we stay on the login.
        submit_login(browser, &serve, "not the password").await;
        let error = eventually(Duration::from_secs(30), "the login error", || async {
            browser.text("#login-error").await.filter(|t| !t.is_empty())
        })
        .await;
        println!("wrong password: {error}");
        assert!(!browser.displayed("#app").await);
        assert!(!error.contains("not the password"));

        log_in(browser, &serve).await;

        // A bad value: the 400's message names the field, on the page.
        browser.fill("#job-source", "nowhere://at/all").await;
        browser.fill("#job-target", &target.url).await;
        browser.click("#job-start").await;
        let error = eventually(Duration::from_secs(15), "the form error", || async {
            browser
                .text("#job-form-error")
                .await
                .filter(|t| !t.is_empty())
        })
        .await;
        println!("bad source: {error}");
        assert!(
            error.contains("source_url"),
            "the error names the field: {error}"
        );

        // A dry run counts and writes nothing.
        let url = fixtures::sqlite_url(&source);
        let dry = start_job(browser, &url, &target.url, &[], true).await;
        wait_status(browser, &dry, "completed", Duration::from_secs(60)).await;
        assert_eq!(
            browser
                .attr(&format!("[data-job-id=\"{dry}\"]"), "data-dry-run")
                .await
                .as_deref(),
            Some("true")
        );
        let counted = browser
            .text(&job_css(&dry, "[data-summary=\"rows counted\"] b"))
            .await;
        assert_eq!(
            counted.as_deref(),
            Some("350"),
            "the dry run's summary counts the rows"
        );
        assert_eq!(
            target.count("users").await,
            None,
            "the dry run created a table"
        );

        // A real copy completes and shows its summary and full bars.
        let id = start_job(browser, &url, &target.url, &[], false).await;
        eventually(Duration::from_secs(60), "the copy to complete", || async {
            match status_of(browser, &id).await.as_deref() {
                Some("completed") => Some(()),
                Some("failed") => panic!(
                    "the copy failed: {:?}",
                    browser
                        .text(&job_css(&id, "[data-testid=job-error-message]"))
                        .await
                ),
                _ => None,
            }
        })
        .await;
        let summary = browser
            .text(&job_css(&id, "[data-testid=job-summary]"))
            .await
            .unwrap_or_default();
        println!("summary: {summary}");
        for (label, value) in [
            ("tables", "2"),
            ("rows", "350"),
            ("migrated", "350"),
            ("failed", "0"),
        ] {
            assert_eq!(
                browser
                    .text(&job_css(&id, &format!("[data-summary=\"{label}\"] b")))
                    .await
                    .as_deref(),
                Some(value),
                "summary {label} in {summary:?}"
            );
        }
        for (table, rows) in [("users", "100"), ("posts", "250")] {
            let bar = job_css(&id, &format!("[data-table={table}] progress"));
            assert_eq!(browser.prop(&bar, "value").await.as_deref(), Some(rows));
            assert_eq!(browser.prop(&bar, "max").await.as_deref(), Some(rows));
        }
        assert!(
            !browser
                .displayed(&job_css(&id, "[data-testid=job-errors]"))
                .await
        );
        assert_eq!(target.count("users").await, Some(100));
        assert_eq!(target.count("posts").await, Some(250));

        browser.screenshot("dashboard-completed").await;
    })
    .await;
    serve.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_a_cutover_check_as_a_checklist() {
    let (_dir, source, target, serve) = small_setup().await;
    let api = serve.admin().await;

    with_browser(&serve, async |browser| {
        log_in(browser, &serve).await;
        let url = fixtures::sqlite_url(&source);
        let copy = start_job(browser, &url, &target.url, &[], false).await;
        wait_status(browser, &copy, "completed", Duration::from_secs(60)).await;

        // A check of the copy: two passing blockers, a failing and a skipped warning.
        let body = serde_json::json!({"spec": {
            "source": {"database": url},
            "target": {"database": target.url, "url": serve.base},
            "check": [
                {"name": "rows", "kind": "reconcile"},
                {"name": "health", "kind": "http", "path": "/health"},
                {"name": "old-page", "kind": "http", "path": "/no/such/page", "severity": "warning"},
                {"name": "backup", "kind": "backup", "severity": "warning"}
            ]
        }});
        let id = start_cutover_check(browser, &body).await;
        wait_status(browser, &id, "completed", Duration::from_secs(60)).await;
        let verdict = job_css(&id, "[data-testid=cutover-verdict]");
        let text = browser.text(&verdict).await.unwrap_or_default();
        println!("verdict: {text}");
        assert!(text.starts_with("GO: 4 checks, 1 failed, 1 skipped"), "{text}");
        assert_eq!(browser.attr(&verdict, "data-verdict").await.as_deref(), Some("GO"));
        for (name, status, mark, evidence) in [
            ("rows", "pass", "✓", "2 tables"),
            ("health", "pass", "✓", "200"),
            ("old-page", "fail", "✗", "404"),
            ("backup", "skipped", "–", "no backup"),
        ] {
            let line = job_css(&id, &format!("[data-check=\"{name}\"]"));
            assert_eq!(browser.attr(&line, "data-status").await.as_deref(), Some(status), "{name}");
            let text = browser.text(&line).await.unwrap_or_default();
            println!("{text}");
            assert!(text.starts_with(mark) && text.contains(evidence), "{name}: {text}");
        }
        // Green, red and grey: the marks are coloured by status.
        let colour = async |name: &str| {
            let css = job_css(&id, &format!("[data-check=\"{name}\"] .mark"));
            browser.find(&css).await.css_value("color").await.unwrap()
        };
        let (green, red, grey) = (colour("rows").await, colour("old-page").await, colour("backup").await);
        assert!(green != red && red != grey && green != grey, "{green} {red} {grey}");
        let scroll = format!("document.querySelector('[data-job-id=\"{id}\"]').scrollIntoView()");
        let _ = browser.client.execute(&scroll, vec![]).await;
        browser.screenshot("dashboard-cutover-go").await;

        // A row deleted in the target: the next check is NO-GO and says which table.
        target
            .client()
            .await
            .batch_execute("DELETE FROM posts WHERE id = (SELECT min(id) FROM posts)")
            .await
            .unwrap();
        let again = start_cutover_check(browser, &body).await;
        wait_status(browser, &again, "completed", Duration::from_secs(60)).await;
        let verdict = job_css(&again, "[data-testid=cutover-verdict]");
        assert_eq!(browser.attr(&verdict, "data-verdict").await.as_deref(), Some("NO-GO"));
        let rows = job_css(&again, "[data-check=\"rows\"]");
        assert_eq!(browser.attr(&rows, "data-status").await.as_deref(), Some("fail"));
        let text = browser.text(&rows).await.unwrap_or_default();
        assert!(text.contains("posts: 250 rows in the source, 249 in the target"), "{text}");
        assert_eq!(
            browser.text(&job_css(&again, "[data-testid=job-error-message]")).await.as_deref(),
            Some("NO-GO: rows failed")
        );
        let job = api.job(&again).await;
        assert_eq!(job["cutover"]["verdict"], "NO-GO", "{job}");
        browser.screenshot("dashboard-cutover-no-go").await;
    })
    .await;
    serve.stop().await;
}

/// The page and its assets come from the binary with a strict content security policy.
#[tokio::test]
async fn dashboard_assets_are_served_from_the_binary() {
    let serve = Serve::start().await;
    let http = reqwest::Client::new();
    for (path, kind, marker) in [
        ("/", "text/html", "id=\"login-form\""),
        ("/assets/app.js", "text/javascript", "/admin/migrations"),
        ("/assets/app.css", "text/css", ".table-progress"),
        ("/assets/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let response = http
            .get(format!("{}{path}", serve.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status(), 200, "GET {path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            header("content-type").starts_with(kind),
            "{path}: {}",
            header("content-type")
        );
        assert!(
            header("content-security-policy").contains("default-src 'none'"),
            "{path}"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains(marker), "{path} lacks {marker}");
    }
    serve.stop().await;
}
