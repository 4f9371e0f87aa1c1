//! Reading a SQLite table: keyset pages on the rowid (or, for WITHOUT ROWID tables, one
//! ordered scan of the primary key's b-tree), never OFFSET, on a connection of the source's
//! snapshot (`snapshot.rs`), so every page of every table sees the same data.

use ferry_core::schema::{Paging, Table};
use ferry_core::value::Batch;
use ferry_core::{Error, Result};
use rusqlite::Connection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::open::{quote, sql_err};
use crate::value_io::from_ref;

pub fn read_table(
    conn: &Connection,
    table: &Table,
    batch_rows: usize,
    tx: &mpsc::Sender<Batch>,
    cancel: &CancellationToken,
) -> Result<()> {
    let width = table.columns.len();
    let batch_rows = Batch::rows_for(width, batch_rows);
    let cols: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
    let cols = if cols.is_empty() {
        "NULL".to_string()
    } else {
        cols.join(", ")
    };
    (|| {
        match table.paging {
            Paging::RowLocator => {
                // A chunk reads only its range of rowids (the whole table reads from its
                // smallest to its largest rowid as counted, or everything when it was empty).
                let (start, end) = match table.locator_range {
                    Some((lo, hi)) => (lo.saturating_sub(1), hi),
                    None => (i64::MIN, i64::MAX),
                };
                let sql = format!(
                    "SELECT rowid, {cols} FROM {} WHERE rowid > ?1 AND rowid <= ?3 ORDER BY rowid LIMIT ?2",
                    quote(&table.name)
                );
                let mut stmt = conn.prepare(&sql).map_err(sql_err)?;
                let mut last = start;
                loop {
                    if cancel.is_cancelled() {
                        return Err(Error::cancelled());
                    }
                    let mut batch = Batch::new(width, batch_rows);
                    let mut rows = stmt
                        .query((last, batch_rows as i64, end))
                        .map_err(sql_err)?;
                    while let Some(row) = rows.next().map_err(sql_err)? {
                        last = row.get(0).map_err(sql_err)?;
                        batch.locators.push(last);
                        for i in 0..width {
                            batch
                                .values
                                .push(from_ref(row.get_ref(i + 1).map_err(sql_err)?));
                        }
                    }
                    let n = batch.len();
                    if n > 0 && tx.blocking_send(batch).is_err() {
                        return Ok(()); // The consumer stopped; it reports why.
                    }
                    if n < batch_rows {
                        return Ok(());
                    }
                }
            }
            Paging::PrimaryKey => {
                let order: Vec<String> = table.primary_key.iter().map(|c| quote(c)).collect();
                let sql = format!(
                    "SELECT {cols} FROM {} ORDER BY {}",
                    quote(&table.name),
                    order.join(", ")
                );
                let mut stmt = conn.prepare(&sql).map_err(sql_err)?;
                let mut rows = stmt.query([]).map_err(sql_err)?;
                let mut batch = Batch::new(width, batch_rows);
                while let Some(row) = rows.next().map_err(sql_err)? {
                    for i in 0..width {
                        batch
                            .values
                            .push(from_ref(row.get_ref(i).map_err(sql_err)?));
                    }
                    if batch.len() == batch_rows {
                        if cancel.is_cancelled() {
                            return Err(Error::cancelled());
                        }
                        if tx
                            .blocking_send(std::mem::replace(
                                &mut batch,
                                Batch::new(width, batch_rows),
                            ))
                            .is_err()
                        {
                            return Ok(());
                        }
                    }
                }
                if !batch.is_empty() {
                    let _ = tx.blocking_send(batch);
                }
                Ok(())
            }
        }
    })()
}
