//! Verification: reads both sides back and compares, per table, the row count and an
//! order-independent content digest of canonicalised rows (see `hash`). On a mismatch a second
//! pass keeps 16 bytes per row of the differing key buckets (key hash, row hash), capped, and a
//! sorted merge of both sides counts the missing, extra and different keys exactly; a third pass
//! renders only the keys shown (at most `MAX_KEYS` of each kind). Memory stays bounded however
//! many rows differ. The copy's own counters are never taken as proof.
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

use crate::connector::{Dialect, ReadRequest, SchemaOptions, Source};
use crate::convert::{already, convert, convert_borrowed};
use crate::engine::Context;
use crate::error::{Error, Result};
use crate::filter::TableFilter;
use crate::hash::{self, TableDigest};
use crate::plan::{self, Plan};
use crate::progress::Event;
use crate::report::VerifyTable;
use crate::schema::{DataType, Table};
use crate::value::{Batch, Value};
use crate::widen;

/// At most this many keys are listed per kind of difference.
const MAX_KEYS: usize = 20;
/// Rows of differing buckets the second pass keeps per side (16 bytes each: 32 MB a side);
/// buckets past it are left out and the counts say they cover part of the table.
const MAX_DIFF_ROWS: usize = 2_000_000;
const VERIFY_BATCH: usize = 10_000;

/// The outcome of `verify_only`.
pub struct Verified {
    pub tables: BTreeMap<String, VerifyTable>,
    /// About the table selection (an `--exclude` name the source does not have).
    pub warnings: Vec<String>,
    plan: Plan,
}

/// Verifies a source against a target on its own (`ferry verify`): plans as a copy would, so
/// table and column names match what the copy created.
///
/// # Errors
/// When either side cannot be read; an input error for a `--tables` name the source lacks.
pub async fn verify_only(
    source: Arc<dyn Source>,
    target: Arc<dyn Source>,
    dialect: &dyn Dialect,
    filter: TableFilter,
    workers: usize,
    cx: &Context,
) -> Result<Verified> {
    cx.observer
        .event(&Event::Phase("Reading the source schema".into()));
    // Types from a sample, as the copy takes them (a full profile would read the source once
    // more before verifying reads it). Every source value is checked against the sampled types
    // while it is hashed; a table with a value they do not hold is profiled in full and
    // verified again with the types the copy widened it to (`widen`), so the comparison types
    // are always those a full profile gives.
    let schema = source
        .schema(&SchemaOptions {
            filter: filter.clone(),
            profile: true,
            sample: true,
        })
        .await?;
    let warnings = filter.check(&schema)?;
    let mut plan = plan::build(&schema, dialect);
    let (mut tables, misfits) =
        verify_tables(source.clone(), target.clone(), &plan, workers, true, cx).await?;
    if !misfits.is_empty() {
        for name in &misfits {
            widen::replan(source.as_ref(), &mut plan, name, dialect).await?;
        }
        let again = Plan {
            tables: plan
                .tables
                .iter()
                .filter(|t| misfits.contains(&t.source_name))
                .cloned()
                .collect(),
            ..plan.clone()
        };
        let (more, _) = verify_tables(source, target, &again, workers, false, cx).await?;
        tables.extend(more);
    }
    Ok(Verified {
        tables,
        warnings,
        plan,
    })
}

