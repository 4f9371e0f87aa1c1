//! Shared test support: a throwaway PostgreSQL database per test (never a mock), and the
//! self-written SQLite fixture with every quirk ferry must survive.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::{Client, NoTls};

/// The admin URL: `FERRY_TEST_PG_URL`, else the local service. Tests never skip without it.
pub fn pg_admin_url() -> String {
    std::env::var("FERRY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub async fn pg_connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is needed for this test and {url} does not answer ({e}): run scripts/test, which finds or starts one, or set FERRY_TEST_PG_URL")
    });
    tokio::spawn(conn);
    client
}

/// A database created for one test and dropped when it ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new() -> Self {
        let admin = pg_admin_url();
        let client = pg_connect(&admin).await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "ferry_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin).expect("admin URL");
        url.set_path(&name);
        Self {
            name,
            url: url.to_string(),
        }
    }

    pub async fn client(&self) -> Client {
        pg_connect(&self.url).await
    }

    pub fn locator(&self) -> ferry::Locator {
        ferry::parse_locator(&self.url).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) = tokio_postgres::connect(&pg_admin_url(), NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Builds the quirks fixture (tests/fixtures/quirks.sql) at `dir/quirks.db`.
pub fn quirks_db(dir: &Path) -> PathBuf {
    let path = dir.join("quirks.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    // The application's own collation: ferry does not have it and must still read the table.
    conn.create_collation("unicode_nocase", |a: &str, b: &str| {
        a.to_lowercase().cmp(&b.to_lowercase())
    })
    .unwrap();
    conn.execute_batch(include_str!("../fixtures/quirks.sql"))
        .unwrap();
    drop(conn);
    path
}

pub fn sqlite(path: &Path) -> ferry::Locator {
    ferry::sqlite_file(path)
}

pub fn context(confirm: bool) -> ferry::Context {
    ferry::Context {
        observer: std::sync::Arc::new(ferry::Quiet),
        confirm: std::sync::Arc::new(ferry::Answer(confirm)),
        cancel: tokio_util::sync::CancellationToken::new(),
    }
}

pub fn options(dir: &Path) -> ferry::CopyOptions {
    ferry::CopyOptions {
        reject_dir: dir.join("rejects"),
        workers: 2,
        ..Default::default()
    }
}

pub fn with_tables(
    mut o: ferry::CopyOptions,
    include: &[&str],
    exclude: &[&str],
) -> ferry::CopyOptions {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    o.schema.filter = ferry::TableFilter::new(&s(include), &s(exclude)).unwrap();
    o
}

/// Every file in `dir` with its SHA-256, to prove a source is untouched.
pub fn snapshot(dir: &Path) -> Vec<(String, String)> {
    use sha2::Digest;
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                format!("{:x}", sha2::Sha256::digest(&bytes)),
            )
        })
        .collect();
    out.sort();
    out
}

/// The MySQL/MariaDB admin URL: `FERRY_TEST_MYSQL_URL`, else the local service.
pub fn mysql_admin_url() -> String {
    std::env::var("FERRY_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/".into())
}

/// A MySQL database created for one test and dropped when it ends.
pub struct MyDb {
    pub name: String,
    pub url: String,
}

pub async fn my_connect(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::from_url(url).await.unwrap_or_else(|e| {
        panic!("MySQL/MariaDB is needed for this test and {url} does not answer ({e}): run scripts/test, which finds or starts one, or set FERRY_TEST_MYSQL_URL")
    })
}

impl MyDb {
    pub async fn new() -> Self {
        use mysql_async::prelude::Queryable;
        let admin = mysql_admin_url();
        let mut conn = my_connect(&admin).await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "ferry_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
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

    pub fn locator(&self) -> ferry::Locator {
        ferry::parse_locator(&self.url).unwrap()
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use mysql_async::prelude::Queryable;
                if let Ok(mut conn) = mysql_async::Conn::from_url(mysql_admin_url()).await {
                    let _ = conn
                        .query_drop(format!("DROP DATABASE IF EXISTS {name}"))
                        .await;
                    let _ = conn.disconnect().await;
                }
            });
        })
        .join();
    }
}
