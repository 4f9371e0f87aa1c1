//! ferry's front door: opens backends by locator (the one registration point per backend) and
//! runs the jobs ([`copy`], [`verify`], [`migrate`]), described by one [`JobSpec`]. The CLI and
//! the job server are thin front-ends over these calls.

pub mod cutover;
pub mod migrate;
mod registry;
pub mod spec;
/// `ferry demo`'s sample database, written by the SQLite backend.
#[cfg(feature = "sqlite")]
pub use ferry_sqlite::demo;

use std::sync::Arc;

pub use ferry_core::connector::{Dialect, Identity, ReadRequest, SchemaOptions, Source, Target};
pub use ferry_core::engine::{Context, CopyOptions};
pub use ferry_core::filter::TableFilter;
pub use ferry_core::plan::SchemaMode;
pub use ferry_core::progress::{Answer, Confirm, Event, Observer, Quiet};
pub use ferry_core::registration::Address;
pub use ferry_core::report::{Report, Status};
pub use ferry_core::session::{SqlError, SqlSession};
pub use ferry_core::{Backend, Capabilities, Error, ErrorKind, Locator, Result};
pub use migrate::{MigrateOptions, MigrateSpec, Migrated, Migration};
#[cfg(feature = "sqlite")]
pub use registry::sqlite_file;
pub use registry::{backends, normalised_address, parse_locator, registration, with_schema};
pub use spec::{Fields, JobSpec};

/// Opens a locator as a read-only source.
///
/// # Errors
/// An input error when the locator's backend is not built in, or the source cannot be opened.
pub async fn open_source(locator: &Locator) -> Result<Arc<dyn Source>> {
    registration(locator)?.open_source(locator).await
}

/// Opens the database a read-only query runs against (a blob manifest's), by its locator
/// text: one reader, so a MySQL source takes no global lock for it.
///
/// # Errors
/// An input error when the locator is bad or the database cannot be opened.
pub async fn open_query_source(db: &str) -> Result<Arc<dyn Source>> {
    let locator = parse_locator(db)?;
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
    registration(locator)?.open_target(locator).await
}

/// Opens a read-write session for ferry's own tables (the job server's store).
///
/// # Errors
/// An input error when the backend is not built in or cannot keep them; the database's error
/// when it cannot be opened.
pub async fn open_session(locator: &Locator) -> Result<Arc<dyn SqlSession>> {
    registration(locator)?.open_session(locator).await
}

/// The pure dialect of a backend, for planning without a connection.
///
/// # Errors
/// When the backend is not built in.
pub fn dialect(locator: &Locator) -> Result<Box<dyn Dialect>> {
    Ok(registration(locator)?.dialect())
}

/// The cheap check, before any connection: the same text, or the same database under another
/// spelling that its backend can tell without connecting (the same SQLite file by its real
/// path).
fn refuse_same(source: &Locator, target: &Locator) -> Result<()> {
    let why = if source == target {
        Some("the same locator".to_string())
    } else if source.backend() == target.backend() {
        registration(source)?.same_spelling(source, target)
    } else {
        None
    };
    match why {
        Some(why) => Err(same_database(source, target, &why)),
        None => Ok(()),
    }
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
    let why = if from.backend() == to.backend() {
        registration(from)?.why_shared((from, &s), (to, &t), shared)
    } else {
        None
    };
    let why = why.unwrap_or_else(|| format!("both are {t}"));
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
