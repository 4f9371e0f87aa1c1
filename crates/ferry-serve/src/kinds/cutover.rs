//! The cutover kinds (`POST /api/v1/admin/cutover/check` and `/sync`): a cutover spec (the
//! `cutover.toml` structure as JSON: `ferry::cutover::CutoverSpec`, the type the CLI reads) or
//! the PeerTube preset's parameters (`ferry::cutover::preset::Preset`, the CLI's flags), run by
//! `ferry::cutover::check` / `sync`. The job's result is the cutover summary (verdict, each
//! check with its evidence, the window of a sync), stored beside the job's stats.
//!
//! Secrets: `{env.NAME}` placeholders (the admin password) read the body's `secrets` (sealed
//! in the store with the body) or the server's variables named `FERRY_CUTOVER_*`, never
//! another server variable; the summary is scrubbed of every secret and database password
//! before it is stored. The state `sync` records for `frozen` and `rollback` is kept by the
//! server (per source and target), never at a path a request names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry::cutover::preset::{self, Preset};
use ferry::cutover::spec::Environment;
use ferry::cutover::{self, CutoverSpec, JobKind, Outcome, Selection};
use ferry_core::Error;
use serde::Deserialize;
use serde_json::Value;
use sha2::Digest;

use super::{BadRequest, Ran, RunContext, Validated, parse_body};

/// The server variables a cutover job may read as `{env.NAME}`.
pub const ENV_PREFIX: &str = "FERRY_CUTOVER_";

/// The request body of `POST /api/v1/admin/cutover/{check,sync}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CutoverBody {
    /// The cutover, as `cutover.toml` has it, in JSON (`check` is the list of checks).
    pub spec: Option<CutoverSpec>,
    /// Or the built-in preset's parameters (`profile = "peertube"`, `source`, `target`, …).
    pub preset: Option<Preset>,
    /// Run only these checks (kinds or check names).
    pub only: Vec<String>,
    /// Leave these checks out.
    pub skip: Vec<String>,
    /// Values of `{env.NAME}` placeholders, e.g. the platform admin's password.
    pub secrets: BTreeMap<String, Secret>,
    /// `sync` of a copy spec erases and re-copies the target's tables: the confirmation.
    pub force: bool,
}

/// A secret value: its type errors and `Debug` never show it.
#[derive(Clone, Deserialize)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

struct Checked {
    spec: CutoverSpec,
    selection: Selection,
    force: bool,
    /// Every value to keep out of the summary.
    secrets: Vec<String>,
}

/// The password in a URL's user information, if any.
fn password_of(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then(|| password.to_string())
}

/// `text` with each secret replaced by `***` (its percent-encoded spelling too).
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(s.as_str(), "***");
        let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
        if encoded != *s {
            out = out.replace(&encoded, "***");
        }
    }
    out
}

fn check(body: &Value, sync: bool) -> Result<Checked, BadRequest> {
    let b: CutoverBody = parse_body(body)?;
    let mut secrets: Vec<String> = b.secrets.values().map(|s| s.0.clone()).collect();
    let spec = match (b.spec, b.preset) {
        (Some(spec), None) => {
            if spec.state.is_some() {
                return Err(BadRequest(
                    "spec.state: the server keeps the state of sync itself: leave it out".into(),
                ));
            }
            spec
        }
        (None, Some(p)) => {
            if !p.state.as_os_str().is_empty() {
                return Err(BadRequest(
                    "preset.state: the server keeps the state of sync itself: leave it out".into(),
                ));
            }
            for (field, url) in [("preset.source", &p.source), ("preset.target", &p.target)] {
                super::non_empty(field, url)?;
                secrets.extend(password_of(url));
            }
            preset::build(&Preset {
                // Replaced when the job runs; the preset needs a path to build.
                state: PathBuf::from("cutover.state.json"),
                ..p
            })
            .map_err(|e| BadRequest(format!("preset: {}", scrub(e.message(), &secrets))))?
        }
        (Some(_), Some(_)) => {
            return Err(BadRequest(
                "send either spec (a cutover spec) or preset (the built-in preset's parameters), not both".into(),
            ));
        }
        (None, None) => {
            return Err(BadRequest(
                "missing field `spec` (a cutover spec, as cutover.toml in JSON) or `preset` (profile, source, target, …)".into(),
            ));
        }
    };
    for side in [&spec.source, &spec.target] {
        secrets.extend(password_of(&side.database));
        secrets.extend(side.media.as_deref().and_then(password_of));
    }
    spec.validate()
        .map_err(|e| BadRequest(format!("spec: {}", scrub(e.message(), &secrets))))?;
    let selection = Selection {
        only: b.only,
        skip: b.skip,
    };
    let prepared = spec.prepared().map_err(|e| BadRequest(e.to_string()))?;
    selection
        .validate(&prepared)
        .map_err(|e| BadRequest(e.message().replacen("--", "", 1)))?;
    if sync && spec.job.kind == JobKind::Copy && !b.force {
        return Err(BadRequest(
            "force: sync of a copy spec erases the target's tables and copies them again: send \"force\": true to confirm".into(),
        ));
    }
    let values = b.secrets.into_iter().map(|(k, v)| (k, v.0)).collect();
    Ok(Checked {
        spec: CutoverSpec {
            environment: Environment::Job {
                values,
                prefix: ENV_PREFIX.into(),
            },
            ..spec
        },
        selection,
        force: b.force,
        secrets,
    })
}

