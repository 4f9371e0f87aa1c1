//! Servers sharing one job's chunks (a `copy`, or the rows of a `migrate`): servers on one
//! PostgreSQL store look every [`JOIN_INTERVAL`] for running jobs that other live servers own
//! and have opened to helpers (their ledger and tables exist), and a server helping no job yet
//! joins one: it records itself in the job's `helpers` and runs the job's copy as a helper
//! (`ClaimOptions::join`; for a move, its `database` section only), claiming chunks with leases
//! in the target's ledger beside the owner and the other helpers (see `ferry_core::claims`).
//! The owner creates the tables, counts the rows the others commit in its live stats (read
//! from the ledger every second), waits for every chunk (claiming again those whose claims ran
//! out: a helper killed with `kill -9`), takes the rows of every table from the ledger (so
//! each committed chunk counts once, whoever copied it), then builds keys, indexes and foreign
//! keys and verifies; a move's owner then rewrites the stored file locations and copies the
//! files alone. A helper stops within a second once the job is no longer running (cancelled
//! from any server, failed, completed), and its uncommitted claims go back at once.

use std::sync::Arc;
use std::time::Duration;

use ferry_core::claims::ClaimOptions;
use ferry_core::every::Every;
use tokio_util::sync::CancellationToken;

use crate::jobs::{Jobs, LiveStats, STATS_INTERVAL};
use crate::lease::Server;
use crate::store::now_ms;

/// How often a server looks for jobs to join.
pub const JOIN_INTERVAL: Duration = Duration::from_secs(2);

/// Jobs a server helps at once: a helper copies with the job's own `workers`.
const MAX_HELPING: usize = 1;

/// The claims of one run on this server: a worker name unique per run (a server may help a
/// job and then take it over; the two runs must not renew each other's claims), this
/// server's lease.
pub fn claim_options(server: &Server, join: bool) -> ClaimOptions {
    let run = uuid::Uuid::new_v4().simple().to_string();
    ClaimOptions {
        worker: format!("{}#{}", server.id, &run[..6]),
        lease: server.lease,
        join,
    }
}

/// Looks for jobs to join every [`JOIN_INTERVAL`] until `stop`.
pub fn spawn(jobs: Arc<Jobs>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = Every::new(JOIN_INTERVAL, stop);
        while every.beat().await {
            let busy = jobs.helping.lock().unwrap_or_else(|e| e.into_inner()).len();
            if busy >= MAX_HELPING {
                continue;
            }
            let me = jobs.server().id.clone();
            let open = match jobs.store().joinable(&me, now_ms()).await {
                Ok(open) => open,
                Err(e) => {
                    tracing::warn!("Cannot look for jobs to help with: {e}");
                    continue;
                }
            };
            // One join per server and job: a helper whose share ran out leaves the rest to
            // the owner (and to the helpers still copying).
            if let Some((id, _)) = open.into_iter().find(|(_, h)| !h.contains(&me)) {
                match jobs.store().add_helper(&id, &me).await {
                    Ok(true) => help(&jobs, id).await,
                    Ok(false) => {}
                    Err(e) => tracing::warn!("Job {id}: cannot join it: {e}"),
                }
            }
        }
    })
}

/// Runs this server's share of job `id` (a copy, or a move's rows), on its own task.
async fn help(jobs: &Arc<Jobs>, id: String) {
    let found = match jobs.store().job(&id).await {
        Ok(Some(job)) => jobs.body(&id, &job.kind).await,
        Ok(None) => Err("the job is gone".into()),
        Err(e) => Err(e.to_string()),
    };
    let (kind, body) = match found {
        Ok((kind, body)) if kind.shares_chunks() => (kind, body),
        Ok((kind, _)) => {
            tracing::warn!("Job {id}: a {} job has no chunks to share", kind.name());
            return;
        }
        Err(e) => {
            tracing::warn!("Job {id}: cannot join it: {e}");
            return;
        }
    };
    let cancel = CancellationToken::new();
    jobs.helping
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), cancel.clone());
    // The helper's own counters, not stored: the owner counts the chunks helpers commit from
    // the ledger, live and at the end.
    let stats = Arc::new(LiveStats::new());
    let claims = claim_options(jobs.server(), true);
    tracing::info!("Helping job {id} with its chunks (as {})", claims.worker);
    let cx = jobs.context(
        &stats,
        &cancel,
        &id,
        &format!("{id}-helper"),
        Arc::new(tokio::sync::Notify::new()),
        Some(claims),
    );
    let this = jobs.clone();
    jobs.tracker().spawn(async move {
        // Stops the share once the job is no longer running, whichever server changed it.
        let done = CancellationToken::new();
        let watch = {
            let (store, id, cancel, done) = (
                this.store().clone(),
                id.clone(),
                cancel.clone(),
                done.clone(),
            );
            tokio::spawn(async move {
                let mut every = Every::new(STATS_INTERVAL, done);
                while every.beat().await {
                    match store.job(&id).await {
                        Ok(Some(job)) if job.status == "running" => {}
                        Ok(_) => {
                            cancel.cancel();
                            return;
                        }
                        // The store did not answer: the job's status is not known to change.
                        Err(_) => {}
                    }
                }
            })
        };
        let result = match tokio::spawn(kind.run(body, false, cx)).await {
            Ok(result) => result,
            Err(e) => Err(ferry_core::Error::run(format!("the helper stopped: {e}"))),
        };
        done.cancel();
        let _ = watch.await;
        let how = match result {
            _ if cancel.is_cancelled() => "the job is no longer running".to_string(),
            Ok(crate::kinds::Ran::Report(report)) => match &report.error {
                Some(e) => e.clone(),
                None => "no chunk is left to copy".into(),
            },
            Ok(crate::kinds::Ran::Cutover { .. }) => "no chunks to share".into(),
            Err(e) => e.to_string(),
        };
        tracing::info!("Stopped helping job {id}: {how}");
        this.helping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    });
}
