//! `ferry migrate --spec move.toml`: one command for a whole application move: the database
//! (ferry copy), the rewrite of stored file locations in the target rows, then the files
//! (ferry blobs copy with the manifest query run against the source database). One summary.

use std::path::{Path, PathBuf};

use clap::Args;
use ferry::{CopyOptions, Error, Locator, Report, Status};
use ferry_blobs::{Manifest, Store};
use serde::Deserialize;

#[derive(Args)]
pub struct MigrateArgs {
    /// The move, as TOML: [database] source/target (tables, exclude, workers, batch_size),
    /// [blobs] source/target/manifest_sql, [[rewrite]] table/column/from/to.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Rows only (no files).
    #[arg(long, conflicts_with = "data_only")]
    pub metadata_only: bool,
    /// Files only (no rows).
    #[arg(long)]
    pub data_only: bool,
    /// Print what would be done for rows and files; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Count failed rows and files and go on (exit code 1).
    #[arg(long)]
    pub ignore_errors: bool,
    /// Erase target tables that already exist (asks first; see --yes).
    #[arg(long)]
    pub force: bool,
    /// Answer yes to --force's question (for scripts).
    #[arg(long)]
    pub yes: bool,
    /// Write the JSON summary to FILE (always valid JSON, also on failure).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    database: Option<DatabaseSpec>,
    blobs: Option<BlobsSpec>,
    #[serde(default)]
    rewrite: Vec<Rewrite>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseSpec {
    source: String,
    target: String,
    /// Only these tables (glob patterns), as `ferry copy --tables`.
    #[serde(default)]
    tables: Vec<String>,
    /// Leave these tables out (glob patterns), as `ferry copy --exclude`.
    #[serde(default)]
    exclude: Vec<String>,
    workers: Option<usize>,
    batch_size: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlobsSpec {
    source: String,
    target: String,
    /// Keys relative to `source`; run against `manifest_db` (default: the database source).
    manifest_sql: Option<String>,
    manifest_db: Option<String>,
    workers: Option<usize>,
    name: Option<String>,
}

/// Replace the prefix `from` by `to` in `table.column` of the target rows (file locations
/// when the storage layout changes).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rewrite {
    table: String,
    column: String,
    from: String,
    to: String,
}

pub async fn run(args: MigrateArgs, bars: bool) -> i32 {
    let result = migrate(&args, bars).await;
    let (report, code) = match result {
        Ok(report) => {
            eprint!("{}", report.render());
            let code = report.exit_code();
            (report, code)
        }
        Err(e) => {
            eprintln!("error: {e}");
            let mut report = Report::new(String::new(), String::new(), args.dry_run);
            report.status = Status::Failed;
            report.error = Some(e.to_string());
            (report, e.exit_code())
        }
    };
    if let Some(path) = &args.summary
        && let Err(e) = std::fs::write(path, report.to_json())
    {
        eprintln!("error: cannot write the summary to {}: {e}", path.display());
        return code.max(1);
    }
    code
}

fn read_spec(path: &Path) -> Result<Spec, Error> {
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

async fn migrate(args: &MigrateArgs, bars: bool) -> Result<Report, Error> {
    let spec = read_spec(&args.spec)?;
    let rows = !args.data_only;
    let files = !args.metadata_only;
    if rows && spec.database.is_none() {
        return Err(Error::input(
            "the spec has no [database] section (use --data-only for files only)",
        ));
    }
    if files && spec.blobs.is_none() {
        return Err(Error::input(
            "the spec has no [blobs] section (use --metadata-only for rows only)",
        ));
    }
    // Parse every locator before any work, so a typo costs nothing.
    let db = match &spec.database {
        Some(d) => Some((Locator::parse(&d.source)?, Locator::parse(&d.target)?)),
        None => None,
    };
    let filter = match &spec.database {
        Some(d) => ferry::TableFilter::new(&d.tables, &d.exclude)?,
        None => ferry::TableFilter::default(),
    };
    if let Some(d) = &spec.database {
        if let Some(rows) = d.batch_size {
            crate::check_batch_size(rows, "[database] batch_size")?;
        }
        if d.workers == Some(0) {
            return Err(Error::input("[database] workers must be at least 1"));
        }
    }
    if let Some(b) = &spec.blobs
        && b.workers == Some(0)
    {
        return Err(Error::input("[blobs] workers must be at least 1"));
    }
    let stores = match &spec.blobs {
        Some(b) => Some((Store::parse(&b.source)?, Store::parse(&b.target)?)),
        None => None,
    };
    let rewrites = match &db {
        Some((_, target)) => rewrite_statements(&spec.rewrite, target)?,
        None if spec.rewrite.is_empty() => Vec::new(),
        None => return Err(Error::input("[[rewrite]] rules need a [database] section")),
    };

    let mut report: Option<Report> = None;
    if rows && let Some((source, target)) = &db {
        let defaults = CopyOptions::default();
        let d = spec.database.as_ref().expect("db comes from it");
        let options = CopyOptions {
            dry_run: args.dry_run,
            force: args.force,
            ignore_errors: args.ignore_errors,
            schema: ferry::SchemaOptions {
                filter: filter.clone(),
                ..defaults.schema.clone()
            },
            workers: d.workers.unwrap_or(defaults.workers),
            batch_rows: d.batch_size.unwrap_or(defaults.batch_rows),
            ..defaults
        };
        let r = ferry::copy(source, target, &options, &crate::context(bars, args.yes)).await?;
        let ok = r.status == Status::Completed;
        if let Some(plan) = &r.plan {
            print!("{}", crate::render_plan(plan));
        }
        report = Some(r);
        if !ok {
            return Ok(report.expect("set above"));
        }
        if !rewrites.is_empty() {
            let report = report.as_mut().expect("set above");
            if args.dry_run {
                for s in &rewrites {
                    println!("rewrite (not run, dry run): {s}");
                }
            } else {
                let t = ferry::open_target(target).await?;
                t.execute(&rewrites)
                    .await
                    .map_err(|e| e.context("rewrite"))?;
                report.warnings.push(format!(
                    "rewrote stored file locations: {}",
                    rewrites.join("; ")
                ));
            }
        }
    }
    if files && let (Some(b), Some((from, to))) = (&spec.blobs, &stores) {
        let manifest = match (
            &b.manifest_sql,
            b.manifest_db
                .as_ref()
                .or(spec.database.as_ref().map(|d| &d.source)),
        ) {
            (Some(sql), Some(db)) => Manifest::Sql {
                db: ferry::open_query_source(db).await?,
                sql: sql.clone(),
            },
            (Some(_), None) => {
                return Err(Error::input(
                    "[blobs] manifest_sql needs manifest_db or a [database] source",
                ));
            }
            (None, _) => Manifest::Listing,
        };
        let options = ferry_blobs::CopyOptions {
            workers: b.workers,
            dry_run: args.dry_run,
            ignore_errors: args.ignore_errors,
            verify: true,
            name: b.name.clone().unwrap_or_else(|| "media".into()),
        };
        let ctx = ferry_blobs::Context {
            cancel: crate::context(bars, args.yes).cancel,
            ..ferry_blobs::Context::default()
        };
        let r = ferry_blobs::copy(from, to, &manifest, &options, &ctx).await?;
        report = Some(match report {
            None => r,
            Some(mut db) => {
                db.stats.extend(r.stats);
                db.verify.extend(r.verify);
                db.warnings.extend(r.warnings);
                db.elapsed_s += r.elapsed_s;
                if db.status == Status::Completed {
                    db.status = r.status;
                    db.error = r.error;
                }
                db.target = format!("{} + {}", db.target, r.target);
                db.source = format!("{} + {}", db.source, r.source);
                db.peak_rss_mb = ferry_core::report::peak_rss_mb();
                db
            }
        });
    }
    report.ok_or_else(|| Error::input("nothing to do"))
}

/// `UPDATE t SET c = <to> || rest WHERE c starts with <from>`, quoted for the target.
fn rewrite_statements(rules: &[Rewrite], target: &Locator) -> Result<Vec<String>, Error> {
    let mysql = target.backend() == ferry::Backend::Mysql;
    let ident = |s: &str| {
        if mysql {
            format!("`{}`", s.replace('`', "``"))
        } else {
            format!("\"{}\"", s.replace('"', "\"\""))
        }
    };
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
