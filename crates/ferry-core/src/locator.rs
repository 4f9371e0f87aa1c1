//! Locators: one URL names a backend and a place in it. A locator prints with its password hidden.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// Where data lives. Parsing checks the scheme before any connection is made.
#[derive(Clone, PartialEq, Eq)]
pub enum Locator {
    /// `sqlite:///abs/app.db` or `sqlite://rel/app.db` (also `sqlite:app.db`);
    /// `?snapshot=backup` reads a source through a temporary copy made by SQLite's backup API.
    Sqlite {
        path: PathBuf,
        snapshot: SqliteSnapshot,
    },
    /// `postgres://user:pass@host:port/db` (or `postgresql://`). Kept whole for the driver.
    Postgres { url: url::Url },
    /// `mysql://user:pass@host:port/db` (or `mariadb://`).
    Mysql { url: url::Url },
}

/// How a SQLite source is read: in place, in one snapshot held for the whole run (default), or
/// from a temporary copy taken with SQLite's online backup API (`?snapshot=backup`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqliteSnapshot {
    #[default]
    InPlace,
    Backup,
}

/// The backends ferry knows, as data: the planner and the registry match on this, not on URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
        })
    }
}

impl Locator {
    /// Parses a locator URL.
    ///
    /// # Errors
    /// An input error naming the problem when the text is not a URL ferry understands.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let Some((scheme, rest)) = text.split_once(':') else {
            return Err(Error::input(format!(
                "'{}' is not a locator URL: write it as sqlite:///path/app.db, postgres://user@host/db or mysql://user@host/db",
                redact_free_text(text)
            )));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                let (path, query) = path.split_once('?').unwrap_or((path, ""));
                let snapshot = sqlite_query(query)?;
                if path.is_empty() {
                    return Err(Error::input(
                        "sqlite locator has no path: write sqlite:///absolute/path.db or sqlite://relative/path.db",
                    ));
                }
                let path = percent_decode(path);
                Ok(Locator::Sqlite {
                    path: PathBuf::from(path),
                    snapshot,
                })
            }
            "postgres" | "postgresql" => Ok(Locator::Postgres {
                url: parse_url(text)?,
            }),
            "mysql" | "mariadb" => Ok(Locator::Mysql {
                url: parse_url(text)?,
            }),
            other => Err(Error::input(format!(
                "unknown locator scheme '{other}:': ferry reads and writes sqlite:, postgres: and mysql: URLs"
            ))),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Locator::Sqlite { .. } => Backend::Sqlite,
            Locator::Postgres { .. } => Backend::Postgres,
            Locator::Mysql { .. } => Backend::Mysql,
        }
    }

    /// The URL with its password, if any, replaced by `***`.
    pub fn redacted(&self) -> String {
        self.to_string()
    }
}

/// The query string of a SQLite locator: only `snapshot=backup` is understood.
fn sqlite_query(query: &str) -> Result<SqliteSnapshot> {
    let mut snapshot = SqliteSnapshot::InPlace;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match (key.as_ref(), value.as_ref()) {
            ("snapshot", "backup") => snapshot = SqliteSnapshot::Backup,
            ("snapshot", other) => {
                return Err(Error::input(format!(
                    "snapshot={other} is not understood in a sqlite locator: use ?snapshot=backup (or nothing)"
                )));
            }
            (other, _) => {
                return Err(Error::input(format!(
                    "unknown sqlite locator parameter '{other}': the only one is ?snapshot=backup"
                )));
            }
        }
    }
    Ok(snapshot)
}

fn parse_url(text: &str) -> Result<url::Url> {
    url::Url::parse(text).map_err(|e| {
        Error::input(format!(
            "'{}' is not a valid URL ({e})",
            redact_free_text(text)
        ))
    })
}

/// Best-effort redaction for text that failed to parse as a URL: hide anything between the
/// first `:` after `//` and the `@`.
fn redact_free_text(text: &str) -> String {
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

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("p={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_string())
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Locator::Sqlite { path, snapshot } => {
                write!(f, "sqlite://{}", path.display())?;
                if *snapshot == SqliteSnapshot::Backup {
                    f.write_str("?snapshot=backup")?;
                }
                Ok(())
            }
            Locator::Postgres { url } | Locator::Mysql { url } => {
                let mut url = url.clone();
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
    }
}

impl fmt::Debug for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Locator({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            Locator::parse("sqlite:///var/lib/app.db").unwrap(),
            Locator::Sqlite {
                path: "/var/lib/app.db".into(),
                snapshot: SqliteSnapshot::InPlace
            }
        );
        assert_eq!(
            Locator::parse("sqlite://rel/app.db").unwrap(),
            Locator::Sqlite {
                path: "rel/app.db".into(),
                snapshot: SqliteSnapshot::InPlace
            }
        );
        assert_eq!(
            Locator::parse("sqlite:app.db").unwrap(),
            Locator::Sqlite {
                path: "app.db".into(),
                snapshot: SqliteSnapshot::InPlace
            }
        );
        assert_eq!(
            Locator::parse("sqlite:///tmp/my%20app.db").unwrap(),
            Locator::Sqlite {
                path: "/tmp/my app.db".into(),
                snapshot: SqliteSnapshot::InPlace
            }
        );
    }

    #[test]
    fn sqlite_query_parameters() {
        let l = Locator::parse("sqlite:///var/lib/app.db?snapshot=backup").unwrap();
        assert_eq!(
            l,
            Locator::Sqlite {
                path: "/var/lib/app.db".into(),
                snapshot: SqliteSnapshot::Backup
            }
        );
        assert_eq!(l.to_string(), "sqlite:///var/lib/app.db?snapshot=backup");
        for bad in ["sqlite:///app.db?mode=ro", "sqlite:///app.db?snapshot=wal"] {
            let err = Locator::parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert_eq!(err.to_string().lines().count(), 1, "{err}");
        }
        assert!(
            Locator::parse("sqlite:///app.db?mode=ro")
                .unwrap_err()
                .to_string()
                .contains("unknown sqlite locator parameter 'mode'")
        );
    }

    #[test]
    fn passwords_are_hidden() {
        let l = Locator::parse("postgres://app:s3cret@db.example:5432/app").unwrap();
        assert_eq!(l.to_string(), "postgres://app:***@db.example:5432/app");
        assert!(!format!("{l:?}").contains("s3cret"));
        let l = Locator::parse("postgres://app@h/db?password=s3cret&sslmode=disable").unwrap();
        assert!(!l.to_string().contains("s3cret"));
        assert!(l.to_string().contains("sslmode=disable"));
        let err = Locator::parse("postgres://app:s3cret@[bad/db").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn unknown_scheme_is_a_clear_input_error() {
        let err = Locator::parse("oracle://x/y").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("unknown locator scheme 'oracle:'"));
        assert!(Locator::parse("just-a-path.db").is_err());
    }
}
