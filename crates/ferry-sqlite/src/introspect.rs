//! SQLite discovery: every table, column, declared type, NOT NULL, default, primary key,
//! unique constraint, index and foreign key, from SQLite's own pragmas; views, triggers and
//! virtual tables as objects another SQLite file recreates (`objects.rs`); and one profiling
//! scan per table that counts rows and what each column really holds.

use crate::locator::BACKEND;
use ferry_core::connector::SchemaOptions;
use ferry_core::schema::{
    Column, DefaultValue, ForeignKey, Index, Paging, Schema, SkippedObject, Table,
};
use ferry_core::{Error, Result};

use rusqlite::Connection;

use crate::objects;
use crate::open::{quote, sql_err};
use crate::snapshot::Snapshot;
use crate::type_map::{self, Declared, Profile};

pub fn schema(conn: &Connection, pool: &Snapshot, options: &SchemaOptions) -> Result<Schema> {
    let mut tables = Vec::new();
    let mut skipped = Vec::new();
    let mut objects = Vec::new();
    let mut filtered_out = Vec::new();
    let mut unique_keys: Vec<(String, Vec<String>)> = Vec::new();
    let listed: Vec<(String, String, bool)> = conn
        .prepare("SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)))?
                .collect()
        })
        .map_err(sql_err)?;
    // In creation order, so that a view or trigger comes after what it reads.
    let master: Vec<(String, String, String, String)> = conn
        .prepare(
            "SELECT type, name, tbl_name, sql FROM sqlite_master \
             WHERE type IN ('table', 'view', 'trigger') AND sql IS NOT NULL ORDER BY rowid",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .map_err(sql_err)?;
    let virtual_sql = |name: &str| {
        master
            .iter()
            .find(|(t, n, _, sql)| t == "table" && n == name && objects::module(sql).is_some())
            .map(|(_, _, _, sql)| sql.as_str())
    };
    // A virtual table's storage, even where SQLite does not mark it as shadow.
    let shadows: std::collections::HashSet<String> = master
        .iter()
        .filter_map(|(_, n, _, sql)| objects::module(sql).map(|m| objects::shadow_names(n, &m)))
        .flatten()
        .collect();
    for (name, kind, without_rowid) in listed {
        if name.starts_with("sqlite_") {
            continue; // SQLite's own bookkeeping (sqlite_sequence is rebuilt by inserts).
        }
        match kind.as_str() {
            "shadow" => skipped.push(skip(
                "shadow table",
                &name,
                "storage of a virtual table, which is recreated from its module instead",
            )),
            "table" if shadows.contains(&name) => skipped.push(skip(
                "shadow table",
                &name,
                "storage of a virtual table, which is recreated from its module instead",
            )),
            "table" if options.filter.matches(&name) => {
                let (t, key_as_unique) = table(conn, pool, &name, without_rowid, options)?;
                if let Some(key) = key_as_unique {
                    unique_keys.push((name.clone(), key));
                }
                tables.push(t)
            }
            "table" => filtered_out.push(name),
            "view" => {} // Below, in creation order.
            "virtual" => match objects::virtual_table(&name, virtual_sql(&name).unwrap_or("")) {
                objects::Virtual::WithRows(o) => {
                    if options.filter.matches(&name) {
                        tables.push(table(conn, pool, &name, false, options)?.0);
                    } else {
                        filtered_out.push(name);
                    }
                    objects.push(o);
                }
                objects::Virtual::Rebuilt(_) => {} // Below, in creation order.
                objects::Virtual::NotCopied(s) => skipped.push(s),
            },
            other => skipped.push(skip(other, &name, "not a plain table")),
        }
    }
    for (kind, name, on, sql) in &master {
        match kind.as_str() {
            "view" => objects.push(objects::plain("view", name, None, sql)),
            "trigger" => objects.push(objects::plain("trigger", name, Some(on), sql)),
            _ => {
                if let objects::Virtual::Rebuilt(o) = objects::virtual_table(name, sql) {
                    objects.push(o);
                }
            }
        }
    }
    // A foreign key naming no columns references its parent's primary key: spell those out
    // where the parent's key became UNIQUE (see `table`).
    for fk in tables.iter_mut().flat_map(|t| t.foreign_keys.iter_mut()) {
        if fk.ref_columns.is_empty()
            && let Some((_, key)) = unique_keys.iter().find(|(n, _)| *n == fk.ref_table)
        {
            fk.ref_columns = key.clone();
        }
    }
    Ok(Schema::new(BACKEND, tables, filtered_out, skipped, objects))
}

