//! `migrate`: a whole application move as one job: the database (a copy as its [`JobSpec`]
//! says), the rewrite of stored file locations in the target rows, then the files (a blobs
//! copy with the manifest query run against the source database). One report.
//!
//! A move killed in any phase resumes (`resume`): the rows from the copy's chunk ledger, which
//! the copy keeps in the target ([`CopyOptions::keep_ledger`]) until the whole move is done;
//! the rewrite commits with a mark in that ledger ([`ledger::mark_rewritten`]), so it runs
//! exactly once; the files skip those already copied and equal.
//!
//! The rows' chunks may be shared with other processes ([`Migration::with_claims`]): the job
//! servers sharing a store copy a move's rows together ([`Migration::help_rows`]); the rewrite
//! and the files stay with the run that owns the move.
//!
//! The spec is read from TOML by `ferry migrate --spec` and from JSON by the job server's
//! `migrate` kind; [`MigrateSpec::prepare`] checks all of it without I/O, so a typo costs
//! nothing and the server can refuse a bad body before it creates a job.

use std::path::Path;
use std::sync::Arc;

use ferry_blobs::{BlobEvent, Outcome};
use ferry_blobs::{BlobObserver, Manifest, Store};
use ferry_core::claims::ClaimOptions;
use ferry_core::engine::{Context, CopyOptions};
use ferry_core::report::{Report, Status};
use ferry_core::{Error, Locator, Result};
use ferry_core::{killpoint, ledger};
use serde::{Deserialize, Serialize};

use crate::spec::{Fields, JobSpec};

/// The `[database]` section's name, as errors spell its fields.
const DATABASE: Fields = Fields::Section("[database]");

/// A move, as `ferry migrate --spec move.toml` reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrateSpec {
    /// The rows: a copy job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<JobSpec>,
    /// The files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blobs: Option<BlobsSpec>,
    /// File locations to rewrite in the target rows, after the rows and before the files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<Rewrite>,
}

/// The `[blobs]` section: the files a move copies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobsSpec {
    /// A storage locator: `file:///dir`, `s3://bucket/prefix?endpoint=…`.
    pub source: String,
    pub target: String,
    /// Keys relative to `source`; run against `manifest_db` (default: the database source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sql: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_db: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u64>,
    /// The report's entry for the files (default `media`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Replace the prefix `from` by `to` in `table.column` of the target rows (file locations
/// when the storage layout changes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rewrite {
    pub table: String,
    pub column: String,
    pub from: String,
    pub to: String,
}

/// What a run of a spec does, set by the front-end (flags, the API's path and body). A flag
/// set here is set for the whole move, whatever the `[database]` section says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateOptions {
    /// Rows only (no files).
    pub metadata_only: bool,
    /// Files only (no rows).
    pub data_only: bool,
    pub dry_run: bool,
    /// Count failed rows and files and go on.
    pub ignore_errors: bool,
    pub force: bool,
    /// Refuse a copy with any lossy step, translation or object not copied.
    pub strict: bool,
    /// Continue a move that was stopped: the rows from the target's ledger, the rewrite unless
    /// it is recorded done, the files not yet copied.
    pub resume: bool,
}

/// A checked move, ready to run: every locator parsed, every option within bounds.
#[derive(Clone)]
pub struct Migration {
    rows: Option<Rows>,
    files: Option<Files>,
    rewrites: Vec<String>,
    /// The (table, column) each rewrite names, proved to exist before anything is written.
    rewritten: Vec<(String, String)>,
    dry_run: bool,
}

#[derive(Debug, Clone)]
struct Rows {
    source: Locator,
    target: Locator,
    options: CopyOptions,
}

#[derive(Clone)]
struct Files {
    source: Store,
    target: Store,
    /// The manifest query's database (checked to parse, opened when the files move) and SQL;
    /// `None` lists the source store.
    manifest: Option<(String, String)>,
    options: ferry_blobs::CopyOptions,
}

/// What a move did: its report and the rewrite statements (run, or under a dry run, not run).
#[derive(Debug)]
pub struct Migrated {
    pub report: Report,
    pub rewrites: Vec<String>,
}

