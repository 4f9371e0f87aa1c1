//! Jobs: creation (validate, seal the body, insert leased to this server), the runner (pending →
//! validating → running | dry_run → completed | failed | cancelled, one cancellation token per
//! job, the lease renewed every second with the live stats when they changed, see `lease.rs`),
//! taking over jobs whose server died, cancel (from any server), and shutdown.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_blobs::{BlobEvent, BlobObserver, Outcome};
use ferry_core::progress::{Event, Observer};
use ferry_core::report::{Report, Status, TableStats};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::crypto::MasterKey;
use crate::kinds::{BadRequest, Kind, Ran, RunContext};
use crate::lease::{Beat, Holder};
use crate::store::{Claimed, End, InsertError, JobRecord, Store, User, now};

/// How often running jobs renew their lease and write their stats (when they changed); also
/// how soon a cancel sent to another server reaches the work.
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// The reason written on this server's jobs that did not stop within the shutdown grace.
const STOPPED: &str = "the server stopped while this job was running";

/// Per-table counters fed by the copy's (or the blob copy's) progress events.
pub struct LiveStats {
    tables: Mutex<BTreeMap<String, TableStats>>,
    /// A job sharing its chunks with helper servers: its rows and failures per table are its
    /// own run's plus those other workers committed ([`Shared`]).
    shared: Option<Mutex<BTreeMap<String, Shared>>>,
    dirty: AtomicBool,
    /// A table started copying rows: a copy's ledger and tables exist (helpers may join).
    copying: AtomicBool,
}

/// One table of a job sharing its chunks: the rows (and failures) its owner's run wrote,
/// less those of chunk attempts rolled back, and those committed by every other worker
/// (helper servers, the runs before a take-over), read from the ledger every second. A
/// committed chunk counts for the worker whose claim it carries: once.
#[derive(Debug, Default)]
struct Shared {
    own: (u64, u64),
    others: (u64, u64),
}

impl LiveStats {
    pub(crate) fn new() -> Self {
        Self {
            tables: Mutex::new(BTreeMap::new()),
            shared: None,
            dirty: AtomicBool::new(false),
            copying: AtomicBool::new(false),
        }
    }

    /// The stats of a job whose chunks other servers may copy too (see `crate::helpers`).
    pub(crate) fn shared() -> Self {
        Self {
            shared: Some(Mutex::new(BTreeMap::new())),
            ..Self::new()
        }
    }

    /// Counts a shared job's rows: its own and the others'. Never shown lower than before: the
    /// rows of a chunk attempt rolled back come back with the chunk's next attempt.
    fn share(&self, table: &str, f: impl FnOnce(&mut Shared)) {
        let Some(shared) = &self.shared else { return };
        let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
        let counts = shared.entry(table.to_string()).or_default();
        f(counts);
        let (rows, failed) = (
            counts.own.0 + counts.others.0,
            counts.own.1 + counts.others.1,
        );
        self.update(table, |s| {
            s.migrated = s.migrated.max(rows);
            s.failed = s.failed.max(failed);
        });
    }

    fn copying(&self) -> bool {
        self.copying.load(Ordering::Acquire)
    }

    fn update(&self, table: &str, f: impl FnOnce(&mut TableStats)) {
        let mut map = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(table.to_string()).or_default());
        self.dirty.store(true, Ordering::Release);
    }

    /// The stats as JSON, when they changed since the last call.
    fn take_changed(&self) -> Option<String> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return None;
        }
        let map = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::to_string(&*map).ok()
    }
}

