//! The `ferry` binary: parses arguments, sets up output, and calls the library.

mod blobs;
mod cli;
mod cutover;
mod import;
mod migrate;
mod serve;
mod summary;
mod ui;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use cli::{Cli, Command, LogFormat};
use ferry::{Context, CopyOptions, Error, Fields, Observer, Report};

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

/// Set when log lines are JSON: the final report's changes are then log events too, so a
/// machine reading the log sees every lossy step, translation and object not copied.
static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn init_logging(format: LogFormat, bars: bool) {
    JSON_LOGS.store(
        format == LogFormat::Json,
        std::sync::atomic::Ordering::Relaxed,
    );
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
    let cancel = ui::cancel_on_ctrl_c("stopping after the batches in flight");
    Context {
        observer,
        confirm: Arc::new(ui::Ask { yes }),
        cancel,
    }
}

async fn run(cli: Cli, bars: bool) -> i32 {
    match cli.command {
        Command::Copy(args) => {
            let summary = args.selection.summary.summary.clone();
            let spec = args.spec();
            let result = async {
                let (source, target) = spec.locators(Fields::Flags)?;
                let options = spec.copy_options(Fields::Flags)?;
                ferry::copy(&source, &target, &options, &context(bars, spec.yes)).await
            }
            .await;
            finish(result, summary.as_deref(), &args.endpoints, args.dry_run)
        }
        Command::Verify(args) => {
            let summary = args.selection.summary.summary.clone();
            let spec = args.selection.apply(args.endpoints.spec());
            let result = async {
                let (source, target) = spec.locators(Fields::Flags)?;
                let options = spec.copy_options(Fields::Flags)?;
                let (filter, workers) = (options.schema.filter, options.workers);
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
        Command::Cutover(command) => cutover::run(command, bars).await,
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
                let (source, target) = (ferry::sqlite_file(src), ferry::sqlite_file(dst));
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
            if JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed) {
                log_changes(&report);
            }
            let code = report.exit_code();
            (report, code)
        }
        Err(e) => {
            let redact = |s: &str| {
                ferry::parse_locator(s)
                    .map(|l| l.redacted())
                    .unwrap_or_default()
            };
            summary::failed(
                &e,
                redact(&endpoints.source),
                redact(&endpoints.target),
                dry_run,
            )
        }
    };
    summary::write(&report, summary, code)
}

/// Each change of the run as one structured warning (`kind`: lossy, translation, not_copied).
fn log_changes(report: &Report) {
    for change in report.changes() {
        tracing::warn!(change = change.kind.as_str(), "{}", change.what);
    }
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