impl MigrateSpec {
    /// Reads a TOML spec.
    ///
    /// # Errors
    /// An input error when the file cannot be read or is not a spec.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::input(format!("cannot read the spec {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| {
            Error::input(format!(
                "{} is not a valid spec: {}",
                path.display(),
                e.message()
            ))
        })
    }

    /// Checks the whole spec against `options`, with no I/O.
    ///
    /// # Errors
    /// An input error naming the section and field: a part `options` asks for is missing, a
    /// locator does not parse, a count is out of bounds, a rewrite has no database to run in.
    pub fn prepare(&self, options: &MigrateOptions) -> Result<Migration> {
        let rows = !options.data_only;
        let files = !options.metadata_only;
        if options.data_only && options.metadata_only {
            return Err(Error::input(
                "metadata_only and data_only exclude each other: give one or neither",
            ));
        }
        if rows && self.database.is_none() {
            return Err(Error::input(
                "the spec has no [database] section (use --data-only for files only)",
            ));
        }
        if files && self.blobs.is_none() {
            return Err(Error::input(
                "the spec has no [blobs] section (use --metadata-only for rows only)",
            ));
        }
        let copy = match &self.database {
            Some(d) => {
                let d = JobSpec {
                    dry_run: d.dry_run || options.dry_run,
                    force: d.force || options.force,
                    ignore_errors: d.ignore_errors || options.ignore_errors,
                    strict: d.strict || options.strict,
                    resume: d.resume || options.resume,
                    ..d.clone()
                };
                let (source, target) = d.locators(DATABASE)?;
                let options = d.copy_options(DATABASE)?;
                Some(Rows {
                    source,
                    target,
                    options,
                })
            }
            None => None,
        };
        let stores = match &self.blobs {
            Some(b) => {
                if b.workers == Some(0) {
                    return Err(Error::input("[blobs] workers must be at least 1"));
                }
                Some(self.files(b, options)?)
            }
            None => None,
        };
        let rewrites = match &copy {
            Some(c) => rewrite_statements(&self.rewrite, &c.target)?,
            None if self.rewrite.is_empty() => Vec::new(),
            None => return Err(Error::input("[[rewrite]] rules need a [database] section")),
        };
        Ok(Migration {
            rows: copy.filter(|_| rows),
            files: stores.filter(|_| files),
            rewrites,
            rewritten: self
                .rewrite
                .iter()
                .map(|r| (r.table.clone(), r.column.clone()))
                .collect(),
            dry_run: options.dry_run,
        })
    }

    fn files(&self, b: &BlobsSpec, options: &MigrateOptions) -> Result<Files> {
        let (source, target) = (Store::parse(&b.source)?, Store::parse(&b.target)?);
        let db = b
            .manifest_db
            .as_ref()
            .or(self.database.as_ref().map(|d| &d.source));
        let manifest = match (&b.manifest_sql, db) {
            (Some(sql), Some(db)) => {
                crate::parse_locator(db)?;
                Some((db.clone(), sql.clone()))
            }
            (Some(_), None) => {
                return Err(Error::input(
                    "[blobs] manifest_sql needs manifest_db or a [database] source",
                ));
            }
            (None, _) => None,
        };
        Ok(Files {
            source,
            target,
            manifest,
            options: ferry_blobs::CopyOptions {
                workers: b.workers.map(|w| usize::try_from(w).unwrap_or(usize::MAX)),
                dry_run: options.dry_run,
                ignore_errors: options.ignore_errors,
                verify: true,
                read_back: false,
                name: b.name.clone().unwrap_or_else(|| "media".into()),
            },
        })
    }
}

impl Migration {
    /// The database the move reads rows from, when it copies rows.
    pub fn database_source(&self) -> Option<&Locator> {
        self.rows.as_ref().map(|r| &r.source)
    }

    /// The database the move writes rows into, when it copies rows.
    pub fn database_target(&self) -> Option<&Locator> {
        self.rows.as_ref().map(|r| &r.target)
    }

    /// Where the move reads files from, when it copies files.
    pub fn files_source(&self) -> Option<&Store> {
        self.files.as_ref().map(|f| &f.source)
    }

    /// Where the move writes files, when it copies files.
    pub fn files_target(&self) -> Option<&Store> {
        self.files.as_ref().map(|f| &f.target)
    }

    /// The rows' chunks are claimed with leases in the target's ledger, so other processes can
    /// copy them at once (the `ferry serve` instances sharing a job store); with `join`, this
    /// process helps the run that owns the move ([`Migration::help_rows`]).
    #[must_use]
    pub fn with_claims(mut self, claims: Option<ClaimOptions>) -> Self {
        if let Some(rows) = &mut self.rows {
            rows.options.claims = claims;
        }
        self
    }

