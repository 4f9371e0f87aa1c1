//! The copy engine: executes a plan. Per table, a reader streams batches through a bounded
//! channel to a writer (so memory does not grow with table size); tables run in parallel on
//! `workers` tasks in FK-safe order; DDL runs in phases around the data; every copy ends with
//! verification unless told otherwise. Cancellation is a token passed down, checked per batch.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::connector::{SchemaOptions, Source, Target};
use crate::convert::convert_noting_rounding;
use crate::error::{Error, ErrorKind, Result};
use crate::plan::{self, Plan, SchemaMode, TablePlan};
use crate::preflight;
use crate::progress::{Confirm, Event, Observer};
use crate::rejects::{Rejects, reject, write_splitting};
use crate::report::{Report, Status, TableStats, peak_rss_mb};
use crate::retry::{Policy, RetryingWriter};
use crate::value::Batch;
use crate::verify;

/// The largest batch accepted: a batch is held in memory about three times per table.
pub const MAX_BATCH_ROWS: usize = 1_000_000;

#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub schema: SchemaOptions,
    pub batch_rows: usize,
    pub workers: usize,
    pub dry_run: bool,
    /// Erase target tables that already hold rows (after confirmation).
    pub force: bool,
    /// Rejected rows go to reject files instead of stopping the run.
    pub ignore_errors: bool,
    pub verify: bool,
    pub reject_dir: PathBuf,
    /// Whether tables that already exist in the target are filled (`auto`, `existing`).
    pub schema_mode: SchemaMode,
    /// Source columns the target's existing table lacks are left out instead of stopping.
    pub ignore_missing_columns: bool,
    /// Refuse (exit 2, before writing) a run with any lossy step, translation or object not
    /// copied, listing them all.
    pub strict: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            schema: SchemaOptions {
                profile: true,
                ..Default::default()
            },
            batch_rows: 10_000,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            dry_run: false,
            force: false,
            ignore_errors: false,
            verify: true,
            reject_dir: PathBuf::from("ferry-rejects"),
            schema_mode: SchemaMode::Auto,
            ignore_missing_columns: false,
            strict: false,
        }
    }
}

/// Everything a copy needs besides its options.
pub struct Context {
    pub observer: Arc<dyn Observer>,
    pub confirm: Arc<dyn Confirm>,
    pub cancel: CancellationToken,
}

