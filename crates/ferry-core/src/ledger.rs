//! The chunk ledger: a `ferry_ledger` table in the target recording, for one copy, the source
//! it reads, the plan's fingerprint, every chunk (bounds, state, rows) and every DDL step. A
//! chunk's rows and its ledger row commit in one transaction ([`TableWriter::commit_chunk`]),
//! and each DDL step with its mark where DDL is transactional, so a killed run leaves every
//! chunk either done and counted or absent. `--resume`, `--shard K/N` and `--finish` read it to
//! do only what is missing; a completed copy drops it (with the unfinished-tables marker).
//!
//! [`TableWriter::commit_chunk`]: crate::connector::TableWriter::commit_chunk

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use xxhash_rust::xxh3::xxh3_64;

use crate::chunks::Chunk;
use crate::connector::{Dialect, Identity, ReadRequest, SchemaOptions, Target};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::report::VerifyTable;
use crate::value::{Batch, Value};

/// The ledger table's name in the target (beside the copied tables, like the unfinished-tables
/// marker): never one of the application's, left out of every check for a non-empty target.
pub const LEDGER: &str = "ferry_ledger";

/// How long a shard other than 0 waits for shard 0 to write the ledger and create the tables.
pub const SHARD_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// What the plan looks like, to tell whether a recorded copy is this one: a hash per table of
/// its target name and columns (names, types, conversions), and one of all DDL (keys, indexes,
/// foreign keys, counters, objects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub tables: BTreeMap<String, String>,
    pub ddl: String,
}

impl Fingerprint {
    pub fn of(plan: &Plan) -> Self {
        let tables = plan
            .tables
            .iter()
            .map(|t| {
                let mut text = format!("{}|{}|{}", t.target_name, t.existing, plan.target);
                for c in &t.columns {
                    let _ = write!(
                        text,
                        "|{}:{}:{}:{}:{:?}:{}",
                        c.source_name,
                        c.target_name,
                        c.source_type,
                        c.native_type,
                        c.convert_to,
                        c.nullable
                    );
                }
                (t.source_name.clone(), hex(&text))
            })
            .collect();
        let ddl: Vec<&str> = plan.ddl.proved().map(String::as_str).collect();
        Self {
            tables,
            ddl: hex(&ddl.join("\n")),
        }
    }

    /// Why the recorded fingerprint is not this one, naming the first tables that differ.
    pub fn differs_from(&self, recorded: &Fingerprint) -> Option<String> {
        let mut why = Vec::new();
        for (name, hash) in &self.tables {
            match recorded.tables.get(name) {
                None => why.push(format!("table \"{name}\" is new")),
                Some(h) if h != hash => {
                    why.push(format!("table \"{name}\": its columns or types changed"))
                }
                Some(_) => {}
            }
        }
        for name in recorded.tables.keys() {
            if !self.tables.contains_key(name) {
                why.push(format!("table \"{name}\" is no longer copied"));
            }
        }
        if why.is_empty() && self.ddl != recorded.ddl {
            why.push("its keys, indexes, foreign keys or other objects changed".into());
        }
        if why.is_empty() {
            return None;
        }
        let more = why.len().saturating_sub(3);
        why.truncate(3);
        if more > 0 {
            why.push(format!("and {more} more"));
        }
        Some(why.join(", "))
    }
}

fn hex(text: &str) -> String {
    format!("{:016x}", xxh3_64(text.as_bytes()))
}

/// The ledger's run row: which source, which plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// The source's identity key (never a credential).
    pub source: String,
    /// The source, for messages.
    pub source_label: String,
    pub fingerprint: Fingerprint,
    pub chunk_rows: u64,
}

impl RunInfo {
    pub fn new(identity: Option<Identity>, redacted: String, plan: &Plan, chunk_rows: u64) -> Self {
        let (source, source_label) = match identity {
            Some(i) => (i.key(), i.label),
            None => (redacted.clone(), redacted),
        };
        Self {
            source,
            source_label,
            fingerprint: Fingerprint::of(plan),
            chunk_rows,
        }
    }
}