    /// Copies, as a helper of the run that owns the move (claims with `join`, see
    /// [`Migration::with_claims`]), the chunks of its rows this process can claim: no keys,
    /// verification, rewrite or files, which stay the owner's.
    ///
    /// # Errors
    /// An input error when the move copies no rows, or the owner's ledger is not there yet.
    pub async fn help_rows(&self, cx: &Context) -> Result<Report> {
        let rows = self
            .rows
            .as_ref()
            .ok_or_else(|| Error::input("the move copies no rows: nothing to help with"))?;
        let options = CopyOptions {
            keep_ledger: true,
            ..rows.options.clone()
        };
        crate::copy(&rows.source, &rows.target, &options, cx).await
    }

    /// Runs the move: rows, rewrites, files, stopping after the rows when they did not
    /// complete. `cx` carries the cancellation and the rows' progress; `files` gets the
    /// files' progress.
    ///
    /// # Errors
    /// An input error when a part cannot start (as [`crate::copy`] and `ferry_blobs::copy`);
    /// a started part always gives a report.
    pub async fn run(&self, cx: &Context, files: Arc<dyn BlobObserver>) -> Result<Migrated> {
        let mut report: Option<Report> = None;
        if let Some(rows) = &self.rows {
            self.check_rewrites(rows).await?;
            let r = self.rows_and_rewrite(rows, cx).await?;
            if r.status != Status::Completed {
                return Ok(Migrated {
                    report: r,
                    rewrites: Vec::new(),
                });
            }
            report = Some(r);
        }
        if let Some(f) = &self.files {
            let manifest = match &f.manifest {
                Some((db, sql)) => Manifest::Sql {
                    db: crate::open_query_source(db).await?,
                    sql: sql.clone(),
                },
                None => Manifest::Listing,
            };
            let context = ferry_blobs::Context {
                observer: Arc::new(KillPoints(files)),
                confirm: Arc::new(ferry_core::progress::Answer(false)),
                cancel: cx.cancel.clone(),
            };
            let r =
                ferry_blobs::copy(&f.source, &f.target, &manifest, &f.options, &context).await?;
            report = Some(match report {
                None => r,
                Some(db) => merge(db, r),
            });
        }
        let mut report = report.ok_or_else(|| Error::input("nothing to do"))?;
        // The whole move is done: the ledger the rows kept for it goes (a failed or cancelled
        // move keeps it, so `resume` skips its rows and rewrite).
        if let Some(rows) = self.rows.as_ref().filter(|_| !self.dry_run)
            && report.status == Status::Completed
        {
            killpoint::point("before-migrate-ledger-drop");
            let t = crate::open_target(&rows.target).await?;
            let transactional = t.dialect().capabilities().transactional_ddl;
            if let Err(e) = t.execute(&ledger::finished_statements(transactional)).await {
                report.warnings.push(format!(
                    "the move is complete but its ledger could not be dropped ({e}): drop the target's {} table",
                    ledger::LEDGER
                ));
            }
        }
        let rewrites = match &self.rows {
            Some(_) => self.rewrites.clone(),
            None => Vec::new(),
        };
        Ok(Migrated { report, rewrites })
    }

    /// Refuses, before anything is written, rules naming a table or column the copy does not
    /// create (they would fail after every row was copied).
    async fn check_rewrites(&self, rows: &Rows) -> Result<()> {
        if self.rewritten.is_empty() {
            return Ok(());
        }
        let schema = crate::open_source(&rows.source)
            .await?
            .schema(&crate::SchemaOptions::declared(
                rows.options.schema.filter.clone(),
            ))
            .await?;
        ferry_core::preflight::check_rewrites(&schema, &self.rewritten)
    }

