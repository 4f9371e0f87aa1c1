//! `ferry blobs copy`: resolves the manifest, then copies each file on N workers, skipping files
//! already at the target with the same size and content hash (so re-runs and resumed runs move
//! only what is missing), and reading each copied file back when asked.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ferry_core::error::{Error, Result};
use ferry_core::report::{Report, Status, TableStats};
use opendal::Operator;

use crate::stamp::{self, Recorded};
use crate::store::{Kind, Store, one_line};
use crate::transfer::{self, Side};
use crate::{BlobEvent, BlobObserver, Context, CopyOptions, Manifest, Outcome, local, pool};

/// The result of one file.
pub(crate) struct Done {
    pub key: String,
    pub outcome: Outcome,
    pub size: u64,
    pub moved: u64,
    pub error: Option<String>,
}

/// Copies the files `manifest` names from `source` to `target`.
///
/// # Errors
/// Input errors (exit 2) when a side cannot be opened or the manifest cannot be read; file
/// failures are counted in the report instead.
pub async fn copy(
    source: &Store,
    target: &Store,
    manifest: &Manifest,
    options: &CopyOptions,
    ctx: &Context,
) -> Result<Report> {
    let (started, mut report, src) = begin(source, target, options.dry_run).await?;
    // A remote target is checked before the manifest is read (fail fast); a local target
    // folder is created only once the manifest has been read (bad input writes nothing).
    if target.kind() != Kind::Local {
        reachable(target, &target.operator(false)?).await?;
    }

    ctx.observer.event(&BlobEvent::Phase(format!(
        "Reading the manifest ({source})"
    )));
    let resolved = manifest.resolve(source, &src).await?;
    let dst = target.operator(!options.dry_run)?;
    for w in &resolved.warnings {
        ctx.observer.event(&BlobEvent::Warning(w.clone()));
    }
    report.warnings.extend(resolved.warnings);
    let keys = resolved.keys;
    let source_sizes = resolved.sizes;
    let workers = crate::start(ctx, keys.len(), options.workers, source, target);
    let side = Side {
        kind: target.kind(),
    };
    // Object stores: one listing of the target instead of a HEAD per file. (Local folders
    // are stat'ed per file: cheap, and always exact.)
    let existing = if target.kind() == Kind::Local {
        None
    } else {
        ctx.observer
            .event(&BlobEvent::Phase(format!("Listing the target ({target})")));
        Some(crate::manifest::list_sizes(target, &dst).await?)
    };
    // Local folders are read (and, both sides local, copied) straight through std::fs.
    let record = target.kind() != Kind::Local && stamp::can_record(&dst);
    let shared = Arc::new(Shared {
        existing,
        record,
        source_sizes,
        src,
        dst,
        src_root: local_root(source),
        dst_root: local_root(target),
        side,
        source: source.clone(),
        target: target.clone(),
        dry_run: options.dry_run,
        verify: options.verify,
        read_back: options.read_back,
        observer: ctx.observer.clone(),
    });

    let mut stats = TableStats {
        total: keys.len() as u64,
        ..TableStats::default()
    };
    let (mut would_copy, mut would_copy_bytes, mut skipped_bytes) = (0u64, 0u64, 0u64);
    let mut first_failure: Option<String> = None;
    let ignore_errors = options.ignore_errors;
    let on_done = |done: Done| {
        stats.bytes += done.moved;
        match done.outcome {
            Outcome::Copied => stats.migrated += 1,
            Outcome::Skipped => {
                stats.skipped += 1;
                skipped_bytes += done.size;
            }
            Outcome::WouldCopy => {
                would_copy += 1;
                would_copy_bytes += done.size;
            }
            Outcome::Failed | Outcome::Differs | Outcome::Matched => {
                stats.failed += 1;
                let e = done
                    .error
                    .unwrap_or_else(|| format!("{}: failed", done.key));
                if first_failure.is_none() {
                    first_failure = Some(e.clone());
                }
                stats.push_error(e);
            }
        }
    };
    let observer = ctx.observer.clone();
    let decide = move |done: &Done| announce(observer.as_ref(), done, ignore_errors);
    let cancelled = match (shared.src_root.clone(), shared.dst_root.clone()) {
        // Both sides local: each worker a blocking thread that takes file after file.
        (Some(src_root), Some(dst_root)) => {
            let shared = shared.clone();
            pool::threads(
                keys,
                workers,
                &ctx.cancel,
                move |key, bufs: &mut local::Buffers| shared.local(key, &src_root, &dst_root, bufs),
                decide,
                on_done,
            )
            .await?
        }
        _ => {
            pool::tasks(
                keys,
                workers,
                &ctx.cancel,
                move |key| {
                    let shared = shared.clone();
                    async move { shared.one(key).await }
                },
                decide,
                on_done,
            )
            .await?
        }
    };

    stats.elapsed_s = started.elapsed().as_secs_f64();
    if options.dry_run {
        report.warnings.push(format!(
            "dry run: {would_copy} files ({}) would be copied, {} ({}) skipped as already identical; nothing was written",
            human_bytes(would_copy_bytes),
            stats.skipped,
            human_bytes(skipped_bytes)
        ));
    }
    if stats.failed > 0 && !ignore_errors {
        report.status = Status::Failed;
        report.error = first_failure.map(|e| {
            format!(
                "{e} (stopped after the first failure; --ignore-errors counts failures and goes on)"
            )
        });
    }
    if cancelled {
        report.status = Status::Cancelled;
        report.error = Some("cancelled by the operator; rerun to copy the rest".into());
    }
    report.stats.insert(options.name.clone(), stats);
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.peak_rss_mb = ferry_core::report::peak_rss_mb();
    Ok(report)
}

