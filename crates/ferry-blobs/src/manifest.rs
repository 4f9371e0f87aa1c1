//! The manifest: which files a run covers. Either a full listing of the source, a fixed key
//! list, or the keys a SQL query returns from the application's database (SQLite, PostgreSQL
//! or MySQL/MariaDB: the first column of every row, as text).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ferry_core::error::{Error, Result};
use futures_util::TryStreamExt;
use opendal::Operator;

use crate::store::{Store, one_line};

/// Which files a run covers.
#[derive(Debug, Clone)]
pub enum Manifest {
    /// Every file under the source.
    Listing,
    /// These keys (relative to the source root).
    Keys(Vec<String>),
    /// The first column of each row `sql` returns from the database at `db` (a ferry locator).
    Sql { db: String, sql: String },
}

/// The resolved manifest: keys in a stable order, and anything worth a warning.
pub(crate) struct Resolved {
    pub keys: Vec<String>,
    pub warnings: Vec<String>,
    /// Sizes from an object store's listing, so no file needs a HEAD request of its own.
    pub sizes: Option<std::collections::HashMap<String, u64>>,
}

impl Manifest {
    /// Resolves to keys. A listing reads the source; a query runs read-only against its
    /// database.
    pub(crate) async fn resolve(&self, store: &Store, op: &Operator) -> Result<Resolved> {
        let mut warnings = Vec::new();
        let mut sizes = None;
        let raw = match self {
            Manifest::Listing if store.kind() != crate::store::Kind::Local => {
                let listed = list_sizes(store, op).await?;
                let mut keys: Vec<String> = listed.keys().cloned().collect();
                keys.sort();
                sizes = Some(listed);
                keys
            }
            Manifest::Listing => {
                let (keys, left_out) = list(store, op).await?;
                warnings.extend(left_out);
                keys
            }
            Manifest::Keys(k) => k.clone(),
            Manifest::Sql { db, sql } => {
                let (keys, nulls) = query_keys(db, sql).await?;
                if nulls > 0 {
                    warnings.push(format!(
                        "the manifest query returned {nulls} NULL or empty keys; they were left out"
                    ));
                }
                keys
            }
        };
        // Keys are relative to the root; the same file named twice is copied once.
        let mut seen = HashSet::new();
        let mut keys = Vec::with_capacity(raw.len());
        for k in raw {
            let k = k.trim_start_matches('/').to_string();
            if k.is_empty() || k.ends_with('/') {
                continue;
            }
            if seen.insert(k.clone()) {
                keys.push(k);
            }
        }
        Ok(Resolved {
            keys,
            warnings,
            sizes,
        })
    }
}

/// Every file under the operator's root, in lexical order, and a warning for anything that was
/// left out. A local folder is walked directly (OpenDAL's file system lister stats every entry
/// through a task of its own, a third of a verified local copy's time on bench/blobs, and it
/// drops symbolic links without a word).
pub(crate) async fn list(store: &Store, op: &Operator) -> Result<(Vec<String>, Vec<String>)> {
    let fail = |e: opendal::Error| {
        Error::input(store.scrub(&format!("cannot list {store}: {}", one_line(&e))))
    };
    if let Some(root) = store.local_path().filter(|p| p.is_dir()) {
        let shown = store.to_string();
        return tokio::task::spawn_blocking(move || walk(&root, &shown))
            .await
            .map_err(|e| Error::run(format!("listing task failed: {e}")))?;
    }
    let mut lister = op.lister_with("").recursive(true).await.map_err(fail)?;
    let mut keys = Vec::new();
    while let Some(entry) = lister.try_next().await.map_err(fail)? {
        if entry.metadata().is_file() && !entry.path().ends_with('/') {
            keys.push(entry.path().to_string());
        }
    }
    keys.sort();
    Ok((keys, Vec::new()))
}