/// A chunk and what the ledger says of it.
#[derive(Debug, Clone)]
pub struct ChunkState {
    pub chunk: Chunk,
    pub done: bool,
    /// Rows written (and rows rejected into reject files) when it committed.
    pub rows: u64,
    pub failed: u64,
}

/// One copy's ledger, as read from the target or about to be written.
#[derive(Debug, Clone)]
pub struct Ledger {
    pub info: RunInfo,
    pub chunks: Vec<ChunkState>,
    /// Step 0 creates the tables; steps 1.. are [`post_steps`], in order.
    pub steps: Vec<bool>,
    /// Whether it is in the target already (a resumed run) or still to be written.
    pub recorded: bool,
    /// Tables (source names) whose verification matched, with its result ([`mark_verified`]).
    pub verified: BTreeMap<String, VerifyTable>,
}

/// What this run was asked to do with a ledger it finds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    pub resume: bool,
    pub shard: Option<(u64, u64)>,
    pub finish: bool,
    pub force: bool,
    /// Helping the run that wrote the ledger (`CopyOptions::claims` with `join`): it must exist.
    pub join: bool,
}

impl Mode {
    /// Whether the run continues a recorded copy rather than refusing it.
    pub fn continues(self) -> bool {
        self.resume || self.shard.is_some() || self.finish || self.join
    }
}

impl Ledger {
    /// A new ledger for `chunks`, every chunk and step still to do.
    pub fn new(info: RunInfo, chunks: Vec<Chunk>, plan: &Plan) -> Self {
        Self {
            info,
            chunks: chunks
                .into_iter()
                .map(|chunk| ChunkState {
                    chunk,
                    done: false,
                    rows: 0,
                    failed: 0,
                })
                .collect(),
            steps: vec![false; 1 + post_steps(plan).len()],
            recorded: false,
            verified: BTreeMap::new(),
        }
    }

    pub fn done_chunks(&self) -> usize {
        self.chunks.iter().filter(|c| c.done).count()
    }

    /// Whether the run may go on with `found`, the ledger in the target: `Ok(None)` when it
    /// starts afresh (writing `this` run's ledger), `Ok(Some)` when it continues `found`.
    ///
    /// # Errors
    /// An input error saying why the run cannot use what it found, and what to pass.
    pub fn decide(found: Option<Ledger>, this: &RunInfo, mode: Mode) -> Result<Option<Ledger>> {
        let Some(found) = found else {
            if mode.join {
                return Err(Error::input(
                    "there is no ferry ledger in the target to help with (the copy has not written it yet, or it is complete)",
                ));
            }
            if mode.finish {
                return Err(Error::input(
                    "--finish found no ferry ledger in the target: run the shards first (ferry copy --shard K/N), then --finish once",
                ));
            }
            return Ok(None);
        };
        let mismatch = if found.info.source != this.source {
            Some(format!(
                "it records a copy of another source ({})",
                found.info.source_label
            ))
        } else {
            this.fingerprint
                .differs_from(&found.info.fingerprint)
                .map(|why| format!("the source's schema changed since it was written: {why}"))
        };
        let progress = format!(
            "{} of {} chunks done",
            found.done_chunks(),
            found.chunks.len()
        );
        match (mismatch, mode.continues()) {
            (None, true) => Ok(Some(found)),
            (Some(_), _) if mode.force && !mode.finish => Ok(None),
            (Some(why), true) => Err(Error::input(format!(
                "cannot resume the copy recorded in the target's ledger ({progress}): {why}; use --force to erase the target's tables and copy again"
            ))),
            (None, false) if mode.force => Ok(None),
            (None, false) => Err(Error::input(format!(
                "the target holds the ledger of an unfinished ferry copy of this source ({progress}): rerun with --resume to finish it, or --force to erase it and start over"
            ))),
            (Some(why), false) => Err(Error::input(format!(
                "the target holds the ledger of an unfinished ferry copy ({progress}; {why}): use --force to erase it and start over, or choose an empty target"
            ))),
        }
    }

