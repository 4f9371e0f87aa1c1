//! Reading a PostgreSQL table as one binary COPY stream (`COPY (SELECT ...) TO STDOUT`),
//! decoded straight into portable values. Types ferry does not model are read raw for a
//! PostgreSQL target and cast to text for any other.

use ferry_core::connector::BatchSender;
use ferry_core::schema::{DataType, Table};
use ferry_core::value::{Batch, Value};
use ferry_core::{Error, Result};
use futures_util::{StreamExt, pin_mut};
use tokio::sync::mpsc;
use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyOutStream;
use tokio_postgres::types::Type;
use tokio_util::sync::CancellationToken;

use crate::connect::error;
use crate::copy_binary::{Decoded, normalize_array};
use crate::dialect::quote;

/// Returns whether every row was read (`false`: the consumer stopped first).
pub async fn read_table(
    client: &Client,
    table: &Table,
    batch_rows: usize,
    tx: mpsc::Sender<Batch>,
    cancel: &CancellationToken,
) -> Result<bool> {
    let mut exprs = Vec::new();
    let mut types = Vec::new();
    let mut arrays = Vec::new();
    for (i, c) in table.columns.iter().enumerate() {
        let (expr, ty) = match (
            &c.data_type,
            crate::type_map::from_catalog_type(&c.native_type),
        ) {
            // Raw binary form, for a PostgreSQL target (bytea's decoder keeps bytes as they are).
            (DataType::Native { array, .. }, _) => {
                if *array {
                    arrays.push(i);
                }
                (quote(&c.name), Type::BYTEA)
            }
            (_, Some(ty)) => (quote(&c.name), ty),
            // An array bound for a JSON column: PostgreSQL renders it (nested for more
            // dimensions).
            (DataType::Json, None) if c.native_type.ends_with(']') => {
                (format!("to_json({})", quote(&c.name)), Type::JSON)
            }
            // A domain (or another name for a portable type): read as that type.
            (t, None) => match crate::type_map::wire_type(t) {
                Some((cast, ty)) => (format!("{}::{cast}", quote(&c.name)), ty),
                None => (format!("{}::text", quote(&c.name)), Type::TEXT),
            },
        };
        exprs.push(expr);
        types.push(ty);
    }
    // A chunk of a large table: its range of the integer primary key.
    let range = match (&table.locator_range, table.primary_key.as_slice()) {
        (Some((lo, hi)), [key]) => format!(" WHERE {} BETWEEN {lo} AND {hi}", quote(key)),
        // A keyless table's chunk: its range of pages.
        (Some((lo, hi)), []) => format!(
            " WHERE ctid >= '({lo},0)'::tid AND ctid < '({},0)'::tid",
            hi + 1
        ),
        _ => String::new(),
    };
    let sql = format!(
        "COPY (SELECT {} FROM {}{range}) TO STDOUT (FORMAT binary)",
        exprs.join(", "),
        quote(&table.name)
    );
    let stream = client.copy_out(&sql).await.map_err(|e| error(&e))?;
    let rows = BinaryCopyOutStream::new(stream, &types);
    pin_mut!(rows);
    let width = types.len();
    let mut out = BatchSender::new(&tx, cancel, width, batch_rows);
    while let Some(row) = rows.next().await {
        let row = row.map_err(|e| error(&e))?;
        for i in 0..width {
            let Decoded(mut v) = row.try_get(i).map_err(|e| {
                Error::run(format!(
                    "PostgreSQL: cannot decode \"{}\": {e}",
                    table.columns[i].name
                ))
            })?;
            if arrays.contains(&i)
                && let Value::Bytes(b) = &mut v
            {
                normalize_array(b);
            }
            out.push(v);
        }
        if !out.end_row().await? {
            return Ok(false);
        }
    }
    out.finish().await;
    Ok(true)
}
