//! SQLite's locators and its registration: `sqlite:` URLs (a file path and how a source is
//! read), the spelling checks that find one file under two paths, and the value the registry
//! in the `ferry` crate lists.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::connector::Identity;
use ferry_core::locator::{Backend, Place, percent_decode};
use ferry_core::registration::{Address, Registration};
use ferry_core::session::SqlSession;
use ferry_core::{Error, Locator, Result};

use crate::session::SqliteSession;
use crate::{SqliteDialect, SqliteSource, SqliteTarget};

pub const BACKEND: Backend = Backend::new("sqlite", "SQLite");

/// How a SQLite source is read: in place, in one snapshot held for the whole run (default), or
/// from a temporary copy taken with SQLite's online backup API (`?snapshot=backup`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqliteSnapshot {
    #[default]
    InPlace,
    Backup,
}

/// `sqlite:///abs/app.db` or `sqlite://rel/app.db` (also `sqlite:app.db`);
/// `?snapshot=backup` reads a source through a temporary copy made by SQLite's backup API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteLocator {
    pub path: PathBuf,
    pub snapshot: SqliteSnapshot,
}

impl Place for SqliteLocator {
    fn host(&self) -> String {
        self.path.display().to_string()
    }
}

impl fmt::Display for SqliteLocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sqlite://{}", self.path.display())?;
        if self.snapshot == SqliteSnapshot::Backup {
            f.write_str("?snapshot=backup")?;
        }
        Ok(())
    }
}

/// The locator of the SQLite file at `path`, read in place.
pub fn file(path: impl Into<PathBuf>) -> Locator {
    Locator::new(
        BACKEND,
        SqliteLocator {
            path: path.into(),
            snapshot: SqliteSnapshot::InPlace,
        },
    )
}

/// The SQLite part of a locator.
///
/// # Errors
/// An input error when the locator is of another backend.
pub fn of(locator: &Locator) -> Result<&SqliteLocator> {
    locator
        .place()
        .ok_or_else(|| Error::input(format!("{locator} is not a SQLite locator")))
}