impl Observer for LiveStats {
    fn event(&self, event: &Event) {
        match event {
            Event::TableStarted { table, rows } => {
                self.copying.store(true, Ordering::Release);
                self.update(table, |s| s.total = *rows)
            }
            Event::TableProgress {
                table,
                rows,
                failed,
                bytes,
            } => {
                crate::metrics::rows_and_bytes(*rows, *bytes);
                let own = self.shared.is_none();
                self.update(table, |s| {
                    if own {
                        s.migrated += rows;
                        s.failed += failed;
                    }
                    s.bytes += bytes;
                });
                self.share(table, |c| {
                    c.own.0 += rows;
                    c.own.1 += failed;
                });
            }
            Event::ChunkEnded {
                table,
                rows,
                failed,
                kept: false,
            } => self.share(table, |c| {
                c.own.0 = c.own.0.saturating_sub(*rows);
                c.own.1 = c.own.1.saturating_sub(*failed);
            }),
            Event::CommittedByOthers {
                table,
                rows,
                failed,
            } => self.share(table, |c| c.others = (*rows, *failed)),
            Event::TableFinished {
                table,
                migrated,
                failed,
                elapsed_s,
            } => {
                // A shared job's run knows only its own share until its end (`share`).
                let own = self.shared.is_none();
                self.update(table, |s| {
                    if own {
                        s.migrated = *migrated;
                        s.failed = *failed;
                    }
                    s.elapsed_s = *elapsed_s;
                })
            }
            _ => {}
        }
    }
}

impl BlobObserver for LiveStats {
    fn event(&self, event: &BlobEvent) {
        let name = crate::kinds::blobs::STATS_NAME;
        match event {
            BlobEvent::Started { files } => self.update(name, |s| s.total = *files),
            BlobEvent::File {
                key,
                outcome,
                moved,
                ..
            } => {
                if *outcome == Outcome::Copied {
                    crate::metrics::rows_and_bytes(1, *moved);
                }
                self.update(name, |s| match outcome {
                    Outcome::Copied => {
                        s.migrated += 1;
                        s.bytes += moved;
                    }
                    Outcome::Failed | Outcome::Differs => {
                        s.failed += 1;
                        s.push_error(key.clone());
                    }
                    Outcome::Skipped | Outcome::WouldCopy | Outcome::Matched => s.skipped += 1,
                });
            }
            _ => {}
        }
    }
}

/// Why a job could not be created or cancelled, as the API answers it.
#[derive(Debug)]
pub enum JobError {
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    Internal(String),
}

impl From<BadRequest> for JobError {
    fn from(e: BadRequest) -> Self {
        JobError::BadRequest(e.0)
    }
}

impl From<crate::error::Error> for JobError {
    fn from(e: crate::error::Error) -> Self {
        JobError::Internal(e.0)
    }
}

/// The running jobs of this server.
pub struct Jobs {
    store: Arc<dyn Store>,
    key: MasterKey,
    tokens: Mutex<HashMap<String, CancellationToken>>,
    /// The jobs of other servers this one helps (`crate::helpers`): stopping one stops only
    /// this server's share, never the job.
    pub(crate) helping: Mutex<HashMap<String, CancellationToken>>,
    tracker: TaskTracker,
    work_root: PathBuf,
    targets: Arc<crate::config::Targets>,
    server: Arc<crate::lease::Server>,
}

impl Jobs {
    pub fn new(
        store: Arc<dyn Store>,
        key: MasterKey,
        targets: crate::config::Targets,
        server: crate::lease::Server,
    ) -> Self {
        Self {
            store,
            key,
            tokens: Mutex::new(HashMap::new()),
            helping: Mutex::new(HashMap::new()),
            tracker: TaskTracker::new(),
            work_root: std::env::temp_dir().join("ferry-serve"),
            targets: Arc::new(targets),
            server: Arc::new(server),
        }
    }