/// Tells the observer one file is done, and whether new transfers may start: without
/// --ignore-errors the first failure stops them (the ones running finish).
fn announce(observer: &dyn BlobObserver, done: &Done, ignore_errors: bool) -> bool {
    observer.event(&BlobEvent::File {
        key: done.key.clone(),
        outcome: done.outcome,
        size: done.size,
        moved: done.moved,
    });
    ignore_errors
        || matches!(
            done.outcome,
            Outcome::Copied | Outcome::Skipped | Outcome::WouldCopy
        )
}

struct Shared {
    /// Sizes of what the target already holds, when listed up front.
    existing: Option<std::collections::HashMap<String, u64>>,
    /// Objects get ferry's record (size, time, hash) and reruns decide from it.
    record: bool,
    /// Sizes of the source's files, when an object store's listing was the manifest.
    source_sizes: Option<std::collections::HashMap<String, u64>>,
    src: Operator,
    dst: Operator,
    src_root: Option<PathBuf>,
    dst_root: Option<PathBuf>,
    side: Side,
    source: Store,
    target: Store,
    dry_run: bool,
    verify: bool,
    /// Verification reads every object back, even where the server's part checks and the
    /// source's hash taken before the upload vouch for it.
    read_back: bool,
    observer: Arc<dyn BlobObserver>,
}

impl Shared {
    /// One file between two local folders, on the calling (blocking) thread.
    fn local(
        &self,
        key: String,
        src_root: &Path,
        dst_root: &Path,
        bufs: &mut local::Buffers,
    ) -> Done {
        let result = check_key(&key).and_then(|()| {
            local::copy_file(
                &src_root.join(&key),
                &dst_root.join(&key),
                self.dry_run,
                self.verify,
                bufs,
                self.observer.as_ref(),
            )
        });
        match result {
            Ok((outcome, size, moved)) => Done {
                key,
                outcome,
                size,
                moved,
                error: None,
            },
            Err(e) => Done {
                error: Some(format!("{key}: {e}")),
                key,
                outcome: Outcome::Failed,
                size: 0,
                moved: 0,
            },
        }
    }

