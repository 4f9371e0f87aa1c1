//! `ferry cutover`: the last step of a move as one command whose answer is GO or NO-GO, with
//! the evidence. [`check`] runs a spec's checks (reconcile, media, frozen, http, backup,
//! rollback, playable) in order and gives an [`Outcome`]; [`sync`] runs the final pass first
//! (copy or profile import, then the files), records the source's state for `frozen` and
//! `rollback`, and times the cutover window. Outputs (terminal, JSON, JUnit, HTML) are in
//! [`report`]; the spec format in [`spec`]. Exit codes: 0 GO, 1 NO-GO, 2 bad spec or
//! unreachable service.

pub mod checks;
pub mod preset;
pub mod report;
pub mod spec;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use ferry_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use checks::{Env, Found, Params};
pub use spec::{CutoverSpec, JobKind, Severity};

/// A check's status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Pass,
    Fail,
    Skipped,
}

/// One check's result, as every output shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub kind: String,
    pub severity: Severity,
    pub status: Status,
    /// One line.
    pub evidence: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    pub duration_s: f64,
}

/// One line of the reconciliation table: a table, an entity or a file set on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct ReconRow {
    pub name: String,
    pub source: u64,
    pub target: u64,
    pub matched: bool,
    pub note: String,
}

impl ReconRow {
    /// `wanted` things expected on the target, of which `absent` are not there.
    fn present(name: &str, wanted: usize, absent: usize, note: &str) -> Self {
        Self {
            name: name.into(),
            source: wanted as u64,
            target: (wanted - absent) as u64,
            matched: absent == 0,
            note: note.into(),
        }
    }

    /// A table or entity as verification compared it.
    fn verified(name: &str, v: &ferry_core::report::VerifyTable, note: String) -> Self {
        Self {
            name: name.into(),
            source: v.source_rows,
            target: v.target_rows,
            matched: v.ok(),
            note,
        }
    }
}

/// A table's row count and watermark, as `sync` records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    pub rows: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
}

/// What `sync` recorded at the end of the final pass (the spec's `state` file).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Unix seconds.
    pub synced_at: u64,
    pub source: BTreeMap<String, Reading>,
    /// The final pass's JSON summary, for `reconcile`'s failed-row thresholds.
    #[serde(default)]
    pub sync_report: Option<Value>,
}

/// GO when no blocker failed or was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    #[serde(rename = "GO")]
    Go,
    #[serde(rename = "NO-GO")]
    NoGo,
}

/// What the final pass of `sync` did.
#[derive(Debug, Clone, Serialize)]
pub struct SyncSummary {
    /// "copy" (the job's tables copied again) or "profile import (incremental)".
    pub how: String,
    pub rows: u64,
    pub failed_rows: u64,
    pub files: u64,
    pub elapsed_s: f64,
}

/// A cutover run's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub verdict: Verdict,
    pub source: String,
    pub target: String,
    /// Unix seconds when the run started.
    pub started_at: u64,
    pub elapsed_s: f64,
    /// `sync` only: wall time from the start of the final pass to the verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncSummary>,
    pub checks: Vec<CheckResult>,
    /// Checks left out with `--only`/`--skip`.
    pub excluded: Vec<String>,
    /// Check name → its rows.
    pub reconciliation: BTreeMap<String, Vec<ReconRow>>,
    pub rollback_steps: Vec<String>,
    /// A check could not reach a database, storage or the platform (exit 2).
    pub unreachable: bool,
    /// The run could not start: a bad spec, selection or state file (exit 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Outcome {
    /// The run could not start (a bad spec, `--only`/`--skip` entry or state file): NO-GO,
    /// with the reason as one failed blocker named `spec`, so the JSON, JUnit and HTML files
    /// a CI system shows still say why.
    pub fn error(message: &str) -> Self {
        Self {
            verdict: Verdict::NoGo,
            source: String::new(),
            target: String::new(),
            started_at: unix_now(),
            elapsed_s: 0.0,
            window_s: None,
            sync: None,
            checks: vec![CheckResult {
                name: "spec".into(),
                kind: "spec".into(),
                severity: Severity::Blocker,
                status: Status::Fail,
                evidence: message.to_string(),
                details: Vec::new(),
                duration_s: 0.0,
            }],
            excluded: Vec::new(),
            reconciliation: BTreeMap::new(),
            rollback_steps: Vec::new(),
            unreachable: false,
            error: Some(message.to_string()),
        }
    }

    /// 0 GO, 1 NO-GO, 2 when a service could not be reached or the run could not start.
    pub fn exit_code(&self) -> i32 {
        if self.unreachable || self.error.is_some() {
            2
        } else if self.verdict == Verdict::Go {
            0
        } else {
            1
        }
    }
}

