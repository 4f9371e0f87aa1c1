//! Proving a run before its first row: the deterministic DDL translations the planner applies
//! (index names scoped to their table, foreign key actions the target cannot express), the
//! proof of every DDL statement on the target where nothing real changes, the scan for values
//! that will not fit an existing target column, and the check of a migrate spec's rewrites.
//! Whatever would fail after rows were copied fails here instead: exit 2, nothing written.

use std::collections::HashMap;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connector::{Dialect, ReadRequest, Source, Target};
use crate::convert::convert;
use crate::engine::{Context, CopyOptions};
use crate::error::{Error, Result};
use crate::names;
use crate::plan::{Plan, TablePlan};
use crate::progress::Event;
use crate::schema::{DataType, Schema, Table};
use crate::value::Batch;

/// The name each source index gets in the target, in schema order (table by table, index by
/// index), before identifier fitting. Where the target shares one namespace between all
/// indexes and tables (PostgreSQL, SQLite) and the source reuses a name (MySQL scopes index
/// names to their table: Sakila has three `idx_fk_address_id`), every index carrying that
/// name becomes `<table>_<index>`, fitted to the identifier limit with a short hash when cut.
/// Names that collide with nothing are kept, so a copy between two databases of one backend
/// keeps its names. Each rename is named in `translations`.
pub fn scoped_index_names(
    schema: &Schema,
    dialect: &dyn Dialect,
    translations: &mut Vec<String>,
) -> Vec<String> {
    let fold = dialect.capabilities().folds_case;
    let key = |s: &str| {
        if fold {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    let mut uses: HashMap<String, usize> = HashMap::new();
    if !dialect.capabilities().index_names_per_table {
        let all = schema
            .tables
            .iter()
            .flat_map(|t| std::iter::once(&t.name).chain(t.indexes.iter().map(|i| &i.name)));
        for name in all {
            *uses.entry(key(name)).or_default() += 1;
        }
    }
    let mut out = Vec::new();
    for table in &schema.tables {
        for index in &table.indexes {
            if uses.get(&key(&index.name)).copied().unwrap_or(0) < 2 {
                out.push(index.name.clone());
                continue;
            }
            let scoped = names::fit_hashed(
                &format!("{}_{}", table.name, index.name),
                dialect.capabilities().max_identifier_bytes,
            );
            translations.push(format!(
                "index '{}' on '{}' is renamed '{scoped}': {} has one namespace for all index and table names, and the source uses '{}' more than once",
                index.name,
                table.name,
                dialect.backend(),
                index.name
            ));
            out.push(scoped);
        }
    }
    out
}

/// A foreign key action the target cannot express, replaced by the nearest one it can:
/// `SET NULL` on a `NOT NULL` column becomes `NO ACTION` for MySQL/MariaDB, which refuses the
/// definition (error 1825); PostgreSQL and SQLite accept it and keep it. Named in `translations`.
pub fn fk_action(
    action: Option<&String>,
    what: &str,
    table: &Table,
    columns: &[String],
    dialect: &dyn Dialect,
    translations: &mut Vec<String>,
) -> Option<String> {
    let action = action?;
    let not_null: Vec<&str> = columns
        .iter()
        .filter(|c| table.column(c).is_some_and(|col| !col.nullable))
        .map(String::as_str)
        .collect();
    if dialect.capabilities().set_null_needs_nullable
        && action.eq_ignore_ascii_case("SET NULL")
        && !not_null.is_empty()
    {
        translations.push(format!(
            "foreign key {}({}): ON {what} SET NULL on NOT NULL column {}, which {} refuses: created as ON {what} NO ACTION",
            table.name,
            columns.join(", "),
            not_null.join(", "),
            dialect.backend()
        ));
        return Some("NO ACTION".into());
    }
    Some(action.clone())
}

/// Everything a run proves after planning and before its first write (also in `--dry-run`,
/// whose proof writes nothing either): the DDL on the target, then, unless rejected rows go
/// to reject files (`--ignore-errors`), the values that would not fit their target column.
/// `erase`: the run drops the planned tables first (`--force`). Returns notes for the report.
///
/// # Errors
/// An input error (exit 2) naming every refused statement, or every column with values that
/// do not fit (a dry run lists those as warnings instead).
pub async fn check(
    source: &dyn Source,
    target: &dyn Target,
    plan: &Plan,
    erase: bool,
    options: &CopyOptions,
    cx: &Context,
) -> Result<Vec<String>> {
    cx.observer.event(&Event::Phase(
        "Proving the plan on the target (nothing is written)".into(),
    ));
    let mut notes = prove(target, plan, erase).await?;
    if options.ignore_errors {
        return Ok(notes);
    }
    let unfit = unfit_values(source, plan, options.batch_rows, &cx.cancel).await?;
    if unfit.is_empty() {
        return Ok(notes);
    }
    if options.dry_run {
        notes.extend(
            unfit
                .into_iter()
                .map(|p| format!("{p}: a real run refuses this without --ignore-errors")),
        );
        return Ok(notes);
    }
    Err(Error::input(format!(
        "values that do not fit the target, found before writing: {}; {UNFIT_ADVICE}",
        unfit.join("; ")
    )))
}

/// What a target cannot prove is said; what it refuses stops the run.
const PREFLIGHT_ADVICE: &str = "nothing was written; create these tables yourself and rerun with --schema existing, or leave the tables out with --exclude (and report the statement to ferry's maintainers)";

/// Runs every statement of the plan's DDL on the target where nothing real changes (see
/// `Target::preflight`). Returns notes for the report.
///
/// # Errors
/// An input error (exit 2, before writing) naming every statement the target refused.
pub async fn prove(target: &dyn Target, plan: &Plan, erase: bool) -> Result<Vec<String>> {
    let existing: Vec<String> = plan
        .tables
        .iter()
        .filter(|t| t.existing)
        .map(|t| t.target_name.clone())
        .collect();
    let proof = target.preflight(&plan.ddl, erase, &existing).await?;
    if proof.failures.is_empty() {
        return Ok(proof.notes);
    }
    let listed: Vec<String> = proof
        .failures
        .iter()
        .map(|(statement, error)| format!("`{}`: {error}", first_line(statement)))
        .collect();
    Err(Error::input(format!(
        "the target refuses {} statement{} of the plan (proved before writing): {}; {PREFLIGHT_ADVICE}",
        listed.len(),
        if listed.len() == 1 { "" } else { "s" },
        listed.join("; ")
    )))
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default().trim_end_matches('(');
    let line = line.trim_end();
    if line.len() > 120 {
        format!("{}...", &line[..line.floor_char_boundary(120)])
    } else {
        line.to_string()
    }
}

/// Whether some value of type `from` may not convert to `to`: a text limit shorter than the
/// source's, an integer type narrower than the source's. Only then are values scanned.
pub fn may_not_fit(from: &DataType, to: &DataType) -> bool {
    use DataType as T;
    let text_limit = |t: &DataType| match t {
        T::Text { max_chars } => *max_chars,
        T::Char { len } => Some(*len),
        _ => None,
    };
    match to {
        T::Text { max_chars: Some(n) } | T::Char { len: n } => {
            !matches!(from, T::Text { .. } | T::Char { .. })
                || text_limit(from).is_none_or(|m| m > *n)
        }
        T::Int16 => !matches!(from, T::Int16 | T::Bool),
        T::Int32 => !matches!(from, T::Int16 | T::Int32 | T::Bool),
        _ => false,
    }
}

/// Reads the tables whose values may not fit their target column (see [`may_not_fit`]; in
/// practice tables the application created with narrower columns) and converts each such
/// value as the copy will. Returns one line per column holding values that do not fit: how
/// many, and examples naming the row.
///
/// # Errors
/// When the source cannot be read.
pub async fn unfit_values(
    source: &dyn Source,
    plan: &Plan,
    batch_rows: usize,
    cancel: &CancellationToken,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for table in &plan.tables {
        let checked: Vec<(usize, &DataType)> = table
            .columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let to = c.convert_to.as_ref()?;
                may_not_fit(&table.source.columns.get(i)?.data_type, to).then_some((i, to))
            })
            .collect();
        if checked.is_empty() || table.row_count == 0 {
            continue;
        }
        problems.extend(scan_table(source, table, &checked, batch_rows, cancel).await?);
    }
    Ok(problems)
}

