//! The `ferry` binary: parses arguments, sets up output, and calls the library.

mod blobs;
mod cli;
mod import;
mod migrate;
mod serve;
mod ui;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use cli::{Cli, Command, LogFormat, Selection};
use ferry::{
    Context, CopyOptions, Error, Locator, Observer, Report, SchemaMode, SchemaOptions, Status,
    TableFilter,
};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let bars = std::io::stderr().is_terminal() && !cli.no_progress;
    init_logging(cli.log_format, bars);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(run(cli, bars));
    ExitCode::from(code as u8)
}

fn init_logging(format: LogFormat, bars: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(if bars { "warn" } else { "info" }));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    if format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn context(bars: bool, yes: bool) -> Context {
    let observer: Arc<dyn Observer> = if bars {
        Arc::new(ui::Bars::new())
    } else {
        Arc::new(ui::Logs::new())
    };
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("cancelling: stopping after the batches in flight");
            on_signal.cancel();
        }
    });
    Context {
        observer,
        confirm: Arc::new(ui::Ask { yes }),
        cancel,
    }
}

fn locators(e: &cli::Endpoints) -> Result<(Locator, Locator), Error> {
    let mut source = Locator::parse(&e.source)?;
    if let Some(schema) = &e.schema_name {
        match &mut source {
            Locator::Postgres { url } => {
                url.query_pairs_mut().append_pair("schema", schema);
            }
            _ => {
                return Err(Error::input(
                    "--schema-name applies to a postgres: source only",
                ));
            }
        }
    }
    Ok((source, Locator::parse(&e.target)?))
}

fn workers(s: &Selection) -> Result<usize, Error> {
    match s.workers {
        Some(0) => Err(Error::input(
            "--workers must be at least 1: it is how many tables are processed at once",
        )),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(2, |n| n.get())),
    }
}

/// `--batch-size` (or a spec's `batch_size`, named by `what`) within 1..=MAX_BATCH_ROWS.
pub(crate) fn check_batch_size(rows: usize, what: &str) -> Result<(), Error> {
    let max = ferry_core::engine::MAX_BATCH_ROWS;
    if rows == 0 {
        return Err(Error::input(format!("{what} must be at least 1 row")));
    }
    if rows > max {
        return Err(Error::input(format!(
            "{what} {rows} is too large: at most {max} rows per batch (each batch is held in memory, about three per table); the default is 10000"
        )));
    }
    Ok(())
}

async fn run(cli: Cli, bars: bool) -> i32 {
    match cli.command {
        Command::Copy(args) => {
            let summary = args.selection.summary.clone();
            let result = async {
                let (source, target) = locators(&args.endpoints)?;
                let filter = TableFilter::new(&args.selection.tables, &args.selection.exclude)?;
                check_batch_size(args.batch_size, "--batch-size")?;
                let workers = workers(&args.selection)?;
                let options = CopyOptions {
                    schema: SchemaOptions {
                        filter,
                        profile: true,
                    },
                    batch_rows: args.batch_size,
                    workers,
                    dry_run: args.dry_run,
                    force: args.force,
                    ignore_errors: args.ignore_errors,
                    verify: !args.no_verify,
                    reject_dir: args.reject_dir.clone(),
                    schema_mode: match args.schema {
                        cli::SchemaArg::Auto => SchemaMode::Auto,
                        cli::SchemaArg::Create => SchemaMode::Create,
                        cli::SchemaArg::Existing => SchemaMode::Existing,
                    },
                    ignore_missing_columns: args.ignore_missing_columns,
                    strict: false,
                };
                ferry::copy(&source, &target, &options, &context(bars, args.yes)).await
            }
            .await;
            finish(result, summary.as_deref(), &args.endpoints, args.dry_run)
        }
        Command::Verify(args) => {
            let summary = args.selection.summary.clone();
            let result = async {
                let (source, target) = locators(&args.endpoints)?;
                let filter = TableFilter::new(&args.selection.tables, &args.selection.exclude)?;
                let workers = workers(&args.selection)?;
                ferry::verify(&source, &target, filter, workers, &context(bars, false)).await
            }
            .await;
            finish(result, summary.as_deref(), &args.endpoints, false)
        }
        Command::Serve(args) => serve::run(args).await,
        Command::Admin(command) => serve::admin(command).await,
        Command::Blobs(command) => blobs::run(command, bars).await,
        Command::Migrate(args) => migrate::run(args, bars).await,
        Command::Import(args) => import::run(args, bars).await,
        Command::Demo(args) => {
            let result = async {
                std::fs::create_dir_all(&args.dir).map_err(|e| {
                    Error::input(format!("cannot create {}: {e}", args.dir.display()))
                })?;
                let dir = args
                    .dir
                    .canonicalize()
                    .map_err(|e| Error::input(format!("{}: {e}", args.dir.display())))?;
                let (src, dst) = (dir.join("demo-source.db"), dir.join("demo-target.db"));
                eprintln!(
                    "Creating a sample application database ({} rows) at {}",
                    args.rows,
                    src.display()
                );
                ferry::demo::create_sample(&src, args.rows)?;
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", dst.display()));
                }
                let (source, target) = (
                    Locator::Sqlite {
                        path: src,
                        snapshot: Default::default(),
                    },
                    Locator::Sqlite {
                        path: dst,
                        snapshot: Default::default(),
                    },
                );
                eprintln!("Copying {source} to {target}");
                let options = CopyOptions {
                    reject_dir: dir.join("rejects"),
                    ..CopyOptions::default()
                };
                ferry::copy(&source, &target, &options, &context(bars, true)).await
            }
            .await;
            let endpoints = cli::Endpoints {
                source: String::new(),
                target: String::new(),
                schema_name: None,
            };
            finish(result, None, &endpoints, false)
        }
    }
}

