//! The blob tests reach the shared test kit (crates/ferry-testkit) through here: a real S3
//! server, unique prefixes, and file-tree helpers.

pub use ferry_testkit::files::*;
pub use ferry_testkit::s3::*;
pub use ferry_testkit::unique;