/// # Errors
/// A [`BadRequest`] naming the field.
pub fn validate(body: &Value, sync: bool) -> Result<Validated, BadRequest> {
    let c = check(body, sync)?;
    let parse = |db: &str| ferry::parse_locator(db).map_err(|e| BadRequest(e.to_string()));
    let (source, target) = (
        parse(&c.spec.source.database)?,
        parse(&c.spec.target.database)?,
    );
    Ok(if sync {
        // The final pass writes into the target: one job at a time there, as a copy's.
        Validated {
            source_host: source.host(),
            target_key: format!("{}://{}", target.backend(), target.host()),
            target: Some(target),
        }
    } else {
        // A check only reads: it never waits for, nor blocks, a job into the same target.
        Validated {
            source_host: source.host(),
            target_key: format!("cutover-check:{}", uuid::Uuid::new_v4()),
            target: None,
        }
    })
}

/// Where the server keeps the state `sync` recorded for this source and target.
fn state_file(work_dir: &Path, spec: &CutoverSpec) -> PathBuf {
    let redacted = |db: &str| ferry::parse_locator(db).map_or_else(|_| db.into(), |l| l.redacted());
    let digest = sha2::Sha256::digest(format!(
        "{}\n{}",
        redacted(&spec.source.database),
        redacted(&spec.target.database)
    ));
    let root = work_dir.parent().unwrap_or(work_dir);
    root.join("cutover-state")
        .join(format!("{}.json", hex::encode(&digest[..16])))
}

/// Runs the checks (after the final pass for `sync`): the summary as JSON, scrubbed of every
/// secret, and for NO-GO one line naming the blockers.
///
/// # Errors
/// When the run could not start (the state file cannot be written or read) or was cancelled.
pub async fn run(body: Value, sync: bool, cx: RunContext) -> ferry_core::Result<Ran> {
    let Checked {
        mut spec,
        selection,
        force,
        secrets,
    } = check(&body, sync).map_err(|e| Error::input(e.0))?;
    let state = state_file(&cx.work_dir, &spec);
    if let Some(dir) = state.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::input(format!(
                "cannot create the server's cutover state folder {}: {e}",
                dir.display()
            ))
        })?;
    }
    spec.state = Some(state);
    // Every check reports what it cannot reach; there is nothing to validate beforehand.
    cx.validated();
    let context = super::copy::context(&cx, force);
    let outcome = if sync {
        cutover::sync(&spec, &selection, &context).await
    } else {
        cutover::check(&spec, &selection, &context).await
    }
    .map_err(|e| match e.kind() {
        ferry_core::ErrorKind::Cancelled => e,
        ferry_core::ErrorKind::Input => Error::input(scrub(e.message(), &secrets)),
        ferry_core::ErrorKind::Run | ferry_core::ErrorKind::Widen => {
            Error::run(scrub(e.message(), &secrets))
        }
    })?;
    // The library scrubs what the checks used; this also covers what they did not.
    let text = scrub(&cutover::report::json(&outcome), &secrets);
    Ok(Ran::Cutover {
        summary: serde_json::from_str(&text).unwrap_or(Value::Null),
        no_go: no_go_summary(&outcome).map(|s| scrub(&s, &secrets)),
    })
}

