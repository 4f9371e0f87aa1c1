//! ferry's integration tests reach the shared test kit (crates/ferry-testkit) through here, under
//! the names they have always used: throwaway PostgreSQL and MySQL databases, the SQLite quirks
//! fixture, locators, contexts and options.

pub use ferry_testkit::prelude::*;
