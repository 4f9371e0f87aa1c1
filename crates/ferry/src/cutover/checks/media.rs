//! `media`: the files, through ferry blobs' verification: the same count and bytes on both
//! sides, every file compared by content (all, or a random sample the report names), and every
//! file a migrated row points at present in the target.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_blobs::{BlobEvent, BlobObserver, Manifest, Outcome, Store, VerifyOptions, human_bytes};
use serde::{Deserialize, Serialize};

use super::{Env, Found, column, sample};
use crate::cutover::ReconRow;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// `"all"` (default) or a number of files compared by content, picked at random.
    pub sample: Sample,
    /// The files that should be there: SQL on the source database (default the job's
    /// `manifest_sql`, else every file under the source).
    pub manifest_sql: Option<String>,
    /// SQL on the target database returning the key of every file a migrated row points at.
    pub referenced_sql: Option<String>,
    pub workers: Option<usize>,
}

/// How many files are compared by content: `"all"` or a number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sample {
    #[default]
    All,
    Some(usize),
}

impl Serialize for Sample {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Sample::All => s.serialize_str("all"),
            Sample::Some(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(usize),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) if n > 0 => Ok(Sample::Some(n)),
            Raw::Text(t) if t == "all" => Ok(Sample::All),
            _ => Err(serde::de::Error::custom(
                "sample: write \"all\" or a number of files (at least 1)",
            )),
        }
    }
}

/// Sums the bytes of the files a verification looked at.
#[derive(Default)]
struct Bytes(AtomicU64);

impl BlobObserver for Bytes {
    fn event(&self, event: &BlobEvent) {
        if let BlobEvent::File {
            outcome: Outcome::Matched | Outcome::Differs,
            size,
            ..
        } = event
        {
            self.0.fetch_add(*size, Ordering::Relaxed);
        }
    }
}

pub async fn run(p: &Params, env: &Env<'_>) -> ferry_core::Result<Found> {
    let (Some(from), Some(to)) = (&env.spec.source.media, &env.spec.target.media) else {
        return Ok(Found::skipped(
            "no media locations: set [source] media and [target] media (or --media-from/--media-to)",
        ));
    };
    let (source, target) = (Store::parse(from)?, Store::parse(to)?);
    let manifest_sql = p
        .manifest_sql
        .as_ref()
        .or(env.spec.job.manifest_sql.as_ref());
    let manifest = match manifest_sql {
        Some(sql) => Manifest::Sql {
            db: crate::open_query_source(&env.spec.source.database).await?,
            sql: sql.clone(),
        },
        None => Manifest::Listing,
    };
    let listing = manifest_sql.is_none();
    let (keys, _) = ferry_blobs::manifest::keys(&source, &manifest).await?;
    let (target_keys, _) = ferry_blobs::manifest::keys(&target, &Manifest::Listing).await?;
    let mut problems = Vec::new();
    // Files the manifest does not name (thumbnails a platform makes itself) are only a count
    // difference when the manifest is the whole source.
    if listing && keys.len() != target_keys.len() {
        problems.push(format!(
            "{} files in the source, {} in the target",
            keys.len(),
            target_keys.len()
        ));
    }
    let (chosen, sampled) = match p.sample {
        Sample::All => (keys.clone(), false),
        Sample::Some(n) => (sample(&keys, n), n < keys.len()),
    };
    let bytes = Arc::new(Bytes::default());
    let compared = verify(
        &source,
        &target,
        chosen.clone(),
        p.workers,
        bytes.clone(),
        env,
    )
    .await?;
    let v = compared.verify.values().next().cloned().unwrap_or_default();
    let failed: u64 = compared.stats.values().map(|s| s.failed).sum();
    let errors: Vec<String> = compared
        .stats
        .values()
        .flat_map(|s| s.errors.iter().cloned())
        .collect();
    if v.missing_count > 0 {
        problems.push(format!(
            "{} files missing in the target (e.g. {})",
            v.missing_count,
            v.missing_keys.first().map_or("", String::as_str)
        ));
    }
    if v.different_count > 0 {
        problems.push(format!(
            "{} files differ (e.g. {})",
            v.different_count,
            v.different_keys.first().map_or("", String::as_str)
        ));
    }
    if failed > 0 {
        problems.push(format!(
            "{failed} files could not be compared ({})",
            errors.first().map_or("", String::as_str)
        ));
    }
    let mut table = vec![ReconRow {
        name: "media files".into(),
        source: keys.len() as u64,
        target: target_keys.len() as u64,
        matched: problems.is_empty(),
        note: v.rule.clone(),
    }];
    let total = bytes.0.load(Ordering::Relaxed);
    let mut referenced_note = String::new();
    if let Some(sql) = &p.referenced_sql {
        let wanted: Vec<String> = column(&env.spec.target.database, sql)
            .await
            .map_err(|e| e.context("referenced_sql"))?
            .into_iter()
            .flatten()
            .map(|k| k.trim_start_matches('/').to_string())
            .filter(|k| !k.is_empty())
            .collect();
        let present: std::collections::HashSet<&str> =
            target_keys.iter().map(String::as_str).collect();
        let absent: Vec<&String> = wanted
            .iter()
            .filter(|k| !present.contains(k.as_str()))
            .collect();
        if let Some(first) = absent.first() {
            problems.push(format!(
                "{} of {} files that migrated rows point at are not in the target (e.g. {first})",
                absent.len(),
                wanted.len()
            ));
        }
        table.push(ReconRow::present(
            "files rows point at",
            wanted.len(),
            absent.len(),
            "present in the target storage",
        ));
        referenced_note = format!("; all {} files rows point at exist", wanted.len());
    }
    let how = if sampled {
        format!(
            "a random sample of {} of {} files",
            chosen.len(),
            keys.len()
        )
    } else {
        format!("{} files", chosen.len())
    };
    let mut found = Found::judge(
        format!(
            "{} files and {} compared by content ({how}){referenced_note}",
            keys.len(),
            human_bytes(total)
        ),
        problems,
    );
    if sampled {
        found.details.push(format!(
            "sampled: {} of {} files compared by content",
            chosen.len(),
            keys.len()
        ));
    }
    found.table = table;
    Ok(found)
}

async fn verify(
    source: &Store,
    target: &Store,
    keys: Vec<String>,
    workers: Option<usize>,
    bytes: Arc<Bytes>,
    env: &Env<'_>,
) -> ferry_core::Result<ferry_blobs::Report> {
    let ctx = ferry_blobs::Context {
        observer: bytes,
        cancel: env.cx.cancel.clone(),
        ..ferry_blobs::Context::default()
    };
    let options = VerifyOptions {
        workers,
        ..VerifyOptions::default()
    };
    ferry_blobs::verify(source, target, &Manifest::Keys(keys), &options, &ctx).await
}
