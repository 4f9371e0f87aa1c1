//! The black-box CLI tests reach the shared test kit (crates/ferry-testkit) through here, under
//! the names they have always used: running the real `ferry` binary, SQLite source files, and
//! throwaway PostgreSQL databases.

pub use ferry_testkit::prelude::*;
