//! Chunks: how a plan's tables are cut into the units a copy commits, resumes and shards. A
//! table with a row locator the source can read ranges of (SQLite rowids, a single-column
//! integer primary key, PostgreSQL `ctid` pages of a keyless table) is cut by value into ranges
//! of about `chunk_rows` rows; any other table (text or composite keys, MySQL keyless tables,
//! WITHOUT ROWID tables) is one chunk. Chunks are numbered across the whole plan, in its order:
//! `--shard K/N` takes those whose number is K modulo N. A run copies them table after table,
//! heaviest first ([`copy_order`]).

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

/// The order in which a run copies `tables` (a plan's, as indexes into them): the
/// heaviest first, so that its last chunk commits early and its keys, foreign keys and
/// comparison run beside the other tables' copy, not after the last chunk (what a kill late in
/// the copy would leave to the resumed run). A table's weight is its rows plus the rows of the
/// tables it shares a foreign key with: the foreign key is added (reading the child's rows) once
/// both are in, so they go next to each other, early. Ties keep the larger table, then the plan
/// order.
pub fn copy_order(tables: &[TablePlan]) -> Vec<usize> {
    let linked = |a: &TablePlan, b: &TablePlan| {
        a.source_name != b.source_name
            && (a.depends_on.contains(&b.source_name) || b.depends_on.contains(&a.source_name))
    };
    let weight = |t: &TablePlan| {
        let others = tables.iter().filter(|o| linked(t, o));
        t.row_count + others.map(|o| o.row_count).sum::<u64>()
    };
    let mut order: Vec<usize> = (0..tables.len()).collect();
    order.sort_by_key(|&i| {
        let t = &tables[i];
        (
            std::cmp::Reverse(weight(t)),
            std::cmp::Reverse(t.row_count),
            i,
        )
    });
    order
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

    #[test]
    fn the_heaviest_table_and_its_foreign_key_partner_are_copied_first() {
        let table = |name: &str, deps: &[&str], rows: u64| {
            let mut t = crate::plan::tests::tp(name, deps);
            t.row_count = rows;
            t
        };
        let tables = vec![
            table("events", &[], 200),
            table("users", &[], 100),
            table("posts", &["users"], 700),
            table("tags", &[], 5),
        ];
        // posts 800 (with users), users 800 (with posts), events 200, tags 5.
        assert_eq!(copy_order(&tables), vec![2, 1, 0, 3]);
    }
}
