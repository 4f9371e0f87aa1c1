//! The end of a run on the command line, for copies and blob runs alike: a run that failed
//! before it had a report of its own, and the `--summary` file.

use std::path::Path;

use ferry::{Error, ErrorKind, Report, Status};

/// Prints `e` and makes the report of a run it stopped (Cancelled or Failed, with the error's
/// text) between `source` and `target` (as they may be shown): the report and the error's exit
/// code.
pub fn failed(e: &Error, source: String, target: String, dry_run: bool) -> (Report, i32) {
    eprintln!("error: {e}");
    let mut report = Report::new(source, target, dry_run);
    report.status = if e.kind() == ErrorKind::Cancelled {
        Status::Cancelled
    } else {
        Status::Failed
    };
    report.error = Some(e.to_string());
    (report, e.exit_code())
}

/// Writes `report` to the `--summary` file when one was asked for: the run's exit `code`, or at
/// least 1 when the file cannot be written.
pub fn write(report: &Report, summary: Option<&Path>, code: i32) -> i32 {
    if let Some(path) = summary
        && let Err(e) = std::fs::write(path, report.to_json())
    {
        eprintln!("error: cannot write the summary to {}: {e}", path.display());
        return code.max(1);
    }
    code
}
