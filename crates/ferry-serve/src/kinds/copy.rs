//! The `copy` kind: `ferry::copy` between two database locators; the body is a [`JobSpec`]
//! limited to the fields a remote caller may set.

use ferry::{CopyOptions, Fields, JobSpec, Locator};
use ferry_core::progress::{Answer, Observer};
use ferry_core::report::Report;
use serde_json::Value;

use super::{BadRequest, RunContext, Validated, in_range, non_empty, parse_job};

/// The options of a copy a request may set, besides its two endpoints: the [`JobSpec`] fields
/// a remote caller may choose (not the server's own folders, not `dry_run`, which is the
/// path's).
pub const OPTIONS: [&str; 10] = [
    "tables",
    "exclude",
    "batch_size",
    "workers",
    "force",
    "ignore_errors",
    "strict",
    "resume",
    "chunk_rows",
    "profile",
];

pub const MAX_BATCH: u64 = 1_000_000;
pub const MAX_WORKERS: u64 = 64;
pub const MAX_CHUNK_ROWS: u64 = 1_000_000_000;

pub(super) struct Checked {
    pub(super) spec: JobSpec,
    pub(super) source: Locator,
    pub(super) target: Locator,
    pub(super) options: CopyOptions,
}

fn check(body: &Value) -> Result<Checked, BadRequest> {
    let spec = parse_job(body, "", &["source_url", "target_url"], &OPTIONS)?;
    check_spec(spec, "source_url", "target_url", "")
}

/// Checks a job's fields as the API bounds them; `source` and `target` are the endpoints'
/// names in the body, `at` the path of the job in it (`""` or `"database."`).
pub(super) fn check_spec(
    spec: JobSpec,
    source: &str,
    target: &str,
    at: &str,
) -> Result<Checked, BadRequest> {
    let (source_field, target_field) = (format!("{at}{source}"), format!("{at}{target}"));
    non_empty(&source_field, &spec.source)?;
    non_empty(&target_field, &spec.target)?;
    in_range(&format!("{at}batch_size"), spec.batch_size, 1, MAX_BATCH)?;
    in_range(&format!("{at}workers"), spec.workers, 1, MAX_WORKERS)?;
    in_range(
        &format!("{at}chunk_rows"),
        spec.chunk_rows,
        1,
        MAX_CHUNK_ROWS,
    )?;
    let (from, to) = (
        ferry::parse_locator(&spec.source)
            .map_err(|e| super::bad_secret(&source_field, &spec.source, &e))?,
        ferry::parse_locator(&spec.target)
            .map_err(|e| super::bad_secret(&target_field, &spec.target, &e))?,
    );
    if from.redacted() == to.redacted() {
        return Err(BadRequest(format!(
            "{target_field}: the source and the target are the same database"
        )));
    }
    // The bounds above leave the table patterns as the only field the library can refuse.
    let options = spec
        .copy_options(Fields::Body)
        .map_err(|e| BadRequest(format!("{at}tables: {e}")))?;
    Ok(Checked {
        spec,
        source: from,
        target: to,
        options,
    })
}

/// # Errors
/// A [`BadRequest`] naming the field.
pub fn validate(body: &Value) -> Result<Validated, BadRequest> {
    Ok(check(body)?.validated())
}

impl Checked {
    /// The job's public fields: hosts only, never a credential.
    pub(super) fn validated(self) -> Validated {
        Validated {
            source_host: self.source.host(),
            // Replaced by the database's identity when the job is created (`super::database_key`).
            target_key: format!("{}://{}", self.target.backend(), self.target.host()),
            target: Some(self.target),
        }
    }
}

/// # Errors
/// When the copy could not start (unreachable side, refused non-empty target, …).
pub async fn run(body: Value, dry_run: bool, cx: RunContext) -> ferry_core::Result<Report> {
    let c = check(&body).map_err(|e| ferry_core::Error::input(e.0))?;
    // Validating: both sides must answer before the job counts as running.
    ferry::open_source(&c.source).await?;
    if !dry_run {
        ferry::open_target(&c.target).await?;
    }
    cx.validated();
    let options = CopyOptions {
        dry_run,
        reject_dir: cx.work_dir.join("rejects"),
        claims: cx.claims.clone(),
        ..c.options
    };
    ferry::copy(&c.source, &c.target, &options, &context(&cx, c.spec.force)).await
}