fn skip(kind: &str, name: &str, reason: &str) -> SkippedObject {
    SkippedObject {
        kind: kind.into(),
        name: name.into(),
        reason: reason.into(),
        ..Default::default()
    }
}

pub fn tables_with_counts(conn: &Connection) -> Result<Vec<(String, u64)>> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(sql_err)?;
    names
        .into_iter()
        .map(|n| {
            let count: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {}", quote(&n)), [], |r| {
                    r.get(0)
                })
                .map_err(sql_err)?;
            Ok((n, count as u64))
        })
        .collect()
}

struct RawColumn {
    name: String,
    declared: String,
    not_null: bool,
    default: Option<String>,
    pk: i64,
    hidden: i64,
}

fn table(
    conn: &Connection,
    pool: &Snapshot,
    name: &str,
    without_rowid: bool,
    options: &SchemaOptions,
) -> Result<(Table, Option<Vec<String>>)> {
    let profile = options.profile;
    let q = quote(name);
    let raw: Vec<RawColumn> = conn
        .prepare(&format!("PRAGMA table_xinfo({q})"))
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok(RawColumn {
                    name: r.get(1)?,
                    declared: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    not_null: r.get::<_, i64>(3)? != 0,
                    default: r.get(4)?,
                    pk: r.get(5)?,
                    hidden: r.get(6)?,
                })
            })?
            .collect()
        })
        .map_err(sql_err)?;
    let raw: Vec<RawColumn> = raw.into_iter().filter(|c| c.hidden != 1).collect();
    let mut pk: Vec<&RawColumn> = raw.iter().filter(|c| c.pk > 0).collect();
    pk.sort_by_key(|c| c.pk);
    let primary_key: Vec<String> = pk.iter().map(|c| c.name.clone()).collect();
    // INTEGER PRIMARY KEY (exactly that spelling) is the rowid: SQLite assigns it on insert.
    let rowid_alias =
        !without_rowid && pk.len() == 1 && pk[0].declared.eq_ignore_ascii_case("integer");
    let declared: Vec<Declared> = raw
        .iter()
        .map(|c| type_map::classify(&c.declared))
        .collect();

    let row_count: i64 = conn
        .query_row(&format!("SELECT count(*) FROM {q}"), [], |r| r.get(0))
        .map_err(sql_err)?;
    let row_count = row_count as u64;
    let locator_range: Option<(i64, i64)> = if without_rowid || row_count == 0 {
        None
    } else {
        conn.query_row(
            // Two subqueries: SQLite answers a lone min() or max() from the b-tree's ends,
            // but both in one SELECT scan the whole table (2.9 s for TPC-H's lineitem).
            &format!("SELECT (SELECT min(rowid) FROM {q}), (SELECT max(rowid) FROM {q})"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sql_err)
        .map(Some)?
    };
    let alias_index = raw.iter().position(|c| rowid_alias && c.pk == 1);
    let scan_with = |sample: Option<&[(i64, i64)]>| {
        scan(
            conn,
            pool,
            &q,
            &raw,
            &declared,
            alias_index,
            locator_range,
            row_count,
            profile,
            sample,
        )
    };
    // Read once: a large table's types come from a sample when the sample finds what the
    // declarations say (no column with a note, none declared without a type); the copy then
    // checks every value against them (`ferry_core::widen`). Anything else is profiled in full.
    let slices = sample_slices(locator_range, row_count)
        .filter(|_| profile && options.sample && !declared.contains(&Declared::Any));
    let mut sampled = false;
    let mut columns = Vec::new();
    if let Some(slices) = &slices {
        columns = decide_columns(&raw, &declared, scan_with(Some(slices))?, rowid_alias);
        sampled = columns.iter().all(|c| c.notes.is_empty());
    }
    if !sampled {
        columns = decide_columns(&raw, &declared, scan_with(None)?, rowid_alias);
    }

    let native_sql: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    let (mut uniques, indexes) = indexes(conn, &q)?;
    let mut primary_key = primary_key;
    let mut key_as_unique = None;
    // Outside INTEGER PRIMARY KEY and WITHOUT ROWID, SQLite lets a key column hold NULLs,
    // which no other database's PRIMARY KEY takes: the key is created as UNIQUE instead.
    if profile && !rowid_alias && !without_rowid && row_count > 0 && pk.iter().any(|c| !c.not_null)
    {
        let any_null = primary_key
            .iter()
            .map(|c| format!("{} IS NULL", quote(c)))
            .collect::<Vec<_>>()
            .join(" OR ");
        let nulls: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {q} WHERE {any_null}"),
                [],
                |r| r.get(0),
            )
            .map_err(sql_err)?;
        if nulls > 0 {
            for c in columns.iter_mut().filter(|c| primary_key.contains(&c.name)) {
                c.notes.push(format!(
                    "PRIMARY KEY ({}) holds NULLs in {nulls} row{} (SQLite allows it): created as UNIQUE, not PRIMARY KEY",
                    primary_key.join(", "),
                    if nulls == 1 { "" } else { "s" }
                ));
            }
            key_as_unique = Some(std::mem::take(&mut primary_key));
            uniques.extend(key_as_unique.clone());
        }
    }
    let table = Table {
        name: name.to_string(),
        columns,
        primary_key,
        uniques,
        indexes,
        foreign_keys: foreign_keys(conn, &q)?,
        row_count,
        native_sql,
        paging: if without_rowid {
            Paging::PrimaryKey
        } else {
            Paging::RowLocator
        },
        locator_range,
        sampled,
    };
    Ok((table, key_as_unique))
}

