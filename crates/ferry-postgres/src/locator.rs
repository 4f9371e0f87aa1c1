//! PostgreSQL's locators and its registration: `postgres:` URLs (kept whole for the driver,
//! printed without the password) and the value the registry in the `ferry` crate lists.

use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::locator::{Backend, ServerUrl};
use ferry_core::registration::{Address, Registration};
use ferry_core::session::SqlSession;
use ferry_core::{Locator, Result};

use crate::{PostgresDialect, PostgresSource, PostgresTarget, Session};

pub const BACKEND: Backend = Backend::new("postgres", "PostgreSQL");

/// Parses `postgres://user:pass@host:port/db` (or `postgresql://`).
///
/// # Errors
/// An input error, with the password hidden, when the text is not a URL.
pub fn parse(text: &str) -> Result<Locator> {
    ServerUrl::locator(BACKEND, text)
}

/// The URL of a PostgreSQL locator.
///
/// # Errors
/// An input error when the locator is of another backend.
pub fn url(locator: &Locator) -> Result<&url::Url> {
    ServerUrl::url_of(locator, BACKEND)
}

/// The locator reading `schema` (`--schema-name`), `None` when it is not PostgreSQL's.
pub fn with_schema(locator: &Locator, schema: &str) -> Option<Locator> {
    let mut place = ServerUrl::of(locator, BACKEND)?.clone();
    place.url.query_pairs_mut().append_pair("schema", schema);
    Some(Locator::new(BACKEND, place))
}

ferry_core::opening! {
    /// PostgreSQL in the registry.
    pub struct PostgresRegistration;
    BACKEND, &["postgres", "postgresql"], "postgres://user@host/db", parse;
    |l| PostgresSource::open(l).await?, |l| PostgresTarget::open(l).await?, PostgresDialect
}

#[async_trait]
impl Registration for PostgresRegistration {
    async fn open_session(&self, locator: &Locator) -> Result<Arc<dyn SqlSession>> {
        Ok(Arc::new(Session::open_store(locator).await?))
    }

    /// The default port filled in; the database defaults to the user's name.
    fn normalised_address(&self, locator: &Locator) -> Address {
        ServerUrl::of(locator, BACKEND).map_or_else(
            || Address::Key(locator.redacted()),
            |place| place.address(5432, true),
        )
    }
}
