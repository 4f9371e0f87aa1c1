//! The run report: per-table stats and verification results, rendered as the JSON summary
//! (`--summary FILE`, a stable contract) and as a human table.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::plan::{Change, ChangeKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Completed,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TableStats {
    pub total: u64,
    pub migrated: u64,
    pub skipped: u64,
    pub failed: u64,
    /// The first errors (capped; `failed` has the full count).
    pub errors: Vec<String>,
    pub bytes: u64,
    pub elapsed_s: f64,
    /// Per source column, values that lost non-zero sub-microsecond digits to rounding.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rounded: BTreeMap<String, u64>,
    /// Writes retried after a transient fault (a lost connection, a server restart, a
    /// serialization failure, a deadlock: see `crate::retry`).
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// At most this many error strings are kept per table.
pub const MAX_ERRORS_KEPT: usize = 50;

impl TableStats {
    pub fn push_error(&mut self, error: String) {
        if self.errors.len() < MAX_ERRORS_KEPT {
            self.errors.push(error);
        }
    }

    /// Adds the numbers of a part (a chunk of a table, one of the entities sharing a stats key).
    pub fn merge(&mut self, part: &TableStats) {
        self.total += part.total;
        self.migrated += part.migrated;
        self.skipped += part.skipped;
        self.failed += part.failed;
        self.bytes += part.bytes;
        self.elapsed_s += part.elapsed_s;
        self.retries += part.retries;
        for (column, n) in &part.rounded {
            *self.rounded.entry(column.clone()).or_default() += n;
        }
        for e in &part.errors {
            self.push_error(e.clone());
        }
    }
}

// Deserialize: a ledger records the results of tables verified before a kill (`ledger.rs`).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VerifyTable {
    pub source_rows: u64,
    pub target_rows: u64,
    pub checksum_match: bool,
    /// Keys (rendered) of rows missing from the target, extra in it, or different (capped).
    pub missing_keys: Vec<String>,
    pub extra_keys: Vec<String>,
    pub different_keys: Vec<String>,
    /// How many rows (keys) are missing from the target, extra in it, or different: exact,
    /// unless `counts_partial` says they cover only part of the table.
    pub missing_count: u64,
    pub extra_count: u64,
    pub different_count: u64,
    /// Set when so many rows differ that only some key buckets were counted (memory bound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts_partial: Option<String>,
    /// Set when a second read of the source found it changed since the first: the
    /// differences may be writes made since the copy, not a failed copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_changed: Option<String>,
    /// The source's (rows, digest) from the first read, to tell a live source from a bad copy.
    #[serde(skip)]
    pub source_digest: (u64, u64),
    /// How values were compared, in words.
    pub rule: String,
    /// Set when only row counts were compared (no content): `checksum_match` then says
    /// nothing about content and is false, and `ok()` rests on the counts.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub counts_only: bool,
    /// Set when the comparison itself could not be made (a table missing on one side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl VerifyTable {
    pub fn ok(&self) -> bool {
        self.error.is_none()
            && (self.checksum_match || self.counts_only)
            && self.source_rows == self.target_rows
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: Status,
    pub dry_run: bool,
    pub source: String,
    pub target: String,
    /// How the source was read as one consistent picture while its application may run
    /// ("SQLite WAL snapshot", "PostgreSQL exported snapshot", ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_snapshot: Option<String>,
    pub elapsed_s: f64,
    pub stats: BTreeMap<String, TableStats>,
    pub verify: BTreeMap<String, VerifyTable>,
    /// What was not copied (views, triggers, virtual tables) and why.
    pub not_copied: Vec<crate::schema::SkippedObject>,
    /// Views, triggers, functions and the like a same-backend copy recreates (`view name`).
    pub recreated: Vec<String>,
    pub warnings: Vec<String>,
    /// Every lossy type step, `table.column: what`.
    pub lossy: Vec<String>,
    /// Every deterministic translation of a declaration, `what: how`.
    pub translations: Vec<String>,
    /// Why the run failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub peak_rss_mb: Option<f64>,
    /// The plan, in dry runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<crate::plan::Plan>,
}

impl Report {
    pub fn new(source: String, target: String, dry_run: bool) -> Self {
        Self {
            status: Status::Completed,
            dry_run,
            source,
            target,
            source_snapshot: None,
            elapsed_s: 0.0,
            stats: BTreeMap::new(),
            verify: BTreeMap::new(),
            not_copied: Vec::new(),
            recreated: Vec::new(),
            warnings: Vec::new(),
            lossy: Vec::new(),
            translations: Vec::new(),
            error: None,
            peak_rss_mb: None,
            plan: None,
        }
    }

    /// Failed rows anywhere, or verification differences.
    pub fn has_failures(&self) -> bool {
        self.status != Status::Completed
            || self.stats.values().any(|s| s.failed > 0)
            || self.verify.values().any(|v| !v.ok())
    }

    /// The exit code the CLI returns for this report (0 all good, 1 failures or differences).
    pub fn exit_code(&self) -> i32 {
        if self.has_failures() { 1 } else { 0 }
    }