/// Tables with fewer rows are profiled in full (it costs less than a second pass would).
const SAMPLE_MIN_ROWS: u64 = 50_000;
/// The sample: this many slices of consecutive rowids, spread evenly over the table.
const SAMPLE_SLICES: i64 = 16;
const SAMPLE_SLICE_ROWS: i64 = 1_000;

/// The rowid slices a large table's sample reads; `None` when it is profiled in full.
fn sample_slices(range: Option<(i64, i64)>, rows: u64) -> Option<Vec<(i64, i64)>> {
    let (lo, hi) = range?;
    if rows < SAMPLE_MIN_ROWS {
        return None;
    }
    let span = hi as i128 - lo as i128 + 1;
    let step = span / SAMPLE_SLICES as i128;
    // Sparse rowids would leave the slices nearly empty: a sample that shows nothing.
    if step <= SAMPLE_SLICE_ROWS as i128 || (rows as i128) * 2 < span {
        return None;
    }
    Some(
        (0..SAMPLE_SLICES as i128)
            .map(|k| {
                let start = lo as i128 + k * step;
                (start as i64, (start + SAMPLE_SLICE_ROWS as i128 - 1) as i64)
            })
            .collect(),
    )
}

/// Each column with the portable type its profile decides, and the notes for each step away
/// from its declaration.
fn decide_columns(
    raw: &[RawColumn],
    declared: &[Declared],
    profiles: Vec<Profile>,
    rowid_alias: bool,
) -> Vec<Column> {
    raw.iter()
        .zip(declared)
        .zip(profiles)
        .map(|((c, d), p)| {
            let (data_type, notes) = type_map::decide(
                d,
                &p,
                if c.declared.is_empty() {
                    "without a type"
                } else {
                    &c.declared
                },
            );
            let is_alias = rowid_alias && c.pk == 1;
            Column {
                name: c.name.clone(),
                data_type,
                nullable: !(c.not_null || is_alias),
                default: c.default.as_deref().map(classify_default),
                auto_increment: is_alias,
                generated: c.hidden == 2 || c.hidden == 3,
                generation: None,
                native_type: c.declared.clone(),
                collation: None,
                notes,
            }
        })
        .collect()
}

/// How per-range partial results of one aggregate combine.
#[derive(Clone, Copy)]
enum Combine {
    Sum,
    Max,
}

/// Aggregates for one scan, run over the whole table or over rowid ranges in parallel.
#[derive(Default)]
struct Aggregates {
    exprs: Vec<(String, Combine)>,
}

impl Aggregates {
    fn push(&mut self, expr: String, combine: Combine) -> usize {
        self.exprs.push((expr, combine));
        self.exprs.len() - 1
    }

