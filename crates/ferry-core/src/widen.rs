//! Reading the source once: a dynamically typed source (SQLite) may choose a large table's
//! column types from a sample of its rows (`SchemaOptions::sample`) instead of a scan of every
//! value before the copy. The copy then checks every value against the sampled types as it
//! goes ([`misfit`]): a value the full profile would have counted differently (another storage
//! class, a zone offset in a date, text longer than the declared limit...) stops that table
//! only; once the other tables are copied, the table is profiled in full, its columns take the
//! types that hold every value ([`replan`]), and it is created and copied again, which the
//! report names. The types a run ends with are those the full profile gives.

use crate::connector::{Dialect, SchemaOptions, Source};
use crate::convert::{Parsed, parse_datetime};
use crate::error::{Error, ErrorKind, Result};
use crate::filter::TableFilter;
use crate::plan::{self, Plan, TablePlan};
use crate::schema::DataType;
use crate::value::{Batch, Value};

/// Whether `v` is a value the sampled type `to` was predicted to hold: exactly the values a
/// full profile counts as fitting the declared type (the storage class the declaration leads
/// to, text in the forms the profile accepts), so that a table whose every value passes would
/// have got the same types from a full profile.
pub fn fits_prediction(v: &Value, to: &DataType) -> bool {
    use DataType as T;
    match (to, v) {
        (_, Value::Null) => true,
        (T::Bool, Value::Int(0 | 1) | Value::Bool(_)) => true,
        (T::Bool, Value::Float(f)) => *f == 0.0 || *f == 1.0,
        (T::Bool, Value::Text(s)) => matches!(
            s.to_ascii_lowercase().as_str(),
            "0" | "1" | "t" | "f" | "true" | "false"
        ),
        (T::Int64, Value::Int(_)) => true,
        (T::Float64, Value::Int(_) | Value::Float(_)) => true,
        (T::Decimal { .. }, Value::Int(_) | Value::Float(_) | Value::Decimal(_)) => true,
        (T::Decimal { .. }, Value::Text(s)) => decimal_literal(s),
        (T::Text { max_chars }, Value::Text(s)) => {
            max_chars.is_none_or(|m| s.len() <= m as usize || s.chars().count() <= m as usize)
        }
        (T::Date, Value::Text(s)) => matches!(
            parse_datetime(s),
            Some(Parsed { time, offset: None, .. })
                if time.is_none_or(|t| t == chrono::NaiveTime::MIN)
        ),
        (T::Timestamp, Value::Text(s)) => {
            matches!(parse_datetime(s), Some(Parsed { offset: None, .. }))
        }
        (T::TimestampTz, Value::Text(s)) => {
            matches!(
                parse_datetime(s),
                Some(Parsed {
                    offset: Some(_),
                    ..
                })
            )
        }
        (T::Time, Value::Text(_)) => crate::convert::convert(v.clone(), to).is_ok(),
        (T::Json, Value::Text(s)) => serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok(),
        (T::Uuid, Value::Text(s)) => matches!(s.len(), 32 | 36 | 38),
        (T::Uuid, Value::Bytes(b)) => b.len() == 16,
        _ => false,
    }
}

/// Text a decimal column holds as a number, as the SQLite profile tests it: one optional sign,
/// then digits with at most one point.
fn decimal_literal(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    body.starts_with(|c: char| c.is_ascii_digit())
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && body.bytes().filter(|&b| b == b'.').count() <= 1
}

/// The first value of a sampled table's batch that its predicted type does not hold, as the
/// error that sends the table back for a full profile (kind `Widen`); `None` when every value
/// fits or the table was profiled in full.
pub fn misfit(table: &TablePlan, batch: &Batch) -> Option<Error> {
    // The application's own tables take their target columns' types, not the sample's.
    if !table.source.sampled || table.existing {
        return None;
    }
    let width = batch.width.max(1);
    for (i, v) in batch.values.iter().enumerate() {
        let column = &table.source.columns[i % width];
        if !fits_prediction(v, &column.data_type) {
            return Some(Error::widen(format!(
                "column \"{}\" was predicted from a sample to hold {}, and {} does not fit",
                column.name,
                column.data_type,
                v.render().chars().take(60).collect::<String>()
            )));
        }
    }
    None
}

/// Whether `e` is a [`misfit`] (the table is to be profiled in full and copied again).
pub fn is_misfit(e: &Error) -> bool {
    e.kind() == ErrorKind::Widen
}