/// One line for the job's `error_message` when the verdict is NO-GO: the blockers that did
/// not pass, or why the run could not reach a service.
pub fn no_go_summary(outcome: &Outcome) -> Option<String> {
    if outcome.verdict == cutover::Verdict::Go {
        return None;
    }
    let blockers: Vec<String> = outcome
        .checks
        .iter()
        .filter(|c| c.severity == cutover::Severity::Blocker && c.status != cutover::Status::Pass)
        .map(|c| {
            format!(
                "{} {}",
                c.name,
                if c.status == cutover::Status::Skipped {
                    "skipped"
                } else {
                    "failed"
                }
            )
        })
        .collect();
    Some(if blockers.is_empty() {
        "NO-GO: a service could not be reached".into()
    } else {
        format!("NO-GO: {}", blockers.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({
            "source": {"database": "postgres://app:hunter22@old-db/app"},
            "target": {"database": "postgres://app:other-pw@new-db/app", "url": "http://new:8080"},
            "check": [
                {"name": "rows", "kind": "reconcile"},
                {"name": "health", "kind": "http", "path": "/health", "severity": "warning"}
            ]
        })
    }

    fn err(body: Value, sync: bool) -> String {
        validate(&body, sync).unwrap_err().0
    }

    #[test]
    fn a_spec_as_json_is_the_cli_spec() {
        let c = check(&json!({"spec": spec(), "only": ["http"]}), false).unwrap();
        assert_eq!(c.spec.checks.len(), 2);
        assert_eq!(c.spec.prepared().unwrap()[1].kind(), "http");
        assert!(c.secrets.contains(&"hunter22".to_string()));
        let v = validate(&json!({"spec": spec()}), false).unwrap();
        assert_eq!(v.source_host, "old-db");
        assert!(v.target.is_none() && v.target_key.starts_with("cutover-check:"));
        let v = validate(&json!({"spec": spec(), "force": true}), true).unwrap();
        assert!(v.target.is_some() && !v.target_key.contains("other-pw"));
    }

    #[test]
    fn bad_bodies_name_the_field_and_never_a_secret() {
        assert!(err(json!({}), false).contains("`spec`"));
        let mut s = spec();
        s["check"][0]["kind"] = json!("nonsense");
        let e = err(json!({"spec": s}), false);
        assert!(e.contains("unknown kind 'nonsense'"), "{e}");
        let mut s = spec();
        s["state"] = json!("/etc/passwd");
        assert!(err(json!({"spec": s}), false).starts_with("spec.state"));
        let e = err(json!({"spec": spec(), "only": ["nope"]}), false);
        assert!(e.starts_with("only nope"), "{e}");
        let e = err(json!({"spec": spec()}), true);
        assert!(e.starts_with("force:"), "{e}");
        let e = err(json!({"spec": spec(), "secrets": {"PW": 12345}}), false);
        assert!(e.starts_with("secrets") && !e.contains("12345"), "{e}");
        let mut s = spec();
        s["source"]["database"] = json!("postgres://app:hunter22@old-db:port/app");
        let e = err(json!({"spec": s}), false);
        assert!(!e.contains("hunter22"), "{e}");
        let e = err(
            json!({"preset": {"profile": "wordpress", "source": "postgres://a:hunter22@h/d", "target": "postgres://h/e"}}),
            false,
        );
        assert!(e.starts_with("preset: no cutover preset"), "{e}");
    }

    #[test]
    fn the_preset_reads_its_password_from_the_jobs_secrets_only() {
        let c = check(
            &json!({"preset": {"profile": "peertube", "source": "postgres://pt@old/pt", "target": "postgres://new@new/platform",
                               "platform_url": "http://new:9000"},
                    "secrets": {"FERRY_CUTOVER_ADMIN_PASSWORD": "pw-in-the-body"}}),
            false,
        )
        .unwrap();
        let env = &c.spec.environment;
        assert_eq!(
            env.get("FERRY_CUTOVER_ADMIN_PASSWORD").unwrap(),
            "pw-in-the-body"
        );
        let e = env.get("HOME").unwrap_err();
        assert!(e.contains("FERRY_CUTOVER_*"), "{e}");
        assert!(format!("{env:?}").contains("FERRY_CUTOVER_ADMIN_PASSWORD"));
        assert!(!format!("{env:?}").contains("pw-in-the-body"));
        assert_eq!(
            scrub("a pw-in-the-body b", &["pw-in-the-body".into()]),
            "a *** b"
        );
    }
}
