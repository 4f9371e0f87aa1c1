//! `ferry blobs copy|verify`: arguments, the progress bar (files, bytes, MB/s), the dry-run
//! listing and the summary. The work itself is in the ferry-blobs library.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use ferry_blobs::{BlobEvent, BlobObserver, Confirm, Manifest, Outcome, Report, Store};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Subcommand)]
pub enum BlobsCommand {
    /// Copy the files the manifest names; skip those already identical at the target.
    Copy(BlobsCopyArgs),
    /// Read the target back and compare with the source: missing, different and extra files.
    Verify(BlobsVerifyArgs),
}

#[derive(Args)]
pub struct BlobsCommon {
    /// Where the files are: file:///dir or s3://bucket/prefix?endpoint=…&region=….
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// Where they go (same forms as --from).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Database whose rows name the files (sqlite:///app.db, postgres://…); default: list --from.
    #[arg(long, value_name = "URL", requires = "manifest_sql")]
    pub manifest_db: Option<String>,
    /// Query returning one key per row (relative to --from), e.g. SELECT path FROM files.
    #[arg(long, value_name = "SQL", requires = "manifest_db")]
    pub manifest_sql: Option<String>,
    /// Parallel transfers (default: 4 between local folders, 32 with object storage).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Name of the manifest in the summary's stats.
    #[arg(long, default_value = "media", value_name = "NAME")]
    pub name: String,
    #[command(flatten)]
    pub summary: crate::cli::SummaryFile,
}

#[derive(Args)]
pub struct BlobsCopyArgs {
    #[command(flatten)]
    pub common: BlobsCommon,
    /// List what would be copied and skipped, with counts and bytes; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Count and list failed files and go on (the exit code is still 1).
    #[arg(long)]
    pub ignore_errors: bool,
    /// Do not check each copied file's content (the size is still checked).
    #[arg(long, conflicts_with = "read_back")]
    pub no_verify: bool,
    /// Read every copied object back and compare hashes, also where the S3 server checks each
    /// part's CRC32C (the default check for a local source).
    #[arg(long)]
    pub read_back: bool,
}

#[derive(Args)]
pub struct BlobsVerifyArgs {
    #[command(flatten)]
    pub common: BlobsCommon,
    /// Delete files at the target that the manifest does not name (asks first; see --yes).
    #[arg(long)]
    pub delete_extra: bool,
    /// Answer yes to the --delete-extra question (for scripts).
    #[arg(long)]
    pub yes: bool,
}

pub async fn run(command: BlobsCommand, bars: bool) -> i32 {
    let (common, dry_run) = match &command {
        BlobsCommand::Copy(a) => (&a.common, a.dry_run),
        BlobsCommand::Verify(a) => (&a.common, false),
    };
    let summary = common.summary.summary.clone();
    let (from, to) = (common.from.clone(), common.to.clone());
    let result = async {
        let source = Store::parse(&common.from)?;
        let target = Store::parse(&common.to)?;
        if common.workers == Some(0) {
            return Err(ferry_blobs::Error::input("--workers must be at least 1"));
        }
        let manifest = match (&common.manifest_db, &common.manifest_sql) {
            (Some(db), Some(sql)) => Manifest::Sql {
                db: ferry::open_query_source(db).await?,
                sql: sql.clone(),
            },
            _ => Manifest::Listing,
        };
        let yes = matches!(&command, BlobsCommand::Verify(a) if a.yes);
        let ctx = context(bars, dry_run, yes);
        match &command {
            BlobsCommand::Copy(a) => {
                let options = ferry_blobs::CopyOptions {
                    workers: a.common.workers,
                    dry_run: a.dry_run,
                    ignore_errors: a.ignore_errors,
                    verify: !a.no_verify,
                    read_back: a.read_back,
                    name: a.common.name.clone(),
                };
                ferry_blobs::copy(&source, &target, &manifest, &options, &ctx).await
            }
            BlobsCommand::Verify(a) => {
                let options = ferry_blobs::VerifyOptions {
                    workers: a.common.workers,
                    delete_extra: a.delete_extra,
                    name: a.common.name.clone(),
                };
                ferry_blobs::verify(&source, &target, &manifest, &options, &ctx).await
            }
        }
    }
    .await;
    finish(result, summary.as_deref(), &from, &to, dry_run)
}

fn context(bars: bool, dry_run: bool, yes: bool) -> ferry_blobs::Context {
    let cancel = crate::ui::cancel_on_ctrl_c("letting the transfers in flight finish");
    ferry_blobs::Context {
        observer: Arc::new(Progress::new(bars, dry_run)),
        confirm: Arc::new(AskDelete { yes }),
        cancel,
    }
}

/// Prints the summary, writes the JSON (always valid), returns the exit code.
fn finish(
    result: Result<Report, ferry_blobs::Error>,
    summary: Option<&std::path::Path>,
    from: &str,
    to: &str,
    dry_run: bool,
) -> i32 {
    let (report, code) = match result {
        Ok(report) => {
            eprint!("{}", render(&report));
            let code = report.exit_code();
            (report, code)
        }
        Err(e) => {
            let shown = |s: &str| Store::parse(s).map(|s| s.to_string()).unwrap_or_default();
            crate::summary::failed(&e, shown(from), shown(to), dry_run)
        }
    };
    crate::summary::write(&report, summary, code)
}

