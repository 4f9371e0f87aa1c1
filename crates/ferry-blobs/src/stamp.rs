//! What ferry records on an object it uploads (the source's size and modification time, and
//! the content hash when it is known before the upload starts), and the rerun decision made
//! from it: skip when size and time still match, hash only the source when they do not, and
//! never download an object to decide.
//!
//! Why metadata on the object and not a local state file: the object store is the one place
//! that is still right after another machine, a wiped work folder or a partial rerun; an
//! object overwritten by anything else loses ferry's metadata with its old content, so a stale
//! record can never vouch for new bytes.

use std::path::Path;

use opendal::{Metadata, Operator};

use crate::transfer::stat_file;

/// User-metadata keys (S3 sends them as `x-amz-meta-ferry-…`).
const HASH: &str = "ferry-blake3";
const SIZE: &str = "ferry-size";
const MTIME: &str = "ferry-mtime";

/// The source's identity of one file at the time it is read: its size and modification time
/// as text (nanoseconds since the epoch for a local file, the object's Last-Modified for an
/// object store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub size: u64,
    pub mtime: String,
}

/// What a target object says about itself, when ferry uploaded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub stamp: Stamp,
    /// BLAKE3 of the content, hex; absent when the source was not local (not hashed up front).
    pub hash: Option<String>,
}

impl Recorded {
    /// The user metadata to upload with the object.
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        let mut m = vec![
            (SIZE.to_string(), self.stamp.size.to_string()),
            (MTIME.to_string(), self.stamp.mtime.clone()),
        ];
        if let Some(h) = &self.hash {
            m.push((HASH.to_string(), h.clone()));
        }
        m
    }

    /// Reads the record back from an object's metadata (`None` when ferry did not write it).
    pub fn from_metadata(meta: &Metadata) -> Option<Recorded> {
        let user = meta.user_metadata()?;
        let size = user.get(SIZE)?.parse().ok()?;
        // A record whose size is not the object's is not about this object.
        if size != meta.content_length() {
            return None;
        }
        Some(Recorded {
            stamp: Stamp {
                size,
                mtime: user.get(MTIME)?.to_string(),
            },
            hash: user.get(HASH).map(str::to_string),
        })
    }
}

/// The record on the target object `key`, if it exists and ferry wrote one.
pub(crate) async fn recorded(op: &Operator, key: &str) -> opendal::Result<Option<Recorded>> {
    Ok(stat_file(op, key)
        .await?
        .and_then(|m| Recorded::from_metadata(&m)))
}

/// The stamp of a local file.
pub(crate) fn local_stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    let nanos = m
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    Ok(Stamp {
        size: m.len(),
        mtime: nanos.to_string(),
    })
}

/// The stamp of `key` on a source: the file system's when local, the object's otherwise.
/// `None` when the file does not exist.
pub(crate) async fn source_stamp(
    op: &Operator,
    root: Option<&std::path::PathBuf>,
    key: &str,
) -> Result<Option<Stamp>, String> {
    if let Some(root) = root {
        let path = root.join(key);
        return match tokio::task::spawn_blocking(move || local_stamp(&path)).await {
            Ok(Ok(s)) => Ok(Some(s)),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
    }
    let meta = stat_file(op, key)
        .await
        .map_err(|e| crate::store::one_line(&e))?;
    Ok(meta.map(|m| Stamp {
        size: m.content_length(),
        mtime: m.last_modified().map(|t| t.to_string()).unwrap_or_default(),
    }))
}

/// Whether objects written to `op` can carry ferry's record.
pub(crate) fn can_record(op: &Operator) -> bool {
    op.info().capability().write_with_user_metadata
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_stamp_moves_with_the_file() {
        let dir = std::env::temp_dir().join(format!("ferry-stamp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.bin");
        std::fs::write(&f, b"one").unwrap();
        let first = local_stamp(&f).unwrap();
        assert_eq!(first.size, 3);
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_ne!(local_stamp(&f).unwrap(), first);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