    /// `--finish`: every chunk must be done; otherwise the missing ones, named.
    ///
    /// # Errors
    /// An input error naming the chunks not done (at most ten) and their shard numbers.
    pub fn check_finished(&self, shards: Option<u64>) -> Result<()> {
        let missing: Vec<&ChunkState> = self.chunks.iter().filter(|c| !c.done).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = missing
            .iter()
            .take(10)
            .map(|c| {
                let shard = shards
                    .map(|n| format!(", shard {}/{n}", c.chunk.index % n))
                    .unwrap_or_default();
                match c.chunk.range {
                    Some((lo, hi)) => format!(
                        "chunk {} (\"{}\" {lo}..{hi}{shard})",
                        c.chunk.index, c.chunk.table
                    ),
                    None => format!("chunk {} (\"{}\"{shard})", c.chunk.index, c.chunk.table),
                }
            })
            .collect();
        Err(Error::input(format!(
            "--finish refuses: {} of {} chunks are not done: {}{}; rerun the shards that own them (same --shard K/N), then --finish",
            missing.len(),
            self.chunks.len(),
            names.join(", "),
            if missing.len() > 10 { ", ..." } else { "" }
        )))
    }

    /// The statements writing this ledger into the target: the table, then its rows in one
    /// transaction (with the table too where DDL is transactional), so a reader sees all of it
    /// or none of its rows.
    pub fn create_statements(&self, transactional_ddl: bool) -> Vec<String> {
        let create = format!(
            "CREATE TABLE {LEDGER} (kind varchar(16) NOT NULL, id bigint NOT NULL, table_name varchar(255), lo bigint, hi bigint, state varchar(16) NOT NULL, row_count bigint, failed bigint, info text, claimed_by varchar(255), claim_until bigint, PRIMARY KEY (kind, id))"
        );
        let info = serde_json::to_string(&self.info).unwrap_or_default();
        let mut rows = vec![format!(
            "('run', 0, NULL, NULL, NULL, 'running', NULL, NULL, {})",
            literal(&info)
        )];
        for c in &self.chunks {
            let (lo, hi) = match c.chunk.range {
                Some((lo, hi)) => (lo.to_string(), hi.to_string()),
                None => ("NULL".into(), "NULL".into()),
            };
            rows.push(format!(
                "('chunk', {}, {}, {lo}, {hi}, '{}', {}, {}, NULL)",
                c.chunk.index,
                literal(&c.chunk.table),
                if c.done { "done" } else { "pending" },
                c.rows,
                c.failed
            ));
        }
        for (i, done) in self.steps.iter().enumerate() {
            rows.push(format!(
                "('step', {i}, NULL, NULL, NULL, '{}', NULL, NULL, NULL)",
                if *done { "done" } else { "pending" }
            ));
        }
        let mut out = Vec::new();
        if !transactional_ddl {
            out.push(create.clone());
        }
        out.push("BEGIN".into());
        if transactional_ddl {
            out.push(create);
        }
        for part in rows.chunks(500) {
            out.push(format!(
                "INSERT INTO {LEDGER} (kind, id, table_name, lo, hi, state, row_count, failed, info) VALUES {}",
                part.join(", ")
            ));
        }
        out.push("COMMIT".into());
        out
    }

