//! `ferry blobs verify`: reads the target back and compares every manifest file with the
//! source (size, then BLAKE3 of the full content of both sides), and lists missing, different
//! and extra objects; `--delete-extra` removes the extras after confirmation.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_core::error::{Error, Result};
use ferry_core::report::{MAX_ERRORS_KEPT, Report, TableStats, VerifyTable};
use opendal::Operator;

use crate::copy::{begin, check_key, reachable};
use crate::manifest::list;
use crate::store::{Store, one_line};
use crate::transfer;
use crate::{BlobEvent, BlobObserver, Context, Manifest, Outcome, VerifyOptions, local, pool};

/// One file's verdict.
pub(crate) enum Found {
    Match(u64),
    MissingInSource,
    MissingInTarget(u64),
    Different(u64, String),
    Error(String),
}

/// Compares the files `manifest` names at `source` and `target`, and looks for extras.
///
/// # Errors
/// Input errors (exit 2) when a side cannot be opened or the manifest cannot be read.
pub async fn verify(
    source: &Store,
    target: &Store,
    manifest: &Manifest,
    options: &VerifyOptions,
    ctx: &Context,
) -> Result<Report> {
    let (started, mut report, src) = begin(source, target, false).await?;
    let dst = target.operator(false)?;
    reachable(target, &dst).await?;

    ctx.observer.event(&BlobEvent::Phase(format!(
        "Reading the manifest ({source})"
    )));
    let resolved = manifest.resolve(source, &src).await?;
    report.warnings.extend(resolved.warnings);
    let keys = resolved.keys;
    ctx.observer
        .event(&BlobEvent::Phase(format!("Listing the target ({target})")));
    let (target_keys, left_out) = list(target, &dst).await?;
    report.warnings.extend(left_out);
    let wanted: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let extra: Vec<String> = target_keys
        .iter()
        .filter(|k| !wanted.contains(k.as_str()))
        .cloned()
        .collect();

    let workers = crate::start(ctx, keys.len(), options.workers, source, target);
    let roots = (
        source.local_path().and_then(|p| p.canonicalize().ok()),
        target.local_path().and_then(|p| p.canonicalize().ok()),
    );
    let both_local = roots.0.clone().zip(roots.1.clone());
    let sides = Arc::new((src, dst, source.clone(), target.clone(), roots));
    let mut table = VerifyTable {
        rule: if both_local.is_some() {
            "size, then every byte of both files compared".into()
        } else {
            "size, then BLAKE3 of the whole content read back from both sides".into()
        },
        ..VerifyTable::default()
    };
    let mut stats = TableStats {
        total: keys.len() as u64,
        ..TableStats::default()
    };
    let (mut missing, mut different) = (0u64, 0u64);
    let cap = |list: &mut Vec<String>, item: String| {
        if list.len() < MAX_ERRORS_KEPT {
            list.push(item);
        }
    };
    let on_done = |(key, found): (String, Found)| match found {
        Found::Match(_) => {
            table.source_rows += 1;
            stats.migrated += 1;
        }
        Found::MissingInTarget(_) => {
            table.source_rows += 1;
            missing += 1;
            cap(&mut table.missing_keys, key);
        }
        Found::Different(_, why) => {
            table.source_rows += 1;
            different += 1;
            cap(&mut table.different_keys, format!("{key} ({why})"));
        }
        Found::MissingInSource => {
            stats.failed += 1;
            stats.push_error(format!("{key}: missing in the source"));
        }
        Found::Error(e) => {
            stats.failed += 1;
            stats.push_error(format!("{key}: {e}"));
        }
    };
    let observer = ctx.observer.clone();
    let decide = move |(key, found): &(String, Found)| {
        announce(observer.as_ref(), key, found);
        true
    };
    let cancelled = match both_local {
        Some((src_root, dst_root)) => {
            pool::threads(
                keys,
                workers,
                &ctx.cancel,
                move |key: String, bufs: &mut local::Buffers| {
                    let found = match check_key(&key) {
                        Ok(()) => {
                            local::compare_files(&src_root.join(&key), &dst_root.join(&key), bufs)
                        }
                        Err(e) => Found::Error(e),
                    };
                    (key, found)
                },
                decide,
                on_done,
            )
            .await?
        }
        None => {
            pool::tasks(
                keys,
                workers,
                &ctx.cancel,
                |key| {
                    let sides = sides.clone();
                    async move {
                        let (src, dst, s, t, roots) = &*sides;
                        let found = compare(src, dst, s, t, roots, &key).await;
                        (key, found)
                    }
                },
                decide,
                on_done,
            )
            .await?
        }
    };
    if cancelled {
        return Err(Error::cancelled());
    }

    let mut extras_left = extra.len() as u64;
    if !extra.is_empty() && options.delete_extra {
        if !ctx.confirm.confirm_erase(&extra) {
            return Err(Error::input(format!(
                "refused to delete {} extra objects at {target}: confirm on a terminal or pass --yes",
                extra.len()
            )));
        }
        ctx.observer.event(&BlobEvent::Phase(format!(
            "Deleting {} extra objects",
            extra.len()
        )));
        for key in &extra {
            match sides.1.delete(key).await {
                Ok(()) => extras_left -= 1,
                Err(e) => {
                    stats.failed += 1;
                    stats.push_error(target.scrub(&format!(
                        "{key}: cannot delete the extra object: {}",
                        one_line(&e)
                    )));
                }
            }
        }
        report.warnings.push(format!(
            "deleted {} extra objects at the target",
            extra.len() as u64 - extras_left
        ));
    } else {
        for key in extra.iter().take(MAX_ERRORS_KEPT) {
            table.extra_keys.push(key.clone());
        }
    }
    // The target's count of manifest files plus what is extra there.
    table.target_rows = table.source_rows - missing + extras_left;
    table.checksum_match = missing == 0 && different == 0 && extras_left == 0;
    (
        table.missing_count,
        table.different_count,
        table.extra_count,
    ) = (missing, different, extras_left);
    if missing + different + extras_left > 0 {
        report.warnings.push(format!(
            "verify: {missing} missing at the target, {different} different, {extras_left} extra{}",
            if extras_left > 0 && !options.delete_extra {
                " (--delete-extra removes extras)"
            } else {
                ""
            }
        ));
    }
    stats.elapsed_s = started.elapsed().as_secs_f64();
    report.verify.insert(options.name.clone(), table);
    report.stats.insert(options.name.clone(), stats);
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.peak_rss_mb = ferry_core::report::peak_rss_mb();
    Ok(report)
}