/// `--only` / `--skip`: kinds or check names.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl Selection {
    /// Whether `check` runs.
    fn runs(&self, check: &spec::Check) -> bool {
        let named = |list: &[String]| list.iter().any(|s| s == &check.name || s == check.kind());
        (self.only.is_empty() || named(&self.only)) && !named(&self.skip)
    }

    /// Every entry names a kind or a check of `checks`.
    ///
    /// # Errors
    /// An input error naming the entry.
    pub fn validate(&self, checks: &[spec::Check]) -> Result<()> {
        for (flag, list) in [("--only", &self.only), ("--skip", &self.skip)] {
            for s in list {
                if !checks::KINDS.contains(&s.as_str()) && !checks.iter().any(|c| &c.name == s) {
                    return Err(Error::input(format!(
                        "{flag} {s}: neither a check kind ({}) nor a check of the spec",
                        checks::KINDS.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The state `sync` recorded, if any.
///
/// # Errors
/// An input error when the file exists but is not a state file.
pub fn read_state(path: &Path) -> Result<Option<State>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::input(format!(
                "{} is not a cutover state file ({e}): delete it or run `ferry cutover sync`",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::input(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Runs the spec's checks (those `selection` keeps) in order.
///
/// # Errors
/// An input error for a bad spec, selection or state file; a check that fails is a result.
pub async fn check(
    spec: &CutoverSpec,
    selection: &Selection,
    cx: &crate::Context,
) -> Result<Outcome> {
    let state = match &spec.state {
        Some(p) => read_state(p)?,
        None => None,
    };
    run_checks(spec, selection, state, cx, Instant::now(), None).await
}

async fn run_checks(
    spec: &CutoverSpec,
    selection: &Selection,
    state: Option<State>,
    cx: &crate::Context,
    started: Instant,
    sync: Option<SyncSummary>,
) -> Result<Outcome> {
    let prepared = spec.prepared()?;
    selection.validate(&prepared)?;
    let env = Env::new(spec, state, cx);
    let redact =
        |db: &str| crate::parse_locator(db).map_or_else(|_| String::new(), |l| l.redacted());
    let mut outcome = Outcome {
        verdict: Verdict::Go,
        source: redact(&spec.source.database),
        target: redact(&spec.target.database),
        started_at: unix_now(),
        elapsed_s: 0.0,
        window_s: None,
        sync: sync.clone(),
        checks: Vec::new(),
        excluded: Vec::new(),
        reconciliation: BTreeMap::new(),
        rollback_steps: checks::source::steps(spec),
        unreachable: false,
        error: None,
    };
    for c in &prepared {
        if !selection.runs(c) {
            outcome.excluded.push(c.name.clone());
            continue;
        }
        if cx.cancel.is_cancelled() {
            return Err(Error::cancelled());
        }
        let t = Instant::now();
        let found = match run_one(&c.params, &env).await {
            Ok(found) => found,
            Err(e) => {
                if e.kind() == ErrorKind::Cancelled {
                    return Err(e);
                }
                outcome.unreachable |= e.kind() == ErrorKind::Input;
                Found::fail(e.to_string())
            }
        };
        env.record(&c.name, &found);
        if !found.table.is_empty() {
            let rows = found
                .table
                .iter()
                .map(|r| ReconRow {
                    name: env.scrub(&r.name),
                    note: env.scrub(&r.note),
                    ..r.clone()
                })
                .collect();
            outcome.reconciliation.insert(c.name.clone(), rows);
        }
        outcome.checks.push(CheckResult {
            name: c.name.clone(),
            kind: c.kind().to_string(),
            severity: c.severity,
            status: found.status,
            evidence: env.scrub(&found.evidence),
            details: found.details.iter().map(|d| env.scrub(d)).collect(),
            duration_s: t.elapsed().as_secs_f64(),
        });
    }
    let blocked = outcome
        .checks
        .iter()
        .any(|c| c.severity == Severity::Blocker && c.status != Status::Pass);
    outcome.verdict = if blocked || outcome.unreachable {
        Verdict::NoGo
    } else {
        Verdict::Go
    };
    outcome.elapsed_s = started.elapsed().as_secs_f64();
    if sync.is_some() {
        outcome.window_s = Some(outcome.elapsed_s);
    }
    Ok(outcome)
}

async fn run_one(params: &Params, env: &Env<'_>) -> Result<Found> {
    match params {
        Params::Reconcile(p) => checks::reconcile::run(p, env).await,
        Params::Media(p) => checks::media::run(p, env).await,
        Params::Frozen(p) => checks::source::frozen(p, env).await,
        Params::Http(p) => checks::http::run(p, env).await,
        Params::Backup(p) => checks::backup::run(p, env).await,
        Params::Rollback(p) => checks::source::rollback(p, env).await,
        Params::Playable(p) => checks::playable::run(p, env).await,
    }
}

/// The final incremental pass, then [`check`]: a profile job imports what changed since its
/// last run (its watermarks) with its files; a copy job copies its tables again into the
/// existing target tables (ferry copy has no incremental mode) and then the files that are new
/// or changed. Records the source's state in the spec's `state` file, and the outcome states
/// the window (start of the pass to the verdict).
///
/// # Errors
/// An input error when the pass cannot start; a failed pass is reported and checked.
pub async fn sync(
    spec: &CutoverSpec,
    selection: &Selection,
    cx: &crate::Context,
) -> Result<Outcome> {
    let started = Instant::now();
    let prepared = spec.prepared()?;
    selection.validate(&prepared)?;
    let (source, target) = (
        crate::parse_locator(&spec.source.database)?,
        crate::parse_locator(&spec.target.database)?,
    );
    let (report, how) = match spec.job.kind {
        JobKind::Copy => {
            let job = crate::JobSpec {
                source: spec.source.database.clone(),
                target: spec.target.database.clone(),
                tables: spec.job.tables.clone(),
                exclude: spec.job.exclude.clone(),
                // Erasing the target's tables is confirmed by the caller (`--yes` for scripts),
                // as for `ferry copy --force`.
                force: true,
                ..crate::JobSpec::default()
            };
            let options = job.copy_options(crate::Fields::Section("[job]"))?;
            (
                crate::copy(&source, &target, &options, cx).await?,
                "copy of the job's tables into the existing target tables".to_string(),
            )
        }
        JobKind::Profile => (
            profile_pass(spec, source, target, cx).await?,
            "profile import (incremental, by watermark)".to_string(),
        ),
    };
    let rows: u64 = report.stats.values().map(|s| s.migrated).sum();
    let failed_rows: u64 = report.stats.values().map(|s| s.failed).sum();
    let mut files = 0;
    if spec.job.kind == JobKind::Copy
        && let (Some(from), Some(to)) = (&spec.source.media, &spec.target.media)
    {
        let (from, to) = (
            ferry_blobs::Store::parse(from)?,
            ferry_blobs::Store::parse(to)?,
        );
        let manifest = match &spec.job.manifest_sql {
            Some(sql) => ferry_blobs::Manifest::Sql {
                db: crate::open_query_source(&spec.source.database).await?,
                sql: sql.clone(),
            },
            None => ferry_blobs::Manifest::Listing,
        };
        let ctx = ferry_blobs::Context {
            cancel: cx.cancel.clone(),
            ..ferry_blobs::Context::default()
        };
        let blobs = ferry_blobs::copy(
            &from,
            &to,
            &manifest,
            &ferry_blobs::CopyOptions::default(),
            &ctx,
        )
        .await?;
        files = blobs.stats.values().map(|s| s.migrated).sum();
    }
    let (tables, marks) = checks::source::watched(spec)?;
    let state = State {
        synced_at: unix_now(),
        source: checks::source::read(spec, &spec.source.database, &tables, &marks).await?,
        sync_report: serde_json::from_str(&report.to_json()).ok(),
    };
    if let Some(path) = &spec.state {
        let text = serde_json::to_string_pretty(&state).unwrap_or_default();
        std::fs::write(path, text).map_err(|e| {
            Error::input(format!(
                "cannot write the state file {}: {e}",
                path.display()
            ))
        })?;
    }
    let summary = SyncSummary {
        how,
        rows,
        failed_rows,
        files,
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    run_checks(spec, selection, Some(state), cx, started, Some(summary)).await
}

async fn profile_pass(
    spec: &CutoverSpec,
    source: crate::Locator,
    target: crate::Locator,
    cx: &crate::Context,
) -> Result<crate::Report> {
    #[cfg(feature = "postgres")]
    {
        let profile = ferry_profile::Profile::find(profile_name(spec))?;
        let mut options = ferry_profile::ImportOptions::new(source, target);
        options.media_from.clone_from(&spec.source.media);
        options.media_to.clone_from(&spec.target.media);
        ferry_profile::import(&profile, &options, cx).await
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (spec, source, target, cx);
        Err(without_postgres())
    }
}

/// The profile import's verification, run again now (no import): `reconcile` of a profile job.
///
/// # Errors
/// When a database cannot be reached or the target holds no import of the profile.
pub async fn profile_verify(spec: &CutoverSpec, cx: &crate::Context) -> Result<crate::Report> {
    #[cfg(feature = "postgres")]
    {
        let profile = ferry_profile::Profile::find(profile_name(spec))?;
        let options = ferry_profile::ImportOptions::new(
            crate::parse_locator(&spec.source.database)?,
            crate::parse_locator(&spec.target.database)?,
        );
        ferry_profile::verify(&profile, &options, cx).await
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (spec, cx);
        Err(without_postgres())
    }
}

#[cfg(feature = "postgres")]
fn profile_name(spec: &CutoverSpec) -> &str {
    spec.job.profile.as_deref().unwrap_or("peertube")
}

#[cfg(not(feature = "postgres"))]
fn without_postgres() -> Error {
    Error::input(
        "profile imports need PostgreSQL: this ferry was built without the postgres feature",
    )
}
