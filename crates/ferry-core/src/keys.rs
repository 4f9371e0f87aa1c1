//! Keys, indexes and foreign keys built table by table during a copy: a table's primary key,
//! unique keys, indexes and statistics (ANALYZE) as soon as its chunks are all committed, and
//! a foreign key as soon as both its tables have theirs (after its orphan check), each a
//! ledger step with its mark, as the steps after the rows are. A kill late in a copy then leaves only the keys of the
//! tables still copying to build, not every key of the database.
//!
//! Why this is the same as building them after every row (docs/copy.md, "Resume"):
//! - a table's key steps run once nothing writes its rows any more (all its chunks are
//!   committed, and `widen` recreates a table only before that), so they see the rows the run
//!   ends with, and verification reads the table only after them (no key is added to a table
//!   being compared: see `verify_stage`);
//! - a foreign key waits for both tables' keys, as before; one at a time, so that two never
//!   lock each other's tables; its orphan check is the one of `orphans::after_load`, on that
//!   foreign key: none found, the key is added; found under `--ignore-errors`, it is left out
//!   (marked done without running, named in the warnings); found otherwise, it is left for the
//!   check after every row, which refuses the run as before, naming every foreign key with
//!   orphans and dropping what the run created.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Semaphore;

use crate::connector::Target;
use crate::engine::Context;
use crate::error::Result;
use crate::killpoint;
use crate::ledger::{self, Ledger};
use crate::orphans;
use crate::plan::{Plan, TablePlan};
use crate::progress::Event;
use crate::schema::SkippedObject;

/// A foreign key's ledger step and what its orphan check needs.
struct ForeignKeyStep {
    step: usize,
    statement: String,
    /// Source names of the referencing and the referenced table.
    child: String,
    parent: String,
    /// The plan's foreign key, to leave out of the check after every row once handled here.
    columns: Vec<String>,
    ref_table: String,
    /// The two tables alone, with this foreign key alone: what `orphans::in_target` reads.
    alone: Plan,
}

/// This run's early keys and foreign keys (`Keys::none` when it builds them all at the end).
pub(crate) struct Keys {
    /// Per table (source name): its key, index and statistics steps not done yet, with their
    /// phase and statement.
    tables: BTreeMap<String, Vec<(usize, &'static str, String)>>,
    /// Foreign key steps not done yet.
    foreign_keys: Vec<ForeignKeyStep>,
    /// Whether orphans are looked for in the target before a foreign key (`orphans::deferred`).
    orphans_in_target: bool,
    ignore_errors: bool,
    /// A resumed run: a step may have been applied before the kill, its mark not (DDL that
    /// commits per statement), the first of each table's keys, any foreign key.
    resumed: bool,
    state: Mutex<State>,
    /// One foreign key at a time.
    one_fk: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    /// Steps this run has done (foreign keys left out included).
    done: BTreeSet<usize>,
    /// Tables whose keys are built.
    keyed: BTreeSet<String>,
    /// Foreign key steps taken by a task (done, under way, or left for the end).
    taken: BTreeSet<usize>,
    /// What foreign keys left out here add to the report.
    warnings: Vec<String>,
    not_copied: Vec<SkippedObject>,
}

impl Keys {
    /// Nothing early: every key is built after every table's rows.
    pub(crate) fn none() -> Self {
        Self {
            tables: BTreeMap::new(),
            foreign_keys: Vec::new(),
            orphans_in_target: false,
            ignore_errors: false,
            resumed: false,
            state: Mutex::default(),
            one_fk: tokio::sync::Mutex::new(()),
        }
    }