    pub fn server(&self) -> &Arc<crate::lease::Server> {
        &self.server
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// A job's kind and request body, opened from the store.
    pub(crate) async fn body(&self, id: &str, kind: &str) -> Result<(Kind, Value), String> {
        let kind = Kind::parse(kind).ok_or_else(|| format!("unknown job kind {kind:?}"))?;
        let sealed = self
            .store
            .job_body(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the job is gone")?;
        let opened = self.key.open(&sealed).map_err(|e| e.to_string())?;
        let body: Value = serde_json::from_slice(&opened).map_err(|e| e.to_string())?;
        Ok((kind, body))
    }

    /// The context a job's work runs under: its stats, cancel, work folder and, for a copy
    /// that shares its chunks, its claims.
    pub(crate) fn context(
        &self,
        stats: &Arc<LiveStats>,
        cancel: &CancellationToken,
        id: &str,
        folder: &str,
        validated: Arc<tokio::sync::Notify>,
        claims: Option<ferry_core::claims::ClaimOptions>,
    ) -> RunContext {
        RunContext::new(
            stats.clone(),
            cancel.clone(),
            id.to_string(),
            self.work_root.join(folder),
            validated,
            self.targets.clone(),
        )
        .with_claims(claims)
    }

    /// Validates, stores (body sealed) and starts a job.
    ///
    /// # Errors
    /// 400 for a bad body, 409 when the target already has an unfinished job.
    pub async fn create(
        self: &Arc<Self>,
        kind: Kind,
        body: Value,
        dry_run: bool,
        user: &User,
    ) -> Result<JobRecord, JobError> {
        let mut validated = kind.validate(&body, &self.targets)?;
        if let Some(target) = &validated.target {
            validated.target_key = crate::kinds::database_key(target).await;
        }
        let sealed = self.key.seal(body.to_string().as_bytes())?;
        let at = now();
        let job = JobRecord {
            id: uuid::Uuid::new_v4().to_string(),
            admin_user_id: user.id,
            kind: kind.name().to_string(),
            source_host: validated.source_host,
            target_key: validated.target_key,
            status: "pending".into(),
            dry_run,
            stats: "{}".into(),
            error_message: None,
            created_at: at.clone(),
            updated_at: at,
            started_at: None,
            finished_at: None,
            helpers: Vec::new(),
        };
        let lease = self.server.lease_from_now();
        match self.store.insert_job(&job, &sealed, &lease).await {
            Ok(()) => {}
            Err(InsertError::Conflict) => {
                return Err(JobError::Conflict(
                    "another migration into this target is pending or running: wait for it or cancel it".into(),
                ));
            }
            Err(InsertError::Store(e)) => return Err(e.into()),
        }
        self.spawn(kind, job.id.clone(), body, dry_run);
        Ok(job)
    }

    /// Runs a job this server holds, on its own task.
    fn spawn(self: &Arc<Self>, kind: Kind, id: String, body: Value, dry_run: bool) {
        let token = CancellationToken::new();
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), token.clone());
        let this = self.clone();
        self.tracker.spawn(async move {
            this.run(kind, id, body, dry_run, token).await;
        });
    }

    /// Runs again a job taken over from a server whose lease expired (see
    /// [`crate::lease::rerun_body`]); fails it with the reason when it cannot run again.
    pub async fn take_over(self: &Arc<Self>, job: Claimed) {
        let id = job.id.clone();
        let reason = match self.body(&id, &job.kind).await {
            Ok((kind, body)) => match crate::lease::rerun_body(kind, body) {
                Some(body) => {
                    self.spawn(kind, id, body, job.dry_run);
                    return;
                }
                None => crate::lease::NOT_RERUN.to_string(),
            },
            Err(e) => format!("the job could not be taken over from a stopped server: {e}"),
        };
        tracing::warn!("Job {id} failed: {reason}");
        let end = End {
            status: "failed",
            stats: None,
            error: Some(&reason),
        };
        if let Err(e) = self.store.finish(&id, &self.server.id, &end, &now()).await {
            tracing::error!("Job {id}: cannot record its end: {e}");
        }
    }