async fn scan_table(
    source: &dyn Source,
    table: &TablePlan,
    checked: &[(usize, &DataType)],
    batch_rows: usize,
    cancel: &CancellationToken,
) -> Result<Vec<String>> {
    // Per checked column: how many values do not fit, and the first few, with their reason.
    let mut found: Vec<(u64, Vec<String>)> = vec![(0, Vec::new()); checked.len()];
    each_row(source, table, batch_rows, cancel, |batch, row| {
        let values = batch.row(row);
        for (k, (i, to)) in checked.iter().enumerate() {
            if let Err(reason) = convert(values[*i].clone(), to) {
                found[k].0 += 1;
                if found[k].1.len() < 3 {
                    found[k]
                        .1
                        .push(format!("{}: {reason}", table.describe_row(batch, row)));
                }
            }
        }
    })
    .await?;
    Ok(checked
        .iter()
        .zip(found)
        .filter(|(_, (n, _))| *n > 0)
        .map(|((i, _), (n, examples))| {
            let c = &table.columns[*i];
            format!(
                "{}.{}: {n} value{} do not fit the target column {} (for example {})",
                table.source_name,
                c.source_name,
                if n == 1 { "" } else { "s" },
                c.native_type,
                examples.join("; ")
            )
        })
        .collect())
}

