//! Job kinds: what `POST /api/v1/admin/migrations/{kind}` accepts and runs. A kind is one
//! variant of [`Kind`] plus one module with two functions: `validate` (pure: the request body
//! to a [`Validated`] job or a 400 naming the field) and `run` (async: the job's work under a
//! [`RunContext`], returning ferry's `Report`).
//!
//! Adding a kind: add the variant, its arms in `Kind::parse`, `Kind::name`, `Kind::validate`,
//! `Kind::run`, and its request schema in `openapi.rs`. A kind that copies tables takes its
//! options as a [`ferry::JobSpec`] ([`parse_job`]), as `copy` and `migrate` do.

pub mod blobs;
pub mod copy;
pub mod cutover;
pub mod migrate;
pub mod peertube;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::report::Report;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::Targets;
use crate::jobs::LiveStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Copy,
    Blobs,
    /// The PeerTube profile (ferry-profile), into the server's `--target-db`.
    Peertube,
    /// A migrate spec (`ferry::migrate`): rows, stored file locations, files.
    Migrate,
    /// `ferry cutover check`: the go/no-go checklist (`/api/v1/admin/cutover/check`).
    CutoverCheck,
    /// `ferry cutover sync`: the final pass, then the checklist (`/api/v1/admin/cutover/sync`).
    CutoverSync,
}

impl Kind {
    /// The kind a path segment under `/migrations/` names; `None` is a 404 ("unknown
    /// migration kind"). Cutover kinds have their own routes ([`Kind::cutover`]).
    pub fn parse(segment: &str) -> Option<Self> {
        match segment {
            "copy" => Some(Kind::Copy),
            "blobs" => Some(Kind::Blobs),
            "peertube" => Some(Kind::Peertube),
            "migrate" => Some(Kind::Migrate),
            _ => None,
        }
    }

    /// The cutover kind `/api/v1/admin/cutover/{step}` names.
    pub fn cutover(step: &str) -> Option<Self> {
        match step {
            "check" => Some(Kind::CutoverCheck),
            "sync" => Some(Kind::CutoverSync),
            _ => None,
        }
    }

    /// Whether other servers sharing the job store may copy this kind's chunks with it (see
    /// `crate::helpers`): a copy, and a move's rows (its rewrite and files stay its owner's).
    pub fn shares_chunks(self) -> bool {
        matches!(self, Kind::Copy | Kind::Migrate)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Copy => "copy",
            Kind::Blobs => "blobs",
            Kind::Peertube => "peertube",
            Kind::Migrate => "migrate",
            Kind::CutoverCheck => "cutover-check",
            Kind::CutoverSync => "cutover-sync",
        }
    }

    /// Checks a request body; never touches the network.
    ///
    /// # Errors
    /// A [`BadRequest`] naming the field that is missing or wrong.
    pub fn validate(self, body: &Value, targets: &Targets) -> Result<Validated, BadRequest> {
        match self {
            Kind::Copy => copy::validate(body),
            Kind::Blobs => blobs::validate(body),
            Kind::Peertube => peertube::validate(body, targets),
            Kind::Migrate => migrate::validate(body),
            Kind::CutoverCheck => cutover::validate(body, false),
            Kind::CutoverSync => cutover::validate(body, true),
        }
    }

    /// Runs a validated body. Calls [`RunContext::validated`] once the source and target have
    /// been reached, before the work starts.
    ///
    /// # Errors
    /// When the job could not run (the message never holds a credential).
    pub async fn run(self, body: Value, dry_run: bool, cx: RunContext) -> ferry_core::Result<Ran> {
        match self {
            Kind::Copy => copy::run(body, dry_run, cx).await.map(Ran::report),
            Kind::Blobs => blobs::run(body, dry_run, cx).await.map(Ran::report),
            Kind::Peertube => peertube::run(body, dry_run, cx).await.map(Ran::report),
            Kind::Migrate => migrate::run(body, dry_run, cx).await.map(Ran::report),
            Kind::CutoverCheck => cutover::run(body, false, cx).await,
            Kind::CutoverSync => cutover::run(body, true, cx).await,
        }
    }
}

impl Ran {
    fn report(report: Report) -> Self {
        Ran::Report(Box::new(report))
    }
}