    async fn one(&self, key: String) -> Done {
        let mut done = Done {
            key,
            outcome: Outcome::Failed,
            size: 0,
            moved: 0,
            error: None,
        };
        match self.try_one(&mut done).await {
            Ok(outcome) => done.outcome = outcome,
            Err(e) => {
                done.outcome = Outcome::Failed;
                done.error = Some(format!("{}: {e}", done.key));
            }
        }
        done
    }

    async fn try_one(&self, done: &mut Done) -> std::result::Result<Outcome, String> {
        let key = done.key.clone();
        check_key(&key)?;
        let src_err = |e: opendal::Error| {
            self.source
                .scrub(&format!("reading the source: {}", one_line(&e)))
        };
        let dst_err = |e: opendal::Error| {
            self.target
                .scrub(&format!("at the target: {}", one_line(&e)))
        };
        let mut record = None;
        if self.record {
            // Read before the copy: a source written during the upload then shows a newer
            // time than the one recorded, and the next run looks at it again.
            let stamp = stamp::source_stamp(&self.src, self.src_root.as_ref(), &key)
                .await
                .map_err(|e| self.source.scrub(&format!("reading the source: {e}")))?
                .ok_or("missing in the source")?;
            record = Some(Recorded { stamp, hash: None });
        }
        let listed = self
            .source_sizes
            .as_ref()
            .and_then(|s| s.get(&key).copied());
        // The stamp already read the source's size: no second stat.
        let size = match (listed, &record) {
            (Some(size), _) => Some(size),
            (None, Some(r)) => Some(r.stamp.size),
            (None, None) => transfer::size_of(&self.src, &key).await.map_err(src_err)?,
        };
        let Some(size) = size else {
            return Err("missing in the source".into());
        };
        done.size = size;
        let existing = match &self.existing {
            Some(listed) => listed.get(&key).copied(),
            None => transfer::size_of(&self.dst, &key).await.map_err(dst_err)?,
        };
        if let Some(existing) = existing
            && existing == size
            && self.same(&key, record.as_ref()).await?
        {
            return Ok(Outcome::Skipped);
        }
        if self.dry_run {
            return Ok(Outcome::WouldCopy);
        }
        // Local → local returned above; here at least one side is an object store.
        let observer = &self.observer;
        let progress = |n: u64| observer.event(&BlobEvent::Bytes(n));
        // A local source is hashed before the upload so the object can carry its hash (object
        // metadata is sent when the upload starts); the hash taken while streaming must agree.
        if let (Some(rec), Some(root)) = (record.as_mut(), self.src_root.as_ref()) {
            let (h, _) = transfer::hash_local(root.join(&key))
                .await
                .map_err(|e| format!("reading the source: {e}"))?;
            rec.hash = Some(h.to_hex().to_string());
        }
        let metadata = record.as_ref().map(Recorded::to_metadata);
        let (hash, moved) =
            transfer::copy_one(&self.src, &self.dst, self.side, &key, metadata, &progress)
                .await
                .map_err(|e| self.target.scrub(&self.source.scrub(&one_line(&e))))?;
        done.moved = moved;
        let before = record.as_ref().and_then(|r| r.hash.as_deref());
        if before.is_some_and(|h| h != hash.to_hex().as_str()) {
            // No object may carry a record that does not describe its bytes.
            let _ = self.dst.delete(&key).await;
            return Err(
                "the source changed during the copy (its content hash moved); rerun to copy it again"
                    .into(),
            );
        }
        if moved != size {
            return Err(format!(
                "the source changed during the copy ({size} bytes listed, {moved} read); rerun to copy it again"
            ));
        }
        // The server refused any part whose CRC32C did not match, and the bytes sent hash to
        // what the source held before the upload: the object is the source's content.
        let vouched = before.is_some() && self.target.server_checks() && !self.read_back;
        if self.verify && !vouched {
            let (back, len) = transfer::hash_side(&self.dst, self.dst_root.as_ref(), &key)
                .await
                .map_err(|e| format!("reading back: {}", self.target.scrub(&e)))?;
            if back != hash || len != moved {
                return Err(format!(
                    "read back from the target it differs ({len} bytes, content hash mismatch)"
                ));
            }
        } else if !vouched
            && transfer::size_of(&self.dst, &key).await.map_err(dst_err)? != Some(moved)
        {
            return Err("the target's size differs after the copy".into());
        }
        Ok(Outcome::Copied)
    }
}