    /// Reads the ledger in the target; `None` when it has no run row (a run killed while
    /// writing it, before anything else was done).
    ///
    /// # Errors
    /// When the target cannot be read or the ledger is not ferry's.
    pub async fn read(target: &dyn Target, cancel: &CancellationToken) -> Result<Option<Ledger>> {
        let rows = read_own_table(
            target,
            LEDGER,
            &[
                "kind",
                "id",
                "table_name",
                "lo",
                "hi",
                "state",
                "row_count",
                "failed",
                "info",
            ],
            cancel,
        )
        .await?;
        let bad = || {
            Error::input(format!(
                "the target's {LEDGER} table is not a ferry ledger: drop it, or use --force"
            ))
        };
        let (int, text) = (cell_int, cell_text);
        let mut info = None;
        let mut chunks = Vec::new();
        let mut steps = BTreeMap::new();
        let mut verified = BTreeMap::new();
        for row in &rows {
            let kind = text(&row[0]).ok_or_else(bad)?;
            let id = int(&row[1]).ok_or_else(bad)?;
            let done = text(&row[5]).as_deref() == Some("done");
            match kind.as_str() {
                "run" => {
                    info = Some(
                        serde_json::from_str::<RunInfo>(&text(&row[8]).ok_or_else(bad)?)
                            .map_err(|_| bad())?,
                    )
                }
                "chunk" => chunks.push(ChunkState {
                    chunk: Chunk {
                        index: id as u64,
                        table: text(&row[2]).ok_or_else(bad)?,
                        range: int(&row[3]).zip(int(&row[4])),
                    },
                    done,
                    rows: int(&row[6]).unwrap_or(0) as u64,
                    failed: int(&row[7]).unwrap_or(0) as u64,
                }),
                "step" => {
                    steps.insert(id, done);
                }
                // A migrate's rewrite mark ([`mark_rewritten`]): not the copy's business.
                "rewrite" => {}
                "verify" => {
                    let result =
                        serde_json::from_str::<VerifyTable>(&text(&row[8]).ok_or_else(bad)?)
                            .map_err(|_| bad())?;
                    verified.insert(text(&row[2]).ok_or_else(bad)?, result);
                }
                _ => return Err(bad()),
            }
        }
        let Some(info) = info else { return Ok(None) };
        chunks.sort_by_key(|c| c.chunk.index);
        Ok(Some(Ledger {
            info,
            chunks,
            steps: steps.into_values().collect(),
            recorded: true,
            verified,
        }))
    }
}

/// The ledger this run continues, if any: reads the target's (`present`: it lists one), lets a
/// shard other than 0 wait for shard 0 to write it and create the tables, and decides
/// ([`Ledger::decide`]).
///
/// # Errors
/// What [`Ledger::decide`] refuses; a shard that waited [`SHARD_WAIT`] in vain; a target that
/// cannot be read.
pub async fn find(
    target: &dyn Target,
    present: bool,
    this: &RunInfo,
    mode: Mode,
    cx: &crate::engine::Context,
) -> Result<Option<Ledger>> {
    let mut found = if present {
        Ledger::read(target, &cx.cancel).await?
    } else {
        None
    };
    if let Some((k, n)) = mode.shard
        && k != 0
    {
        let started = std::time::Instant::now();
        let mut last_error = None;
        let ready = |l: &Option<Ledger>| l.as_ref().is_some_and(|l| l.steps.first() == Some(&true));
        if !ready(&found) {
            cx.observer.event(&crate::progress::Event::Phase(format!(
                "Waiting for shard 0/{n} to write the ledger and create the tables"
            )));
        }
        while !ready(&found) {
            if started.elapsed() > SHARD_WAIT {
                return Err(Error::run(format!(
                    "shard {k}/{n}: shard 0 did not write the ledger and create the tables within {} s{}; start shard 0 (--shard 0/{n}) and rerun this one",
                    SHARD_WAIT.as_secs(),
                    last_error
                        .map(|e: Error| format!(" (last read: {e})"))
                        .unwrap_or_default()
                )));
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                () = cx.cancel.cancelled() => return Err(Error::cancelled()),
            }
            // A target shard 0 has not created yet (a SQLite file) cannot be read: not yet.
            found = match Ledger::read(target, &cx.cancel).await {
                Ok(l) => l,
                Err(e) => {
                    last_error = Some(e);
                    None
                }
            };
        }
    }
    Ledger::decide(found, this, mode)
}

/// Marks chunk `index` done with its counts, only if it is still pending: run in the chunk's
/// own transaction, it changes one row when this run is the first to finish the chunk, and
/// none when another worker committed it first (then the caller rolls its copy back).
pub fn claim_chunk(index: u64, rows: u64, failed: u64) -> String {
    format!(
        "UPDATE {LEDGER} SET state = 'done', row_count = {rows}, failed = {failed} WHERE kind = 'chunk' AND id = {index} AND state = 'pending'"
    )
}

