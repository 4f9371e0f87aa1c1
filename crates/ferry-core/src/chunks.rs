//! Chunks: how a plan's tables are cut into the units a copy commits, resumes and shards. A
//! table with a row locator the source can read ranges of (SQLite rowids, a single-column
//! integer primary key, PostgreSQL `ctid` pages of a keyless table) is cut by value into ranges
//! of about `chunk_rows` rows; any other table (text or composite keys, MySQL keyless tables,
//! WITHOUT ROWID tables) is one chunk. Chunks are numbered across the whole plan, in its order:
//! `--shard K/N` takes those whose number is K modulo N.

use crate::plan::{Plan, TablePlan};

/// Rows per chunk when a job names none: big enough that a chunk's commit is cheap, small
/// enough that a kill redoes little.
pub const DEFAULT_CHUNK_ROWS: u64 = 100_000;

/// One unit of a copy: a table, or a range of its row locator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Its number across the plan, from 0.
    pub index: u64,
    /// The table's source name.
    pub table: String,
    /// An inclusive range of the table's row locator; `None`: the whole table.
    pub range: Option<(i64, i64)>,
}

/// Cuts every table of `plan` into chunks of about `chunk_rows` rows. Also returns a note for
/// each large table that cannot be cut (one chunk, copied and redone whole).
pub fn plan_chunks(plan: &Plan, chunk_rows: u64) -> (Vec<Chunk>, Vec<String>) {
    let mut chunks = Vec::new();
    let mut notes = Vec::new();
    let per = chunk_rows.max(1);
    for t in &plan.tables {
        let parts = t.row_count.div_ceil(per).max(1);
        match t.source.locator_range {
            Some(range) if parts > 1 => {
                for r in crate::engine::split_range(range, parts as usize) {
                    chunks.push(Chunk {
                        index: chunks.len() as u64,
                        table: t.source_name.clone(),
                        range: Some(r),
                    });
                }
            }
            locator => {
                if locator.is_none() && t.row_count > per {
                    notes.push(format!(
                        "table \"{}\" ({} rows) has no integer key or row locator to cut by: it is one chunk, copied in one transaction and redone whole after an interruption",
                        t.source_name, t.row_count
                    ));
                }
                chunks.push(Chunk {
                    index: chunks.len() as u64,
                    table: t.source_name.clone(),
                    range: None,
                });
            }
        }
    }
    (chunks, notes)
}

/// The range a chunk reads in this run: the table's first chunk reaches down to the smallest
/// locator the source has now and its last chunk up to the largest, so rows added at either end
/// since the chunks were recorded are read too (rows changed inside done chunks are what
/// verification catches).
pub fn read_range(chunk: &Chunk, siblings: &[Chunk], table: &TablePlan) -> Option<(i64, i64)> {
    let (lo, hi) = chunk.range?;
    let (first, last) = siblings
        .iter()
        .filter(|c| c.table == chunk.table)
        .filter_map(|c| c.range)
        .fold((lo, hi), |(f, l), (a, b)| (f.min(a), l.max(b)));
    let (now_lo, now_hi) = table.source.locator_range.unwrap_or((lo, hi));
    Some((
        if lo == first { lo.min(now_lo) } else { lo },
        if hi == last { hi.max(now_hi) } else { hi },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_and_last_chunks_reach_rows_added_since() {
        let all = vec![
            Chunk {
                index: 0,
                table: "t".into(),
                range: Some((1, 50)),
            },
            Chunk {
                index: 1,
                table: "t".into(),
                range: Some((51, 100)),
            },
        ];
        let mut tp = crate::plan::tests::tp("t", &[]);
        tp.source.locator_range = Some((-5, 120));
        assert_eq!(read_range(&all[0], &all, &tp), Some((-5, 50)));
        assert_eq!(read_range(&all[1], &all, &tp), Some((51, 120)));
        tp.source.locator_range = None;
        assert_eq!(read_range(&all[1], &all, &tp), Some((51, 100)));
    }
}