/// The files under a local folder as keys (`/`-separated, relative). Symbolic links to files
/// count as files (their content is what an application serves); links to folders are not
/// followed (they can loop), and they, broken links, special files and names that are not
/// UTF-8 (no object key can hold them) are named in the one warning.
fn walk(root: &Path, shown: &str) -> Result<(Vec<String>, Vec<String>)> {
    let fail = |dir: &Path, e: std::io::Error| {
        Error::input(format!(
            "cannot list {}: {e} (fix its permissions, or name the files with --manifest-sql)",
            root.join(dir).display()
        ))
    };
    let (mut keys, mut left_out) = (Vec::new(), Vec::new());
    let mut dirs = vec![PathBuf::new()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(root.join(&dir)) {
            Ok(entries) => entries,
            // Removed while we listed: nothing under it to copy.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.as_os_str().is_empty() => {
                continue;
            }
            Err(e) => return Err(fail(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| fail(&dir, e))?;
            let rel = dir.join(entry.file_name());
            let kind = match entry.file_type() {
                Ok(kind) => kind,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // just removed
                Err(e) => return Err(fail(&rel, e)),
            };
            let why = if kind.is_dir() {
                dirs.push(rel);
                continue;
            } else if kind.is_file() {
                None
            } else if kind.is_symlink() {
                match std::fs::metadata(entry.path()) {
                    Ok(m) if m.is_file() => None,
                    Ok(m) if m.is_dir() => Some("a symbolic link to a folder, not followed"),
                    Ok(_) => Some("a symbolic link to a special file"),
                    Err(_) => Some("a broken symbolic link"),
                }
            } else {
                Some("not a regular file")
            };
            match (why, rel.to_str()) {
                (None, Some(key)) => keys.push(key.to_string()),
                (None, None) => left_out.push(format!("{} (name not UTF-8)", rel.display())),
                (Some(why), _) => left_out.push(format!("{} ({why})", rel.display())),
            }
        }
    }
    keys.sort();
    let mut warnings = Vec::new();
    if !left_out.is_empty() {
        left_out.sort();
        let more = left_out.len().saturating_sub(10);
        left_out.truncate(10);
        warnings.push(format!(
            "{} entries under {shown} are not files ferry can copy and were left out: {}{}",
            left_out.len() + more,
            left_out.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    Ok((keys, warnings))
}

/// Every file under the operator's root with its size, from the listing's metadata (one
/// request per thousand objects on S3 instead of one HEAD per file).
pub(crate) async fn list_sizes(
    store: &Store,
    op: &Operator,
) -> Result<std::collections::HashMap<String, u64>> {
    let fail = |e: opendal::Error| {
        Error::input(store.scrub(&format!("cannot list {store}: {}", one_line(&e))))
    };
    let mut lister = op.lister_with("").recursive(true).await.map_err(fail)?;
    let mut sizes = std::collections::HashMap::new();
    while let Some(entry) = lister.try_next().await.map_err(fail)? {
        if entry.metadata().is_file() && !entry.path().ends_with('/') {
            sizes.insert(entry.path().to_string(), entry.metadata().content_length());
        }
    }
    Ok(sizes)
}

/// Runs the manifest query; returns the keys and the number of NULL/empty values skipped.
#[allow(clippy::vec_init_then_push)]
async fn query_keys(db: &str, sql: &str) -> Result<(Vec<String>, usize)> {
    // One push per built-in backend, each behind its feature.
    #[allow(unused_mut)]
    let mut backends: Vec<&'static dyn ferry_core::registration::Registration> = Vec::new();
    #[cfg(feature = "sqlite")]
    backends.push(&ferry_sqlite::SqliteRegistration);
    #[cfg(feature = "postgres")]
    backends.push(&ferry_postgres::PostgresRegistration);
    #[cfg(feature = "mysql")]
    backends.push(&ferry_mysql::MysqlRegistration);
    let locator = ferry_core::registration::parse(db, &backends)?;
    #[cfg(feature = "sqlite")]
    if let Ok(place) = ferry_sqlite::locator::of(&locator) {
        let path = place.path.clone();
        let sql = sql.to_string();
        let shown = locator.redacted();
        return tokio::task::spawn_blocking(move || sqlite_keys(&path, &sql, &shown))
            .await
            .map_err(|e| Error::run(format!("manifest query task failed: {e}")))?;
    }
    #[cfg(feature = "postgres")]
    if locator.backend() == ferry_postgres::locator::BACKEND {
        return postgres_keys(&locator, sql).await;
    }
    #[cfg(feature = "mysql")]
    if let Ok(url) = ferry_mysql::locator::url(&locator) {
        return mysql_keys(url, sql, &locator.redacted()).await;
    }
    Err(Error::input(format!(
        "manifest queries against {} databases are not supported in this build (use sqlite:, postgres: or mysql:)",
        locator.backend()
    )))
}

#[cfg(feature = "sqlite")]
fn sqlite_keys(path: &std::path::Path, sql: &str, shown: &str) -> Result<(Vec<String>, usize)> {
    use rusqlite::{OpenFlags, types::ValueRef};
    if !path.is_file() {
        return Err(Error::input(format!(
            "manifest database {shown} does not exist"
        )));
    }
    // Read-only, like every ferry source: never creates -wal/-shm files or writes.
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::input(format!("cannot open manifest database {shown}: {e}")))?;
    let bad = |e: rusqlite::Error| {
        Error::input(format!(
            "manifest query failed on {shown}: {}",
            e.to_string().replace('\n', " ")
        ))
    };
    let mut stmt = conn.prepare(sql).map_err(bad)?;
    if stmt.column_count() == 0 {
        return Err(Error::input(
            "the manifest query returns no columns: it must SELECT one key per row",
        ));
    }
    let mut rows = stmt.query([]).map_err(bad)?;
    let (mut keys, mut nulls) = (Vec::new(), 0);
    while let Some(row) = rows.next().map_err(bad)? {
        let key = match row.get_ref(0).map_err(bad)? {
            ValueRef::Null => None,
            ValueRef::Integer(i) => Some(i.to_string()),
            ValueRef::Real(f) => Some(f.to_string()),
            ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        };
        match key {
            Some(k) if !k.is_empty() => keys.push(k),
            _ => nulls += 1,
        }
    }
    Ok((keys, nulls))
}

#[cfg(feature = "postgres")]
async fn postgres_keys(locator: &ferry_core::Locator, sql: &str) -> Result<(Vec<String>, usize)> {
    let shown = locator.redacted();
    let endpoint = ferry_postgres::connect::endpoint(locator)?;
    // Read-only like every ferry source: a manifest query cannot change the database.
    let client = ferry_postgres::connect::connect(&endpoint, true)
        .await
        .map_err(|e| e.context(format!("manifest database {shown}")))?;
    // The simple protocol returns every value as text, whatever its type.
    let messages = client.simple_query(sql).await.map_err(|e| {
        Error::input(format!(
            "manifest query failed on {shown}: {}",
            pg_message(&e)
        ))
    });
    drop(client);
    let (mut keys, mut nulls) = (Vec::new(), 0);
    for m in messages? {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = m {
            match row.get(0) {
                Some(k) if !k.is_empty() => keys.push(k.to_string()),
                _ => nulls += 1,
            }
        }
    }
    Ok((keys, nulls))
}

/// The server's own message (tokio-postgres' `Display` says only "db error" for those), else
/// the error with its cause.
#[cfg(feature = "postgres")]
fn pg_message(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => db.message().to_string(),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

#[cfg(feature = "mysql")]
async fn mysql_keys(url: &url::Url, sql: &str, shown: &str) -> Result<(Vec<String>, usize)> {
    use mysql_async::Value;
    use mysql_async::prelude::Queryable;
    let mut base = url.clone();
    let _ = base.set_scheme("mysql");
    let mut conn = ferry_mysql::connect::open(base.as_str())
        .await
        .map_err(|e| e.context(format!("manifest database {shown}")))?;
    // The text protocol returns every value as text, whatever its type.
    // Read-only like every ferry source: a manifest query cannot change the database.
    let rows: std::result::Result<Vec<mysql_async::Row>, _> =
        match conn.query_drop("SET SESSION TRANSACTION READ ONLY").await {
            Ok(()) => conn.query(sql).await,
            Err(e) => Err(e),
        };
    let _ = conn.disconnect().await;
    let rows = rows.map_err(|e| Error::input(format!("manifest query failed on {shown}: {e}")))?;
    let (mut keys, mut nulls) = (Vec::new(), 0);
    for row in rows {
        match row.as_ref(0) {
            Some(Value::Bytes(b)) if !b.is_empty() => {
                keys.push(String::from_utf8_lossy(b).into_owned());
            }
            Some(Value::NULL | Value::Bytes(_)) | None => nulls += 1,
            Some(other) => keys.push(other.as_sql(true).trim_matches('\'').to_string()),
        }
    }
    Ok((keys, nulls))
}
