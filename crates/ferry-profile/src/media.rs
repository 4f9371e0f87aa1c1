//! The files an import's rows name: the media locators, the copy (or, in dry runs, the
//! inventory) through ferry blobs with a read-back check, and the file events turned into the
//! row events a CLI or server shows.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ferry_blobs::{BlobEvent, BlobObserver, Manifest, Outcome, Store};
use ferry_core::engine::Context;
use ferry_core::progress::{Answer, Event};
use ferry_core::report::{Report, Status, TableStats, VerifyTable};
use ferry_core::schema::SkippedObject;
use ferry_core::{Error, Result};
use serde_json::{Map, Value};

use crate::engine::ImportOptions;
use crate::expr::{Env, Expr, render};
use crate::format::{Entity, Profile};

/// One file a row names: read from `store` (None: `--media-from`) at `from` + `rest`, written
/// under `--media-to` at `to` + `rest` (the path the target rows name). `rest` is the longest
/// run of trailing path segments the store's key and the path share, so files of one store
/// and folder layout go in one blobs copy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct MediaFile {
    pub store: Option<String>,
    pub from: String,
    pub to: String,
    pub rest: String,
}

impl MediaFile {
    fn path(&self) -> String {
        format!("{}{}", self.to, self.rest)
    }
}

/// The file one `media` expression names in `row` (NULL: none), located by the entity's
/// `media_store` and `media_key`.
pub(crate) fn locate(
    entity: &Entity,
    media: &Expr,
    row: &Map<String, Value>,
    env: &Env<'_>,
) -> std::result::Result<Option<MediaFile>, String> {
    let Some(path) = render(&media.eval(row, env)?) else {
        return Ok(None);
    };
    let eval = |e: &Option<Expr>| -> std::result::Result<Option<String>, String> {
        Ok(match e {
            Some(e) => render(&e.eval(row, env)?),
            None => None,
        })
    };
    let store = eval(&entity.media_store)?;
    let Some(key) = eval(&entity.media_key)? else {
        return Ok(Some(MediaFile {
            store,
            from: String::new(),
            to: String::new(),
            rest: path,
        }));
    };
    let (k, p): (Vec<&str>, Vec<&str>) = (key.split('/').collect(), path.split('/').collect());
    let shared = k
        .iter()
        .rev()
        .zip(p.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    if shared == 0 || k.last().is_some_and(|n| n.is_empty()) {
        return Err(format!(
            "the file's key '{key}' in its store and its path '{path}' name different files"
        ));
    }
    let folder = |parts: &[&str]| parts.iter().map(|s| format!("{s}/")).collect::<String>();
    Ok(Some(MediaFile {
        store,
        from: folder(&k[..k.len() - shared]),
        to: folder(&p[..p.len() - shared]),
        rest: k[k.len() - shared..].join("/"),
    }))
}

/// Where files are read from and written to: `--media-from` (the store `None`), the named
/// stores given with `--media-store`, and `--media-to`.
pub(crate) struct Stores {
    to: Option<Store>,
    from: BTreeMap<Option<String>, Store>,
    /// The profile's named stores and what each is, for messages.
    declared: BTreeMap<String, String>,
}

impl Stores {
    /// `--media-from`, the application's own storage folder, when given.
    pub(crate) fn media_from(&self) -> Option<&Store> {
        self.from.get(&None)
    }
}

/// The media locators: `--media-to` with `--media-from` and/or named stores, or none at all;
/// a local source folder must exist and every named store must be one the profile declares.
pub(crate) fn media_stores(profile: &Profile, options: &ImportOptions) -> Result<Stores> {
    let source = |text: &str| -> Result<Store> {
        let from = Store::parse(text)?;
        if let Some(p) = from.local_path()
            && !p.is_dir()
        {
            return Err(Error::input(format!(
                "the media folder {} does not exist: give the application's storage folder with --media-from",
                p.display()
            )));
        }
        Ok(from)
    };
    let mut from = BTreeMap::new();
    if let Some(f) = &options.media_from {
        from.insert(None, source(f)?);
    }
    for (name, locator) in &options.media_stores {
        if !profile.media_stores.contains_key(name) {
            let known: Vec<&str> = profile.media_stores.keys().map(String::as_str).collect();
            return Err(Error::input(format!(
                "--media-store {name}: profile {} has no media store '{name}' (it has: {})",
                profile.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        from.insert(
            Some(name.clone()),
            source(locator).map_err(|e| e.context(format!("--media-store {name}")))?,
        );
    }
    let to = match (&options.media_to, from.is_empty()) {
        (None, true) => None,
        (Some(to), false) => Some(Store::parse(to)?),
        (None, false) if options.media_from.is_none() => {
            return Err(Error::input(
                "--media-store needs --media-to: give where the files go",
            ));
        }
        _ => {
            return Err(Error::input(
                "--media-from and --media-to go together: give both (or neither to import rows only)",
            ));
        }
    };
    Ok(Stores {
        to,
        from,
        declared: profile.media_stores.clone(),
    })
}

pub(crate) struct Files {
    pub cancelled: bool,
    /// Files named by rows but not copied (or looked at) because their store was not given.
    pub not_copied: u64,
}

/// Copies (or, in dry runs, inventories) the files rows named, through ferry blobs: one copy
/// per source store and target folder.
pub(crate) async fn copy_media(
    cx: &Context,
    dry_run: bool,
    stores: &Stores,
    files: Vec<MediaFile>,
    stats: &mut TableStats,
    report: &mut Report,
) -> Result<Files> {
    let mut files = files;
    files.sort_by_key(MediaFile::path);
    files.dedup_by_key(|f| f.path());
    let Some(to) = &stores.to else {
        stats.skipped += files.len() as u64;
        cx.observer.event(&Event::TableFinished {
            table: "media".into(),
            migrated: 0,
            failed: 0,
            elapsed_s: 0.0,
        });
        report.warnings.push(format!(
            "media: {} files named by the rows were not {} (give --media-from and --media-to)",
            files.len(),
            if dry_run { "looked at" } else { "copied" }
        ));
        return Ok(Files {
            cancelled: false,
            not_copied: files.len() as u64,
        });
    };
    let mut groups: BTreeMap<(Option<String>, String, String), Vec<String>> = BTreeMap::new();
    for f in files {
        groups
            .entry((f.store, f.from, f.to))
            .or_default()
            .push(f.rest);
    }
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
    let mut b = TableStats::default();
    let mut elapsed_s = 0.0;
    let (mut named, mut cancelled) = (0u64, false);
    let mut left_out: BTreeMap<Option<String>, u64> = BTreeMap::new();
    for ((store, from_folder, prefix), keys) in groups {
        let Some(from) = stores.from.get(&store) else {
            *left_out.entry(store).or_default() += keys.len() as u64;
            cx.observer.event(&Event::TableProgress {
                table: "media".into(),
                rows: keys.len() as u64,
                failed: 0,
                bytes: 0,
            });
            continue;
        };
        if cancelled {
            break;
        }
        let (from, dst) = (from.join(&from_folder), to.join(&prefix));
        cx.observer.event(&Event::Phase(format!(
            "{} the files ({from} → {dst})",
            if dry_run { "Looking at" } else { "Copying" }
        )));
        named += keys.len() as u64;
        let blob = ferry_blobs::copy(&from, &dst, &Manifest::Keys(keys), &options, &bcx).await?;
        let g = blob.stats.get("media").cloned().unwrap_or_default();
        b.migrated += g.migrated;
        b.skipped += g.skipped;
        b.failed += g.failed;
        b.bytes += g.bytes;
        // Errors name the file by the path the target rows use.
        for e in &g.errors {
            b.push_error(format!("{prefix}{e}"));
        }
        elapsed_s += g.elapsed_s;
        cancelled = blob.status == Status::Cancelled;
    }
    stats.migrated += b.migrated;
    stats.skipped += b.skipped;
    stats.failed += b.failed;
    for e in &b.errors {
        stats.push_error(e.clone());
    }
    let not_copied: u64 = left_out.values().sum();
    stats.skipped += not_copied;
    for (store, n) in &left_out {
        let (name, option) = match store {
            Some(s) => (
                format!(
                    "media store {s} ({})",
                    stores.declared.get(s).map_or("", String::as_str)
                ),
                format!("--media-store {s}=<locator>"),
            ),
            None => (
                "the application's storage folder".to_string(),
                "--media-from".to_string(),
            ),
        };
        let reason = format!(
            "{n} files not {}: give {option}",
            if dry_run { "looked at" } else { "copied" }
        );
        report.warnings.push(format!("media: {name}: {reason}"));
        report.not_copied.push(SkippedObject {
            kind: "files".into(),
            name,
            reason,
            count: Some(*n),
            bytes: None,
        });
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
        elapsed_s,
    });
    Ok(Files {
        cancelled,
        not_copied,
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
                if *outcome == Outcome::Copied {
                    ferry_core::killpoint::point("file-copied");
                }
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
