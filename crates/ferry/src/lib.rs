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
        Locator::Sqlite { path } => Ok(Arc::new(ferry_sqlite::SqliteSource::open(path)?)),
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
        Locator::Sqlite { path } => Ok(Arc::new(ferry_sqlite::SqliteTarget::open(path)?)),
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
        (Locator::Sqlite { path: a }, Locator::Sqlite { path: b }) => {
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
    let mut report = Report::new(source.redacted(), target.redacted(), false);
    let verified = async {
        let mut v = ferry_core::verify::verify_only(
            src,
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
            v.recheck_source(again, tgt, cx).await?;
        }
        Ok::<_, Error>(v)
    }
    .await;
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
