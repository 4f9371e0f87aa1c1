//! The check kinds: each parses its own parameters (strictly, when the spec is read) and runs
//! against an [`Env`], which holds what checks share: the spec, the placeholders (target
//! database values and earlier checks' results), the secrets to keep out of every output, and
//! the state the last `sync` recorded.

pub mod backup;
pub mod http;
pub mod media;
pub mod playable;
pub mod reconcile;
pub mod source;

use std::collections::BTreeMap;
use std::sync::Mutex;

use ferry_core::{Error, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::spec::CutoverSpec;
use super::{ReconRow, State, Status};

/// A check's parameters, by kind.
#[derive(Debug, Clone)]
pub enum Params {
    Reconcile(reconcile::Params),
    Media(media::Params),
    Frozen(source::Params),
    Http(Box<http::Params>),
    Backup(backup::Params),
    Rollback(source::Params),
    Playable(playable::Params),
}

/// The kinds, in the order the issue ranks them; `--only`/`--skip` accept these.
pub const KINDS: &[&str] = &[
    "reconcile",
    "media",
    "frozen",
    "http",
    "backup",
    "rollback",
    "playable",
];

fn strict<T: DeserializeOwned>(params: toml::Table) -> Result<T> {
    toml::Value::Table(params)
        .try_into()
        .map_err(|e: toml::de::Error| Error::input(e.message().replace('\n', " ")))
}

impl Params {
    /// Parses `params` for `kind`.
    ///
    /// # Errors
    /// An input error for an unknown kind or a parameter the kind does not take.
    pub fn parse(kind: &str, params: toml::Table) -> Result<Self> {
        Ok(match kind {
            "reconcile" => Params::Reconcile(strict(params)?),
            "media" => Params::Media(strict(params)?),
            "frozen" => Params::Frozen(strict(params)?),
            "http" => Params::Http(Box::new(strict(params)?)),
            "backup" => Params::Backup(strict(params)?),
            "rollback" => Params::Rollback(strict(params)?),
            "playable" => Params::Playable(strict(params)?),
            other => {
                return Err(Error::input(format!(
                    "unknown kind '{other}': use one of {}",
                    KINDS.join(", ")
                )));
            }
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Params::Reconcile(_) => "reconcile",
            Params::Media(_) => "media",
            Params::Frozen(_) => "frozen",
            Params::Http(_) => "http",
            Params::Backup(_) => "backup",
            Params::Rollback(_) => "rollback",
            Params::Playable(_) => "playable",
        }
    }
}

/// What one check found.
#[derive(Debug, Default)]
pub struct Found {
    pub status: Status,
    /// One line.
    pub evidence: String,
    /// More lines (differing keys, each failed assertion).
    pub details: Vec<String>,
    /// Rows of the reconciliation table.
    pub table: Vec<ReconRow>,
    /// What later checks may name as `{this_check.…}`.
    pub value: Option<Value>,
}

impl Found {
    pub fn pass(evidence: impl Into<String>) -> Self {
        Self {
            status: Status::Pass,
            evidence: evidence.into(),
            ..Self::default()
        }
    }

    pub fn fail(evidence: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            evidence: evidence.into(),
            ..Self::default()
        }
    }

    pub fn skipped(reason: impl Into<String>) -> Self {
        Self {
            status: Status::Skipped,
            evidence: reason.into(),
            ..Self::default()
        }
    }

    /// Pass when `problems` is empty, else fail with the first as evidence and all as details.
    pub fn judge(pass: impl Into<String>, problems: Vec<String>) -> Self {
        match problems.first() {
            None => Self::pass(pass),
            Some(first) => Self {
                status: Status::Fail,
                evidence: if problems.len() > 1 {
                    format!("{first} (and {} more)", problems.len() - 1)
                } else {
                    first.clone()
                },
                details: problems,
                ..Self::default()
            },
        }
    }
}

/// What the checks of one run share.
pub struct Env<'a> {
    pub spec: &'a CutoverSpec,
    pub state: Option<State>,
    pub cx: &'a crate::Context,
    /// Results of earlier checks, by check name (`{login.access_token}`).
    results: Mutex<BTreeMap<String, Option<Value>>>,
    /// `[vars]` already read from the target.
    vars: tokio::sync::Mutex<BTreeMap<String, Value>>,
    secrets: Mutex<Vec<String>>,
}

impl<'a> Env<'a> {
    pub fn new(spec: &'a CutoverSpec, state: Option<State>, cx: &'a crate::Context) -> Self {
        Self {
            spec,
            state,
            cx,
            results: Mutex::new(BTreeMap::new()),
            vars: tokio::sync::Mutex::new(BTreeMap::new()),
            secrets: Mutex::new(Vec::new()),
        }
    }

    /// Keeps `value` out of every output from now on.
    pub fn secret(&self, value: &str) {
        if value.len() >= 4
            && let Ok(mut s) = self.secrets.lock()
            && !s.iter().any(|v| v == value)
        {
            s.push(value.to_string());
        }
    }

    /// `text` with every secret replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        if let Ok(secrets) = self.secrets.lock() {
            for s in secrets.iter() {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }

    pub fn record(&self, check: &str, found: &Found) {
        if let Ok(mut r) = self.results.lock() {
            let value = (found.status == Status::Pass)
                .then(|| found.value.clone())
                .flatten();
            r.insert(check.to_string(), value);
        }
    }

