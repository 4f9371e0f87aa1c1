//! ferry's front door: opens backends by locator (the one registration point per backend) and
//! runs the jobs. The CLI and the job server are thin front-ends over these calls.

pub mod demo;

use std::sync::Arc;

pub use ferry_core::connector::{Dialect, SchemaOptions, Source, Target};
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

fn refuse_same(source: &Locator, target: &Locator) -> Result<()> {
    let same = match (source, target) {
        (Locator::Sqlite { path: a, .. }, Locator::Sqlite { path: b, .. }) => {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
        }
        (a, b) => a == b,
    };
    if same {
        return Err(Error::input(
            "the source and the target are the same database: choose another target",
        ));
    }
    Ok(())
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
    let result =
        ferry_core::verify::verify_only(src.clone(), tgt, dialect.as_ref(), filter, workers, cx)
            .await;
    report.source_snapshot = src.snapshot_method();
    match result {
        Ok(v) => report.verify = v,
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
