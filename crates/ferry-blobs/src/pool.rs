//! Work over a list of keys on N workers: async tasks (object stores) or blocking threads
//! (local folders), with the same contract. After each item, `decide` (run where the item
//! finished, before that worker takes another key) says whether new items may start; `on_done`
//! then sees every result, in completion order, on the caller's task. Items already running
//! when a stop or a cancel comes finish.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use ferry_core::error::{Error, Result};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Runs `work` for each key on at most `workers` tasks. Returns whether the run was cancelled
/// with keys left.
pub(crate) async fn tasks<T, W, F>(
    keys: Vec<String>,
    workers: usize,
    cancel: &CancellationToken,
    work: W,
    decide: impl Fn(&T) -> bool,
    mut on_done: impl FnMut(T),
) -> Result<bool>
where
    T: Send + 'static,
    W: Fn(String) -> F,
    F: Future<Output = T> + Send + 'static,
{
    let mut set = JoinSet::new();
    let mut keys = keys.into_iter();
    let mut go_on = true;
    loop {
        while go_on && !cancel.is_cancelled() && set.len() < workers {
            let Some(key) = keys.next() else { break };
            set.spawn(work(key));
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let done = joined.map_err(|e| Error::run(format!("a transfer task failed: {e}")))?;
        go_on &= decide(&done);
        on_done(done);
    }
    Ok(cancel.is_cancelled() && keys.next().is_some())
}

/// [`tasks`] for blocking work: `workers` threads of the blocking pool each take key after key
/// with a state of their own (buffers), so an item costs no task, wake-up or allocation of its
/// own (a task per file cost a verified local copy about a tenth of its time on bench/blobs).
pub(crate) async fn threads<T, S, W, D>(
    keys: Vec<String>,
    workers: usize,
    cancel: &CancellationToken,
    work: W,
    decide: D,
    mut on_done: impl FnMut(T),
) -> Result<bool>
where
    T: Send + 'static,
    S: Default,
    W: Fn(String, &mut S) -> T + Send + Sync + 'static,
    D: Fn(&T) -> bool + Send + Sync + 'static,
{
    // The stop flag lives under the queue's lock, so no key is taken once it is set.
    let queue = Arc::new(Mutex::new((keys.into_iter(), false)));
    let next = |queue: &Mutex<(std::vec::IntoIter<String>, bool)>| {
        let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
        if q.1 { None } else { q.0.next() }
    };
    let shared = Arc::new((work, decide));
    let (tx, mut rx) = tokio::sync::mpsc::channel(workers * 4);
    let mut threads = JoinSet::new();
    for _ in 0..workers {
        let (queue, shared, tx, cancel) =
            (queue.clone(), shared.clone(), tx.clone(), cancel.clone());
        threads.spawn_blocking(move || {
            let (work, decide) = &*shared;
            let mut state = S::default();
            while !cancel.is_cancelled() {
                let Some(key) = next(&queue) else { break };
                let done = work(key, &mut state);
                // Decided under the lock: no other worker takes a key in between.
                let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
                if !decide(&done) {
                    q.1 = true;
                }
                drop(q);
                if tx.blocking_send(done).is_err() {
                    break; // the caller is gone
                }
            }
        });
    }
    drop(tx);
    while let Some(done) = rx.recv().await {
        on_done(done);
    }
    while let Some(joined) = threads.join_next().await {
        joined.map_err(|e| Error::run(format!("a transfer thread failed: {e}")))?;
    }
    let left = queue
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .0
        .next()
        .is_some();
    Ok(cancel.is_cancelled() && left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| i.to_string()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_key_runs_once_with_one_state_per_thread() {
        let cancel = CancellationToken::new();
        let mut seen = Vec::new();
        let states = Arc::new(AtomicUsize::new(0));
        let counter = states.clone();
        let cancelled = threads(
            keys(100),
            3,
            &cancel,
            move |k: String, fresh: &mut bool| {
                if !std::mem::replace(fresh, true) {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                k
            },
            |_: &String| true,
            |k| seen.push(k),
        )
        .await
        .unwrap();
        assert!(!cancelled);
        seen.sort_by_key(|k| k.parse::<usize>().unwrap());
        assert_eq!(seen, keys(100));
        assert!(states.load(Ordering::SeqCst) <= 3);
    }

    /// Counts the items that start after `stop_at` decided to stop.
    #[derive(Clone, Default)]
    struct Watch {
        decided: Arc<AtomicBool>,
        late: Arc<AtomicUsize>,
    }

    impl Watch {
        fn started(&self) {
            if self.decided.load(Ordering::SeqCst) {
                self.late.fetch_add(1, Ordering::SeqCst);
            }
        }
        fn stop_at(&self, key: &str, at: &str) -> bool {
            let go_on = key != at;
            if !go_on {
                self.decided.store(true, Ordering::SeqCst);
            }
            go_on
        }
        fn late(&self) -> usize {
            self.late.load(Ordering::SeqCst)
        }
    }

    /// Items that start after a stop (or a cancel) was decided: at most the other workers'
    /// items already on their way, never a new key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_or_a_cancel_starts_no_new_key() {
        for workers in [1, 2, 4] {
            let watch = Watch::default();
            let (w, d) = (watch.clone(), watch.clone());
            let mut done = 0;
            threads(
                keys(1000),
                workers,
                &CancellationToken::new(),
                move |k: String, _: &mut ()| {
                    w.started();
                    k
                },
                move |k: &String| d.stop_at(k, "10"),
                |_| done += 1,
            )
            .await
            .unwrap();
            assert!(watch.late() < workers, "{workers} workers");
            assert!(done < 1000, "{workers} workers: {done}");

            let watch = Watch::default();
            let mut done = 0;
            tasks(
                keys(1000),
                workers,
                &CancellationToken::new(),
                |k| {
                    watch.started();
                    async move { k }
                },
                |k: &String| watch.stop_at(k, "10"),
                |_| done += 1,
            )
            .await
            .unwrap();
            assert_eq!(watch.late(), 0, "{workers} workers");
            assert!(done < 1000, "{workers} workers: {done}");

            let cancel = CancellationToken::new();
            let (token, late) = (cancel.clone(), Arc::new(AtomicUsize::new(0)));
            let l = late.clone();
            let cancelled = threads(
                keys(1000),
                workers,
                &cancel,
                move |k: String, _: &mut ()| {
                    if token.is_cancelled() {
                        l.fetch_add(1, Ordering::SeqCst);
                    }
                    if k == "5" {
                        token.cancel();
                    }
                },
                |_: &()| true,
                |()| {},
            )
            .await
            .unwrap();
            assert!(cancelled);
            assert!(late.load(Ordering::SeqCst) < workers, "{workers} workers");
        }
    }
}