    /// Replaces every `{name}` and `{name.path}` in `text`: `{env.VAR}` (a secret), `{host}`
    /// (the target URL's host and port), an earlier check's result, or a `[vars]` value read
    /// from the target database. `{{` is a literal brace.
    ///
    /// # Errors
    /// A sentence saying which placeholder cannot be filled and why (the check is then
    /// skipped or failed by its caller).
    pub async fn fill(&self, text: &str) -> std::result::Result<String, Missing> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('{') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('{') {
                out.push('{');
                rest = tail;
                continue;
            }
            let Some(end) = after.find('}') else {
                out.push_str(&rest[at..]);
                rest = "";
                break;
            };
            out.push_str(&self.resolve(after[..end].trim()).await?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    async fn resolve(&self, name: &str) -> std::result::Result<String, Missing> {
        let (head, path) = name.split_once('.').unwrap_or((name, ""));
        if head == "env" {
            let value = self
                .spec
                .environment
                .get(path)
                .map_err(|why| Missing::Input(format!("{{{name}}}: {why}")))?;
            self.secret(&value);
            return Ok(value);
        }
        if head == "host" && path.is_empty() {
            let url = self.spec.target.url.as_deref().ok_or_else(|| {
                Missing::Input("{host}: no platform URL ([target] url or --platform-url)".into())
            })?;
            return Ok(host_of(url));
        }
        let earlier = self.results.lock().ok().and_then(|r| r.get(head).cloned());
        if let Some(result) = earlier {
            let Some(value) = result else {
                return Err(Missing::Input(format!(
                    "{{{name}}} comes from check '{head}', which did not pass"
                )));
            };
            return pick(&value, path).ok_or_else(|| {
                Missing::Failed(format!("{{{name}}}: check '{head}' gave no {path}"))
            });
        }
        let Some(sql) = self.spec.vars.get(head) else {
            return Err(Missing::Failed(format!(
                "{{{name}}}: no earlier check and no [vars] entry is named '{head}'"
            )));
        };
        let mut vars = self.vars.lock().await;
        if !vars.contains_key(head) {
            let text = scalar(&self.spec.target.database, sql)
                .await
                .map_err(|e| Missing::Failed(format!("{{{name}}}: {e}")))?
                .ok_or_else(|| {
                    Missing::Failed(format!(
                        "{{{name}}}: the [vars] query returned no row in the target"
                    ))
                })?;
            let value = serde_json::from_str::<Value>(&text)
                .ok()
                .filter(Value::is_object)
                .unwrap_or(Value::String(text));
            vars.insert(head.to_string(), value);
        }
        pick(&vars[head], path)
            .ok_or_else(|| Missing::Failed(format!("{{{name}}}: the [vars] value has no {path}")))
    }
}

/// Why a placeholder cannot be filled: an input the run was not given (the check is skipped)
/// or a value that should be there and is not (the check fails).
#[derive(Debug)]
pub enum Missing {
    Input(String),
    Failed(String),
}

impl Missing {
    pub fn found(self) -> Found {
        match self {
            Missing::Input(why) => Found::skipped(why),
            Missing::Failed(why) => Found::fail(why),
        }
    }
}

/// The value at a dotted path (`data.0.uuid`) or JSON Pointer (`/data/0/uuid`), as text.
fn pick(value: &Value, path: &str) -> Option<String> {
    let found = if path.is_empty() {
        Some(value)
    } else {
        value.pointer(&to_pointer(path))
    };
    found.map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// A JSON Pointer from a pointer or a dotted path.
pub fn to_pointer(path: &str) -> String {
    if path.starts_with('/') || path.is_empty() {
        return path.to_string();
    }
    path.split('.')
        .map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// `host[:port]` of a URL.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The first column of the first row `sql` returns from the database `db`, read-only.
///
/// # Errors
/// When the database cannot be opened (input) or the query fails.
pub async fn scalar(db: &str, sql: &str) -> Result<Option<String>> {
    let source = crate::open_query_source(db).await?;
    Ok(source.query_keys(sql).await?.into_iter().next().flatten())
}

/// Every row's first column of `sql` on `db`, read-only.
///
/// # Errors
/// As [`scalar`].
pub async fn column(db: &str, sql: &str) -> Result<Vec<Option<String>>> {
    let source = crate::open_query_source(db).await?;
    source.query_keys(sql).await
}

/// A pseudo-random index below `n`, different per call (sampling needs no cryptography).
pub fn random_below(n: usize, salt: u64) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(salt);
    (h.finish() % n.max(1) as u64) as usize
}

/// `n` distinct items of `items` picked at random, in their original order.
pub fn sample<T: Clone>(items: &[T], n: usize) -> Vec<T> {
    if n >= items.len() {
        return items.to_vec();
    }
    let mut idx: Vec<usize> = (0..items.len()).collect();
    for i in 0..n {
        let j = i + random_below(items.len() - i, i as u64);
        idx.swap(i, j);
    }
    let mut chosen = idx[..n].to_vec();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| items[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_and_paths_pick_the_same_value() {
        let v: Value = serde_json::json!({"data": [{"uuid": "u-1", "n": 3}]});
        assert_eq!(pick(&v, "data.0.uuid").as_deref(), Some("u-1"));
        assert_eq!(pick(&v, "/data/0/n").as_deref(), Some("3"));
        assert_eq!(pick(&v, "data.1"), None);
        assert_eq!(host_of("http://new-host:8080/x"), "new-host:8080");
    }

    #[test]
    fn samples_are_distinct_and_ordered() {
        let items: Vec<u32> = (0..100).collect();
        let s = sample(&items, 10);
        assert_eq!(s.len(), 10);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample(&items[..3], 10), vec![0, 1, 2]);
    }
}