/// What a job's run gives back.
pub enum Ran {
    /// A migration's report.
    Report(Box<Report>),
    /// A cutover's summary (JSON, scrubbed of secrets) and, for NO-GO, one line saying why.
    Cutover {
        summary: Value,
        no_go: Option<String>,
    },
}

/// What validation gives the job store: the job's public fields and the body to seal.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The source's host (or file path), without credentials.
    pub source_host: String,
    /// Where the job writes, without credentials: one non-dry-run job per key at a time.
    pub target_key: String,
    /// The database the job writes into, when it writes into one: the job's `target_key` is
    /// then [`database_key`] of it, resolved when the job is created.
    pub target: Option<ferry::Locator>,
}

/// How long creating a job waits for its target database to say who it is.
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// The one-job-per-target key of a database: what the database says it is (so `localhost` and
/// `127.0.0.1`, a default port written or not, and another user's login are one target), or,
/// when it cannot be reached at this moment, [`normalised_key`]. A SQLite file is keyed by its
/// real path, as a target file usually does not exist until its first job creates it.
pub async fn database_key(target: &ferry::Locator) -> String {
    if let Ok(ferry::Address::Key(key)) = ferry::normalised_address(target) {
        return key;
    }
    match tokio::time::timeout(IDENTIFY_TIMEOUT, ferry::target_identity(target)).await {
        Ok(Ok(Some(identity))) => identity.key(),
        Ok(Ok(None)) | Ok(Err(_)) | Err(_) => normalised_key(target).await,
    }
}

/// The target as an address: the host resolved (its lowest IPv4 address, else its lowest IPv6
/// one, so `localhost` is `127.0.0.1`), the default port filled in, the database (PostgreSQL's
/// default: the user's name) and schema; no user or password. A SQLite file: its real path
/// (the folder's, with the file name, when the file does not exist yet).
pub async fn normalised_key(target: &ferry::Locator) -> String {
    match ferry::normalised_address(target) {
        Ok(ferry::Address::Key(key)) => key,
        Ok(ferry::Address::Server { host, port, rest }) => {
            let address = resolve(&host, port).await.unwrap_or(host);
            format!("{}://{address}:{port}{rest}", target.backend())
        }
        Err(_) => target.redacted(),
    }
}

async fn resolve(host: &str, port: u16) -> Option<String> {
    let found = tokio::time::timeout(IDENTIFY_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .ok()?
        .ok()?;
    let mut addresses: Vec<std::net::IpAddr> = found.map(|a| a.ip()).collect();
    addresses.sort_by_key(|a| (a.is_ipv6(), *a));
    addresses.first().map(|a| match a {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    })
}

/// A 400 with its message (which names the field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

/// What a running job gets: where to report progress, when to stop, where to put rejects.
#[derive(Clone)]
pub struct RunContext {
    pub stats: Arc<LiveStats>,
    pub cancel: CancellationToken,
    pub job_id: String,
    pub work_dir: PathBuf,
    /// The server's own destinations for profile imports.
    pub targets: Arc<Targets>,
    validated: Arc<tokio::sync::Notify>,
    /// A copy's chunks are claimed with leases, shared with the servers that join it (or, with
    /// `join`, this run is such a helper): see `crate::helpers`.
    pub claims: Option<ferry_core::claims::ClaimOptions>,
}

impl RunContext {
    pub fn new(
        stats: Arc<LiveStats>,
        cancel: CancellationToken,
        job_id: String,
        work_dir: PathBuf,
        validated: Arc<tokio::sync::Notify>,
        targets: Arc<Targets>,
    ) -> Self {
        Self {
            stats,
            cancel,
            job_id,
            work_dir,
            targets,
            validated,
            claims: None,
        }
    }

    pub fn with_claims(self, claims: Option<ferry_core::claims::ClaimOptions>) -> Self {
        Self { claims, ..self }
    }

    /// The source and target answered: the job moves from `validating` to `running`
    /// (or `dry_run`).
    pub fn validated(&self) {
        self.validated.notify_one();
    }
}

/// Fields whose values may hold credentials: their type errors do not echo the value.
const SECRET_FIELDS: [&str; 18] = [
    "secrets",
    "spec.source.database",
    "spec.source.media",
    "spec.target.database",
    "spec.target.media",
    "preset.source",
    "preset.target",
    "source_url",
    "target_url",
    "from",
    "to",
    "manifest_db",
    "source_db_password",
    "database.source",
    "database.target",
    "blobs.source",
    "blobs.target",
    "blobs.manifest_db",
];

/// Deserialises a body into a kind's request type; errors name the field.
///
/// # Errors
/// A [`BadRequest`] like ``missing field `source_url` `` or `batch_size: invalid type: …`.
pub fn parse_body<T: DeserializeOwned>(body: &Value) -> Result<T, BadRequest> {
    if !body.is_object() {
        return Err(BadRequest(
            "the request body must be a JSON object".to_string(),
        ));
    }
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        let inner = inner
            .split(" at line ")
            .next()
            .unwrap_or(&inner)
            .to_string();
        if path == "." || path.is_empty() {
            BadRequest(inner)
        } else if SECRET_FIELDS.iter().any(|f| path.starts_with(f)) {
            BadRequest(format!("{path}: must be a string"))
        } else {
            BadRequest(format!("{path}: {inner}"))
        }
    })
}

