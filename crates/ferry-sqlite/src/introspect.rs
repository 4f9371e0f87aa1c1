//! SQLite discovery: every table, column, declared type, NOT NULL, default, primary key,
//! unique constraint, index and foreign key, from SQLite's own pragmas; views, triggers,
//! virtual and shadow tables listed as not copied; and one profiling scan per table that
//! counts rows and what each column really holds.

use ferry_core::connector::SchemaOptions;
use ferry_core::locator::Backend;
use ferry_core::schema::{
    Column, DefaultValue, ForeignKey, Index, Paging, Schema, SkippedObject, Table,
};
use ferry_core::{Error, Result};
use rusqlite::Connection;

use crate::open::{quote, sql_err};
use crate::type_map::{self, Declared, Profile};

pub fn schema(conn: &Connection, options: &SchemaOptions) -> Result<Schema> {
    let mut tables = Vec::new();
    let mut skipped = Vec::new();
    let listed: Vec<(String, String, bool)> = conn
        .prepare("SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)))?
                .collect()
        })
        .map_err(sql_err)?;
    for (name, kind, without_rowid) in listed {
        if name.starts_with("sqlite_") {
            continue; // SQLite's own bookkeeping (sqlite_sequence is rebuilt by inserts).
        }
        match kind.as_str() {
            "table" if options.filter.matches(&name) => {
                tables.push(table(conn, &name, without_rowid, options.profile)?)
            }
            "table" => {}
            "view" => skipped.push(skip(
                "view",
                &name,
                "views are not copied; recreate it on the target",
            )),
            "virtual" => skipped.push(skip(
                "virtual table",
                &name,
                "virtual tables (FTS, R-tree, ...) belong to SQLite modules and are not copied",
            )),
            "shadow" => skipped.push(skip(
                "shadow table",
                &name,
                "storage of a virtual table, not copied",
            )),
            other => skipped.push(skip(other, &name, "not a plain table")),
        }
    }
    let triggers: Vec<(String, String)> = conn
        .prepare("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(sql_err)?;
    for (name, on) in triggers {
        skipped.push(skip(
            "trigger",
            &name,
            &format!("trigger on \"{on}\" is not copied; recreate it on the target"),
        ));
    }
    Ok(Schema {
        backend: Backend::Sqlite,
        tables,
        skipped,
    })
}

fn skip(kind: &str, name: &str, reason: &str) -> SkippedObject {
    SkippedObject {
        kind: kind.into(),
        name: name.into(),
        reason: reason.into(),
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

fn table(conn: &Connection, name: &str, without_rowid: bool, profile: bool) -> Result<Table> {
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

    let (row_count, profiles) = scan(conn, &q, &raw, &declared, profile)?;

    let columns = raw
        .iter()
        .zip(&declared)
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
                native_type: c.declared.clone(),
                collation: None,
                notes,
            }
        })
        .collect();

    let native_sql: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    let (uniques, indexes) = indexes(conn, &q)?;
    Ok(Table {
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
    })
}

/// One pass over the table: the row count and, when profiling, each column's profile.
fn scan(
    conn: &Connection,
    table: &str,
    raw: &[RawColumn],
    declared: &[Declared],
    profile: bool,
) -> Result<(u64, Vec<Profile>)> {
    if !profile {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(sql_err)?;
        return Ok((n as u64, raw.iter().map(|_| Profile::default()).collect()));
    }
    let mut exprs = vec!["count(*)".to_string()];
    for (c, d) in raw.iter().zip(declared) {
        let q = quote(&c.name);
        exprs.push(format!("sum(typeof({q})='integer')"));
        exprs.push(format!("sum(typeof({q})='real')"));
        exprs.push(format!("sum(typeof({q})='text')"));
        exprs.push(format!("sum(typeof({q})='blob')"));
        exprs.extend(type_map::profile_exprs(d, &q));
    }
    let sql = format!("SELECT {} FROM {table}", exprs.join(", "));
    conn.query_row(&sql, [], |r| {
        let get = |i: usize| -> rusqlite::Result<u64> {
            Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64)
        };
        let count = get(0)?;
        let mut profiles = Vec::with_capacity(raw.len());
        for i in 0..raw.len() {
            let b = 1 + i * 8;
            let max_chars = r.get::<_, Option<i64>>(b + 7)?.map(|n| n.max(0) as u64);
            profiles.push(Profile {
                ints: get(b)?,
                reals: get(b + 1)?,
                texts: get(b + 2)?,
                blobs: get(b + 3)?,
                bad: get(b + 4)?,
                with_offset: get(b + 5)?,
                with_time: get(b + 6)?,
                max_chars,
            });
        }
        Ok((count, profiles))
    })
    .map_err(|e| Error::run(format!("SQLite: cannot scan {table}: {e}")))
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
                },
            )),
        }
    }
    fks.sort_by_key(|(id, _)| -id);
    Ok(fks.into_iter().map(|(_, fk)| fk).collect())
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
        _ if t.len() >= 2 && t.starts_with('\'') && t.ends_with('\'') => {
            DefaultValue::StringLiteral(t[1..t.len() - 1].replace("''", "'"))
        }
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
