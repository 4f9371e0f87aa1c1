//! A real `ferry serve` process (the shared launcher of ferry-testkit) with its own store, master
//! key and first admin in a temporary folder, plus what the browser tests need on top: waiting
//! for `/health` and an API client logged in as the admin.

use std::time::Duration;

pub struct Serve {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    pub admin_user: String,
    pub admin_password: String,
    server: ferry_testkit::serve::Server,
    /// Declared after `server`: the process is killed before its folder is deleted.
    pub dir: tempfile::TempDir,
}

impl Serve {
    /// Starts `ferry serve --listen 127.0.0.1:0 --store sqlite://DIR/ferry.db --master-key-file
    /// DIR/master.key` and waits until `/health` answers.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for ferry serve");
        let admin_user = "admin".to_string();
        let admin_password = format!(
            "e2e-{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_nanos()
        );
        let bin = crate::paths::ferry_bin();
        let store = ferry_testkit::sqlite::sqlite_url(&dir.path().join("ferry.db"));
        let server = ferry_testkit::serve::Launch {
            bin: &bin,
            dir: dir.path(),
            store: &store,
            key: &dir.path().join("master.key"),
            extra: &[],
            admin_user: &admin_user,
            admin_password: &admin_password,
        }
        .start();
        let serve = Self {
            base: server.base(),
            admin_user,
            admin_password,
            server,
            dir,
        };
        serve.wait_healthy().await;
        serve
    }

    async fn wait_healthy(&self) {
        let http = reqwest::Client::new();
        for _ in 0..150 {
            if let Ok(r) = http.get(format!("{}/health", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "ferry serve at {} never answered GET /health with 200; its output:\n{}",
            self.base,
            self.output()
        );
    }

    /// Everything the server printed so far (stdout, then stderr).
    pub fn output(&self) -> String {
        self.server.output()
    }

    /// An API client logged in as the first admin.
    pub async fn admin(&self) -> crate::api::Api {
        let mut api = crate::api::Api::new(&self.base);
        api.login(&self.admin_user, &self.admin_password).await;
        api
    }

    pub async fn stop(mut self) {
        self.server.kill9();
    }
}