impl Shared {
    /// Whether the target's `key` (already known to have the source's size) holds the source's
    /// content. With ferry's record on the object: the same size and time as the source's now
    /// means unchanged (no byte read); another time means hash the source alone and compare
    /// with the recorded hash. Without a record: hash both sides.
    async fn same(&self, key: &str, now: Option<&Recorded>) -> Result<bool, String> {
        if let Some(now) = now {
            let on_target = stamp::recorded(&self.dst, key).await.map_err(|e| {
                self.target
                    .scrub(&format!("at the target: {}", one_line(&e)))
            })?;
            if let Some(rec) = on_target {
                if rec.stamp == now.stamp {
                    return Ok(true);
                }
                if let Some(recorded_hash) = rec.hash {
                    let (h, _) = transfer::hash_side(&self.src, self.src_root.as_ref(), key)
                        .await
                        .map_err(|e| self.source.scrub(&e))?;
                    return Ok(h.to_hex().as_str() == recorded_hash);
                }
            }
        }
        let (a, b) = tokio::try_join!(
            transfer::hash_side(&self.src, self.src_root.as_ref(), key),
            transfer::hash_side(&self.dst, self.dst_root.as_ref(), key)
        )
        .map_err(|e| self.target.scrub(&self.source.scrub(&e)))?;
        Ok(a == b)
    }
}

/// Keys stay inside the root.
pub(crate) fn check_key(key: &str) -> std::result::Result<(), String> {
    if key.split('/').any(|part| part == ".." || part == ".") {
        return Err("the key has a '.' or '..' segment; refusing to leave the root".into());
    }
    Ok(())
}

/// The canonical local folder of a `file:` store, when it exists (a dry run's missing target
/// folder stays an empty in-memory store).
fn local_root(store: &Store) -> Option<PathBuf> {
    store.local_path().and_then(|p| p.canonicalize().ok())
}

/// What a copy and a verification start with: their clock, sides that do not overlap, their
/// report, and the source opened.
pub(crate) async fn begin(
    source: &Store,
    target: &Store,
    dry_run: bool,
) -> Result<(Instant, Report, Operator)> {
    let started = Instant::now();
    source.check_apart(target)?;
    let report = Report::new(source.to_string(), target.to_string(), dry_run);
    Ok((started, report, open_source(source).await?))
}

/// Opens the source: a local folder must exist (a source is never created).
pub(crate) async fn open_source(source: &Store) -> Result<Operator> {
    if let Some(p) = source.local_path()
        && !p.is_dir()
    {
        return Err(Error::input(format!(
            "the source folder {} does not exist",
            p.display()
        )));
    }
    let op = source.operator(false)?;
    reachable(source, &op).await?;
    Ok(op)
}

/// Fails fast (exit 2) when remote storage cannot be reached or the bucket is missing, before
/// any file is looked at.
pub(crate) async fn reachable(store: &Store, op: &Operator) -> Result<()> {
    if store.kind() == Kind::Local {
        return Ok(());
    }
    op.check().await.map_err(|e| {
        // An S3 error code already says what to do; a transport error does not.
        let hint = if crate::store::s3_code(&e).is_some() {
            ""
        } else {
            ": check the endpoint and that the server runs"
        };
        Error::input(store.scrub(&format!("cannot reach {store}: {}{hint}", one_line(&e))))
    })
}

/// 1234567 → "1.2 MB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
