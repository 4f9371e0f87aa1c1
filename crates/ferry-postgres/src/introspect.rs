//! PostgreSQL discovery from the catalogs: tables of the current schema with exact row counts,
//! columns with portable types, primary keys. (Indexes and foreign keys as a source come with
//! PostgreSQL as a full source.)

use ferry_core::Result;
use ferry_core::filter::TableFilter;
use ferry_core::locator::Backend;
use ferry_core::schema::{Column, DataType, Paging, Schema, Table};
use tokio_postgres::Client;

use crate::connect::error;
use crate::dialect::quote;
use crate::type_map::from_catalog;

const TABLES: &str = "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname";

pub async fn tables_with_counts(client: &Client) -> Result<Vec<(String, u64)>> {
    let names: Vec<String> = client
        .query(TABLES, &[])
        .await
        .map_err(|e| error(&e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for n in names {
        let row = client
            .query_one(&format!("SELECT count(*) FROM {}", quote(&n)), &[])
            .await
            .map_err(|e| error(&e))?;
        out.push((n, row.get::<_, i64>(0) as u64));
    }
    Ok(out)
}

pub async fn schema(client: &Client, filter: &TableFilter) -> Result<Schema> {
    let mut tables = Vec::new();
    for (name, row_count) in tables_with_counts(client).await? {
        if !filter.matches(&name) {
            continue;
        }
        let cols = client
            .query(
                "SELECT a.attname, t.typname, a.atttypmod, NOT a.attnotnull, format_type(a.atttypid, a.atttypmod), \
                 a.attidentity <> '' OR coalesce(pg_get_serial_sequence(quote_ident(c.relname), a.attname), '') <> '', \
                 a.attgenerated <> '' \
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_type t ON t.oid = a.atttypid \
                 WHERE n.nspname = current_schema() AND c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&name],
            )
            .await
            .map_err(|e| error(&e))?;
        let columns = cols
            .iter()
            .map(|r| {
                let typname: String = r.get(1);
                let native: String = r.get(4);
                let (data_type, notes) = match from_catalog(&typname, r.get(2)) {
                    Some(t) => (t, vec![]),
                    None => (
                        DataType::text(),
                        vec![format!("{native} is read as its text form")],
                    ),
                };
                Column {
                    name: r.get(0),
                    data_type,
                    nullable: r.get(3),
                    default: None,
                    auto_increment: r.get(5),
                    generated: r.get(6),
                    native_type: native,
                    collation: None,
                    notes,
                }
            })
            .collect();
        let pk: Vec<String> = client
            .query(
                "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
                 WHERE i.indisprimary AND n.nspname = current_schema() AND c.relname = $1 ORDER BY k.ord",
                &[&name],
            )
            .await
            .map_err(|e| error(&e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        tables.push(Table {
            paging: if pk.is_empty() {
                Paging::RowLocator
            } else {
                Paging::PrimaryKey
            },
            name,
            columns,
            primary_key: pk,
            uniques: vec![],
            indexes: vec![],
            foreign_keys: vec![],
            row_count,
            native_sql: None,
            locator_range: None,
        });
    }
    Ok(Schema {
        backend: Backend::Postgres,
        tables,
        skipped: vec![],
    })
}
