//! The import engine: everything a profile does not say. It checks the source version, reads
//! every entity inside one read-only snapshot in keyset pages (never OFFSET), evaluates the
//! column expressions, upserts batches (`INSERT … ON CONFLICT (id) DO UPDATE … WHERE` something
//! changed), counts per entity, remembers a watermark per entity and source host for
//! incremental runs, copies the files rows name through ferry blobs, and verifies counts.
//! A dry run walks the same path and writes nothing.
//!
//! A stopped run (killed, failed, cancelled) is continued by a rerun: entities whose state was
//! saved read only what changed since, and every write is an upsert, so nothing is written
//! twice. With `resume`, an entity the stopped run was in the middle of also continues after
//! the last page it wrote (`ferry_import_progress`) instead of reading its rows again.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use ferry_blobs::Store;
use ferry_core::engine::Context;
use ferry_core::killpoint;
use ferry_core::progress::Event;
use ferry_core::rejects::{Rejects, RowNames, write_splitting};
use ferry_core::report::{Report, Status, TableStats, VerifyTable};
use ferry_core::schema::SkippedObject;
use ferry_core::value::{Batch, Value as Cell};
use ferry_core::{Error, ErrorKind, Locator, Result};
use ferry_postgres::{Session, quote};
use serde_json::{Map, Value};

use crate::expr::{Env, entity_id, render};
use crate::format::{Access, Entity, Profile, SkipRule};
use crate::pg::{self, bind};
use crate::{inventory, media};

/// The state table in the target: the last watermark imported per profile, source host and
/// entity, and when it was reached (a run that changes nothing leaves it untouched).
const STATE_DDL: &str = "CREATE TABLE IF NOT EXISTS ferry_import_state (
    profile text NOT NULL,
    source_host text NOT NULL,
    entity text NOT NULL,
    watermark timestamptz,
    finished_at timestamptz NOT NULL,
    PRIMARY KEY (profile, source_host, entity)
)";

/// Where an entity stopped in an unfinished run: the last key of the last page written (after
/// its upsert committed: a kill between the two redoes that page, an upsert, the same rows),
/// and the watermark that run would have saved. Dropped for an entity when its state is saved.
const PROGRESS_DDL: &str = "CREATE TABLE IF NOT EXISTS ferry_import_progress (
    profile text NOT NULL,
    source_host text NOT NULL,
    entity text NOT NULL,
    after_key bigint NOT NULL,
    watermark timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (profile, source_host, entity)
)";

/// How far behind the snapshot's start the stored watermark stays: it is the newest watermark
/// among rows at least this old. A transaction in the application that stamped its rows before
/// the snapshot but committed after it is invisible to this run; the next run reads every row
/// younger than this again (rows it already has are identical: neither rewritten nor counted
/// as migrated), and the stored watermark only moves when older rows arrive, so a run that
/// changes nothing leaves the state table untouched.
const WATERMARK_LAG: &str = "5 minutes";

/// What an import reads, writes and how. `Debug` hides passwords and storage credentials.
#[derive(Clone)]
pub struct ImportOptions {
    /// The application's database (postgres://), opened read-only.
    pub source: Locator,
    /// The new platform's database (postgres://).
    pub target: Locator,
    /// Names the source in ids and in `source_host` columns; default: the profile's host query,
    /// else the source URL's host.
    pub source_host: Option<String>,
    /// Where the application's files are (a ferry blobs locator: `file:///…`, `s3://…`).
    pub media_from: Option<String>,
    /// Where the files go.
    pub media_to: Option<String>,
    /// The profile's named media stores (object storage) → their locators (`s3://bucket/prefix?…`).
    pub media_stores: BTreeMap<String, String>,
    pub dry_run: bool,
    /// Run against a source version the profile does not list.
    pub allow_unsupported_version: bool,
    /// Carry no password hashes; users must set a new password.
    pub require_password_reset: bool,
    /// Import remote content too (default: counted as skipped).
    pub include_remote: bool,
    /// Rows per page and per upsert statement.
    pub batch_size: usize,
    /// Continue the entities a stopped run was in the middle of after the last page it wrote
    /// (otherwise they are read again from their start, and upserted unchanged).
    pub resume: bool,
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store = |s: &Option<String>| {
            s.as_ref().map(|s| {
                Store::parse(s).map_or_else(|_| "(invalid locator)".to_string(), |s| s.to_string())
            })
        };
        f.debug_struct("ImportOptions")
            .field("source", &self.source)
            .field("target", &self.target)
            .field("source_host", &self.source_host)
            .field("media_from", &store(&self.media_from))
            .field("media_to", &store(&self.media_to))
            .field(
                "media_stores",
                &self
                    .media_stores
                    .iter()
                    .map(|(k, v)| (k.clone(), store(&Some(v.clone()))))
                    .collect::<BTreeMap<_, _>>(),
            )
            .field("dry_run", &self.dry_run)
            .field("allow_unsupported_version", &self.allow_unsupported_version)
            .field("require_password_reset", &self.require_password_reset)
            .field("include_remote", &self.include_remote)
            .field("batch_size", &self.batch_size)
            .field("resume", &self.resume)
            .finish()
    }
}

impl ImportOptions {
    /// Defaults: no media, not a dry run, supported versions only, hashes carried, local
    /// content only, 1,000 rows per batch.
    pub fn new(source: Locator, target: Locator) -> Self {
        Self {
            source,
            target,
            source_host: None,
            media_from: None,
            media_to: None,
            media_stores: BTreeMap::new(),
            dry_run: false,
            allow_unsupported_version: false,
            require_password_reset: false,
            include_remote: false,
            batch_size: 1000,
            resume: false,
        }
    }
}

/// What [`validate_source`] found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceInfo {
    /// The source's schema version (`None` when the profile has no version query).
    pub version: Option<String>,
    pub supported_versions: Vec<String>,
    /// Whether the version is one the profile supports.
    pub supported: bool,
    /// The source host ids and rows are made with.
    pub source_host: String,
    /// The application, in words ("PeerTube 6.3").
    pub application: String,
}

