//! `http`: one request to the new platform and what its answer must be: status, headers, JSON
//! assertions (a JSON Pointer or a dotted path: exists, equals, non-empty, at least n items),
//! a body pattern and a latency bound. Placeholders fill the path, headers and body from the
//! target database and earlier checks; a JSON answer is what later checks name.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Env, Found, to_pointer};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_method")]
    pub method: String,
    /// Appended to `base` (default the target's `url`); placeholders allowed.
    pub path: String,
    #[serde(default)]
    pub base: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A text body.
    #[serde(default)]
    pub body: Option<String>,
    /// A form body (`application/x-www-form-urlencoded`), values with placeholders.
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    /// A JSON body; strings in it take placeholders.
    #[serde(default)]
    pub json_body: Option<toml::Value>,
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default)]
    pub json: Vec<Assertion>,
    /// Response headers that must equal these values (placeholders allowed).
    #[serde(default)]
    pub header_equals: BTreeMap<String, String>,
    #[serde(default)]
    pub body_regex: Option<String>,
    #[serde(default)]
    pub max_latency_ms: Option<u64>,
    #[serde(default)]
    pub timeout_s: Option<f64>,
}

fn default_method() -> String {
    "GET".into()
}

fn default_status() -> u16 {
    200
}

/// One assertion on the JSON answer, at `at` (a JSON Pointer or a dotted path; "" is the whole
/// answer).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Assertion {
    pub at: String,
    pub exists: Option<bool>,
    pub equals: Option<toml::Value>,
    pub non_empty: Option<bool>,
    /// An array or object with at least this many items.
    pub min_count: Option<usize>,
}

/// Keys of answer fields kept out of every output.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["token", "secret", "password"]
        .iter()
        .any(|s| k.contains(s))
}

fn collect_secrets(v: &Value, env: &Env<'_>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if is_secret_key(k) => env.secret(s),
                    other => collect_secrets(other, env),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_secrets(i, env)),
        _ => {}
    }
}

async fn fill_json(v: &toml::Value, env: &Env<'_>) -> Result<Value, super::Missing> {
    Ok(match v {
        toml::Value::String(s) => Value::String(env.fill(s).await?),
        toml::Value::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                out.push(Box::pin(fill_json(i, env)).await?);
            }
            Value::Array(out)
        }
        toml::Value::Table(t) => {
            let mut out = serde_json::Map::new();
            for (k, v) in t {
                out.insert(k.clone(), Box::pin(fill_json(v, env)).await?);
            }
            Value::Object(out)
        }
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    })
}

pub async fn run(p: &Params, env: &Env<'_>) -> ferry_core::Result<Found> {
    let Some(base) = p.base.clone().or_else(|| env.spec.target.url.clone()) else {
        return Ok(Found::skipped(
            "no platform URL: set [target] url (or --platform-url)",
        ));
    };
    match request(p, env, base.trim_end_matches('/')).await {
        Ok(found) => Ok(found),
        Err(Failure::Missing(m)) => Ok(m.found()),
        Err(Failure::Error(e)) => Err(e),
    }
}

enum Failure {
    Missing(super::Missing),
    Error(ferry_core::Error),
}

impl From<super::Missing> for Failure {
    fn from(m: super::Missing) -> Self {
        Failure::Missing(m)
    }
}