    /// The aggregates' one row for the rows `filter` selects (`""`: all), on `conn`.
    fn row(&self, conn: &Connection, table: &str, filter: &str) -> Result<Vec<i64>> {
        let select = self
            .exprs
            .iter()
            .map(|(e, _)| e.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        conn.query_row(&format!("SELECT {select} FROM {table}{filter}"), [], |r| {
            (0..self.exprs.len())
                .map(|i| Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0)))
                .collect()
        })
        .map_err(|e| Error::run(format!("SQLite: cannot scan {table}: {e}")))
    }

    /// Runs the aggregates once over the rows of a few rowid slices (a sample), on `conn`.
    fn run_slices(
        &self,
        conn: &Connection,
        table: &str,
        slices: &[(i64, i64)],
    ) -> Result<Vec<i64>> {
        let within = slices
            .iter()
            .map(|(lo, hi)| format!("rowid BETWEEN {lo} AND {hi}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        self.row(conn, table, &format!(" WHERE {within}"))
    }

    /// Runs the aggregates; with several rowid ranges, one thread and connection of the
    /// snapshot per range (the profiling scan is ferry's own CPU work, so it uses every core),
    /// or the ranges in turn on `conn` when the snapshot has only that one connection.
    fn run(
        &self,
        conn: &Connection,
        pool: &Snapshot,
        table: &str,
        ranges: &[(i64, i64)],
    ) -> Result<Vec<i64>> {
        let query = |conn: &Connection, range: Option<(i64, i64)>| match range {
            Some((lo, hi)) => self.row(conn, table, &format!(" WHERE rowid BETWEEN {lo} AND {hi}")),
            None => self.row(conn, table, ""),
        };
        let parts: Vec<Vec<i64>> = if ranges.len() <= 1 {
            vec![query(conn, ranges.first().copied())?]
        } else if !pool.parallel() {
            ranges
                .iter()
                .map(|&range| query(conn, Some(range)))
                .collect::<Result<Vec<_>>>()?
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = ranges
                    .iter()
                    .map(|&range| scope.spawn(move || query(&*pool.checkout()?, Some(range))))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(Error::run("SQLite scan thread panicked")))
                    })
                    .collect::<Result<Vec<_>>>()
            })?
        };
        let mut out = vec![0i64; self.exprs.len()];
        for part in parts {
            for (i, v) in part.into_iter().enumerate() {
                out[i] = match self.exprs[i].1 {
                    Combine::Sum => out[i] + v,
                    Combine::Max => out[i].max(v),
                };
            }
        }
        Ok(out)
    }
}

/// Splits a rowid range for parallel scans of large tables.
pub fn split_range(range: Option<(i64, i64)>, rows: u64, n: usize) -> Vec<(i64, i64)> {
    let Some(range) = range else { return vec![] };
    ferry_core::engine::split_range(range, if rows < 200_000 { 1 } else { n })
}

