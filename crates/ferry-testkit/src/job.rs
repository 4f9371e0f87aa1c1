//! The library's job inputs for tests: locators for the throwaway databases and SQLite files, a
//! `Context` that answers confirmations, `CopyOptions` with rejects in the test's folder, the
//! plain copy most tests start with, and an observer that records events.

use std::path::Path;
use std::sync::{Arc, Mutex};

use ferry_core::Locator;
use ferry_core::engine::{Context, CopyOptions};
use ferry_core::filter::TableFilter;
use ferry_core::progress::{Answer, Event, Observer, Quiet};
use ferry_core::report::Report;
use tokio_util::sync::CancellationToken;

/// The locator of an SQLite file, read with the default snapshot mode.
pub fn sqlite(path: &Path) -> Locator {
    ferry_sqlite::locator::file(path)
}

/// The locator of a database URL the kit made (never a user's input: panics when unparsable),
/// parsed by the registry.
pub fn locator_of(url: &str) -> Locator {
    ferry::parse_locator(url).unwrap_or_else(|e| panic!("test database URL does not parse: {e}"))
}

/// `ferry::copy` with the test's [`options`] (rejects under `dir`) and a context that answers
/// no: the report, whatever its exit code.
pub async fn plain_copy(from: &Locator, to: &Locator, dir: &Path) -> Report {
    copy_with(from, to, &options(dir)).await
}

/// `ferry::copy` with `options` and a context that answers no: the report, whatever its exit
/// code (an error panics).
pub async fn copy_with(from: &Locator, to: &Locator, options: &CopyOptions) -> Report {
    ferry::copy(from, to, options, &context(false))
        .await
        .unwrap_or_else(|e| panic!("copy {from} → {to}: {e}"))
}

/// [`plain_copy`], which must succeed with exit code 0 (the report is printed when not).
pub async fn copied(from: &Locator, to: &Locator, dir: &Path) -> Report {
    let report = plain_copy(from, to, dir).await;
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    report
}

/// A context with no output that answers every confirmation with `confirm`.
pub fn context(confirm: bool) -> Context {
    Context {
        observer: Arc::new(Quiet),
        confirm: Arc::new(Answer(confirm)),
        cancel: CancellationToken::new(),
    }
}

/// Options with reject files under `dir/rejects` and two workers.
pub fn options(dir: &Path) -> CopyOptions {
    CopyOptions {
        reject_dir: dir.join("rejects"),
        workers: 2,
        ..Default::default()
    }
}

/// `o` limited to the `include` tables minus the `exclude` ones (glob patterns).
pub fn with_tables(mut o: CopyOptions, include: &[&str], exclude: &[&str]) -> CopyOptions {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    o.schema.filter = TableFilter::new(&s(include), &s(exclude)).unwrap();
    o
}

/// Records events so tests can check what a server would show.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Event>>);

impl Observer for Recorder {
    fn event(&self, event: &Event) {
        if let Ok(mut events) = self.0.lock() {
            events.push(event.clone());
        }
    }
}
