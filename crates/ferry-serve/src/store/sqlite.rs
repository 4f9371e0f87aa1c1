//! The SQLite job store's spelling of the schema (the default store). ferry-sqlite's session
//! opens the file with WAL and a busy timeout, so `ferry admin` can write while a server runs,
//! and readable by its owner only. Columns added after the first release are added by
//! [`UPGRADES`].

use super::Spelling;

pub(super) const SPELLING: Spelling = Spelling {
    key: "INTEGER PRIMARY KEY",
    int: "INTEGER",
    bool: "INTEGER",
    r#false: "0",
    bytes: "BLOB",
};

/// Run after the tables, one at a time: SQLite has no `ADD COLUMN IF NOT EXISTS`, so a
/// "duplicate column" answer means the store already has it (see `SqlStore::open`).
pub(super) const UPGRADES: [&str; 6] = [
    "ALTER TABLE ferry_jobs ADD COLUMN owner TEXT",
    "ALTER TABLE ferry_jobs ADD COLUMN lease_until INTEGER",
    "DROP INDEX IF EXISTS ferry_jobs_one_per_target",
    "CREATE UNIQUE INDEX IF NOT EXISTS ferry_jobs_one_writer_per_target ON ferry_jobs (target_key)
         WHERE dry_run = 0 AND (status IN ('pending', 'validating', 'running') OR owner IS NOT NULL)",
    "ALTER TABLE ferry_jobs ADD COLUMN joinable INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE ferry_jobs ADD COLUMN helpers TEXT",
];
