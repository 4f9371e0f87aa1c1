//! The copy engine: executes a plan. Per table, a reader streams batches through a bounded
//! channel to a writer (so memory does not grow with table size); tables run in parallel on
//! `workers` tasks in FK-safe order; DDL runs in phases around the data; every copy ends with
//! verification unless told otherwise. Cancellation is a token passed down, checked per batch.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::chunks::{self, Chunk};
use crate::claims::{ClaimOptions, Claims};
use crate::connector::{ReadRequest, SchemaOptions, Source, TableWriter, Target};
use crate::convert::convert_noting_rounding;
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{self, Keys};
use crate::killpoint;
use crate::ledger::{self, Ledger};
use crate::orphans;
use crate::plan::{self, Plan, SchemaMode, TablePlan};
use crate::preflight;
use crate::progress::{Confirm, Event, Observer};
use crate::rejects::{Rejects, reject, write_splitting};
use crate::report::{Report, Status, TableStats, peak_rss_mb};
use crate::retry::{self, Policy};
use crate::value::Batch;
use crate::verify_stage::{Notify, Stage as VerifyStage};
use crate::widen;

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
    /// Continue the copy recorded in the target's ledger: skip its done chunks and steps.
    pub resume: bool,
    /// `(k, n)`: copy only the chunks whose number is k modulo n (resuming like `resume`), and
    /// leave keys, foreign keys and verification to `finish`.
    pub shard: Option<(u64, u64)>,
    /// After every shard: check all chunks are done, then build keys, indexes and foreign
    /// keys, reset counters and verify.
    pub finish: bool,
    /// Rows per chunk (see `chunks`).
    pub chunk_rows: u64,
    /// Chunks are claimed with leases in the ledger instead of taken from a fixed list, so
    /// other processes can copy this copy's chunks at once (`ferry serve` instances sharing a
    /// job store); with `join`, this run is such a helper (see `claims`).
    pub claims: Option<ClaimOptions>,
    /// A completed copy keeps its ledger (and unfinished-tables marker) for a caller with
    /// more steps to record (`ferry migrate`'s rewrite), who drops them at its own end.
    pub keep_ledger: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            schema: SchemaOptions {
                profile: true,
                sample: true,
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
            resume: false,
            shard: None,
            finish: false,
            chunk_rows: crate::chunks::DEFAULT_CHUNK_ROWS,
            claims: None,
            keep_ledger: false,
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
    // Dry runs and --strict name every change before writing: they profile every value. So do
    // shards and --finish: a shard cannot retype and recreate a table that other shards fill
    // (`widen`), and every shard and the finish must plan alike (the ledger's fingerprint).
    let schema_options = SchemaOptions {
        sample: options.schema.sample
            && !options.dry_run
            && !options.strict
            && options.shard.is_none()
            && !options.finish
            && options.claims.is_none(),
        ..options.schema.clone()
    };
    let schema = source.schema(&schema_options).await?;
    report.source_snapshot = source.snapshot_method();
    let filter_warnings = options.schema.filter.check(&schema)?;
    let mut plan = plan::build(&schema, target.dialect());
    plan.warnings.extend(filter_warnings);
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
    let has_ledger = existing.iter().any(|(n, _)| ledger::is_ledger(n));
    existing.retain(|(n, _)| !ledger::is_ledger(n));
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
                sample: false,
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
    // Orphans are looked for in the target unless this run erases tables first (`orphans`). A
    // run continuing a recorded copy erases nothing (its tables are its own), so it decides as
    // the run that wrote the ledger did and plans the same foreign keys (the fingerprint).
    let continues = has_ledger && mode(options).continues();
    let orphans_in_target = orphans::deferred(
        &plan,
        options,
        target.dialect(),
        !conflicts.is_empty() && !continues,
    );
    if !orphans_in_target {
        orphans::in_source(
            source.as_ref(),
            &schema,
            &mut plan,
            target.dialect(),
            options,
            cx,
        )
        .await?;
    }
    preflight::scan_values(source.as_ref(), &mut plan, target.dialect(), options, cx).await?;
    // The plan is final: is this the copy a ledger in the target records?
    let this_run = ledger::RunInfo::new(
        source.identity().await?,
        source.locator().redacted(),
        &plan,
        options.chunk_rows,
    );
    let continued = if options.dry_run {
        if has_ledger {
            plan.warnings.push(format!(
                "the target holds the ledger of an unfinished ferry copy ({}): a real run needs --resume or --force",
                ledger::LEDGER
            ));
        }
        None
    } else {
        ledger::find(target.as_ref(), has_ledger, &this_run, mode(options), cx).await?
    };
    if continued.is_none() && !unfinished.is_empty() {
        plan.warnings.push(format!(
            "{} left by an interrupted ferry run (created, keys and indexes not yet added): they are dropped and copied again",
            unfinished
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let (fresh_chunks, chunk_notes) = chunks::plan_chunks(&plan, options.chunk_rows);
    plan.warnings.extend(chunk_notes);
    if let Some(l) = &continued {
        if options.finish {
            l.check_finished(None)?;
        }
        if joins(options) && l.steps.first() != Some(&true) {
            return Err(Error::input(
                "the copy to help has not created its tables yet: join it later",
            ));
        }
        plan.warnings.push(format!(
            "resuming the copy recorded in the target's ledger: {} of {} chunks and {} of {} steps were done and are skipped",
            l.done_chunks(),
            l.chunks.len(),
            l.steps.iter().filter(|d| **d).count(),
            l.steps.len()
        ));
    }
    // A recorded copy's tables are its own: continuing fills them, erasing nothing.
    let conflicts = if continued.is_some() {
        Vec::new()
    } else {
        conflicts
    };
    let erase = !conflicts.is_empty();
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
    // A recorded copy whose tables exist proved its DDL when it created them.
    if continued.as_ref().is_none_or(|l| !l.steps[0]) {
        let notes =
            preflight::check(source.as_ref(), target.as_ref(), &plan, erase, options, cx).await?;
        report.warnings.extend(notes);
    }
    if erase {
        cx.observer.event(&Event::Phase(format!(
            "Erasing {}",
            describe_tables(&conflicts)
        )));
        target.execute(&plan.ddl.drop).await?;
    }

    let ledger = continued.unwrap_or_else(|| Ledger::new(this_run, fresh_chunks, &plan));
    for c in ledger.chunks.iter().filter(|c| c.done) {
        let entry = report.stats.entry(c.chunk.table.clone()).or_default();
        entry.migrated += c.rows;
        entry.failed += c.failed;
    }
    // Verification runs beside the copy (`verify_stage`): a table is compared once its chunks
    // are committed, on targets that can be read while they are written (not a SQLite file).
    let stage = (options.verify && options.shard.is_none() && !joins(options)).then(|| {
        // Early only where this run alone writes the chunks: with claims, other servers may
        // still be copying a table this run has finished its part of.
        let early =
            target.dialect().capabilities().max_parallel_writers > 1 && options.claims.is_none();
        let stage = VerifyStage::start(source.clone(), target.clone(), &plan, &ledger, early, cx);
        (stage.notify(early), stage)
    });
    let notify = stage.as_ref().map_or_else(Notify::none, |(n, _)| n.clone());
    let mut refused = None;
    let result = run_plan(
        &source,
        &target,
        &mut plan,
        &ledger,
        options,
        cx,
        &mut report,
        (orphans_in_target, &mut refused, notify),
    )
    .await;
    let stage = stage.map(|(_, s)| s);
    if result.is_err() {
        if let Some(stage) = stage {
            stage.abandon();
        }
    } else if let Some((k, n)) = options.shard {
        report.warnings.push(format!(
            "shard {k}/{n}: its chunks are copied; once every shard is done, run --finish once (keys, indexes, foreign keys, counters, verification)"
        ));
    } else if joins(options) {
        // The run it helps builds keys, indexes and foreign keys and verifies.
    } else if let Some(stage) = stage {
        match stage.finish(&plan, options.workers).await {
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
    if let Some(e) = refused {
        return Err(e);
    }
    if let Err(e) = result {
        report.status = if e.kind() == ErrorKind::Cancelled {
            Status::Cancelled
        } else {
            Status::Failed
        };
        report.error = Some(e.to_string());
    }
    // The copy is complete (verified, or verification not asked): its ledger goes, with the
    // unfinished-tables marker. A failed, cancelled or sharded run keeps both for --resume.
    if report.status == Status::Completed
        && options.shard.is_none()
        && !joins(options)
        && !options.keep_ledger
    {
        killpoint::point("before-ledger-drop");
        let statements = vec![
            ledger::drop_statement(),
            format!("DROP TABLE IF EXISTS {UNFINISHED}"),
        ];
        let transactional = target.dialect().capabilities().transactional_ddl;
        if let Err(e) = target
            .execute(&ledger::atomic(statements, transactional))
            .await
        {
            report.warnings.push(format!(
                "the copy is complete but its ledger could not be dropped ({e}): drop the target's {} and {UNFINISHED} tables",
                ledger::LEDGER
            ));
        }
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.peak_rss_mb = peak_rss_mb();
    Ok(report)
}

/// What the options ask of a ledger the target holds.
fn mode(options: &CopyOptions) -> ledger::Mode {
    ledger::Mode {
        resume: options.resume,
        shard: options.shard,
        finish: options.finish,
        // A helper never erases: the tables are the run's it helps.
        force: options.force && !joins(options),
        join: joins(options),
    }
}

/// Whether this run helps another with its chunks (`ClaimOptions::join`).
fn joins(options: &CopyOptions) -> bool {
    options.claims.as_ref().is_some_and(|c| c.join)
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

/// Creates the tables, copies the chunks, then runs the ledger's remaining DDL steps, with
/// the orphan check in the target before the first foreign key (`orphans_in_target`; a
/// refusal is left in `refused`, the run's own tables, marker and ledger dropped).
#[allow(clippy::too_many_arguments)]
async fn run_plan(
    source: &Arc<dyn Source>,
    target: &Arc<dyn Target>,
    plan: &mut Plan,
    ledger: &Ledger,
    options: &CopyOptions,
    cx: &Context,
    report: &mut Report,
    (orphans_in_target, refused, copied): (bool, &mut Option<Error>, Notify),
) -> Result<()> {
    let transactional = target.dialect().capabilities().transactional_ddl;
    if !ledger.recorded {
        // A ledger left without its run row by a kill while it was written goes first.
        let mut statements = vec![ledger::drop_statement()];
        statements.extend(ledger.create_statements(transactional));
        target.execute(&statements).await?;
        killpoint::point("ledger-written");
    }
    if !ledger.steps[0] {
        cx.observer.event(&Event::Phase("Creating tables".into()));
        let mut statements = Vec::new();
        if ledger.recorded && !transactional {
            // DDL that commits per statement may have created some tables before a kill:
            // they are ferry's (no chunk is done before this step), dropped and created again.
            statements.extend(
                plan.ddl
                    .drop
                    .iter()
                    .filter(|s| !s.starts_with("DELETE"))
                    .cloned(),
            );
        }
        let created: Vec<String> = plan
            .tables
            .iter()
            .filter(|t| !t.existing)
            .map(|t| format!("('{}')", t.target_name.replace('\'', "''")))
            .collect();
        if !created.is_empty() {
            statements.push(format!(
                "CREATE TABLE IF NOT EXISTS {UNFINISHED} (table_name varchar(255) NOT NULL)"
            ));
            statements.push(format!(
                "INSERT INTO {UNFINISHED} (table_name) VALUES {}",
                created.join(", ")
            ));
        }
        statements.extend(plan.ddl.create.iter().cloned());
        statements.push(ledger::mark_step(0));
        target
            .execute(&ledger::atomic(statements, transactional))
            .await?;
        killpoint::point("tables-created");
    }

    cx.observer.event(&Event::Phase("Copying rows".into()));
    // A table's keys and indexes are built as soon as its rows are all in, and a foreign key
    // once both its tables have theirs (`keys`), beside the other tables' copy, where this run
    // alone writes every chunk into a target that takes writers at once (not a shard, a helper
    // or a SQLite file, whose one writer they would hold off).
    let early = target.dialect().capabilities().max_parallel_writers > 1
        && options.shard.is_none()
        && options.claims.is_none();
    let keys = if early {
        let (target, ignore) = (target.as_ref(), options.ignore_errors);
        Keys::new(plan, ledger, target, orphans_in_target, ignore)
    } else {
        Keys::none()
    };
    let run = Run {
        source: source.clone(),
        target: target.clone(),
        options: Arc::new(options.clone()),
        observer: cx.observer.clone(),
        copied,
        keys: Arc::new(keys),
        cx: Arc::new(Context {
            observer: cx.observer.clone(),
            confirm: cx.confirm.clone(),
            cancel: cx.cancel.clone(),
        }),
    };
    let copied = copy_chunks(&run, plan, ledger, cx, report).await;
    let (warnings, not_copied) = run.keys.take_notes();
    report.warnings.extend(warnings);
    report.not_copied.extend(not_copied);
    copied?;
    if options.shard.is_some() || joins(options) {
        return Ok(());
    }
    run.copied.pause(options.workers).await;

    // Each statement after the rows is a ledger step, marked in its own transaction where DDL
    // is transactional; elsewhere a kill between a statement and its mark leaves the statement
    // applied, which the resumed run recognises (`Dialect::already_applied`).
    let mut phase = "";
    let mut first_pending = true;
    // Foreign keys the orphan check leaves out (`--ignore-errors`): their steps are marked done
    // without running, so a resumed run does not add them either.
    let mut left_out: Vec<usize> = Vec::new();
    let mut orphans_checked = !orphans_in_target;
    let steps = ledger::post_steps(plan);
    for (i, &(name, statement)) in steps.iter().enumerate() {
        let step = i + 1;
        if ledger.steps.get(step) == Some(&true)
            || left_out.contains(&step)
            || run.keys.is_done(step)
        {
            continue;
        }
        if name == ledger::FOREIGN_KEYS && !orphans_checked {
            // Just before the first foreign key not yet added: the rows are in and keyed.
            orphans_checked = true;
            let rest = run.keys.without_handled(plan);
            let kept = match orphans::after_load(target.as_ref(), &rest, options, cx, report).await
            {
                Ok(statements) => statements,
                Err(e) => {
                    *refused = Some(e);
                    return Err(Error::run("orphan rows"));
                }
            };
            left_out = steps
                .iter()
                .enumerate()
                .filter(|(_, (n, s))| *n == ledger::FOREIGN_KEYS && !kept.contains(s))
                .map(|(j, _)| j + 1)
                .collect();
            if !left_out.is_empty() {
                let marks = left_out.iter().map(|&j| ledger::mark_step(j)).collect();
                target
                    .execute(&ledger::atomic(marks, transactional))
                    .await?;
            }
            if left_out.contains(&step) {
                continue;
            }
        }
        if name != phase {
            phase = name;
            cx.observer.event(&Event::Phase(name.into()));
        }
        keys::run_step(
            target.as_ref(),
            step,
            statement,
            ledger.recorded && first_pending,
        )
        .await?;
        first_pending = false;
        if cx.cancel.is_cancelled() {
            return Err(Error::cancelled());
        }
    }
    Ok(())
}

impl Run {
    /// Every chunk of `table` is committed: its keys, indexes and ready foreign keys are built
    /// (`keys`), then verification may read it (never while a key is added to it).
    async fn table_copied(&self, table: &Arc<TablePlan>, permits: &Arc<Semaphore>) -> Result<()> {
        self.keys
            .table_copied(self.target.as_ref(), table, permits, &self.cx)
            .await?;
        self.copied.copied(table);
        Ok(())
    }

    /// [`Run::table_copied`] after a table's copy that succeeded; its error is the table's.
    async fn then_keys(
        &self,
        table: &Arc<TablePlan>,
        permits: &Arc<Semaphore>,
        copied: TableResult,
    ) -> TableResult {
        let stats = copied?;
        match self.table_copied(table, permits).await {
            Ok(()) => Ok(stats),
            Err(e) => Err((stats, e)),
        }
    }
}

/// Copies this run's chunks (all those not done, or a shard's), tables in plan order on
/// `workers` chunk tasks at once.
async fn copy_chunks(
    run: &Run,
    plan: &mut Plan,
    ledger: &Ledger,
    cx: &Context,
    report: &mut Report,
) -> Result<()> {
    let cancel = &cx.cancel;
    let options = &run.options;
    let writers = run
        .target
        .dialect()
        .capabilities()
        .max_parallel_writers
        .max(1);
    let workers = options.workers.clamp(1, writers);
    let permits = Arc::new(Semaphore::new(workers));
    let all: Arc<Vec<Chunk>> = Arc::new(ledger.chunks.iter().map(|c| c.chunk.clone()).collect());
    let mine = |c: &ledger::ChunkState| {
        !c.done
            && options
                .shard
                .is_none_or(|(k, n)| c.chunk.index % n.max(1) == k)
    };
    // One failing table stops the others (without --ignore-errors a failure ends the run).
    let stop = cancel.child_token();
    let mut tasks = JoinSet::new();
    let mut first_error: Option<Error> = None;
    // Tables whose sampled types a value did not fit, with why: copied again after the others.
    let mut widened: Vec<(String, String)> = Vec::new();
    // Tables the application created keep their foreign keys during the load, so parents are
    // loaded before their children (ferry's own tables get their foreign keys afterwards).
    let ordered = plan.tables.iter().any(|t| t.existing);
    let claims = match (&options.claims, plan.tables.first()) {
        // Other workers could load a child's rows before its parents', and a target with one
        // writer gains nothing from helpers: this run copies its chunks alone.
        (Some(c), Some(first)) if !ordered && writers > 1 => Some(Arc::new(Claims::new(
            c.clone(),
            run.target.clone(),
            first.clone(),
        ))),
        (Some(c), _) if c.join => {
            report.warnings.push(
                "this copy's chunks cannot be shared (its tables keep foreign keys during the load, or the target has one writer): nothing to help with".into(),
            );
            return Ok(());
        }
        _ => None,
    };
    // The claims' heartbeat stops however this function returns.
    let heartbeat_stop = CancellationToken::new();
    let _heartbeat_guard = heartbeat_stop.clone().drop_guard();
    let heartbeat = claims
        .as_ref()
        .map(|c| c.spawn_heartbeat(heartbeat_stop.clone()));
    // The run that owns a shared copy reports the chunks others committed (earlier runs, then
    // other workers as they go), for its live stats; its own rows it reports as it writes.
    let owns_shared = options.claims.is_some() && !joins(options);
    if owns_shared {
        for (table, rows, failed) in ledger::done_by_table(&ledger.chunks) {
            cx.observer.event(&Event::CommittedByOthers {
                table,
                rows,
                failed,
            });
        }
    }
    let tally = claims
        .as_ref()
        .filter(|_| owns_shared)
        .map(|c| c.spawn_tally(cx.observer.clone(), heartbeat_stop.clone()));
    let mut finished: std::collections::HashSet<String> = std::collections::HashSet::new();
    // Tables whose chunks were all committed before this run: their keys, then verification.
    let mut keyed: JoinSet<Result<()>> = JoinSet::new();
    // One table after another: a table's chunks take the run's slots before the next table's
    // (which queues for a slot once the last of them is handed out), heaviest first
    // (`chunks::copy_order`), so a table is in, keyed and verified while later ones copy, and
    // a kill late in the copy leaves the last tables' work, not every table's. Tables the
    // application created load parents first: the plan's order.
    let order = if ordered {
        (0..plan.tables.len()).collect()
    } else {
        chunks::copy_order(&plan.tables)
    };
    let mut handing_out: Option<oneshot::Receiver<()>> = None;
    for table in order.into_iter().map(|i| &plan.tables[i]) {
        let pending: Vec<Chunk> = ledger
            .chunks
            .iter()
            .filter(|c| c.chunk.table == table.source_name && mine(c))
            .map(|c| c.chunk.clone())
            .collect();
        if pending.is_empty() {
            finished.insert(table.source_name.clone());
            if options.shard.is_none() && claims.is_none() {
                let (run, table, permits) = (run.clone(), Arc::new(table.clone()), permits.clone());
                let stop = stop.clone();
                keyed.spawn(async move {
                    let result = run.table_copied(&table, &permits).await;
                    if result.is_err() {
                        stop.cancel();
                    }
                    result
                });
            }
            continue;
        }
        while ordered && !tasks.is_empty() && !table.depends_on.iter().all(|d| finished.contains(d))
        {
            if let Some(joined) = tasks.join_next().await {
                let name = record(joined, report, &mut first_error, &mut widened)?;
                finished.insert(name);
            }
        }
        if let Some(previous) = handing_out.take() {
            // Ended early (failed, stopped) or every chunk handed out: either way, go on.
            tokio::select! {
                _ = previous => {}
                () = stop.cancelled() => break,
            }
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
            () = stop.cancelled() => break,
        };
        let done = done_before(report, &table.source_name);
        let (handed_out, next_table) = oneshot::channel();
        handing_out = Some(next_table);
        let job = TableJob {
            table: Arc::new(table.clone()),
            chunks: ChunkSource::new(pending, claims.as_ref()),
            siblings: all.clone(),
            permits: permits.clone(),
            done,
            handed_out: Some(handed_out),
        };
        let (run, stop) = (run.clone(), stop.clone());
        tasks.spawn(async move {
            let (name, table) = (job.table.source_name.clone(), job.table.clone());
            let permits = job.permits.clone();
            let result = copy_table(run.clone(), job, permit, stop.clone()).await;
            let result = run.then_keys(&table, &permits, result).await;
            // A table sent back for a full profile stops only itself (see `widen.rs`).
            if result.as_ref().is_err_and(|(_, e)| !widen::is_misfit(e)) {
                stop.cancel();
            }
            (name, result)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        record(joined, report, &mut first_error, &mut widened)?;
    }
    while let Some(joined) = keyed.join_next().await {
        let result =
            joined.unwrap_or_else(|e| Err(Error::run(format!("a key task panicked: {e}"))));
        if let Err(e) = result
            && first_error
                .as_ref()
                .is_none_or(|prev| prev.kind() == ErrorKind::Cancelled)
        {
            first_error = Some(e);
        }
    }
    if let Some(claims) = &claims {
        let shared = Shared {
            claims,
            all: &all,
            permits: &permits,
            stop: &stop,
        };
        let drained = if first_error.is_none() && !cancel.is_cancelled() {
            drain(
                run,
                plan,
                &shared,
                cx,
                report,
                &mut first_error,
                &mut widened,
            )
            .await
        } else {
            Ok(())
        };
        heartbeat_stop.cancel();
        for task in heartbeat.into_iter().chain(tally) {
            let _ = task.await;
        }
        // Claims on chunks not committed (a stop, a failure) go back at once.
        claims.release().await;
        drained?;
    }
    if first_error.is_none() && !cancel.is_cancelled() {
        for (name, why) in std::mem::take(&mut widened) {
            let (table, ddl) =
                widen::replan(run.source.as_ref(), plan, &name, run.target.dialect()).await?;
            let note = format!(
                "{why}: the table's column types were chosen again from every value and it was copied again"
            );
            cx.observer.event(&Event::Warning(note.clone()));
            report.warnings.push(note);
            for c in &table.columns {
                let lossy = c.notes.iter();
                report
                    .lossy
                    .extend(lossy.map(|n| format!("{name}.{}: {n}", c.source_name)));
            }
            // Recreating the table drops the rows of its chunks already committed: the ledger
            // forgets them in the same transaction (first, where DDL commits per statement, so
            // a kill in between redoes chunks rather than trusting rows that are gone).
            let mut statements = vec![ledger::reset_table_statement(&name)];
            statements.extend(ddl);
            let transactional = run.target.dialect().capabilities().transactional_ddl;
            run.target
                .execute(&ledger::atomic(statements, transactional))
                .await?;
            // Copied again from the start: its earlier counts would count rows twice.
            if let Some(entry) = report.stats.get_mut(&name) {
                *entry = TableStats {
                    total: entry.total,
                    ..Default::default()
                };
            }
            let chunks: Vec<Chunk> = ledger
                .chunks
                .iter()
                .filter(|c| c.chunk.table == name)
                .filter(|c| {
                    options
                        .shard
                        .is_none_or(|(k, n)| c.chunk.index % n.max(1) == k)
                })
                .map(|c| c.chunk.clone())
                .collect();
            let table = Arc::new(table);
            let job = TableJob {
                table: table.clone(),
                chunks: ChunkSource::new(chunks, None),
                siblings: all.clone(),
                permits: permits.clone(),
                done: (0, 0),
                handed_out: None,
            };
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
                () = stop.cancelled() => break,
            };
            let result = copy_table(run.clone(), job, permit, stop.clone()).await;
            let result = run.then_keys(&table, &permits, result).await;
            record(Ok((name, result)), report, &mut first_error, &mut widened)?;
        }
    }
    if let Some((_, why)) = widened.first() {
        // Profiled in full, the table still did not fit: not expected, but never silent.
        first_error.get_or_insert_with(|| Error::run(why.clone()));
    }
    if let Some(e) = first_error {
        if e.kind() == ErrorKind::Cancelled && cancel.is_cancelled() {
            return Err(Error::cancelled());
        }
        return Err(e);
    }
    if cancel.is_cancelled() {
        return Err(Error::cancelled());
    }
    Ok(())
}

/// Where a table's chunks come from: a fixed list (a run alone, a `--shard`), or claims with
/// leases in the ledger (`CopyOptions::claims`), tried in order, a chunk held by another live
/// worker or done skipped.
enum ChunkSource {
    Fixed(std::vec::IntoIter<Chunk>),
    Claimed {
        /// Claimed already, to copy first.
        next: Option<Chunk>,
        candidates: std::vec::IntoIter<Chunk>,
        claims: Arc<Claims>,
    },
}

impl ChunkSource {
    fn new(chunks: Vec<Chunk>, claims: Option<&Arc<Claims>>) -> Self {
        match claims {
            Some(claims) => ChunkSource::Claimed {
                next: None,
                candidates: chunks.into_iter(),
                claims: claims.clone(),
            },
            None => ChunkSource::Fixed(chunks.into_iter()),
        }
    }

    /// How many chunks may still come: exact for a fixed list, at most this many with claims
    /// (other workers may claim some first).
    fn remaining(&self) -> usize {
        match self {
            ChunkSource::Fixed(chunks) => chunks.len(),
            ChunkSource::Claimed {
                next, candidates, ..
            } => candidates.len() + usize::from(next.is_some()),
        }
    }

    /// The next chunk to copy; `None` when none is left (or none can be claimed now).
    async fn next(&mut self) -> Result<Option<Chunk>> {
        match self {
            ChunkSource::Fixed(chunks) => Ok(chunks.next()),
            ChunkSource::Claimed {
                next,
                candidates,
                claims,
            } => {
                if let Some(chunk) = next.take() {
                    return Ok(Some(chunk));
                }
                for chunk in candidates.by_ref() {
                    if claims.claim(chunk.index).await? {
                        return Ok(Some(chunk));
                    }
                }
                Ok(None)
            }
        }
    }
}

/// The rows written and rejected in `table` so far, as the report counts them.
fn done_before(report: &Report, table: &str) -> (u64, u64) {
    report
        .stats
        .get(table)
        .map_or((0, 0), |s| (s.migrated, s.failed))
}

/// How often a run whose claims ran dry looks at the ledger for chunks left undone.
const DRAIN_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// What a run sharing its chunks (`Claims`) needs to copy more of them.
struct Shared<'a> {
    claims: &'a Arc<Claims>,
    all: &'a Arc<Vec<Chunk>>,
    permits: &'a Arc<Semaphore>,
    stop: &'a CancellationToken,
}

/// After this run's claims ran dry: waits until every chunk of the ledger is done, claiming
/// the chunks whose claims ran out (their worker died or stopped) and copying them, then takes
/// the rows of every table from the ledger, so the rows other workers committed count once.
async fn drain(
    run: &Run,
    plan: &Plan,
    shared: &Shared<'_>,
    cx: &Context,
    report: &mut Report,
    first_error: &mut Option<Error>,
    widened: &mut Vec<(String, String)>,
) -> Result<()> {
    loop {
        if shared.stop.is_cancelled() {
            return Ok(());
        }
        // Gone: the run that owns the copy completed it.
        let Some(ledger) = Ledger::read(run.target.as_ref(), &cx.cancel).await? else {
            return Ok(());
        };
        let left: Vec<&ledger::ChunkState> = ledger.chunks.iter().filter(|c| !c.done).collect();
        if left.is_empty() {
            for table in &plan.tables {
                let of_table = ledger
                    .chunks
                    .iter()
                    .filter(|c| c.chunk.table == table.source_name);
                let (rows, failed) = of_table.fold((0, 0), |(r, f), c| (r + c.rows, f + c.failed));
                let entry = report.stats.entry(table.source_name.clone()).or_default();
                entry.migrated = rows;
                entry.failed = failed;
            }
            return Ok(());
        }
        let before = shared.claims.won();
        for table in &plan.tables {
            let chunks: Vec<Chunk> = left
                .iter()
                .filter(|c| c.chunk.table == table.source_name)
                .map(|c| c.chunk.clone())
                .collect();
            let mut source = ChunkSource::new(chunks, Some(shared.claims));
            // A table starts (and is reported) only for a chunk this run won.
            let Some(chunk) = source.next().await? else {
                continue;
            };
            if let ChunkSource::Claimed { next, .. } = &mut source {
                *next = Some(chunk);
            }
            let permit = tokio::select! {
                p = shared.permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
                () = shared.stop.cancelled() => return Ok(()),
            };
            let done = done_before(report, &table.source_name);
            let job = TableJob {
                table: Arc::new(table.clone()),
                chunks: source,
                siblings: shared.all.clone(),
                permits: shared.permits.clone(),
                done,
                handed_out: None,
            };
            let name = table.source_name.clone();
            let result = copy_table(run.clone(), job, permit, shared.stop.clone()).await;
            record(Ok((name, result)), report, first_error, widened)?;
            if first_error.is_some() {
                return Ok(());
            }
        }
        if shared.claims.won() == before {
            tokio::select! {
                () = tokio::time::sleep(DRAIN_POLL) => {}
                () = shared.stop.cancelled() => return Ok(()),
            }
        }
    }
}

/// A table in the target naming the tables a run created and has not finished (their keys,
/// indexes and foreign keys come after the rows). A later run creates those anew, under
/// `--force`, instead of filling them as if the application had made them without keys.
pub(crate) const UNFINISHED: &str = "ferry_unfinished_tables";

/// The table names an interrupted run left in the target's marker table.
async fn unfinished_tables(target: &dyn Target, cancel: &CancellationToken) -> Result<Vec<String>> {
    let rows = ledger::read_own_table(target, UNFINISHED, &["table_name"], cancel).await?;
    let mut names = Vec::new();
    for row in rows {
        if let Some(crate::value::Value::Text(name)) = row.into_iter().next()
            && !names.contains(&name)
        {
            names.push(name);
        }
    }
    Ok(names)
}

/// Files a finished table's stats in the report and keeps the first real error (over the
/// cancellations it caused in other tables). Returns the table's name.
fn record(
    joined: std::result::Result<(String, TableResult), tokio::task::JoinError>,
    report: &mut Report,
    first_error: &mut Option<Error>,
    widened: &mut Vec<(String, String)>,
) -> Result<String> {
    let (name, result) = joined.map_err(|e| Error::run(format!("a copy task panicked: {e}")))?;
    let (stats, error) = match result {
        Ok(stats) => (stats, None),
        Err((_, e)) if widen::is_misfit(&e) => {
            // Copied again from the start: its partial stats would count rows twice.
            widened.push((name.clone(), e.message().to_string()));
            return Ok(name);
        }
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
    /// Told of each table whose chunks are all committed (it may be verified then).
    copied: Notify,
    keys: Arc<Keys>,
    cx: Arc<Context>,
}

/// One table's share of a run: the chunks this run copies, and what is done already.
struct TableJob {
    table: Arc<TablePlan>,
    chunks: ChunkSource,
    /// Every chunk of the plan, for the ranges at the table's ends (`chunks::read_range`).
    siblings: Arc<Vec<Chunk>>,
    /// The run's chunk tasks at once (`workers`).
    permits: Arc<Semaphore>,
    /// Rows written and rejected by chunks done before this run.
    done: (u64, u64),
    /// Told once the last of the table's chunks is handed out (or the table stopped): the
    /// next table may take the run's slots.
    handed_out: Option<oneshot::Sender<()>>,
}

/// Copies a table's chunks, each on a task holding one of the run's permits (`first` for the
/// first chunk, taken before the table started).
async fn copy_table(
    run: Run,
    job: TableJob,
    first: tokio::sync::OwnedSemaphorePermit,
    cancel: CancellationToken,
) -> TableResult {
    let table = job.table;
    let started = Instant::now();
    run.observer.event(&Event::TableStarted {
        table: table.source_name.clone(),
        rows: table.row_count,
    });
    // A run sharing its chunks reports those done before it as other workers' instead
    // (`Event::CommittedByOthers`), and its own as it writes them.
    if job.done.0 + job.done.1 > 0 && run.options.claims.is_none() {
        run.observer.event(&Event::TableProgress {
            table: table.source_name.clone(),
            rows: job.done.0,
            failed: job.done.1,
            bytes: 0,
        });
    }
    let rejects = Rejects::new(&run.options.reject_dir, &table.source_name);
    // A failing chunk stops the table's other chunks.
    let stop = cancel.child_token();
    let shared = Arc::new(TableCopy {
        run: run.clone(),
        cancel: stop.clone(),
        rejects: rejects.clone(),
        idle: std::sync::Mutex::default(),
        unstarted: AtomicUsize::new(job.chunks.remaining()),
    });
    let mut tasks = JoinSet::new();
    let mut first = Some(first);
    let mut source = job.chunks;
    let mut handed_out = job.handed_out;
    // A chunk is taken (claimed, when claims are in use) only once a permit is free for it.
    let mut claim_error = None;
    loop {
        let permit = match first.take() {
            Some(p) => p,
            None => tokio::select! {
                p = job.permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
                () = stop.cancelled() => break,
            },
        };
        let chunk = match source.next().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                stop.cancel();
                claim_error = Some(e);
                break;
            }
        };
        if source.remaining() == 0
            && let Some(tx) = handed_out.take()
        {
            let _ = tx.send(());
        }
        let part = match chunks::read_range(&chunk, &job.siblings, &table) {
            Some(r) => {
                let mut t = (*table).clone();
                t.source.locator_range = Some(r);
                Arc::new(t)
            }
            None => table.clone(),
        };
        let shared = shared.clone();
        tasks.spawn(async move {
            shared.unstarted.fetch_sub(1, Ordering::Relaxed);
            let (stats, result) = copy_chunk(&shared, &part, chunk.index).await;
            if result.is_err() {
                shared.cancel.cancel();
            }
            drop(permit);
            (stats, result)
        });
    }
    // Stopped before its last chunk, or claims ran dry: the next table goes on anyway.
    drop(handed_out);
    let mut stats = TableStats {
        total: table.row_count,
        migrated: job.done.0,
        failed: job.done.1,
        ..Default::default()
    };
    let mut error: Option<Error> = claim_error;
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
    if error.is_none() && cancel.is_cancelled() {
        error = Some(Error::cancelled());
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

/// What the chunk tasks of one table share.
struct TableCopy {
    run: Run,
    /// The table's stop: a failing chunk stops the table's other chunks.
    cancel: CancellationToken,
    rejects: Rejects,
    /// Writers between two chunks, each on its open connection with its session set up: a
    /// chunk takes one (or opens one when none is idle) and gives it back once its transaction
    /// ended, so a table's chunks share at most `workers` connections instead of each opening
    /// its own (a TLS handshake and session setup per 100,000 rows). A writer whose chunk
    /// failed is dropped, closing its connection, which rolls its transaction back.
    idle: std::sync::Mutex<Vec<Box<dyn TableWriter>>>,
    /// The table's chunks not started yet: no more writers are kept idle than will be used.
    unstarted: AtomicUsize,
}

impl TableCopy {
    fn take_idle(&self) -> Option<Box<dyn TableWriter>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn give_back(&self, writer: Box<dyn TableWriter>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.unstarted.load(Ordering::Relaxed) {
            idle.push(writer);
        }
    }

    /// Closes the idle writers: after a transient fault, theirs may be cut off too (a server
    /// restart closes every connection).
    fn forget_idle(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Copies one chunk in one transaction of the target, committed together with its ledger row:
/// a kill before the commit leaves nothing of it, after it the chunk is done and counted.
/// Returns the chunk's counts (those of the attempt that ended it) with its outcome.
async fn copy_chunk(t: &TableCopy, table: &Arc<TablePlan>, index: u64) -> (TableStats, Result<()>) {
    // The chunk is the unit that is atomic in the target, so it is what a transient fault (a
    // restart, a lost connection, a deadlock) makes us redo, on a new connection: an attempt
    // cut off left nothing behind, and the ledger's claim keeps a chunk from counting twice
    // when a commit did land but its answer was lost.
    let policy = Policy::default();
    let mut retries = 0;
    let on_retry = |n: u32, e: &Error| {
        retries += 1;
        t.run.observer.event(&Event::Warning(format!(
            "table \"{}\", chunk {index}: {e}; copying the chunk again ({n} of {}) on a new connection",
            table.source_name, policy.retries
        )));
    };
    let mut attempts = 0;
    let copied = retry::retrying(&policy, &t.cancel, on_retry, || {
        attempts += 1;
        let fresh = attempts > 1;
        async move {
            match copy_chunk_once(t, table, index, fresh).await {
                (attempt, Ok(())) => Ok(Ok(attempt)),
                (_, Err(e)) if e.is_transient() => {
                    t.forget_idle();
                    Err(e)
                }
                // Any other error is not retried, and keeps the attempt's counts.
                (attempt, Err(e)) => Ok(Err((attempt, e))),
            }
        }
    })
    .await;
    let (mut stats, result) = match copied {
        Ok(Ok(attempt)) => (attempt, Ok(())),
        Ok(Err((attempt, e))) => (attempt, Err(e)),
        Err(e) => (TableStats::default(), Err(e)),
    };
    stats.retries += retries;
    (stats, result)
}

/// One attempt at a chunk, in one transaction of the target committed together with its
/// ledger row, on an idle writer of the table or (none idle, or `fresh`) a new one.
async fn copy_chunk_once(
    t: &TableCopy,
    table: &Arc<TablePlan>,
    index: u64,
    fresh: bool,
) -> (TableStats, Result<()>) {
    let mut stats = TableStats::default();
    // What this attempt reported in `TableProgress`, and whether its commit kept it.
    let mut reported = (0, 0);
    let mut kept = false;
    let result = async {
        let idle = if fresh { None } else { t.take_idle() };
        let mut writer = match idle {
            Some(w) => w,
            None => t.run.target.writer(table).await?,
        };
        writer.begin_chunk(t.run.options.ignore_errors).await?;
        let (run, cancel, rejects) = (&t.run, &t.cancel, &t.rejects);
        let copied = (&mut stats, &mut reported);
        copy_rows(run, table, writer.as_mut(), cancel, rejects, copied).await?;
        killpoint::point("chunk-before-commit");
        let claim = ledger::claim_chunk(index, stats.migrated, stats.failed);
        kept = writer.commit_chunk(&claim).await?;
        if !kept {
            // Another worker committed this chunk first; its rows are the ones kept.
            stats = TableStats::default();
        }
        killpoint::point("chunk-committed");
        t.give_back(writer);
        Ok(())
    }
    .await;
    t.run.observer.event(&Event::ChunkEnded {
        table: table.source_name.clone(),
        rows: reported.0,
        failed: reported.1,
        kept,
    });
    (stats, result)
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
    writer: &mut dyn TableWriter,
    cancel: &CancellationToken,
    rejects: &Rejects,
    (stats, reported): (&mut TableStats, &mut (u64, u64)),
) -> Result<()> {
    let (options, observer) = (&run.options, &run.observer);
    // Two batches in flight bound memory to about three batches per table, whatever its size.
    let (tx, mut rx) = mpsc::channel::<Batch>(2);
    let reader = {
        let (source, table, cancel, batch_rows) = (
            run.source.clone(),
            table.clone(),
            cancel.clone(),
            options.batch_rows,
        );
        tokio::spawn(async move {
            source
                .read(ReadRequest::new(&table.source, batch_rows, tx, cancel))
                .await
        })
    };
    let outcome: Result<()> = async {
        while let Some(batch) = rx.recv().await {
            if cancel.is_cancelled() {
                return Err(Error::cancelled());
            }
            let rows = batch.len() as u64;
            if let Some(e) = widen::misfit(table, &batch) {
                return Err(e);
            }
            let (batch, failures) = convert_batch(table, batch, &mut stats.rounded);
            if let Some(e) = widen::failed_conversion(table, &failures) {
                return Err(e);
            }
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
            write_splitting(writer, table, batch, options.ignore_errors, rejects, stats).await?;
            stats.bytes += bytes;
            let failed = stats.failed - failed_before;
            reported.0 += rows - failed;
            reported.1 += failed;
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
    mut batch: Batch,
    rounded: &mut BTreeMap<String, u64>,
) -> (Batch, Vec<(Batch, usize, String)>) {
    if table.columns.iter().all(|c| c.convert_to.is_none()) {
        return (batch, Vec::new());
    }
    let width = batch.width;
    let n = batch.len();
    // Converted in place, one row at a time: a value already in its target form is not
    // touched, and a row's conversions are written back only once all of them succeeded (a
    // failed row stays whole, as read, for the reject file). Moving every value into a new
    // batch cost more than the conversions themselves.
    let mut failed: Vec<(usize, String)> = Vec::new();
    let mut converted: Vec<(usize, crate::value::Value)> = Vec::with_capacity(width);
    for (row, cells) in batch.values.chunks_exact_mut(width.max(1)).enumerate() {
        converted.clear();
        let mut error = None;
        for (i, (value, col)) in cells.iter().zip(&table.columns).enumerate() {
            let to = match &col.convert_to {
                Some(to) if !crate::convert::already(value, to) => to,
                _ => continue,
            };
            let result = crate::convert::convert_borrowed(value, to)
                .unwrap_or_else(|| convert_noting_rounding(value.clone(), to));
            match result {
                Ok((v, lost)) => {
                    if lost {
                        *rounded.entry(col.source_name.clone()).or_default() += 1;
                    }
                    converted.push((i, v));
                }
                Err(reason) => {
                    error = Some(format!("column \"{}\": {reason}", col.source_name));
                    break;
                }
            }
        }
        match error {
            None => {
                for (i, v) in converted.drain(..) {
                    cells[i] = v;
                }
            }
            Some(reason) => failed.push((row, reason)),
        }
    }
    if failed.is_empty() {
        return (batch, Vec::new());
    }
    // Rare: take the failed rows out, each as a one-row batch with its reason.
    let has_locators = !batch.locators.is_empty();
    let mut out = Batch::new(width, n - failed.len());
    let mut failures = Vec::with_capacity(failed.len());
    let mut values = std::mem::take(&mut batch.values).into_iter();
    let mut failed = failed.into_iter().peekable();
    for row in 0..n {
        let target = match failed.next_if(|(r, _)| *r == row) {
            Some((_, reason)) => {
                failures.push((Batch::new(width, 1), 0, reason));
                &mut failures.last_mut().expect("just pushed").0
            }
            None => &mut out,
        };
        target.values.extend(values.by_ref().take(width));
        if has_locators {
            target.locators.push(batch.locators[row]);
        }
    }
    (out, failures)
}
