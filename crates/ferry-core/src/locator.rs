//! Locators: one URL names a backend and a place in it. A locator prints with its password hidden.
//!
//! Core knows no backend by name: each backend crate parses its own schemes into a [`Place`]
//! (its `locator.rs`), and the registry in the `ferry` crate picks the backend by scheme
//! (`registration::parse`). Core keeps the neutral shell every layer passes around.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::registration::Address;

/// A backend's id (`sqlite`, `postgres`, `mysql`) and its name for people (`SQLite`): data, not
/// a closed list, so adding a backend does not edit the core. Two ids are equal by `id`.
#[derive(Clone, Copy)]
pub struct Backend {
    id: &'static str,
    label: &'static str,
}

impl Backend {
    pub const fn new(id: &'static str, label: &'static str) -> Self {
        Self { id, label }
    }

    /// The lowercase id, as in URLs, JSON and job keys.
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// The product's name, for messages (`SQLite`, `PostgreSQL`).
    pub fn label(&self) -> &'static str {
        self.label
    }
}

impl PartialEq for Backend {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Backend {}

impl std::hash::Hash for Backend {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl serde::Serialize for Backend {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.id)
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id)
    }
}

/// A backend's parsed locator value. Its `Display` is the locator with any password hidden.
pub trait Place: fmt::Display + Send + Sync + 'static {
    /// The host (and port) of a server, or the file: what a job list shows, never a credential.
    fn host(&self) -> String;
}

/// What the neutral [`Locator`] needs of a place beyond [`Place`]: equality and downcasting.
trait AnyPlace: Place {
    fn as_any(&self) -> &dyn Any;
    fn same(&self, other: &dyn Any) -> bool;
}

impl<P: Place + PartialEq> AnyPlace for P {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<P>() == Some(self)
    }
}

/// Where data lives: a backend and its parsed place. Parsing (through the registry) checks the
/// scheme and the backend's parameters before any connection is made.
#[derive(Clone)]
pub struct Locator {
    backend: Backend,
    place: Arc<dyn AnyPlace>,
}

impl Locator {
    pub fn new<P: Place + PartialEq>(backend: Backend, place: P) -> Self {
        Self {
            backend,
            place: Arc::new(place),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The backend's own value, when the locator is of the type asked for.
    pub fn place<P: Place>(&self) -> Option<&P> {
        self.place.as_any().downcast_ref()
    }

    /// The host (and port) of a server, or the file of a file database.
    pub fn host(&self) -> String {
        self.place.host()
    }

    /// The URL with its password, if any, replaced by `***`.
    pub fn redacted(&self) -> String {
        self.to_string()
    }
}

impl PartialEq for Locator {
    fn eq(&self, other: &Self) -> bool {
        self.backend == other.backend && self.place.same(other.place.as_any())
    }
}

impl Eq for Locator {}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.place.fmt(f)
    }
}

impl fmt::Debug for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Locator({self})")
    }
}

/// The place of a database server named by a URL (`postgres://user:pass@host:port/db`): kept
/// whole for the driver, printed with its password hidden.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerUrl {
    pub url: url::Url,
}

impl ServerUrl {
    /// The server URL of a locator of `backend`, if it is one.
    pub fn of(locator: &Locator, backend: Backend) -> Option<&Self> {
        locator.place().filter(|_| locator.backend() == backend)
    }

    /// `text` as a locator of `backend`, whose place is a server URL.
    ///
    /// # Errors
    /// An input error, with any password hidden, when the text is not a URL.
    pub fn locator(backend: Backend, text: &str) -> Result<Locator> {
        Ok(Locator::new(backend, Self::parse(text)?))
    }

    /// The URL of a locator of `backend`.
    ///
    /// # Errors
    /// An input error when the locator is of another backend.
    pub fn url_of(locator: &Locator, backend: Backend) -> Result<&url::Url> {
        Self::of(locator, backend)
            .map(|place| &place.url)
            .ok_or_else(|| Error::input(format!("{locator} is not a {} locator", backend.label())))
    }