/// The human summary of a blobs run.
fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (name, s) in &r.stats {
        for e in &s.errors {
            let _ = writeln!(out, "failed: {e}");
        }
        if s.failed as usize > s.errors.len() {
            let _ = writeln!(
                out,
                "… and {} more failures (see the summary JSON for the first {})",
                s.failed as usize - s.errors.len(),
                s.errors.len()
            );
        }
        let mbs = if s.elapsed_s > 0.0 {
            s.bytes as f64 / 1e6 / s.elapsed_s
        } else {
            0.0
        };
        if r.verify.is_empty() {
            let _ = writeln!(
                out,
                "{name}: {} files, {} copied ({}, {mbs:.1} MB/s), {} skipped, {} failed, in {:.2}s",
                s.total,
                s.migrated,
                ferry_blobs::human_bytes(s.bytes),
                s.skipped,
                s.failed,
                s.elapsed_s
            );
        }
    }
    for (name, v) in &r.verify {
        if v.ok() {
            let _ = writeln!(
                out,
                "verify: {name}: {} files match (size and content hash)",
                v.source_rows
            );
        }
        for (what, keys) in [
            ("missing at the target", &v.missing_keys),
            ("different", &v.different_keys),
            ("extra at the target", &v.extra_keys),
        ] {
            for k in keys {
                let _ = writeln!(out, "verify: {what}: {k}");
            }
        }
    }
    for w in &r.warnings {
        let _ = writeln!(out, "{w}");
    }
    r.render_end(&mut out, "");
    out
}

/// One bar: files done of total, bytes moved, MB/s. Without a terminal: a log line every five
/// seconds. Dry runs print each file's fate on stdout.
struct Progress {
    bar: Option<ProgressBar>,
    dry_run: bool,
    started: Instant,
    bytes: AtomicU64,
    files: AtomicU64,
    total: AtomicU64,
    last_log: Mutex<Instant>,
}

impl Progress {
    fn new(bars: bool, dry_run: bool) -> Self {
        let bar = bars.then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:>8.bold} {bar:30.cyan/blue} {pos:>8}/{len:<8} files {msg} {elapsed}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix("files");
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Self {
            bar,
            dry_run,
            started: Instant::now(),
            bytes: AtomicU64::new(0),
            files: AtomicU64::new(0),
            total: AtomicU64::new(0),
            last_log: Mutex::new(Instant::now()),
        }
    }

    fn rate(&self) -> String {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        format!(
            "{} moved, {:.1} MB/s",
            ferry_blobs::human_bytes(bytes),
            bytes as f64 / 1e6 / secs
        )
    }
}

impl BlobObserver for Progress {
    fn event(&self, event: &BlobEvent) {
        match event {
            BlobEvent::Phase(p) => match &self.bar {
                Some(b) => b.println(format!("· {p}")),
                None => tracing::info!(phase = %p, "{p}"),
            },
            BlobEvent::Warning(w) => match &self.bar {
                Some(b) => b.println(format!("warning: {w}")),
                None => tracing::warn!("{w}"),
            },
            BlobEvent::Started { files } => {
                self.total.store(*files, Ordering::Relaxed);
                if let Some(b) = &self.bar {
                    b.set_length(*files);
                }
            }
            BlobEvent::Bytes(n) => {
                self.bytes.fetch_add(*n, Ordering::Relaxed);
            }
            BlobEvent::File {
                key, outcome, size, ..
            } => {
                let done = self.files.fetch_add(1, Ordering::Relaxed) + 1;
                if self.dry_run {
                    let what = match outcome {
                        Outcome::WouldCopy => "copy",
                        Outcome::Skipped => "skip",
                        _ => "fail",
                    };
                    println!("{what}\t{size}\t{key}");
                }
                if let Some(b) = &self.bar {
                    b.inc(1);
                    b.set_message(self.rate());
                    if *outcome == Outcome::Failed {
                        b.println(format!("failed: {key}"));
                    }
                } else if let Ok(mut last) = self.last_log.try_lock()
                    && last.elapsed() >= Duration::from_secs(5)
                {
                    *last = Instant::now();
                    let total = self.total.load(Ordering::Relaxed);
                    tracing::info!(done, total, "{done}/{total} files, {}", self.rate());
                }
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The --delete-extra question: asks on a terminal, `--yes` answers for scripts, and without
/// a terminal ferry refuses rather than waits.
struct AskDelete {
    yes: bool,
}

impl Confirm for AskDelete {
    fn confirm_erase(&self, keys: &[String]) -> bool {
        let shown: Vec<&str> = keys.iter().take(10).map(String::as_str).collect();
        crate::ui::ask(
            self.yes,
            format_args!(
                "ferry will delete {} extra file(s) at the target: {}{}.",
                keys.len(),
                shown.join(", "),
                if keys.len() > 10 { ", …" } else { "" }
            ),
        )
    }
}
