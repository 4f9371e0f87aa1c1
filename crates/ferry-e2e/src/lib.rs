//! Test support for ferry's end-to-end tests: a real `ferry serve` process, its API, a headless
//! Chromium driven over WebDriver, throwaway PostgreSQL databases and SQLite sources. Nothing
//! here is mocked, and a missing tool or server fails the test with what to install.

pub mod api;
pub mod browser;
pub mod fixtures;
pub mod paths;
pub mod serve;

/// Throwaway PostgreSQL databases and polling come from the shared test kit.
pub use ferry_testkit::{eventually, pg};