async fn request(p: &Params, env: &Env<'_>, base: &str) -> Result<Found, Failure> {
    let path = env.fill(&p.path).await?;
    let url = format!("{base}{path}");
    let method =
        reqwest::Method::from_bytes(p.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            Failure::Error(ferry_core::Error::input(format!(
                "method '{}' is not an HTTP method",
                p.method
            )))
        })?;
    let timeout = Duration::from_secs_f64(p.timeout_s.unwrap_or(10.0).clamp(0.1, 600.0));
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Failure::Error(ferry_core::Error::run(format!("HTTP client: {e}"))))?;
    let mut req = client.request(method.clone(), &url);
    for (k, v) in &p.headers {
        req = req.header(k, env.fill(v).await?);
    }
    if let Some(b) = &p.body {
        req = req.body(env.fill(b).await?);
    } else if !p.form.is_empty() {
        let mut form = Vec::new();
        for (k, v) in &p.form {
            form.push((k.clone(), env.fill(v).await?));
        }
        let encoded = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encoded);
    } else if let Some(j) = &p.json_body {
        let body = fill_json(j, env).await?;
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let shown = format!("{method} {path}");
    let started = Instant::now();
    let response = req.send().await.map_err(|e| {
        Failure::Error(ferry_core::Error::input(format!(
            "{shown}: cannot reach {base}: {}",
            without_url(&e)
        )))
    })?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(|e| {
        Failure::Error(ferry_core::Error::run(format!(
            "{shown}: reading the answer: {}",
            without_url(&e)
        )))
    })?;
    let latency = started.elapsed();
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    if let Some(j) = &json {
        collect_secrets(j, env);
    }
    let mut problems = Vec::new();
    if status != p.status {
        problems.push(format!("{shown} answered {status}, expected {}", p.status));
    }
    for (name, want) in &p.header_equals {
        let want = env.fill(want).await?;
        let got = headers.get(name).and_then(|v| v.to_str().ok());
        if got != Some(want.as_str()) {
            problems.push(format!(
                "header {name}: {}, expected {want}",
                got.map_or_else(|| "absent".to_string(), |g| format!("'{g}'"))
            ));
        }
    }
    if !p.json.is_empty() {
        match &json {
            None => problems.push(format!(
                "{shown}: the answer is not JSON ({} bytes)",
                body.len()
            )),
            Some(j) => {
                for a in &p.json {
                    if let Some(why) = assert(a, j, env).await? {
                        problems.push(why);
                    }
                }
            }
        }
    }
    if let Some(pattern) = &p.body_regex {
        let re = regex::Regex::new(pattern).map_err(|e| {
            Failure::Error(ferry_core::Error::input(format!(
                "body_regex: {}",
                e.to_string().lines().last().unwrap_or_default()
            )))
        })?;
        if !re.is_match(&String::from_utf8_lossy(&body)) {
            problems.push(format!("the answer does not match /{pattern}/"));
        }
    }
    let ms = latency.as_millis();
    if let Some(max) = p.max_latency_ms
        && ms > u128::from(max)
    {
        problems.push(format!(
            "answered in {ms} ms, more than max_latency_ms = {max}"
        ));
    }
    let held = p.json.len() + p.header_equals.len() + usize::from(p.body_regex.is_some());
    let mut found = Found::judge(
        format!("{shown} → {status} in {ms} ms; {held} assertions hold"),
        problems,
    );
    found.value = Some(json.unwrap_or(Value::Null));
    Ok(found)
}

async fn assert(a: &Assertion, j: &Value, env: &Env<'_>) -> Result<Option<String>, Failure> {
    let at = if a.at.is_empty() {
        "(the answer)"
    } else {
        a.at.as_str()
    };
    let found = j.pointer(&to_pointer(&a.at));
    if let Some(want) = a.exists
        && found.is_some() != want
    {
        return Ok(Some(if want {
            format!("{at}: absent from the answer")
        } else {
            format!("{at}: present, expected absent")
        }));
    }
    if let Some(want) = &a.equals {
        let want = fill_json(want, env).await?;
        let same = match (found, &want) {
            (Some(Value::String(g)), Value::String(w)) => g == w,
            (Some(g), Value::String(w)) => serde_json::to_string(g).is_ok_and(|t| t == *w),
            (Some(g), w) => g == w,
            (None, _) => false,
        };
        if !same {
            return Ok(Some(format!(
                "{at}: {}, expected {}",
                found.map_or_else(|| "absent".to_string(), short),
                short(&want)
            )));
        }
    }
    let items = |v: &Value| match v {
        Value::Array(a) => Some(a.len()),
        Value::Object(o) => Some(o.len()),
        Value::String(s) => Some(s.len()),
        Value::Null => Some(0),
        _ => None,
    };
    if a.non_empty == Some(true) {
        match found {
            Some(v) if items(v) != Some(0) => {}
            Some(_) => return Ok(Some(format!("{at}: empty"))),
            None => return Ok(Some(format!("{at}: absent from the answer"))),
        }
    }
    if let Some(n) = a.min_count {
        let count = found.and_then(|v| match v {
            Value::Array(a) => Some(a.len()),
            Value::Object(o) => Some(o.len()),
            _ => None,
        });
        match count {
            Some(c) if c >= n => {}
            Some(c) => return Ok(Some(format!("{at}: {c} items, expected at least {n}"))),
            None => {
                return Ok(Some(format!(
                    "{at}: not a list, expected at least {n} items"
                )));
            }
        }
    }
    Ok(None)
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

/// A reqwest error without its URL (the URL may hold a placeholder's value): its causes.
fn without_url(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    if e.is_timeout() {
        parts.push("timed out".to_string());
    } else if e.is_connect() {
        parts.push("connection failed".to_string());
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        parts.push("the request failed".into());
    }
    parts.join(": ")
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}
