//! The `peertube` kind: the request body the PeerTube import APIs take, checked, and the run:
//! the built-in PeerTube profile (ferry-profile) from that source into the server's own
//! `--target-db` (and `--media-target`), which a request can never choose.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_core::progress::{Answer, Observer};
use ferry_core::report::Report;
use ferry_core::{Error, Locator};
use serde::Deserialize;
use serde_json::Value;

use super::{BadRequest, RunContext, Validated, non_empty, parse_body};
use crate::config::Targets;

/// The request body of `POST /api/v1/admin/migrations/peertube`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeertubeBody {
    pub source_host: String,
    pub source_db_host: String,
    #[serde(default = "default_port")]
    pub source_db_port: u16,
    pub source_db_name: String,
    pub source_db_user: String,
    pub source_db_password: String,
    pub source_media_path: Option<String>,
    /// PeerTube's object storage: media store name (the profile's) → blobs locator.
    #[serde(default)]
    pub source_media_stores: BTreeMap<String, String>,
    /// Continue a stopped import after the last page it wrote of each entity (a taken-over
    /// job runs again with it: `crate::lease::rerun_body`).
    #[serde(default)]
    pub resume: bool,
}

fn default_port() -> u16 {
    5432
}

/// Parses and checks a body.
///
/// # Errors
/// A [`BadRequest`] naming the field.
pub fn parse(body: &Value) -> Result<PeertubeBody, BadRequest> {
    let b: PeertubeBody = parse_body(body)?;
    non_empty("source_host", &b.source_host)?;
    non_empty("source_db_host", &b.source_db_host)?;
    non_empty("source_db_name", &b.source_db_name)?;
    non_empty("source_db_user", &b.source_db_user)?;
    if b.source_db_port == 0 {
        return Err(BadRequest(
            "source_db_port: must be between 1 and 65535".into(),
        ));
    }
    if let Some(p) = &b.source_media_path {
        non_empty("source_media_path", p)?;
    }
    if !b.source_media_stores.is_empty() {
        let profile = ferry_profile::Profile::builtin("peertube")
            .ok_or_else(|| BadRequest("the built-in PeerTube profile is missing".into()))?;
        for (name, locator) in &b.source_media_stores {
            if !profile.media_stores.contains_key(name) {
                let known: Vec<&str> = profile.media_stores.keys().map(String::as_str).collect();
                return Err(BadRequest(format!(
                    "source_media_stores.{name}: not a PeerTube media store (give {})",
                    known.join(", ")
                )));
            }
            non_empty(&format!("source_media_stores.{name}"), locator)?;
        }
    }
    Ok(b)
}

/// # Errors
/// A [`BadRequest`] naming the field.
pub fn validate(body: &Value, targets: &Targets) -> Result<Validated, BadRequest> {
    let b = parse(body)?;
    let target = target_db(targets)?;
    let media_field = if b.source_media_path.is_some() {
        Some("source_media_path")
    } else if !b.source_media_stores.is_empty() {
        Some("source_media_stores")
    } else {
        None
    };
    if let Some(field) = media_field
        && targets.media.is_none()
    {
        return Err(BadRequest(format!(
            "{field}: this server has no media target: start ferry serve with --media-target (or FERRY_MEDIA_TARGET) to import media"
        )));
    }
    Ok(Validated {
        source_host: b.source_host.clone(),
        // One import at a time into the server's database (the key is its identity, shared
        // with copy jobs into it: `super::database_key`).
        target_key: target.redacted(),
        target: Some(target),
    })
}

fn target_db(targets: &Targets) -> Result<Locator, BadRequest> {
    let url = targets.database.as_deref().ok_or_else(|| {
        BadRequest(
            "this server has no target database for imports: start ferry serve with --target-db postgres://… (or FERRY_TARGET_DB)".into(),
        )
    })?;
    ferry::parse_locator(url).map_err(|e| BadRequest(format!("the server's --target-db: {e}")))
}

/// A media path as a blob locator: a directory on the server, or any locator as it is.
fn media_locator(path: &str) -> String {
    if path.contains("://") {
        path.to_string()
    } else {
        format!("file://{}", path)
    }
}

