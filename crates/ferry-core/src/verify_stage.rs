//! Verification as a stage of a copy that keeps a ledger: a table is verified as soon as every
//! one of its chunks is committed (while other tables still copy and keys are built), each
//! match is recorded in the ledger, and a resumed run reports recorded matches instead of
//! reading those tables again. A kill then costs the verification of the tables it interrupted,
//! not of the whole database.
//!
//! Why a recorded match may be trusted after a kill (also in docs/copy.md, "Resume"):
//! - it is written only after the table's copy ended with every chunk committed, and only when
//!   both sides were read back in full and their row counts and content digests were equal;
//! - rows a kill can lose are those of uncommitted transactions, and the comparison read the
//!   target's committed rows, so a kill after it cannot take back a row it counted;
//! - nothing writes a table's rows once all its chunks are committed: what comes after (keys,
//!   indexes, foreign keys, counters, objects, statistics) changes no row, the orphan check
//!   only reads, and the one rewrite of a table (`widen`, retyped after a misfit) happens only
//!   while one of its chunks is still being copied, before its copy ended;
//! - the ledger itself is only reused for the same source and plan (its fingerprint): a
//!   changed schema refuses the resume. Rows the source changes after a table was verified are
//!   not seen, exactly as in an uninterrupted run, which verifies each table once too.
//!
//! A comparison made early that does not match is not trusted either way: the table is compared
//! again at the end of the run (another worker may still have been committing its chunks), and
//! only that result is reported.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::connector::{Source, Target};
use crate::engine::Context;
use crate::error::{Error, Result};
use crate::killpoint;
use crate::ledger::{self, Ledger};
use crate::plan::{Plan, TablePlan};
use crate::progress::Event;
use crate::report::VerifyTable;

enum Message {
    /// Every chunk of this table is committed.
    Copied(Arc<TablePlan>),
    /// The rows are in and the DDL steps come: finish what is under way (`workers` at once),
    /// start nothing more until [`Message::Finish`], then answer.
    Pause(usize, oneshot::Sender<()>),
    /// The run's rows and keys are done: verify whatever is left, `workers` tables at once.
    Finish(Vec<TablePlan>, usize),
}

/// The running stage; [`Stage::notify`] is handed to the copy.
pub struct Stage {
    tx: mpsc::UnboundedSender<Message>,
    task: JoinHandle<Result<BTreeMap<String, VerifyTable>>>,
    cancel: CancellationToken,
}

/// Where a copy reports a table whose chunks are all committed (`None`: verification waits for
/// the end of the run).
#[derive(Clone)]
pub struct Notify(Option<mpsc::UnboundedSender<Message>>);

impl Notify {
    pub fn none() -> Self {
        Self(None)
    }

    /// Every chunk of `table` is committed: it may be verified now.
    pub fn copied(&self, table: &Arc<TablePlan>) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(Message::Copied(table.clone()));
        }
    }

    /// The rows are in: waits for the comparisons under way (`workers` at once), and holds
    /// off new ones until the end of the run. A comparison must not overlap the DDL steps:
    /// its snapshot's lock on a table would hold off a key added to it, and its next read of
    /// that table would queue behind the key, a wait through ferry the database cannot see.
    pub async fn pause(&self, workers: usize) {
        if let Some(tx) = &self.0 {
            let (done, wait) = oneshot::channel();
            if tx.send(Message::Pause(workers.max(1), done)).is_ok() {
                let _ = wait.await;
            }
        }
    }
}

impl Stage {
    /// Starts the stage: tables the ledger records as verified are done; the copy hands over
    /// the others as their chunks are all committed (those committed before this run too,
    /// once their keys are built). With `early` false (a target
    /// that cannot be read while it is written: a SQLite file, whose readers would hold off the
    /// ledger's writes) nothing is verified before [`Stage::finish`] and nothing is recorded.
    pub fn start(
        source: Arc<dyn Source>,
        target: Arc<dyn Target>,
        plan: &Plan,
        ledger: &Ledger,
        early: bool,
        cx: &Context,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let cancel = cx.cancel.child_token();
        let base = Plan {
            tables: Vec::new(),
            ..plan.clone()
        };
        let recorded = ledger.verified.clone();
        let cx = Context {
            observer: cx.observer.clone(),
            confirm: cx.confirm.clone(),
            cancel: cancel.clone(),
        };
        let task = tokio::spawn(run(source, target, base, recorded, rx, cx, early));
        Self { tx, task, cancel }
    }

    /// What the copy calls when a table's chunks are all committed.
    pub fn notify(&self, early: bool) -> Notify {
        Notify(early.then(|| self.tx.clone()))
    }