    async fn run(
        self: Arc<Self>,
        kind: Kind,
        id: String,
        body: Value,
        dry_run: bool,
        cancel: CancellationToken,
    ) {
        let store = self.store.clone();
        let owner = self.server.id.clone();
        if let Err(e) = store.advance(&id, &owner, "validating", &now(), true).await {
            tracing::warn!("Job {id}: cannot record its status: {e}");
        }
        let validated = Arc::new(tokio::sync::Notify::new());
        // A copy, and a move's rows, share their chunks with the servers of a shared store
        // that join them.
        let shares = kind.shares_chunks() && !dry_run && store.shared();
        let claims = shares.then(|| crate::helpers::claim_options(&self.server, false));
        let stats = Arc::new(if shares {
            LiveStats::shared()
        } else {
            LiveStats::new()
        });
        let cx = self.context(&stats, &cancel, &id, &id, validated.clone(), claims);
        // The lease, status and stats writer runs beside the work; it stops when the work ends.
        // It stops the work when the job is cancelled (from any server) or the lease is lost.
        let done = CancellationToken::new();
        let lost = Arc::new(AtomicBool::new(false));
        let writer = {
            let (store, id, done, stats) = (store.clone(), id.clone(), done.clone(), stats.clone());
            let (cancel, lost, owner) = (cancel.clone(), lost.clone(), owner.clone());
            let mut holder = Holder::new(store.clone(), self.server.clone(), id.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(STATS_INTERVAL);
                let mut running = false;
                let mut open = !shares;
                loop {
                    tokio::select! {
                        () = validated.notified(), if !running => {
                            running = true;
                            let status = if dry_run { "dry_run" } else { "running" };
                            let _ = store.advance(&id, &owner, status, &now(), true).await;
                        }
                        _ = tick.tick() => {
                            if running && !open && stats.copying() {
                                // Its ledger and tables exist: other servers may join now.
                                open = store.open_to_helpers(&id, &owner).await.is_ok();
                            }
                            let json = if running { stats.take_changed() } else { None };
                            match holder.beat(json.as_deref()).await {
                                Beat::Keep => {}
                                Beat::Cancelled => {
                                    if !cancel.is_cancelled() {
                                        tracing::info!("Job {id} was cancelled: stopping its work");
                                        cancel.cancel();
                                    }
                                }
                                Beat::Lost => {
                                    tracing::warn!("Job {id}: this server lost its lease (another server may run it now): stopping its work");
                                    lost.store(true, Ordering::Release);
                                    cancel.cancel();
                                    return;
                                }
                            }
                        }
                        () = done.cancelled() => return,
                    }
                }
            })
        };
        tracing::info!(
            "Job {id} ({}) started{}",
            kind.name(),
            if dry_run { " as a dry run" } else { "" }
        );
        // On its own task, so a panic in the work fails this job instead of leaving it running.
        let result = match tokio::spawn(kind.run(body, dry_run, cx)).await {
            Ok(result) => result,
            Err(e) => Err(ferry_core::Error::run(format!(
                "the job stopped unexpectedly ({e}); see the server log"
            ))),
        };
        done.cancel();
        let _ = writer.await;
        let (status, stats_json, error) = outcome(result, &stats, cancel.is_cancelled());
        let end = End {
            status,
            stats: stats_json.as_deref(),
            error: error.as_deref(),
        };
        if lost.load(Ordering::Acquire) {
            tracing::warn!(
                "Job {id}: this server's run stopped ({status}); its end is not recorded here"
            );
        } else {
            match store.finish(&id, &owner, &end, &now()).await {
                Ok(true) => tracing::info!("Job {id} ended: {status}"),
                Ok(false) => tracing::warn!(
                    "Job {id}: this server's run ended ({status}) after another server took the job over; its end is not recorded here"
                ),
                Err(e) => tracing::error!("Job {id}: cannot record its end: {e}"),
            }
        }
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Cancels a pending or running job.
    ///
    /// # Errors
    /// 404 for an unknown id, 400 for a job already finished.
    pub async fn cancel(&self, id: &str) -> Result<(), JobError> {
        let Some(job) = self.store.job(id).await? else {
            return Err(JobError::NotFound(format!("no migration with id {id}")));
        };
        if !self.store.cancel(&job.id, &now()).await? {
            return Err(JobError::BadRequest(format!(
                "the migration is already {}: only pending or running migrations can be cancelled",
                self.store.job(id).await?.map_or(job.status, |j| j.status)
            )));
        }
        if let Some(token) = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            token.cancel();
        }
        tracing::info!("Job {id} cancelled");
        Ok(())
    }

    /// Stops every running job (they end `cancelled`) and waits for them, at most `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        let running: Vec<(String, CancellationToken)> = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, token) in &running {
            tracing::info!("Cancelling job {id}: the server is stopping");
            let _ = self.store.cancel(id, &now()).await;
            token.cancel();
        }
        // Helping stops; the jobs helped go on with their own servers.
        for token in self
            .helping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            token.cancel();
        }
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("Jobs still running after {grace:?}; marking them failed");
            let left: Vec<String> = self
                .tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .cloned()
                .collect();
            let end = End {
                status: "failed",
                stats: None,
                error: Some(STOPPED),
            };
            for id in left {
                let _ = self.store.finish(&id, &self.server.id, &end, &now()).await;
            }
        }
    }
}

