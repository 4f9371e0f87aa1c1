//! What an import leaves in the source, counted so nothing is left out silently: the profile's
//! `[[not_migrated]]` declarations (rows of a table, or files of a kind with their bytes), and
//! the source tables holding rows that no entity reads and nothing declares.

use std::collections::{BTreeSet, HashMap};

use ferry_blobs::Store;
use ferry_core::Result;
use ferry_core::schema::SkippedObject;
use ferry_postgres::{Session, quote};
use serde_json::Value;

use crate::engine::{count, text};
use crate::format::{NotMigratedKind, Profile};
use crate::pg::bind;

/// Each `[[not_migrated]]` entry with its count in the source snapshot: a table's rows (0 when
/// the source has no such table), or a file kind's files and, when the files can be looked at
/// (`media_from`), their bytes.
pub(crate) async fn declared(
    client: &Session,
    profile: &Profile,
    flags: &HashMap<&str, Option<String>>,
    media_from: Option<&Store>,
) -> Result<Vec<SkippedObject>> {
    let mut out = Vec::new();
    for n in &profile.not_migrated {
        out.push(match &n.what {
            NotMigratedKind::Table(table) => SkippedObject {
                kind: "table".into(),
                name: table.clone(),
                reason: n.reason.clone(),
                count: Some(table_rows(client, table).await?.unwrap_or(0)),
                bytes: None,
            },
            NotMigratedKind::Files { name, source } => {
                let mut values = flags.clone();
                values.insert("since", None);
                let b = bind(source, &values);
                let rows = client
                    .query(
                        &format!("SELECT q.path::text FROM ({}) AS q", b.sql),
                        &b.params,
                    )
                    .await
                    .map_err(|e| e.context(format!("not_migrated {name}: the source query")))?;
                let bytes = match media_from {
                    Some(store) => {
                        let op = store.operator(false)?;
                        let mut sum = 0;
                        for r in &rows {
                            // A file the database names and the disk lacks adds no bytes.
                            if let Ok(meta) = op.stat(&text(&r[0])).await {
                                sum += meta.content_length();
                            }
                        }
                        Some(sum)
                    }
                    None => None,
                };
                SkippedObject {
                    kind: "files".into(),
                    name: name.clone(),
                    reason: n.reason.clone(),
                    count: Some(rows.len() as u64),
                    bytes,
                }
            }
        });
    }
    Ok(out)
}

/// Rows of a source table, `None` when the source has no such table.
async fn table_rows(client: &Session, table: &str) -> Result<Option<u64>> {
    let exists = client
        .query("SELECT to_regclass($1) IS NOT NULL", &[Some(quote(table))])
        .await?;
    if !matches!(
        exists.first().map(|r| &r[0]),
        Some(ferry_core::value::Value::Bool(true))
    ) {
        return Ok(None);
    }
    let rows = client
        .query(
            &format!("SELECT count(*)::bigint FROM {}", quote(table)),
            &[],
        )
        .await?;
    Ok(Some(rows.first().map_or(0, |r| count(&r[0]))))
}

/// The tables a query reads, as PostgreSQL's planner names them (`EXPLAIN`): scalar
/// subqueries and joins included, whatever the SQL's spelling.
async fn tables_read(
    client: &Session,
    sql: &str,
    params: &[Option<String>],
) -> Result<Vec<String>> {
    let rows = client
        .query(&format!("EXPLAIN (FORMAT JSON) {sql}"), params)
        .await?;
    let plan: Value = rows
        .first()
        .map(|r| serde_json::from_str(&text(&r[0])).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    let mut out = Vec::new();
    collect_relations(&plan, &mut out);
    Ok(out)
}

fn collect_relations(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("Relation Name") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_relations(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_relations(v, out)),
        _ => {}
    }
}

/// Source tables (in the search path) that hold rows while no entity's query reads them and
/// no `[[not_migrated]]` names them, with their row counts: data the import would leave behind
/// without a word.
///
/// # Errors
/// A source query that PostgreSQL cannot plan.
pub async fn unaccounted_tables(
    client: &Session,
    profile: &Profile,
    flags: &HashMap<&str, Option<String>>,
) -> Result<Vec<(String, u64)>> {
    let mut values = flags.clone();
    values.insert("since", None);
    let mut known: BTreeSet<String> = BTreeSet::new();
    for e in &profile.entities {
        let b = bind(&e.source, &values);
        known.extend(tables_read(client, &b.sql, &b.params).await?);
    }
    for q in [&profile.version_query, &profile.host_query]
        .into_iter()
        .flatten()
    {
        known.extend(tables_read(client, q, &[]).await?);
    }
    for n in &profile.not_migrated {
        match &n.what {
            NotMigratedKind::Table(t) => {
                known.insert(t.clone());
            }
            NotMigratedKind::Files { source, .. } => {
                let b = bind(source, &values);
                known.extend(tables_read(client, &b.sql, &b.params).await?);
            }
        }
    }
    let tables = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname = ANY (current_schemas(false)) ORDER BY 1",
            &[],
        )
        .await?;
    let mut out = Vec::new();
    for t in tables.iter().map(|r| text(&r[0])) {
        if known.contains(&t) {
            continue;
        }
        if let Some(n) = table_rows(client, &t).await?
            && n > 0
        {
            out.push((t, n));
        }
    }
    Ok(out)
}
