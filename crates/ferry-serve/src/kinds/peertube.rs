//! The `peertube` kind's request body (the fields the PeerTube import APIs take). Validation
//! only: the run is wired in when the PeerTube profile lands (see `kinds/mod.rs`).

use serde::Deserialize;
use serde_json::Value;

use super::{BadRequest, Validated, non_empty, parse_body};

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
    Ok(b)
}

/// # Errors
/// A [`BadRequest`] naming the field.
pub fn validate(body: &Value) -> Result<Validated, BadRequest> {
    let b = parse(body)?;
    Ok(Validated {
        source_host: b.source_host.clone(),
        // The target is the server's PeerTube database; the lead sets the real key when the
        // profile is wired (one PeerTube import at a time per target).
        target_key: "peertube".into(),
    })
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
}