/// Deserialises a job's options ([`ferry::JobSpec`]) from `body`, allowing only its two
/// endpoints (required, by the names they have here) and the `options` the server lets a
/// caller set.
///
/// # Errors
/// A [`BadRequest`] naming the field, worded as the body's other errors are.
pub fn parse_job(
    body: &Value,
    at: &str,
    endpoints: &[&str; 2],
    options: &[&str],
) -> Result<ferry::JobSpec, BadRequest> {
    only_fields(body, at, endpoints, options)?;
    parse_body(body)
}

/// Refuses in the object `value` (at path `at`: `""` for the body, else `"database."`) a field
/// that is neither `required` nor `optional`, and a missing `required` one. Other values are
/// left to the deserializer's own errors.
pub fn only_fields(
    value: &Value,
    at: &str,
    required: &[&str],
    optional: &[&str],
) -> Result<(), BadRequest> {
    let Some(object) = value.as_object() else {
        return Ok(());
    };
    let place = match at.trim_end_matches('.') {
        "" => String::new(),
        section => format!("{section}: "),
    };
    let allowed: Vec<&str> = required.iter().chain(optional).copied().collect();
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        let expected: Vec<String> = allowed.iter().map(|f| format!("`{f}`")).collect();
        return Err(BadRequest(format!(
            "{place}unknown field `{unknown}`, expected one of {}",
            expected.join(", ")
        )));
    }
    if let Some(missing) = required.iter().find(|f| !object.contains_key(**f)) {
        return Err(BadRequest(format!("{place}missing field `{missing}`")));
    }
    Ok(())
}

/// A locator that does not parse: the library's reason, without the text that was sent (it
/// may be a password pasted into the wrong field).
pub fn bad_secret(field: &str, value: &str, error: &dyn std::fmt::Display) -> BadRequest {
    let mut message = error.to_string();
    let value = value.trim();
    if !value.is_empty() {
        // Quoted, the value is always the caller's; bare, a short one may be a fragment like
        // `sqlite:` that the library's own advice also contains.
        message = message.replace(&format!("'{value}'"), "the value given");
        if value.len() >= 8 {
            message = message.replace(value, "(the value given)");
        }
    }
    // Userinfo of a URL-looking value, even when the library quoted it differently.
    if let Some((_, rest)) = value.split_once("://")
        && let Some((userinfo, _)) = rest.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
        && !password.is_empty()
    {
        message = message.replace(password, "***");
    }
    BadRequest(format!("{field}: {message}"))
}

/// A required text field must not be blank.
pub fn non_empty(field: &str, value: &str) -> Result<(), BadRequest> {
    if value.trim().is_empty() {
        Err(BadRequest(format!("{field}: must not be empty")))
    } else {
        Ok(())
    }
}

/// A count option within bounds.
pub fn in_range(field: &str, value: Option<u64>, min: u64, max: u64) -> Result<(), BadRequest> {
    match value {
        Some(v) if v < min || v > max => Err(BadRequest(format!(
            "{field}: must be between {min} and {max} (got {v})"
        ))),
        _ => Ok(()),
    }
}