    /// The steps of `plan` this run may build early: those the ledger does not mark done.
    pub(crate) fn new(
        plan: &Plan,
        ledger: &Ledger,
        target: &dyn Target,
        orphans_in_target: bool,
        ignore_errors: bool,
    ) -> Self {
        let done = |i: usize| ledger.steps.get(i) == Some(&true);
        let tables = ledger::key_steps(plan, target.dialect())
            .into_iter()
            .map(|(t, steps)| (t, steps.into_iter().filter(|(i, ..)| !done(*i)).collect()))
            .collect();
        let foreign_keys = foreign_key_steps(plan, target)
            .into_iter()
            .filter(|f| !done(f.step))
            .collect();
        Self {
            tables,
            foreign_keys,
            orphans_in_target,
            ignore_errors,
            resumed: ledger.recorded,
            state: Mutex::default(),
            one_fk: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this run did step `step` already.
    pub(crate) fn is_done(&self, step: usize) -> bool {
        self.state().done.contains(&step)
    }

    /// Every chunk of `table` is committed: builds its keys and indexes not built yet, then
    /// the foreign keys whose two tables now have theirs, holding one of the run's `permits`
    /// (as a chunk does).
    ///
    /// # Errors
    /// A statement's error, or an orphan check's.
    pub(crate) async fn table_copied(
        &self,
        target: &dyn Target,
        table: &TablePlan,
        permits: &Arc<Semaphore>,
        cx: &Context,
    ) -> Result<()> {
        let name = &table.source_name;
        let steps = self.tables.get(name).map_or(&[][..], Vec::as_slice);
        let touches = |f: &ForeignKeyStep| &f.child == name || &f.parent == name;
        if steps.is_empty() && !self.foreign_keys.iter().any(touches) {
            self.state().keyed.insert(name.clone());
            return Ok(());
        }
        let _permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore is never closed");
        // In the order of the steps after every row: keys, foreign keys, statistics.
        let (keys, stats): (Vec<_>, Vec<_>) =
            steps.iter().partition(|(_, p, _)| *p == ledger::KEYS);
        if !keys.is_empty() {
            cx.observer
                .event(&Event::Phase(format!("{} of \"{name}\"", ledger::KEYS)));
        }
        for (n, (step, _, statement)) in keys.into_iter().enumerate() {
            run_step(target, *step, statement, self.resumed && n == 0)
                .await
                .map_err(|e| e.context(format!("table \"{name}\"")))?;
            self.state().done.insert(*step);
        }
        self.state().keyed.insert(name.clone());
        for f in self.foreign_keys.iter().filter(|f| touches(f)) {
            {
                let mut state = self.state();
                let ready = state.keyed.contains(&f.child) && state.keyed.contains(&f.parent);
                if !ready || !state.taken.insert(f.step) {
                    continue;
                }
            }
            let _one = self.one_fk.lock().await;
            self.foreign_key(target, f, cx).await?;
        }
        for (step, _, statement) in stats {
            run_step(target, *step, statement, false)
                .await
                .map_err(|e| e.context(format!("table \"{name}\"")))?;
            self.state().done.insert(*step);
        }
        Ok(())
    }

    /// Adds one foreign key, after its orphan check where the run looks for orphans in the
    /// target (found: left out under `--ignore-errors`, else left for the check after every
    /// row, which refuses the run).
    async fn foreign_key(
        &self,
        target: &dyn Target,
        f: &ForeignKeyStep,
        cx: &Context,
    ) -> Result<()> {
        if self.orphans_in_target {
            let found = orphans::in_target(target, &f.alone, cx).await?;
            if !found.is_empty() {
                if !self.ignore_errors {
                    return Ok(());
                }
                let (_, warnings, not_copied) = orphans::left_out(&f.alone, &found, cx);
                let transactional = target.dialect().capabilities().transactional_ddl;
                let mark = vec![ledger::mark_step(f.step)];
                target.execute(&ledger::atomic(mark, transactional)).await?;
                let mut state = self.state();
                state.done.insert(f.step);
                state.warnings.extend(warnings);
                state.not_copied.extend(not_copied);
                return Ok(());
            }
        }
        cx.observer.event(&Event::Phase(format!(
            "{} of \"{}\"",
            ledger::FOREIGN_KEYS,
            f.child
        )));
        run_step(target, f.step, &f.statement, self.resumed).await?;
        self.state().done.insert(f.step);
        Ok(())
    }

    /// What foreign keys left out here add to the report: warnings and objects not copied.
    pub(crate) fn take_notes(&self) -> (Vec<String>, Vec<SkippedObject>) {
        let mut state = self.state();
        (
            std::mem::take(&mut state.warnings),
            std::mem::take(&mut state.not_copied),
        )
    }

    /// `plan` without the foreign keys this run handled already (added, or left out): the
    /// orphan check after every row need not read them again.
    pub(crate) fn without_handled(&self, plan: &Plan) -> Plan {
        let state = self.state();
        let mut rest = plan.clone();
        for f in self
            .foreign_keys
            .iter()
            .filter(|f| state.done.contains(&f.step))
        {
            if let Some(t) = rest.tables.iter_mut().find(|t| t.source_name == f.child) {
                t.foreign_keys
                    .retain(|p| !(p.columns == f.columns && p.ref_table == f.ref_table));
            }
        }
        rest
    }
}

/// The foreign key steps of `plan` (numbered as in `ledger::post_steps`) that stand for one
/// foreign key of the plan each, with its two tables.
fn foreign_key_steps(plan: &Plan, target: &dyn Target) -> Vec<ForeignKeyStep> {
    let dialect = target.dialect();
    let base = Plan {
        tables: Vec::new(),
        objects: Vec::new(),
        ..plan.clone()
    };
    let steps = ledger::post_steps(plan);
    let mut out = Vec::new();
    for child in &plan.tables {
        for fk in &child.foreign_keys {
            let Some(parent) = plan.tables.iter().find(|t| t.target_name == fk.ref_table) else {
                continue;
            };
            let mut tables = vec![TablePlan {
                foreign_keys: vec![fk.clone()],
                ..child.clone()
            }];
            if parent.source_name != child.source_name {
                tables.push(TablePlan {
                    foreign_keys: Vec::new(),
                    ..parent.clone()
                });
            }
            let alone = Plan {
                tables,
                ..base.clone()
            };
            let statements = dialect.ddl(&alone).foreign_keys;
            let [statement] = statements.as_slice() else {
                continue;
            };
            let mut matching = steps
                .iter()
                .enumerate()
                .filter(|(_, (phase, s))| *phase == ledger::FOREIGN_KEYS && *s == statement);
            let (Some((i, _)), None) = (matching.next(), matching.next()) else {
                continue;
            };
            out.push(ForeignKeyStep {
                step: i + 1,
                statement: statement.clone(),
                child: child.source_name.clone(),
                parent: parent.source_name.clone(),
                columns: fk.columns.clone(),
                ref_table: fk.ref_table.clone(),
                alone,
            });
        }
    }
    out
}

/// Runs ledger step `step` (`statement`) with its mark: both in one transaction where DDL is
/// transactional; elsewhere the statement, then its mark, so a kill in between leaves the
/// statement applied, which `maybe_applied` (a step a resumed run repeats) accepts
/// (`Dialect::already_applied`).
pub(crate) async fn run_step(
    target: &dyn Target,
    step: usize,
    statement: &str,
    maybe_applied: bool,
) -> Result<()> {
    if target.dialect().capabilities().transactional_ddl {
        let statements = vec![statement.to_string(), ledger::mark_step(step)];
        target.execute(&ledger::atomic(statements, true)).await?;
    } else {
        match target.execute(&[statement.to_string()]).await {
            Err(e) if maybe_applied && target.dialect().already_applied(&e.to_string()) => {}
            result => result?,
        }
        killpoint::point("step-before-mark");
        target.execute(&[ledger::mark_step(step)]).await?;
    }
    killpoint::point("step-done");
    Ok(())
}
