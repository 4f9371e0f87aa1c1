//! Job leases, so that servers sharing one job store never break each other's work: a job is
//! held by the server running it (`owner`, `lease_until` in the store), which renews the lease
//! while it works ([`Holder`], beside the stats it writes every second); every server looks for
//! expired leases (at start-up and every half lease) and takes those jobs over ([`spawn_reclaim`]).
//! A starting server never touches a job whose lease is alive. Cancelling is a status in the
//! store, which the owner reads at its next renewal, so it works from any server.
//!
//! A taken-over job runs again under the body [`rerun_body`] gives: a copy resumes from the
//! target's chunk ledger (the chunks the dead server committed are kept), then verifies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_core::every::Every;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::kinds::Kind;
use crate::store::{Lease, Store, now, now_ms};

/// How long a job's lease lasts without renewal, unless `--job-lease` says otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// The shortest lease accepted: renewals every second must fit in it several times.
pub const MIN_LEASE: Duration = Duration::from_secs(3);

/// This server as a lease holder: its id and how long its leases last.
#[derive(Debug, Clone)]
pub struct Server {
    /// `host:pid:random`, unique per process, for the store's `owner` column and the log.
    pub id: String,
    pub lease: Duration,
}

impl Server {
    pub fn new(lease: Duration) -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "ferry".into());
        let random = uuid::Uuid::new_v4().simple().to_string();
        Self {
            id: format!("{host}:{}:{}", std::process::id(), &random[..8]),
            lease: lease.max(MIN_LEASE),
        }
    }

    /// A lease from now.
    pub fn lease_from_now(&self) -> Lease {
        Lease {
            owner: self.id.clone(),
            until_ms: now_ms() + self.lease.as_millis() as i64,
        }
    }
}

/// The body a taken-over job runs again with: for the kinds that write database tables
/// (`copy`, `migrate`), the job's own body with `resume` (the chunks the dead server committed
/// are kept, the rest copied; see the ledger in `ferry_core::ledger`; a move's location
/// rewrite recorded done there is not run again) and `force` (when the ledger cannot be
/// resumed, e.g. the server died before writing it, the half-written tables are replaced), so
/// the rerun ends verified either way; a `peertube` import with `resume` (its writes are
/// upserts; each entity continues after the last page the dead server wrote); `blobs` as it
/// was (files already copied and equal are skipped) and a cutover check as it was. `None` for
/// a kind that cannot safely run twice (a cutover sync's pass): the job is then failed with a
/// reason.
pub fn rerun_body(kind: Kind, mut body: Value) -> Option<Value> {
    match kind {
        Kind::Copy => {
            let fields = body.as_object_mut()?;
            fields.insert("force".into(), Value::Bool(true));
            fields.insert("resume".into(), Value::Bool(true));
            Some(body)
        }
        Kind::Migrate => {
            let fields = body.as_object_mut()?;
            fields.insert("force".into(), Value::Bool(true));
            if let Some(database) = fields.get_mut("database").and_then(Value::as_object_mut) {
                database.insert("resume".into(), Value::Bool(true));
            }
            Some(body)
        }
        Kind::Peertube => {
            body.as_object_mut()?
                .insert("resume".into(), Value::Bool(true));
            Some(body)
        }
        // A checklist only reads: it runs again as it was.
        Kind::Blobs | Kind::CutoverCheck => Some(body),
        Kind::CutoverSync => None,
    }
}

/// Why a taken-over job of a kind that cannot run again was failed.
pub const NOT_RERUN: &str = "the server running this job stopped (killed or crashed) and this kind of job cannot be run again automatically: start the job again";

/// What the lease holder of one running job decides at each renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Still ours: keep working.
    Keep,
    /// Cancelled (from any server): stop the work, record the end.
    Cancelled,
    /// Another server holds the job now (our lease expired): stop, record nothing.
    Lost,
}

/// Renews one job's lease and tells its runner when to stop.
pub struct Holder {
    store: Arc<dyn Store>,
    server: Arc<Server>,
    id: String,
    last_renewed: Instant,
}

impl Holder {
    pub fn new(store: Arc<dyn Store>, server: Arc<Server>, id: String) -> Self {
        Self {
            store,
            server,
            id,
            last_renewed: Instant::now(),
        }
    }

