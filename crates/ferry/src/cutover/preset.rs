//! Built-in cutover specs for built-in profiles: `ferry cutover check --profile peertube
//! --source … --target …` runs the PeerTube 6.3 checklist with no spec file. The preset is a
//! [`CutoverSpec`] like any other (written as TOML here, so it reads like a user's spec); the
//! admin password comes from an environment variable, never from a flag.

use std::path::PathBuf;

use ferry_core::{Error, Result};

use super::spec::CutoverSpec;

/// The variable the admin password is read from unless another is named.
pub const PASSWORD_ENV: &str = "FERRY_CUTOVER_ADMIN_PASSWORD";

fn password_env() -> String {
    PASSWORD_ENV.to_string()
}

/// What the preset is filled with: the CLI's flags, or a job server's request body (the same
/// names as JSON).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub profile: String,
    pub source: String,
    pub target: String,
    #[serde(default)]
    pub media_from: Option<String>,
    #[serde(default)]
    pub media_to: Option<String>,
    #[serde(default)]
    pub platform_url: Option<String>,
    /// The platform's admin account; default the target's first admin.
    #[serde(default)]
    pub admin_user: Option<String>,
    /// The environment variable holding the admin's password.
    #[serde(default = "password_env")]
    pub admin_password_env: String,
    #[serde(default)]
    pub dump: Option<PathBuf>,
    #[serde(default)]
    pub state: PathBuf,
}

