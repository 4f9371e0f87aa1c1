//! `reconcile`: source vs target rows, counted now. A copy is compared by `ferry verify` itself
//! (counts and content checksums per table); a profile import by its own verification run
//! again (`ferry_profile::verify`), or by pairs of count queries; and the last run's failed
//! rows must stay within `max_failed` and `max_failed_ratio`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Env, Found, scalar};
use crate::cutover::ReconRow;
use crate::cutover::spec::JobKind;
use crate::{TableFilter, parse_locator};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Tables to compare (names or globs); default the job's.
    pub tables: Vec<String>,
    pub exclude: Vec<String>,
    /// Count pairs, for a profile import (or anything a table comparison cannot express).
    pub queries: Vec<CountPair>,
    /// The last run's JSON summary (`--summary FILE` of copy, migrate or import); default the
    /// one `cutover sync` recorded.
    pub last_report: Option<PathBuf>,
    pub max_failed: u64,
    pub max_failed_ratio: f64,
    /// Tables compared at once (default: the number of cores).
    pub workers: Option<usize>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            tables: Vec::new(),
            exclude: Vec::new(),
            queries: Vec::new(),
            last_report: None,
            max_failed: 0,
            max_failed_ratio: 0.001,
            workers: None,
        }
    }
}

/// Two queries that each return one number, expected equal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountPair {
    pub name: String,
    pub source: String,
    pub target: String,
}

pub async fn run(p: &Params, env: &Env<'_>) -> ferry_core::Result<Found> {
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    let what;
    if !p.queries.is_empty() {
        for pair in &p.queries {
            let s = count(&env.spec.source.database, &pair.source)
                .await
                .map_err(|e| e.context(format!("{} (source)", pair.name)))?;
            let t = count(&env.spec.target.database, &pair.target)
                .await
                .map_err(|e| e.context(format!("{} (target)", pair.name)))?;
            if s != t {
                problems.push(format!(
                    "{}: {s} in the source, {t} in the target",
                    pair.name
                ));
            }
            rows.push(ReconRow {
                name: pair.name.clone(),
                source: s,
                target: t,
                matched: s == t,
                note: "row counts".into(),
            });
        }
        what = format!("{} count pairs", p.queries.len());
    } else if env.spec.job.kind == JobKind::Copy {
        let (tables, exclude) = if p.tables.is_empty() && p.exclude.is_empty() {
            (&env.spec.job.tables, &env.spec.job.exclude)
        } else {
            (&p.tables, &p.exclude)
        };
        let filter = TableFilter::new(tables, exclude)?;
        let source = parse_locator(&env.spec.source.database)?;
        let target = parse_locator(&env.spec.target.database)?;
        let workers = p.workers.unwrap_or_else(crate::spec::default_workers);
        let report = crate::verify(&source, &target, filter, workers, env.cx).await?;
        if let Some(e) = &report.error {
            return Ok(Found::fail(format!("verification failed: {e}")));
        }
        for (name, v) in &report.verify {
            if !v.ok() {
                let mut why = format!(
                    "{name}: {} rows in the source, {} in the target",
                    v.source_rows, v.target_rows
                );
                if let Some(e) = &v.error {
                    why = format!("{name}: {e}");
                } else if v.missing_count + v.extra_count + v.different_count > 0 {
                    why.push_str(&format!(
                        "; {} missing, {} extra, {} different",
                        v.missing_count, v.extra_count, v.different_count
                    ));
                    if let Some(k) = v.missing_keys.first() {
                        why.push_str(&format!(" (missing e.g. {k})"));
                    }
                } else {
                    why.push_str("; content checksums differ");
                }
                if let Some(c) = &v.source_changed {
                    why.push_str(&format!("; {c}"));
                }
                problems.push(why);
            }
            let note = if v.checksum_match {
                "counts and content checksums".into()
            } else {
                format!(
                    "{} missing, {} extra, {} different",
                    v.missing_count, v.extra_count, v.different_count
                )
            };
            rows.push(ReconRow::verified(name, v, note));
        }
        what = format!(
            "{} tables, counts and content checksums",
            report.verify.len()
        );
    } else {
        // A profile import is reconciled by its own verification (per entity: the source rows
        // it would not skip vs the target rows of this source host, by count and content),
        // run again now, so a row changed or deleted after the last run is caught.
        let report = crate::cutover::profile_verify(env.spec, env.cx).await?;
        for (name, v) in &report.verify {
            if !v.ok() {
                let mut why = format!(
                    "{name}: {} rows expected from the source, {} in the target",
                    v.source_rows, v.target_rows
                );
                if v.missing_count + v.extra_count + v.different_count > 0 {
                    why.push_str(&format!(
                        "; {} missing, {} extra, {} different",
                        v.missing_count, v.extra_count, v.different_count
                    ));
                    if let Some(k) = v.missing_keys.first().or(v.different_keys.first()) {
                        why.push_str(&format!(" (e.g. {k})"));
                    }
                }
                problems.push(why);
            }
            let note = if v.counts_only {
                "row counts"
            } else {
                "counts and content"
            };
            rows.push(ReconRow::verified(name, v, note.into()));
        }
        what = format!(
            "{} entities, the import's verification run again now",
            report.verify.len()
        );
    }
    let failed_note = failed_rows(p, env, &mut problems)?;
    let mut found = Found::judge(
        format!("{what}: all {} match{failed_note}", rows.len()),
        problems,
    );
    found.table = rows;
    Ok(found)
}

async fn count(db: &str, sql: &str) -> ferry_core::Result<u64> {
    let text = scalar(db, sql).await?.unwrap_or_default();
    text.trim().parse::<u64>().map_err(|_| {
        ferry_core::Error::run(format!(
            "the count query returned '{}', not a number",
            text.chars().take(40).collect::<String>()
        ))
    })
}

/// The last run's JSON summary: `last_report`, else the final pass `sync` recorded.
fn last_summary(p: &Params, env: &Env<'_>) -> ferry_core::Result<Option<Value>> {
    Ok(match &p.last_report {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ferry_core::Error::input(format!("last_report {}: {e}", path.display()))
            })?;
            Some(serde_json::from_str(&text).map_err(|e| {
                ferry_core::Error::input(format!(
                    "last_report {} is not a ferry JSON summary: {e}",
                    path.display()
                ))
            })?)
        }
        None => env.state.as_ref().and_then(|s| s.sync_report.clone()),
    })
}

/// Checks the last run's failed rows against the thresholds; returns a note for the evidence.
fn failed_rows(
    p: &Params,
    env: &Env<'_>,
    problems: &mut Vec<String>,
) -> ferry_core::Result<String> {
    let Some(summary) = last_summary(p, env)? else {
        return Ok(String::new());
    };
    let (mut failed, mut total) = (0u64, 0u64);
    if let Some(stats) = summary.get("stats").and_then(Value::as_object) {
        for s in stats.values() {
            failed += s.get("failed").and_then(Value::as_u64).unwrap_or(0);
            total += s.get("total").and_then(Value::as_u64).unwrap_or(0);
        }
    }
    let ratio = if total == 0 {
        0.0
    } else {
        failed as f64 / total as f64
    };
    if failed > p.max_failed && ratio > p.max_failed_ratio {
        problems.push(format!(
            "the last run failed {failed} of {total} rows ({:.3} %): more than max_failed = {} and max_failed_ratio = {}",
            ratio * 100.0,
            p.max_failed,
            p.max_failed_ratio
        ));
    }
    Ok(format!("; last run {failed} of {total} rows failed"))
}