    /// Verifies every table of `plan` not verified yet (and, again, any early comparison that
    /// did not match) and returns every table's result, recorded ones included.
    ///
    /// # Errors
    /// When a side cannot be read (a difference is a result, not an error).
    pub async fn finish(
        self,
        plan: &Plan,
        workers: usize,
    ) -> Result<BTreeMap<String, VerifyTable>> {
        let _ = self
            .tx
            .send(Message::Finish(plan.tables.clone(), workers.max(1)));
        drop(self.tx);
        self.task
            .await
            .map_err(|e| Error::run(format!("the verify task panicked: {e}")))?
    }

    /// The run failed: comparisons under way stop (what they recorded stays true).
    pub fn abandon(self) {
        self.cancel.cancel();
    }
}

/// The stage's task: one table at a time while the copy runs (the copy keeps the cores), then
/// `workers` at once. Returns every table's result.
async fn run(
    source: Arc<dyn Source>,
    target: Arc<dyn Target>,
    base: Plan,
    mut results: BTreeMap<String, VerifyTable>,
    mut rx: mpsc::UnboundedReceiver<Message>,
    cx: Context,
    record: bool,
) -> Result<BTreeMap<String, VerifyTable>> {
    let permits = Arc::new(Semaphore::new(1));
    let mut seen: BTreeSet<String> = results.keys().cloned().collect();
    let mut tasks: JoinSet<(String, Result<VerifyTable>, bool)> = JoinSet::new();
    let (base, cx) = (Arc::new(base), Arc::new(cx));
    let spawn = |tasks: &mut JoinSet<_>, table: TablePlan, at_end: bool| {
        let (source, target, base, cx, permits) = (
            source.clone(),
            target.clone(),
            base.clone(),
            cx.clone(),
            permits.clone(),
        );
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            let name = table.source_name.clone();
            let result = one(source, target, &base, table, &cx, record).await;
            (name, result, at_end)
        });
    };
    // Early comparisons that did not match (or could not read): compared again at the end.
    let mut again: Vec<String> = Vec::new();
    let mut paused = false;
    let last = loop {
        let message = tokio::select! {
            m = rx.recv() => m,
            () = cx.cancel.cancelled() => None,
        };
        match message {
            Some(Message::Copied(table)) => {
                if !paused && seen.insert(table.source_name.clone()) {
                    spawn(&mut tasks, (*table).clone(), false);
                }
            }
            Some(Message::Pause(workers, done)) => {
                paused = true;
                permits.add_permits(workers.saturating_sub(1));
                while let Some(joined) = tasks.join_next().await {
                    let (name, result, _) =
                        joined.map_err(|e| Error::run(format!("a verify task panicked: {e}")))?;
                    match result {
                        Ok(v) if v.ok() => {
                            results.insert(name, v);
                        }
                        _ => again.push(name),
                    }
                }
                let _ = done.send(());
            }
            Some(Message::Finish(tables, workers)) => {
                cx.observer.event(&Event::Phase("Verifying".into()));
                if !paused {
                    permits.add_permits(workers.saturating_sub(1));
                }
                for t in &tables {
                    let retry = again.contains(&t.source_name);
                    if seen.insert(t.source_name.clone()) || retry {
                        spawn(&mut tasks, t.clone(), true);
                    }
                }
                break tables;
            }
            // The run ended without finishing (failed, cancelled): nothing to report.
            None => {
                tasks.shutdown().await;
                return Ok(BTreeMap::new());
            }
        }
    };
    while let Some(joined) = tasks.join_next().await {
        let (name, result, at_end) =
            joined.map_err(|e| Error::run(format!("a verify task panicked: {e}")))?;
        match result {
            Ok(v) if v.ok() || at_end => {
                results.insert(name, v);
            }
            Err(e) if at_end => {
                tasks.shutdown().await;
                return Err(e);
            }
            _ => {
                if let Some(t) = last.iter().find(|t| t.source_name == name) {
                    spawn(&mut tasks, t.clone(), true);
                }
            }
        }
    }
    Ok(results)
}

/// Verifies one table and, when it matches, records it in the ledger.
async fn one(
    source: Arc<dyn Source>,
    target: Arc<dyn Target>,
    base: &Plan,
    table: TablePlan,
    cx: &Context,
    record: bool,
) -> Result<VerifyTable> {
    let name = table.source_name.clone();
    let plan = Plan {
        tables: vec![table],
        ..base.clone()
    };
    // A reader of its own per table: its transaction ends with the table, so it never holds a
    // lock that a key being added to another table would queue behind.
    let reader = target.as_source().await?;
    // One reader: a MySQL target then takes no global lock for its snapshot.
    reader.expect_readers(1);
    let mut results = crate::verify::verify_plan(source, reader, &plan, 1, cx).await?;
    let v = results
        .remove(&name)
        .ok_or_else(|| Error::run(format!("verifying \"{name}\": no result")))?;
    if record && v.ok() {
        target.execute(&[ledger::mark_verified(&name, &v)]).await?;
        killpoint::point("table-verified");
    }
    Ok(v)
}
