//! `ferry migrate --spec move.toml`: the flags of `ferry::migrate` (a whole application move:
//! rows, stored file locations, files), the plan and rewrites printed, one summary.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use ferry::{Error, MigrateOptions, MigrateSpec, Report, Status};
use ferry_blobs::Quiet;

#[derive(Args)]
pub struct MigrateArgs {
    /// The move, as TOML: [database] source/target and any `ferry copy` option by its field
    /// name (tables, exclude, workers, batch_size, strict, …),
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
    /// Refuse, before writing, a run with any lossy step, translation or object not copied.
    #[arg(long)]
    pub strict: bool,
    /// Continue a move that was stopped (killed, failed, cancelled): the rows from the target's
    /// ledger, the location rewrite unless it is recorded done, the files not yet copied.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub summary: crate::cli::SummaryFile,
}

impl MigrateArgs {
    fn options(&self) -> MigrateOptions {
        MigrateOptions {
            metadata_only: self.metadata_only,
            data_only: self.data_only,
            dry_run: self.dry_run,
            ignore_errors: self.ignore_errors,
            force: self.force,
            strict: self.strict,
            resume: self.resume,
        }
    }
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
    if let Some(path) = args.summary.path()
        && let Err(e) = std::fs::write(path, report.to_json())
    {
        eprintln!("error: cannot write the summary to {}: {e}", path.display());
        return code.max(1);
    }
    code
}

async fn migrate(args: &MigrateArgs, bars: bool) -> Result<Report, Error> {
    let spec = MigrateSpec::read(&args.spec)?;
    let migration = spec.prepare(&args.options())?;
    let yes = args.yes || spec.database.as_ref().is_some_and(|d| d.yes);
    let cx = crate::context(bars, yes);
    let done = migration.run(&cx, Arc::new(Quiet)).await?;
    if let Some(plan) = &done.report.plan {
        print!("{}", crate::render_plan(plan));
    }
    if args.dry_run {
        for s in &done.rewrites {
            println!("rewrite (not run, dry run): {s}");
        }
    }
    Ok(done.report)
}