/// A TOML basic string.
fn s(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// An SQL string literal.
fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The preset spec for `p.profile`.
///
/// # Errors
/// An input error when the profile has no preset or a locator is bad.
pub fn build(p: &Preset) -> Result<CutoverSpec> {
    if p.profile != "peertube" {
        return Err(Error::input(format!(
            "no cutover preset for profile '{}': the built-in preset is peertube; write a cutover.toml for others (docs/cutover.md)",
            p.profile
        )));
    }
    let opt = |k: &str, v: &Option<String>| {
        v.as_ref()
            .map(|v| format!("{k} = {}\n", s(v)))
            .unwrap_or_default()
    };
    let admin = match &p.admin_user {
        Some(u) => format!("SELECT json_build_object('username', {})::text", lit(u)),
        None => "SELECT json_build_object('username', username)::text FROM users WHERE role = 'admin' ORDER BY created_at LIMIT 1".into(),
    };
    let dump = p
        .dump
        .as_ref()
        .map(|d| format!("dump = {}\n", s(&d.display().to_string())))
        .unwrap_or_default();
    let password = format!("{{env.{}}}", p.admin_password_env);
    let text = format!(
        r#"
state = {state}
[source]
database = {source}
{media_from}
[target]
database = {target}
{media_to}{url}
[job]
kind = "profile"
profile = "peertube"

[vars]
video = {video}
admin = {admin}

[[check]]
name = "rows"
kind = "reconcile"

[[check]]
name = "files"
kind = "media"
referenced_sql = {referenced}

[[check]]
name = "source-frozen"
kind = "frozen"
tables = ["user", "account", "videoChannel", "video", "videoFile", "videoComment", "videoPlaylist", "videoCaption", "actorFollow"]
watermarks = {{ user = "updatedAt", account = "updatedAt", videoChannel = "updatedAt", video = "updatedAt", videoComment = "updatedAt", videoPlaylist = "updatedAt" }}

[[check]]
name = "health"
kind = "http"
path = "/health"

[[check]]
name = "ready"
kind = "http"
path = "/ready"

[[check]]
name = "oauth-client"
kind = "http"
path = "/api/v1/oauth-clients/local"
json = [{{ at = "client_id", non_empty = true }}]

[[check]]
name = "login"
kind = "http"
method = "POST"
path = "/api/v1/users/token"
form = {{ client_id = "{{oauth-client.client_id}}", client_secret = "{{oauth-client.client_secret}}", grant_type = "password", username = "{{admin.username}}", password = {password} }}
json = [{{ at = "access_token", non_empty = true }}]

[[check]]
name = "videos-api"
kind = "http"
path = "/api/v1/videos?count=5"
json = [{{ at = "data", min_count = 1 }}, {{ at = "total", exists = true }}]

[[check]]
name = "channels-api"
kind = "http"
path = "/api/v1/channels?count=5"
json = [{{ at = "data", min_count = 1 }}]

[[check]]
name = "static-video-file"
kind = "http"
path = "/static/{{video.path}}"
header_equals = {{ "content-length" = "{{video.size}}" }}

[[check]]
name = "nodeinfo"
kind = "http"
path = "/.well-known/nodeinfo"
json = [{{ at = "links", min_count = 1 }}]

[[check]]
name = "webfinger"
kind = "http"
path = "/.well-known/webfinger?resource=acct:{{admin.username}}@{{host}}"
json = [{{ at = "links", min_count = 1 }}]

[[check]]
name = "config"
kind = "http"
path = "/api/v1/config"
json = [{{ at = "instance", exists = true }}]

[[check]]
name = "feed"
kind = "http"
path = "/feeds/videos.xml"
body_regex = "<(rss|feed)"

[[check]]
name = "backup"
kind = "backup"
{dump}
[[check]]
name = "rollback"
kind = "rollback"
tables = ["user", "video", "videoChannel", "videoComment"]

[[check]]
name = "playable"
kind = "playable"
sample = 5
files_sql = {playable}
"#,
        state = s(&p.state.display().to_string()),
        source = s(&p.source),
        target = s(&p.target),
        media_from = opt("media", &p.media_from),
        media_to = opt("media", &p.media_to),
        url = opt("url", &p.platform_url),
        video = s(
            "SELECT json_build_object('uuid', v.uuid, 'path', f->>'path', 'size', f->>'size')::text FROM videos v, jsonb_array_elements(v.files) f WHERE f->>'kind' = 'web_video' AND v.privacy = 'public' ORDER BY random() LIMIT 1"
        ),
        admin = s(&admin),
        referenced = s(
            "SELECT f->>'path' FROM videos v, jsonb_array_elements(v.files) f UNION SELECT thumbnail_path FROM videos WHERE thumbnail_path IS NOT NULL UNION SELECT preview_path FROM videos WHERE preview_path IS NOT NULL"
        ),
        password = s(&password),
        dump = dump,
        // One row per video: its largest web video and its HLS master playlist, either may
        // be missing (PeerTube can keep HLS only).
        playable = s(
            "SELECT json_build_object('file', w.f->>'path', 'duration', v.duration_s, 'hls', sp.master_path)::text FROM videos v \
             LEFT JOIN LATERAL (SELECT f FROM jsonb_array_elements(v.files) f WHERE f->>'kind' = 'web_video' \
             ORDER BY (f->>'resolution')::int DESC NULLS LAST LIMIT 1) w ON true \
             LEFT JOIN LATERAL (SELECT master_path FROM streaming_playlists p WHERE p.video_id = v.id LIMIT 1) sp ON true \
             WHERE w.f IS NOT NULL OR sp.master_path IS NOT NULL"
        ),
    );
    CutoverSpec::parse(&text, "the peertube cutover preset")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peertube_preset_is_a_valid_spec_without_secrets() {
        let spec = build(&Preset {
            profile: "peertube".into(),
            source: "postgres://pt:hunter22@old/peertube".into(),
            target: "postgres://new@new/platform".into(),
            media_from: Some("file:///srv/old".into()),
            platform_url: Some("http://new-host:8080".into()),
            admin_user: Some("root's".into()),
            admin_password_env: "PT_ADMIN_PW".into(),
            state: "cutover.state.json".into(),
            ..Preset::default()
        })
        .unwrap();
        let kinds: Vec<_> = spec.prepared().unwrap().iter().map(|c| c.kind()).collect();
        for k in super::super::checks::KINDS {
            assert!(kinds.contains(k), "{k} missing from the preset");
        }
        let login = spec.checks.iter().find(|c| c.name == "login").unwrap();
        assert!(login.params.to_string().contains("{env.PT_ADMIN_PW}"));
        assert!(spec.vars["admin"].contains("'root''s'"));
        assert!(
            build(&Preset {
                profile: "wordpress".into(),
                ..Preset::default()
            })
            .is_err()
        );
    }
}