/// The row count and, when profiling, each column's profile. Columns are first checked
/// against the one storage class their declaration expects (two cheap aggregates); only
/// columns holding something else get the full per-class count, in a second pass.
#[allow(clippy::too_many_arguments)]
fn scan(
    conn: &Connection,
    pool: &Snapshot,
    table: &str,
    raw: &[RawColumn],
    declared: &[Declared],
    rowid_alias: Option<usize>,
    range: Option<(i64, i64)>,
    rows: u64,
    profile: bool,
    sample: Option<&[(i64, i64)]>,
) -> Result<Vec<Profile>> {
    let mut profiles: Vec<Profile> = raw.iter().map(|_| Profile::default()).collect();
    if !profile || rows == 0 {
        return Ok(profiles);
    }
    let ranges = split_range(
        range,
        rows,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let run = |aggs: &Aggregates| match sample {
        Some(slices) => aggs.run_slices(conn, table, slices),
        None => aggs.run(conn, pool, table, &ranges),
    };
    let mut aggs = Aggregates::default();
    // A sample counts its own rows: NOT NULL columns compare their matches with them.
    let counted = sample.map(|_| aggs.push("count(*)".into(), Combine::Sum));
    let mut expected = Vec::new();
    let mut specials = Vec::new();
    // Columns whose declaration expects no one storage class (decimals, UUIDs) get their
    // per-class counts in this same pass, instead of a second pass over the table.
    let mut classes: Vec<Option<usize>> = Vec::new();
    for (i, (c, d)) in raw.iter().zip(declared).enumerate() {
        let q = quote(&c.name);
        if Some(i) == rowid_alias {
            expected.push(None);
            specials.push([None; 4]);
            classes.push(None);
            continue;
        }
        let class = type_map::expected_class(d);
        classes.push(class.is_none().then(|| {
            let first = aggs.exprs.len();
            for cls in ["integer", "real", "text", "blob"] {
                aggs.push(format!("sum(typeof({q})='{cls}')"), Combine::Sum);
            }
            first
        }));
        expected.push(class.map(|cls| {
            let matched = aggs.push(format!("sum(typeof({q})='{cls}')"), Combine::Sum);
            let non_null = (!c.not_null).then(|| aggs.push(format!("count({q})"), Combine::Sum));
            (cls, matched, non_null)
        }));
        let special = type_map::profile_exprs(d, &q).map(|e| {
            (e != "0").then(|| {
                aggs.push(
                    e.clone(),
                    if e.starts_with("max(") {
                        Combine::Max
                    } else {
                        Combine::Sum
                    },
                )
            })
        });
        specials.push(special);
    }
    let mut impure = Vec::new();
    let got = if aggs.exprs.is_empty() {
        Vec::new()
    } else {
        run(&aggs)?
    };
    let rows = counted.map_or(rows, |k| got[k].max(0) as u64);
    if let Some(i) = rowid_alias {
        profiles[i].ints = rows; // A rowid alias holds only integers.
    }
    for (i, e) in expected.iter().enumerate() {
        let at = |k: Option<usize>| k.map_or(0, |k| got[k].max(0) as u64);
        let p = &mut profiles[i];
        p.bad = at(specials[i][0]);
        p.with_offset = at(specials[i][1]);
        p.with_time = at(specials[i][2]);
        p.max_chars = specials[i][3].map(|k| got[k].max(0) as u64);
        match e {
            Some((cls, matched, non_null)) => {
                let non_null = non_null.map_or(rows, |k| got[k].max(0) as u64);
                let matched = got[*matched].max(0) as u64;
                if matched == non_null {
                    p.set_class(cls, matched);
                } else {
                    impure.push(i);
                }
            }
            None if Some(i) == rowid_alias => {}
            None => match classes[i] {
                Some(k) => {
                    p.ints = got[k].max(0) as u64;
                    p.reals = got[k + 1].max(0) as u64;
                    p.texts = got[k + 2].max(0) as u64;
                    p.blobs = got[k + 3].max(0) as u64;
                }
                None => impure.push(i),
            },
        }
    }
    if !impure.is_empty() {
        let mut full = Aggregates::default();
        for &i in &impure {
            let q = quote(&raw[i].name);
            for cls in ["integer", "real", "text", "blob"] {
                full.push(format!("sum(typeof({q})='{cls}')"), Combine::Sum);
            }
        }
        let got = run(&full)?;
        for (k, &i) in impure.iter().enumerate() {
            let p = &mut profiles[i];
            p.ints = got[k * 4] as u64;
            p.reals = got[k * 4 + 1] as u64;
            p.texts = got[k * 4 + 2] as u64;
            p.blobs = got[k * 4 + 3] as u64;
        }
    }
    Ok(profiles)
}

fn indexes(conn: &Connection, table: &str) -> Result<(Vec<Vec<String>>, Vec<Index>)> {
    let list: Vec<(String, bool, String, bool)> = conn
        .prepare(&format!("PRAGMA index_list({table})"))
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((
                    r.get(1)?,
                    r.get::<_, i64>(2)? != 0,
                    r.get(3)?,
                    r.get::<_, i64>(4)? != 0,
                ))
            })?
            .collect()
        })
        .map_err(sql_err)?;
    let mut uniques = Vec::new();
    let mut out = Vec::new();
    for (name, unique, origin, partial) in list.into_iter().rev() {
        let cols: Vec<Option<String>> = conn
            .prepare(&format!("PRAGMA index_info({})", quote(&name)))
            .and_then(|mut s| s.query_map([], |r| r.get(2))?.collect())
            .map_err(sql_err)?;
        let has_expr = cols.iter().any(Option::is_none);
        let columns: Vec<String> = cols.into_iter().flatten().collect();
        match origin.as_str() {
            "pk" => {}
            "u" if !has_expr => uniques.push(columns),
            _ => {
                let native_sql: Option<String> = conn
                    .query_row(
                        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
                        [&name],
                        |r| r.get(0),
                    )
                    .map_err(sql_err)?;
                out.push(Index {
                    name,
                    columns,
                    unique,
                    native_sql,
                    portable: !has_expr && !partial,
                });
            }
        }
    }
    Ok((uniques, out))
}

