//! One file at a time: stat, streaming content hash, and the streaming copy (multipart for large
//! objects). Memory per transfer is bounded by the chunk sizes, never by the file size.

use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use opendal::{ErrorKind, Metadata, Operator};

use crate::store::Kind;

/// Upload part size for object stores: above S3's 5 MiB minimum, few requests per large file.
const PART: usize = 8 * 1024 * 1024;
/// Parts of one file uploaded at once; with the part buffered while hashing, a transfer holds
/// at most about (PART_CONCURRENCY + 1) × PART.
const PART_CONCURRENCY: usize = 2;

/// How one side is tuned.
#[derive(Clone, Copy)]
pub(crate) struct Side {
    pub kind: Kind,
}

/// Metadata of the file at `key`, or `None` when there is no file there.
pub(crate) async fn stat_file(op: &Operator, key: &str) -> opendal::Result<Option<Metadata>> {
    match op.stat(key).await {
        Ok(m) if m.is_file() => Ok(Some(m)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Size of the file at `key`, or `None` when it does not exist.
pub(crate) async fn size_of(op: &Operator, key: &str) -> opendal::Result<Option<u64>> {
    Ok(stat_file(op, key).await?.map(|m| m.content_length()))
}

/// BLAKE3 of the content at `key` and its length, read as a stream.
pub(crate) async fn hash(op: &Operator, key: &str) -> opendal::Result<(blake3::Hash, u64)> {
    let mut stream = op.reader(key).await?.into_bytes_stream(..).await?;
    let mut hasher = blake3::Hasher::new();
    let mut n = 0u64;
    while let Some(chunk) = stream.try_next().await.map_err(from_io)? {
        n += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((hasher.finalize(), n))
}

/// Streams `key` from `src` to `dst`, hashing on the way; returns the hash and the bytes
/// moved. `progress` is called with each chunk's length; `metadata` is stored with an object
/// (ferry's record, see `stamp`).
pub(crate) async fn copy_one(
    src: &Operator,
    dst: &Operator,
    target: Side,
    key: &str,
    metadata: Option<Vec<(String, String)>>,
    progress: &(dyn Fn(u64) + Sync),
) -> opendal::Result<(blake3::Hash, u64)> {
    let mut stream = src.reader(key).await?.into_bytes_stream(..).await?;
    let mut writer = match target.kind {
        // The local file system writes whatever chunk arrives; no buffering needed.
        Kind::Local => dst.writer(key).await?,
        // Object stores: multipart upload in PART-sized parts, two in flight.
        Kind::S3 | Kind::Other => {
            let w = dst
                .writer_with(key)
                .chunk(PART)
                .concurrent(PART_CONCURRENCY);
            match metadata {
                Some(m) => w.user_metadata(m).await?,
                None => w.await?,
            }
        }
    };
    let mut hasher = blake3::Hasher::new();
    let mut n = 0u64;
    let result: opendal::Result<()> = async {
        while let Some(chunk) = stream.try_next().await.map_err(from_io)? {
            let len = chunk.len() as u64;
            // One thread of BLAKE3 runs at GB/s: hashing on the way costs no extra read.
            hasher.update(&chunk);
            writer.write(chunk).await?;
            n += len;
            progress(len);
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            writer.close().await?;
            Ok((hasher.finalize(), n))
        }
        Err(e) => {
            // Leave no half-uploaded multipart parts behind.
            let _ = writer.abort().await;
            Err(e)
        }
    }
}

fn hash_file(path: &Path) -> std::io::Result<(blake3::Hash, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; crate::local::CHUNK];
    let mut hasher = blake3::Hasher::new();
    let mut n = 0u64;
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(got) => {
                hasher.update(&buf[..got]);
                n += got as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((hasher.finalize(), n))
}

/// BLAKE3 and length of a local file, read on the blocking pool.
pub(crate) async fn hash_local(path: PathBuf) -> std::io::Result<(blake3::Hash, u64)> {
    tokio::task::spawn_blocking(move || hash_file(&path))
        .await
        .map_err(std::io::Error::other)?
}

/// Hash of `key` on one side: straight from disk when the side is a local folder.
pub(crate) async fn hash_side(
    op: &Operator,
    root: Option<&PathBuf>,
    key: &str,
) -> Result<(blake3::Hash, u64), String> {
    match root {
        Some(r) => hash_local(r.join(key)).await.map_err(|e| e.to_string()),
        None => hash(op, key).await.map_err(|e| crate::store::one_line(&e)),
    }
}

fn from_io(e: std::io::Error) -> opendal::Error {
    // OpenDAL's byte stream wraps its own errors in io::Error; unwrap them when possible.
    match e.downcast::<opendal::Error>() {
        Ok(inner) => inner,
        Err(e) => opendal::Error::new(ErrorKind::Unexpected, e.to_string()),
    }
}
