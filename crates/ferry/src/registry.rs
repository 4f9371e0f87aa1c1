//! The registry: the only place that lists ferry's backends, each behind its cargo feature.
//! Every operation that depends on the backend (parse, open, dialect, the same-database checks,
//! the job server's keys) finds the backend's registration here.

use ferry_core::registration::{Address, Registration};
use ferry_core::{Error, Locator, Result};

/// The backends built in, in the order messages list them.
#[allow(clippy::vec_init_then_push)]
pub fn backends() -> Vec<&'static dyn Registration> {
    // One push per built-in backend, each behind its feature.
    #[allow(unused_mut)]
    let mut all: Vec<&'static dyn Registration> = Vec::new();
    #[cfg(feature = "sqlite")]
    all.push(&ferry_sqlite::SqliteRegistration);
    #[cfg(feature = "postgres")]
    all.push(&ferry_postgres::PostgresRegistration);
    #[cfg(feature = "mysql")]
    all.push(&ferry_mysql::MysqlRegistration);
    all
}

/// The registration of a locator's backend.
///
/// # Errors
/// An input error when that backend is not built in.
pub fn registration(locator: &Locator) -> Result<&'static dyn Registration> {
    backends()
        .into_iter()
        .find(|b| b.backend() == locator.backend())
        .ok_or_else(|| {
            Error::input(format!(
                "{} locators are not supported by this build of ferry: it was built without that backend's feature",
                locator.backend()
            ))
        })
}

/// Parses a locator URL (`sqlite:///path/app.db`, `postgres://user@host/db`, ...) with the
/// backend its scheme names. Nothing is connected.
///
/// # Errors
/// An input error naming the problem when the text is not a URL ferry understands.
pub fn parse_locator(text: &str) -> Result<Locator> {
    ferry_core::registration::parse(text, &backends())
}

/// What the job server keys a target by when the database cannot be asked (see [`Address`]).
///
/// # Errors
/// When the locator's backend is not built in.
pub fn normalised_address(locator: &Locator) -> Result<Address> {
    Ok(registration(locator)?.normalised_address(locator))
}

/// The locator of a SQLite file, read in place (the demo's files).
#[cfg(feature = "sqlite")]
pub fn sqlite_file(path: impl Into<std::path::PathBuf>) -> Locator {
    ferry_sqlite::locator::file(path)
}

/// A PostgreSQL source locator reading `schema` (`--schema-name`); `None` for other backends.
pub fn with_schema(locator: &Locator, schema: &str) -> Option<Locator> {
    #[cfg(feature = "postgres")]
    return ferry_postgres::locator::with_schema(locator, schema);
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (locator, schema);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::parse_locator;

    #[test]
    fn unknown_scheme_is_a_clear_input_error() {
        let err = parse_locator("oracle://x/y").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            "unknown locator scheme 'oracle:': ferry reads and writes sqlite:, postgres: and mysql: URLs"
        );
        let err = parse_locator("just-a-path.db").unwrap_err();
        assert_eq!(
            err.to_string(),
            "'just-a-path.db' is not a locator URL: write it as sqlite:///path/app.db, postgres://user@host/db or mysql://user@host/db"
        );
    }

    #[test]
    fn schemes_pick_their_backend() {
        for (text, backend) in [
            ("sqlite:///a.db", "sqlite"),
            ("SQLITE3:a.db", "sqlite"),
            (" postgresql://u@h/db ", "postgres"),
            ("mariadb://u@h/db", "mysql"),
        ] {
            assert_eq!(parse_locator(text).unwrap().backend().id(), backend);
        }
        let l = parse_locator("mysql://app:s3cret@h/db").unwrap();
        assert_eq!(l.to_string(), "mysql://app:***@h/db");
    }
}
