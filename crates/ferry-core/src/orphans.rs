//! Orphan rows: a foreign key value with no parent row, which databases that did not enforce
//! their foreign keys hold (SQLite, MySQL loaded with `foreign_key_checks` off, a PostgreSQL
//! `NOT VALID` constraint). Looked for in one of two places, with one report:
//! - in the target, after the rows are loaded and its keys built, before the foreign keys are
//!   added ([`in_target`]): the common case, where the target's fresh indexes do the work and
//!   the source is not scanned once more before the copy (issue 17 measured anti-joins over
//!   TPC-H's lineitem and orders in MySQL at 26.6 s of a 64.9 s copy);
//! - in the source, before anything is written ([`in_source`]): dry runs and `--strict` (which
//!   promise to name every change before writing), targets that declare foreign keys with
//!   their tables (SQLite), runs into tables the application created, and runs that erase
//!   tables (`--force`: a refused run must not have erased them).
//!
//! Without `--ignore-errors` orphans stop the run (exit 1) and the target is left as it was
//! (tables the run created are dropped again); with it the rows are copied and that foreign
//! key is left out of the target, named in the warnings and among the objects not copied.

use crate::connector::{Dialect, Source, Target};
use crate::engine::{Context, CopyOptions};
use crate::error::{Error, Result};
use crate::plan::{ForeignKeyPlan, Plan, TablePlan};
use crate::progress::Event;
use crate::schema::{ForeignKey, Schema, SkippedObject};

/// How many orphan keys a report shows per foreign key.
const SHOWN: usize = 5;

/// One foreign key with orphans: the child table (source name), the source's foreign key, how
/// many rows and a few of their keys.
pub struct Found {
    pub table: String,
    pub fk: ForeignKey,
    pub count: u64,
    pub keys: Vec<String>,
}

impl Found {
    fn describe(&self) -> String {
        format!(
            "{} row(s) of \"{}\" have a {}({}) with no \"{}\" row (for example {})",
            self.count,
            self.table,
            self.table,
            self.fk.columns.join(", "),
            self.fk.ref_table,
            self.keys.join("; ")
        )
    }
}

/// Whether this run looks for orphans in the target after loading (see the module comment).
pub fn deferred(plan: &Plan, options: &CopyOptions, dialect: &dyn Dialect, erase: bool) -> bool {
    !options.dry_run
        && !options.strict
        && !erase
        && dialect.capabilities().foreign_keys_after_data
        && plan.tables.iter().all(|t| !t.existing)
}

/// The source's foreign keys that may have orphans: not enforced by the source, parent copied.
fn checked<'a>(schema: &'a Schema) -> impl Iterator<Item = (&'a str, &'a ForeignKey)> + 'a {
    schema.tables.iter().flat_map(move |t| {
        t.foreign_keys
            .iter()
            .filter(|fk| !fk.enforced && schema.table(&fk.ref_table).is_some())
            .map(move |fk| (t.name.as_str(), fk))
    })
}

/// Looks for orphans in the source, before anything is written; see [`settle`].
///
/// # Errors
/// A query's error; the refusal (exit 1) when orphans stop the run.
pub async fn in_source(
    source: &dyn Source,
    schema: &Schema,
    plan: &mut Plan,
    dialect: &dyn Dialect,
    options: &CopyOptions,
    cx: &Context,
) -> Result<()> {
    let mut found = Vec::new();
    for (name, fk) in checked(schema) {
        let Some(table) = schema.table(name) else {
            continue;
        };
        if let Some((count, keys)) = source.orphans(table, fk, SHOWN).await?
            && count > 0
        {
            found.push(Found {
                table: name.to_string(),
                fk: fk.clone(),
                count,
                keys,
            });
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    if !options.ignore_errors && !options.dry_run {
        return Err(refusal(&found, "before writing anything"));
    }
    leave_out(plan, &found, cx);
    plan.ddl = dialect.ddl(plan);
    Ok(())
}

/// Looks for orphans in the target, once its rows are loaded and keys built and before its
/// foreign keys are added: one anti-join per foreign key the source does not enforce, on the
/// target's own tables. Returns what was found (empty: nothing).
///
/// # Errors
/// A query's error.
pub async fn in_target(target: &dyn Target, plan: &Plan, cx: &Context) -> Result<Vec<Found>> {
    let dialect = target.dialect();
    let quote = |s: &str| dialect.quote(s);
    let mut found = Vec::new();
    let mut reader = None;
    for tp in &plan.tables {
        for fk in tp.source.foreign_keys.iter().filter(|fk| !fk.enforced) {
            let Some(parent) = plan.table(&fk.ref_table) else {
                continue;
            };
            let Some(planned) = planned_fk(tp, parent, fk) else {
                continue;
            };
            if cx.cancel.is_cancelled() {
                return Err(Error::cancelled());
            }
            // The same anti-join the sources run, spelled with the target's names.
            let child = crate::schema::Table {
                name: tp.target_name.clone(),
                primary_key: tp.primary_key.clone(),
                ..tp.source.clone()
            };
            let on = ForeignKey {
                columns: planned.columns.clone(),
                ref_table: planned.ref_table.clone(),
                ref_columns: planned.ref_columns.clone(),
                ..fk.clone()
            };
            let (count_sql, keys_sql) = crate::sqltext::ddl::orphans(quote, &child, &on, &[]);
            if reader.is_none() {
                reader = Some(target.as_source().await?);
            }
            let reader = reader.as_ref().expect("opened above");
            let count = reader
                .query_keys(&count_sql)
                .await?
                .into_iter()
                .flatten()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            if count == 0 {
                continue;
            }
            let keys = reader
                .query_keys(&format!("{keys_sql} LIMIT {SHOWN}"))
                .await?
                .into_iter()
                .flatten()
                .collect();
            found.push(Found {
                table: tp.source_name.clone(),
                fk: fk.clone(),
                count,
                keys,
            });
        }
    }
    Ok(found)
}

/// The plan's foreign key (target names) that stands for the source's `fk` of `table`.
fn planned_fk<'a>(
    table: &'a TablePlan,
    parent: &TablePlan,
    fk: &ForeignKey,
) -> Option<&'a ForeignKeyPlan> {
    let cols = target_columns(table, &fk.columns);
    table
        .foreign_keys
        .iter()
        .find(|p| p.ref_table == parent.target_name && p.columns == cols)
}

