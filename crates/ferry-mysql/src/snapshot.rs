//! One consistent picture of a MySQL/MariaDB source, as mydumper takes it: a connection holds
//! `FLUSH TABLES WITH READ LOCK` (no commit can happen) for the moment every reader connection
//! runs `START TRANSACTION WITH CONSISTENT SNAPSHOT`, then `UNLOCK TABLES`; every reader then
//! sees the same data. Without the RELOAD privilege (or when the lock does not come within a few
//! seconds) one connection's snapshot serves every read in turn. Schema, reads, orphan checks
//! and verification check a connection out of this small pool and give it back.

use std::sync::Mutex;
use std::time::Instant;

use ferry_core::{Error, Result};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::connect::{self, error};

const BEGIN: &str = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";

pub struct Snapshot {
    idle: Mutex<Vec<Conn>>,
    /// One permit per live connection: a read waits here for a free connection.
    permits: std::sync::Arc<Semaphore>,
    live: std::sync::atomic::AtomicUsize,
    description: String,
}

/// A connection of the snapshot, out of the pool until given back.
pub struct Lease {
    pub conn: Conn,
    permit: OwnedSemaphorePermit,
}

impl Snapshot {
    /// Opens `readers` connections (at least one) in one snapshot. `lock` false: a target
    /// read back by its own writer, ferry, which has finished: no global lock is worth taking,
    /// each connection starts its snapshot on its own.
    ///
    /// # Errors
    /// When the server refuses the connections or the transactions.
    pub async fn start(url: &str, readers: usize, lock: bool) -> Result<Self> {
        let readers = readers.max(1);
        let mut conns = Vec::with_capacity(readers);
        for _ in 0..readers {
            let mut conn = connect::connect(url, true).await?;
            conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .await
                .map_err(|e| error(&e))?;
            conns.push(conn);
        }
        let description = if !lock {
            for conn in &mut conns {
                conn.query_drop(BEGIN).await.map_err(|e| error(&e))?;
            }
            format!("MySQL snapshots on {readers} connections (no lock: ferry's own target)")
        } else if readers == 1 {
            conns[0].query_drop(BEGIN).await.map_err(|e| error(&e))?;
            "MySQL consistent snapshot on 1 connection".to_string()
        } else {
            let mut locker = connect::connect(url, true).await?;
            locker
                .query_drop("SET SESSION lock_wait_timeout = 10")
                .await
                .map_err(|e| error(&e))?;
            let started = Instant::now();
            match locker.query_drop("FLUSH TABLES WITH READ LOCK").await {
                Ok(()) => {
                    let mut result = Ok(());
                    for conn in &mut conns {
                        result = conn.query_drop(BEGIN).await;
                        if result.is_err() {
                            break;
                        }
                    }
                    let unlocked = locker.query_drop("UNLOCK TABLES").await;
                    let held = started.elapsed();
                    let _ = locker.disconnect().await;
                    result.and(unlocked).map_err(|e| error(&e))?;
                    format!(
                        "MySQL consistent snapshot on {readers} connections (FLUSH TABLES WITH READ LOCK held {} ms)",
                        held.as_millis()
                    )
                }
                // 1227/1045: no RELOAD privilege; 1205: the lock waited too long behind
                // running statements (while waiting it would block the application's writes).
                Err(mysql_async::Error::Server(e)) if matches!(e.code, 1227 | 1045 | 1205) => {
                    let _ = locker.disconnect().await;
                    conns.truncate(1);
                    conns[0].query_drop(BEGIN).await.map_err(|e| error(&e))?;
                    tracing::info!(
                        "FLUSH TABLES WITH READ LOCK was refused ({}): every table is read on one connection in one snapshot",
                        e.message
                    );
                    format!(
                        "MySQL consistent snapshot on 1 connection (FLUSH TABLES WITH READ LOCK refused: {})",
                        e.message
                    )
                }
                Err(e) => return Err(error(&e)),
            }
        };
        if lock {
            tracing::info!("source read in a {description}");
        }
        let n = conns.len();
        Ok(Self {
            idle: Mutex::new(conns),
            permits: std::sync::Arc::new(Semaphore::new(n)),
            live: n.into(),
            description,
        })
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// A connection in the snapshot; waits while all are in use.
    ///
    /// # Errors
    /// When every connection of the snapshot was lost.
    pub async fn checkout(&self) -> Result<Lease> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| {
            Error::run("every MySQL connection of the source's snapshot was lost: rerun the copy")
        })?;
        let conn = self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .expect("a permit means an idle connection");
        Ok(Lease { conn, permit })
    }

    /// Gives a connection back; one that failed (`ok` false) may have lost its transaction,
    /// so it is closed and the pool shrinks.
    pub async fn give_back(&self, lease: Lease, ok: bool) {
        let Lease { conn, permit } = lease;
        if ok {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
            drop(permit);
            return;
        }
        permit.forget();
        if self.live.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            self.permits.close();
        }
        let _ = conn.disconnect().await;
    }
}