/// Connects to the source read-only and checks its version against the profile (this is the
/// `validating` step of a server job).
///
/// # Errors
/// An input error when the media options are wrong (a store the profile does not declare, a
/// missing local folder), the source cannot be reached, or runs a version the profile does not
/// support and `allow_unsupported_version` is off (the message names both versions).
pub async fn validate_source(profile: &Profile, options: &ImportOptions) -> Result<SourceInfo> {
    // The media options are checked first: a mistyped store fails before any connection.
    media::media_stores(profile, options)?;
    let client = pg::connect(&options.source, true, "source").await?;
    check_source(profile, options, &client).await
}

async fn check_source(
    profile: &Profile,
    options: &ImportOptions,
    client: &Session,
) -> Result<SourceInfo> {
    let version = match &profile.version_query {
        Some(q) => first_value(client, q).await.map_err(|e| {
            Error::input(format!(
                "cannot read the source's version for profile {} ({}): is this a {} database? ({e})",
                profile.name,
                options.source.redacted(),
                if profile.source_app.is_empty() { &profile.name } else { &profile.source_app }
            ))
        })?,
        None => None,
    };
    let supported = profile.supported_versions.is_empty()
        || version
            .as_ref()
            .is_some_and(|v| profile.supported_versions.contains(v));
    if !supported && !options.allow_unsupported_version {
        return Err(Error::input(format!(
            "the source is at version {} but profile {} supports {} ({}); use a matching profile, or pass --allow-unsupported-version to try anyway",
            version.as_deref().unwrap_or("(none)"),
            profile.name,
            profile.supported_versions.join(", "),
            profile.source_app
        )));
    }
    let host = match &options.source_host {
        Some(h) => Some(h.trim().to_string()),
        None => match &profile.host_query {
            Some(q) => first_value(client, q).await.map_err(|e| {
                Error::input(format!(
                    "cannot read the source host: {e}; pass --source-host"
                ))
            })?,
            None => None,
        },
    }
    .filter(|h| !h.is_empty())
    .or_else(|| {
        let url = ferry_postgres::locator::url(&options.source).ok()?;
        url.host_str().map(str::to_string)
    })
    .ok_or_else(|| Error::input("cannot tell the source host: pass --source-host"))?;
    Ok(SourceInfo {
        version,
        supported_versions: profile.supported_versions.clone(),
        supported,
        source_host: host,
        application: profile.source_app.clone(),
    })
}

/// The first column of the first row, as text.
async fn first_value(client: &Session, sql: &str) -> Result<Option<String>> {
    let wrapped = format!("SELECT row_to_json(q)::text FROM ({sql}) AS q LIMIT 1");
    let rows = client.query(&wrapped, &[]).await?;
    let Some(json) = rows.first().map(|r| text(&r[0])) else {
        return Ok(None);
    };
    let map: Map<String, Value> =
        serde_json::from_str(&json).map_err(|e| Error::run(e.to_string()))?;
    Ok(map.values().next().and_then(render))
}