/// A job's copy context: its live stats, its cancel, and `force` in the body as the
/// operator's answer to "erase these tables?".
pub(super) fn context(cx: &RunContext, force: bool) -> ferry::Context {
    let observer: std::sync::Arc<dyn Observer> = cx.stats.clone();
    ferry::Context {
        observer,
        confirm: std::sync::Arc::new(Answer(force)),
        cancel: cx.cancel.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(body: Value) -> String {
        validate(&body).unwrap_err().0
    }

    #[test]
    fn fields_are_named() {
        assert!(err(json!({"target_url": "sqlite:///t.db"})).contains("source_url"));
        assert!(err(json!({"source_url": "sqlite:///s.db", "target_url": "sqlite:///t.db", "batch_size": "x"})).starts_with("batch_size"));
        assert!(err(json!({"source_url": "sqlite:///s.db", "target_url": "sqlite:///t.db", "batch_size": 0})).starts_with("batch_size"));
        assert!(
            err(
                json!({"source_url": "sqlite:///s.db", "target_url": "sqlite:///t.db", "bogus": 1})
            )
            .contains("bogus")
        );
        assert!(
            err(json!({"source_url": "nope://x", "target_url": "sqlite:///t.db"}))
                .starts_with("source_url")
        );
        assert!(err(json!([1])).contains("JSON object"));
        let e = err(
            json!({"source_url": "sqlite:///s.db", "target_url": "sqlite:///t.db", "profile": "half"}),
        );
        assert!(e.starts_with("profile") && e.contains("full"), "{e}");
    }

    #[test]
    fn profile_reaches_the_copy_options() {
        let body = |p: &str| json!({"source_url": "sqlite:///s.db", "target_url": "sqlite:///t.db", "profile": p});
        let full = check(&body("full")).unwrap();
        assert_eq!(full.spec.profile, ferry::spec::Profiling::Full);
        assert!(full.options.schema.profile && !full.options.schema.sample);
        let sample = check(&body("sample")).unwrap();
        assert!(sample.options.schema.sample);
    }

    #[test]
    fn secrets_are_not_echoed() {
        let e = err(json!({"source_url": "postgres://u:hunter2@h/db", "target_url": 5}));
        assert!(e.starts_with("target_url") && !e.contains("hunter2"), "{e}");
        let e = err(json!({"source_url": "hunter2", "target_url": "sqlite:///t.db"}));
        assert!(e.starts_with("source_url") && !e.contains("hunter2"), "{e}");
        let e = err(json!({"source_url": "postgres://u:hunter2@h/db", "target_url": "x:hunter2"}));
        assert!(e.starts_with("target_url") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn host_and_target_key_hide_credentials() {
        let v = validate(&json!({
            "source_url": "postgres://u:hunter2@db.example:5433/app",
            "target_url": "postgres://w:secret@127.0.0.1/new"
        }))
        .unwrap();
        assert_eq!(v.source_host, "db.example:5433");
        assert!(!v.target_key.contains("secret"), "{}", v.target_key);
    }

    /// Unreachable at creation, the spellings of one server still give one key.
    #[tokio::test]
    async fn normalised_keys_join_spellings_and_hide_credentials() {
        let key = |u: &str| {
            let l = ferry::parse_locator(u).unwrap();
            async move { super::super::normalised_key(&l).await }
        };
        let a = key("postgres://w:secret@127.0.0.1:5432/new").await;
        assert_eq!(a, "postgres://127.0.0.1:5432/new");
        assert_eq!(key("postgres://other@localhost/new").await, a);
        assert_ne!(key("postgres://w@localhost/new?schema=b").await, a);
        assert_eq!(
            key("mysql://root:pw@localhost/app").await,
            "mysql://127.0.0.1:3306/app"
        );
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let through = format!("sqlite://{}/../t.db", sub.display());
        let direct = format!("sqlite://{}/t.db", dir.path().display());
        assert_eq!(key(&through).await, key(&direct).await);
    }
}