fn foreign_keys(conn: &Connection, table: &str) -> Result<Vec<ForeignKey>> {
    type Row = (i64, String, String, Option<String>, String, String);
    let rows: Vec<Row> = conn
        .prepare(&format!("PRAGMA foreign_key_list({table})"))
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect()
        })
        .map_err(sql_err)?;
    let mut fks: Vec<(i64, ForeignKey)> = Vec::new();
    for (id, parent, from, to, on_update, on_delete) in rows {
        let action = |a: String| {
            if a.eq_ignore_ascii_case("NO ACTION") {
                None
            } else {
                Some(a)
            }
        };
        match fks.iter_mut().find(|(i, _)| *i == id) {
            Some((_, fk)) => {
                fk.columns.push(from);
                fk.ref_columns.extend(to);
            }
            None => fks.push((
                id,
                ForeignKey {
                    columns: vec![from],
                    ref_table: parent,
                    ref_columns: to.into_iter().collect(),
                    on_delete: action(on_delete),
                    on_update: action(on_update),
                    enforced: false,
                },
            )),
        }
    }
    fks.sort_by_key(|(id, _)| -id);
    Ok(fks.into_iter().map(|(_, fk)| fk).collect())
}

/// Rows whose foreign key values are all set but match no parent row (SQLite enforces foreign
/// keys only when an application turns them on, so real files have these).
pub fn orphans(
    conn: &Connection,
    table: &Table,
    fk: &ForeignKey,
    limit: usize,
) -> Result<(u64, Vec<String>)> {
    let parent_cols: Vec<String> = if fk.ref_columns.is_empty() {
        let pk: Vec<String> = conn
            .prepare(&format!(
                "SELECT name FROM pragma_table_info({}) WHERE pk > 0 ORDER BY pk",
                quote_literal(&fk.ref_table)
            ))
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sql_err)?;
        if pk.is_empty() {
            vec!["rowid".into()]
        } else {
            pk
        }
    } else {
        fk.ref_columns.clone()
    };
    let keys: Vec<String> = if table.primary_key.is_empty() {
        vec!["rowid".into()]
    } else {
        table.primary_key.clone()
    };
    let shown: Vec<String> = keys
        .iter()
        .map(|k| format!("'{}=' || quote(c.{})", k.replace('\'', "''"), quote(k)))
        .collect();
    let from = ferry_core::sqltext::ddl::orphans_from(
        quote,
        &table.name,
        &fk.columns,
        &fk.ref_table,
        &parent_cols,
    );
    let count: i64 = conn
        .query_row(&format!("SELECT count(*) {from}"), [], |r| r.get(0))
        .map_err(sql_err)?;
    if count == 0 {
        return Ok((0, Vec::new()));
    }
    let sample: Vec<String> = conn
        .prepare(&format!(
            "SELECT {} {from} LIMIT {limit}",
            shown.join(" || ', ' || ")
        ))
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(sql_err)?;
    Ok((count as u64, sample))
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The text of `t` when all of it is one literal quoted with `q` (doubled inside), so that
/// `'a' || 'b'` stays an expression.
fn quoted(t: &str, q: char) -> Option<String> {
    let inner = t.strip_prefix(q)?.strip_suffix(q)?;
    let doubled: String = [q, q].iter().collect();
    let single = q.to_string();
    // A lone quote inside would end the literal early: then it is not one literal.
    (!inner.replace(&doubled, "").contains(q)).then(|| inner.replace(&doubled, &single))
}