/// Tells the observer one file was compared.
fn announce(observer: &dyn BlobObserver, key: &str, found: &Found) {
    let (outcome, size) = match found {
        Found::Match(n) => (Outcome::Matched, *n),
        Found::MissingInTarget(n) | Found::Different(n, _) => (Outcome::Differs, *n),
        Found::MissingInSource | Found::Error(_) => (Outcome::Failed, 0),
    };
    observer.event(&BlobEvent::File {
        key: key.to_string(),
        outcome,
        size,
        moved: 0,
    });
}

async fn compare(
    src: &Operator,
    dst: &Operator,
    s: &Store,
    t: &Store,
    roots: &(Option<PathBuf>, Option<PathBuf>),
    key: &str,
) -> Found {
    let size = match transfer::size_of(src, key).await {
        Ok(Some(n)) => n,
        Ok(None) => return Found::MissingInSource,
        Err(e) => return Found::Error(s.scrub(&format!("reading the source: {}", one_line(&e)))),
    };
    match transfer::size_of(dst, key).await {
        Ok(None) => return Found::MissingInTarget(size),
        Ok(Some(n)) if n != size => {
            return Found::Different(
                size,
                format!("{n} bytes at the target, {size} at the source"),
            );
        }
        Ok(Some(_)) => {}
        Err(e) => return Found::Error(t.scrub(&format!("at the target: {}", one_line(&e)))),
    }
    // Both sides at once; local folders are read straight from disk.
    match tokio::try_join!(
        transfer::hash_side(src, roots.0.as_ref(), key),
        transfer::hash_side(dst, roots.1.as_ref(), key)
    ) {
        Ok((a, b)) if a == b => Found::Match(size),
        Ok(_) => Found::Different(size, "same size, content differs".into()),
        Err(e) => Found::Error(t.scrub(&s.scrub(&e))),
    }
}