/// Parses a `sqlite:` or `sqlite3:` locator.
///
/// # Errors
/// An input error naming the problem.
pub fn parse(text: &str) -> Result<Locator> {
    let rest = text.split_once(':').map_or("", |(_, rest)| rest);
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let snapshot = sqlite_query(query)?;
    if path.is_empty() {
        return Err(Error::input(
            "sqlite locator has no path: write sqlite:///absolute/path.db or sqlite://relative/path.db",
        ));
    }
    Ok(Locator::new(
        BACKEND,
        SqliteLocator {
            path: PathBuf::from(percent_decode(path)),
            snapshot,
        },
    ))
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

/// A target file that does not exist yet (a dangling symbolic link, a path through `..`) would
/// be created where it leads: refuse it when that is the source's `-wal`, `-shm` or `-journal`,
/// which SQLite would read back into the source.
fn companion_of(source: &Path, target: &Path) -> Option<String> {
    let mut place = target.to_path_buf();
    // Follows the links by hand, as canonicalize() refuses a path that does not exist.
    for _ in 0..40 {
        match std::fs::read_link(&place) {
            Ok(next) => place = place.parent().unwrap_or(Path::new("/")).join(next),
            Err(_) => break,
        }
    }
    let parent = place.parent().filter(|p| !p.as_os_str().is_empty());
    let place = parent
        .unwrap_or(Path::new("."))
        .canonicalize()
        .ok()?
        .join(place.file_name()?);
    let name = source.file_name()?.to_string_lossy();
    ["-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| source.with_file_name(format!("{name}{suffix}")))
        .find(|companion| *companion == place)
        .map(|companion| {
            format!(
                "{} leads to {}, the source's own companion file",
                target.display(),
                companion.display()
            )
        })
}

fn through_link(source: &Path, target: &Path, real: &Path) -> String {
    format!(
        "{} leads to {} through a symbolic link or `..`: both are {}",
        target.display(),
        source.display(),
        real.display()
    )
}

ferry_core::opening! {
    /// SQLite in the registry.
    pub struct SqliteRegistration;
    BACKEND, &["sqlite", "sqlite3"], "sqlite:///path/app.db", parse;
    |l| SqliteSource::open(l)?, |l| target(l)?, SqliteDialect
}

/// A target is a file written in place: the `?snapshot=` of a source does not apply.
fn target(locator: &Locator) -> Result<SqliteTarget> {
    let place = of(locator)?;
    if place.snapshot != SqliteSnapshot::InPlace {
        return Err(Error::input(format!(
            "{locator}: ?snapshot= applies to a source only: remove it from the target"
        )));
    }
    SqliteTarget::open(&place.path)
}

#[async_trait]
impl Registration for SqliteRegistration {
    async fn open_session(&self, locator: &Locator) -> Result<Arc<dyn SqlSession>> {
        let path = of(locator)?.path.to_string_lossy().into_owned();
        Ok(Arc::new(SqliteSession::open_private(&path).await?))
    }

    /// The same file by its real path, or a target that would be created as the source's
    /// companion file.
    fn same_spelling(&self, source: &Locator, target: &Locator) -> Option<String> {
        let (a, b) = (&of(source).ok()?.path, &of(target).ok()?.path);
        match (a.canonicalize(), b.canonicalize()) {
            (Ok(x), Ok(y)) if x == y => Some(through_link(a, b, &x)),
            (Ok(x), Err(_)) => companion_of(&x, b),
            _ => None,
        }
    }

    fn why_shared(
        &self,
        (source, s): (&Locator, &Identity),
        (target, t): (&Locator, &Identity),
        shared: &str,
    ) -> Option<String> {
        let (a, b) = (&of(source).ok()?.path, &of(target).ok()?.path);
        let main = s.parts.first().is_some_and(|p| p == shared)
            && t.parts.first().is_some_and(|p| p == shared);
        let real = a.canonicalize().ok();
        Some(
            if let Some(real) = real.filter(|r| main && b.canonicalize().ok().as_ref() == Some(r)) {
                through_link(a, b, &real)
            } else if main {
                format!(
                    "{} is a hard link of {}: both are {s}",
                    b.display(),
                    a.display()
                )
            } else {
                format!(
                    "{} and {} share their -wal file, so writing one rewrites the other",
                    b.display(),
                    a.display()
                )
            },
        )
    }

    /// The file's real path (the folder's, with the file name, when the file does not exist
    /// yet).
    fn normalised_address(&self, locator: &Locator) -> Address {
        let path = match of(locator) {
            Ok(place) => &place.path,
            Err(_) => return Address::Key(locator.redacted()),
        };
        let real = path.canonicalize().ok().or_else(|| {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            let parent = parent.unwrap_or(Path::new("."));
            Some(parent.canonicalize().ok()?.join(path.file_name()?))
        });
        Address::Key(format!(
            "sqlite://{}",
            real.unwrap_or_else(|| path.clone()).display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(text: &str) -> SqliteLocator {
        of(&parse(text).unwrap()).unwrap().clone()
    }

    fn at(path: &str) -> SqliteLocator {
        SqliteLocator {
            path: path.into(),
            snapshot: SqliteSnapshot::InPlace,
        }
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(place("sqlite:///var/lib/app.db"), at("/var/lib/app.db"));
        assert_eq!(place("sqlite://rel/app.db"), at("rel/app.db"));
        assert_eq!(place("sqlite:app.db"), at("app.db"));
        assert_eq!(place("sqlite:///tmp/my%20app.db"), at("/tmp/my app.db"));
        assert_eq!(parse("sqlite:///a.db").unwrap(), file("/a.db"));
    }

    #[test]
    fn sqlite_query_parameters() {
        let l = parse("sqlite:///var/lib/app.db?snapshot=backup").unwrap();
        assert_eq!(
            of(&l).unwrap(),
            &SqliteLocator {
                path: "/var/lib/app.db".into(),
                snapshot: SqliteSnapshot::Backup
            }
        );
        assert_eq!(l.to_string(), "sqlite:///var/lib/app.db?snapshot=backup");
        for bad in ["sqlite:///app.db?mode=ro", "sqlite:///app.db?snapshot=wal"] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert_eq!(err.to_string().lines().count(), 1, "{err}");
        }
        assert!(
            parse("sqlite:///app.db?mode=ro")
                .unwrap_err()
                .to_string()
                .contains("unknown sqlite locator parameter 'mode'")
        );
    }
}
