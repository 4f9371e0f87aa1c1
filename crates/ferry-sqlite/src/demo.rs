//! `ferry demo`: builds a realistic sample application database in SQLite (users, posts,
//! threaded comments, tags, settings, with the loose typing real SQLite files have) so that a
//! fresh machine can run a real copy with no server installed.

use std::path::Path;

use ferry_core::{Error, Result};
use rusqlite::Connection;

/// Creates the sample database at `path` (replacing it) with about `rows` rows in all.
///
/// # Errors
/// When the file cannot be written.
pub fn create_sample(path: &Path, rows: u64) -> Result<()> {
    let err = |e: rusqlite::Error| Error::run(format!("demo database: {e}"));
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let conn = Connection::open(path).map_err(err)?;
    let users = (rows / 20).max(10);
    let posts = (rows / 4).max(20);
    let comments = (rows / 2).max(40);
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         CREATE TABLE users (
           id INTEGER PRIMARY KEY,
           email VARCHAR(120) NOT NULL UNIQUE,
           name TEXT,
           is_admin BOOLEAN NOT NULL DEFAULT 0,
           created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
           balance NUMERIC(12,2),
           avatar BLOB
         );
         CREATE TABLE posts (
           id INTEGER PRIMARY KEY AUTOINCREMENT,
           user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
           title TEXT NOT NULL,
           body TEXT,
           score REAL,
           published BOOLEAN DEFAULT 1,
           published_at TEXT,
           meta JSON
         );
         CREATE INDEX posts_by_user ON posts(user_id, published_at);
         CREATE TABLE comments (
           id INTEGER PRIMARY KEY,
           post_id INTEGER NOT NULL REFERENCES posts(id),
           parent_id INTEGER REFERENCES comments(id),
           author_id INTEGER REFERENCES users(id),
           body TEXT NOT NULL,
           created_at DATETIME DEFAULT (datetime('now'))
         );
         CREATE TABLE tags (name TEXT PRIMARY KEY, color TEXT) WITHOUT ROWID;
         CREATE TABLE post_tags (post_id INTEGER NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (post_id, tag));
         CREATE TABLE settings (key TEXT, value);
         CREATE VIEW popular_posts AS SELECT * FROM posts WHERE score > 4.5;
         CREATE TRIGGER posts_touch AFTER UPDATE ON posts BEGIN UPDATE posts SET published_at = datetime('now') WHERE id = NEW.id; END;
         BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {users})
         INSERT INTO users (id, email, name, is_admin, created_at, balance, avatar)
           SELECT i, 'user' || i || '@example.org', 'User ' || i, i % 50 = 0,
                  datetime(1600000000 + i * 3600, 'unixepoch'), round((i * 37 % 100000) / 100.0, 2),
                  CASE WHEN i % 7 = 0 THEN randomblob(32) END FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {posts})
         INSERT INTO posts (id, user_id, title, body, score, published, published_at, meta)
           SELECT i, 1 + i % {users}, 'Post number ' || i, 'Lorem ipsum ' || hex(randomblob(24)),
                  (i % 1000) / 199.0, i % 5 <> 0, datetime(1650000000 + i * 60, 'unixepoch'),
                  json_object('words', i % 900, 'lang', CASE i % 3 WHEN 0 THEN 'en' WHEN 1 THEN 'fr' ELSE 'de' END) FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {comments})
         INSERT INTO comments (id, post_id, parent_id, author_id, body, created_at)
           SELECT i, 1 + i % {posts}, CASE WHEN i > 10 AND i % 3 = 0 THEN i - 7 END, 1 + i % {users},
                  'Comment ' || i, datetime(1660000000 + i * 30, 'unixepoch') FROM n;
         INSERT INTO tags VALUES ('rust', 'orange'), ('sql', 'blue'), ('ops', 'green'), ('news', NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {posts})
         INSERT INTO post_tags SELECT i, CASE i % 4 WHEN 0 THEN 'rust' WHEN 1 THEN 'sql' WHEN 2 THEN 'ops' ELSE 'news' END FROM n;
         INSERT INTO settings VALUES ('site_name', 'Demo'), ('max_upload_mb', 25), ('ratio', 0.75), ('logo', x'89504e47');
         COMMIT;"
    ))
    .map_err(err)?;
    Ok(())
}