    /// Renews the lease (storing `stats` when given). A store that does not answer for two
    /// thirds of a lease counts as lost: another server may take the job over at expiry, and
    /// two servers must never write one target at once.
    pub async fn beat(&mut self, stats: Option<&str>) -> Beat {
        let lease = self.server.lease_from_now();
        match self.store.renew(&self.id, &lease, stats, &now()).await {
            Ok(Some(status)) => {
                self.last_renewed = Instant::now();
                if status == "cancelled" {
                    Beat::Cancelled
                } else {
                    Beat::Keep
                }
            }
            Ok(None) => Beat::Lost,
            Err(e) => {
                tracing::warn!("Job {}: cannot renew its lease: {e}", self.id);
                if self.last_renewed.elapsed() > self.server.lease * 2 / 3 {
                    Beat::Lost
                } else {
                    Beat::Keep
                }
            }
        }
    }
}

/// Looks for expired leases now and every half lease until `stop`, and hands each job taken
/// over to `take`.
pub fn spawn_reclaim(
    store: Arc<dyn Store>,
    server: Arc<Server>,
    stop: CancellationToken,
    take: impl Fn(crate::store::Claimed) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = Every::new(server.lease / 2, stop.clone());
        while every.beat().await {
            let lease = server.lease_from_now();
            match store.claim_expired(&lease, now_ms(), &now()).await {
                Ok(claimed) => {
                    for job in claimed {
                        if stop.is_cancelled() {
                            return;
                        }
                        tracing::warn!(
                            "Took over job {} ({}, {}): the lease of the server running it expired",
                            job.id,
                            job.kind,
                            job.status
                        );
                        take(job);
                    }
                }
                Err(e) => tracing::warn!("Cannot look for jobs with expired leases: {e}"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Claimed, End, InsertError, JobRecord};

    fn job(id: &str, target: &str) -> JobRecord {
        JobRecord {
            id: id.into(),
            admin_user_id: 1,
            kind: "copy".into(),
            source_host: "s".into(),
            target_key: target.into(),
            status: "running".into(),
            dry_run: false,
            stats: "{}".into(),
            error_message: None,
            created_at: now(),
            updated_at: now(),
            started_at: None,
            finished_at: None,
            helpers: Vec::new(),
        }
    }

    /// The status a renewal of `id` under `lease` reads (`None`: not held by it).
    async fn renewed(store: &dyn Store, id: &str, lease: &Lease) -> Option<String> {
        store.renew(id, lease, None, &now()).await.unwrap()
    }

    /// The jobs `lease`'s owner takes over at `now_ms`.
    async fn claimed(store: &dyn Store, lease: &Lease, now_ms: i64) -> Vec<Claimed> {
        store.claim_expired(lease, now_ms, &now()).await.unwrap()
    }

    #[test]
    fn reruns_resume_table_writers_and_imports_and_refuse_a_sync_pass() {
        let body = serde_json::json!({"source_url": "a", "target_url": "b"});
        let rerun = rerun_body(Kind::Copy, body.clone()).unwrap();
        assert_eq!(
            (&rerun["force"], &rerun["resume"]),
            (&Value::Bool(true), &Value::Bool(true))
        );
        assert_eq!(rerun["source_url"], "a");
        let migrate = serde_json::json!({"database": {"source": "a", "target": "b"}});
        let rerun = rerun_body(Kind::Migrate, migrate).unwrap();
        assert_eq!(rerun["force"], true);
        assert_eq!(rerun["database"]["resume"], true);
        assert_eq!(rerun_body(Kind::Blobs, body.clone()), Some(body.clone()));
        assert_eq!(
            rerun_body(Kind::CutoverCheck, body.clone()),
            Some(body.clone())
        );
        assert_eq!(rerun_body(Kind::CutoverSync, body.clone()), None);
        let rerun = rerun_body(Kind::Peertube, body).unwrap();
        assert_eq!(
            (&rerun["resume"], &rerun["source_url"]),
            (&Value::Bool(true), &"a".into())
        );
    }

    /// Claims, renewals, the end and the one-writer-per-target slot, on the SQLite store (the
    /// PostgreSQL store runs the same SQL; ferry-cli's serve tests run it with three servers).
    #[tokio::test]
    async fn only_expired_leases_are_taken_over_and_the_loser_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = crate::store::open(&url).await.unwrap();
        let a = Lease {
            owner: "a".into(),
            until_ms: 1_000,
        };
        store.insert_job(&job("j1", "t"), b"x", &a).await.unwrap();
        // A second writer into the same target is refused while j1 is held.
        assert!(matches!(
            store.insert_job(&job("j2", "t"), b"x", &a).await,
            Err(InsertError::Conflict)
        ));
        let b = Lease {
            owner: "b".into(),
            until_ms: 5_000,
        };
        assert!(claimed(store.as_ref(), &b, 999).await.is_empty());
        assert_eq!(
            renewed(store.as_ref(), "j1", &a).await.as_deref(),
            Some("running")
        );
        let taken = claimed(store.as_ref(), &b, 1_001).await;
        assert_eq!(taken.len(), 1);
        assert_eq!(
            (taken[0].id.as_str(), taken[0].kind.as_str()),
            ("j1", "copy")
        );
        // The old owner is told, and can neither advance nor finish the job.
        assert_eq!(renewed(store.as_ref(), "j1", &a).await, None);
        assert!(
            !store
                .advance("j1", "a", "running", &now(), true)
                .await
                .unwrap()
        );
        let failed = End {
            status: "failed",
            stats: None,
            error: Some("x"),
        };
        assert!(!store.finish("j1", "a", &failed, &now()).await.unwrap());
        // Cancelled from anywhere: the owner reads it at its next renewal; the target stays
        // taken until the owner has stopped and recorded the end.
        assert!(store.cancel("j1", &now()).await.unwrap());
        assert_eq!(
            renewed(store.as_ref(), "j1", &b).await.as_deref(),
            Some("cancelled")
        );
        assert!(matches!(
            store.insert_job(&job("j3", "t"), b"x", &a).await,
            Err(InsertError::Conflict)
        ));
        let done = End {
            status: "cancelled",
            stats: Some("{}"),
            error: None,
        };
        assert!(store.finish("j1", "b", &done, &now()).await.unwrap());
        let j1 = store.job("j1").await.unwrap().unwrap();
        assert_eq!(j1.status, "cancelled");
        store.insert_job(&job("j3", "t"), b"x", &a).await.unwrap();
        // A cancelled job whose owner died is released once its lease expires.
        assert!(store.cancel("j3", &now()).await.unwrap());
        assert!(matches!(
            store.insert_job(&job("j4", "t"), b"x", &b).await,
            Err(InsertError::Conflict)
        ));
        assert!(claimed(store.as_ref(), &b, 1_001).await.is_empty());
        store.insert_job(&job("j4", "t"), b"x", &b).await.unwrap();
    }

    /// A running job is joinable once its owner opens it, by live servers other than its
    /// owner; helpers are listed in join order.
    #[tokio::test]
    async fn helpers_join_open_running_jobs_of_live_owners() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = crate::store::open(&url).await.unwrap();
        assert!(!store.shared(), "a SQLite store is one server's");
        let a = Lease {
            owner: "a".into(),
            until_ms: 5_000,
        };
        store.insert_job(&job("j1", "t"), b"x", &a).await.unwrap();
        assert!(store.joinable("b", 1_000).await.unwrap().is_empty());
        assert!(!store.open_to_helpers("j1", "b").await.unwrap());
        assert!(store.open_to_helpers("j1", "a").await.unwrap());
        assert_eq!(
            store.joinable("b", 1_000).await.unwrap(),
            vec![("j1".to_string(), Vec::new())]
        );
        assert!(store.joinable("a", 1_000).await.unwrap().is_empty());
        assert!(store.joinable("b", 5_001).await.unwrap().is_empty());
        assert!(store.add_helper("j1", "b").await.unwrap());
        assert!(store.add_helper("j1", "c").await.unwrap());
        assert_eq!(
            store.joinable("d", 1_000).await.unwrap(),
            vec![("j1".to_string(), vec!["b".to_string(), "c".to_string()])]
        );
        assert_eq!(store.job("j1").await.unwrap().unwrap().helpers, ["b", "c"]);
        assert!(store.cancel("j1", &now()).await.unwrap());
        assert!(store.joinable("d", 1_000).await.unwrap().is_empty());
        assert!(!store.add_helper("j1", "d").await.unwrap());
    }
}