    /// # Errors
    /// An input error, with any password hidden, when the text is not a URL.
    pub fn parse(text: &str) -> Result<Self> {
        url::Url::parse(text).map(|url| Self { url }).map_err(|e| {
            Error::input(format!(
                "'{}' is not a valid URL ({e})",
                redact_free_text(text)
            ))
        })
    }

    /// The job server's fallback key: the host as written (`localhost` when none), lowercase,
    /// without IPv6 brackets; the port (`default_port` when none); and `/db`, with `?schema=`
    /// when one is given. `db` defaults to the user's name when `user_is_default_db`.
    pub fn address(&self, default_port: u16, user_is_default_db: bool) -> Address {
        let url = &self.url;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .unwrap_or("localhost")
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        let port = url.port().unwrap_or(default_port);
        let mut db = url.path().trim_matches('/').to_string();
        if db.is_empty() && user_is_default_db {
            db = url.username().to_string();
        }
        let schema = url
            .query_pairs()
            .find(|(k, _)| k == "schema")
            .map(|(_, v)| format!("?schema={v}"))
            .unwrap_or_default();
        Address::Server {
            host,
            port,
            rest: format!("/{db}{schema}"),
        }
    }
}

impl Place for ServerUrl {
    fn host(&self) -> String {
        let host = self.url.host_str().unwrap_or("localhost");
        match self.url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        }
    }
}

impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerUrl({self})")
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut url = self.url.clone();
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
        }
        // Passwords can also hide in the query string of libpq-style URLs.
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        if !pairs.is_empty() {
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        f.write_str(url.as_str())
    }
}

/// Best-effort redaction for text that failed to parse as a URL: hide anything between the
/// first `:` after `//` and the `@`.
pub fn redact_free_text(text: &str) -> String {
    if let Some(start) = text.find("//") {
        let after = &text[start + 2..];
        if let Some(at) = after.rfind('@')
            && let Some(colon) = after[..at].find(':')
        {
            return format!(
                "{}//{}:***{}",
                &text[..start],
                &after[..colon],
                &after[at..]
            );
        }
    }
    text.to_string()
}

/// Takes ferry's own parameters out of a server URL's query, so that the driver sees only its
/// own: `take` is given each parameter and its value, and answers whether it was ferry's.
///
/// # Errors
/// The first error `take` returns (a value ferry does not understand).
pub fn take_query(
    url: &mut url::Url,
    mut take: impl FnMut(&str, &str) -> Result<bool>,
) -> Result<()> {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut kept = Vec::new();
    for (k, v) in pairs {
        if !take(&k, &v)? {
            kept.push((k, v));
        }
    }
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    Ok(())
}

/// `%20` and friends decoded, `+` kept as is (a path, not a form value).
pub fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("p={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG: Backend = Backend::new("postgres", "PostgreSQL");

    fn server(text: &str) -> Locator {
        Locator::new(PG, ServerUrl::parse(text).unwrap())
    }

    #[test]
    fn passwords_are_hidden() {
        let l = server("postgres://app:s3cret@db.example:5432/app");
        assert_eq!(l.to_string(), "postgres://app:***@db.example:5432/app");
        assert!(!format!("{l:?}").contains("s3cret"));
        let l = server("postgres://app@h/db?password=s3cret&sslmode=disable");
        assert!(!l.to_string().contains("s3cret"));
        assert!(l.to_string().contains("sslmode=disable"));
        let err = ServerUrl::parse("postgres://app:s3cret@[bad/db").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn equality_is_by_backend_and_place() {
        let a = server("postgres://h/db");
        assert_eq!(a, server("postgres://h/db"));
        assert_ne!(a, server("postgres://h/other"));
        let mysql = Locator::new(
            Backend::new("mysql", "MySQL"),
            ServerUrl::parse("postgres://h/db").unwrap(),
        );
        assert_ne!(a, mysql);
        assert_eq!(a.host(), "h");
        assert!(a.place::<ServerUrl>().is_some());
    }
}
