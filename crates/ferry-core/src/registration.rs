//! What a backend crate gives the registry (in the `ferry` crate, the only place that lists
//! backends): its schemes and locator parser, how to open it, its dialect, and the checks that
//! compare two of its locators. Adding a backend is one value of this trait and one line there.

use std::sync::Arc;

pub use async_trait::async_trait;

use crate::connector::{Dialect, Identity, Source, Target};
use crate::error::{Error, Result};
use crate::locator::{Backend, Locator, redact_free_text};
use crate::session::SqlSession;

/// What the job server keys a target by when the database cannot be asked who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// The whole key, such as a file's real path (`sqlite:///srv/app.db`): a file target
    /// usually does not exist before its first job creates it, so it is always keyed so.
    Key(String),
    /// A server: its host as written (resolved by the caller), its port (the default filled
    /// in) and the rest of the key (`/db?schema=s`).
    Server {
        host: String,
        port: u16,
        rest: String,
    },
}

/// What every backend has alike: its names, its locator parser, how to open either side, its
/// dialect. Written with [`crate::opening!`], one declaration per backend.
#[async_trait]
pub trait Opening: Send + Sync {
    fn backend(&self) -> Backend;

    /// The URL schemes this backend reads, the one messages name first.
    fn schemes(&self) -> &'static [&'static str];

    /// A locator to show in messages (`postgres://user@host/db`).
    fn example(&self) -> &'static str;

    /// Parses a locator whose scheme is one of `schemes` (the whole text, scheme included).
    ///
    /// # Errors
    /// An input error naming the problem, with any password hidden.
    fn parse(&self, text: &str) -> Result<Locator>;

    /// # Errors
    /// When the source cannot be opened.
    async fn open_source(&self, locator: &Locator) -> Result<Arc<dyn Source>>;

    /// # Errors
    /// When the target cannot be reached, or the locator is for a source only.
    async fn open_target(&self, locator: &Locator) -> Result<Arc<dyn Target>>;

    /// The pure dialect, for planning without a connection.
    fn dialect(&self) -> Box<dyn Dialect>;
}

/// Declares a backend's unit struct and its [`Opening`]: the backend, its schemes, an example
/// locator, the parser, then how to open a source and a target from a locator `l` (inside an
/// `async fn` returning `Result`, so `.await?` works) and the dialect. A macro because these
/// seven methods are the same in every backend but for these values.
#[macro_export]
macro_rules! opening {
    (
        $(#[$meta:meta])* $vis:vis struct $name:ident;
        $backend:expr, $schemes:expr, $example:expr, $parse:path;
        |$l:ident| $source:expr, |$t:ident| $target:expr, $dialect:expr $(;)?
    ) => {
        $(#[$meta])*
        $vis struct $name;

        #[$crate::registration::async_trait]
        impl $crate::registration::Opening for $name {
            fn backend(&self) -> $crate::Backend {
                $backend
            }
            fn schemes(&self) -> &'static [&'static str] {
                $schemes
            }
            fn example(&self) -> &'static str {
                $example
            }
            fn parse(&self, text: &str) -> $crate::Result<$crate::Locator> {
                $parse(text)
            }
            async fn open_source(
                &self,
                $l: &$crate::Locator,
            ) -> $crate::Result<::std::sync::Arc<dyn $crate::connector::Source>> {
                Ok(::std::sync::Arc::new($source))
            }
            async fn open_target(
                &self,
                $t: &$crate::Locator,
            ) -> $crate::Result<::std::sync::Arc<dyn $crate::connector::Target>> {
                Ok(::std::sync::Arc::new($target))
            }
            fn dialect(&self) -> Box<dyn $crate::connector::Dialect> {
                Box::new($dialect)
            }
        }
    };
}

/// One backend, as the registry sees it: its [`Opening`], and what only some backends say.
#[async_trait]
pub trait Registration: Opening {
    /// A read-write session for ferry's own tables (the job store), durable and usable by
    /// another process at the same time.
    ///
    /// # Errors
    /// When the database cannot be opened, or this backend cannot keep ferry's own tables.
    async fn open_session(&self, locator: &Locator) -> Result<Arc<dyn SqlSession>> {
        Err(Error::input(format!(
            "{locator}: ferry cannot keep its own tables in {} yet",
            self.backend().label()
        )))
    }

    /// Before any connection: why two different locators of this backend name one database
    /// (the same file by another path), if they do.
    fn same_spelling(&self, _source: &Locator, _target: &Locator) -> Option<String> {
        None
    }

    /// Why the two sides, whose identities share `shared`, are one database, when this backend
    /// can say more than "both are {target}".
    fn why_shared(
        &self,
        _source: (&Locator, &Identity),
        _target: (&Locator, &Identity),
        _shared: &str,
    ) -> Option<String> {
        None
    }

    /// The job server's fallback key for a target (see [`Address`]).
    fn normalised_address(&self, locator: &Locator) -> Address;
}

/// Parses a locator URL with the backend its scheme names.
///
/// # Errors
/// An input error naming the problem when the text is not a URL of one of `backends`.
pub fn parse(text: &str, backends: &[&'static dyn Registration]) -> Result<Locator> {
    let text = text.trim();
    let Some((scheme, _)) = text.split_once(':') else {
        let examples: Vec<&str> = backends.iter().map(|b| b.example()).collect();
        return Err(Error::input(format!(
            "'{}' is not a locator URL: write it as {}",
            redact_free_text(text),
            listed(&examples, "or")
        )));
    };
    let scheme = scheme.to_ascii_lowercase();
    match backends
        .iter()
        .find(|b| b.schemes().contains(&scheme.as_str()))
    {
        Some(backend) => backend.parse(text),
        None => {
            let schemes: Vec<String> = backends
                .iter()
                .filter_map(|b| b.schemes().first())
                .map(|s| format!("{s}:"))
                .collect();
            let schemes: Vec<&str> = schemes.iter().map(String::as_str).collect();
            Err(Error::input(format!(
                "unknown locator scheme '{scheme}:': ferry reads and writes {} URLs",
                listed(&schemes, "and")
            )))
        }
    }
}

/// `a, b and c`.
fn listed(items: &[&str], last: &str) -> String {
    match items.split_last() {
        None => String::new(),
        Some((only, [])) => only.to_string(),
        Some((tail, head)) => format!("{} {last} {tail}", head.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_read_as_english() {
        assert_eq!(super::listed(&["a"], "or"), "a");
        assert_eq!(super::listed(&["a", "b", "c"], "and"), "a, b and c");
    }
}