/// Claims pending chunk `index` for `worker` until `until_ms` (unix ms), when no one holds it
/// or its holder's claim ran out before `now_ms`: one conditional update, committed on its own,
/// so of several workers trying at once exactly one changes the row (the row lock, or SQLite's
/// single writer, decides). Changing one row means the chunk is this worker's to copy; its
/// commit is still [`claim_chunk`], so a worker whose claim ran out and was taken over cannot
/// count the chunk twice: whichever commits first keeps it, the other rolls back.
pub fn claim_lease(index: u64, worker: &str, until_ms: i64, now_ms: i64) -> String {
    format!(
        "UPDATE {LEDGER} SET claimed_by = {}, claim_until = {until_ms} WHERE kind = 'chunk' AND id = {index} AND state = 'pending' AND (claimed_by IS NULL OR claim_until IS NULL OR claim_until < {now_ms})",
        literal(worker)
    )
}

/// Extends every claim `worker` holds on a pending chunk to `until_ms`: the heartbeat of a
/// worker's claims (a claim another worker took over after it ran out is not this one's).
pub fn renew_leases(worker: &str, until_ms: i64) -> String {
    format!(
        "UPDATE {LEDGER} SET claim_until = {until_ms} WHERE kind = 'chunk' AND state = 'pending' AND claimed_by = {}",
        literal(worker)
    )
}

/// Gives back the claims `worker` holds on chunks it did not commit (it stopped: cancelled,
/// failed), so other workers need not wait for them to run out.
pub fn release_leases(worker: &str) -> String {
    format!(
        "UPDATE {LEDGER} SET claimed_by = NULL, claim_until = NULL WHERE kind = 'chunk' AND state = 'pending' AND claimed_by = {}",
        literal(worker)
    )
}

/// A ledger cell as text (MySQL may hand text columns back as bytes).
fn cell_text(v: &Value) -> Option<String> {
    match v {
        Value::Text(s) => Some(s.clone()),
        Value::Bytes(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

/// A ledger cell as an integer (as the backends hand back `bigint`).
fn cell_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Decimal(s) | Value::Text(s) => s.parse().ok(),
        _ => None,
    }
}

/// Per table, in name order, the rows and failures of the chunks counted: every table with
/// chunks is listed, at zero when none of its chunks counts.
fn totals<'a>(chunks: impl Iterator<Item = (&'a str, bool, u64, u64)>) -> Vec<(String, u64, u64)> {
    let mut totals: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (table, counted, rows, failed) in chunks {
        let entry = totals.entry(table).or_default();
        if counted {
            entry.0 += rows;
            entry.1 += failed;
        }
    }
    totals
        .into_iter()
        .map(|(table, (rows, failed))| (table.to_string(), rows, failed))
        .collect()
}

/// Per table (source name, every table with chunks), the rows and failures of `chunks` done.
pub fn done_by_table(chunks: &[ChunkState]) -> Vec<(String, u64, u64)> {
    totals(
        chunks
            .iter()
            .map(|c| (c.chunk.table.as_str(), c.done, c.rows, c.failed)),
    )
}

/// Per table (source name), the rows and failures of the chunks committed in the target's
/// ledger by every worker but `worker` (whose own rows its run counts as it writes them): a
/// chunk counts for the worker whose claim it carries, so each committed chunk counts once.
///
/// # Errors
/// When the target cannot be read or the ledger is not ferry's.
pub async fn committed_by_others(
    target: &dyn Target,
    worker: &str,
    cancel: &CancellationToken,
) -> Result<Vec<(String, u64, u64)>> {
    let columns = [
        "kind",
        "table_name",
        "state",
        "row_count",
        "failed",
        "claimed_by",
    ];
    let rows = read_own_table(target, LEDGER, &columns, cancel).await?;
    let count = |v: &Value| cell_int(v).and_then(|i| u64::try_from(i).ok()).unwrap_or(0);
    let chunks: Vec<(String, bool, u64, u64)> = rows
        .iter()
        .filter(|row| cell_text(&row[0]).as_deref() == Some("chunk"))
        .filter_map(|row| {
            let by_other = cell_text(&row[2]).as_deref() == Some("done")
                && cell_text(&row[5]).as_deref() != Some(worker);
            Some((
                cell_text(&row[1])?,
                by_other,
                count(&row[3]),
                count(&row[4]),
            ))
        })
        .collect();
    Ok(totals(
        chunks.iter().map(|(t, c, r, f)| (t.as_str(), *c, *r, *f)),
    ))
}