/// Runs `profile`: every entity, then the media, then verification.
///
/// Returns a report for every run that started (failed and cancelled runs included: see its
/// `status`). Stats keys are the entities' `stats` names; `verify` has one entry per entity.
///
/// # Errors
/// An input error (exit 2) when the run cannot start: unreachable databases, an unsupported
/// source version, a source query that lacks a column the profile reads, bad media locators.
pub async fn import(profile: &Profile, options: &ImportOptions, cx: &Context) -> Result<Report> {
    let started = Instant::now();
    if options.batch_size == 0 {
        return Err(Error::input("the batch size must be at least 1"));
    }
    let mut report = Report::new(
        options.source.redacted(),
        options.target.redacted(),
        options.dry_run,
    );
    let media = media::media_stores(profile, options)?;

    cx.observer.event(&Event::Phase(format!(
        "Checking the source ({})",
        options.source.redacted()
    )));
    let source = pg::connect(&options.source, true, "source").await?;
    let info = check_source(profile, options, &source).await?;
    if !info.supported {
        report.warnings.push(format!(
            "the source is at version {} which profile {} does not list ({}); running anyway as asked",
            info.version.as_deref().unwrap_or("(none)"),
            profile.name,
            info.supported_versions.join(", ")
        ));
    }
    // One snapshot for every entity: references between entities stay consistent while the
    // application keeps running.
    source
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let flags = flags(options);
    for entity in &profile.entities {
        describe(&source, profile, entity, &flags).await?;
    }
    // What stays behind, counted in the same snapshot: declared, and undeclared (named too).
    report.not_copied = inventory::declared(&source, profile, &flags, media.media_from()).await?;
    for (table, rows) in inventory::unaccounted_tables(&source, profile, &flags).await? {
        report.not_copied.push(SkippedObject {
            kind: "table".into(),
            name: table,
            reason: format!(
                "holds rows that profile {} neither reads nor declares in [[not_migrated]]",
                profile.name
            ),
            count: Some(rows),
            bytes: None,
        });
    }

    let target = pg::connect(&options.target, options.dry_run, "target").await?;
    // Before the DDL too: an existing table of another shape gets the clear message, not the
    // error of an index the DDL would put on a column it lacks.
    check_target_tables(&target, profile).await?;
    if !options.dry_run {
        cx.observer.event(&Event::Phase(
            "Creating the target schema if missing".into(),
        ));
        // One transaction behind a lock: the server session of a run killed while creating
        // the schema may still be inside its CREATE TABLE when the resumed run starts, and two
        // concurrent `CREATE TABLE IF NOT EXISTS` of one name collide in the catalog
        // (pg_type_typname_nsp_index). The lock waits for that session's transaction to end.
        target
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock(hashtext('ferry-profile-schema')); {}\n; {STATE_DDL}; {PROGRESS_DDL}; COMMIT;",
                profile.target_schema
            ))
            .await
            .map_err(|e| e.context("the profile's target schema"))
            .map_err(|e| Error::input(e.to_string()))?;
    }
    check_target_tables(&target, profile).await?;
    let state = read_state(&target, &profile.name, &info.source_host).await?;
    let progress = read_progress(&target, &profile.name, &info.source_host).await?;
    if !progress.is_empty() && !options.resume {
        report.warnings.push(format!(
            "the target records an import of this source stopped in {}: they are read again from their start (pass --resume to continue after the last page written)",
            progress.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
        ));
    }
    // A run that does not resume starts every entity afresh: where a stopped run was is moot.
    let progress = if options.resume {
        progress
    } else {
        if !progress.is_empty() && !options.dry_run {
            target
                .execute(
                    "DELETE FROM ferry_import_progress WHERE profile = $1 AND source_host = $2",
                    &[Some(profile.name.clone()), Some(info.source_host.clone())],
                )
                .await?;
        }
        HashMap::new()
    };

    let run = Run::new(profile, options, cx, &info, (&source, &target));
    let mut media_files: Vec<media::MediaFile> = Vec::new();
    let mut media_stats = TableStats::default();
    let mut pending_state: Vec<(String, Option<String>)> = Vec::new();
    let mut skip_notes: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut cancelled = false;
    let mut failure: Option<Error> = None;

    // Every count first (one snapshot), so each stats key starts once with its whole total.
    cx.observer
        .event(&Event::Phase("Counting the source rows".into()));
    let mut counts = Vec::new();
    for entity in &profile.entities {
        let since = state.get(&entity.name).cloned().flatten();
        counts.push(
            run.count(entity, since.as_deref())
                .await
                .map_err(|e| e.context(format!("entity {}", entity.name)))?,
        );
    }
    let mut started_keys: Vec<&str> = Vec::new();
    for entity in &profile.entities {
        let key = report_key(entity);
        if !started_keys.contains(&key) {
            started_keys.push(key);
            let rows = profile
                .entities
                .iter()
                .zip(&counts)
                .filter(|(e, _)| report_key(e) == key)
                .map(|(_, c)| c.total)
                .sum();
            cx.observer.event(&Event::TableStarted {
                table: key.to_string(),
                rows,
            });
        }
    }

    for (i, entity) in profile.entities.iter().enumerate() {
        if cx.cancel.is_cancelled() {
            cancelled = true;
            break;
        }
        let since = state.get(&entity.name).cloned().flatten();
        let resumed = progress.get(&entity.name).filter(|_| resumable(entity));
        let outcome = match run
            .entity(entity, since.as_deref(), &counts[i], resumed)
            .await
        {
            Ok(o) => o,
            Err(e) if e.kind() == ErrorKind::Cancelled => {
                cancelled = true;
                break;
            }
            Err(e) => {
                failure = Some(e.context(format!("entity {}", entity.name)));
                break;
            }
        };
        for (reason, n) in &outcome.skip_reasons {
            *skip_notes
                .entry((entity.stats.clone(), reason.clone()))
                .or_default() += n;
        }
        let into = if entity.table.is_some() {
            report.stats.entry(entity.stats.clone()).or_default()
        } else {
            &mut media_stats
        };
        into.merge(&outcome.stats);
        let last_of_key = entity.table.is_some()
            && !profile.entities[i + 1..]
                .iter()
                .any(|e| e.table.is_some() && e.stats == entity.stats);
        if last_of_key {
            let s = &report.stats[&entity.stats];
            cx.observer.event(&Event::TableFinished {
                table: entity.stats.clone(),
                migrated: s.migrated,
                failed: s.failed,
                elapsed_s: s.elapsed_s,
            });
        }
        if let Some(v) = outcome.verify {
            report.verify.insert(entity.name.clone(), v);
        }
        if !entity.media.is_empty() {
            media_files.extend(outcome.media_files);
        }
        if outcome.cancelled {
            cancelled = true;
            break;
        }
        if outcome.stats.failed == 0 {
            if entity.media.is_empty() {
                if let Err(e) =
                    save_state(&run, &entity.name, outcome.new_watermark.as_deref()).await
                {
                    failure = Some(e.context("saving the import state"));
                    break;
                }
                killpoint::point("import-entity-done");
            } else {
                pending_state.push((entity.name.clone(), outcome.new_watermark.clone()));
            }
        }
    }

    // Files, after the rows that name them.
    let has_media = profile.entities.iter().any(|e| !e.media.is_empty());
    if has_media && failure.is_none() && !cancelled {
        // The rows are written: a storage failure now is the run's failure, reported with
        // every entity's numbers, not an error that loses them.
        let files_started = Instant::now();
        let copied = media::copy_media(
            cx,
            options.dry_run,
            &media,
            media_files,
            &mut media_stats,
            &mut report,
        )
        .await;
        media_stats.elapsed_s += files_started.elapsed().as_secs_f64();
        let mut left_out = 0;
        match copied {
            Ok(files) => {
                cancelled |= files.cancelled;
                left_out = files.not_copied;
            }
            Err(e) => failure = Some(e.context("media")),
        }
        // Files whose store was not given did not move: the watermark stays so a later run
        // with --media-from/--media-to (and --media-store) still copies every file.
        if left_out == 0 && media_stats.failed == 0 && !cancelled && failure.is_none() {
            for (name, wm) in &pending_state {
                if let Err(e) = save_state(&run, name, wm.as_deref()).await {
                    failure = Some(e.context("saving the import state"));
                    break;
                }
            }
        }
    }
    if has_media {
        let counted = media_stats.migrated + media_stats.skipped + media_stats.failed;
        media_stats.total = media_stats.total.max(counted);
        report.stats.insert("media".into(), media_stats);
    }

    for ((stats, reason), n) in skip_notes {
        report
            .warnings
            .push(format!("{stats}: {n} skipped ({reason})"));
    }
    let _ = source.batch_execute("ROLLBACK").await;

    if let Some(e) = failure {
        report.status = Status::Failed;
        report.error = Some(e.to_string());
    } else if cancelled {
        report.status = Status::Cancelled;
        report.error = Some(
            "cancelled by the operator; rerun with --resume to continue (finished entities and written pages are not redone)"
                .into(),
        );
    }
    if options.dry_run {
        report.warnings.push(
            "dry run: `migrated` counts what would be migrated; nothing was written to the target"
                .into(),
        );
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.peak_rss_mb = ferry_core::report::peak_rss_mb();
    Ok(report)
}

