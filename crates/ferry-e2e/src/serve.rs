//! A real `ferry serve` process on a free loopback port, with its own store, master key and
//! first admin, run in a temporary folder; its output is kept for failure messages.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub struct Serve {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    pub admin_user: String,
    pub admin_password: String,
    pub dir: tempfile::TempDir,
    child: Child,
    output: Arc<Mutex<String>>,
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
        let store = format!("sqlite://{}", dir.path().join("ferry.db").display());
        let key = dir.path().join("master.key");
        let mut child = Command::new(&bin)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--store", &store])
            .arg("--master-key-file")
            .arg(&key)
            .env("FERRY_ADMIN_USER", &admin_user)
            .env("FERRY_ADMIN_PASSWORD", &admin_password)
            // Whatever a job might write beside itself (reject files) stays in the temp folder.
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));

        let output = Arc::new(Mutex::new(String::new()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        tokio::spawn(collect(stdout, output.clone(), tx.clone()));
        tokio::spawn(collect(stderr, output.clone(), tx));

        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = rx.recv().await {
                if let Some(base) = address_in(&line) {
                    return Some(base);
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(base) = base else {
            let status = child.try_wait().ok().flatten();
            panic!(
                "ferry serve did not print the address it listens on within 60 s (exit: {status:?}); its output:\n{}",
                output.lock().map(|o| o.clone()).unwrap_or_default()
            );
        };
        let serve = Self {
            base,
            admin_user,
            admin_password,
            dir,
            child,
            output,
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

    /// Everything the server printed so far (stdout and stderr, interleaved by line).
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// An API client logged in as the first admin.
    pub async fn admin(&self) -> crate::api::Api {
        let mut api = crate::api::Api::new(&self.base);
        api.login(&self.admin_user, &self.admin_password).await;
        api
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn collect(
    stream: impl AsyncRead + Unpin,
    output: Arc<Mutex<String>>,
    tx: mpsc::UnboundedSender<String>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(mut o) = output.lock() {
            o.push_str(&line);
            o.push('\n');
        }
        let _ = tx.send(line);
    }
}

/// `http://127.0.0.1:PORT` from a line that mentions the loopback address with a real port.
fn address_in(line: &str) -> Option<String> {
    const HOST: &str = "127.0.0.1:";
    let mut rest = line;
    while let Some(at) = rest.find(HOST) {
        let after = &rest[at + HOST.len()..];
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(port) = digits.parse::<u16>()
            && port != 0
        {
            return Some(format!("http://127.0.0.1:{port}"));
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::address_in;

    #[test]
    fn finds_the_listening_address() {
        assert_eq!(
            address_in("ferry serve listening on http://127.0.0.1:40123 (dashboard at /)"),
            Some("http://127.0.0.1:40123".into())
        );
        assert_eq!(
            address_in("INFO listening addr=127.0.0.1:5"),
            Some("http://127.0.0.1:5".into())
        );
        assert_eq!(address_in("--listen 127.0.0.1:0 given"), None);
        assert_eq!(address_in("store sqlite://ferry.db"), None);
    }
}