/// Records that `table` (source name) was verified equal, with the result a resumed run reports
/// instead of reading the table again. Written only once every chunk of the table is committed
/// and the comparison matched; why that is safe to trust after a kill is in `engine::verified`.
pub fn mark_verified(table: &str, result: &VerifyTable) -> String {
    // The row's id only has to be unique among verify rows: the table name's hash.
    let id = xxh3_64(table.as_bytes()) >> 1;
    let info = serde_json::to_string(result).unwrap_or_default();
    format!(
        "INSERT INTO {LEDGER} (kind, id, table_name, state, info) VALUES ('verify', {id}, {}, 'done', {})",
        literal(table),
        literal(&info)
    )
}

/// Marks DDL step `index` done.
pub fn mark_step(index: usize) -> String {
    format!("UPDATE {LEDGER} SET state = 'done' WHERE kind = 'step' AND id = {index}")
}

/// Sets every chunk of `table` (source name) back to pending: its target table was created
/// again (`widen`: retyped after a sample's misfit), so the rows of its done chunks are gone.
pub fn reset_table_statement(table: &str) -> String {
    format!(
        "UPDATE {LEDGER} SET state = 'pending', row_count = 0, failed = 0 WHERE kind = 'chunk' AND table_name = {}",
        literal(table)
    )
}

/// Drops the ledger (a completed copy, or `--force` starting over).
pub fn drop_statement() -> String {
    format!("DROP TABLE IF EXISTS {LEDGER}")
}

/// The statements that end a copy whose ledger a caller kept ([`CopyOptions::keep_ledger`]):
/// the ledger and the unfinished-tables marker go together, as a completed copy drops them.
///
/// [`CopyOptions::keep_ledger`]: crate::engine::CopyOptions::keep_ledger
pub fn finished_statements(transactional_ddl: bool) -> Vec<String> {
    atomic(
        vec![
            drop_statement(),
            format!("DROP TABLE IF EXISTS {}", crate::engine::UNFINISHED),
        ],
        transactional_ddl,
    )
}

/// Records that a migrate rewrote the stored file locations of the rows its (kept) ledger
/// copied: `rules` identifies the rewrite. Run in the rewrite's own transaction, so a kill
/// leaves both the rewritten rows and the mark, or neither: a resumed migrate never applies
/// a rewrite twice (a prefix replaced twice would corrupt a location whose new prefix starts
/// with the old one).
pub fn mark_rewritten(rules: &str) -> String {
    format!(
        "INSERT INTO {LEDGER} (kind, id, table_name, lo, hi, state, row_count, failed, info) VALUES ('rewrite', 0, NULL, NULL, NULL, 'done', NULL, NULL, {})",
        literal(rules)
    )
}

/// The rewrite [`mark_rewritten`] recorded in the target's ledger, if any.
///
/// # Errors
/// When the target cannot be read.
pub async fn rewritten(target: &dyn Target, cancel: &CancellationToken) -> Result<Option<String>> {
    let rows = read_own_table(target, LEDGER, &["kind", "info"], cancel).await?;
    Ok(rows.into_iter().find_map(|row| match (&row[0], &row[1]) {
        (Value::Text(kind), Value::Text(info)) if kind == "rewrite" => Some(info.clone()),
        _ => None,
    }))
}

/// The phase of [`post_steps`] adding foreign keys (the orphan check comes just before it).
pub const FOREIGN_KEYS: &str = "Adding foreign keys";

