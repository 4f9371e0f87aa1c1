//! The SQLite job store's schema (the default store). ferry-sqlite's session opens the file
//! with WAL and a busy timeout, so `ferry admin` can write while a server runs, and readable by
//! its owner only. Columns added after the first release are added by [`UPGRADES`].

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ferry_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ferry_users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ferry_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES ferry_users(id),
    expires_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ferry_jobs (
    id TEXT PRIMARY KEY,
    admin_user_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    source_host TEXT NOT NULL,
    target_key TEXT NOT NULL,
    status TEXT NOT NULL,
    dry_run INTEGER NOT NULL,
    stats TEXT NOT NULL,
    error_message TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    sealed_body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS ferry_jobs_created ON ferry_jobs (created_at);
CREATE TABLE IF NOT EXISTS ferry_login_slowdown (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    next_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_wait INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ferry_login_slowdown_updated ON ferry_login_slowdown (updated_at);
";

/// Run after [`SCHEMA`], one at a time: SQLite has no `ADD COLUMN IF NOT EXISTS`, so a
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
