//! A read-only query's first column as text, on a source's snapshot connection: the keys of a
//! blob manifest (`Source::query_keys`).

use ferry_core::{Error, Result};
use rusqlite::Connection;
use rusqlite::types::ValueRef;

/// Every row's first column as text (`None` for NULL). The connection is read-only, so a
/// statement that writes fails.
pub fn first_column(conn: &Connection, sql: &str) -> Result<Vec<Option<String>>> {
    let bad =
        |e: rusqlite::Error| Error::input(format!("SQLite: {}", e.to_string().replace('\n', " ")));
    let mut stmt = conn.prepare(sql).map_err(bad)?;
    if stmt.column_count() == 0 {
        return Err(Error::input(
            "the query returns no columns: it must SELECT one key per row",
        ));
    }
    let mut rows = stmt.query([]).map_err(bad)?;
    let mut keys = Vec::new();
    while let Some(row) = rows.next().map_err(bad)? {
        keys.push(match row.get_ref(0).map_err(bad)? {
            ValueRef::Null => None,
            ValueRef::Integer(i) => Some(i.to_string()),
            ValueRef::Real(f) => Some(f.to_string()),
            ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        });
    }
    Ok(keys)
}