    /// Every change this run made, in one list: lossy steps (those found while copying
    /// included), translations, objects not copied.
    pub fn changes(&self) -> Vec<Change> {
        let of = |kind: ChangeKind, list: &[String]| {
            list.iter()
                .map(|what| Change {
                    kind,
                    what: what.clone(),
                })
                .collect::<Vec<_>>()
        };
        let mut all = of(ChangeKind::Lossy, &self.lossy);
        all.extend(of(ChangeKind::Translation, &self.translations));
        all.extend(self.not_copied.iter().map(Change::not_copied));
        all
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// The final human table: rows, failures, time and throughput per table, then verification.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        if !self.stats.is_empty() && !self.dry_run {
            let w = self
                .stats
                .keys()
                .map(|k| k.chars().count())
                .max()
                .unwrap_or(5)
                .clamp(5, 48);
            let _ = writeln!(
                out,
                "{:<w$}  {:>10}  {:>10}  {:>7}  {:>8}  {:>12}",
                "table", "rows", "migrated", "failed", "time", "rows/s"
            );
            for (name, s) in &self.stats {
                let rate = if s.elapsed_s > 0.0 {
                    s.migrated as f64 / s.elapsed_s
                } else {
                    0.0
                };
                let _ = writeln!(
                    out,
                    "{:<w$}  {:>10}  {:>10}  {:>7}  {:>7.2}s  {:>12.0}",
                    name, s.total, s.migrated, s.failed, s.elapsed_s, rate
                );
            }
        }
        if !self.verify.is_empty() {
            let bad: Vec<_> = self.verify.iter().filter(|(_, v)| !v.ok()).collect();
            let counted: Vec<&str> = self
                .verify
                .iter()
                .filter(|(_, v)| v.counts_only)
                .map(|(n, _)| n.as_str())
                .collect();
            if bad.is_empty() && counted.is_empty() {
                let _ = writeln!(
                    out,
                    "verify: {} tables match (row counts and content checksums)",
                    self.verify.len()
                );
            } else if bad.is_empty() {
                let _ = writeln!(
                    out,
                    "verify: {} tables match: {} by row counts and content checksums, {} by row counts only ({})",
                    self.verify.len(),
                    self.verify.len() - counted.len(),
                    counted.len(),
                    counted.join(", ")
                );
            }
            for (name, v) in bad {
                let _ = write!(
                    out,
                    "verify: {name}: source {} rows, target {} rows",
                    v.source_rows, v.target_rows
                );
                if let Some(e) = &v.error {
                    let _ = write!(out, ", {e}");
                } else if !v.checksum_match {
                    let _ = write!(out, ", content differs");
                    if v.missing_count + v.extra_count + v.different_count > 0 {
                        let _ = write!(
                            out,
                            ": {} missing in target, {} extra, {} different",
                            v.missing_count, v.extra_count, v.different_count
                        );
                    }
                    if let Some(p) = &v.counts_partial {
                        let _ = write!(out, " ({p})");
                    }
                }
                let _ = writeln!(out);
                if let Some(c) = &v.source_changed {
                    let _ = writeln!(out, "verify: {c}");
                }
                for (what, keys) in [
                    ("missing in target", &v.missing_keys),
                    ("extra in target", &v.extra_keys),
                    ("different", &v.different_keys),
                ] {
                    if !keys.is_empty() {
                        let _ = writeln!(out, "  {what}: {}", keys.join("; "));
                    }
                }
            }
        }
        if let Some(how) = &self.source_snapshot {
            let _ = writeln!(out, "source read: {how}");
        }
        if !self.dry_run {
            for r in &self.recreated {
                let _ = writeln!(out, "recreated: {r}");
            }
        }
        // Every run says what it changed, not only dry runs: a type that differs from the
        // declared one, lost precision or an object left behind is never silent.
        for change in self.changes() {
            let _ = writeln!(out, "{change}");
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        let retried = self.per_table(|s| s.retries);
        if !retried.is_empty() {
            let _ = writeln!(
                out,
                "retried writes after transient faults: {}",
                retried.join(", ")
            );
        }
        let rows: u64 = self.stats.values().map(|s| s.migrated).sum();
        let failed: u64 = self.stats.values().map(|s| s.failed).sum();
        self.render_end(&mut out, &format!(": {rows} rows copied, {failed} failed,"));
        out
    }

    /// The last lines of a rendered report: how the run ended (`completed`, `finished with
    /// failures`...), then `counts`, the time and the memory it took; then its error, if any.
    pub fn render_end(&self, out: &mut String, counts: &str) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "{}{counts} in {:.2}s{}",
            match self.status {
                Status::Completed if self.has_failures() => "finished with failures",
                Status::Completed => "completed",
                Status::Failed => "failed",
                Status::Cancelled => "cancelled",
            },
            self.elapsed_s,
            self.peak_rss_mb
                .map(|m| format!(", peak RSS {m:.0} MB"))
                .unwrap_or_default()
        );
        if let Some(e) = &self.error {
            let _ = writeln!(out, "error: {e}");
        }
    }

    /// `table: n` for each table whose `count` (failed rows, retries...) is not zero.
    pub fn per_table(&self, count: impl Fn(&TableStats) -> u64) -> Vec<String> {
        self.stats
            .iter()
            .filter(|(_, s)| count(s) > 0)
            .map(|(t, s)| format!("{t}: {}", count(s)))
            .collect()
    }
}

/// This process's peak resident set size in MB (Linux `VmHWM`), for the report and benchmarks.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verify_line_says_what_was_compared() {
        let mut r = Report::new("a".into(), "b".into(), false);
        let content = VerifyTable {
            source_rows: 2,
            target_rows: 2,
            checksum_match: true,
            ..VerifyTable::default()
        };
        r.verify.insert("users".into(), content.clone());
        assert!(
            r.render()
                .contains("verify: 1 tables match (row counts and content checksums)")
        );
        let counted = VerifyTable {
            checksum_match: false,
            counts_only: true,
            ..content
        };
        assert!(counted.ok(), "counts only: the counts decide");
        r.verify.insert("videos".into(), counted);
        let text = r.render();
        assert!(
            text.contains("verify: 2 tables match: 1 by row counts and content checksums, 1 by row counts only (videos)"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["verify"]["videos"]["counts_only"], true);
        assert!(json["verify"]["users"].get("counts_only").is_none());
    }
}
