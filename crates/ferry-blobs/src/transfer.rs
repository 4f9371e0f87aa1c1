//! One file at a time: stat, streaming content hash, and the streaming copy (multipart for large
//! objects). Memory per transfer is bounded by the chunk sizes, never by the file size.

use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use opendal::{ErrorKind, Operator};

use crate::store::Kind;
use crate::{BlobEvent, BlobObserver, Outcome};

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

/// Size of the file at `key`, or `None` when it does not exist.
pub(crate) async fn size_of(op: &Operator, key: &str) -> opendal::Result<Option<u64>> {
    match op.stat(key).await {
        Ok(m) if m.is_file() => Ok(Some(m.content_length())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
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
/// moved. `progress` is called with each chunk's length.
pub(crate) async fn copy_one(
    src: &Operator,
    dst: &Operator,
    target: Side,
    key: &str,
    progress: &(dyn Fn(u64) + Sync),
) -> opendal::Result<(blake3::Hash, u64)> {
    let mut stream = src.reader(key).await?.into_bytes_stream(..).await?;
    let mut writer = match target.kind {
        // The local file system writes whatever chunk arrives; no buffering needed.
        Kind::Local => dst.writer(key).await?,
        // Object stores: multipart upload in PART-sized parts, two in flight.
        Kind::S3 | Kind::Other => {
            dst.writer_with(key)
                .chunk(PART)
                .concurrent(PART_CONCURRENCY)
                .await?
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

/// Read buffer for hashing local files: few syscalls, trivial memory per worker.
const LOCAL_BUF: usize = 1024 * 1024;

/// Local folder to local folder, one file, blocking: stat both, skip when the same size and
/// bytes, else let the kernel copy (`std::fs::copy` is `copy_file_range` on Linux, as `cp`),
/// then compare both files byte for byte (or check the size). Returns the outcome, size and bytes moved.
pub(crate) fn local_one(
    src: &Path,
    dst: &Path,
    dry_run: bool,
    verify: bool,
    progress: &dyn BlobObserver,
) -> Result<(Outcome, u64, u64), String> {
    let size = match std::fs::metadata(src) {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => return Err("missing in the source (not a file)".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("missing in the source".into());
        }
        Err(e) => return Err(format!("reading the source: {e}")),
    };
    if let Ok(m) = std::fs::metadata(dst)
        && m.is_file()
        && m.len() == size
        && same_content(src, dst)?
    {
        return Ok((Outcome::Skipped, size, 0));
    }
    if dry_run {
        return Ok((Outcome::WouldCopy, size, 0));
    }
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("at the target: {e}"))?;
    }
    let moved = std::fs::copy(src, dst).map_err(|e| e.to_string())?;
    progress.event(&BlobEvent::Bytes(moved));
    if moved != size {
        return Err(format!(
            "the source changed during the copy ({size} bytes listed, {moved} copied); rerun to copy it again"
        ));
    }
    if verify {
        if !same_content(src, dst)? {
            return Err(
                "read back from the target it differs from the source (content mismatch); rerun to copy it again"
                    .into(),
            );
        }
    } else if std::fs::metadata(dst)
        .map(|m| m.len())
        .map_err(|e| e.to_string())?
        != moved
    {
        return Err("the target's size differs after the copy".into());
    }
    Ok((Outcome::Copied, size, moved))
}

/// Whether two local files hold the same bytes, compared directly: with both files at hand a
/// byte comparison is both stronger than comparing hashes and several times faster (memcmp
/// instead of two hash passes), which keeps a verified local copy near `cp`'s speed.
fn same_content(src: &Path, dst: &Path) -> Result<bool, String> {
    use std::io::Read;
    let open = |p: &Path, side: &str| std::fs::File::open(p).map_err(|e| format!("{side}: {e}"));
    let (mut a, mut b) = (open(src, "reading the source")?, open(dst, "reading back")?);
    let (mut x, mut y) = (vec![0u8; LOCAL_BUF], vec![0u8; LOCAL_BUF]);
    loop {
        let got = fill(&mut a, &mut x).map_err(|e| format!("reading the source: {e}"))?;
        let other = fill(&mut b, &mut y).map_err(|e| format!("reading back: {e}"))?;
        if got != other || x[..got] != y[..other] {
            return Ok(false);
        }
        if got == 0 {
            return Ok(true);
        }
    }

    /// Reads until the buffer is full or the file ends, so both sides compare equal lengths.
    fn fill(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

fn hash_file(path: &Path) -> std::io::Result<(blake3::Hash, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; LOCAL_BUF];
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

/// BLAKE3 and length of a local file, read on the blocking pool in 1 MiB reads.
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