/// Prints the outcome, writes the summary (always valid JSON), and returns the exit code.
fn finish(
    result: Result<Report, Error>,
    summary: Option<&std::path::Path>,
    endpoints: &cli::Endpoints,
    dry_run: bool,
) -> i32 {
    let (report, code) = match result {
        Ok(report) => {
            if let Some(plan) = &report.plan {
                print!("{}", render_plan(plan));
            }
            eprint!("{}", report.render());
            let code = report.exit_code();
            (report, code)
        }
        Err(e) => {
            eprintln!("error: {e}");
            let redact = |s: &str| Locator::parse(s).map(|l| l.redacted()).unwrap_or_default();
            let mut report = Report::new(
                redact(&endpoints.source),
                redact(&endpoints.target),
                dry_run,
            );
            report.status = if e.kind() == ferry::ErrorKind::Cancelled {
                Status::Cancelled
            } else {
                Status::Failed
            };
            report.error = Some(e.to_string());
            (report, e.exit_code())
        }
    };
    if let Some(path) = summary
        && let Err(e) = std::fs::write(path, report.to_json())
    {
        eprintln!("error: cannot write the summary to {}: {e}", path.display());
        return code.max(1);
    }
    code
}

fn render_plan(plan: &ferry_core::plan::Plan) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan: {} → {} ({} tables, in this order; nothing written)",
        plan.source,
        plan.target,
        plan.tables.len()
    );
    for t in &plan.tables {
        let name = if t.target_name == t.source_name {
            t.source_name.clone()
        } else {
            format!("{} → {}", t.source_name, t.target_name)
        };
        let _ = writeln!(out, "\n  {name}: {} rows", t.row_count);
        for c in &t.columns {
            let _ = writeln!(
                out,
                "    {:<24} {:<22} → {}{}",
                c.source_name,
                if c.source_type.is_empty() {
                    "(no type)"
                } else {
                    &c.source_type
                },
                c.native_type,
                if c.nullable { "" } else { " NOT NULL" }
            );
            for n in &c.notes {
                let _ = writeln!(out, "      lossy: {n}");
            }
        }
    }
    let lossy = plan.lossy_steps();
    let _ = writeln!(
        out,
        "\nLossy steps: {}",
        if lossy.is_empty() {
            "none".to_string()
        } else {
            lossy.len().to_string()
        }
    );
    for l in lossy {
        let _ = writeln!(out, "  {l}");
    }
    if !plan.objects.is_empty() {
        let _ = writeln!(out, "\nRecreated on the target: {}", plan.objects.len());
        for o in &plan.objects {
            let _ = writeln!(out, "  {}", o.label());
        }
    }
    out
}