impl Verified {
    /// Tables whose content differs (a comparison was made and did not match).
    pub fn differing(&self) -> Vec<String> {
        self.tables
            .iter()
            .filter(|(_, v)| v.error.is_none() && !v.ok())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Reads the source side of every differing table once more through `source` (opened
    /// again by the caller: a new read, so a new snapshot) and, where its digest moved since the
    /// first read, says the source is taking writes: the differences may be writes made since
    /// the copy rather than a failed copy. Returns the tables that moved.
    ///
    /// # Errors
    /// When a side cannot be read.
    pub async fn recheck_source(
        &mut self,
        source: Arc<dyn Source>,
        target: Arc<dyn Source>,
        cx: &Context,
    ) -> Result<Vec<String>> {
        let differing = self.differing();
        if differing.is_empty() {
            return Ok(Vec::new());
        }
        cx.observer.event(&Event::Phase(
            "Reading the differing tables' source again (is it taking writes?)".into(),
        ));
        let (_, pairs) = prepare(target.as_ref(), &self.plan, false).await?;
        let mut moved = Vec::new();
        for pair in pairs.iter().filter(|p| differing.contains(&p.name)) {
            // The whole table as it is now: the first read stopped at the largest row locator
            // the schema counted, which would hide rows inserted since.
            let whole = Table {
                locator_range: None,
                ..pair.source.clone()
            };
            let again = digest_side(
                source.clone(),
                whole,
                pair.clone(),
                Pass::Digest,
                false,
                cx.cancel.clone(),
            )
            .await
            .map_err(|e| e.context(format!("verifying \"{}\"", pair.name)))?;
            let Some(v) = self.tables.get_mut(&pair.name) else {
                continue;
            };
            if (again.digest.rows, again.digest.sum) != v.source_digest {
                v.source_changed = Some(format!(
                    "the source changed while verifying: table {} is taking writes ({} rows, then {}); \
                     differences may be writes since the copy, not a failed copy: stop the application's writes and verify again",
                    pair.name, v.source_digest.0, again.digest.rows
                ));
                moved.push(pair.name.clone());
            }
        }
        Ok(moved)
    }
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
    /// The source's types came from a sample: every source value is checked against them, and
    /// one they do not hold stops the table for a full profile (`widen`).
    check_fit: bool,
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
    Ok(verify_tables(source, target, plan, workers, false, cx)
        .await?
        .0)
}

/// [`verify_plan`]; with `check_fit`, also the sampled tables holding a value their sampled
/// types do not (left out of the results: they are to be profiled in full and verified again).
async fn verify_tables(
    source: Arc<dyn Source>,
    target: Arc<dyn Source>,
    plan: &Plan,
    workers: usize,
    check_fit: bool,
    cx: &Context,
) -> Result<(BTreeMap<String, VerifyTable>, Vec<String>)> {
    let (mut results, pairs) = prepare(target.as_ref(), plan, check_fit).await?;
    let permits = Arc::new(tokio::sync::Semaphore::new(workers.max(1)));
    let mut tasks = JoinSet::new();
    for pair in pairs {
        let (source, target, permits) = (source.clone(), target.clone(), permits.clone());
        let (observer, cancel) = (cx.observer.clone(), cx.cancel.clone());
        let rule = rule_text(plan);
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
            (pair.name.clone(), result)
        });
    }
    let mut misfits = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (name, result) =
            joined.map_err(|e| Error::run(format!("a verify task panicked: {e}")))?;
        match result {
            Err(e) if widen::is_misfit(&e) => misfits.push(name),
            result => {
                results.insert(
                    name.clone(),
                    result.map_err(|e| e.context(format!("verifying \"{name}\"")))?,
                );
            }
        }
    }
    Ok((results, misfits))
}