/// The value scan that can change the plan, run before its changes are announced (and refused
/// by `--strict`): text keys the target would compare as equal (see
/// [`Capabilities::pad_space_keys`](crate::Capabilities)), whose columns are then created with
/// the target's exact comparison and named as a translation, and, under `--strict` or
/// `--dry-run`, text times with digits beyond the target's microseconds, named as lossy before
/// the first row (a real run counts them as it copies). Only tables that need it are read.
///
/// # Errors
/// An input error (exit 2, nothing written) naming the colliding values when the target has
/// no exact comparison for them; or when the source cannot be read.
pub async fn scan_values(
    source: &dyn Source,
    plan: &mut Plan,
    dialect: &dyn Dialect,
    options: &CopyOptions,
    cx: &Context,
) -> Result<()> {
    let pads = dialect.capabilities().pad_space_keys && plan.source != plan.target;
    let rounding = options.strict || options.dry_run;
    let mut refused = Vec::new();
    let mut changed = false;
    let mut announced = false;
    for ti in 0..plan.tables.len() {
        let table = &plan.tables[ti];
        if table.row_count == 0 {
            continue;
        }
        let times: Vec<usize> = if rounding {
            table
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    matches!(
                        c.convert_to,
                        Some(DataType::Time | DataType::Timestamp | DataType::TimestampTz)
                    )
                })
                .map(|(i, _)| i)
                .collect()
        } else {
            Vec::new()
        };
        let keys = if pads && !table.existing {
            text_keys(table)
        } else {
            Vec::new()
        };
        if times.is_empty() && keys.is_empty() {
            continue;
        }
        if !announced {
            cx.observer.event(&Event::Phase(
                "Scanning key and time values (nothing is written)".into(),
            ));
            announced = true;
        }
        let found = scan_rows(source, table, &times, &keys, options.batch_rows, &cx.cancel).await?;
        let table = &mut plan.tables[ti];
        for (&i, (n, examples)) in times.iter().zip(found.rounded) {
            if n > 0 {
                table.columns[i].notes.push(format!(
                    "{n} value{} had sub-microsecond digits, rounded to microseconds (for example {})",
                    if n == 1 { "" } else { "s" },
                    examples.join("; ")
                ));
            }
        }
        for (key, (n, examples)) in keys.iter().zip(found.collisions) {
            if n == 0 {
                continue;
            }
            let texts: Vec<usize> = key
                .iter()
                .copied()
                .filter(|&i| is_text(&table.columns[i]))
                .collect();
            let exact: Option<Vec<String>> = texts
                .iter()
                .map(|&i| dialect.exact_text_type(&table.columns[i].native_type))
                .collect();
            let names: Vec<String> = key
                .iter()
                .map(|&i| table.columns[i].source_name.clone())
                .collect();
            let what = format!(
                "{}({}): {n} key value{} differ from another only by trailing spaces ({}), which {}'s default comparison ignores",
                table.source_name,
                names.join(", "),
                if n == 1 { "" } else { "s" },
                examples.join("; "),
                dialect.backend()
            );
            match exact {
                Some(types) => {
                    let mut spelled = Vec::new();
                    for (&i, ty) in texts.iter().zip(types) {
                        let c = &mut table.columns[i];
                        spelled.push(format!("{} {ty}", c.source_name));
                        c.native_type = ty;
                    }
                    plan.translations.push(format!(
                        "{what}: created as {} so every key stays distinct",
                        spelled.join(", ")
                    ));
                    changed = true;
                }
                None => refused.push(what),
            }
        }
    }
    if !refused.is_empty() {
        return Err(Error::input(format!(
            "key values the target would take for duplicates, found before writing: {}; nothing was written; make them distinct in the source, or leave those tables out with --exclude",
            refused.join("; ")
        )));
    }
    if changed {
        plan.ddl = dialect.ddl(plan);
    }
    Ok(())
}