fn target_columns(table: &TablePlan, columns: &[String]) -> Vec<String> {
    columns
        .iter()
        .map(|c| {
            table
                .columns
                .iter()
                .find(|pc| &pc.source_name == c)
                .map_or_else(|| c.clone(), |pc| pc.target_name.clone())
        })
        .collect()
}

/// The error that stops a run with orphans (exit 1), `when` saying when they were found.
pub fn refusal(found: &[Found], when: &str) -> Error {
    let all: Vec<String> = found.iter().map(Found::describe).collect();
    Error::run(format!(
        "orphan rows found {when}: {}; rerun with --ignore-errors to copy them and leave those foreign keys out of the target",
        all.join("; ")
    ))
}

/// `--ignore-errors` (or a dry run): each foreign key with orphans is left out of the plan,
/// said in its warnings and among its objects not copied (one of the plan's changes, which
/// `--strict` refuses like any other). The caller regenerates the DDL.
pub fn leave_out(plan: &mut Plan, found: &[Found], cx: &Context) {
    for f in found {
        let note = format!(
            "{}: the foreign key is left out of the target",
            f.describe()
        );
        cx.observer.event(&Event::Warning(note.clone()));
        plan.warnings.push(note);
        plan.skipped.push(SkippedObject {
            kind: "foreign key".into(),
            name: format!(
                "{}({}) -> {}",
                f.table,
                f.fk.columns.join(", "),
                f.fk.ref_table
            ),
            reason: format!("{}; left out of the target (--ignore-errors)", f.describe()),
            ..Default::default()
        });
        let parent = plan
            .table(&f.fk.ref_table)
            .map(|p| p.target_name.clone())
            .unwrap_or_default();
        if let Some(tp) = plan.tables.iter_mut().find(|p| p.source_name == f.table) {
            let cols = target_columns(tp, &f.fk.columns);
            tp.foreign_keys
                .retain(|p| !(p.ref_table == parent && p.columns == cols));
        }
    }
}

/// The step between a run's keys and its foreign keys when orphans are looked for in the
/// target: returns the foreign key statements to run (the plan's, or, under
/// `--ignore-errors`, those without the foreign keys that have orphans, which the report
/// names).
///
/// # Errors
/// The refusal (exit 1) when orphans stop the run, after dropping the tables the run created
/// (the target is left as it was); a query's error.
pub async fn after_load(
    target: &dyn Target,
    plan: &Plan,
    options: &CopyOptions,
    cx: &Context,
    report: &mut crate::report::Report,
) -> Result<Vec<String>> {
    let with_fks = plan.tables.iter().any(|t| {
        t.source
            .foreign_keys
            .iter()
            .any(|fk| !fk.enforced && plan.table(&fk.ref_table).is_some())
    });
    if !with_fks {
        return Ok(plan.ddl.foreign_keys.clone());
    }
    cx.observer.event(&Event::Phase(
        "Looking for orphan rows (foreign key values with no parent row)".into(),
    ));
    let found = in_target(target, plan, cx).await?;
    if found.is_empty() {
        return Ok(plan.ddl.foreign_keys.clone());
    }
    if !options.ignore_errors {
        // With the run's own tables go the unfinished-tables marker and the ledger: a rerun
        // starts afresh instead of being asked to --resume a copy that was refused.
        let mut drop = plan.ddl.drop.clone();
        drop.push(format!(
            "DROP TABLE IF EXISTS {}",
            crate::engine::UNFINISHED
        ));
        drop.push(crate::ledger::drop_statement());
        let transactional = target.dialect().capabilities().transactional_ddl;
        target
            .execute(&crate::ledger::atomic(drop, transactional))
            .await?;
        return Err(refusal(
            &found,
            "after loading the rows (the tables this run created were dropped again, nothing is left in the target)",
        ));
    }
    let (without, warnings, not_copied) = left_out(plan, &found, cx);
    report.warnings.extend(warnings);
    report.not_copied.extend(not_copied);
    Ok(target.dialect().ddl(&without).foreign_keys)
}

/// [`leave_out`] on a copy of `plan`: the plan without those foreign keys, and what leaving
/// them out adds to a report (warnings, objects not copied).
pub fn left_out(
    plan: &Plan,
    found: &[Found],
    cx: &Context,
) -> (Plan, Vec<String>, Vec<SkippedObject>) {
    let mut without = plan.clone();
    let (warnings, skipped) = (without.warnings.len(), without.skipped.len());
    leave_out(&mut without, found, cx);
    let added = (
        without.warnings[warnings..].to_vec(),
        without.skipped[skipped..].to_vec(),
    );
    (without, added.0, added.1)
}