/// Classifies a default as SQLite wrote it in `PRAGMA table_info`.
pub fn classify_default(text: &str) -> DefaultValue {
    let mut t = text.trim();
    while t.starts_with('(') && t.ends_with(')') {
        t = t[1..t.len() - 1].trim();
    }
    let lower: String = t
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let lower = lower.replace('"', "'");
    // A DEFAULT cannot name a column, so SQLite reads a double-quoted word there as a string
    // literal: gorm and other Go ORMs write `DEFAULT "pending"` and `DEFAULT ""`.
    if let Some(text) = quoted(t, '\'').or_else(|| quoted(t, '"')) {
        return DefaultValue::StringLiteral(text);
    }
    match lower.as_str() {
        "null" => DefaultValue::Null,
        "current_timestamp" | "datetime('now')" | "datetime('now','utc')" => {
            DefaultValue::CurrentTimestamp
        }
        "current_date" | "date('now')" => DefaultValue::CurrentDate,
        "current_time" | "time('now')" => DefaultValue::CurrentTime,
        "strftime('%s','now')" | "unixepoch()" | "unixepoch('now')" => DefaultValue::UnixEpochNow,
        "strftime('%y-%m-%d%h:%m:%f','now')" | "strftime('%y-%m-%dt%h:%m:%f','now')" => {
            DefaultValue::CurrentTimestamp
        }
        "true" => DefaultValue::Literal("1".into()),
        "false" => DefaultValue::Literal("0".into()),
        _ if ferry_core::convert::normalize_decimal(t.trim_start_matches('+')).is_some() => {
            DefaultValue::Literal(t.trim_start_matches('+').to_string())
        }
        _ => DefaultValue::Expression(t.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        assert_eq!(
            classify_default("CURRENT_TIMESTAMP"),
            DefaultValue::CurrentTimestamp
        );
        assert_eq!(
            classify_default("(datetime('now'))"),
            DefaultValue::CurrentTimestamp
        );
        assert_eq!(
            classify_default("datetime( 'now' )"),
            DefaultValue::CurrentTimestamp
        );
        assert_eq!(
            classify_default("strftime('%s','now')"),
            DefaultValue::UnixEpochNow
        );
        assert_eq!(
            classify_default("'it''s'"),
            DefaultValue::StringLiteral("it's".into())
        );
        assert_eq!(
            classify_default("-1.5"),
            DefaultValue::Literal("-1.5".into())
        );
        assert_eq!(classify_default("NULL"), DefaultValue::Null);
        assert_eq!(
            classify_default("\"pending\""),
            DefaultValue::StringLiteral("pending".into())
        );
        assert_eq!(
            classify_default("\"\""),
            DefaultValue::StringLiteral(String::new())
        );
        assert_eq!(
            classify_default("\"say \"\"hi\"\"\""),
            DefaultValue::StringLiteral("say \"hi\"".into())
        );
        assert!(matches!(
            classify_default("'a' || 'b'"),
            DefaultValue::Expression(_)
        ));
        assert!(matches!(
            classify_default("strftime('%Y','now','localtime')"),
            DefaultValue::Expression(_)
        ));
        assert!(matches!(
            classify_default("(random())"),
            DefaultValue::Expression(_)
        ));
    }
}

#[cfg(test)]
mod scan_tests {
    use super::*;
    use ferry_core::schema::DataType;

    /// Large tables are profiled in parallel rowid ranges; a value in any range must count.
    #[test]
    fn parallel_profile_sees_every_range() {
        let (_dir, path, conn) = crate::test_file(
            "big.db",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, r REAL, d DECIMAL, flag BOOLEAN NOT NULL);
             WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 250000)
             INSERT INTO t SELECT i, i, i / 2.0, CASE WHEN i = 249999 THEN 0.5 ELSE i END, i % 2 FROM s;
             UPDATE t SET n = 'late text' WHERE id = 249000;",
        );
        drop(conn);
        assert!(split_range(Some((1, 250_000)), 250_000, 2).len() == 2);
        let pool = Snapshot::open(&path, Default::default(), false).unwrap();
        let conn = pool.checkout().unwrap();
        let schema = super::schema(
            &conn,
            &pool,
            &SchemaOptions {
                profile: true,
                ..Default::default()
            },
        )
        .unwrap();
        let t = &schema.tables[0];
        assert_eq!(t.row_count, 250_000);
        let ty = |name: &str| t.column(name).unwrap().data_type.clone();
        assert_eq!(
            ty("n"),
            DataType::text(),
            "one text value in the last range widens the column"
        );
        assert_eq!(ty("r"), DataType::Float64);
        assert_eq!(
            ty("d"),
            DataType::Decimal {
                precision: None,
                scale: None
            }
        );
        assert_eq!(ty("flag"), DataType::Bool);
        assert_eq!(ty("id"), DataType::Int64);
    }
}
