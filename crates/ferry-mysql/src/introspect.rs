//! MySQL/MariaDB discovery from `information_schema`: tables of the connection's database with
//! exact row counts, columns, defaults, keys, indexes and foreign keys; views and triggers as
//! objects another MySQL/MariaDB database recreates (`objects.rs`).

use std::collections::BTreeMap;

use crate::locator::BACKEND;
use ferry_core::Result;
use ferry_core::filter::TableFilter;
use ferry_core::schema::{Column, DefaultValue, ForeignKey, Index, Paging, Schema, Table};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use crate::connect::{error, quote};
use crate::type_map::from_catalog;

type ColumnRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<u64>,
    Option<u64>,
    Option<u64>,
);

/// The database's tables with their exact row counts; a table `filter` leaves out is listed
/// with 0 rows, not counted (a scan of it, and a lock held by the reading transaction).
pub async fn tables_with_counts(
    conn: &mut Conn,
    filter: Option<&TableFilter>,
) -> Result<Vec<(String, u64)>> {
    let names: Vec<String> = conn
        .query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME")
        .await
        .map_err(|e| error(&e))?;
    let mut out = Vec::new();
    for n in names {
        if filter.is_some_and(|f| !f.matches(&n)) {
            out.push((n, 0));
            continue;
        }
        let count: Option<u64> = conn
            .query_first(format!("SELECT COUNT(*) FROM {}", quote(&n)))
            .await
            .map_err(|e| error(&e))?;
        out.push((n, count.unwrap_or(0)));
    }
    Ok(out)
}

pub async fn schema(conn: &mut Conn, filter: &TableFilter) -> Result<Schema> {
    let mut tables = Vec::new();
    let mut filtered_out = Vec::new();
    for (name, row_count) in tables_with_counts(conn, Some(filter)).await? {
        if filter.matches(&name) {
            tables.push(table(conn, name, row_count).await?);
        } else {
            filtered_out.push(name);
        }
    }
    let copied: Vec<String> = tables.iter().map(|t: &Table| t.name.clone()).collect();
    let all: Vec<String> = copied.iter().chain(&filtered_out).cloned().collect();
    let (objects, skipped) = crate::objects::discover(conn, &copied, &all).await?;
    Ok(Schema::new(BACKEND, tables, filtered_out, skipped, objects))
}

async fn table(conn: &mut Conn, name: String, row_count: u64) -> Result<Table> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, \
             CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (&name,),
        )
        .await
        .map_err(|e| error(&e))?;
    let mut columns = Vec::new();
    for row in rows {
        let (col, data_type, column_type, nullable, default, extra, max_chars, precision, scale): ColumnRow =
            mysql_async::from_row_opt(row).map_err(|e| ferry_core::Error::run(format!("MySQL catalog: {e}")))?;
        let (ty, note) = from_catalog(&data_type, &column_type, max_chars, precision, scale);
        let extra = extra.to_ascii_lowercase();
        let generated = extra.contains("generated") && !extra.contains("default_generated");
        columns.push(Column {
            name: col,
            default: default
                .as_deref()
                .map(|d| classify_default(d, &ty, extra.contains("default_generated"))),
            data_type: ty,
            nullable: nullable == "YES",
            auto_increment: extra.contains("auto_increment"),
            generated,
            generation: None,
            native_type: column_type,
            collation: None,
            notes: note.into_iter().collect(),
        });
    }
    let stats: Vec<(String, i64, Option<String>, Option<u64>)> = conn
        .exec(
            "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (&name,),
        )
        .await
        .map_err(|e| error(&e))?;
    let mut by_index: BTreeMap<String, (bool, Vec<Option<String>>, bool)> = BTreeMap::new();
    for (index, non_unique, column, sub_part) in stats {
        let e = by_index
            .entry(index)
            .or_insert((non_unique == 0, Vec::new(), false));
        e.1.push(column);
        e.2 |= sub_part.is_some();
    }
    let mut primary_key = Vec::new();
    let mut indexes = Vec::new();
    for (index, (unique, cols, prefix)) in by_index {
        let portable = !prefix && cols.iter().all(Option::is_some);
        let cols: Vec<String> = cols.into_iter().flatten().collect();
        if index == "PRIMARY" {
            primary_key = cols;
        } else {
            indexes.push(Index {
                name: index,
                columns: cols,
                unique,
                native_sql: None,
                portable,
            });
        }
    }
    let fk_rows: Vec<(String, String, String, Option<String>, String, String)> = conn
        .exec(
            "SELECT k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.DELETE_RULE, r.UPDATE_RULE \
             FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
               ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME \
             WHERE k.TABLE_SCHEMA = DATABASE() AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL \
             ORDER BY k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
            (&name,),
        )
        .await
        .map_err(|e| error(&e))?;
    let mut fks: BTreeMap<String, ForeignKey> = BTreeMap::new();
    for (constraint, column, parent, parent_col, on_delete, on_update) in fk_rows {
        let action = |a: String| (!matches!(a.as_str(), "RESTRICT" | "NO ACTION")).then_some(a);
        let fk = fks.entry(constraint).or_insert_with(|| ForeignKey {
            columns: vec![],
            ref_table: parent,
            ref_columns: vec![],
            on_delete: action(on_delete),
            on_update: action(on_update),
            enforced: false,
        });
        fk.columns.push(column);
        fk.ref_columns.extend(parent_col);
    }
    let locator_range = match primary_key.as_slice() {
        [key]
            if columns.iter().any(|c| {
                &c.name == key
                    && matches!(
                        c.data_type,
                        ferry_core::schema::DataType::Int16
                            | ferry_core::schema::DataType::Int32
                            | ferry_core::schema::DataType::Int64
                    )
            }) =>
        {
            let range: Option<(Option<i64>, Option<i64>)> = conn
                .query_first(format!(
                    "SELECT MIN({k}), MAX({k}) FROM {t}",
                    k = quote(key),
                    t = quote(&name)
                ))
                .await
                .map_err(|e| error(&e))?;
            range.and_then(|(lo, hi)| lo.zip(hi))
        }
        _ => None,
    };
    Ok(Table {
        paging: Paging::by_key(&primary_key),
        name,
        columns,
        primary_key,
        uniques: vec![],
        indexes,
        foreign_keys: fks.into_values().collect(),
        row_count,
        native_sql: None,
        locator_range,
        sampled: false,
    })
}

/// MariaDB quotes string defaults and writes `NULL`; MySQL does neither.
fn classify_default(
    text: &str,
    ty: &ferry_core::schema::DataType,
    generated: bool,
) -> DefaultValue {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    if lower == "null" {
        return DefaultValue::Null;
    }
    if lower.starts_with("current_timestamp") || lower == "now()" {
        return DefaultValue::CurrentTimestamp;
    }
    if lower == "curdate()" || lower == "current_date" || lower == "current_date()" {
        return DefaultValue::CurrentDate;
    }
    if t.len() >= 2 && t.starts_with('\'') && t.ends_with('\'') {
        return DefaultValue::StringLiteral(
            t[1..t.len() - 1].replace("''", "'").replace("\\\\", "\\"),
        );
    }
    if generated {
        return DefaultValue::Expression(t.to_string());
    }
    if ferry_core::convert::normalize_decimal(t).is_some()
        && !matches!(ty, ferry_core::schema::DataType::Text { .. })
    {
        return DefaultValue::Literal(t.to_string());
    }
    DefaultValue::StringLiteral(t.to_string())
}
