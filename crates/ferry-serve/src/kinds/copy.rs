//! The `copy` kind: `ferry::copy` between two database locators, with the CLI's options.

use ferry::{CopyOptions, Locator, SchemaMode, SchemaOptions, TableFilter};
use ferry_core::progress::{Answer, Observer};
use ferry_core::report::Report;
use serde::Deserialize;
use serde_json::Value;

use super::{BadRequest, RunContext, Validated, in_range, non_empty, parse_body};

/// The request body of `POST /api/v1/admin/migrations/copy`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyBody {
    pub source_url: String,
    pub target_url: String,
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub batch_size: Option<u64>,
    pub workers: Option<u64>,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub ignore_errors: bool,
}

pub const MAX_BATCH: u64 = 1_000_000;
pub const MAX_WORKERS: u64 = 64;

struct Checked {
    body: CopyBody,
    source: Locator,
    target: Locator,
    filter: TableFilter,
}

fn check(body: &Value) -> Result<Checked, BadRequest> {
    let body: CopyBody = parse_body(body)?;
    non_empty("source_url", &body.source_url)?;
    non_empty("target_url", &body.target_url)?;
    in_range("batch_size", body.batch_size, 1, MAX_BATCH)?;
    in_range("workers", body.workers, 1, MAX_WORKERS)?;
    let source = ferry::parse_locator(&body.source_url)
        .map_err(|e| super::bad_secret("source_url", &body.source_url, &e))?;
    let target = ferry::parse_locator(&body.target_url)
        .map_err(|e| super::bad_secret("target_url", &body.target_url, &e))?;
    if source.redacted() == target.redacted() {
        return Err(BadRequest(
            "target_url: the source and the target are the same database".into(),
        ));
    }
    let filter = TableFilter::new(&body.tables, &body.exclude)
        .map_err(|e| BadRequest(format!("tables: {e}")))?;
    Ok(Checked {
        body,
        source,
        target,
        filter,
    })
}

/// # Errors
/// A [`BadRequest`] naming the field.
pub fn validate(body: &Value) -> Result<Validated, BadRequest> {
    let c = check(body)?;
    Ok(Validated {
        source_host: c.source.host(),
        // Replaced by the database's identity when the job is created (`super::database_key`).
        target_key: format!("{}://{}", c.target.backend(), c.target.host()),
        target: Some(c.target),
    })
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
        schema: SchemaOptions {
            filter: c.filter,
            profile: true,
        },
        batch_rows: c.body.batch_size.unwrap_or(10_000) as usize,
        workers: c
            .body
            .workers
            .map(|w| w as usize)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        dry_run,
        force: c.body.force,
        ignore_errors: c.body.ignore_errors,
        verify: true,
        reject_dir: cx.work_dir.join("rejects"),
        schema_mode: SchemaMode::Auto,
        ignore_missing_columns: false,
        strict: false,
    };
    let observer: std::sync::Arc<dyn Observer> = cx.stats.clone();
    let context = ferry::Context {
        observer,
        // `force` in the body is the operator's answer to "erase these tables?".
        confirm: std::sync::Arc::new(Answer(c.body.force)),
        cancel: cx.cancel.clone(),
    };
    ferry::copy(&c.source, &c.target, &options, &context).await
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
