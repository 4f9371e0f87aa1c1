//! Chunk claims with leases, so that several processes copy one ledger's chunks at once (the
//! `ferry serve` instances sharing a job store, [`ClaimOptions`]): a worker claims a pending chunk
//! whose claim is absent or ran out ([`ledger::claim_lease`]), renews its claims while it copies
//! (a heartbeat every third of a lease), and the chunk's usual commit marks it done. A worker
//! killed with `kill -9` stops renewing: its chunks are claimed again once their leases run out.
//! The claims live in the target's ledger, beside the chunks they guard, so a claim and the
//! chunk's commit are judged by the same database.
//!
//! The run that owns the copy also reads, every second, the rows the others committed
//! ([`Claims::spawn_tally`]): its live stats are its own rows as it writes them plus those, each
//! committed chunk counted once, for the worker whose claim it carries.
//!
//! A plain conditional `UPDATE` is all a claim needs (what queue libraries on PostgreSQL do
//! with `FOR UPDATE SKIP LOCKED`): the ledger is already the queue, each worker knows the chunk
//! list, and the target may be MySQL, which has no `RETURNING`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::connector::{TableWriter, Target};
use crate::error::Result;
use crate::ledger;
use crate::plan::TablePlan;
use crate::progress::{Event, Observer};

/// How often the run that owns a shared copy reads the rows other workers committed.
pub const TALLY_INTERVAL: Duration = Duration::from_secs(1);

/// How a copy claims its chunks when it shares them with other processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOptions {
    /// This worker's name in the ledger's claims, unique per run (two runs of one process on
    /// one job must not renew each other's claims).
    pub worker: String,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// Helping the run that owns the copy: copy claimed chunks only (the ledger and the tables
    /// must exist), no keys, indexes, foreign keys or verification, like a `--shard`.
    pub join: bool,
}

/// One run's claims: a connection to the target for the claim statements (committed on their
/// own, outside any chunk's transaction) and how many chunks this run won.
pub struct Claims {
    options: ClaimOptions,
    target: Arc<dyn Target>,
    /// Any of the plan's tables: the writer connection it opens runs the ledger statements.
    table: TablePlan,
    conn: Mutex<Option<Box<dyn TableWriter>>>,
    won: AtomicU64,
}

/// Now, in unix milliseconds: claim times (and the job server's lease times).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Claims {
    pub fn new(options: ClaimOptions, target: Arc<dyn Target>, table: TablePlan) -> Self {
        Self {
            options,
            target,
            table,
            conn: Mutex::new(None),
            won: AtomicU64::new(0),
        }
    }

    pub fn worker(&self) -> &str {
        &self.options.worker
    }

    /// How many chunks this run has claimed so far.
    pub fn won(&self) -> u64 {
        self.won.load(Ordering::Acquire)
    }

    /// Runs one ledger statement on the claims connection (opened again after a failure);
    /// returns the rows it changed.
    async fn run(&self, sql: &str) -> Result<u64> {
        let mut conn = self.conn.lock().await;
        if conn.is_none() {
            *conn = Some(self.target.writer(&self.table).await?);
        }
        let result = conn.as_mut().expect("opened above").run_sql(sql).await;
        if result.is_err() {
            // A lost connection is opened again at the next statement.
            *conn = None;
        }
        result
    }

    /// Claims chunk `index` for this run; false when another worker holds it or it is done.
    ///
    /// # Errors
    /// When the target cannot run the claim.
    pub async fn claim(&self, index: u64) -> Result<bool> {
        let now = now_ms();
        let until = now + self.options.lease.as_millis() as i64;
        let won = self
            .run(&ledger::claim_lease(
                index,
                &self.options.worker,
                until,
                now,
            ))
            .await?
            == 1;
        if won {
            self.won.fetch_add(1, Ordering::AcqRel);
        }
        Ok(won)
    }

    /// Renews this run's claims every third of a lease until `stop`. A renewal that fails is
    /// tried again at the next beat; claims that run out meanwhile may be taken over, which the
    /// chunk's commit makes harmless (see [`ledger::claim_lease`]).
    pub fn spawn_heartbeat(
        self: &Arc<Self>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut every = crate::every::Every::new(this.options.lease / 3, stop);
            while every.beat().await {
                let until = now_ms() + this.options.lease.as_millis() as i64;
                let _ = this
                    .run(&ledger::renew_leases(&this.options.worker, until))
                    .await;
            }
        })
    }

    /// Reports every [`TALLY_INTERVAL`] until `stop` the rows other workers committed, per
    /// table ([`Event::CommittedByOthers`]), so the run that owns a shared copy shows live
    /// stats counting every worker's rows. A read that fails is tried again at the next beat.
    pub fn spawn_tally(
        self: &Arc<Self>,
        observer: Arc<dyn Observer>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut every = crate::every::Every::new(TALLY_INTERVAL, stop.clone());
            while every.beat().await {
                let read =
                    ledger::committed_by_others(this.target.as_ref(), &this.options.worker, &stop);
                let Ok(totals) = read.await else { continue };
                for (table, rows, failed) in totals {
                    observer.event(&Event::CommittedByOthers {
                        table,
                        rows,
                        failed,
                    });
                }
            }
        })
    }

    /// Gives back the claims on chunks this run did not commit (it is stopping).
    pub async fn release(&self) {
        let _ = self
            .run(&ledger::release_leases(&self.options.worker))
            .await;
    }
}
