//! MySQL/MariaDB for tests: a throwaway database on the shared server (`FERRY_TEST_MYSQL_URL`,
//! else the local service), dropped when its value is dropped; and a private MariaDB server
//! (mariadb-install-db + mariadbd) that requires TLS on TCP (`--require-secure-transport`) and
//! has one user with a password, killed and deleted on drop, also when the test fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use crate::certs::Certs;

/// The MySQL/MariaDB admin URL: `FERRY_TEST_MYSQL_URL`, else the local service.
pub fn mysql_admin_url() -> String {
    std::env::var("FERRY_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/".into())
}

/// Connects to `url`; panics with what to do when the server does not answer.
pub async fn my_connect(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::from_url(url).await.unwrap_or_else(|e| {
        panic!("MySQL/MariaDB is needed for this test and {} does not answer ({e}): run scripts/test, which finds or starts one, or set FERRY_TEST_MYSQL_URL", crate::pg::redact(url))
    })
}

/// The first row `sql` returns on `conn`, decoded as `T` (one value or a tuple); panics with the
/// query when it fails or returns no row.
pub async fn my_first<T: mysql_async::prelude::FromRow + Send + 'static>(
    conn: &mut mysql_async::Conn,
    sql: &str,
) -> T {
    conn.query_first(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

/// A MySQL database created for one test and dropped when it ends.
pub struct MyDb {
    pub name: String,
    pub url: String,
}

impl MyDb {
    pub async fn new() -> Self {
        let admin = mysql_admin_url();
        let mut conn = my_connect(&admin).await;
        let name = crate::unique("ferry_test");
        conn.query_drop(format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
            .await
            .expect("create MySQL test database");
        let mut url = url::Url::parse(&admin).expect("admin URL");
        url.set_path(&name);
        Self {
            name,
            url: url.to_string(),
        }
    }

    pub async fn conn(&self) -> mysql_async::Conn {
        my_connect(&self.url).await
    }

    pub fn locator(&self) -> ferry_core::Locator {
        crate::job::locator_of(&self.url)
    }

    /// Every row `sql` returns, decoded as `T`. Without `?` it is a plain text query; with
    /// them, a prepared statement with each `?` bound to this database's name (for
    /// `information_schema` queries).
    pub async fn rows<T: mysql_async::prelude::FromRow + Send + 'static>(
        &self,
        sql: &str,
    ) -> Vec<T> {
        let mut conn = self.conn().await;
        let marks = sql.matches('?').count();
        let rows = if marks == 0 {
            conn.query(sql).await
        } else {
            conn.exec(sql, vec![self.name.as_str(); marks]).await
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.disconnect().await;
        rows
    }

    /// The tables of this database, by name.
    pub async fn tables(&self) -> Vec<String> {
        self.rows("SHOW TABLES").await
    }
}

impl crate::Throwaway for MyDb {
    fn create() -> impl std::future::Future<Output = Self> + Send {
        Self::new()
    }

    async fn execute(&self, sql: &str) {
        let mut conn = self.conn().await;
        conn.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.disconnect().await;
    }

    fn locator(&self) -> ferry_core::Locator {
        MyDb::locator(self)
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        crate::on_own_runtime(move || async move {
            if let Ok(mut conn) = mysql_async::Conn::from_url(mysql_admin_url()).await {
                let _ = conn
                    .query_drop(format!("DROP DATABASE IF EXISTS {name}"))
                    .await;
                let _ = conn.disconnect().await;
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// A private server

pub struct PrivateMariadb {
    pub port: u16,
    pub socket: PathBuf,
    pub user: String,
    pub password: String,
    /// A database `user` may use.
    pub database: String,
    server: Child,
    _dir: tempfile::TempDir,
}

impl PrivateMariadb {
    pub fn start(certs: &Certs, user: &str, password: &str) -> Self {
        let find = |names: &[&str]| {
            crate::find_bin(names, &[]).unwrap_or_else(|| {
                panic!(
                    "{} not found: install MariaDB (apt-get install mariadb-server)",
                    names[0]
                )
            })
        };
        let install_db = find(&["mariadb-install-db", "mysql_install_db"]);
        let mariadbd = find(&["mariadbd", "mysqld"]);
        let client = find(&["mariadb", "mysql"]);
        let os_user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let dir = tempfile::Builder::new()
            .prefix("ferry-test-mysql")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        crate::run(
            Command::new(&install_db)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--user={os_user}"))
                .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
                .stdin(Stdio::null()),
            "mariadb-install-db",
        );
        let socket = dir.path().join("mysqld.sock");
        let log = dir.path().join("server.log");
        let root = |c: &mut Command| {
            c.arg("--no-defaults")
                .arg(format!("--socket={}", socket.display()))
                .args(["-uroot", "--connect-timeout=5"])
                .stdin(Stdio::null());
        };
        for attempt in 1..=3 {
            let port = crate::free_port();
            let path = |p: &std::path::Path| p.display().to_string();
            let mut server = Command::new(&mariadbd)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", path(&data)))
                .arg(format!("--user={os_user}"))
                .args(["--bind-address=127.0.0.1", &format!("--port={port}")])
                .arg(format!("--socket={}", path(&socket)))
                .arg(format!(
                    "--pid-file={}",
                    path(&dir.path().join("mysqld.pid"))
                ))
                .arg(format!("--log-error={}", path(&log)))
                .args(["--skip-name-resolve", "--innodb-flush-log-at-trx-commit=2"])
                .arg(format!("--ssl-ca={}", path(&certs.ca)))
                .arg(format!("--ssl-cert={}", path(&certs.server_cert)))
                .arg(format!("--ssl-key={}", path(&certs.server_key)))
                .arg("--require-secure-transport")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start mariadbd");
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut up = false;
            while Instant::now() < deadline {
                let mut ping = Command::new(&client);
                root(&mut ping);
                if ping
                    .args(["-e", "select 1"])
                    .output()
                    .is_ok_and(|o| o.status.success())
                {
                    up = true;
                    break;
                }
                if server.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            if !up {
                let _ = server.kill();
                let _ = server.wait();
                assert!(
                    attempt < 3,
                    "private MariaDB did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                continue;
            }
            let quoted_pw = password.replace('\\', "\\\\").replace('\'', "\\'");
            let mut setup = Command::new(&client);
            root(&mut setup);
            crate::run(
                setup.args([
                    "-e",
                    &format!(
                        "CREATE USER '{user}'@'%' IDENTIFIED BY '{quoted_pw}'; \
                         CREATE DATABASE `{user}`; GRANT ALL ON *.* TO '{user}'@'%'; \
                         CREATE USER '{user}'@'localhost' IDENTIFIED BY '{quoted_pw}'; \
                         GRANT ALL ON *.* TO '{user}'@'localhost'"
                    ),
                ]),
                "create the MariaDB test user",
            );
            return Self {
                port,
                socket,
                user: user.into(),
                password: password.into(),
                database: user.into(),
                server,
                _dir: dir,
            };
        }
        unreachable!("the loop returns or panics")
    }

    /// `mysql://user[:password]@host:port/database?query`, the password percent-encoded.
    pub fn url(&self, host: &str, password: Option<&str>, query: &str) -> String {
        let auth = match password {
            Some(p) => format!("{}:{}", self.user, crate::pg::encode(p)),
            None => self.user.clone(),
        };
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!("mysql://{auth}@{host}:{}/{}{q}", self.port, self.database)
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        // A throwaway server: no clean shutdown needed, its directory goes next.
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
