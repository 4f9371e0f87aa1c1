//! PostgreSQL discovery from the catalogs: tables of the current schema with exact row counts,
//! columns with portable types, primary keys. (Indexes and foreign keys as a source come with
//! PostgreSQL as a full source.)

use crate::locator::BACKEND;
use ferry_core::Result;
use ferry_core::filter::TableFilter;
use ferry_core::schema::{
    Column, DataType, DefaultValue, ForeignKey, Index, NativeType, Paging, Schema, SkippedObject,
    Table,
};
use tokio_postgres::Client;

use crate::connect::error;
use crate::dialect::{literal, quote};
use crate::type_map::from_catalog;

const TABLES: &str = "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname";

/// The current schema's tables with their exact row counts; a table `filter` leaves out is
/// listed with 0 rows, not counted (a scan of it, and a lock held by the reading transaction).
pub async fn tables_with_counts(
    client: &Client,
    filter: Option<&TableFilter>,
) -> Result<Vec<(String, u64)>> {
    let names: Vec<String> = client
        .query(TABLES, &[])
        .await
        .map_err(|e| error(&e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for n in names {
        if filter.is_some_and(|f| !f.matches(&n)) {
            out.push((n, 0));
            continue;
        }
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
    let mut domains = Vec::new();
    let mut filtered_out = Vec::new();
    for (name, row_count) in tables_with_counts(client, Some(filter)).await? {
        if !filter.matches(&name) {
            filtered_out.push(name);
            continue;
        }
        let table_name = name.clone();
        let cols = client
            .query(
                "SELECT a.attname, t.typname, a.atttypmod, NOT a.attnotnull, format_type(a.atttypid, a.atttypmod), \
                 a.attidentity <> '' OR coalesce(pg_get_serial_sequence(quote_ident(c.relname), a.attname), '') <> '', \
                 a.attgenerated <> '', pg_get_expr(d.adbin, d.adrelid), \
                 t.typtype IN ('c', 'p') OR coalesce(e.typtype, '') = 'c', t.typcategory = 'A', \
                 coalesce(b.typname::text, ''), t.typtypmod, format_type(t.typbasetype, t.typtypmod), \
                 array(SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.contypid = t.oid ORDER BY k.oid) \
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' \
                 LEFT JOIN pg_type b ON b.oid = t.typbasetype AND t.typtype = 'd' \
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 WHERE n.nspname = current_schema() AND c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&name],
            )
            .await
            .map_err(|e| error(&e))?;
        let columns: Vec<Column> = cols
            .iter()
            .map(|r| {
                let typname: String = r.get(1);
                let native: String = r.get(4);
                let base: String = r.get(10);
                // A domain over a portable type is that type to other backends (a PostgreSQL
                // target keeps the domain: the plan keeps types it recreates).
                let domain_base = (!base.is_empty())
                    .then(|| from_catalog(&base, r.get(11)))
                    .flatten();
                let checks: Vec<String> = r.get(13);
                if domain_base.is_some()
                    && !checks.is_empty()
                    && !domains.iter().any(|d: &SkippedObject| d.name == native)
                {
                    domains.push(domain_checks(&native, &r.get::<_, String>(12), &checks));
                }
                let (data_type, notes) =
                    match domain_base.or_else(|| from_catalog(&typname, r.get(2))) {
                        Some(t) => (t, vec![]),
                        // Composite values name their fields' types by per-database ids.
                        None if r.get::<_, bool>(8) => (
                            DataType::text(),
                            vec![format!("{native} is read as its text form")],
                        ),
                        None => (
                            DataType::Native {
                                name: native.clone(),
                                array: r.get(9),
                            },
                            vec![],
                        ),
                    };
                Column {
                    name: r.get(0),
                    data_type,
                    nullable: r.get(3),
                    default: r
                        .get::<_, Option<String>>(7)
                        // A generated column's expression is not a default; a serial's
                        // nextval is its identity (`auto_increment`).
                        .filter(|_| !r.get::<_, bool>(6) && !r.get::<_, bool>(5))
                        .as_deref()
                        .and_then(classify_default),
                    auto_increment: r.get(5),
                    generated: r.get(6),
                    generation: r
                        .get::<_, Option<String>>(7)
                        .filter(|_| r.get::<_, bool>(6)),
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
        let locator_range = integer_key_range(client, &table_name, &pk, &columns).await?;
        tables.push(Table {
            paging: Paging::by_key(&pk),
            name,
            columns,
            primary_key: pk,
            uniques: uniques(client, &table_name).await?,
            indexes: indexes(client, &table_name).await?,
            foreign_keys: foreign_keys(client, &table_name).await?,
            row_count,
            native_sql: None,
            locator_range,
            sampled: false,
        });
    }
    let names: Vec<String> = tables.iter().map(|t| t.name.clone()).collect();
    let (objects, skipped) = crate::objects::discover(client, &names).await?;
    let mut skipped = skipped;
    skipped.extend(domains);
    let mut schema = Schema::new(BACKEND, tables, filtered_out, skipped, objects);
    schema.native_types = native_types(client).await?;
    Ok(schema)
}

/// The schema's enums and domains as idempotent DDL (a target that already has a type keeps
/// it), enums first since domains may be over them, then in creation order.
async fn native_types(client: &Client) -> Result<Vec<NativeType>> {
    let rows = client
        .query(
            "SELECT t.typname, t.typtype::text, \
             array(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder), \
             format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault, \
             array(SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.contypid = t.oid ORDER BY k.oid) \
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
             WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd') \
             ORDER BY t.typtype DESC, t.oid",
            &[],
        )
        .await
        .map_err(|e| error(&e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let name: String = r.get(0);
            let create = if r.get::<_, String>(1) == "e" {
                let labels: Vec<String> = r.get(2);
                let labels: Vec<String> = labels.iter().map(|l| literal(l)).collect();
                format!("CREATE TYPE {} AS ENUM ({})", quote(&name), labels.join(", "))
            } else {
                let mut sql = format!("CREATE DOMAIN {} AS {}", quote(&name), r.get::<_, String>(3));
                if let Some(d) = r.get::<_, Option<String>>(5) {
                    sql.push_str(&format!(" DEFAULT {d}"));
                }
                if r.get(4) {
                    sql.push_str(" NOT NULL");
                }
                for check in r.get::<_, Vec<String>>(6) {
                    sql.push_str(&format!(" {check}"));
                }
                sql
            };
            NativeType {
                sql: format!(
                    "DO $ferry$ BEGIN {create}; EXCEPTION WHEN duplicate_object THEN NULL; END $ferry$"
                ),
                name,
            }
        })
        .collect())
}

/// A domain's constraints as an object other backends do not get (a PostgreSQL target recreates
/// the domain, and the plan leaves this out of its list).
fn domain_checks(name: &str, base_sql: &str, checks: &[String]) -> SkippedObject {
    SkippedObject {
        kind: "domain".into(),
        name: name.into(),
        reason: format!(
            "its {} not copied; its columns arrive as {base_sql}",
            if checks.len() == 1 {
                format!("constraint {} is", checks[0])
            } else {
                format!("constraints {} are", checks.join(", "))
            }
        ),
        ..Default::default()
    }
}

/// Classifies a default as `pg_get_expr` prints it; sequences are the identity, not a default.
fn classify_default(expr: &str) -> Option<DefaultValue> {
    let e = expr.trim();
    let lower = e.to_ascii_lowercase();
    // A sequence the column does not own (a serial's own is its identity, filtered out above)
    // is an expression: replayed between two PostgreSQL databases, which recreate the
    // sequence, and named where it is dropped.
    if lower.starts_with("nextval(") {
        return Some(DefaultValue::Expression(e.to_string()));
    }
    Some(match lower.as_str() {
        "now()" | "current_timestamp" | "statement_timestamp()" | "transaction_timestamp()" => {
            DefaultValue::CurrentTimestamp
        }
        "current_date" => DefaultValue::CurrentDate,
        "true" => DefaultValue::Literal("1".into()),
        "false" => DefaultValue::Literal("0".into()),
        _ if lower.starts_with("null") => DefaultValue::Null,
        _ if e.starts_with('\'') => match quoted(e) {
            Some(text) => DefaultValue::StringLiteral(text),
            None => DefaultValue::Expression(e.to_string()),
        },
        _ => {
            let bare = e
                .trim_start_matches('(')
                .split("::")
                .next()
                .unwrap_or(e)
                .trim_end_matches(')');
            if ferry_core::convert::normalize_decimal(bare).is_some() {
                DefaultValue::Literal(bare.to_string())
            } else {
                DefaultValue::Expression(e.to_string())
            }
        }
    })
}

/// The text of a leading SQL string literal (`'it''s'::text` → `it's`).
fn quoted(e: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = e[1..].chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            if chars.peek() == Some(&'\'') {
                chars.next();
                out.push('\'');
            } else {
                return Some(out);
            }
        } else {
            out.push(c);
        }
    }
    None
}

async fn uniques(client: &Client, table: &str) -> Result<Vec<Vec<String>>> {
    let rows = client
        .query(
            "SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_constraint con \
             JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) ON true \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
             WHERE con.contype = 'u' AND n.nspname = current_schema() AND c.relname = $1 GROUP BY con.oid ORDER BY con.oid",
            &[&table],
        )
        .await
        .map_err(|e| error(&e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

async fn indexes(client: &Client, table: &str) -> Result<Vec<Index>> {
    let rows = client
        .query(
            "SELECT ic.relname::text, i.indisunique, i.indpred IS NOT NULL OR 0 = ANY(i.indkey::int2[]), \
               coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum), '{}'), pg_get_indexdef(i.indexrelid) \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relname = $1 AND NOT i.indisprimary \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid) ORDER BY 1",
            &[&table],
        )
        .await
        .map_err(|e| error(&e))?;
    Ok(rows
        .iter()
        .map(|r| Index {
            name: r.get(0),
            unique: r.get(1),
            portable: !r.get::<_, bool>(2),
            columns: r.get(3),
            native_sql: Some(r.get(4)),
        })
        .collect())
}

async fn foreign_keys(client: &Client, table: &str) -> Result<Vec<ForeignKey>> {
    let rows = client
        .query(
            "SELECT p.relname::text, \
               (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) \
                  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum), \
               (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord) \
                  JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum), \
               con.confdeltype::text, con.confupdtype::text, con.convalidated \
             FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_class p ON p.oid = con.confrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE con.contype = 'f' AND n.nspname = current_schema() AND c.relname = $1 ORDER BY con.conname",
            &[&table],
        )
        .await
        .map_err(|e| error(&e))?;
    let action = |code: String| match code.as_str() {
        "c" => Some("CASCADE".to_string()),
        "n" => Some("SET NULL".to_string()),
        "d" => Some("SET DEFAULT".to_string()),
        "r" => Some("RESTRICT".to_string()),
        _ => None,
    };
    Ok(rows
        .iter()
        .map(|r| ForeignKey {
            ref_table: r.get(0),
            columns: r.get(1),
            ref_columns: r.get(2),
            on_delete: action(r.get(3)),
            on_update: action(r.get(4)),
            enforced: r.get(5),
        })
        .collect())
}

/// The smallest and largest value of a single-column integer primary key: large tables are
/// then read and written in parallel chunks of that range.
async fn integer_key_range(
    client: &Client,
    table: &str,
    pk: &[String],
    columns: &[Column],
) -> Result<Option<(i64, i64)>> {
    if pk.is_empty() {
        // A keyless table is split by its physical pages (ctid ranges, TID range scans), read
        // inside the snapshot, where pages added later hold only rows the snapshot cannot see.
        let pages: i64 = client
            .query_one(
                "SELECT pg_relation_size($1::text::regclass) / current_setting('block_size')::int8",
                &[&quote(table)],
            )
            .await
            .map_err(|e| error(&e))?
            .get(0);
        return Ok((pages > 0).then(|| (0, pages - 1)));
    }
    let [key] = pk else { return Ok(None) };
    let integer = columns.iter().any(|c| {
        &c.name == key
            && matches!(
                c.data_type,
                DataType::Int16 | DataType::Int32 | DataType::Int64
            )
    });
    if !integer {
        return Ok(None);
    }
    let row = client
        .query_one(
            &format!(
                "SELECT min({k})::int8, max({k})::int8 FROM {t}",
                k = quote(key),
                t = quote(table)
            ),
            &[],
        )
        .await
        .map_err(|e| error(&e))?;
    Ok(row
        .get::<_, Option<i64>>(0)
        .zip(row.get::<_, Option<i64>>(1)))
}
