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

/// `ferry::copy` with `force` (a target that already holds the tables) and a context that
/// confirms, which must succeed with exit code 0: the report.
pub async fn forced_copy(from: &Locator, to: &Locator, dir: &Path) -> Report {
    let opts = CopyOptions {
        force: true,
        ..options(dir)
    };
    let report = ferry::copy(from, to, &opts, &context(true))
        .await
        .unwrap_or_else(|e| panic!("copy {from} → {to}: {e}"));
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    report
}

/// [`plain_copy`] into a fresh database of kind `T`: the database and the report.
pub async fn plain_copy_to_new<T: crate::Throwaway>(from: &Locator, dir: &Path) -> (T, Report) {
    let db = T::create().await;
    let report = plain_copy(from, &db.locator(), dir).await;
    (db, report)
}

/// [`copied`] (exit code 0) into a fresh database of kind `T`: the database and the report.
pub async fn copied_to_new<T: crate::Throwaway>(from: &Locator, dir: &Path) -> (T, Report) {
    let db = T::create().await;
    let report = copied(from, &db.locator(), dir).await;
    (db, report)
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

/// `o` as a dry run: planned and proved, nothing written.
pub fn dry_run(o: CopyOptions) -> CopyOptions {
    CopyOptions { dry_run: true, ..o }
}

/// `o` in strict mode: any loss the scan finds refuses the run before anything is written.
pub fn strict(o: CopyOptions) -> CopyOptions {
    CopyOptions { strict: true, ..o }
}

/// `o` with `--ignore-errors`: a row the target refuses goes to a reject file.
pub fn ignoring_errors(o: CopyOptions) -> CopyOptions {
    CopyOptions {
        ignore_errors: true,
        ..o
    }
}

/// `ferry::copy` with `options` and a context that answers every confirmation with `confirm`,
/// which must fail: the error (a report instead panics with it).
pub async fn copy_refused(
    from: &Locator,
    to: &Locator,
    options: &CopyOptions,
    confirm: bool,
) -> ferry::Error {
    match ferry::copy(from, to, options, &context(confirm)).await {
        Ok(report) => panic!(
            "copy {from} → {to} was expected to fail:\n{}",
            report.render()
        ),
        Err(e) => e,
    }
}

/// Asserts that some line of `lines` (a report's lossy steps, translations, warnings, …)
/// satisfies `what`; shows every line when none does.
#[track_caller]
pub fn assert_any_line(lines: &[String], what: impl Fn(&str) -> bool) {
    assert!(
        lines.iter().any(|l| what(l)),
        "no such line among {lines:#?}"
    );
}

/// Asserts that no line of `lines` satisfies `what`; shows the lines when one does.
#[track_caller]
pub fn assert_no_line(lines: &[String], what: impl Fn(&str) -> bool) {
    assert!(
        !lines.iter().any(|l| what(l)),
        "unexpected line among {lines:#?}"
    );
}

/// Asserts that `item` is one of `list` (e.g. [`not_copied`], a report's recreated objects).
#[track_caller]
pub fn assert_listed(list: &[String], item: &str) {
    assert!(list.iter().any(|x| x == item), "{item} not in {list:#?}");
}

/// Asserts that each of `items` is one of `list` ([`assert_listed`] for several).
#[track_caller]
pub fn assert_all_listed(list: &[String], items: &[&str]) {
    for item in items {
        assert_listed(list, item);
    }
}

/// Asserts that `text` (an error or a report) mentions every one of `words`.
#[track_caller]
pub fn assert_mentions(text: &str, words: &[&str]) {
    for word in words {
        assert!(text.contains(word), "{word}: {text}");
    }
}

/// What a report says it did not copy, each as `"{kind} {name}"` (e.g. `view active_posts`).
pub fn not_copied(report: &Report) -> Vec<String> {
    report
        .not_copied
        .iter()
        .map(|s| format!("{} {}", s.kind, s.name))
        .collect()
}

/// A report's counts for `key` as (total, migrated, skipped, failed); panics naming the keys
/// there are when it has none.
pub fn stat(r: &Report, key: &str) -> (u64, u64, u64, u64) {
    let s = r
        .stats
        .get(key)
        .unwrap_or_else(|| panic!("no stats for {key}: {:?}", r.stats.keys()));
    (s.total, s.migrated, s.skipped, s.failed)
}

/// Asserts that verification compared every table and found them equal.
#[track_caller]
pub fn assert_verified(report: &Report) {
    assert!(report.verify.values().all(|v| v.ok()), "{report:?}");
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
