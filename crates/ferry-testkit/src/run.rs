//! Running the `ferry` binary as a user would (no terminal, a time limit), and reading what it
//! wrote: the black-box CLI tests' runner.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one `ferry` run may take before the test kills it and fails.
const FERRY_TIMEOUT: Duration = Duration::from_secs(180);

/// The outcome of one `ferry` run.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
    /// The signal that ended it (9 after a `kill -9`), when one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// A description for assertion messages.
    pub fn show(&self) -> String {
        format!(
            "ferry {}\n--- exit code: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }

    /// Asserts the exit code, showing the whole run when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.show());
        self
    }

    /// Asserts that stdout contains `text`, showing the whole run when it does not.
    #[track_caller]
    pub fn expect_stdout(&self, text: &str) -> &Self {
        self.expect_in("stdout", &self.stdout, text)
    }

    /// Asserts that stderr contains `text`, showing the whole run when it does not.
    #[track_caller]
    pub fn expect_stderr(&self, text: &str) -> &Self {
        self.expect_in("stderr", &self.stderr, text)
    }

    /// Asserts that some line of stderr satisfies `what`, showing the whole run when none does.
    #[track_caller]
    pub fn expect_stderr_line(&self, what: impl Fn(&str) -> bool) -> &Self {
        assert!(
            self.stderr.lines().any(what),
            "no such line on stderr\n{}",
            self.show()
        );
        self
    }

    /// The first line of stderr that satisfies `what`; fails saying `missing`, with the whole
    /// run, when none does.
    #[track_caller]
    pub fn stderr_line(&self, missing: &str, what: impl Fn(&str) -> bool) -> &str {
        match self.stderr.lines().find(|l| what(l)) {
            Some(line) => line,
            None => panic!("{missing}\n{}", self.show()),
        }
    }

    #[track_caller]
    fn expect_in(&self, name: &str, output: &str, text: &str) -> &Self {
        assert!(
            output.contains(text),
            "{name} lacks {text:?}\n{}",
            self.show()
        );
        self
    }

    /// The lines of stderr that are not empty.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

/// Writes a `ferry migrate` spec to `path`: a `[database]` section copying `source` into
/// `target` (URLs), then `rest` (more keys of that section, `[blobs]`, `[[rewrite]]`, …);
/// returns `path`.
pub fn write_migrate_spec(path: &Path, source: &str, target: &str, rest: &str) -> PathBuf {
    let spec = format!("[database]\nsource = \"{source}\"\ntarget = \"{target}\"\n{rest}");
    std::fs::write(path, spec).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path.to_path_buf()
}

/// The `ferry` binary Cargo built for this package's integration tests: it sits in the folder
/// above the test binary (`target/debug/ferry` beside `target/debug/deps/TEST-HASH`).
pub fn ferry_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's own path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("ferry"))
        .unwrap_or_default();
    assert!(
        bin.is_file(),
        "the ferry binary is not at {}: run these tests with `cargo test -p ferry-cli`, which builds it",
        bin.display()
    );
    bin
}

/// Runs the `ferry` binary of this package (see [`ferry_bin`]) like [`run_ferry`].
pub fn ferry<S: AsRef<str>>(cwd: &Path, args: &[S]) -> Run {
    run_ferry(&ferry_bin(), cwd, args)
}

/// Runs the `ferry` binary `bin` with `args` in `cwd`, with no terminal: stdin is null, stdout
/// and stderr are pipes. Kills it and panics if it runs longer than a few minutes.
pub fn run_ferry<S: AsRef<str>>(bin: &Path, cwd: &Path, args: &[S]) -> Run {
    let run = run_ferry_with(bin, cwd, args, &Launch::default());
    assert!(
        run.signal.is_none(),
        "ferry was killed by signal {:?}\n{}",
        run.signal,
        run.stderr
    );
    run
}

/// How [`run_ferry_with`] starts and ends a run beyond its arguments.
#[derive(Debug, Default, Clone)]
pub struct Launch {
    /// Extra environment variables (`FERRY_TEST_KILL_AT`).
    pub env: Vec<(String, String)>,
    /// Send SIGKILL after this long, if it is still running.
    pub kill_after: Option<Duration>,
}

impl Launch {
    /// A run that kills itself at the `FERRY_TEST_KILL_AT` point `point` (`name` or
    /// `name:n`), when given.
    pub fn killed_at(point: Option<&str>) -> Self {
        Self {
            env: point
                .map(|p| vec![("FERRY_TEST_KILL_AT".to_string(), p.to_string())])
                .unwrap_or_default(),
            ..Self::default()
        }
    }
}

/// [`run_ferry`] with extra environment and an optional `kill -9` after a delay; a run ended
/// by a signal is returned (its `signal` set, `code` -1) instead of failing the test.
pub fn run_ferry_with<S: AsRef<str>>(bin: &Path, cwd: &Path, args: &[S], launch: &Launch) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_string()).collect();
    let mut child = Command::new(bin)
        .args(&args)
        .current_dir(cwd)
        .env_remove("FERRY_LOG")
        .env_remove("RUST_LOG")
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the ferry binary");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let deadline = started + FERRY_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("wait for ferry") {
            Some(status) => break status,
            None if launch.kill_after.is_some_and(|d| started.elapsed() >= d) => {
                // `Child::kill` is SIGKILL on Unix: a real `kill -9`.
                let _ = child.kill();
                break child.wait().expect("wait for ferry");
            }
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err_reader.join().unwrap_or_default();
                panic!(
                    "ferry {} did not finish within {FERRY_TIMEOUT:?}; stderr:\n{}",
                    args.join(" "),
                    String::from_utf8_lossy(&stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    use std::os::unix::process::ExitStatusExt;
    Run {
        args,
        code: status.code().unwrap_or(-1),
        signal: status.signal(),
        stdout,
        stderr,
    }
}

/// Reads and parses a `--summary` file, panicking with its text when it is not JSON.
#[track_caller]
pub fn read_summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("summary file {} not written: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "summary {} is not valid JSON ({e}):\n{text}",
            path.display()
        )
    })
}

/// splitmix64: a seeded, dependency-free random sequence, for the tests that kill a run at
/// random moments (replayable with their seed).
pub struct Seeded(pub u64);

impl Seeded {
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// The seed of a test's random choices: `FERRY_TEST_SEED` when set (to replay another set),
/// else `default`.
pub fn test_seed(default: u64) -> u64 {
    std::env::var("FERRY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
