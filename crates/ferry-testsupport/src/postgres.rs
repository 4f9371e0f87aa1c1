//! A private PostgreSQL server (initdb + pg_ctl from PATH or /usr/lib/postgresql/*/bin) with
//! TLS on, TCP accepted only over TLS (`hostssl`), and one user with a password
//! (scram-sha-256), so refusals are real. As root the server runs as the `postgres` OS user.
//! Stopped and deleted on drop, also when the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::certs::Certs;

pub struct PrivatePg {
    pub port: u16,
    /// The Unix socket directory (connections there need the password too).
    pub socket_dir: PathBuf,
    pub user: String,
    pub password: String,
    /// A database owned by `user`.
    pub database: String,
    pg_ctl: PathBuf,
    data: PathBuf,
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
            data,
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
        let mut c = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&self.pg_ctl);
            c
        } else {
            Command::new(&self.pg_ctl)
        };
        let _ = c
            .arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w"])
            .output();
    }
}
