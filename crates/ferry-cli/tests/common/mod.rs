//! Helpers for the black-box CLI tests: run the real `ferry` binary, make SQLite source files,
//! and create/drop throwaway PostgreSQL databases.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one `ferry` run may take before the test kills it and fails.
const FERRY_TIMEOUT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------------
// Running ferry

/// The outcome of one `ferry` run.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
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

    /// The lines of stderr that are not empty.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

/// Runs the `ferry` binary with `args` in `cwd`, with no terminal: stdin is null, stdout and
/// stderr are pipes. Kills it and panics if it runs longer than a few minutes.
pub fn ferry<S: AsRef<str>>(cwd: &Path, args: &[S]) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_string()).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(&args)
        .current_dir(cwd)
        .env_remove("FERRY_LOG")
        .env_remove("RUST_LOG")
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
    let deadline = Instant::now() + FERRY_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("wait for ferry") {
            Some(status) => break status,
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
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    let code = status
        .code()
        .unwrap_or_else(|| panic!("ferry was killed by a signal: {status:?}\n{stderr}"));
    Run {
        args,
        code,
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

// ---------------------------------------------------------------------------------------------
// SQLite

/// `sqlite:///abs/path` for a file.
pub fn sqlite_url(path: &Path) -> String {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap().join(path)
    };
    format!("sqlite://{}", abs.display())
}

/// Creates an SQLite database at `path` by running `sql`.
pub fn make_sqlite(path: &Path, sql: &str) -> PathBuf {
    let conn = rusqlite::Connection::open(path).expect("create the SQLite source");
    conn.execute_batch(sql).expect("fill the SQLite source");
    drop(conn);
    path.to_path_buf()
}

/// Runs a query on an SQLite file and returns every row with each value rendered as text
/// (NULL as `None`).
pub fn sqlite_rows(path: &Path, sql: &str) -> Vec<Vec<Option<String>>> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                use rusqlite::types::ValueRef;
                Ok(match r.get_ref(i)? {
                    ValueRef::Null => None,
                    ValueRef::Integer(v) => Some(v.to_string()),
                    ValueRef::Real(v) => Some(v.to_string()),
                    ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Some(format!("{b:?}")),
                })
            })
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
    .collect::<rusqlite::Result<Vec<_>>>()
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// The admin URL of the test server.
pub fn pg_admin_url() -> String {
    std::env::var("FERRY_TEST_PG_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url
        .split_once("://")
        .unwrap_or_else(|| panic!("FERRY_TEST_PG_URL must be a postgres:// URL"));
    let (main, query) = match rest.find('?') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = main.split('/').next().unwrap_or(main);
    format!("{scheme}://{authority}/{db}{query}")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Connects to `url` and runs `sql` with the simple query protocol; every value as text.
pub fn pg_try_query(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    runtime().block_on(async {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| format!("bad URL: {e}"))?;
        config.connect_timeout(Duration::from_secs(10));
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let messages = client
            .simple_query(sql)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) => format!("{}: {}", db.code().code(), db.message()),
                None => e.to_string(),
            })?;
        let mut rows = Vec::new();
        for m in messages {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
            }
        }
        Ok(rows)
    })
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A throwaway PostgreSQL database, created on `new` and dropped (`WITH (FORCE)`) when this
/// value is dropped, also when the test panics.
pub struct PgDb {
    pub name: String,
    /// URL of this database (for ferry and for queries).
    pub url: String,
    admin: String,
}

impl PgDb {
    /// Creates a fresh database. Panics when the server cannot be reached: a test that needs
    /// PostgreSQL must never pass without it.
    pub fn new() -> Self {
        let admin = pg_admin_url();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "ferry_cli_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        if let Err(e) = pg_try_query(&admin, &format!("CREATE DATABASE \"{name}\"")) {
            panic!(
                "cannot create a test database on the PostgreSQL server at {} ({e}). \
                 These tests need a real PostgreSQL: run them through `scripts/test`, which finds \
                 or starts one, or set FERRY_TEST_PG_URL to an admin URL \
                 (e.g. postgres://postgres@127.0.0.1:5432/postgres).",
                redact(&admin)
            );
        }
        let url = with_database(&admin, &name);
        Self { name, url, admin }
    }

    /// Runs SQL in this database; panics on error.
    #[track_caller]
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        pg_try_query(&self.url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs SQL that returns one value.
    #[track_caller]
    pub fn scalar(&self, sql: &str) -> Option<String> {
        let rows = self.query(sql);
        assert_eq!(rows.len(), 1, "{sql} returned {} rows", rows.len());
        rows[0][0].clone()
    }

    /// The user tables of this database, sorted.
    pub fn tables(&self) -> Vec<String> {
        self.query(
            "SELECT tablename FROM pg_tables \
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY tablename",
        )
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect()
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Err(e) = pg_try_query(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        ) {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}

/// Other spellings of the same PostgreSQL database: `localhost` for `127.0.0.1` (or the other
/// way round) and, when the port is the default one, the port left out (with either host).
pub fn other_spellings(url: &str) -> Vec<String> {
    let url = url::Url::parse(url).expect("a URL");
    let other = match url.host_str() {
        Some("127.0.0.1") => "localhost",
        Some("localhost") => "127.0.0.1",
        h => panic!("these tests spell the server as localhost and 127.0.0.1, not {h:?}"),
    };
    let mut swapped = url.clone();
    swapped.set_host(Some(other)).unwrap();
    let mut out = vec![swapped.to_string()];
    if url.port() == Some(5432) {
        for mut u in [url, swapped] {
            u.set_port(None).unwrap();
            out.push(u.to_string());
        }
    }
    out
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// `url` with a password: the one it has, or `fallback` put in (accepted by a server with trust
/// authentication, which is what `scripts/test` provides). Returns (url, password).
pub fn with_password(url: &str, fallback: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((_, pw)) if !pw.is_empty() => (url.to_string(), pw.to_string()),
            _ => {
                let user = userinfo.split(':').next().unwrap_or_default();
                (
                    format!("{scheme}://{user}:{fallback}@{host}{tail}"),
                    fallback.to_string(),
                )
            }
        },
        None => (
            format!("{scheme}://postgres:{fallback}@{authority}{tail}"),
            fallback.to_string(),
        ),
    }
}
