//! The `migrate` kind: a migrate spec (`ferry migrate --spec`'s TOML, as JSON) run by
//! `ferry::migrate`: rows, stored file locations, files. Its `database` section is a
//! [`JobSpec`] with the same fields a `copy` body may set. On a shared job store, other servers
//! help copy the rows' chunks (`crate::helpers`); the rewrite and the files stay the owner's.

use ferry::migrate::{BlobsSpec, Rewrite};
use ferry::{JobSpec, MigrateOptions, MigrateSpec, Migration};
use ferry_blobs::{BlobObserver, Store};
use ferry_core::report::Report;
use serde::Deserialize;
use serde_json::Value;

use super::{BadRequest, RunContext, Validated, copy, in_range, only_fields, parse_body};

/// The request body of `POST /api/v1/admin/migrations/migrate`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MigrateBody {
    pub database: Option<JobSpec>,
    pub blobs: Option<BlobsSpec>,
    pub rewrite: Vec<Rewrite>,
    /// Rows only (no files).
    pub metadata_only: bool,
    /// Files only (no rows).
    pub data_only: bool,
    pub force: bool,
    pub ignore_errors: bool,
    pub strict: bool,
}

/// The fields of the `blobs` section besides its endpoints (the report's entry is always
/// `media`, as a blobs job's).
pub const BLOBS_OPTIONS: [&str; 3] = ["manifest_sql", "manifest_db", "workers"];

/// The most parallel file transfers a body may ask for, as a `blobs` job.
pub const MAX_BLOB_WORKERS: u64 = 256;

struct Checked {
    spec: MigrateSpec,
    options: MigrateOptions,
    migration: Migration,
}

fn check(body: &Value, dry_run: bool) -> Result<Checked, BadRequest> {
    let database = body.get("database").filter(|d| !d.is_null());
    if let Some(d) = database {
        only_fields(d, "database.", &["source", "target"], &copy::OPTIONS)?;
    }
    if let Some(b) = body.get("blobs").filter(|b| !b.is_null()) {
        only_fields(b, "blobs.", &["source", "target"], &BLOBS_OPTIONS)?;
    }
    let body: MigrateBody = parse_body(body)?;
    if let Some(d) = &body.database {
        copy::check_spec(d.clone(), "source", "target", "database.")?;
    }
    if let Some(b) = &body.blobs {
        super::non_empty("blobs.source", &b.source)?;
        super::non_empty("blobs.target", &b.target)?;
        in_range("blobs.workers", b.workers, 1, MAX_BLOB_WORKERS)?;
        Store::parse(&b.source).map_err(|e| super::bad_secret("blobs.source", &b.source, &e))?;
        Store::parse(&b.target).map_err(|e| super::bad_secret("blobs.target", &b.target, &e))?;
    }
    let options = MigrateOptions {
        metadata_only: body.metadata_only,
        data_only: body.data_only,
        dry_run,
        ignore_errors: body.ignore_errors,
        force: body.force,
        strict: body.strict,
        // A taken-over job resumes through its database section (`crate::lease::rerun_body`).
        resume: false,
    };
    let spec = MigrateSpec {
        database: body.database,
        blobs: body.blobs,
        rewrite: body.rewrite,
    };
    // Every locator is known to parse: what is left names sections and fields, not secrets.
    let migration = spec
        .prepare(&options)
        .map_err(|e| BadRequest(e.to_string()))?;
    Ok(Checked {
        spec,
        options,
        migration,
    })
}

/// # Errors
/// A [`BadRequest`] naming the field.
pub fn validate(body: &Value) -> Result<Validated, BadRequest> {
    let c = check(body, false)?.migration;
    let blobs_source = c.files_source().map(|s| match s.local_path() {
        Some(p) => p.display().to_string(),
        None => s.to_string(),
    });
    let source_host = match c.database_source() {
        Some(s) => s.host(),
        None => blobs_source.unwrap_or_default(),
    };
    // The database the rows go into is the target that admits one job at a time; a move of
    // files only is keyed by its storage, as a blobs job is.
    Ok(match c.database_target() {
        Some(t) => Validated {
            source_host,
            target_key: format!("{}://{}", t.backend(), t.host()),
            target: Some(t.clone()),
        },
        None => Validated {
            source_host,
            target_key: c
                .files_target()
                .map(ToString::to_string)
                .unwrap_or_default(),
            target: None,
        },
    })
}

