//! What the operator sees: progress bars per table on a terminal, structured log lines
//! otherwise, and the confirmation question of --force.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry::{Confirm, Event, Observer};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Self {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, table: &str, rows: u64, verb: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(rows));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>24.bold} {bar:30.cyan/blue} {pos:>10}/{len:<10} {per_sec:>12} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{verb} {}", truncate(table, 16)));
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

impl Observer for Bars {
    fn event(&self, event: &Event) {
        let mut bars = self.bars.lock().expect("not poisoned");
        match event {
            Event::Phase(p) => {
                let _ = self.multi.println(format!("· {p}"));
            }
            Event::Warning(w) => {
                let _ = self.multi.println(format!("warning: {w}"));
            }
            Event::TableStarted { table, rows } => {
                bars.insert(format!("copy:{table}"), self.bar(table, *rows, "copy"));
            }
            Event::TableProgress {
                table,
                rows,
                failed,
                ..
            } => {
                if let Some(b) = bars.get(&format!("copy:{table}")) {
                    b.inc(rows + failed);
                    if *failed > 0 {
                        b.set_message(format!("{failed} failed"));
                    }
                }
            }
            Event::TableFinished { table, failed, .. } => {
                if let Some(b) = bars.remove(&format!("copy:{table}")) {
                    if *failed > 0 {
                        b.abandon_with_message(format!("{failed} failed"));
                    } else {
                        b.finish_with_message("done");
                    }
                }
            }
            Event::VerifyStarted { table, rows } => {
                let b = self.bar(table, *rows, "verify");
                b.set_style(
                    ProgressStyle::with_template("{prefix:>24.bold} {spinner} {msg}")
                        .expect("valid template"),
                );
                bars.insert(format!("verify:{table}"), b);
            }
            Event::VerifyFinished { table, matched } => {
                if let Some(b) = bars.remove(&format!("verify:{table}")) {
                    b.finish_with_message(if *matched { "match" } else { "DIFFERS" });
                }
            }
            // The bars count this run's rows; a shared copy's tally is the job server's.
            Event::ChunkEnded { .. } | Event::CommittedByOthers { .. } => {}
        }
    }
}

/// Log lines for non-terminals: every phase and table, and per table at most one progress line
/// every five seconds.
pub struct Logs {
    last: Mutex<HashMap<String, (Instant, u64, u64)>>,
}

impl Logs {
    pub fn new() -> Self {
        Self {
            last: Mutex::new(HashMap::new()),
        }
    }
}

impl Observer for Logs {
    fn event(&self, event: &Event) {
        match event {
            Event::Phase(p) => tracing::info!(phase = %p, "{p}"),
            Event::Warning(w) => tracing::warn!("{w}"),
            Event::TableStarted { table, rows } => {
                self.last
                    .lock()
                    .expect("not poisoned")
                    .insert(table.clone(), (Instant::now(), 0, *rows));
                tracing::info!(table = %table, rows, "Copying table");
            }
            Event::TableProgress {
                table,
                rows,
                failed,
                ..
            } => {
                let mut last = self.last.lock().expect("not poisoned");
                if let Some((at, done, total)) = last.get_mut(table) {
                    *done += rows + failed;
                    if at.elapsed() >= Duration::from_secs(5) {
                        *at = Instant::now();
                        tracing::info!(table = %table, done = *done, total = *total, "Copy progress");
                    }
                }
            }
            Event::TableFinished {
                table,
                migrated,
                failed,
                elapsed_s,
            } => {
                tracing::info!(table = %table, migrated, failed, elapsed_s, "Copied table");
            }
            Event::VerifyStarted { table, rows } => {
                tracing::info!(table = %table, rows, "Verifying table")
            }
            Event::VerifyFinished { table, matched } => {
                tracing::info!(table = %table, matched, "Verified table")
            }
            Event::ChunkEnded { .. } | Event::CommittedByOthers { .. } => {}
        }
    }
}

/// Asks on the terminal; with `--yes` answers yes; with no terminal and no `--yes`, refuses
/// rather than waits.
pub struct Ask {
    pub yes: bool,
}

impl Confirm for Ask {
    fn confirm_erase(&self, tables: &[String]) -> bool {
        ask(
            self.yes,
            format_args!(
                "ferry will erase {} table(s) in the target: {}.",
                tables.len(),
                tables.join(", ")
            ),
        )
    }
}

/// A yes/no question on the terminal, `Continue? [y/N]` after `question`: `yes` (the --yes
/// flag) answers for scripts, and without a terminal ferry refuses rather than waits.
pub fn ask(yes: bool, question: std::fmt::Arguments<'_>) -> bool {
    if yes {
        return true;
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return false;
    }
    eprint!("{question} Continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// A token cancelled on Ctrl-C, after saying what happens to the work in flight (`cancelling:
/// {what}`).
pub fn cancel_on_ctrl_c(what: &'static str) -> CancellationToken {
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("cancelling: {what}");
            on_signal.cancel();
        }
    });
    cancel
}