fn is_text(c: &crate::plan::ColumnPlan) -> bool {
    matches!(
        c.convert_to.as_ref().unwrap_or(&c.data_type),
        DataType::Text { .. } | DataType::Char { .. }
    )
}

/// A table's unique keys (primary key, unique constraints, unique indexes) that hold text, as
/// indexes into its columns, each once.
fn text_keys(table: &TablePlan) -> Vec<Vec<usize>> {
    let position = |name: &String| table.columns.iter().position(|c| &c.target_name == name);
    let mut keys: Vec<Vec<usize>> = Vec::new();
    let declared = std::iter::once(&table.primary_key)
        .chain(&table.uniques)
        .chain(
            table
                .indexes
                .iter()
                .filter(|i| i.unique)
                .map(|i| &i.columns),
        );
    for cols in declared {
        let Some(key) = cols.iter().map(position).collect::<Option<Vec<usize>>>() else {
            continue;
        };
        if !key.is_empty()
            && key.iter().any(|&i| is_text(&table.columns[i]))
            && !keys.contains(&key)
        {
            keys.push(key);
        }
    }
    keys
}

/// Per time column: values rounded, with examples; per key: values colliding, with examples.
struct Found {
    rounded: Vec<(u64, Vec<String>)>,
    collisions: Vec<(u64, Vec<String>)>,
}

/// One key's values with trailing spaces trimmed → the values as they are, and their row.
type KeysSeen = HashMap<Vec<String>, (Vec<String>, String)>;

