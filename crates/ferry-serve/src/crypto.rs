//! The master key (a file of 64 hex characters, or `FERRY_MASTER_KEY`) and the authenticated
//! encryption (AES-256-GCM, a random 96-bit nonce per record) of job request bodies, which hold
//! source and target credentials.

use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};

use crate::error::{Error, Result};

const NONCE_LEN: usize = 12;

/// The loaded master key. Debug output never shows it.
#[derive(Clone)]
pub struct MasterKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

/// Where the key came from, for the start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env,
    File(PathBuf),
    Created(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env => f.write_str("FERRY_MASTER_KEY"),
            KeySource::File(p) => write!(f, "{}", p.display()),
            KeySource::Created(p) => write!(f, "{} (created)", p.display()),
        }
    }
}

impl MasterKey {
    /// Parses 64 hex characters (surrounding whitespace allowed, as `openssl rand -hex 32`
    /// writes a newline).
    ///
    /// # Errors
    /// When the text is not exactly 32 bytes of hex; the message never repeats the text.
    pub fn from_hex(text: &str, origin: &str) -> Result<Self> {
        let text = text.trim();
        let bytes = hex::decode(text).ok().filter(|b| b.len() == 32).ok_or_else(|| {
            Error::new(format!(
                "the master key in {origin} is malformed: it must be 64 hex characters (32 bytes), as `openssl rand -hex 32` prints"
            ))
        })?;
        Ok(Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
        })
    }

    /// Loads the key: the named file (created with a new random key, mode 0600, when it does
    /// not exist), else `FERRY_MASTER_KEY`, else the default file (created likewise).
    ///
    /// # Errors
    /// A malformed key, or a key file that cannot be read or created.
    pub fn load(file: Option<&Path>) -> Result<(Self, KeySource)> {
        if file.is_none()
            && let Ok(text) = std::env::var("FERRY_MASTER_KEY")
        {
            return Ok((Self::from_hex(&text, "FERRY_MASTER_KEY")?, KeySource::Env));
        }
        let path = file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_KEY_FILE));
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((
                Self::from_hex(&text, &path.display().to_string())?,
                KeySource::File(path),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let hex_key = hex::encode(random_bytes::<32>()?);
                write_private(&path, &format!("{hex_key}\n"))?;
                Ok((
                    Self::from_hex(&hex_key, &path.display().to_string())?,
                    KeySource::Created(path),
                ))
            }
            Err(e) => Err(Error::new(format!(
                "cannot read the master key file {}: {e}",
                path.display()
            ))),
        }
    }

    /// Encrypts `plain`: nonce followed by ciphertext and tag.
    ///
    /// # Errors
    /// Only when the system's random source fails.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>> {
        let nonce = random_bytes::<NONCE_LEN>()?;
        let mut out = nonce.to_vec();
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .map_err(|_| Error::new("encryption failed"))?;
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`MasterKey::seal`] wrote.
    ///
    /// # Errors
    /// When the record was sealed under another key (or altered).
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::new(
                "an encrypted record in the job store is truncated",
            ));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.cipher.decrypt(Nonce::from_slice(nonce), body).map_err(|_| {
            Error::new(
                "cannot decrypt data in the job store: the master key differs from the one it was encrypted with (use the original --master-key-file or FERRY_MASTER_KEY)",
            )
        })
    }
}

/// `N` bytes from the operating system's random source.
///
/// # Errors
/// When the operating system cannot provide randomness.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| Error::new(format!("no system randomness: {e}")))?;
    Ok(buf)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        Error::new(format!(
            "cannot create the master key file {}: {e}",
            path.display()
        ))
    })?;
    file.write_all(text.as_bytes())
        .map_err(|e| Error::new(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_wrong_key_is_named() {
        let a = MasterKey::from_hex(&"11".repeat(32), "test").unwrap();
        let b = MasterKey::from_hex(&"22".repeat(32), "test").unwrap();
        let sealed = a.seal(b"secret body").unwrap();
        assert_ne!(a.seal(b"secret body").unwrap(), sealed, "nonce is random");
        assert_eq!(a.open(&sealed).unwrap(), b"secret body");
        let err = b.open(&sealed).unwrap_err().to_string();
        assert!(err.contains("master key differs"), "{err}");
    }

    #[test]
    fn malformed_key_is_one_clear_line_without_the_key() {
        let err = MasterKey::from_hex("abcd-not-hex", "FERRY_MASTER_KEY")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("64 hex characters") && !err.contains("abcd"),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/master.key");
        let (_, source) = MasterKey::load(Some(&path)).unwrap();
        assert_eq!(source, KeySource::Created(path.clone()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (_, again) = MasterKey::load(Some(&path)).unwrap();
        assert_eq!(again, KeySource::File(path));
    }
}
