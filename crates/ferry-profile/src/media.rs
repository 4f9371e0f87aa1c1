//! The files an import's rows name: the media locators, the copy (or, in dry runs, the
//! inventory) through ferry blobs with a read-back check, and the file events turned into the
//! row events a CLI or server shows.

use std::sync::{Arc, Mutex};

use ferry_blobs::{BlobEvent, BlobObserver, Manifest, Outcome, Store};
use ferry_core::engine::Context;
use ferry_core::progress::{Answer, Event};
use ferry_core::report::{Report, Status, TableStats, VerifyTable};
use ferry_core::{Error, Result};

use crate::engine::ImportOptions;

/// The media locators, both or neither; a local source folder must exist.
pub(crate) fn media_stores(options: &ImportOptions) -> Result<Option<(Store, Store)>> {
    match (&options.media_from, &options.media_to) {
        (None, None) => Ok(None),
        (Some(from), Some(to)) => {
            let from = Store::parse(from)?;
            if let Some(p) = from.local_path()
                && !p.is_dir()
            {
                return Err(Error::input(format!(
                    "the media folder {} does not exist: give the application's storage folder with --media-from",
                    p.display()
                )));
            }
            Ok(Some((from, Store::parse(to)?)))
        }
        _ => Err(Error::input(
            "--media-from and --media-to go together: give both (or neither to import rows only)",
        )),
    }
}

pub(crate) struct Files {
    pub cancelled: bool,
}

/// Copies (or, in dry runs, inventories) the files rows named, through ferry blobs.
pub(crate) async fn copy_media(
    cx: &Context,
    dry_run: bool,
    stores: Option<&(Store, Store)>,
    keys: Vec<String>,
    stats: &mut TableStats,
    report: &mut Report,
) -> Result<Files> {
    let mut keys = keys;
    keys.sort();
    keys.dedup();
    let Some((from, to)) = stores else {
        stats.skipped += keys.len() as u64;
        cx.observer.event(&Event::TableFinished {
            table: "media".into(),
            migrated: 0,
            failed: 0,
            elapsed_s: 0.0,
        });
        report.warnings.push(format!(
            "media: {} files named by the rows were not {} (give --media-from and --media-to)",
            keys.len(),
            if dry_run { "looked at" } else { "copied" }
        ));
        return Ok(Files { cancelled: false });
    };
    cx.observer.event(&Event::Phase(format!(
        "{} the files ({from} → {to})",
        if dry_run { "Looking at" } else { "Copying" }
    )));
    let tally = Arc::new(Tally {
        observer: cx.observer.clone(),
        found_bytes: Mutex::new((0, 0)),
    });
    let bcx = ferry_blobs::Context {
        observer: tally.clone(),
        confirm: Arc::new(Answer(false)),
        cancel: cx.cancel.clone(),
    };
    let options = ferry_blobs::CopyOptions {
        dry_run,
        ignore_errors: true,
        verify: true,
        ..ferry_blobs::CopyOptions::default()
    };
    let named = keys.len() as u64;
    let blob = ferry_blobs::copy(from, to, &Manifest::Keys(keys), &options, &bcx).await?;
    let b = blob.stats.get("media").cloned().unwrap_or_default();
    stats.migrated += b.migrated;
    stats.skipped += b.skipped;
    stats.failed += b.failed;
    for e in &b.errors {
        stats.push_error(e.clone());
    }
    let (found, bytes) = *tally.found_bytes.lock().expect("not poisoned");
    if dry_run {
        stats.migrated += found - b.skipped.min(found);
        stats.bytes = bytes;
        report.warnings.push(format!(
            "dry run: media inventory: {found} files, {} ({} missing)",
            ferry_blobs::human_bytes(bytes),
            b.failed
        ));
    } else if named == 0 {
        // Nothing was compared: say so rather than report a match.
        report.warnings.push(
            "media: no file to verify (no row naming files changed since the last run): nothing compared"
                .into(),
        );
    } else {
        stats.bytes += b.bytes;
        report.verify.insert(
            "media".into(),
            VerifyTable {
                source_rows: named,
                target_rows: b.migrated + b.skipped,
                checksum_match: b.failed == 0,
                missing_keys: b
                    .errors
                    .iter()
                    .filter_map(|e| e.split(": ").next().map(str::to_string))
                    .collect(),
                rule: "each file read back from the target and its BLAKE3 hash compared with the source's (ferry blobs)".into(),
                ..VerifyTable::default()
            },
        );
    }
    cx.observer.event(&Event::TableFinished {
        table: "media".into(),
        migrated: stats.migrated,
        failed: stats.failed,
        elapsed_s: b.elapsed_s,
    });
    Ok(Files {
        cancelled: blob.status == Status::Cancelled,
    })
}

/// Turns file events into the row events a CLI or server already shows, and sums what a dry
/// run found (files, bytes).
struct Tally {
    observer: Arc<dyn ferry_core::progress::Observer>,
    found_bytes: Mutex<(u64, u64)>,
}

impl BlobObserver for Tally {
    fn event(&self, event: &BlobEvent) {
        match event {
            BlobEvent::File {
                outcome,
                size,
                moved,
                ..
            } => {
                let failed = matches!(outcome, Outcome::Failed | Outcome::Differs);
                if !failed {
                    let mut t = self.found_bytes.lock().expect("not poisoned");
                    t.0 += 1;
                    t.1 += size;
                }
                self.observer.event(&Event::TableProgress {
                    table: "media".into(),
                    rows: u64::from(!failed),
                    failed: u64::from(failed),
                    bytes: *moved,
                });
            }
            BlobEvent::Warning(w) => self.observer.event(&Event::Warning(w.clone())),
            _ => {}
        }
    }
}