/// The run-wide values a profile's queries and rules may name.
fn flags(options: &ImportOptions) -> HashMap<&'static str, Option<String>> {
    HashMap::from([
        ("include_remote", Some(options.include_remote.to_string())),
        (
            "require_password_reset",
            Some(options.require_password_reset.to_string()),
        ),
    ])
}

/// Verifies an import again, now, writing nothing: per table entity, the source rows a run
/// would not skip (one read-only snapshot) against the target rows of this source host, by
/// count and by content: the verification [`import`] runs after each entity. `ferry
/// cutover`'s `reconcile` uses it to catch a target (or source) changed since the last run.
///
/// # Errors
/// When either database cannot be reached, the source is not the profile's application, or
/// the target has no table of the profile.
pub async fn verify(profile: &Profile, options: &ImportOptions, cx: &Context) -> Result<Report> {
    let started = Instant::now();
    let mut report = Report::new(options.source.redacted(), options.target.redacted(), false);
    let source = pg::connect(&options.source, true, "source").await?;
    let info = check_source(profile, options, &source).await?;
    source
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let target = pg::connect(&options.target, true, "target").await?;
    check_target_tables(&target, profile).await?;
    let run = Run::new(profile, options, cx, &info, (&source, &target));
    for entity in &profile.entities {
        let Some(table) = &entity.table else { continue };
        if cx.cancel.is_cancelled() {
            return Err(Error::cancelled());
        }
        let what = || format!("entity {}", entity.name);
        let counts = run
            .count(entity, None)
            .await
            .map_err(|e| e.context(what()))?;
        let v = run
            .verify(entity, table, counts.expected)
            .await
            .map_err(|e| e.context(what()))?;
        report.verify.insert(entity.name.clone(), v);
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Where an entity's numbers go: its `stats` key, or `media` for a files-only entity.
fn report_key(entity: &Entity) -> &str {
    if entity.table.is_some() {
        &entity.stats
    } else {
        "media"
    }
}

/// Checks that the source query returns every column the entity reads, before any work.
async fn describe(
    client: &Session,
    profile: &Profile,
    entity: &Entity,
    flags: &HashMap<&str, Option<String>>,
) -> Result<()> {
    let mut values = flags.clone();
    values.insert("since", None);
    let b = bind(&entity.source, &values);
    let sql = format!("SELECT * FROM ({}) AS q LIMIT 0", b.sql);
    let have = client.column_names(&sql).await.map_err(|e| {
        Error::input(format!(
            "profile {} entity {}: the source query fails: {e}",
            profile.name, entity.name,
        ))
    })?;
    for need in entity.source_columns() {
        if !have.contains(&need) {
            return Err(Error::input(format!(
                "profile {} entity {}: the source query returns no column '{need}' (it returns {})",
                profile.name,
                entity.name,
                have.join(", ")
            )));
        }
    }
    Ok(())
}

/// Every table an entity fills must have the columns it writes (an existing table of another
/// shape is left alone by `CREATE TABLE IF NOT EXISTS`, and would fail every row). In dry runs
/// only tables that already exist are checked.
async fn check_target_tables(target: &Session, profile: &Profile) -> Result<()> {
    for entity in &profile.entities {
        let Some(table) = &entity.table else { continue };
        let rows = target
            .query(
                "SELECT a.attname::text FROM pg_attribute a
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                &[Some(quote(table))],
            )
            .await?;
        if rows.is_empty() {
            continue;
        }
        let have: Vec<String> = rows.iter().map(|r| text(&r[0])).collect();
        let missing: Vec<&str> = ["id", "source_host"]
            .into_iter()
            .chain(entity.columns.iter().map(|(c, _)| c.as_str()))
            .filter(|c| !have.iter().any(|h| h == c))
            .collect();
        if !missing.is_empty() {
            return Err(Error::input(format!(
                "the target table {table} (entity {}) has no column {}: it is not the table profile {} creates; use another target database or schema",
                entity.name,
                missing.join(", "),
                profile.name
            )));
        }
    }
    Ok(())
}

/// Whether the target has one of ferry's own tables (a dry run creates none).
async fn has_table(target: &Session, name: &str) -> Result<bool> {
    let exists = target
        .query(
            "SELECT to_regclass($1) IS NOT NULL",
            &[Some(name.to_string())],
        )
        .await?;
    Ok(matches!(
        exists.first().map(|r| &r[0]),
        Some(Cell::Bool(true))
    ))
}

/// `columns` of the rows of ferry's bookkeeping `table` for one profile and source host; none
/// when the table does not exist yet (a target no import has written to).
async fn host_rows(
    target: &Session,
    table: &str,
    columns: &str,
    profile: &str,
    host: &str,
) -> Result<Vec<Vec<Cell>>> {
    if !has_table(target, table).await? {
        return Ok(Vec::new());
    }
    target
        .query(
            &format!("SELECT {columns} FROM {table} WHERE profile = $1 AND source_host = $2"),
            &[Some(profile.to_string()), Some(host.to_string())],
        )
        .await
}

async fn read_state(
    target: &Session,
    profile: &str,
    host: &str,
) -> Result<HashMap<String, Option<String>>> {
    let rows = host_rows(
        target,
        "ferry_import_state",
        "entity, watermark::text",
        profile,
        host,
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| (text(&r[0]), optional_text(&r[1])))
        .collect())
}

/// Where each entity of an unfinished run stopped: its last key written and the watermark
/// that run would have saved.
async fn read_progress(
    target: &Session,
    profile: &str,
    host: &str,
) -> Result<HashMap<String, (i64, Option<String>)>> {
    let rows = host_rows(
        target,
        "ferry_import_progress",
        "entity, after_key, watermark::text",
        profile,
        host,
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| match &r[1] {
            Cell::Int(after) => Some((text(&r[0]), (*after, optional_text(&r[2])))),
            _ => None,
        })
        .collect())
}