/// Profiles the table `name` in full and gives its plan the types that hold every value (the
/// columns' conversions, target types and notes; keys, indexes and foreign keys stay). Returns
/// the new table plan and the statements that drop and create its target table again.
///
/// # Errors
/// When the source cannot be read or no longer has the table.
pub async fn replan(
    source: &dyn Source,
    plan: &mut Plan,
    name: &str,
    dialect: &dyn Dialect,
) -> Result<(TablePlan, Vec<String>)> {
    let schema = source
        .schema(&SchemaOptions {
            filter: TableFilter::new(&[glob_literal(name)], &[])?,
            profile: true,
            sample: false,
        })
        .await?;
    let Some(table) = schema.tables.iter().find(|t| t.name == name) else {
        return Err(Error::run(format!(
            "table \"{name}\" is gone from the source"
        )));
    };
    let alone = plan::build(
        &crate::schema::Schema {
            tables: vec![table.clone()],
            ..schema.clone()
        },
        dialect,
    );
    let fresh = alone
        .tables
        .into_iter()
        .next()
        .ok_or_else(|| Error::run(format!("table \"{name}\" could not be planned again")))?;
    let Some(at) = plan.tables.iter().position(|t| t.source_name == name) else {
        return Err(Error::run(format!("table \"{name}\" is not in the plan")));
    };
    let old = &mut plan.tables[at];
    for (column, new) in old.columns.iter_mut().zip(&fresh.columns) {
        // Columns the full profile types alike keep their plan (a collation a scan chose).
        if column.convert_to == new.convert_to && column.notes == new.notes {
            continue;
        }
        column.data_type = new.data_type.clone();
        column.convert_to = new.convert_to.clone();
        column.native_type = new.native_type.clone();
        column.notes = new.notes.clone();
        column.default_sql = new.default_sql.clone();
    }
    old.source = crate::schema::Table {
        locator_range: table.locator_range,
        row_count: table.row_count,
        sampled: false,
        columns: table.columns.clone(),
        ..old.source.clone()
    };
    let replanned = old.clone();
    // The statements for this table alone: a plan holding only it, without the types and
    // objects the whole run creates once.
    let one = Plan {
        tables: vec![replanned.clone()],
        native_types: Vec::new(),
        objects: Vec::new(),
        ..plan.clone()
    };
    let ddl = dialect.ddl(&one);
    plan.ddl = dialect.ddl(plan);
    let statements = ddl.drop.into_iter().chain(ddl.create).collect();
    Ok((replanned, statements))
}

/// `name` as a table filter pattern matching only itself (filters take globs).
fn glob_literal(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '*' | '?' | '[' | ']' | '{' | '}' => format!("[{c}]"),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_hold_what_a_full_profile_accepts() {
        let dec = DataType::Decimal {
            precision: Some(15),
            scale: Some(2),
        };
        assert!(fits_prediction(&Value::Int(901), &dec));
        assert!(fits_prediction(&Value::Float(24386.67), &dec));
        assert!(fits_prediction(&Value::Text("-1.50".into()), &dec));
        assert!(!fits_prediction(&Value::Text("1e5".into()), &dec));
        assert!(!fits_prediction(
            &Value::Text("12".into()),
            &DataType::Int64
        ));
        assert!(!fits_prediction(&Value::Float(1.0), &DataType::Int64));
        assert!(fits_prediction(
            &Value::Text("1996-03-13".into()),
            &DataType::Date
        ));
        assert!(!fits_prediction(
            &Value::Text("1996-03-13 10:00:00".into()),
            &DataType::Date
        ));
        assert!(!fits_prediction(
            &Value::Text("1996-03-13 10:00:00+02:00".into()),
            &DataType::Timestamp
        ));
        assert!(fits_prediction(
            &Value::Text("1996-03-13 10:00:00+02:00".into()),
            &DataType::TimestampTz
        ));
        let short = DataType::Text { max_chars: Some(3) };
        assert!(fits_prediction(&Value::Text("abc".into()), &short));
        assert!(!fits_prediction(&Value::Text("abcd".into()), &short));
        assert!(!fits_prediction(&Value::Int(1), &DataType::text()));
        assert!(fits_prediction(&Value::Null, &DataType::Int64));
    }

    #[test]
    fn a_table_name_filters_only_itself() {
        let f = TableFilter::new(&[glob_literal("a*b?")], &[]).unwrap();
        assert!(f.matches("a*b?"));
        assert!(!f.matches("axxb1"));
    }
}
