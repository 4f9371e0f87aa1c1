//! The blob tests reach the shared test kit (crates/ferry-testkit) through here: a real S3
//! server, unique prefixes, and file-tree helpers.

pub use ferry_testkit::prelude::*;