    /// The rows (a copy keeping its ledger), then the rewrite with its mark in that ledger,
    /// in one transaction. A resumed move whose ledger records the rewrite done checks the
    /// ledger is this copy's and skips both.
    async fn rows_and_rewrite(&self, rows: &Rows, cx: &Context) -> Result<Report> {
        if self.dry_run {
            return crate::copy(&rows.source, &rows.target, &rows.options, cx).await;
        }
        let mut options = CopyOptions {
            keep_ledger: true,
            ..rows.options.clone()
        };
        let rules = self.rewrites.join(";\n");
        let t = crate::open_target(&rows.target).await?;
        let recorded = if t
            .existing_tables()
            .await?
            .iter()
            .any(|(n, _)| ledger::is_ledger(n))
        {
            ledger::rewritten(t.as_ref(), &cx.cancel).await?
        } else {
            None
        };
        let done = match recorded {
            Some(r) if options.resume && r == rules => true,
            Some(_) if options.resume && !options.force => {
                return Err(Error::input(
                    "cannot resume the move: the target's ledger records another rewrite of stored file locations than this spec's [[rewrite]] rules; use --force to erase the target's tables and move again",
                ));
            }
            // Rows rewritten by other rules are never continued: --force starts over.
            Some(_) if options.resume => {
                options.resume = false;
                false
            }
            _ => false,
        };
        if done {
            // The copy checks the ledger is this source's and plan's, and finds every chunk
            // and step done; its rows were verified before they were rewritten (they differ
            // from the source now, by design).
            options.verify = false;
            let mut r = crate::copy(&rows.source, &rows.target, &options, cx).await?;
            if r.status == Status::Completed {
                r.warnings.push(
                    "resumed move: its rows were copied, verified and their stored file locations rewritten by the run that stopped; skipped".into(),
                );
            }
            return Ok(r);
        }
        let mut report = crate::copy(&rows.source, &rows.target, &options, cx).await?;
        if report.status != Status::Completed {
            return Ok(report);
        }
        killpoint::point("rewrite-start");
        // The UPDATEs and the mark are rows (DML): one transaction on every target.
        let mut statements = vec!["BEGIN".to_string()];
        statements.extend(self.rewrites.iter().cloned());
        statements.push(ledger::mark_rewritten(&rules));
        statements.push("COMMIT".into());
        t.execute(&statements)
            .await
            .map_err(|e| e.context("rewrite"))?;
        killpoint::point("rewrite-committed");
        if !self.rewrites.is_empty() {
            report.warnings.push(format!(
                "rewrote stored file locations: {}",
                self.rewrites.join("; ")
            ));
        }
        Ok(report)
    }
}

/// Passes the files' events on, with a kill point after each file copied (the resume tests).
struct KillPoints(Arc<dyn BlobObserver>);

impl BlobObserver for KillPoints {
    fn event(&self, event: &BlobEvent) {
        self.0.event(event);
        if let BlobEvent::File {
            outcome: Outcome::Copied,
            ..
        } = event
        {
            killpoint::point("file-copied");
        }
    }
}

/// The database's report with the files' added: one report for the move.
fn merge(mut db: Report, files: Report) -> Report {
    db.stats.extend(files.stats);
    db.verify.extend(files.verify);
    db.warnings.extend(files.warnings);
    db.elapsed_s += files.elapsed_s;
    if db.status == Status::Completed {
        db.status = files.status;
        db.error = files.error;
    }
    db.target = format!("{} + {}", db.target, files.target);
    db.source = format!("{} + {}", db.source, files.source);
    db.peak_rss_mb = ferry_core::report::peak_rss_mb();
    db
}

/// `UPDATE t SET c = <to> || rest WHERE c starts with <from>`, quoted for the target.
fn rewrite_statements(rules: &[Rewrite], target: &Locator) -> Result<Vec<String>> {
    // MySQL reads `||` as OR: it concatenates with CONCAT().
    let mysql = target.backend().id() == "mysql";
    let dialect = crate::dialect(target)?;
    let ident = |s: &str| dialect.quote(s);
    let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
    rules
        .iter()
        .map(|r| {
            if r.from.is_empty() {
                return Err(Error::input(format!(
                    "rewrite of {}.{}: 'from' must not be empty",
                    r.table, r.column
                )));
            }
            let (t, c) = (ident(&r.table), ident(&r.column));
            let n = r.from.chars().count();
            let new = if mysql {
                format!("CONCAT({}, SUBSTRING({c}, {}))", lit(&r.to), n + 1)
            } else {
                format!("{} || SUBSTR({c}, {})", lit(&r.to), n + 1)
            };
            Ok(format!(
                "UPDATE {t} SET {c} = {new} WHERE SUBSTR({c}, 1, {n}) = {}",
                lit(&r.from)
            ))
        })
        .collect()
}
