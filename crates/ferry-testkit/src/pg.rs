//! PostgreSQL for tests: a throwaway database on the shared server (`FERRY_TEST_PG_URL`, else
//! the local service), created per test and dropped `WITH (FORCE)` when its value is dropped,
//! also when the test panics; and a private server (initdb + pg_ctl from PATH or
//! /usr/lib/postgresql/*/bin) with TLS on, TCP accepted only over TLS (`hostssl`), and one user
//! with a password (scram-sha-256), so refusals are real. As root the private server runs as the
//! `postgres` OS user; it is stopped and deleted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::certs::Certs;

/// The admin URL of the shared test server. Tests never skip without it.
pub fn pg_admin_url() -> String {
    std::env::var("FERRY_TEST_PG_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Connects to `url`; panics with what to do when the server does not answer.
pub async fn pg_connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is needed for this test and {} does not answer ({e}): run scripts/test, which finds or starts one, or set FERRY_TEST_PG_URL", redact(url))
    });
    tokio::spawn(conn);
    client
}

/// Every row `sql` (no parameters) returns; panics with the query when it fails.
pub async fn pg_query(client: &Client, sql: &str) -> Vec<tokio_postgres::Row> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The first column of every row `sql` (no parameters) returns, decoded as `T`; panics with the
/// query when it fails.
pub async fn pg_column<T: for<'a> tokio_postgres::types::FromSql<'a>>(
    client: &Client,
    sql: &str,
) -> Vec<T> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The first column of the one row `sql` (no parameters) returns, decoded as `T`.
pub async fn pg_value<T: for<'a> tokio_postgres::types::FromSql<'a>>(
    client: &Client,
    sql: &str,
) -> T {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// A row decoded as a tuple of its columns: what [`pg_rows`] returns.
pub trait FromRow: Sized {
    fn from_row(row: &tokio_postgres::Row) -> Self;
}

/// `FromRow` for tuples of 2 to 7 columns, each decoded by position.
macro_rules! tuple_from_row {
    ($($t:ident $i:tt),+) => {
        impl<$($t: for<'a> tokio_postgres::types::FromSql<'a>),+> FromRow for ($($t,)+) {
            fn from_row(row: &tokio_postgres::Row) -> Self {
                ($(row.get($i),)+)
            }
        }
    };
}
tuple_from_row!(A 0, B 1);
tuple_from_row!(A 0, B 1, C 2);
tuple_from_row!(A 0, B 1, C 2, D 3);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);

/// Every row `sql` (no parameters) returns, decoded as the tuple `T` (2 to 7 columns); panics with the query
/// when it fails.
pub async fn pg_rows<T: FromRow>(client: &Client, sql: &str) -> Vec<T> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(T::from_row)
        .collect()
}