/// Copies `source` into `target` and verifies the result.
///
/// Returns a report for every run that started (failed or cancelled runs included).
///
/// # Errors
/// An input error (exit code 2) when the run could not start: unreadable source, unreachable
/// target, a non-empty target without `force`, erasing not confirmed, a plan the target refuses
/// or values that do not fit it (`preflight`, proved before the first write).
pub async fn copy(
    source: Arc<dyn Source>,
    target: Arc<dyn Target>,
    options: &CopyOptions,
    cx: &Context,
) -> Result<Report> {
    let started = Instant::now();
    // The front-ends say this in their own words (flag or spec key); this guards the rest.
    if !(1..=MAX_BATCH_ROWS).contains(&options.batch_rows) || options.workers == 0 {
        return Err(Error::input(format!(
            "the batch size must be 1 to {MAX_BATCH_ROWS} rows and workers at least 1 (got {} and {})",
            options.batch_rows, options.workers
        )));
    }
    let mut report = Report::new(
        source.locator().redacted(),
        target.locator().redacted(),
        options.dry_run,
    );

    cx.observer
        .event(&Event::Phase("Reading the source schema".into()));
    source.expect_readers(options.workers);
    let schema = source.schema(&options.schema).await?;
    report.source_snapshot = source.snapshot_method();
    let filter_warnings = options.schema.filter.check(&schema)?;
    let mut plan = plan::build(&schema, target.dialect());
    plan.warnings.extend(filter_warnings);
    check_orphans(
        source.as_ref(),
        &schema,
        &mut plan,
        target.dialect(),
        options,
        cx,
    )
    .await?;
    cx.observer
        .event(&Event::Phase("Checking the target".into()));
    let mut existing = target.existing_tables().await?;
    let unfinished = if existing
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(UNFINISHED))
    {
        unfinished_tables(target.as_ref(), &cx.cancel).await?
    } else {
        Vec::new()
    };
    existing.retain(|(n, _)| !n.eq_ignore_ascii_case(UNFINISHED));
    if !unfinished.is_empty() {
        plan.warnings.push(format!(
            "{} left by an interrupted ferry run (created, keys and indexes not yet added): they are dropped and copied again",
            unfinished
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let fold = target.dialect().capabilities().folds_case;
    let same = |a: &str, b: &str| a == b || (fold && a.eq_ignore_ascii_case(b));
    let overlaps = existing.iter().any(|(name, _)| {
        !unfinished.contains(name)
            && plan
                .tables
                .iter()
                .any(|t| same(&t.target_name, name) || same(&t.source_name, name))
    });
    if options.schema_mode == SchemaMode::Existing
        || (options.schema_mode == SchemaMode::Auto && overlaps)
    {
        let mut target_schema = target
            .as_source()
            .await?
            .schema(&SchemaOptions {
                filter: Default::default(),
                profile: false,
            })
            .await?;
        // ferry's own unfinished tables are not the application's: they are created anew.
        target_schema
            .tables
            .retain(|t| !unfinished.contains(&t.name) && !t.name.eq_ignore_ascii_case(UNFINISHED));
        let notes = plan::adopt(
            &mut plan,
            &target_schema,
            target.dialect(),
            options.schema_mode,
            options.ignore_missing_columns,
        )?;
        plan.warnings.extend(notes);
    }
    // Tables ferry would create must not exist; tables it fills must be empty.
    let conflicts: Vec<(String, u64)> = existing
        .iter()
        .filter(|(name, rows)| {
            plan.tables
                .iter()
                .any(|t| same(&t.target_name, name) && (!t.existing || *rows > 0))
        })
        .cloned()
        .collect();
    preflight::scan_values(source.as_ref(), &mut plan, target.dialect(), options, cx).await?;
    report.not_copied = plan.skipped.clone();
    report.recreated = plan.objects.iter().map(|o| o.label()).collect();
    report.warnings = plan.warnings.clone();
    report.lossy = plan.lossy_steps();
    report.translations = plan.translations.clone();
    if options.strict {
        refuse_changes(&plan)?;
    }
    for t in &plan.tables {
        report.stats.insert(
            t.source_name.clone(),
            TableStats {
                total: t.row_count,
                ..Default::default()
            },
        );
    }

    let erase = !conflicts.is_empty();
    if options.dry_run {
        let notes =
            preflight::check(source.as_ref(), target.as_ref(), &plan, erase, options, cx).await?;
        report.warnings.extend(notes);
        if !conflicts.is_empty() {
            report.warnings.push(format!(
                "the target already has {}: a real run needs --force",
                describe_tables(&conflicts)
            ));
        }
        report.plan = Some(plan);
        report.elapsed_s = started.elapsed().as_secs_f64();
        report.peak_rss_mb = peak_rss_mb();
        return Ok(report);
    }

    if !conflicts.is_empty() {
        if !options.force {
            return Err(Error::input(format!(
                "the target already has {}: use --force to erase them (or choose an empty target)",
                describe_tables(&conflicts)
            )));
        }
        let names: Vec<String> = conflicts.iter().map(|(n, _)| n.clone()).collect();
        if !cx.confirm.confirm_erase(&names) {
            return Err(Error::input(format!(
                "not erasing {} without confirmation: answer the question on a terminal, or pass --yes",
                describe_tables(&conflicts)
            )));
        }
    }
    let notes =
        preflight::check(source.as_ref(), target.as_ref(), &plan, erase, options, cx).await?;
    report.warnings.extend(notes);
    if erase {
        cx.observer.event(&Event::Phase(format!(
            "Erasing {}",
            describe_tables(&conflicts)
        )));
        target.execute(&plan.ddl.drop).await?;
    }

    let result = run_plan(&source, &target, &plan, options, cx, &mut report).await;
    if let Err(e) = result {
        report.status = if e.kind() == ErrorKind::Cancelled {
            Status::Cancelled
        } else {
            Status::Failed
        };
        report.error = Some(e.to_string());
    } else if options.verify {
        cx.observer.event(&Event::Phase("Verifying".into()));
        match async {
            verify::verify_plan(
                source.clone(),
                target.as_source().await?,
                &plan,
                options.workers,
                cx,
            )
            .await
        }
        .await
        {
            Ok(v) => report.verify = v,
            Err(e) => {
                report.status = if e.kind() == ErrorKind::Cancelled {
                    Status::Cancelled
                } else {
                    Status::Failed
                };
                report.error = Some(format!("verification could not run: {e}"));
            }
        }
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.peak_rss_mb = peak_rss_mb();
    Ok(report)
}

/// `--strict`: a plan with any change (lossy step, translation, object not copied) is refused
/// before anything is written, naming every change.
fn refuse_changes(plan: &Plan) -> Result<()> {
    let changes = plan.changes();
    if changes.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = changes.iter().map(ToString::to_string).collect();
    Err(Error::input(format!(
        "strict mode refuses this copy, which would make {} change{} (nothing was written): {}; copy without strict mode to accept them",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" },
        listed.join("; ")
    )))
}

/// Finds rows whose foreign key points at nothing, before anything is written. Without
/// `--ignore-errors` they stop the run (exit 1); with it they are copied and that foreign key is
/// left out of the target, said in the report.
async fn check_orphans(
    source: &dyn Source,
    schema: &crate::schema::Schema,
    plan: &mut Plan,
    dialect: &dyn crate::connector::Dialect,
    options: &CopyOptions,
    cx: &Context,
) -> Result<()> {
    let mut found = Vec::new();
    for table in &schema.tables {
        for fk in &table.foreign_keys {
            if fk.enforced || schema.table(&fk.ref_table).is_none() {
                continue;
            }
            if let Some((count, keys)) = source.orphans(table, fk, 5).await?
                && count > 0
            {
                found.push((table.name.clone(), fk.clone(), count, keys));
            }
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    let describe = |(t, fk, n, keys): &(String, crate::schema::ForeignKey, u64, Vec<String>)| {
        format!(
            "{n} row(s) of \"{t}\" have a {}({}) with no \"{}\" row (for example {})",
            t,
            fk.columns.join(", "),
            fk.ref_table,
            keys.join("; ")
        )
    };
    if !options.ignore_errors && !options.dry_run {
        let all: Vec<String> = found.iter().map(describe).collect();
        return Err(Error::run(format!(
            "orphan rows found before writing anything: {}; rerun with --ignore-errors to copy them and leave those foreign keys out of the target",
            all.join("; ")
        )));
    }
    for f in &found {
        let (t, fk, _, _) = f;
        let note = format!("{}: the foreign key is left out of the target", describe(f));
        cx.observer.event(&Event::Warning(note.clone()));
        plan.warnings.push(note);
        // A constraint the target does not get: one of the plan's changes, which `--strict`
        // refuses before writing like any other object not copied.
        plan.skipped.push(crate::schema::SkippedObject {
            kind: "foreign key".into(),
            name: format!("{t}({}) -> {}", fk.columns.join(", "), fk.ref_table),
            reason: format!("{}; left out of the target (--ignore-errors)", describe(f)),
            ..Default::default()
        });
        let parent = plan
            .table(&fk.ref_table)
            .map(|p| p.target_name.clone())
            .unwrap_or_default();
        if let Some(tp) = plan.tables.iter_mut().find(|p| &p.source_name == t) {
            let target_col = |c: &String| {
                tp.columns
                    .iter()
                    .find(|pc| &pc.source_name == c)
                    .map_or_else(|| c.clone(), |pc| pc.target_name.clone())
            };
            let cols: Vec<String> = fk.columns.iter().map(target_col).collect();
            tp.foreign_keys
                .retain(|p| !(p.ref_table == parent && p.columns == cols));
        }
    }
    plan.ddl = dialect.ddl(plan);
    Ok(())
}

fn describe_tables(tables: &[(String, u64)]) -> String {
    let list: Vec<String> = tables
        .iter()
        .map(|(n, rows)| match rows {
            0 => format!("\"{n}\" (empty)"),
            1 => format!("\"{n}\" (1 row)"),
            _ => format!("\"{n}\" ({rows} rows)"),
        })
        .collect();
    format!(
        "table{} {}",
        if tables.len() == 1 { "" } else { "s" },
        list.join(", ")
    )
}

async fn run_plan(
    source: &Arc<dyn Source>,
    target: &Arc<dyn Target>,
    plan: &Plan,
    options: &CopyOptions,
    cx: &Context,
    report: &mut Report,
) -> Result<()> {
    cx.observer.event(&Event::Phase("Creating tables".into()));
    let created: Vec<String> = plan
        .tables
        .iter()
        .filter(|t| !t.existing)
        .map(|t| format!("('{}')", t.target_name.replace('\'', "''")))
        .collect();
    if !created.is_empty() {
        target
            .execute(&[
                format!(
                    "CREATE TABLE IF NOT EXISTS {UNFINISHED} (table_name varchar(255) NOT NULL)"
                ),
                format!(
                    "INSERT INTO {UNFINISHED} (table_name) VALUES {}",
                    created.join(", ")
                ),
            ])
            .await?;
    }
    target.execute(&plan.ddl.create).await?;

    cx.observer.event(&Event::Phase("Copying rows".into()));
    let workers = options.workers.clamp(
        1,
        target.dialect().capabilities().max_parallel_writers.max(1),
    );
    let permits = Arc::new(Semaphore::new(workers));
    let run = Run {
        source: source.clone(),
        target: target.clone(),
        options: Arc::new(options.clone()),
        observer: cx.observer.clone(),
    };
    // One failing table stops the others (without --ignore-errors a failure ends the run).
    let stop = cx.cancel.child_token();
    let mut tasks = JoinSet::new();
    let mut first_error: Option<Error> = None;
    // Tables the application created keep their foreign keys during the load, so parents are
    // loaded before their children (ferry's own tables get their foreign keys afterwards).
    let ordered = plan.tables.iter().any(|t| t.existing);
    let mut finished: std::collections::HashSet<String> = std::collections::HashSet::new();
    for table in &plan.tables {
        while ordered && !tasks.is_empty() && !table.depends_on.iter().all(|d| finished.contains(d))
        {
            if let Some(joined) = tasks.join_next().await {
                let name = record(joined, report, &mut first_error)?;
                finished.insert(name);
            }
        }
        let chunks = chunks(table, workers);
        let permit = tokio::select! {
            p = permits.clone().acquire_many_owned(chunks.len() as u32) => p.expect("semaphore is never closed"),
            () = stop.cancelled() => break,
        };
        let (run, table, stop) = (run.clone(), Arc::new(table.clone()), stop.clone());
        tasks.spawn(async move {
            let name = table.source_name.clone();
            let result = copy_table(run, table, chunks, stop.clone()).await;
            if result.is_err() {
                stop.cancel();
            }
            drop(permit);
            (name, result)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        record(joined, report, &mut first_error)?;
    }
    if let Some(e) = first_error {
        if e.kind() == ErrorKind::Cancelled && cx.cancel.is_cancelled() {
            return Err(Error::cancelled());
        }
        return Err(e);
    }
    if cx.cancel.is_cancelled() {
        return Err(Error::cancelled());
    }

    for (phase, statements) in [
        ("Creating primary keys and indexes", &plan.ddl.indexes),
        ("Adding foreign keys", &plan.ddl.foreign_keys),
        (
            "Moving identity counters past the copied rows",
            &plan.ddl.sequences,
        ),
        (
            "Recreating views, triggers and other objects",
            &plan.ddl.objects,
        ),
        ("Analyzing", &plan.ddl.analyze),
    ] {
        if !statements.is_empty() {
            cx.observer.event(&Event::Phase(phase.into()));
            target.execute(statements).await?;
        }
        if cx.cancel.is_cancelled() {
            return Err(Error::cancelled());
        }
    }
    if !created.is_empty() {
        target
            .execute(&[format!("DROP TABLE {UNFINISHED}")])
            .await?;
    }
    Ok(())
}

/// A table in the target naming the tables a run created and has not finished (their keys,
/// indexes and foreign keys come after the rows). A later run creates those anew, under
/// `--force`, instead of filling them as if the application had made them without keys.
const UNFINISHED: &str = "ferry_unfinished_tables";

/// The table names an interrupted run left in the target's marker table.
async fn unfinished_tables(target: &dyn Target, cancel: &CancellationToken) -> Result<Vec<String>> {
    let schema = target
        .as_source()
        .await?
        .schema(&SchemaOptions {
            filter: crate::filter::TableFilter::new(&[UNFINISHED.to_string()], &[])?,
            profile: false,
        })
        .await?;
    let Some(table) = schema
        .tables
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(UNFINISHED))
    else {
        return Ok(Vec::new());
    };
    // Read through a second source that holds no snapshot: the first one's open transaction
    // keeps a lock on this table, and a running job's `DROP TABLE` queued behind that lock would
    // queue this read behind itself, so both would wait for each other forever (PostgreSQL
    // cannot see the cycle, which runs through ferry). The first source is gone by now.
    let reader = target.as_source().await?;
    let (tx, mut rx) = mpsc::channel::<Batch>(2);
    let read = {
        let (reader, table, cancel) = (reader.clone(), table.clone(), cancel.clone());
        tokio::spawn(async move { reader.read(&table, 1000, tx, cancel).await })
    };
    let mut names = Vec::new();
    while let Some(batch) = rx.recv().await {
        for row in batch.rows() {
            if let Some(crate::value::Value::Text(name)) = row.first()
                && !names.contains(name)
            {
                names.push(name.clone());
            }
        }
    }
    read.await
        .map_err(|e| Error::run(format!("reader task failed: {e}")))??;
    Ok(names)
}

/// Files a finished table's stats in the report and keeps the first real error (over the
/// cancellations it caused in other tables). Returns the table's name.
fn record(
    joined: std::result::Result<(String, TableResult), tokio::task::JoinError>,
    report: &mut Report,
    first_error: &mut Option<Error>,
) -> Result<String> {
    let (name, result) = joined.map_err(|e| Error::run(format!("a copy task panicked: {e}")))?;
    let (stats, error) = match result {
        Ok(stats) => (stats, None),
        Err((stats, e)) => (stats, Some(e)),
    };
    // Rounding is only known once the values went by: it joins the plan's lossy steps here.
    for (column, n) in &stats.rounded {
        report.lossy.push(format!(
            "{name}.{column}: {} value{} had sub-microsecond digits, rounded to microseconds",
            group_thousands(*n),
            if *n == 1 { "" } else { "s" }
        ));
    }
    let entry = report.stats.entry(name.clone()).or_default();
    *entry = TableStats {
        total: entry.total,
        ..stats
    };
    if let Some(e) = error
        && first_error.as_ref().is_none_or(|prev| {
            prev.kind() == ErrorKind::Cancelled && e.kind() != ErrorKind::Cancelled
        })
    {
        *first_error = Some(e);
    }
    Ok(name)
}

/// `1204` as `1,204`, how the report writes counts a person reads.
fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

type TableResult = std::result::Result<TableStats, (TableStats, Error)>;

/// What every copy task of a run shares.
#[derive(Clone)]
struct Run {
    source: Arc<dyn Source>,
    target: Arc<dyn Target>,
    options: Arc<CopyOptions>,
    observer: Arc<dyn Observer>,
}

async fn copy_table(
    run: Run,
    table: Arc<TablePlan>,
    chunks: Vec<Option<(i64, i64)>>,
    cancel: CancellationToken,
) -> TableResult {
    let started = Instant::now();
    run.observer.event(&Event::TableStarted {
        table: table.source_name.clone(),
        rows: table.row_count,
    });
    let rejects = Rejects::new(&run.options.reject_dir, &table.source_name);
    // A failing chunk stops the table's other chunks.
    let stop = cancel.child_token();
    let mut tasks = JoinSet::new();
    for range in chunks {
        let chunk = match range {
            Some(r) => {
                let mut t = (*table).clone();
                t.source.locator_range = Some(r);
                Arc::new(t)
            }
            None => table.clone(),
        };
        let (run, stop, rejects) = (run.clone(), stop.clone(), rejects.clone());
        tasks.spawn(async move {
            let mut stats = TableStats::default();
            let result = copy_rows(&run, &chunk, &stop, &rejects, &mut stats).await;
            if result.is_err() {
                stop.cancel();
            }
            (stats, result)
        });
    }
    let mut stats = TableStats {
        total: table.row_count,
        ..Default::default()
    };
    let mut error: Option<Error> = None;
    while let Some(joined) = tasks.join_next().await {
        let (part, result) = joined.unwrap_or_else(|e| {
            (
                TableStats::default(),
                Err(Error::run(format!("a copy task panicked: {e}"))),
            )
        });
        stats.merge(&part);
        if let Err(e) = result
            && error
                .as_ref()
                .is_none_or(|prev| prev.kind() == ErrorKind::Cancelled)
        {
            error = Some(e);
        }
    }
    let result = match error {
        Some(e) => Err(e),
        None => rejects.finish(),
    };
    stats.elapsed_s = started.elapsed().as_secs_f64();
    run.observer.event(&Event::TableFinished {
        table: table.source_name.clone(),
        migrated: stats.migrated,
        failed: stats.failed,
        elapsed_s: stats.elapsed_s,
    });
    match result {
        Ok(()) => Ok(stats),
        Err(e) if e.kind() == ErrorKind::Cancelled => Err((stats, e)),
        Err(e) => Err((stats, e.context(format!("table \"{}\"", table.source_name)))),
    }
}

/// How a table is split for parallel copying: ranges of its row locator when the source can
/// read them and the target takes several writers, about 100,000 rows each, at most `workers`.
fn chunks(table: &TablePlan, workers: usize) -> Vec<Option<(i64, i64)>> {
    let parts = (table.row_count / 100_000).clamp(1, workers.max(1) as u64) as usize;
    match table.source.locator_range {
        Some(range) if parts > 1 => split_range(range, parts).into_iter().map(Some).collect(),
        _ => vec![None],
    }
}

/// Splits an inclusive range of row locators into `parts` contiguous ranges.
pub fn split_range((lo, hi): (i64, i64), parts: usize) -> Vec<(i64, i64)> {
    let n = parts.max(1) as i128;
    let span = (hi as i128 - lo as i128 + 1).max(1);
    let step = (span + n - 1) / n;
    (0..n)
        .map(|k| {
            (
                lo as i128 + k * step,
                (lo as i128 + (k + 1) * step - 1).min(hi as i128),
            )
        })
        .filter(|(a, b)| a <= b)
        .map(|(a, b)| (a as i64, b as i64))
        .collect()
}

async fn copy_rows(
    run: &Run,
    table: &Arc<TablePlan>,
    cancel: &CancellationToken,
    rejects: &Rejects,
    stats: &mut TableStats,
) -> Result<()> {
    let (options, observer) = (&run.options, &run.observer);
    // Each batch is atomic in the target: one cut off by a transient fault (a restart, a lost
    // connection, a deadlock) is written again on a new connection (`crate::retry`).
    let mut writer = RetryingWriter::open(
        run.target.clone(),
        table.clone(),
        Policy::default(),
        cancel.clone(),
        observer.clone(),
    )
    .await?;
    // Two batches in flight bound memory to about three batches per table, whatever its size.
    let (tx, mut rx) = mpsc::channel::<Batch>(2);
    let reader = {
        let (source, table, cancel, batch_rows) = (
            run.source.clone(),
            table.clone(),
            cancel.clone(),
            options.batch_rows,
        );
        tokio::spawn(async move { source.read(&table.source, batch_rows, tx, cancel).await })
    };
    let outcome: Result<()> = async {
        while let Some(batch) = rx.recv().await {
            if cancel.is_cancelled() {
                return Err(Error::cancelled());
            }
            let rows = batch.len() as u64;
            let (batch, failures) = convert_batch(table, batch, &mut stats.rounded);
            let failed_before = stats.failed;
            for (row_batch, index, reason) in failures {
                reject(
                    table,
                    &row_batch,
                    index,
                    &reason,
                    options.ignore_errors,
                    rejects,
                    stats,
                )?;
            }
            let bytes = batch.wire_size();
            let written = write_splitting(
                &mut writer,
                table,
                batch,
                options.ignore_errors,
                rejects,
                stats,
            )
            .await;
            stats.retries = writer.retries();
            written?;
            stats.bytes += bytes;
            let failed = stats.failed - failed_before;
            observer.event(&Event::TableProgress {
                table: table.source_name.clone(),
                rows: rows - failed,
                failed,
                bytes,
            });
        }
        Ok(())
    }
    .await;
    // If the writer side stopped first, dropping the receiver ends the reader.
    drop(rx);
    let read_result = reader
        .await
        .map_err(|e| Error::run(format!("reader task failed: {e}")))?;
    outcome?;
    read_result?;
    Ok(())
}

/// Converts every value to its column's target type. Rows with a value that does not convert
/// are taken out and returned (as one-row batches) with the reason. Values rounded on the way
/// are counted per source column in `rounded`.
fn convert_batch(
    table: &TablePlan,
    batch: Batch,
    rounded: &mut BTreeMap<String, u64>,
) -> (Batch, Vec<(Batch, usize, String)>) {
    if table.columns.iter().all(|c| c.convert_to.is_none()) {
        return (batch, Vec::new());
    }
    let width = batch.width;
    let n = batch.len();
    let mut out = Batch::new(width, n);
    let mut failures = Vec::new();
    let has_locators = !batch.locators.is_empty();
    let mut values = batch.values.into_iter();
    for row in 0..n {
        let original: Vec<_> = values.by_ref().take(width).collect();
        let mut converted = Vec::with_capacity(width);
        let mut error = None;
        for (value, col) in original.iter().zip(&table.columns) {
            match &col.convert_to {
                None => converted.push(value.clone()),
                Some(to) => match convert_noting_rounding(value.clone(), to) {
                    Ok((v, lost)) => {
                        if lost {
                            *rounded.entry(col.source_name.clone()).or_default() += 1;
                        }
                        converted.push(v)
                    }
                    Err(reason) => {
                        error = Some(format!("column \"{}\": {reason}", col.source_name));
                        break;
                    }
                },
            }
        }
        match error {
            None => {
                out.values.extend(converted);
                if has_locators {
                    out.locators.push(batch.locators[row]);
                }
            }
            Some(reason) => {
                let mut one = Batch::new(width, 1);
                one.values = original;
                if has_locators {
                    one.locators.push(batch.locators[row]);
                }
                failures.push((one, 0, reason));
            }
        }
    }
    (out, failures)
}
