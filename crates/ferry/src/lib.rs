//! ferry's front door: opens backends by locator (the one registration point per backend) and
//! runs the jobs. The CLI and the job server are thin front-ends over these calls.

/// `ferry demo`'s sample database, written by the SQLite backend.
#[cfg(feature = "sqlite")]
pub use ferry_sqlite::demo;

use std::path::Path;
use std::sync::Arc;

pub use ferry_core::connector::{Dialect, Identity, SchemaOptions, Source, Target};
pub use ferry_core::engine::{Context, CopyOptions};
pub use ferry_core::filter::TableFilter;
pub use ferry_core::plan::SchemaMode;
pub use ferry_core::progress::{Answer, Confirm, Event, Observer, Quiet};
pub use ferry_core::report::{Report, Status};
pub use ferry_core::{Error, ErrorKind, Locator, Result, locator::Backend};

fn unsupported(locator: &Locator) -> Error {
    Error::input(format!(
        "{} locators are not supported by this build of ferry: it was built without that backend's feature",
        locator.backend()
    ))
}

/// Opens a locator as a read-only source.
///
/// # Errors
/// An input error when the locator's backend is not built in, or the source cannot be opened.
pub async fn open_source(locator: &Locator) -> Result<Arc<dyn Source>> {
    match locator {
        #[cfg(feature = "sqlite")]
        Locator::Sqlite { .. } => Ok(Arc::new(ferry_sqlite::SqliteSource::open(locator)?)),
        #[cfg(feature = "postgres")]
        Locator::Postgres { .. } => Ok(Arc::new(
            ferry_postgres::PostgresSource::open(locator).await?,
        )),
        #[cfg(feature = "mysql")]
        Locator::Mysql { .. } => Ok(Arc::new(ferry_mysql::MysqlSource::open(locator).await?)),
        #[allow(unreachable_patterns)]
        other => Err(unsupported(other)),
    }
}

/// Opens the database a read-only query runs against (a blob manifest's), by its locator
/// text: one reader, so a MySQL source takes no global lock for it.
///
/// # Errors
/// An input error when the locator is bad or the database cannot be opened.
pub async fn open_query_source(db: &str) -> Result<Arc<dyn Source>> {
    let locator = Locator::parse(db)?;
    let source = open_source(&locator)
        .await
        .map_err(|e| e.context(format!("manifest database {}", locator.redacted())))?;
    source.expect_readers(1);
    Ok(source)
}

/// Opens a locator as a target. Nothing is written until the copy runs.
///
/// # Errors
/// An input error when the locator's backend is not built in, or the target cannot be reached.
pub async fn open_target(locator: &Locator) -> Result<Arc<dyn Target>> {
    match locator {
        #[cfg(feature = "sqlite")]
        Locator::Sqlite { path, snapshot } => {
            if *snapshot != ferry_core::locator::SqliteSnapshot::InPlace {
                return Err(Error::input(format!(
                    "{locator}: ?snapshot= applies to a source only: remove it from the target"
                )));
            }
            Ok(Arc::new(ferry_sqlite::SqliteTarget::open(path)?))
        }
        #[cfg(feature = "postgres")]
        Locator::Postgres { .. } => Ok(Arc::new(
            ferry_postgres::PostgresTarget::open(locator).await?,
        )),
        #[cfg(feature = "mysql")]
        Locator::Mysql { .. } => Ok(Arc::new(ferry_mysql::MysqlTarget::open(locator).await?)),
        #[allow(unreachable_patterns)]
        other => Err(unsupported(other)),
    }
}

/// The pure dialect of a backend, for planning without a connection.
///
/// # Errors
/// When the backend is not built in.
pub fn dialect(locator: &Locator) -> Result<Box<dyn Dialect>> {
    match locator.backend() {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => Ok(Box::new(ferry_sqlite::SqliteDialect)),
        #[cfg(feature = "postgres")]
        Backend::Postgres => Ok(Box::new(ferry_postgres::PostgresDialect)),
        #[cfg(feature = "mysql")]
        Backend::Mysql => Ok(Box::new(ferry_mysql::MysqlDialect)),
        #[allow(unreachable_patterns)]
        _ => Err(unsupported(locator)),
    }
}