/// The job's final status, stats and error message from what the run returned.
fn outcome(
    result: ferry_core::Result<Ran>,
    live: &LiveStats,
    cancelled: bool,
) -> (&'static str, Option<String>, Option<String>) {
    let live_json = || {
        let map = live.tables.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::to_string(&*map).ok()
    };
    match result {
        Ok(Ran::Cutover { summary, no_go }) => {
            // The checklist ran: the job completed, and its verdict is in the summary (a
            // NO-GO names its blockers in the error message, as failed rows do).
            let mut stats = live_json()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .unwrap_or_else(|| Value::Object(Default::default()));
            if let Value::Object(map) = &mut stats {
                map.insert(CUTOVER_KEY.into(), summary);
            }
            let status = if cancelled { "cancelled" } else { "completed" };
            (status, Some(stats.to_string()), no_go)
        }
        Ok(Ran::Report(report)) => {
            let stats = stored_stats(&report);
            let status = match report.status {
                _ if cancelled => "cancelled",
                Status::Completed => "completed",
                Status::Failed => "failed",
                Status::Cancelled => "cancelled",
            };
            let error = match report.status {
                Status::Failed => Some(
                    report
                        .error
                        .clone()
                        .unwrap_or_else(|| "the run failed".into()),
                ),
                Status::Cancelled => Some("cancelled".into()),
                Status::Completed => failure_summary(&report),
            };
            (status, stats, error)
        }
        Err(e) if cancelled || e.kind() == ferry_core::ErrorKind::Cancelled => {
            ("cancelled", live_json(), Some("cancelled".into()))
        }
        Err(e) => ("failed", live_json(), Some(e.to_string())),
    }
}

/// Where the stored stats keep what the run left out (`Report::not_copied`, with source counts
/// and bytes), beside the per-table stats; `to_json` shows it as the job's `not_copied`.
/// Kept inside the stats text so a job store made by an earlier ferry needs no new column.
const NOT_COPIED_KEY: &str = "$not_copied";

/// Where the stored stats keep a cutover job's summary; `to_json` shows it as `cutover`.
const CUTOVER_KEY: &str = "$cutover";

/// The stats text stored for a finished run: per-table stats, plus what was not copied.
fn stored_stats(report: &Report) -> Option<String> {
    let mut stats = serde_json::to_value(&report.stats).ok()?;
    if !report.not_copied.is_empty()
        && let (Value::Object(map), Ok(left_out)) =
            (&mut stats, serde_json::to_value(&report.not_copied))
    {
        map.insert(NOT_COPIED_KEY.into(), left_out);
    }
    Some(stats.to_string())
}

