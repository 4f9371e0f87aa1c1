//! Verification: reads both sides back and compares, per table, the row count and an
//! order-independent content digest of canonicalised rows (see `hash`). On a mismatch a second,
//! narrowed pass (only rows whose key falls in a differing bucket) lists the keys that differ.
//! The copy's own counters are never taken as proof.
//!
//! Values are compared by meaning: each side's value is converted to the column's comparison
//! type before hashing (0/1 and false/true are equal as booleans; the same instant written with
//! different offsets is equal as a timestamp with zone). A same-backend SQLite copy compares raw
//! values, storage class included.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::connector::{Dialect, SchemaOptions, Source};
use crate::convert::convert;
use crate::engine::Context;
use crate::error::{Error, Result};
use crate::filter::TableFilter;
use crate::hash::{self, TableDigest};
use crate::locator::Backend;
use crate::plan::{self, Plan};
use crate::progress::Event;
use crate::report::VerifyTable;
use crate::schema::{DataType, Table};
use crate::value::{Batch, Value};

/// At most this many keys are listed per kind of difference.
const MAX_KEYS: usize = 20;
/// The narrowed pass gives up listing keys past this many candidate rows (memory bound).
const MAX_DIFF_ROWS: usize = 2_000_000;
const VERIFY_BATCH: usize = 10_000;

/// Verifies a source against a target on its own (`ferry verify`): plans as a copy would, so
/// table and column names match what the copy created.
///
/// # Errors
/// When either side cannot be read.
pub async fn verify_only(
    source: Arc<dyn Source>,
    target: Arc<dyn Source>,
    dialect: &dyn Dialect,
    filter: TableFilter,
    workers: usize,
    cx: &Context,
) -> Result<BTreeMap<String, VerifyTable>> {
    cx.observer
        .event(&Event::Phase("Reading the source schema".into()));
    let schema = source
        .schema(&SchemaOptions {
            filter,
            profile: true,
        })
        .await?;
    let plan = plan::build(&schema, dialect);
    verify_plan(source, target, &plan, workers, cx).await
}

/// One table's comparison, prepared: what to read on each side and how to compare.
struct Pair {
    name: String,
    source: Table,
    target: Table,
    compare: Vec<Option<DataType>>,
    /// Columns compared as JSON documents (key order and duplicate keys ignored) because a
    /// side is jsonb, which keeps neither.
    documents: Vec<bool>,
    key: Vec<usize>,
}

