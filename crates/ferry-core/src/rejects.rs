//! Rejected rows, for every engine that writes batches through a `TableWriter` (the copy engine,
//! profiles): a rejected batch is split until its bad rows stand alone, each is counted, named
//! in the stats and, when errors are ignored, kept in the table's reject file.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use crate::connector::{TableWriter, WriteError};
use crate::error::{Error, Result};
use crate::plan::TablePlan;
use crate::report::TableStats;
use crate::value::Batch;

/// How the rows of a table's batches are named in errors and reject files.
pub trait RowNames: Sync {
    /// Names row `row` of `batch` for an error message: `id=42`, `rowid 17`, `notes 4`.
    fn row_name(&self, batch: &Batch, row: usize) -> String;
    /// The name of each value of a row, for reject files.
    fn column_names(&self) -> Vec<&str>;
}

impl RowNames for TablePlan {
    fn row_name(&self, batch: &Batch, row: usize) -> String {
        self.describe_row(batch, row)
    }

    fn column_names(&self) -> Vec<&str> {
        self.columns
            .iter()
            .map(|c| c.source_name.as_str())
            .collect()
    }
}

/// The engine holds its plans in `Arc`s, shared by a table's chunks.
impl<T: RowNames + Send> RowNames for Arc<T> {
    fn row_name(&self, batch: &Batch, row: usize) -> String {
        (**self).row_name(batch, row)
    }

    fn column_names(&self) -> Vec<&str> {
        (**self).column_names()
    }
}

/// Writes a batch; when the target rejects it and errors are ignored, splits it to isolate the
/// bad rows (each write is atomic, so good rows are written exactly once).
///
/// # Errors
/// A fatal write error; a rejected row when errors are not ignored; a reject file that cannot
/// be written.
pub async fn write_splitting(
    writer: &mut dyn TableWriter,
    table: &dyn RowNames,
    batch: Batch,
    ignore_errors: bool,
    rejects: &Rejects,
    stats: &mut TableStats,
) -> Result<()> {
    let mut pending = vec![batch];
    while let Some(batch) = pending.pop() {
        if batch.is_empty() {
            continue;
        }
        match writer.write(&batch).await {
            Ok(()) => stats.migrated += batch.len() as u64,
            Err(WriteError::Fatal(e)) => return Err(e),
            Err(WriteError::Rejected { row, reason }) => {
                let n = batch.len();
                if !ignore_errors {
                    // Name the row when the target said which one; otherwise the batch's range.
                    return match row {
                        Some(i) if i < n => {
                            reject(table, &batch, i, &reason, false, rejects, stats)
                        }
                        _ => Err(Error::run(format!(
                            "a row between {} and {} was rejected: {reason}; {RERUN_ADVICE}",
                            table.row_name(&batch, 0),
                            table.row_name(&batch, n - 1)
                        ))),
                    };
                }
                if n == 1 {
                    // The other parts of the split batch are still pending: go on with them.
                    reject(table, &batch, 0, &reason, true, rejects, stats)?;
                    continue;
                }
                match row {
                    Some(i) if i < n => {
                        reject(table, &batch, i, &reason, true, rejects, stats)?;
                        let rest: Vec<usize> = (0..n).filter(|&r| r != i).collect();
                        pending.push(batch.select(&rest));
                    }
                    _ => {
                        let half = n / 2;
                        pending.push(batch.select(&(half..n).collect::<Vec<_>>()));
                        pending.push(batch.select(&(0..half).collect::<Vec<_>>()));
                    }
                }
            }
        }
    }
    Ok(())
}

/// What to do after a run stopped on a rejected row (its tables exist now, hence --force).
const RERUN_ADVICE: &str = "rerun with --force --ignore-errors to copy the other rows and list every rejected row in a reject file";

/// Records one rejected row: an error (stopping the run) unless errors are ignored, in which
/// case it is counted and written to the table's reject file.
///
/// # Errors
/// The rejected row when errors are not ignored; a reject file that cannot be written.
pub fn reject(
    table: &dyn RowNames,
    batch: &Batch,
    row: usize,
    reason: &str,
    ignore_errors: bool,
    rejects: &Rejects,
    stats: &mut TableStats,
) -> Result<()> {
    let key = table.row_name(batch, row);
    stats.failed += 1;
    stats.push_error(format!("{key}: {reason}"));
    if !ignore_errors {
        return Err(Error::run(format!(
            "row {key} was rejected: {reason}; {RERUN_ADVICE}"
        )));
    }
    if rejects.path.is_none() {
        return Ok(());
    }
    let values: serde_json::Map<String, serde_json::Value> = table
        .column_names()
        .into_iter()
        .zip(batch.row(row))
        .map(|(c, v)| (c.to_string(), v.to_json()))
        .collect();
    rejects.write(&serde_json::json!({"key": key, "reason": reason, "row": values}))
}

/// A table's reject file (`<reject dir>/<table>.rejects.jsonl`), created on the first reject
/// and shared by the table's chunks.
#[derive(Clone)]
pub struct Rejects {
    /// `None`: rejected rows are counted and named in the stats only (profiles, which keep
    /// going past bad rows and say which in the report).
    path: Option<PathBuf>,
    file: Arc<std::sync::Mutex<Option<std::io::BufWriter<std::fs::File>>>>,
}

impl Rejects {
    pub fn new(dir: &std::path::Path, table: &str) -> Self {
        let safe: String = table
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Self {
            path: Some(dir.join(format!("{safe}.rejects.jsonl"))),
            file: Arc::default(),
        }
    }

    /// No file: rejected rows are only counted and named in the stats.
    pub fn stats_only() -> Self {
        Self {
            path: None,
            file: Arc::default(),
        }
    }

    fn io_error(&self, e: std::io::Error) -> Error {
        let path = self.path.as_deref().unwrap_or(std::path::Path::new(""));
        Error::run(format!("cannot write reject file {}: {e}", path.display()))
    }

    fn write(&self, line: &serde_json::Value) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut file = self
            .file
            .lock()
            .map_err(|_| Error::run("reject file lock poisoned"))?;
        let f = match file.as_mut() {
            Some(f) => f,
            None => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| self.io_error(e))?;
                }
                let f = std::fs::File::create(path).map_err(|e| self.io_error(e))?;
                file.insert(std::io::BufWriter::new(f))
            }
        };
        writeln!(f, "{line}").map_err(|e| self.io_error(e))
    }

    /// Flushes the file, if one was written.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn finish(&self) -> Result<()> {
        let mut file = self
            .file
            .lock()
            .map_err(|_| Error::run("reject file lock poisoned"))?;
        match file.as_mut() {
            Some(f) => f.flush().map_err(|e| self.io_error(e)),
            None => Ok(()),
        }
    }
}
