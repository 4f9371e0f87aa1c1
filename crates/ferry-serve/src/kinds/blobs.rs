//! The `blobs` kind: `ferry_blobs::copy` of the files a manifest names, between two storage
//! locators.

use ferry_blobs::{BlobObserver, Manifest, Store};
use ferry_core::report::Report;
use serde::Deserialize;
use serde_json::Value;

use super::{BadRequest, RunContext, Validated, in_range, non_empty, parse_body};

/// The request body of `POST /api/v1/admin/migrations/blobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobsBody {
    pub from: String,
    pub to: String,
    pub manifest_db: Option<String>,
    pub manifest_sql: Option<String>,
    pub workers: Option<u64>,
    #[serde(default)]
    pub ignore_errors: bool,
}

/// The stats entry of a blobs job.
pub const STATS_NAME: &str = "media";

struct Checked {
    body: BlobsBody,
    from: Store,
    to: Store,
    /// The manifest database's locator and query, opened when the job runs.
    manifest_sql: Option<(String, String)>,
}

fn check(body: &Value) -> Result<Checked, BadRequest> {
    let body: BlobsBody = parse_body(body)?;
    non_empty("from", &body.from)?;
    non_empty("to", &body.to)?;
    in_range("workers", body.workers, 1, 256)?;
    let from = Store::parse(&body.from).map_err(|e| super::bad_secret("from", &body.from, &e))?;
    let to = Store::parse(&body.to).map_err(|e| super::bad_secret("to", &body.to, &e))?;
    if from.to_string() == to.to_string() {
        return Err(BadRequest(
            "to: the source and the target are the same place".into(),
        ));
    }
    let manifest_sql = match (&body.manifest_db, &body.manifest_sql) {
        (Some(db), Some(sql)) => {
            non_empty("manifest_db", db)?;
            non_empty("manifest_sql", sql)?;
            Some((db.clone(), sql.clone()))
        }
        (Some(_), None) => {
            return Err(BadRequest(
                "manifest_sql: required when manifest_db is given".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(BadRequest(
                "manifest_db: required when manifest_sql is given".into(),
            ));
        }
        (None, None) => None,
    };
    Ok(Checked {
        body,
        from,
        to,
        manifest_sql,
    })
}

/// # Errors
/// A [`BadRequest`] naming the field.
pub fn validate(body: &Value) -> Result<Validated, BadRequest> {
    let c = check(body)?;
    let source_host = match c.from.local_path() {
        Some(p) => p.display().to_string(),
        None => c.from.to_string(),
    };
    Ok(Validated {
        source_host,
        target_key: c.to.to_string(),
        target: None,
    })
}

/// # Errors
/// When the stores or the manifest cannot be opened.
pub async fn run(body: Value, dry_run: bool, cx: RunContext) -> ferry_core::Result<Report> {
    let c = check(&body).map_err(|e| ferry_core::Error::input(e.0))?;
    // The library opens and checks both sides itself; there is no separate probe to make.
    cx.validated();
    let options = ferry_blobs::CopyOptions {
        workers: c.body.workers.map(|w| w as usize),
        dry_run,
        ignore_errors: c.body.ignore_errors,
        verify: true,
        read_back: false,
        name: STATS_NAME.into(),
    };
    let observer: std::sync::Arc<dyn BlobObserver> = cx.stats.clone();
    let context = ferry_blobs::Context {
        observer,
        confirm: std::sync::Arc::new(ferry_core::progress::Answer(false)),
        cancel: cx.cancel.clone(),
    };
    let manifest = match &c.manifest_sql {
        Some((db, sql)) => Manifest::Sql {
            db: ferry::open_query_source(db).await?,
            sql: sql.clone(),
        },
        None => Manifest::Listing,
    };
    ferry_blobs::copy(&c.from, &c.to, &manifest, &options, &context).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_named() {
        let e = validate(&json!({"from": "file:///a"})).unwrap_err().0;
        assert!(e.contains("`to`"), "{e}");
        let e = validate(
            &json!({"from": "file:///a", "to": "file:///b", "manifest_db": "sqlite:///x.db"}),
        )
        .unwrap_err()
        .0;
        assert!(e.starts_with("manifest_sql"), "{e}");
        let v = validate(&json!({"from": "file:///a", "to": "file:///b"})).unwrap();
        assert_eq!(v.source_host, "/a");
    }
}