async fn scan_rows(
    source: &dyn Source,
    table: &TablePlan,
    times: &[usize],
    keys: &[Vec<usize>],
    batch_rows: usize,
    cancel: &CancellationToken,
) -> Result<Found> {
    use crate::value::Value;
    let mut found = Found {
        rounded: vec![(0, Vec::new()); times.len()],
        collisions: vec![(0, Vec::new()); keys.len()],
    };
    let mut seen: Vec<KeysSeen> = vec![HashMap::new(); keys.len()];
    each_row(source, table, batch_rows, cancel, |batch, row| {
        let values = batch.row(row);
        for (k, &i) in times.iter().enumerate() {
            let Some(to) = &table.columns[i].convert_to else {
                continue;
            };
            if let Ok((v, true)) = crate::convert::convert_noting_rounding(values[i].clone(), to) {
                found.rounded[k].0 += 1;
                if found.rounded[k].1.len() < 3 {
                    found.rounded[k].1.push(format!(
                        "{}: {} became {}",
                        table.describe_row(batch, row),
                        values[i].render(),
                        v.render()
                    ));
                }
            }
        }
        for (k, key) in keys.iter().enumerate() {
            // NULLs never collide in a unique key.
            if key.iter().any(|&i| values[i].is_null()) {
                continue;
            }
            let raw: Vec<String> = key.iter().map(|&i| values[i].render()).collect();
            let trimmed: Vec<String> = key
                .iter()
                .zip(&raw)
                .map(|(&i, r)| match &values[i] {
                    Value::Text(t) => t.trim_end_matches(' ').to_string(),
                    _ => r.clone(),
                })
                .collect();
            match seen[k].get(&trimmed) {
                Some((first, at)) if *first != raw => {
                    found.collisions[k].0 += 1;
                    if found.collisions[k].1.len() < 3 {
                        found.collisions[k].1.push(format!(
                            "{at}: {} and {}: {}",
                            first.join(", "),
                            table.describe_row(batch, row),
                            raw.join(", ")
                        ));
                    }
                }
                Some(_) => {}
                None => {
                    seen[k].insert(trimmed, (raw, table.describe_row(batch, row)));
                }
            }
        }
    })
    .await?;
    Ok(found)
}

/// Reads every row of a planned table from the source, giving `each` its batch and its index
/// in the batch.
async fn each_row(
    source: &dyn Source,
    table: &TablePlan,
    batch_rows: usize,
    cancel: &CancellationToken,
    mut each: impl FnMut(&Batch, usize),
) -> Result<()> {
    let (tx, mut rx) = mpsc::channel::<Batch>(2);
    let read = source.read(ReadRequest::new(
        &table.source,
        batch_rows,
        tx,
        cancel.clone(),
    ));
    let consume = async {
        while let Some(batch) = rx.recv().await {
            for row in 0..batch.len() {
                each(&batch, row);
            }
        }
    };
    let (read, ()) = tokio::join!(read, consume);
    read
}

/// The advice that ends a refusal for values that do not fit.
pub const UNFIT_ADVICE: &str = "nothing was written; widen the target columns, or rerun with --ignore-errors to copy the other rows and list these in reject files";

/// Checks that every `(table, column)` a migrate spec's `[[rewrite]]` rules update is copied:
/// a rule naming something else would fail after every row was copied.
///
/// # Errors
/// An input error (exit 2, before writing) naming every rule's missing table or column.
pub fn check_rewrites(schema: &Schema, rules: &[(String, String)]) -> Result<()> {
    let missing: Vec<String> = rules
        .iter()
        .filter_map(|(t, c)| match schema.table(t) {
            None => Some(format!(
                "table \"{t}\" is not copied (no such source table)"
            )),
            Some(table) if table.column(c).is_none() => {
                Some(format!("table \"{t}\" has no column \"{c}\""))
            }
            Some(_) => None,
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::input(format!(
        "[[rewrite]] names what the copy does not create: {}; fix the spec's table and column names (nothing was written)",
        missing.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_narrowing_conversions_are_scanned() {
        let text = |n| DataType::Text { max_chars: n };
        assert!(may_not_fit(&text(None), &text(Some(10))));
        assert!(may_not_fit(&text(Some(20)), &text(Some(10))));
        assert!(!may_not_fit(&text(Some(10)), &text(Some(10))));
        assert!(!may_not_fit(&text(None), &text(None)));
        assert!(may_not_fit(&DataType::Int64, &DataType::Int32));
        assert!(!may_not_fit(&DataType::Int32, &DataType::Int64));
        assert!(may_not_fit(&DataType::Int32, &DataType::Int16));
    }
}
