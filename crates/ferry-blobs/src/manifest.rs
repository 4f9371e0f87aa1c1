//! The manifest: which files a run covers. Either a full listing of the source, a fixed key
//! list, or the keys a SQL query returns from the application's database (the first column of
//! every row, as text), asked through the database's backend (`Source::query_keys`, read-only):
//! this crate knows no database client.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use ferry_core::connector::Source;
use ferry_core::error::{Error, Result};
use futures_util::TryStreamExt;
use opendal::Operator;

use crate::store::{Store, one_line};

/// Which files a run covers.
#[derive(Clone)]
pub enum Manifest {
    /// Every file under the source.
    Listing,
    /// These keys (relative to the source root).
    Keys(Vec<String>),
    /// The first column of each row `sql` returns from `db`, a database opened read-only by the
    /// caller (`ferry::open_query_source`).
    Sql { db: Arc<dyn Source>, sql: String },
}

impl std::fmt::Debug for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Manifest::Listing => f.write_str("Listing"),
            Manifest::Keys(keys) => f.debug_tuple("Keys").field(&keys.len()).finish(),
            Manifest::Sql { db, sql } => f
                .debug_struct("Sql")
                .field("db", &db.locator().redacted())
                .field("sql", sql)
                .finish(),
        }
    }
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
                let (keys, nulls) = query_keys(db.as_ref(), sql).await?;
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
async fn query_keys(db: &dyn Source, sql: &str) -> Result<(Vec<String>, usize)> {
    let rows = db.query_keys(sql).await.map_err(|e| {
        Error::input(format!(
            "manifest query failed on {}: {}",
            db.locator().redacted(),
            e.message()
        ))
    })?;
    let total = rows.len();
    let keys: Vec<String> = rows
        .into_iter()
        .flatten()
        .filter(|k| !k.is_empty())
        .collect();
    let nulls = total - keys.len();
    Ok((keys, nulls))
}

/// The keys `manifest` names at `store` (a listing, fixed keys or a query), in a stable order,
/// and the warnings resolving them gave: what `ferry cutover` samples and counts.
///
/// # Errors
/// Input errors when the store cannot be opened or listed, or the query fails.
pub async fn keys(store: &Store, manifest: &Manifest) -> Result<(Vec<String>, Vec<String>)> {
    let op = crate::copy::open_source(store).await?;
    let resolved = manifest.resolve(store, &op).await?;
    Ok((resolved.keys, resolved.warnings))
}
