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
use crate::schema::{Column, DataType};
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

/// [`fits_prediction`] without what the copy's own conversion checks anyway, so that dates
/// are parsed once: a date or an instant that converts fits (`to_date` refuses times of day
/// and offsets, `to_timestamptz` text without one), and a failed conversion in a sampled table
/// is a misfit too ([`failed_conversion`]). Timestamps without a zone convert with an offset
/// too, so theirs is looked for here, as the profile's patterns do. Verification checks a
/// sampled source the same way (`verify`).
pub fn fits_before_conversion(v: &Value, to: &DataType) -> bool {
    match (to, v) {
        (DataType::Date | DataType::TimestampTz, Value::Text(_)) => true,
        (DataType::Timestamp, Value::Text(s)) => !offset_suffix(s),
        _ => fits_prediction(v, to),
    }
}

/// Whether text ends in a zone offset, by the SQLite profile's patterns: `*[+-]HH:MM`,
/// `*9[+-]HHMM`, `*Z`.
fn offset_suffix(s: &str) -> bool {
    let b = s.as_bytes();
    let n = b.len();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let sign = |i: usize| b[i] == b'+' || b[i] == b'-';
    matches!(b.last(), Some(b'Z' | b'z'))
        || (n >= 6 && sign(n - 6) && b[n - 3] == b':' && digits(n - 5..n - 3) && digits(n - 2..n))
        || (n >= 6 && b[n - 6].is_ascii_digit() && sign(n - 5) && digits(n - 4..n))
}

/// The first value of a sampled table's batch that its predicted type does not hold, as the
/// error that sends the table back for a full profile (kind `Widen`); `None` when every value
/// fits or the table was profiled in full.
pub fn misfit(table: &TablePlan, batch: &Batch) -> Option<Error> {
    if !sampled(table) {
        return None;
    }
    let width = batch.width.max(1);
    for (i, v) in batch.values.iter().enumerate() {
        let column = &table.source.columns[i % width];
        if !fits_before_conversion(v, &column.data_type) {
            return Some(misfit_of(column, v));
        }
    }
    None
}

/// The error (kind `Widen`) for a value `v` of a sampled `column` that its predicted type does
/// not hold.
pub fn misfit_of(column: &Column, v: &Value) -> Error {
    Error::widen(format!(
        "column \"{}\" was predicted from a sample to hold {}, and {} does not fit",
        column.name,
        column.data_type,
        v.render().chars().take(60).collect::<String>()
    ))
}

/// The application's own tables take their target columns' types, not the sample's.
fn sampled(table: &TablePlan) -> bool {
    table.source.sampled && !table.existing
}

/// In a sampled table, a value that did not convert (`failures`, from the copy's conversion)
/// is a misfit: profiled in full, the table is typed to hold it or, if it still does not
/// convert, fails or is rejected as in any run.
pub fn failed_conversion<T>(table: &TablePlan, failures: &[(T, usize, String)]) -> Option<Error> {
    let (_, _, reason) = failures.first().filter(|_| sampled(table))?;
    Some(Error::widen(format!(
        "a value does not fit the types predicted from a sample ({reason})"
    )))
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
        for (text, offset) in [
            ("2026-07-08 12:00:00+02:00", true),
            ("2026-07-08T12:00:00Z", true),
            ("2026-07-08 12:00:00-0530", true),
            ("2026-07-08 12:00:00", false),
            ("2026-07-08", false),
        ] {
            assert_eq!(offset_suffix(text), offset, "{text}");
            assert_eq!(
                fits_before_conversion(&Value::Text(text.into()), &DataType::Timestamp),
                !offset,
                "{text}"
            );
        }
    }

    #[test]
    fn a_table_name_filters_only_itself() {
        let f = TableFilter::new(&[glob_literal("a*b?")], &[]).unwrap();
        assert!(f.matches("a*b?"));
        assert!(!f.matches("axxb1"));
    }
}
