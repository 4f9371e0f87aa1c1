//! The `ferry serve` launcher: a real server process on a free loopback port (`--listen
//! 127.0.0.1:0`), with its own store, master key file and first admin, run in a folder the test
//! gives; its output is kept for failure messages. Used by ferry-cli's HTTP tests and ferry-e2e.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to start: `BIN serve --listen 127.0.0.1:0 --store STORE --master-key-file KEY EXTRA…`
/// in `dir`, the first admin from `FERRY_ADMIN_USER`/`FERRY_ADMIN_PASSWORD`.
pub struct Launch<'a> {
    pub bin: &'a Path,
    pub dir: &'a Path,
    pub store: &'a str,
    pub key: &'a Path,
    pub extra: &'a [&'a str],
    pub admin_user: &'a str,
    pub admin_password: &'a str,
}

/// A running `ferry serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`, the address it listens on.
    pub url: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn drain(
    stream: impl Read + Send + 'static,
    sink: Arc<Mutex<String>>,
    tx: Option<std::sync::mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &tx
                && line.contains("listening")
                && let Some(addr) = address_in(&line)
            {
                let _ = tx.send(addr);
            }
            if let Ok(mut s) = sink.lock() {
                s.push_str(&line);
                s.push('\n');
            }
        }
    });
}

impl Launch<'_> {
    /// Starts the server and waits until it prints its address; `Err((exit code, stderr))`
    /// when it exits instead. Panics when it does neither within 60 s.
    pub fn try_start(&self) -> Result<Server, (i32, String)> {
        let mut child = Command::new(self.bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--store", self.store])
            .arg("--master-key-file")
            .arg(self.key)
            .args(self.extra)
            // Whatever a job might write beside itself (reject files) stays in `dir`.
            .current_dir(self.dir)
            .env("FERRY_ADMIN_USER", self.admin_user)
            .env("FERRY_ADMIN_PASSWORD", self.admin_password)
            .env("FERRY_LOG", "info")
            .env_remove("FERRY_MASTER_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        let (stdout, stderr) = (
            Arc::new(Mutex::new(String::new())),
            Arc::new(Mutex::new(String::new())),
        );
        let (tx, rx) = std::sync::mpsc::channel();
        drain(
            child.stdout.take().expect("piped stdout"),
            stdout.clone(),
            Some(tx),
        );
        drain(
            child.stderr.take().expect("piped stderr"),
            stderr.clone(),
            None,
        );
        let text = |s: &Arc<Mutex<String>>| s.lock().map(|s| s.clone()).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(100)) {
                return Ok(Server {
                    child,
                    url: addr.trim_start_matches("http://").to_string(),
                    stdout,
                    stderr,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                return Err((status.code().unwrap_or(-1), text(&stderr)));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "ferry serve did not print its address in 60 s:\n{}",
                    text(&stderr)
                );
            }
        }
    }

    /// [`Launch::try_start`], panicking with the exit code and stderr when the server exits.
    pub fn start(&self) -> Server {
        self.try_start()
            .unwrap_or_else(|(code, err)| panic!("ferry serve exited with {code}:\n{err}"))
    }
}

impl Server {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base(&self) -> String {
        format!("http://{}", self.url)
    }

    /// Everything the server printed so far: stdout, then stderr.
    pub fn output(&self) -> String {
        let text = |s: &Arc<Mutex<String>>| s.lock().map(|s| s.clone()).unwrap_or_default();
        format!("{}{}", text(&self.stdout), text(&self.stderr))
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit; returns its code.
    pub fn terminate(&mut self, within: Duration) -> i32 {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "ferry serve did not stop within {within:?} of SIGTERM:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the output contains `text` within `within`.
    pub fn wait_for_log(&self, text: &str, within: Duration) -> bool {
        crate::poll_until(within, Duration::from_millis(100), || {
            self.output().contains(text)
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