/// Matches every planned table with the target's: the pairs to compare, and a result already
/// for each table that cannot be compared (missing in the target, columns missing).
async fn prepare(
    target: &dyn Source,
    plan: &Plan,
    check_fit: bool,
) -> Result<(BTreeMap<String, VerifyTable>, Vec<Arc<Pair>>)> {
    // Only the plan's tables are read and counted (a copy verifies one table at a time as its
    // chunks complete: `verify_stage`), unless a name would read as a glob.
    let names: Vec<String> = plan.tables.iter().map(|t| t.target_name.clone()).collect();
    let glob = |n: &String| n.trim() != n || n.contains(['*', '?', '[', ']', '{', '}', '\\', ',']);
    let filter = if names.iter().any(glob) {
        TableFilter::default()
    } else {
        TableFilter::new(&names, &[])?
    };
    let target_schema = target
        .schema(&SchemaOptions {
            filter,
            profile: false,
            sample: false,
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
                    // An array copied as a JSON array is compared as a document too: the
                    // target may space or reorder it (MySQL's JSON type).
                    documents.push(
                        tc.native_type == "jsonb"
                            || sc.native_type == "jsonb"
                            || (sc.data_type == DataType::Json && sc.native_type.ends_with(']')),
                    );
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
        pairs.push(Arc::new(Pair {
            name: t.source_name.clone(),
            source: t.source.clone(),
            target: Table {
                columns,
                ..target_table.clone()
            },
            compare,
            documents,
            key: t.key_columns.clone(),
            check_fit: check_fit && t.source.sampled && !t.existing,
        }));
    }

    Ok((results, pairs))
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

fn rule_text(plan: &Plan) -> String {
    if plan.source == plan.target && plan.capabilities.dynamic_typing {
        return format!(
            "raw {} values compared byte for byte, storage class included",
            plan.target.label()
        );
    }
    "both sides read back and converted to the column's copy type (0/1 = false/true; the same instant in any \
     offset is equal; decimals compared at the column's scale, 1.50 = 1.5 only in unconstrained columns); \
     floats bit for bit, text byte for byte, JSON as documents where a side is jsonb or the source an array \
     (copied as a JSON array)"
        .into()
}

async fn verify_table(
    source: &Arc<dyn Source>,
    target: &Arc<dyn Source>,
    pair: &Arc<Pair>,
    cancel: &CancellationToken,
) -> Result<VerifyTable> {
    let sides = (source, target, pair, cancel);
    let (s, t) = both(sides, Some(Pass::Digest), Some(Pass::Digest)).await?;
    let mut v = VerifyTable {
        source_rows: s.digest.rows,
        target_rows: t.digest.rows,
        checksum_match: s.digest.sum == t.digest.sum && s.digest.rows == t.digest.rows,
        source_digest: (s.digest.rows, s.digest.sum),
        ..Default::default()
    };
    if v.checksum_match {
        return Ok(v);
    }

    // Pass 2: (key hash, row hash) of the rows in differing buckets, as many buckets as fit
    // under the cap on each side (pass 1's per-bucket row counts say how many that is).
    let mut selected = vec![false; hash::BUCKETS];
    let (mut s_rows, mut t_rows, mut left_out) = (0usize, 0usize, 0usize);
    for (b, chosen) in selected.iter_mut().enumerate() {
        let (sb, tb) = (s.bucket_rows[b] as usize, t.bucket_rows[b] as usize);
        if s.digest.buckets[b] == t.digest.buckets[b] && sb == tb {
            continue;
        }
        if s_rows + sb <= MAX_DIFF_ROWS && t_rows + tb <= MAX_DIFF_ROWS {
            *chosen = true;
            (s_rows, t_rows) = (s_rows + sb, t_rows + tb);
        } else {
            left_out += 1;
        }
    }
    drop((s, t));
    let selected: Arc<[bool]> = selected.into();
    let (s_pass, t_pass) = (
        Pass::Collect(selected.clone(), s_rows),
        Pass::Collect(selected.clone(), t_rows),
    );
    let (s, t) = both(sides, Some(s_pass), Some(t_pass)).await?;
    let (mut s_pairs, mut t_pairs) = (s.pairs, t.pairs);
    s_pairs.sort_unstable_by_key(|p| p.0);
    t_pairs.sort_unstable_by_key(|p| p.0);
    let diff = merge(&s_pairs, &t_pairs);
    drop((s_pairs, t_pairs));
    v.missing_count = diff.missing;
    v.extra_count = diff.extra;
    v.different_count = diff.different;
    if left_out > 0 {
        v.counts_partial = Some(format!(
            "counted in {} of the {} differing key buckets (they hold over {MAX_DIFF_ROWS} rows): the counts cover only part of the table",
            selected.iter().filter(|&&b| b).count(),
            selected.iter().filter(|&&b| b).count() + left_out
        ));
    }

    // Pass 3: render only the keys shown.
    let from_source: HashSet<u64> = diff
        .missing_keys
        .iter()
        .chain(&diff.different_keys)
        .copied()
        .collect();
    let from_target: HashSet<u64> = diff.extra_keys.iter().copied().collect();
    let render = |keys: HashSet<u64>| (!keys.is_empty()).then(|| Pass::Render(Arc::new(keys)));
    let (s, t) = both(sides, render(from_source), render(from_target)).await?;
    // A key that a live source no longer has is counted but not shown.
    let shown = |keys: &[u64], side: &Side| -> Vec<String> {
        let mut out: Vec<String> = keys
            .iter()
            .filter_map(|k| side.shown.get(k).cloned())
            .collect();
        out.sort();
        out
    };
    v.missing_keys = shown(&diff.missing_keys, &s);
    v.different_keys = shown(&diff.different_keys, &s);
    v.extra_keys = shown(&diff.extra_keys, &t);
    Ok(v)
}

/// The outcome of merging both sides' sorted (key hash, row hash) lists: exact counts, and the
/// first `MAX_KEYS` key hashes of each kind.
#[derive(Default, Debug)]
struct Diff {
    missing: u64,
    extra: u64,
    different: u64,
    missing_keys: Vec<u64>,
    extra_keys: Vec<u64>,
    different_keys: Vec<u64>,
}

/// Sorted (key hash, row hash) pairs folded per key: the sum of the row hashes of every row
/// with that key (keyless tables count duplicates this way).
fn per_key(pairs: &[(u64, u64)]) -> impl Iterator<Item = (u64, u64)> + '_ {
    pairs.chunk_by(|a, b| a.0 == b.0).map(|rows| {
        (
            rows[0].0,
            rows.iter().fold(0u64, |sum, r| sum.wrapping_add(r.1)),
        )
    })
}

/// A sorted merge of the two sides by key hash.
fn merge(source: &[(u64, u64)], target: &[(u64, u64)]) -> Diff {
    fn note(count: &mut u64, keys: &mut Vec<u64>, key: u64) {
        *count += 1;
        if keys.len() < MAX_KEYS {
            keys.push(key);
        }
    }
    let mut d = Diff::default();
    let (mut s, mut t) = (per_key(source).peekable(), per_key(target).peekable());
    loop {
        match (s.peek().copied(), t.peek().copied()) {
            (None, None) => break,
            (Some((k, _)), None) => {
                note(&mut d.missing, &mut d.missing_keys, k);
                s.next();
            }
            (None, Some((k, _))) => {
                note(&mut d.extra, &mut d.extra_keys, k);
                t.next();
            }
            (Some((sk, sh)), Some((tk, th))) => match sk.cmp(&tk) {
                std::cmp::Ordering::Less => {
                    note(&mut d.missing, &mut d.missing_keys, sk);
                    s.next();
                }
                std::cmp::Ordering::Greater => {
                    note(&mut d.extra, &mut d.extra_keys, tk);
                    t.next();
                }
                std::cmp::Ordering::Equal => {
                    if sh != th {
                        note(&mut d.different, &mut d.different_keys, sk);
                    }
                    s.next();
                    t.next();
                }
            },
        }
    }
    d
}

/// What one read of a side does besides the digest.
#[derive(Clone)]
enum Pass {
    /// Only the digest (and per-bucket row counts).
    Digest,
    /// Also keep (key hash, row hash) of rows in the selected buckets (with room for this many).
    Collect(Arc<[bool]>, usize),
    /// Also render the keys of these key hashes, for the operator.
    Render(Arc<HashSet<u64>>),
}

#[derive(Default)]
struct Side {
    digest: TableDigest,
    /// Rows per key bucket (pass 1), to choose what fits under the cap in pass 2.
    bucket_rows: Vec<u32>,
    /// Pass 2: (key hash, row hash), 16 bytes a row.
    pairs: Vec<(u64, u64)>,
    /// Pass 3: key hash → the key as shown to the operator.
    shown: HashMap<u64, String>,
}

/// Reads both sides of a pair at once (`None`: that side is not read), each in a task of its
/// own: converting and hashing a side costs about as much as reading it, so the two sides
/// take a core each rather than sharing this task's. An error on one side stops the other.
async fn both(
    (source, target, pair, cancel): (
        &Arc<dyn Source>,
        &Arc<dyn Source>,
        &Arc<Pair>,
        &CancellationToken,
    ),
    source_pass: Option<Pass>,
    target_pass: Option<Pass>,
) -> Result<(Side, Side)> {
    /// Aborts the side's task when the other side's error drops it.
    struct Task(tokio::task::JoinHandle<Result<Side>>);
    impl Drop for Task {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let spawn = |reader: &Arc<dyn Source>, table: &Table, pass: Option<Pass>, fit: bool| {
        let side = pass.map(|pass| {
            let (reader, table, pair) = (reader.clone(), table.clone(), pair.clone());
            Task(tokio::spawn(digest_side(
                reader,
                table,
                pair,
                pass,
                fit,
                cancel.clone(),
            )))
        });
        async move {
            match side {
                None => Ok(Side::default()),
                Some(mut task) => (&mut task.0)
                    .await
                    .map_err(|e| Error::run(format!("a verify task failed: {e}")))?,
            }
        }
    };
    tokio::try_join!(
        spawn(source, &pair.source, source_pass, pair.check_fit),
        spawn(target, &pair.target, target_pass, false)
    )
}

/// Reads one side of a pair and hashes every row in the comparison types. With `fit`, a value
/// the source's sampled types do not hold is an error of kind `Widen`.
async fn digest_side(
    reader: Arc<dyn Source>,
    table: Table,
    pair: Arc<Pair>,
    pass: Pass,
    fit: bool,
    cancel: CancellationToken,
) -> Result<Side> {
    let (tx, mut rx) = mpsc::channel::<Batch>(2);
    let read = {
        let (reader, table) = (reader.clone(), table.clone());
        tokio::spawn(async move {
            reader
                .read(ReadRequest::new(&table, VERIFY_BATCH, tx, cancel))
                .await
        })
    };
    let mut side = Side {
        bucket_rows: vec![0; hash::BUCKETS],
        pairs: match pass {
            Pass::Collect(_, rows) => Vec::with_capacity(rows),
            _ => Vec::new(),
        },
        ..Default::default()
    };
    let mut buf = Vec::new();
    let mut key_buf = Vec::new();
    let mut row: Vec<Value> = Vec::with_capacity(pair.compare.len());
    while let Some(batch) = rx.recv().await {
        let width = batch.width;
        if width == 0 {
            continue;
        }
        // The batch is ours: its values move into the comparison types, uncopied.
        let mut values = batch.values.into_iter();
        while values.len() >= width {
            row.clear();
            for (i, v) in values.by_ref().take(width).enumerate() {
                if i < pair.compare.len() {
                    row.push(compared(v, &pair, i, fit)?);
                }
            }
            let row_hash = hash::hash_values(&row, &mut buf);
            // A keyless table's key is its whole row: the same bytes, the same hash.
            let key_hash = if pair.key.is_empty() {
                row_hash
            } else {
                key_buf.clear();
                for &k in &pair.key {
                    hash::encode_value(&row[k], &mut key_buf);
                }
                xxhash_rust::xxh3::xxh3_64(&key_buf)
            };
            side.digest.add(key_hash, row_hash);
            let bucket = hash::bucket_of(key_hash);
            side.bucket_rows[bucket] = side.bucket_rows[bucket].saturating_add(1);
            match &pass {
                Pass::Digest => {}
                Pass::Collect(selected, _) => {
                    // The cap holds even when a live source grew since pass 1.
                    if selected[bucket] && side.pairs.len() < MAX_DIFF_ROWS {
                        side.pairs.push((key_hash, row_hash));
                    }
                }
                Pass::Render(keys) => {
                    if keys.contains(&key_hash) && !side.shown.contains_key(&key_hash) {
                        side.shown.insert(key_hash, render_key(&pair, &row));
                    }
                }
            }
        }
    }
    read.await
        .map_err(|e| Error::run(format!("reader task failed: {e}")))??;
    Ok(side)
}

/// Column `i`'s value in its comparison type. A value that does not convert is hashed as read:
/// it cannot equal the other side's (with `fit`, it is a misfit of the sampled types instead).
fn compared(v: Value, pair: &Pair, i: usize, fit: bool) -> Result<Value> {
    let misfit = |v: &Value| widen::misfit_of(&pair.source.columns[i], v);
    if fit && !widen::fits_before_conversion(&v, &pair.source.columns[i].data_type) {
        return Err(misfit(&v));
    }
    let v = match &pair.compare[i] {
        Some(to) if !already(&v, to) => match convert_borrowed(&v, to) {
            Some(Ok((converted, _))) => converted,
            Some(Err(_)) if fit => return Err(misfit(&v)),
            Some(Err(_)) => v,
            None => {
                // Only a failed conversion needs the value as read (cheap but for text).
                let read = v.clone();
                match convert(v, to) {
                    Ok(converted) => converted,
                    Err(_) if fit => return Err(misfit(&read)),
                    Err(_) => read,
                }
            }
        },
        _ => v,
    };
    Ok(match v {
        Value::Json(text) if pair.documents[i] => Value::Json(canonical_json(text)),
        v => v,
    })
}

/// A key as the operator reads it: `id=7, lang=en`, or the whole row of a keyless table.
fn render_key(pair: &Pair, row_values: &[Value]) -> String {
    if pair.key.is_empty() {
        format!(
            "row ({})",
            row_values
                .iter()
                .map(Value::render)
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        pair.key
            .iter()
            .map(|&k| format!("{}={}", pair.source.columns[k].name, row_values[k].render()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_counts_each_kind_and_duplicates_of_a_keyless_row() {
        let mut source = vec![(3, 30), (1, 10), (2, 20), (2, 20), (5, 50)];
        let mut target = vec![(2, 20), (3, 31), (4, 40), (5, 50)];
        source.sort_unstable_by_key(|p| p.0);
        target.sort_unstable_by_key(|p| p.0);
        let d = merge(&source, &target);
        assert_eq!((d.missing, d.extra, d.different), (1, 1, 2));
        assert_eq!(d.missing_keys, [1]);
        assert_eq!(d.extra_keys, [4]);
        // Key 2: two identical rows in the source, one in the target.
        assert_eq!(d.different_keys, [2, 3]);
    }

    #[test]
    fn merge_counts_past_the_keys_it_lists() {
        let source: Vec<(u64, u64)> = (0..1000).map(|k| (k, k)).collect();
        let d = merge(&source, &[]);
        assert_eq!(d.missing, 1000);
        assert_eq!(d.missing_keys.len(), MAX_KEYS);
    }
}
