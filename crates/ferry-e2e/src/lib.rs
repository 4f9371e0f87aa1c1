//! Test support for ferry's end-to-end tests: a real `ferry serve` process, its API, a headless
//! Chromium driven over WebDriver, throwaway PostgreSQL databases and SQLite sources. Nothing
//! here is mocked, and a missing tool or server fails the test with what to install.

pub mod api;
pub mod browser;
pub mod fixtures;
pub mod paths;
pub mod pg;
pub mod serve;

/// Polls `check` every 200 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