/// The cheap check, before any connection: the same text, or the same SQLite file by its
/// real path.
fn refuse_same(source: &Locator, target: &Locator) -> Result<()> {
    let why = match (source, target) {
        (a, b) if a == b => Some("the same locator".to_string()),
        (Locator::Sqlite { path: a, .. }, Locator::Sqlite { path: b, .. }) => {
            match (a.canonicalize(), b.canonicalize()) {
                (Ok(x), Ok(y)) if x == y => Some(through_link(a, b, &x)),
                (Ok(x), Err(_)) => companion_of(&x, b),
                _ => None,
            }
        }
        _ => None,
    };
    match why {
        Some(why) => Err(same_database(source, target, &why)),
        None => Ok(()),
    }
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

fn same_database(source: &Locator, target: &Locator, why: &str) -> Error {
    Error::input(format!(
        "the source {source} and the target {target} are the same database ({why}): choose another target"
    ))
}

/// Refuses a target that is the source under another spelling (`localhost` for `127.0.0.1`, a
/// default port written or not, a hard or symbolic link to the file), asked of the databases
/// themselves: a copy with `--force` would erase the source and copy it into itself.
///
/// # Errors
/// An input error (exit code 2) naming both sides and why they are one database.
pub async fn refuse_same_database(source: &dyn Source, target: &dyn Target) -> Result<()> {
    let (Some(s), Some(t)) = (source.identity().await?, target.identity().await?) else {
        return Ok(());
    };
    let Some(shared) = s.shared(&t) else {
        return Ok(());
    };
    let (from, to) = (source.locator(), target.locator());
    let why = match (from, to) {
        (Locator::Sqlite { path: a, .. }, Locator::Sqlite { path: b, .. }) => {
            let main = s.parts.first().is_some_and(|p| p == shared)
                && t.parts.first().is_some_and(|p| p == shared);
            let real = a.canonicalize().ok();
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
            }
        }
        _ => format!("both are {t}"),
    };
    Err(same_database(from, to, &why))
}

/// Which database a locator names as a target, asked of the database (see [`Identity`]).
///
/// # Errors
/// When the target cannot be reached (or is a PostgreSQL standby).
pub async fn target_identity(locator: &Locator) -> Result<Option<Identity>> {
    open_target(locator).await?.identity().await
}

/// Copies `source` into `target`, then verifies (unless `options.verify` is false).
///
/// # Errors
/// An input error (exit code 2) when the run cannot start; a started run always gives a report.
pub async fn copy(
    source: &Locator,
    target: &Locator,
    options: &CopyOptions,
    cx: &Context,
) -> Result<Report> {
    refuse_same(source, target)?;
    let source = open_source(source).await?;
    let target = open_target(target).await?;
    refuse_same_database(source.as_ref(), target.as_ref()).await?;
    ferry_core::engine::copy(source, target, options, cx).await
}

/// Compares `source` and `target` as a copy would have left them.
///
/// # Errors
/// An input error when either side cannot be opened.
pub async fn verify(
    source: &Locator,
    target: &Locator,
    filter: TableFilter,
    workers: usize,
    cx: &Context,
) -> Result<Report> {
    let started = std::time::Instant::now();
    let dialect = dialect(target)?;
    let src = open_source(source).await?;
    let tgt = open_source(target).await?;
    src.expect_readers(workers);
    let mut report = Report::new(source.redacted(), target.redacted(), false);
    let verified = async {
        let mut v = ferry_core::verify::verify_only(
            src.clone(),
            tgt.clone(),
            dialect.as_ref(),
            filter,
            workers,
            cx,
        )
        .await?;
        // Differences from a source still taking writes are not a failed copy: read the
        // differing tables' source once more, in a new read, to tell the two apart.
        if !v.differing().is_empty() {
            let again = open_source(source).await?;
            again.expect_readers(workers);
            v.recheck_source(again, tgt, cx).await?;
        }
        Ok::<_, Error>(v)
    }
    .await;
    report.source_snapshot = src.snapshot_method();
    match verified {
        Ok(v) => {
            report.verify = v.tables;
            report.warnings = v.warnings;
        }
        // A --tables name the source lacks: bad input, exit 2.
        Err(e) if e.kind() == ErrorKind::Input => return Err(e),
        Err(e) if e.kind() == ErrorKind::Cancelled => report.status = Status::Cancelled,
        Err(e) => {
            report.status = Status::Failed;
            report.error = Some(e.to_string());
        }
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.peak_rss_mb = ferry_core::report::peak_rss_mb();
    Ok(report)
}