/// The DDL statements that run after the rows, each a ledger step (numbered from 1), with the
/// phase each belongs to.
pub fn post_steps(plan: &Plan) -> Vec<(&'static str, &String)> {
    [
        (KEYS, &plan.ddl.indexes),
        (FOREIGN_KEYS, &plan.ddl.foreign_keys),
        (
            "Moving identity counters past the copied rows",
            &plan.ddl.sequences,
        ),
        (
            "Recreating views, triggers and other objects",
            &plan.ddl.objects,
        ),
        (ANALYZE, &plan.ddl.analyze),
    ]
    .into_iter()
    .flat_map(|(phase, statements)| statements.iter().map(move |s| (phase, s)))
    .collect()
}

/// The phase of [`post_steps`] building primary keys, unique keys and indexes.
pub const KEYS: &str = "Creating primary keys and indexes";

/// The last phase of [`post_steps`]: statistics.
pub const ANALYZE: &str = "Analyzing";

/// The key, index and statistics steps of each table (source name), numbered as in
/// [`post_steps`], with their statements: those the dialect writes for that table alone. They
/// may run as soon as the table's rows are all in, each with its mark, as the later steps do.
/// A statement of no single table (or of two) stays with the steps run after every table's
/// rows.
pub fn key_steps(
    plan: &Plan,
    dialect: &dyn Dialect,
) -> BTreeMap<String, Vec<(usize, &'static str, String)>> {
    let base = Plan {
        tables: Vec::new(),
        objects: Vec::new(),
        ..plan.clone()
    };
    let mut owner: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    let own: Vec<(String, Vec<String>)> = plan
        .tables
        .iter()
        .map(|t| {
            let one = Plan {
                tables: vec![t.clone()],
                ..base.clone()
            };
            let ddl = dialect.ddl(&one);
            let mut statements = ddl.indexes;
            statements.extend(ddl.analyze);
            (t.source_name.clone(), statements)
        })
        .collect();
    for (table, statements) in &own {
        for s in statements {
            owner
                .entry(s.as_str())
                .and_modify(|o| *o = None)
                .or_insert(Some(table.as_str()));
        }
    }
    let mut out: BTreeMap<String, Vec<(usize, &'static str, String)>> = BTreeMap::new();
    for (i, (phase, statement)) in post_steps(plan).into_iter().enumerate() {
        if phase != KEYS && phase != ANALYZE {
            continue;
        }
        if let Some(Some(table)) = owner.get(statement.as_str()) {
            out.entry((*table).to_string())
                .or_default()
                .push((i + 1, phase, statement.clone()));
        }
    }
    out
}

/// `statements` as one transaction where the target's DDL is transactional (each statement
/// with its ledger mark, so a kill leaves both or neither).
pub fn atomic(statements: Vec<String>, transactional_ddl: bool) -> Vec<String> {
    if !transactional_ddl {
        return statements;
    }
    let mut out = Vec::with_capacity(statements.len() + 2);
    out.push("BEGIN".to_string());
    out.extend(statements);
    out.push("COMMIT".to_string());
    out
}

/// A text literal for every target (sessions use standard strings: only quotes double).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Whether `name` is the ledger's (how a target lists it).
pub fn is_ledger(name: &str) -> bool {
    name.eq_ignore_ascii_case(LEDGER)
}

/// The rows of one of ferry's own tables in the target (the ledger, the unfinished-tables
/// marker), as `columns` name them; empty when the table does not exist.
///
/// # Errors
/// When the target cannot be read, or a column is missing.
pub async fn read_own_table(
    target: &dyn Target,
    name: &str,
    columns: &[&str],
    cancel: &CancellationToken,
) -> Result<Vec<Vec<Value>>> {
    // One reader: a MySQL source then takes no global lock for its snapshot.
    let first = target.as_source().await?;
    first.expect_readers(1);
    let schema = first
        .schema(&SchemaOptions {
            filter: crate::filter::TableFilter::new(&[name.to_string()], &[])?,
            profile: false,
            sample: false,
        })
        .await?;
    let Some(table) = schema
        .tables
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
    else {
        return Ok(Vec::new());
    };
    let positions: Vec<usize> = columns
        .iter()
        .map(|c| {
            table
                .columns
                .iter()
                .position(|tc| tc.name.eq_ignore_ascii_case(c))
                .ok_or_else(|| {
                    Error::input(format!(
                        "the target's table {name} has no column {c}: it is not ferry's; drop it, or use --force"
                    ))
                })
        })
        .collect::<Result<_>>()?;
    // Read through a second source that holds no snapshot: the first one's open transaction
    // keeps a lock on this table, and a running job's `DROP TABLE` queued behind that lock would
    // queue this read behind itself, so both would wait for each other forever (PostgreSQL
    // cannot see the cycle, which runs through ferry). The first source is gone by now.
    drop(first);
    let reader = target.as_source().await?;
    reader.expect_readers(1);
    let (tx, mut rx) = mpsc::channel::<Batch>(2);
    let read = {
        let (reader, table, cancel) = (reader.clone(), table.clone(), cancel.clone());
        tokio::spawn(async move {
            reader
                .read(ReadRequest::new(&table, 1000, tx, cancel))
                .await
        })
    };
    let mut rows = Vec::new();
    while let Some(batch) = rx.recv().await {
        for row in batch.rows() {
            rows.push(positions.iter().map(|&i| row[i].clone()).collect());
        }
    }
    read.await
        .map_err(|e| Error::run(format!("reader task failed: {e}")))??;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(tables: &[(&str, &str)], ddl: &str) -> Fingerprint {
        Fingerprint {
            tables: tables
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ddl: ddl.into(),
        }
    }

    #[test]
    fn a_changed_plan_says_which_tables_changed() {
        let before = fp(&[("users", "1"), ("posts", "2")], "d");
        assert_eq!(before.differs_from(&before), None);
        let after = fp(&[("users", "9"), ("tags", "3")], "d");
        let why = after.differs_from(&before).unwrap();
        assert_eq!(
            why,
            "table \"tags\" is new, table \"users\": its columns or types changed, table \"posts\" is no longer copied"
        );
        let keys = fp(&[("users", "1"), ("posts", "2")], "e");
        assert!(keys.differs_from(&before).unwrap().contains("indexes"));
    }

    fn info(source: &str) -> RunInfo {
        RunInfo {
            source: source.into(),
            source_label: source.into(),
            fingerprint: fp(&[("t", "1")], "d"),
            chunk_rows: 10,
        }
    }

    fn found(source: &str) -> Ledger {
        Ledger {
            info: info(source),
            chunks: vec![ChunkState {
                chunk: Chunk {
                    index: 0,
                    table: "t".into(),
                    range: None,
                },
                done: true,
                rows: 5,
                failed: 0,
            }],
            steps: vec![true],
            recorded: true,
            verified: BTreeMap::new(),
        }
    }

    #[test]
    fn a_rerun_refuses_a_ledger_unless_told_to_resume_or_erase() {
        let this = info("a");
        let plain = Mode::default();
        let e = Ledger::decide(Some(found("a")), &this, plain).unwrap_err();
        assert!(e.to_string().contains("rerun with --resume"), "{e}");
        let resume = Mode {
            resume: true,
            ..plain
        };
        assert!(
            Ledger::decide(Some(found("a")), &this, resume)
                .unwrap()
                .is_some()
        );
        let e = Ledger::decide(Some(found("b")), &this, resume).unwrap_err();
        assert!(e.to_string().contains("another source (b)"), "{e}");
        let force = Mode {
            force: true,
            ..plain
        };
        assert!(
            Ledger::decide(Some(found("a")), &this, force)
                .unwrap()
                .is_none()
        );
        let finish = Mode {
            finish: true,
            ..plain
        };
        let e = Ledger::decide(None, &this, finish).unwrap_err();
        assert!(e.to_string().contains("no ferry ledger"), "{e}");
    }
}
