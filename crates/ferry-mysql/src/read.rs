//! Reading a MySQL table: one streamed SELECT (binary protocol, so numbers, dates and times
//! arrive typed and decimals as their exact text) on a connection of the source's consistent
//! snapshot (`snapshot.rs`); ordered by the primary key when there is one.

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use ferry_core::Result;
use ferry_core::connector::BatchSender;
use ferry_core::schema::{DataType, Table};
use ferry_core::value::{Batch, Value};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value as My};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connect::{ZeroDates, error, quote};

pub async fn read_table(
    conn: &mut Conn,
    table: &Table,
    batch_rows: usize,
    zero: ZeroDates,
    tx: mpsc::Sender<Batch>,
    cancel: &CancellationToken,
) -> Result<()> {
    let batch_rows = batch_rows.max(1);
    let cols: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
    let order = if table.primary_key.is_empty() {
        String::new()
    } else {
        format!(
            " ORDER BY {}",
            table
                .primary_key
                .iter()
                .map(|c| quote(c))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    // A chunk of a large table: its range of the integer primary key.
    let range = match (&table.locator_range, table.primary_key.as_slice()) {
        (Some((lo, hi)), [key]) => format!(" WHERE {} BETWEEN {lo} AND {hi}", quote(key)),
        _ => String::new(),
    };
    let sql = format!(
        "SELECT {} FROM {}{range}{order}",
        cols.join(", "),
        quote(&table.name)
    );
    let width = table.columns.len();
    let types: Vec<DataType> = table.columns.iter().map(|c| c.data_type.clone()).collect();
    {
        let mut result = conn.exec_iter(sql, ()).await.map_err(|e| error(&e))?;
        let mut out = BatchSender::new(&tx, cancel, width, batch_rows);
        while let Some(row) = result.next().await.map_err(|e| error(&e))? {
            for (v, t) in row.unwrap().into_iter().zip(&types) {
                out.push(value(v, t, zero));
            }
            if !out.end_row().await? {
                return Ok(());
            }
        }
        out.finish().await;
    }
    Ok(())
}

/// A MySQL value as a portable one. Values a portable type cannot hold (zero dates, times past
/// 24 hours) come out as text, so that converting them names them in a row failure.
fn value(v: My, t: &DataType, zero: ZeroDates) -> Value {
    match v {
        My::NULL => Value::Null,
        My::Int(i) => Value::Int(i),
        My::UInt(u) => i64::try_from(u)
            .map(Value::Int)
            .unwrap_or_else(|_| Value::Decimal(u.to_string())),
        My::Float(f) => Value::Float(f as f64),
        My::Double(f) => Value::Float(f),
        My::Bytes(b) => match t {
            DataType::Decimal { .. } => Value::Decimal(String::from_utf8_lossy(&b).into_owned()),
            DataType::Bytes => Value::Bytes(b),
            DataType::Bool => Value::Bool(b.iter().any(|&x| x != 0)),
            _ => match String::from_utf8(b) {
                Ok(s) => Value::Text(s),
                Err(e) => Value::RawText(e.into_bytes()),
            },
        },
        My::Date(y, m, d, h, mi, s, us) => {
            let date = NaiveDate::from_ymd_opt(y as i32, m as u32, d as u32);
            let time = NaiveTime::from_hms_micro_opt(h as u32, mi as u32, s as u32, us);
            match (date, time) {
                (Some(date), Some(time)) => match t {
                    DataType::Date => Value::Date(date),
                    DataType::TimestampTz => {
                        Value::TimestampTz(Utc.from_utc_datetime(&date.and_time(time)))
                    }
                    _ => Value::Timestamp(date.and_time(time)),
                },
                _ if zero == ZeroDates::Null => Value::Null,
                _ => Value::Text(format!(
                    "{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02} (a MySQL zero date; zero_dates=null maps these to NULL)"
                )),
            }
        }
        My::Time(neg, days, h, m, s, us) => {
            match NaiveTime::from_hms_micro_opt(h as u32, m as u32, s as u32, us) {
                Some(time) if !neg && days == 0 => Value::Time(time),
                _ => Value::Text(format!(
                    "{}{}:{m:02}:{s:02} (outside a time of day)",
                    if neg { "-" } else { "" },
                    days * 24 + h as u32
                )),
            }
        }
    }
}
