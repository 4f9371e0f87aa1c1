//! Built-in cutover specs for built-in profiles: `ferry cutover check --profile peertube
//! --source … --target …` runs the PeerTube 6.3 checklist with no spec file. The preset is a
//! [`CutoverSpec`] like any other (a TOML file, `profiles/peertube-cutover.toml`, so it reads like a
//! user's spec); the
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

/// The PeerTube preset, with `${name}` where [`build`] puts the caller's values.
const PEERTUBE: &str = include_str!("../../../../profiles/peertube-cutover.toml");

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
    CutoverSpec::parse(&peertube(p), "the peertube cutover preset")
}

/// The PeerTube preset's text, filled with `p`'s values.
fn peertube(p: &Preset) -> String {
    let opt = |k: &str, v: Option<&str>| v.map(|v| format!("{k} = {}\n", s(v))).unwrap_or_default();
    let admin = match &p.admin_user {
        Some(u) => format!("SELECT json_build_object('username', {})::text", lit(u)),
        None => "SELECT json_build_object('username', username)::text FROM users WHERE role = 'admin' ORDER BY created_at LIMIT 1".into(),
    };
    let dump = p.dump.as_ref().map(|d| d.display().to_string());
    let values = [
        ("state", s(&p.state.display().to_string())),
        ("source", s(&p.source)),
        ("target", s(&p.target)),
        ("media_from", opt("media", p.media_from.as_deref())),
        ("media_to", opt("media", p.media_to.as_deref())),
        ("url", opt("url", p.platform_url.as_deref())),
        ("admin", s(&admin)),
        ("password", s(&format!("{{env.{}}}", p.admin_password_env))),
        ("dump", opt("dump", dump.as_deref())),
    ];
    fill(PEERTUBE, &values)
}

/// `template` with each `${name}` replaced by its value, in one pass (a value that holds
/// `${…}` stays as it is).
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let (name, tail) = rest[at + 2..]
            .split_once('}')
            .unwrap_or((&rest[at + 2..], ""));
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[at..rest.len() - tail.len()]),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_in_one_pass() {
        let values = [("x", "${y}".to_string()), ("y", "b".to_string())];
        assert_eq!(fill("a ${x} ${y} ${z}", &values), "a ${y} b ${z}");
    }

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