/// One sentence on a completed run's failed rows and verification differences, if any.
fn failure_summary(report: &Report) -> Option<String> {
    let failed = report.per_table(|s| s.failed);
    let differ: Vec<&str> = report
        .verify
        .iter()
        .filter(|(_, v)| !v.ok())
        .map(|(t, _)| t.as_str())
        .collect();
    let mut parts = Vec::new();
    if !failed.is_empty() {
        let total: u64 = report.stats.values().map(|s| s.failed).sum();
        parts.push(format!("{total} rows failed ({})", failed.join(", ")));
    }
    if !differ.is_empty() {
        parts.push(format!(
            "verification found differences in {}",
            differ.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The job as the API shows it (never the sealed body).
pub fn to_json(job: &JobRecord) -> Value {
    let mut stats: Value =
        serde_json::from_str(&job.stats).unwrap_or_else(|_| Value::Object(Default::default()));
    let mut take = |key: &str| match &mut stats {
        Value::Object(map) => map.remove(key),
        _ => None,
    };
    let not_copied = take(NOT_COPIED_KEY).unwrap_or_else(|| Value::Array(Vec::new()));
    let cutover = take(CUTOVER_KEY).unwrap_or(Value::Null);
    serde_json::json!({
        "id": job.id,
        "admin_user_id": job.admin_user_id,
        "kind": job.kind,
        "source_host": job.source_host,
        "status": job.status,
        "dry_run": job.dry_run,
        "stats": stats,
        "not_copied": not_copied,
        "cutover": cutover,
        "error_message": job.error_message,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "helpers": job.helpers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migrated(stats: &LiveStats, table: &str) -> (u64, u64) {
        let map = stats.tables.lock().unwrap();
        map.get(table).map_or((0, 0), |s| (s.migrated, s.failed))
    }

    fn progress(table: &str, rows: u64, failed: u64) -> Event {
        Event::TableProgress {
            table: table.into(),
            rows,
            failed,
            bytes: 10,
        }
    }

    /// A shared job's rows are its owner's as written plus those the others committed, each
    /// chunk once; a rolled-back attempt and the owner's own end never lower them.
    #[test]
    fn shared_stats_add_the_others_committed_rows_once() {
        let stats = LiveStats::shared();
        let others = |rows| Event::CommittedByOthers {
            table: "t".into(),
            rows,
            failed: 0,
        };
        Observer::event(&stats, &others(100));
        Observer::event(&stats, &progress("t", 30, 1));
        assert_eq!(migrated(&stats, "t"), (130, 1));
        Observer::event(
            &stats,
            &Event::ChunkEnded {
                table: "t".into(),
                rows: 30,
                failed: 1,
                kept: true,
            },
        );
        Observer::event(&stats, &others(150));
        assert_eq!(migrated(&stats, "t"), (180, 1));
        // Attempt rolled back (another worker committed the chunk first, or a retry).
        Observer::event(&stats, &progress("t", 20, 0));
        Observer::event(
            &stats,
            &Event::ChunkEnded {
                table: "t".into(),
                rows: 20,
                failed: 0,
                kept: false,
            },
        );
        assert_eq!(migrated(&stats, "t"), (200, 1), "never shown lower");
        Observer::event(&stats, &others(200));
        Observer::event(
            &stats,
            &Event::TableFinished {
                table: "t".into(),
                migrated: 30,
                failed: 1,
                elapsed_s: 1.0,
            },
        );
        assert_eq!(migrated(&stats, "t"), (230, 1));

        // Alone, a job counts its own events, and its table's end is the figure.
        let alone = LiveStats::new();
        Observer::event(&alone, &progress("t", 30, 0));
        Observer::event(&alone, &others(100));
        assert_eq!(migrated(&alone, "t"), (30, 0));
        Observer::event(
            &alone,
            &Event::TableFinished {
                table: "t".into(),
                migrated: 25,
                failed: 0,
                elapsed_s: 1.0,
            },
        );
        assert_eq!(migrated(&alone, "t"), (25, 0));
    }
}