/// The one row `sql` (no parameters) returns, decoded as the tuple `T`; panics with the query
/// when it fails or does not return exactly one row.
pub async fn pg_row<T: FromRow>(client: &Client, sql: &str) -> T {
    T::from_row(
        &client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}")),
    )
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
/// Blocking: call it from synchronous tests.
pub fn pg_try_query(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    runtime().block_on(async {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| format!("bad URL: {e}"))?;
        config.connect_timeout(Duration::from_secs(10));
        let (client, connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
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

fn cannot_create(admin: &str, e: impl std::fmt::Display) -> ! {
    panic!(
        "cannot create a test database on the PostgreSQL server at {} ({e}). \
         These tests need a real PostgreSQL: run them through `scripts/test`, which finds \
         or starts one, or set FERRY_TEST_PG_URL to an admin URL \
         (e.g. postgres://postgres@127.0.0.1:5432/postgres).",
        redact(admin)
    )
}

/// Drops database `name` from a thread of its own (a `Drop` may run inside a test's runtime).
fn drop_database(name: &str) {
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    let name = name.to_string();
    let _ = std::thread::spawn(move || {
        if let Err(e) = pg_try_query(&pg_admin_url(), &sql) {
            eprintln!("warning: could not drop test database {name}: {e}");
        }
    })
    .join();
}

/// A throwaway database for an async test: `TestDb::new().await`, dropped with the value.
pub struct TestDb {
    pub name: String,
    /// URL of this database (for ferry and for queries).
    pub url: String,
}

impl TestDb {
    /// Creates a fresh database. Panics when the server cannot be reached: a test that needs
    /// PostgreSQL must never pass without it.
    pub async fn new() -> Self {
        let admin = pg_admin_url();
        let name = crate::unique("ferry_test");
        let client = pg_connect(&admin).await;
        if let Err(e) = client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
        {
            cannot_create(&admin, e);
        }
        let url = with_database(&admin, &name);
        Self { name, url }
    }

    pub async fn client(&self) -> Client {
        pg_connect(&self.url).await
    }

    pub fn locator(&self) -> ferry_core::Locator {
        crate::job::locator_of(&self.url)
    }

    /// [`pg_value`] on a fresh connection to this database.
    pub async fn value<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> T {
        pg_value(&self.client().await, sql).await
    }

    /// [`pg_column`] on a fresh connection to this database.
    pub async fn column<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> Vec<T> {
        pg_column(&self.client().await, sql).await
    }

    /// [`pg_row`] on a fresh connection to this database.
    pub async fn row<T: FromRow>(&self, sql: &str) -> T {
        pg_row(&self.client().await, sql).await
    }

    /// Asserts `table` holds `rows` rows with as many distinct ids: every row exactly once, as a
    /// copy in parallel chunks must leave it.
    pub async fn assert_each_id_once(&self, table: &str, rows: i64) {
        let counts: (i64, i64) = self
            .row(&format!("SELECT count(*), count(DISTINCT id) FROM {table}"))
            .await;
        assert_eq!(
            counts,
            (rows, rows),
            "{table}: every row exactly once across the chunks"
        );
    }

    /// [`pg_rows`] on a fresh connection to this database.
    pub async fn rows<T: FromRow>(&self, sql: &str) -> Vec<T> {
        pg_rows(&self.client().await, sql).await
    }

    /// The tables of schema `public`, by name.
    pub async fn tables(&self) -> Vec<String> {
        self.column("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            .await
    }

    /// Rows in `table`, or `None` when the table does not exist.
    pub async fn count(&self, table: &str) -> Option<i64> {
        let client = self.client().await;
        client
            .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
            .await
            .ok()
            .map(|row| row.get(0))
    }
}

impl crate::Throwaway for TestDb {
    fn create() -> impl std::future::Future<Output = Self> + Send {
        Self::new()
    }

    async fn execute(&self, sql: &str) {
        self.client()
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn locator(&self) -> ferry_core::Locator {
        TestDb::locator(self)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        drop_database(&self.name);
    }
}

/// A throwaway database for a synchronous test (black-box tests of the `ferry` binary):
/// `PgDb::new()`, every query blocking, every value as text.
pub struct PgDb {
    pub name: String,
    /// URL of this database (for ferry and for queries).
    pub url: String,
}

impl Default for PgDb {
    fn default() -> Self {
        Self::new()
    }
}

impl PgDb {
    /// Creates a fresh database. Panics when the server cannot be reached.
    pub fn new() -> Self {
        let admin = pg_admin_url();
        let name = crate::unique("ferry_cli");
        if let Err(e) = pg_try_query(&admin, &format!("CREATE DATABASE \"{name}\"")) {
            cannot_create(&admin, e);
        }
        let url = with_database(&admin, &name);
        Self { name, url }
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
        drop_database(&self.name);
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

/// `url` with its password shown as `***`, for messages.
pub fn redact(url: &str) -> String {
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

// ---------------------------------------------------------------------------------------------
// A private server

pub struct PrivatePg {
    pub port: u16,
    /// The Unix socket directory (connections there need the password too).
    pub socket_dir: PathBuf,
    pub user: String,
    pub password: String,
    /// A database owned by `user`.
    pub database: String,
    pg_ctl: PathBuf,
    psql: PathBuf,
    data: PathBuf,
    log: PathBuf,
    as_root: bool,
    _dir: tempfile::TempDir,
}

fn bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    // Newest version first.
    dirs.sort();
    dirs.reverse();
    dirs
}

impl PrivatePg {
    /// Starts the server with `certs`' server certificate and creates `user` (password
    /// `password`) owning a database of the same name.
    pub fn start(certs: &Certs, user: &str, password: &str) -> Self {
        let dirs = bin_dirs();
        let find = |name: &str| {
            crate::find_bin(&[name], &dirs).unwrap_or_else(|| {
                panic!("{name} not found (PATH, /usr/lib/postgresql/*/bin): install PostgreSQL (apt-get install postgresql)")
            })
        };
        let (initdb, pg_ctl, psql) = (find("initdb"), find("pg_ctl"), find("psql"));
        let as_root = crate::is_root();
        let dir = tempfile::Builder::new()
            .prefix("ferry-test-pg")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        let as_pg = |program: &Path| {
            if as_root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            }
        };
        if as_root {
            crate::run(
                Command::new("chown").arg("postgres:").arg(dir.path()),
                "chown the PostgreSQL directory",
            );
        }
        crate::run(
            as_pg(&initdb)
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"])
                .args(["--auth-local=trust", "--auth-host=reject"]),
            "initdb",
        );
        // Only TLS over TCP, passwords everywhere but the harness's own superuser socket login.
        let hba = "local all postgres trust\n\
                   local all all scram-sha-256\n\
                   hostssl all all 127.0.0.1/32 scram-sha-256\n";
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        for (from, to) in [
            (&certs.server_cert, "server.crt"),
            (&certs.server_key, "server.key"),
        ] {
            crate::write_private(&data.join(to), &std::fs::read(from).unwrap());
        }
        if as_root {
            crate::run(
                Command::new("chown").arg("-R").arg("postgres:").arg(&data),
                "chown",
            );
        }
        let socket_dir = dir.path().to_path_buf();
        let log = dir.path().join("server.log");
        let mut port = 0;
        for attempt in 1..=3 {
            port = crate::free_port();
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c full_page_writes=off \
                 -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key",
                socket_dir.display()
            );
            let ok = as_pg(&pg_ctl)
                .arg("start")
                .arg("-D")
                .arg(&data)
                .args(["-w", "-t", "60", "-l"])
                .arg(&log)
                .args(["-o", &options])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                break;
            }
            assert!(
                attempt < 3,
                "private PostgreSQL did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let pg = Self {
            port,
            socket_dir,
            user: user.into(),
            password: password.into(),
            database: user.into(),
            pg_ctl,
            psql: psql.clone(),
            data,
            log,
            as_root,
            _dir: dir,
        };
        let quoted_pw = password.replace('\'', "''");
        crate::run(
            Command::new(&psql)
                .arg("-h")
                .arg(&pg.socket_dir)
                .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres"])
                .args(["-v", "ON_ERROR_STOP=1", "-c"])
                .arg(format!(
                    "CREATE ROLE \"{user}\" LOGIN PASSWORD '{quoted_pw}'"
                ))
                .args([
                    "-c",
                    &format!("CREATE DATABASE \"{user}\" OWNER \"{user}\""),
                ]),
            "create the PostgreSQL test user",
        );
        pg
    }

    /// `postgres://user[:password]@host:port/database?query`, the password percent-encoded.
    pub fn url(&self, host: &str, password: Option<&str>, query: &str) -> String {
        let auth = match password {
            Some(p) => format!("{}:{}", self.user, encode(p)),
            None => self.user.clone(),
        };
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!(
            "postgres://{auth}@{host}:{}/{}{q}",
            self.port, self.database
        )
    }
}

impl PrivatePg {
    /// `pg_ctl` as the server's OS user.
    fn pg_ctl(&self) -> Command {
        if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&self.pg_ctl);
            c
        } else {
            Command::new(&self.pg_ctl)
        }
    }

    /// `pg_ctl restart -m fast`: every connection is ended (57P01 admin_shutdown) and the
    /// server comes back with the options it was started with; returns once it accepts
    /// connections again. The log file is given again: without it the new server would write
    /// into (and hold open) the pipes this call reads.
    pub fn restart(&self) {
        crate::run(
            self.pg_ctl()
                .arg("restart")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "fast", "-w", "-t", "60", "-l"])
                .arg(&self.log),
            "pg_ctl restart",
        );
    }

    /// The first column of the first row of `sql`, run as the superuser in the test user's
    /// database over the Unix socket; `None` when the query fails or returns nothing.
    pub fn scalar(&self, sql: &str) -> Option<String> {
        let out = Command::new(&self.psql)
            .arg("-h")
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d"])
            .arg(&self.database)
            .args(["-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let first = text.lines().next()?.trim().to_string();
        (out.status.success() && !first.is_empty()).then_some(first)
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self
            .pg_ctl()
            .arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w"])
            .output();
    }
}