/// Runs the built-in PeerTube profile.
///
/// # Errors
/// When the source cannot be reached or its version is not supported (the job fails while
/// `validating`), or the import cannot start.
pub async fn run(body: Value, dry_run: bool, cx: RunContext) -> ferry_core::Result<Report> {
    let b = parse(&body).map_err(|e| Error::input(e.0))?;
    let target = target_db(&cx.targets).map_err(|e| Error::input(e.0))?;
    let source = ferry::parse_locator(&b.source_url())
        .map_err(|_| Error::input("the source database fields do not form a valid address"))?;
    let profile = ferry_profile::Profile::builtin("peertube")
        .ok_or_else(|| Error::run("the built-in PeerTube profile is missing from this build"))?;
    let mut options = ferry_profile::ImportOptions::new(source, target);
    options.source_host = Some(b.source_host.clone());
    options.dry_run = dry_run;
    options.resume = b.resume;
    if let Some(path) = &b.source_media_path {
        options.media_from = Some(media_locator(path));
    }
    options.media_stores = b.source_media_stores.clone();
    if options.media_from.is_some() || !options.media_stores.is_empty() {
        options.media_to = cx.targets.media.clone();
    }
    // Validating: the source answers, read-only, with a supported PeerTube version.
    ferry_profile::validate_source(&profile, &options).await?;
    cx.validated();
    let observer: Arc<dyn Observer> = cx.stats.clone();
    let context = ferry_core::engine::Context {
        observer,
        confirm: Arc::new(Answer(false)),
        cancel: cx.cancel.clone(),
    };
    ferry_profile::import(&profile, &options, &context).await
}

impl PeertubeBody {
    /// The source database as a locator URL (user and password percent-encoded).
    pub fn source_url(&self) -> String {
        let mut url = url::Url::parse("postgres://localhost/").expect("a constant URL parses");
        let _ = url.set_host(Some(&self.source_db_host));
        let _ = url.set_port(Some(self.source_db_port));
        let _ = url.set_username(&self.source_db_user);
        let _ = url.set_password(Some(&self.source_db_password));
        url.set_path(&self.source_db_name);
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full() -> Value {
        json!({
            "source_host": "videos.example", "source_db_host": "db", "source_db_name": "peertube",
            "source_db_user": "pt", "source_db_password": "s3cret"
        })
    }

    #[test]
    fn defaults_and_required_fields() {
        let b = parse(&full()).unwrap();
        assert_eq!(b.source_db_port, 5432);
        assert_eq!(b.source_url(), "postgres://pt:s3cret@db:5432/peertube");
        for field in [
            "source_host",
            "source_db_host",
            "source_db_name",
            "source_db_user",
            "source_db_password",
        ] {
            let mut body = full();
            body.as_object_mut().unwrap().remove(field);
            let e = parse(&body).unwrap_err().0;
            assert!(e.contains(field), "{field}: {e}");
        }
        let mut body = full();
        body["source_db_port"] = json!(70000);
        assert!(parse(&body).unwrap_err().0.starts_with("source_db_port"));
        body["source_db_port"] = json!("x");
        assert!(parse(&body).unwrap_err().0.starts_with("source_db_port"));
        let mut body = full();
        body["source_db_password"] = json!(12345);
        let e = parse(&body).unwrap_err().0;
        assert!(
            e.starts_with("source_db_password") && !e.contains("12345"),
            "{e}"
        );
    }

    #[test]
    fn object_storage_locations_are_media_stores() {
        let mut body = full();
        body["source_media_stores"] = json!({"web_videos": "s3://videos/?endpoint=http://s3.local", "streaming_playlists": "s3://hls"});
        let b = parse(&body).unwrap();
        assert_eq!(b.source_media_stores.len(), 2);
        assert_eq!(b.source_media_stores["streaming_playlists"], "s3://hls");
        body["source_media_stores"] = json!({"web_videos": " "});
        assert_eq!(
            parse(&body).unwrap_err().0,
            "source_media_stores.web_videos: must not be empty"
        );
        body["source_media_stores"] = json!({"videos": "s3://videos"});
        assert_eq!(
            parse(&body).unwrap_err().0,
            "source_media_stores.videos: not a PeerTube media store (give original_video_files, streaming_playlists, web_videos)"
        );
        body["source_media_stores"] = json!({"web_videos": "s3://videos"});
        let no_media = Targets {
            database: Some("postgres://app@db/videos".into()),
            media: None,
        };
        let e = validate(&body, &no_media).unwrap_err().0;
        assert!(
            e.starts_with("source_media_stores: this server has no media target"),
            "{e}"
        );
    }
}