/// # Errors
/// When the move could not start (unreachable database, refused non-empty target, …).
pub async fn run(body: Value, dry_run: bool, cx: RunContext) -> ferry_core::Result<Report> {
    let Checked {
        mut spec,
        options,
        migration,
    } = check(&body, dry_run).map_err(|e| ferry_core::Error::input(e.0))?;
    // Validating: the databases must answer before the job counts as running (the files'
    // stores are opened and checked by the library itself).
    if let Some(source) = migration.database_source() {
        ferry::open_source(source).await?;
    }
    if let Some(target) = migration.database_target().filter(|_| !dry_run) {
        ferry::open_target(target).await?;
    }
    cx.validated();
    let force = options.force || spec.database.as_ref().is_some_and(|d| d.force);
    if let Some(d) = spec.database.as_mut() {
        d.reject_dir = Some(cx.work_dir.join("rejects"));
    }
    let migration = spec.prepare(&options)?.with_claims(cx.claims.clone());
    if cx.claims.as_ref().is_some_and(|c| c.join) {
        // A helper server: the rows' chunks it can claim, nothing else (`crate::helpers`).
        return migration.help_rows(&copy::context(&cx, force)).await;
    }
    let files: std::sync::Arc<dyn BlobObserver> = cx.stats.clone();
    let done = migration.run(&copy::context(&cx, force), files).await?;
    Ok(done.report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(body: Value) -> String {
        validate(&body).unwrap_err().0
    }

    fn database() -> Value {
        json!({"source": "sqlite:///s.db", "target": "sqlite:///t.db"})
    }

    #[test]
    fn fields_are_named_in_their_section() {
        let e = err(json!({"database": {"target": "sqlite:///t.db"}, "metadata_only": true}));
        assert!(e.contains("database") && e.contains("`source`"), "{e}");
        let mut d = database();
        d["batch_size"] = json!(0);
        let e = err(json!({"database": d, "metadata_only": true}));
        assert!(e.starts_with("database.batch_size"), "{e}");
        let mut d = database();
        d["reject_dir"] = json!("/etc");
        let e = err(json!({"database": d, "metadata_only": true}));
        assert!(e.contains("reject_dir"), "{e}");
        let e = err(json!({"database": database(), "metadata_only": true, "bogus": 1}));
        assert!(e.contains("bogus"), "{e}");
        let e = err(json!({"database": database()}));
        assert!(e.contains("[blobs]"), "{e}");
        let e = err(json!({"database": database(), "metadata_only": true,
                           "rewrite": [{"table": "t", "column": "c", "from": "", "to": "x"}]}));
        assert!(e.contains("'from' must not be empty"), "{e}");
    }

    #[test]
    fn secrets_are_not_echoed() {
        let d = json!({"source": "postgres://u:hunter2@h/db", "target": 5});
        let e = err(json!({"database": d, "metadata_only": true}));
        assert!(
            e.starts_with("database.target") && !e.contains("hunter2"),
            "{e}"
        );
        let d = json!({"source": "hunter2", "target": "sqlite:///t.db"});
        let e = err(json!({"database": d, "metadata_only": true}));
        assert!(
            e.starts_with("database.source") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn the_rows_target_is_the_jobs_target() {
        let v = validate(&json!({
            "database": {"source": "postgres://u:hunter2@db.example:5433/app",
                         "target": "postgres://w:secret@127.0.0.1/new"},
            "metadata_only": true
        }))
        .unwrap();
        assert_eq!(v.source_host, "db.example:5433");
        assert!(v.target.is_some() && !v.target_key.contains("secret"));
        let v = validate(&json!({
            "blobs": {"source": "file:///a", "target": "file:///b"},
            "data_only": true
        }))
        .unwrap();
        assert_eq!((v.source_host.as_str(), v.target.is_none()), ("/a", true));
    }
}