/// Whether an entity can continue after its last page written: a table read in key pages
/// whose rows name no files (the files an entity's rows name are collected from every row, so
/// such an entity is read again, its files already copied skipped).
fn resumable(entity: &Entity) -> bool {
    entity.table.is_some() && entity.key.is_some() && entity.media.is_empty()
}

/// A text (or integer) cell as text; NULL as the empty text.
pub(crate) fn text(cell: &Cell) -> String {
    optional_text(cell).unwrap_or_default()
}

fn optional_text(cell: &Cell) -> Option<String> {
    match cell {
        Cell::Null => None,
        Cell::Text(s) => Some(s.clone()),
        other => Some(other.render()),
    }
}

/// A `count(*)::bigint` cell.
pub(crate) fn count(cell: &Cell) -> u64 {
    match cell {
        Cell::Int(n) => (*n).max(0) as u64,
        _ => 0,
    }
}

/// Saves an entity's watermark and forgets where a stopped run was in it, in one transaction.
async fn save_state(run: &Run<'_>, entity: &str, watermark: Option<&str>) -> Result<()> {
    if run.options.dry_run {
        return Ok(());
    }
    let (profile, host, entity) = (
        Some(run.profile.name.clone()),
        Some(run.host.clone()),
        Some(entity.to_string()),
    );
    run.target.batch_execute("BEGIN").await?;
    let saved = async {
        run.target
            .execute(
                "INSERT INTO ferry_import_state (profile, source_host, entity, watermark, finished_at)
                 VALUES ($1, $2, $3, $4::text::timestamptz, now())
                 ON CONFLICT (profile, source_host, entity)
                 DO UPDATE SET watermark = COALESCE(EXCLUDED.watermark, ferry_import_state.watermark),
                               finished_at = EXCLUDED.finished_at
                 WHERE EXCLUDED.watermark IS DISTINCT FROM ferry_import_state.watermark
                   AND EXCLUDED.watermark IS NOT NULL",
                &[
                    profile.clone(),
                    host.clone(),
                    entity.clone(),
                    watermark.map(str::to_string),
                ],
            )
            .await?;
        run.target
            .execute(
                "DELETE FROM ferry_import_progress WHERE profile = $1 AND source_host = $2 AND entity = $3",
                &[profile, host, entity],
            )
            .await
    }
    .await;
    match saved {
        Ok(_) => run.target.batch_execute("COMMIT").await,
        Err(e) => {
            let _ = run.target.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Records that `entity`'s rows up to key `after` are written (`watermark`: what this run
/// would save; a resumed entity keeps the stopped run's, the older one, since its rows up to
/// the key were read then).
async fn save_progress(
    run: &Run<'_>,
    entity: &str,
    after: i64,
    watermark: Option<&str>,
) -> Result<()> {
    run.target
        .execute(
            "INSERT INTO ferry_import_progress (profile, source_host, entity, after_key, watermark, updated_at)
             VALUES ($1, $2, $3, $4::text::bigint, $5::text::timestamptz, now())
             ON CONFLICT (profile, source_host, entity)
             DO UPDATE SET after_key = EXCLUDED.after_key, updated_at = EXCLUDED.updated_at",
            &[
                Some(run.profile.name.clone()),
                Some(run.host.clone()),
                Some(entity.to_string()),
                Some(after.to_string()),
                watermark.map(str::to_string),
            ],
        )
        .await?;
    Ok(())
}

struct Run<'a> {
    profile: &'a Profile,
    options: &'a ImportOptions,
    cx: &'a Context,
    host: String,
    source: &'a Session,
    target: &'a Session,
    flags: HashMap<&'a str, Option<String>>,
}

/// What an entity's query holds in the snapshot.
struct Counts {
    total: u64,
    /// Rows past the last watermark (all rows on a first run).
    changed: u64,
    /// Rows not skipped by a rule: what the target should hold.
    expected: u64,
    new_watermark: Option<String>,
}

#[derive(Default)]
struct EntityOutcome {
    stats: TableStats,
    verify: Option<VerifyTable>,
    new_watermark: Option<String>,
    media_files: Vec<media::MediaFile>,
    skip_reasons: BTreeMap<String, u64>,
    cancelled: bool,
}

impl<'a> Run<'a> {
    /// A run between two open sessions, with the options' flags.
    fn new(
        profile: &'a Profile,
        options: &'a ImportOptions,
        cx: &'a Context,
        info: &SourceInfo,
        (source, target): (&'a Session, &'a Session),
    ) -> Self {
        Self {
            profile,
            options,
            cx,
            host: info.source_host.clone(),
            source,
            target,
            flags: flags(options),
        }
    }
}

impl Run<'_> {
    /// Tells the observer that `rows` more of `entity` were handled, `failed` of them failed
    /// (a server's live counts).
    fn progress(&self, entity: &Entity, rows: u64, failed: u64) {
        self.cx.observer.event(&Event::TableProgress {
            table: entity.stats.clone(),
            rows,
            failed,
            bytes: 0,
        });
    }

    /// An entity's counts, in the same snapshot the pages read.
    async fn count(&self, entity: &Entity, since: Option<&str>) -> Result<Counts> {
        let mut values = self.flags.clone();
        // The counts cover every row (`{since}` = -infinity): a query that pushes the
        // watermark down still reports its whole total, and verification its whole set.
        values.insert("since", None);
        let mut b = bind(&entity.source, &values);
        let changed = match (&entity.watermark, since) {
            (Some(w), Some(s)) => format!(
                "q.{} > {}",
                quote(w),
                b.param(Some(s.to_string()), "timestamptz")
            ),
            _ => "true".into(),
        };
        let skip_any = if entity.skip.is_empty() {
            "false".to_string()
        } else {
            entity
                .skip
                .iter()
                .map(|s| format!("COALESCE(q.{}, false)", quote(&s.when)))
                .collect::<Vec<_>>()
                .join(" OR ")
        };
        let max_wm = entity
            .watermark
            .as_ref()
            .map_or("NULL::text".to_string(), |w| {
                format!(
                    "(max(q.{w}) FILTER (WHERE q.{w} <= now() - interval '{WATERMARK_LAG}'))::text",
                    w = quote(w)
                )
            });
        let count_sql = format!(
            "SELECT count(*)::bigint, (count(*) FILTER (WHERE {changed}))::bigint, \
             (count(*) FILTER (WHERE NOT ({skip_any})))::bigint, {max_wm} FROM ({}) AS q",
            b.sql
        );
        let rows = self.source.query(&count_sql, &b.params).await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::run("PostgreSQL returned no row for count(*)"))?;
        Ok(Counts {
            total: count(&row[0]),
            changed: count(&row[1]),
            expected: count(&row[2]),
            new_watermark: optional_text(&row[3]),
        })
    }

    /// One entity: page through what changed (after the last page a stopped run wrote, when
    /// `resumed` says where that was), write, verify.
    async fn entity(
        &self,
        entity: &Entity,
        since: Option<&str>,
        counts: &Counts,
        resumed: Option<&(i64, Option<String>)>,
    ) -> Result<EntityOutcome> {
        let started = Instant::now();
        let mut out = EntityOutcome::default();
        let mut values = self.flags.clone();
        values.insert("since", since.map(str::to_string));
        let (total, expected) = (counts.total, counts.expected);
        // Rows up to the stopped run's key were read in its snapshot: the state saved at the
        // end is its (older) watermark, so the next run reads again what changed since.
        out.new_watermark = match resumed {
            Some((_, watermark)) => watermark.clone(),
            None => counts.new_watermark.clone(),
        };
        let record = resumable(entity) && !self.options.dry_run;
        out.stats.total = total;
        let unchanged = total - counts.changed;
        out.stats.skipped += unchanged;
        if unchanged > 0 {
            out.skip_reasons
                .insert("unchanged since the last run".into(), unchanged);
        }
        if unchanged > 0 {
            self.progress(entity, unchanged, 0);
        }

        let columns = target_columns(entity);
        let mut writer = match &entity.table {
            Some(t) if !self.options.dry_run => {
                Some(self.target.upsert_writer(t, &columns, &["id".to_string()]))
            }
            _ => None,
        };
        // Rows the target refuses are named in the report (nothing to retry from a file: the
        // next run reads them again, the entity's watermark stays back).
        let rejects = Rejects::stats_only();
        let env = Env {
            host: &self.host,
            enums: &entity.enums,
        };
        let mut after: i64 = resumed.map_or(i64::MIN, |(key, _)| *key);
        // Rows the page queries return (what changed, past the stopped run's key).
        let mut read = 0u64;
        loop {
            if self.cx.cancel.is_cancelled() {
                out.cancelled = true;
                break;
            }
            let b = self.page_query(entity, &values, since, after);
            let rows = self.source.query(&b.sql, &b.params).await?;
            if rows.is_empty() {
                break;
            }
            let n = rows.len();
            read += n as u64;
            let mut batch = Batch::new(columns.len(), n);
            // Each row's source id, indexed by the batch's row locators.
            let mut ids: Vec<String> = Vec::with_capacity(n);
            let (mut skipped, mut failed) = (0u64, 0u64);
            for r in &rows {
                if let Cell::Int(key) = r[0] {
                    after = after.max(key);
                }
                let row = source_row(&r[1])?;
                let source_id = source_id(entity, &row);
                if let Some(rule) = skip_rule(entity, &row) {
                    skipped += 1;
                    *out.skip_reasons.entry(rule.reason.clone()).or_default() += 1;
                    continue;
                }
                match self.target_values(entity, &row, &source_id, &env) {
                    Ok(values) => {
                        for m in &entity.media {
                            match media::locate(entity, m, &row, &env) {
                                Ok(f) => out.media_files.extend(f),
                                Err(e) => out
                                    .stats
                                    .push_error(format!("{} {source_id}: media: {e}", entity.name)),
                            }
                        }
                        // In the order of [`target_columns`].
                        batch
                            .values
                            .extend(values.into_iter().map(|(_, v)| cell(v)));
                        batch.locators.push(ids.len() as i64);
                        ids.push(source_id);
                    }
                    Err(e) => {
                        failed += 1;
                        out.stats
                            .push_error(format!("{} {source_id}: {e}", entity.name));
                    }
                }
            }
            let (mut migrated, mut unchanged) = (0u64, 0u64);
            match &mut writer {
                Some(w) if !batch.is_empty() => {
                    let names = PageRows {
                        entity: &entity.name,
                        ids: &ids,
                        columns: &columns,
                    };
                    let mut part = TableStats::default();
                    let before = w.changed();
                    write_splitting(w, &names, batch, true, &rejects, &mut part).await?;
                    let changed = w.changed() - before;
                    migrated += changed;
                    unchanged += part.migrated - changed;
                    failed += part.failed;
                    for e in part.errors {
                        out.stats.push_error(e);
                    }
                }
                // Dry runs (and media-only entities) count what would be migrated.
                _ => migrated += ids.len() as u64,
            }
            if unchanged > 0 {
                *out.skip_reasons
                    .entry("identical in the target".into())
                    .or_default() += unchanged;
            }
            if entity.table.is_some() {
                out.stats.migrated += migrated;
                out.stats.skipped += skipped + unchanged;
                out.stats.failed += failed;
                self.progress(entity, migrated + skipped + unchanged, failed);
                // A page with a failed row is not recorded (nor any after it): the rows the
                // target refused are read again by the next run, resumed or not.
                if record && out.stats.failed == 0 {
                    killpoint::point("import-page-written");
                    let watermark = resumed.map_or(&counts.new_watermark, |(_, w)| w);
                    save_progress(self, &entity.name, after, watermark.as_deref()).await?;
                    killpoint::point("import-page-recorded");
                }
            } else {
                // Media rows: skipped ones are counted here, the rest by the file copy.
                out.stats.skipped += skipped;
                if skipped > 0 {
                    self.progress(entity, skipped, 0);
                }
            }
            if entity.key.is_none() || n < self.options.batch_size {
                break;
            }
        }
        if resumed.is_some() && !out.cancelled {
            // The rows that changed up to the stopped run's key: written by it.
            let before = counts.changed.saturating_sub(read);
            if before > 0 {
                out.stats.skipped += before;
                out.skip_reasons
                    .insert("written by the stopped run (--resume)".into(), before);
                self.progress(entity, before, 0);
            }
        }
        out.stats.elapsed_s = started.elapsed().as_secs_f64();
        if let (Some(table), false, false) = (&entity.table, self.options.dry_run, out.cancelled) {
            self.cx.observer.event(&Event::VerifyStarted {
                table: entity.name.clone(),
                rows: expected,
            });
            let v = self.verify(entity, table, expected).await?;
            self.cx.observer.event(&Event::VerifyFinished {
                table: entity.name.clone(),
                matched: v.ok(),
            });
            out.verify = Some(v);
        }
        Ok(out)
    }

    /// One page of an entity's source query: rows past `since` (by watermark) and past `after`
    /// (by key), in key order; an entity without a key is read in one pass.
    fn page_query(
        &self,
        entity: &Entity,
        values: &HashMap<&str, Option<String>>,
        since: Option<&str>,
        after: i64,
    ) -> pg::Bound {
        let mut b = bind(&entity.source, values);
        let mut filters = Vec::new();
        if let (Some(w), Some(s)) = (&entity.watermark, since) {
            filters.push(format!(
                "q.{} > {}",
                quote(w),
                b.param(Some(s.to_string()), "timestamptz")
            ));
        }
        b.sql = match &entity.key {
            Some(k) => {
                filters.push(format!(
                    "q.{} > {}",
                    quote(k),
                    b.param(Some(after.to_string()), "bigint")
                ));
                format!(
                    "SELECT q.{k}::bigint, row_to_json(q)::text FROM ({}) AS q WHERE {} ORDER BY q.{k} LIMIT {}",
                    b.sql,
                    filters.join(" AND "),
                    self.options.batch_size,
                    k = quote(k)
                )
            }
            None => format!(
                "SELECT 0::bigint, row_to_json(q)::text FROM ({}) AS q WHERE {}",
                b.sql,
                if filters.is_empty() {
                    "true".into()
                } else {
                    filters.join(" AND ")
                }
            ),
        };
        b
    }

    /// Verifies a table entity: row counts, and content. Every source row that is not skipped
    /// is computed again through the profile's expressions (they are deterministic) and
    /// compared, inside the target database and typed by the target table's own columns, with
    /// the target row of the same id: ferry's id, the source host and every column the profile
    /// fills. Columns the profile does not fill are not compared. When the comparison itself
    /// cannot run (a column type without equality, such as json), only counts are compared
    /// and the rule says so.
    async fn verify(&self, entity: &Entity, table: &str, expected: u64) -> Result<VerifyTable> {
        let rows = self
            .target
            .query(
                &format!(
                    "SELECT count(*)::bigint FROM {} WHERE source_host = $1",
                    quote(table)
                ),
                &[Some(self.host.clone())],
            )
            .await?;
        let got = rows.first().map_or(0, |r| count(&r[0]));
        let counts_rule = format!(
            "row counts: the source query's rows that are not skipped vs {table} rows with source_host = '{}'",
            self.host
        );
        let mut v = VerifyTable {
            source_rows: expected,
            target_rows: got,
            ..VerifyTable::default()
        };
        match self.compare_content(entity, table, &mut v).await {
            Ok(()) => {
                // Target rows of this host that no source row accounts for.
                let found = expected.saturating_sub(v.missing_count);
                v.extra_count = got.saturating_sub(found);
                v.checksum_match =
                    v.missing_count == 0 && v.different_count == 0 && v.extra_count == 0;
                v.rule = format!(
                    "content and {counts_rule}: each source row computed through the profile's expressions and compared with the {table} row of the same id, column by column (id, source_host, {}), typed by the target's columns",
                    entity
                        .columns
                        .iter()
                        .map(|(c, _)| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Err(e) => {
                v = VerifyTable {
                    source_rows: expected,
                    target_rows: got,
                    counts_only: true,
                    rule: format!(
                        "{counts_rule} (counts only: the content comparison could not run: {e})"
                    ),
                    ..VerifyTable::default()
                };
            }
        }
        Ok(v)
    }

    async fn compare_content(
        &self,
        entity: &Entity,
        table: &str,
        v: &mut VerifyTable,
    ) -> Result<()> {
        let mut values = self.flags.clone();
        values.insert("since", None);
        let env = Env {
            host: &self.host,
            enums: &entity.enums,
        };
        let columns = target_columns(entity);
        let compare = |side: &str| {
            format!(
                "ROW({})",
                columns
                    .iter()
                    .map(|c| format!("{side}.{}", quote(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let sql = format!(
            "WITH e AS (SELECT * FROM json_populate_recordset(NULL::{t}, $1::text::json)) \
             SELECT e.id::text, t.id IS NULL FROM e LEFT JOIN {t} t ON t.id = e.id \
             WHERE t.id IS NULL OR {} IS DISTINCT FROM {}",
            compare("e"),
            compare("t"),
            t = quote(table)
        );
        let keep = |list: &mut Vec<String>, key: String| {
            if list.len() < ferry_core::report::MAX_ERRORS_KEPT {
                list.push(key);
            }
        };
        let mut after = i64::MIN;
        loop {
            let b = self.page_query(entity, &values, None, after);
            let rows = self.source.query(&b.sql, &b.params).await?;
            let n = rows.len();
            let mut page = Vec::with_capacity(n);
            // Target id → source id, to name differences as the source knows them.
            let mut names: HashMap<String, String> = HashMap::new();
            for r in &rows {
                if let Cell::Int(key) = r[0] {
                    after = after.max(key);
                }
                let row = source_row(&r[1])?;
                if skip_rule(entity, &row).is_some() {
                    continue;
                }
                let source_id = source_id(entity, &row);
                match self.target_values(entity, &row, &source_id, &env) {
                    Ok(values) => {
                        if let Some((_, Value::String(id))) = values.first() {
                            names.insert(id.clone(), source_id.clone());
                        }
                        page.push(Value::Object(values.into_iter().collect()));
                    }
                    // A row ferry could not compute is not in the target: missing.
                    Err(_) => {
                        v.missing_count += 1;
                        keep(&mut v.missing_keys, format!("{} {source_id}", entity.name));
                    }
                }
            }
            if !page.is_empty() {
                let diffs = self
                    .target
                    .query(&sql, &[Some(Value::Array(page).to_string())])
                    .await?;
                for d in &diffs {
                    let id = text(&d[0]);
                    let id = format!(
                        "{} {}",
                        entity.name,
                        names.get(&id).map_or(id.as_str(), String::as_str)
                    );
                    if matches!(d[1], Cell::Bool(true)) {
                        v.missing_count += 1;
                        keep(&mut v.missing_keys, id);
                    } else {
                        v.different_count += 1;
                        keep(&mut v.different_keys, id);
                    }
                }
            }
            if entity.key.is_none() || n < self.options.batch_size {
                break;
            }
        }
        Ok(())
    }

    /// The target row as values, in the order of [`target_columns`] (ferry's id and source
    /// host, then the profile's columns), once the entity's access
    /// declaration (if any) proves it is seen by no one the source row hides it from.
    fn target_values(
        &self,
        entity: &Entity,
        row: &Map<String, Value>,
        source_id: &str,
        env: &Env<'_>,
    ) -> std::result::Result<Vec<(String, Value)>, String> {
        let mut values = Vec::with_capacity(entity.columns.len() + 2);
        if entity.table.is_some() {
            let id = entity_id(&self.host, &entity.name, source_id).to_string();
            values.push(("id".to_string(), Value::String(id)));
            values.push(("source_host".to_string(), Value::String(self.host.clone())));
        }
        for (col, e) in &entity.columns {
            values.push((
                col.clone(),
                e.eval(row, env).map_err(|m| format!("{col}: {m}"))?,
            ));
        }
        if let Some(access) = &entity.access {
            check_access(access, row, &values)?;
        }
        Ok(values)
    }
}

/// Refuses a target row seen by anyone its source row hides it from (`[entity.access]`).
/// A source row as the entity's query returns it: one JSON object per row.
fn source_row(cell: &Cell) -> Result<Map<String, Value>> {
    serde_json::from_str(&text(cell))
        .map_err(|e| Error::run(format!("a source row is not JSON: {e}")))
}

/// The row's id as the source knows it (its `key` column), for messages and reject names.
fn source_id(entity: &Entity, row: &Map<String, Value>) -> String {
    entity
        .key
        .as_ref()
        .and_then(|k| row.get(k))
        .and_then(render)
        .unwrap_or_default()
}

/// The first skip rule whose boolean column is true for this row: the import and the
/// verification skip the same rows.
fn skip_rule<'e>(entity: &'e Entity, row: &Map<String, Value>) -> Option<&'e SkipRule> {
    entity
        .skip
        .iter()
        .find(|s| row.get(&s.when) == Some(&Value::Bool(true)))
}

fn check_access(
    access: &Access,
    row: &Map<String, Value>,
    target: &[(String, Value)],
) -> std::result::Result<(), String> {
    let source = access.audience("source", &access.source, |c| row.get(c).and_then(render))?;
    let target = access.audience("target", &access.target, |c| {
        target
            .iter()
            .find(|(n, _)| n == c)
            .and_then(|(_, v)| render(v))
    })?;
    let wider: Vec<&str> = target.difference(&source).map(String::as_str).collect();
    if wider.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "access: the target row would be visible to {} that the source row is hidden from; not written (fix the profile's columns or its [entity.access])",
            wider.join(", ")
        ))
    }
}

/// The columns an entity's rows fill: `id` and `source_host` (for a table), then its own.
fn target_columns(entity: &Entity) -> Vec<String> {
    let own = entity.columns.iter().map(|(c, _)| c.clone());
    match entity.table {
        Some(_) => ["id".to_string(), "source_host".to_string()]
            .into_iter()
            .chain(own)
            .collect(),
        None => own.collect(),
    }
}

/// An expression's value as a batch value. A number that is not an `i64` keeps its JSON text,
/// which the upsert passes through as written.
fn cell(v: Value) -> Cell {
    match v {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Bool(b),
        Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Cell::Json(n.to_string()), Cell::Int),
        Value::String(s) => Cell::Text(s),
        doc @ (Value::Array(_) | Value::Object(_)) => Cell::Json(doc.to_string()),
    }
}

/// Names a page's rows in the report as `<entity> <source id>`: the batch's row locators
/// index the page's source ids.
struct PageRows<'a> {
    entity: &'a str,
    ids: &'a [String],
    columns: &'a [String],
}

impl RowNames for PageRows<'_> {
    fn row_name(&self, batch: &Batch, row: usize) -> String {
        let id = batch
            .locators
            .get(row)
            .and_then(|&i| self.ids.get(i as usize))
            .map_or("", String::as_str);
        format!("{} {id}", self.entity)
    }

    fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(String::as_str).collect()
    }
}