/// Verifies every table of `plan`.
///
/// # Errors
/// When a side cannot be read (a difference is a result, not an error).
pub async fn verify_plan(
    source: Arc<dyn Source>,
    target: Arc<dyn Source>,
    plan: &Plan,
    workers: usize,
    cx: &Context,
) -> Result<BTreeMap<String, VerifyTable>> {
    let target_schema = target
        .schema(&SchemaOptions {
            filter: TableFilter::default(),
            profile: false,
        })
        .await?;
    let mut results = BTreeMap::new();
    let mut pairs = Vec::new();
    for t in &plan.tables {
        let Some(target_table) = target_schema
            .tables
            .iter()
            .find(|x| x.name == t.target_name)
        else {
            results.insert(
                t.source_name.clone(),
                VerifyTable {
                    source_rows: t.row_count,
                    error: Some(format!(
                        "table \"{}\" is missing in the target",
                        t.target_name
                    )),
                    ..Default::default()
                },
            );
            continue;
        };
        let mut columns = Vec::new();
        let mut compare = Vec::new();
        let mut documents = Vec::new();
        let mut missing = Vec::new();
        for (c, sc) in t.columns.iter().zip(&t.source.columns) {
            match target_table.column(&c.target_name) {
                Some(tc) => {
                    let mut tc = tc.clone();
                    documents.push(tc.native_type == "jsonb" || sc.native_type == "jsonb");
                    // Both sides are compared in the type the copy converted into; a native
                    // column filled from text is compared as text (its raw form cannot match).
                    let native = |t: &DataType| matches!(t, DataType::Native { .. });
                    if native(&tc.data_type) && !native(&sc.data_type) {
                        tc.data_type = DataType::text();
                        compare.push(Some(DataType::text()));
                    } else {
                        compare.push(c.convert_to.clone());
                    }
                    columns.push(tc);
                }
                None => missing.push(c.target_name.clone()),
            }
        }
        if !missing.is_empty() {
            results.insert(
                t.source_name.clone(),
                VerifyTable {
                    source_rows: t.row_count,
                    target_rows: target_table.row_count,
                    error: Some(format!(
                        "columns missing in the target: {}",
                        missing.join(", ")
                    )),
                    ..Default::default()
                },
            );
            continue;
        }
        pairs.push(Pair {
            name: t.source_name.clone(),
            source: t.source.clone(),
            target: Table {
                columns,
                ..target_table.clone()
            },
            compare,
            documents,
            key: t.key_columns.clone(),
        });
    }

    let permits = Arc::new(tokio::sync::Semaphore::new(workers.max(1)));
    let mut tasks = JoinSet::new();
    for pair in pairs {
        let (source, target, permits) = (source.clone(), target.clone(), permits.clone());
        let (observer, cancel) = (cx.observer.clone(), cx.cancel.clone());
        let rule = rule_text(plan.source, plan.target);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            observer.event(&Event::VerifyStarted {
                table: pair.name.clone(),
                rows: pair.source.row_count,
            });
            let result = verify_table(&source, &target, &pair, &cancel)
                .await
                .map(|mut v| {
                    v.rule = rule;
                    v
                });
            if let Ok(v) = &result {
                observer.event(&Event::VerifyFinished {
                    table: pair.name.clone(),
                    matched: v.ok(),
                });
            }
            (pair.name, result)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (name, result) =
            joined.map_err(|e| Error::run(format!("a verify task panicked: {e}")))?;
        results.insert(
            name.clone(),
            result.map_err(|e| e.context(format!("verifying \"{name}\"")))?,
        );
    }
    Ok(results)
}

/// A JSON document with sorted keys (the last of duplicate keys wins, as in jsonb) and no
/// insignificant whitespace; text that does not parse is left as it is.
fn canonical_json(text: String) -> String {
    // Sorted explicitly: serde_json keeps insertion order when any crate in the build enables
    // its `preserve_order` feature.
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(
                    entries.into_iter().map(|(k, v)| (k, sorted(v))).collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sorted).collect())
            }
            other => other,
        }
    }
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(doc) => sorted(doc).to_string(),
        Err(_) => text,
    }
}

fn rule_text(source: Backend, target: Backend) -> String {
    if source == target && source == Backend::Sqlite {
        return "raw SQLite values compared byte for byte, storage class included".into();
    }
    "both sides read back and converted to the column's copy type (0/1 = false/true; the same instant in any \
     offset is equal; decimals compared at the column's scale, 1.50 = 1.5 only in unconstrained columns); \
     floats bit for bit, text byte for byte, JSON as documents where a side is jsonb"
        .into()
}

