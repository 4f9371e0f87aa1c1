//! `cutover.toml`: what a cutover validates (source and target databases and media, the copy
//! or profile it checks) and its checks, each with a name, a kind, its parameters and a
//! severity. Every check's parameters are parsed when the spec is read, so a typo is a bad spec
//! (exit 2) before anything is connected to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry_core::{Error, Result};
use serde::{Deserialize, Serialize};

use super::checks::Params;

/// A cutover, as `ferry cutover check --spec cutover.toml` reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutoverSpec {
    pub source: Side,
    pub target: Side,
    /// What moved the data: a copy (same tables on both sides) or a profile import.
    #[serde(default)]
    pub job: Job,
    /// Placeholders read from the target database: name = SQL returning one value (a JSON
    /// object's fields are reachable as `{name.field}`).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Where `sync` records the source's state at the end of the final pass, for `frozen` and
    /// `rollback` (default: beside the spec, `<spec>.state.json`).
    #[serde(default)]
    pub state: Option<PathBuf>,
    #[serde(default, rename = "check")]
    pub checks: Vec<CheckSpec>,
    /// Where `{env.NAME}` placeholders are read from (never part of the file).
    #[serde(skip)]
    pub environment: Environment,
}

/// Where `{env.NAME}` placeholders come from. The CLI reads its own process environment; a
/// job server gives each job its sealed values and only the server's variables with a prefix,
/// so a remote caller cannot send another server variable (a key, a password) to a URL of
/// their choosing.
#[derive(Clone, Default)]
pub enum Environment {
    #[default]
    Process,
    Job {
        /// Values sent with the job (sealed in the server's store).
        values: BTreeMap<String, String>,
        /// Server variables whose name starts with this may also be read.
        prefix: String,
    },
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The values are secrets.
        match self {
            Environment::Process => f.write_str("Process"),
            Environment::Job { values, prefix } => f
                .debug_struct("Job")
                .field("names", &values.keys().collect::<Vec<_>>())
                .field("prefix", prefix)
                .finish(),
        }
    }
}

impl Environment {
    /// The value of `name`, or why there is none.
    ///
    /// # Errors
    /// A sentence naming the variable.
    pub fn get(&self, name: &str) -> std::result::Result<String, String> {
        match self {
            Environment::Process => std::env::var(name)
                .map_err(|_| format!("the environment variable {name} is not set")),
            Environment::Job { values, prefix } => {
                if let Some(v) = values.get(name) {
                    return Ok(v.clone());
                }
                if !name.starts_with(prefix.as_str()) {
                    return Err(format!(
                        "{name} is not among the job's secrets, and only the server's variables named {prefix}* can be read"
                    ));
                }
                std::env::var(name).map_err(|_| {
                    format!("{name} is neither among the job's secrets nor set on the server")
                })
            }
        }
    }
}

/// One side of the move.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Side {
    /// A database locator (`postgres://…`, `mysql://…`, `sqlite:///…`).
    pub database: String,
    /// A storage locator (`file:///…`, `s3://…`) for the application's files.
    #[serde(default)]
    pub media: Option<String>,
    /// The service's base URL (`http://new-host:8080`): the `http` checks' default base.
    #[serde(default)]
    pub url: Option<String>,
}

/// The move the cutover validates.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Job {
    /// `copy` (default) or `profile`.
    pub kind: JobKind,
    /// A built-in profile name or a profile file, for `kind = "profile"`.
    pub profile: Option<String>,
    /// Tables the copy covered (names or globs; default all), for `reconcile` and `sync`.
    pub tables: Vec<String>,
    pub exclude: Vec<String>,
    /// Keys of the files `sync` copies: SQL run on the source database (default: a listing).
    pub manifest_sql: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    #[default]
    Copy,
    Profile,
}

/// Whether a failed check stops the cutover.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Blocker,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Blocker => "blocker",
            Severity::Warning => "warning",
        }
    }
}

/// One check as written: its parameters are the table's other keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckSpec {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub severity: Severity,
    #[serde(flatten)]
    pub params: toml::Table,
}

/// A check ready to run: its parameters parsed for its kind.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub severity: Severity,
    pub params: Params,
}

impl Check {
    pub fn kind(&self) -> &'static str {
        self.params.kind()
    }
}

impl CutoverSpec {
    /// Reads and validates a spec file; `state` defaults to beside it.
    ///
    /// # Errors
    /// An input error naming the file and what is wrong.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::input(format!("cannot read {}: {e}", path.display())))?;
        let mut spec = Self::parse(&text, &path.display().to_string())?;
        if spec.state.is_none() {
            spec.state = Some(default_state(path));
        }
        Ok(spec)
    }

    /// Parses and validates spec text (`origin` names it in errors).
    ///
    /// # Errors
    /// An input error when the TOML, a field or a check's parameters are wrong.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let spec: Self = toml::from_str(text).map_err(|e| {
            Error::input(format!(
                "{origin}: {}",
                e.to_string().replace('\n', " ").trim()
            ))
        })?;
        spec.validate()
            .map_err(|e| Error::input(format!("{origin}: {}", e.message())))?;
        Ok(spec)
    }

    /// Checks what can be checked without connecting: locators parse, names are unique,
    /// every check's parameters fit its kind.
    ///
    /// # Errors
    /// An input error naming the field.
    pub fn validate(&self) -> Result<()> {
        crate::parse_locator(&self.source.database).map_err(|e| e.context("[source] database"))?;
        crate::parse_locator(&self.target.database).map_err(|e| e.context("[target] database"))?;
        for (side, media) in [
            ("source", &self.source.media),
            ("target", &self.target.media),
        ] {
            if let Some(m) = media {
                ferry_blobs::Store::parse(m).map_err(|e| e.context(format!("[{side}] media")))?;
            }
        }
        if self.job.kind == JobKind::Profile && self.job.profile.is_none() {
            return Err(Error::input(
                "[job] kind = \"profile\" needs profile = \"peertube\" or a profile file",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.checks {
            if !seen.insert(c.name.as_str()) {
                return Err(Error::input(format!(
                    "two checks are named '{}': give each a unique name",
                    c.name
                )));
            }
        }
        self.prepared().map(|_| ())
    }

    /// The checks with their parameters parsed, in the spec's order.
    ///
    /// # Errors
    /// An input error naming the check and the parameter.
    pub fn prepared(&self) -> Result<Vec<Check>> {
        self.checks
            .iter()
            .map(|c| {
                Ok(Check {
                    name: c.name.clone(),
                    severity: c.severity,
                    params: Params::parse(&c.kind, c.params.clone())
                        .map_err(|e| e.context(format!("check '{}'", c.name)))?,
                })
            })
            .collect()
    }
}

/// `<spec>.state.json` beside the spec file.
pub fn default_state(spec: &Path) -> PathBuf {
    let mut name = spec.file_name().unwrap_or_default().to_os_string();
    name.push(".state.json");
    spec.with_file_name(name)
}
