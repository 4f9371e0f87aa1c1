//! SQLite sources for the jobs the tests start: one big enough to take seconds to copy, one
//! small enough to finish at once.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

/// `events` with `rows` rows of a few columns each, at `dir/big.db`.
pub fn big_source(dir: &Path, rows: u64) -> PathBuf {
    let path = dir.join("big.db");
    let mut conn = Connection::open(&path).expect("create big.db");
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         CREATE TABLE events (
             id INTEGER PRIMARY KEY,
             user_id INTEGER NOT NULL,
             kind TEXT NOT NULL,
             payload TEXT,
             created_at TEXT NOT NULL
         );",
    )
    .expect("create events");
    let tx = conn.transaction().expect("begin");
    {
        let mut insert = tx
            .prepare("INSERT INTO events (id, user_id, kind, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .expect("prepare insert");
        let kinds = ["view", "like", "comment", "share"];
        for id in 1..=rows {
            insert
                .execute(params![
                    id as i64,
                    (id % 9973) as i64,
                    kinds[(id % 4) as usize],
                    format!("event {id} with a payload long enough to be a realistic row"),
                    format!(
                        "2024-{:02}-{:02} 12:{:02}:00",
                        1 + id % 12,
                        1 + id % 28,
                        id % 60
                    ),
                ])
                .expect("insert event");
        }
    }
    tx.commit().expect("commit");
    path
}

/// `users` (100 rows) and `posts` (250 rows, each pointing at a user) at `dir/small.db`.
pub fn small_source(dir: &Path) -> PathBuf {
    let path = dir.join("small.db");
    let mut conn = Connection::open(&path).expect("create small.db");
    conn.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE);
         CREATE TABLE posts (
             id INTEGER PRIMARY KEY,
             user_id INTEGER NOT NULL REFERENCES users(id),
             title TEXT NOT NULL,
             body TEXT
         );",
    )
    .expect("create tables");
    let tx = conn.transaction().expect("begin");
    for id in 1..=100i64 {
        tx.execute(
            "INSERT INTO users (id, name, email) VALUES (?1, ?2, ?3)",
            params![id, format!("user {id}"), format!("user{id}@example.org")],
        )
        .expect("insert user");
    }
    for id in 1..=250i64 {
        tx.execute(
            "INSERT INTO posts (id, user_id, title, body) VALUES (?1, ?2, ?3, ?4)",
            params![id, 1 + id % 100, format!("post {id}"), "hello"],
        )
        .expect("insert post");
    }
    tx.commit().expect("commit");
    path
}

/// The locator ferry reads a SQLite file by.
pub use ferry_testkit::sqlite::sqlite_url;