async fn verify_table(
    source: &Arc<dyn Source>,
    target: &Arc<dyn Source>,
    pair: &Pair,
    cancel: &CancellationToken,
) -> Result<VerifyTable> {
    let (s, t) = tokio::try_join!(
        digest_side(source, &pair.source, pair, None, cancel),
        digest_side(target, &pair.target, pair, None, cancel)
    )?;
    let mut v = VerifyTable {
        source_rows: s.digest.rows,
        target_rows: t.digest.rows,
        checksum_match: s.digest.sum == t.digest.sum && s.digest.rows == t.digest.rows,
        ..Default::default()
    };
    if v.checksum_match {
        return Ok(v);
    }
    let differing: HashSet<usize> = (0..hash::BUCKETS)
        .filter(|&b| s.digest.buckets[b] != t.digest.buckets[b])
        .collect();
    let (s, t) = tokio::try_join!(
        digest_side(source, &pair.source, pair, Some(&differing), cancel),
        digest_side(target, &pair.target, pair, Some(&differing), cancel)
    )?;
    if s.overflow || t.overflow {
        v.error = Some(format!(
            "too many differing rows to list (over {MAX_DIFF_ROWS})"
        ));
        return Ok(v);
    }
    for (key, (hash, shown)) in &s.rows {
        match t.rows.get(key) {
            None => push_capped(&mut v.missing_keys, shown),
            Some((th, _)) if th != hash => push_capped(&mut v.different_keys, shown),
            _ => {}
        }
    }
    for (key, (_, shown)) in &t.rows {
        if !s.rows.contains_key(key) {
            push_capped(&mut v.extra_keys, shown);
        }
    }
    for keys in [
        &mut v.missing_keys,
        &mut v.different_keys,
        &mut v.extra_keys,
    ] {
        keys.sort();
    }
    Ok(v)
}

fn push_capped(list: &mut Vec<String>, key: &str) {
    if list.len() < MAX_KEYS {
        list.push(key.to_string());
    }
}

#[derive(Default)]
struct Side {
    digest: TableDigest,
    /// Narrowed pass: canonical key bytes → (row hash, key as shown to the operator).
    rows: HashMap<Vec<u8>, (u64, String)>,
    overflow: bool,
}

async fn digest_side(
    reader: &Arc<dyn Source>,
    table: &Table,
    pair: &Pair,
    only_buckets: Option<&HashSet<usize>>,
    cancel: &CancellationToken,
) -> Result<Side> {
    let (tx, mut rx) = mpsc::channel::<Batch>(2);
    let read = {
        let (reader, table, cancel) = (reader.clone(), table.clone(), cancel.clone());
        tokio::spawn(async move { reader.read(&table, VERIFY_BATCH, tx, cancel).await })
    };
    let mut side = Side::default();
    let mut buf = Vec::new();
    let mut key_buf = Vec::new();
    let mut row_values: Vec<Value> = Vec::with_capacity(pair.compare.len());
    while let Some(batch) = rx.recv().await {
        for row in batch.rows() {
            row_values.clear();
            for ((v, to), document) in row.iter().zip(&pair.compare).zip(&pair.documents) {
                // A value that does not convert is hashed as read: it cannot equal the other side.
                let v = match to {
                    Some(to) => convert(v.clone(), to).unwrap_or_else(|_| v.clone()),
                    None => v.clone(),
                };
                row_values.push(match v {
                    Value::Json(text) if *document => Value::Json(canonical_json(text)),
                    v => v,
                });
            }
            let row_hash = hash::hash_values(&row_values, &mut buf);
            let key_values: Vec<Value> = if pair.key.is_empty() {
                row_values.clone()
            } else {
                pair.key.iter().map(|&k| row_values[k].clone()).collect()
            };
            hash::encode_canonical(&key_values, &mut key_buf);
            let key_hash = xxhash_rust::xxh3::xxh3_64(&key_buf);
            side.digest.add(key_hash, row_hash);
            if let Some(buckets) = only_buckets
                && buckets.contains(&hash::bucket_of(key_hash))
                && !side.overflow
            {
                if side.rows.len() >= MAX_DIFF_ROWS {
                    side.overflow = true;
                    side.rows.clear();
                    continue;
                }
                let shown = if pair.key.is_empty() {
                    format!(
                        "row ({})",
                        key_values
                            .iter()
                            .map(Value::render)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                } else {
                    pair.key
                        .iter()
                        .map(|&k| {
                            format!("{}={}", pair.source.columns[k].name, row_values[k].render())
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                // Keyless tables: identical rows are one key; count duplicates into the hash.
                let entry = side.rows.entry(key_buf.clone()).or_insert((0, shown));
                entry.0 = entry.0.wrapping_add(row_hash);
            }
        }
    }
    read.await
        .map_err(|e| Error::run(format!("reader task failed: {e}")))??;
    Ok(side)
}
