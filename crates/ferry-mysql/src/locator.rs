//! MySQL's (and MariaDB's) locators and its registration: `mysql:` URLs (kept whole for the
//! driver, printed without the password) and the value the registry in the `ferry` crate lists.

use async_trait::async_trait;
use ferry_core::locator::{Backend, ServerUrl};
use ferry_core::registration::{Address, Registration};
use ferry_core::{Locator, Result};

use crate::{MysqlDialect, MysqlSource, MysqlTarget};

pub const BACKEND: Backend = Backend::new("mysql", "MySQL");

/// Parses `mysql://user:pass@host:port/db` (or `mariadb://`).
///
/// # Errors
/// An input error, with the password hidden, when the text is not a URL.
pub fn parse(text: &str) -> Result<Locator> {
    ServerUrl::locator(BACKEND, text)
}

ferry_core::opening! {
    /// MySQL and MariaDB in the registry.
    pub struct MysqlRegistration;
    BACKEND, &["mysql", "mariadb"], "mysql://user@host/db", parse;
    |l| MysqlSource::open(l).await?, |l| MysqlTarget::open(l).await?, MysqlDialect::default()
}

#[async_trait]
impl Registration for MysqlRegistration {
    /// The default port filled in.
    fn normalised_address(&self, locator: &Locator) -> Address {
        ServerUrl::of(locator, BACKEND).map_or_else(
            || Address::Key(locator.redacted()),
            |place| place.address(3306, false),
        )
    }
}
