//! A PostgreSQL database created for one test and dropped when it ends (the pattern of
//! crates/ferry/tests/common).

use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::{Client, NoTls};

/// The admin URL: `FERRY_TEST_PG_URL`, else the local service. Tests never skip without it.
pub fn admin_url() -> String {
    std::env::var("FERRY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is needed for this test and the server at FERRY_TEST_PG_URL (or 127.0.0.1:5432) does not answer ({e}): run scripts/test, which finds or starts one, or set FERRY_TEST_PG_URL")
    });
    tokio::spawn(conn);
    client
}

pub struct TestDb {
    pub name: String,
    pub url: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new() -> Self {
        let admin = admin_url();
        let client = connect(&admin).await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos();
        let name = format!(
            "ferry_e2e_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        let mut url = url::Url::parse(&admin).expect("FERRY_TEST_PG_URL is a URL");
        url.set_path(&name);
        Self {
            name,
            url: url.to_string(),
        }
    }

    pub async fn client(&self) -> Client {
        connect(&self.url).await
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

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok((client, conn)) = tokio_postgres::connect(&admin_url(), NoTls).await {
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
