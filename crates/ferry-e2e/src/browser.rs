//! Headless Chromium driven over WebDriver: chromedriver started on a free port, a fresh
//! profile per browser, and the small waiting and reading helpers the dashboard test needs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use serde_json::json;
use tokio::process::{Child, Command};

const INSTALL: &str = "apt-get install chromium chromium-driver";

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    ferry_testkit::find_bin(names, &[])
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; fails (never skips) when either is missing.
    pub async fn start() -> Self {
        let chromium = std::env::var_os("FERRY_E2E_CHROMIUM")
            .map(PathBuf::from)
            .or_else(|| find_program(&["chromium", "chromium-browser", "google-chrome"]))
            .unwrap_or_else(|| {
                panic!("Chromium is needed for the dashboard test and is not installed: {INSTALL}")
            });
        let chromedriver = find_program(&["chromedriver"]).unwrap_or_else(|| {
            panic!("chromedriver is needed for the dashboard test and is not installed: {INSTALL}")
        });
        let port = ferry_testkit::free_port();
        let log = crate::paths::artifacts_dir().join("chromedriver.log");
        let mut driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e} ({INSTALL})", chromedriver.display()));
        wait_for_driver(port, &mut driver, &log).await;

        let profile = tempfile::tempdir().expect("temp dir for the Chromium profile");
        let client = connect(port, &chromium, profile.path()).await;
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Ends the browser session (Chromium exits) and chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css} on the page within 20 s: {e}"))
    }

    /// The element if it is on the page now.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        self.client.find(Locator::Css(css)).await.ok()
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// The visible text of `css`, or `None` when it is not on the page.
    pub async fn text(&self, css: &str) -> Option<String> {
        self.try_find(css).await?.text().await.ok()
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.try_find(css).await?.attr(name).await.ok().flatten()
    }

    /// A DOM property (not the attribute): a `<progress>`'s live `value`, say.
    pub async fn prop(&self, css: &str, name: &str) -> Option<String> {
        match self.try_find(css).await?.prop(name).await {
            Ok(value) => value,
            // fantoccini turns only strings and booleans into text and calls a number (which
            // `value` of a `<progress>` is) "not W3C": render it here, integers without ".0".
            Err(fantoccini::error::CmdError::NotW3C(serde_json::Value::Number(n))) => {
                Some(match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
                    _ => n.to_string(),
                })
            }
            Err(_) => None,
        }
    }

    pub async fn displayed(&self, css: &str) -> bool {
        match self.try_find(css).await {
            Some(e) => e.is_displayed().await.unwrap_or(false),
            None => false,
        }
    }

    /// Saves a PNG of the page at `target/ferry-e2e/NAME.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        let path = crate::paths::artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        println!("screenshot: {}", path.display());
        path
    }
}

async fn wait_for_driver(port: u16, driver: &mut Child, log: &Path) {
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/status"))
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = driver.try_wait() {
            panic!(
                "chromedriver exited at start ({status}); its log: {} ({INSTALL})",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "chromedriver did not answer on port {port} within 10 s; its log: {}",
        log.display()
    );
}

async fn connect(port: u16, chromium: &Path, profile: &Path) -> Client {
    // Without the networking flags Chromium's background services make this machine refuse
    // its connections; a fresh profile keeps runs independent.
    let args = [
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1280,1000".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium.display().to_string(), "args": args}),
    );
    // The workspace links rustls with two providers (ring for ferry's database connections,
    // aws-lc-rs through reqwest), so rustls cannot pick one by itself: choose ring, as ferry does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = ClientBuilder::rustls();
    let mut builder = match builder {
        Ok(b) => b,
        Err(e) => panic!("WebDriver client: {e}"),
    };
    builder
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| {
            panic!("Chromium did not start under chromedriver: {e} (is it installed? {INSTALL})")
        })
}
