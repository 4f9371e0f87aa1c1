//! Storage locators (`file:///dir`, `s3://bucket/prefix?endpoint=…`, and the other OpenDAL
//! services behind Cargo features) turned into OpenDAL operators, and printed with every
//! credential hidden.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use ferry_core::error::{Error, Result};
use opendal::Operator;

/// Query parameters whose values are never printed.
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "key", "token", "password", "credential", "sas"]
        .iter()
        .any(|s| k.contains(s))
}

/// What kind of storage a locator names; decides the defaults (workers, chunk sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Local,
    S3,
    /// Another OpenDAL service (remote, so tuned like S3).
    Other,
}

/// A parsed storage locator. `Display` hides credentials.
#[derive(Clone)]
pub struct Store {
    scheme: String,
    /// Local folder (file:), bucket or container (remote).
    place: String,
    /// Prefix inside the bucket (remote), empty for local.
    prefix: String,
    params: BTreeMap<String, String>,
    /// Secret values to scrub from any error text a backend returns.
    secrets: Vec<String>,
}

impl Store {
    /// Parses `file:///abs/dir`, `file://rel/dir`, a bare path, `s3://bucket/prefix?…`, or
    /// `<service>://bucket/prefix?key=value…` for other OpenDAL services.
    ///
    /// # Errors
    /// An input error when the text is not a storage locator this build understands.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let Some((scheme, rest)) = text.split_once("://") else {
            if text.starts_with('/') || text.starts_with('.') {
                return Ok(Self::local(text));
            }
            return Err(Error::input(format!(
                "'{text}' is not a storage locator: write file:///path/to/dir or s3://bucket/prefix?endpoint=…&region=…"
            )));
        };
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "file" || scheme == "fs" {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(Error::input(
                    "file locator has no path: write file:///path/to/dir",
                ));
            }
            return Ok(Self::local(&percent_decode(path)));
        }
        let url = url::Url::parse(text).map_err(|e| {
            Error::input(format!("'{scheme}://…' is not a valid storage URL ({e})"))
        })?;
        let place = percent_decode(url.host_str().unwrap_or_default());
        if place.is_empty() {
            return Err(Error::input(format!(
                "{scheme}:// locator has no bucket: write {scheme}://bucket/prefix"
            )));
        }
        let prefix = percent_decode(url.path().trim_matches('/'));
        let params: BTreeMap<String, String> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut secrets: Vec<String> = params
            .iter()
            .filter(|(k, v)| is_secret(k) && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect();
        if let Some(p) = url.password() {
            secrets.push(p.to_string());
        }
        if scheme == "s3" {
            for var in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
                if let Ok(v) = std::env::var(var)
                    && !v.is_empty()
                {
                    secrets.push(v);
                }
            }
        } else if !known_service(&scheme) {
            return Err(Error::input(format!(
                "unknown storage scheme '{scheme}:': this build reads and writes file: and s3:{}",
                extra_services()
            )));
        }
        Ok(Self {
            scheme,
            place,
            prefix,
            params,
            secrets,
        })
    }

    fn local(path: &str) -> Self {
        Self {
            scheme: "file".into(),
            place: path.to_string(),
            prefix: String::new(),
            params: BTreeMap::new(),
            secrets: Vec::new(),
        }
    }

    /// The folder or prefix `sub` inside this place (`sub` is a relative key prefix such as
    /// `web-videos/private/`): where a profile's files from another store land.
    pub fn join(&self, sub: &str) -> Store {
        let sub = sub.trim_matches('/');
        if sub.is_empty() {
            return self.clone();
        }
        let mut out = self.clone();
        if self.kind() == Kind::Local {
            out.place = PathBuf::from(&self.place)
                .join(sub)
                .to_string_lossy()
                .into_owned();
        } else if self.prefix.is_empty() {
            out.prefix = sub.to_string();
        } else {
            out.prefix = format!("{}/{sub}", self.prefix);
        }
        out
    }

    pub fn kind(&self) -> Kind {
        match self.scheme.as_str() {
            "file" => Kind::Local,
            "s3" => Kind::S3,
            _ => Kind::Other,
        }
    }

    /// The local folder, for `file:` locators.
    pub fn local_path(&self) -> Option<PathBuf> {
        (self.kind() == Kind::Local).then(|| PathBuf::from(&self.place))
    }

    /// Whether both locators name the same place or one lies inside the other: the same local
    /// folder tree, or the same bucket on the same endpoint with nested prefixes. A copy between
    /// such places would read what it writes, and `--delete-extra` could delete source files.
    pub fn overlaps(&self, other: &Store) -> bool {
        if self.scheme != other.scheme {
            return false;
        }
        let nested = |a: &Path, b: &Path| a.starts_with(b) || b.starts_with(a);
        match (self.local_path(), other.local_path()) {
            (Some(a), Some(b)) => nested(&resolved(&a), &resolved(&b)),
            _ => {
                self.place == other.place
                    && self.params.get("endpoint") == other.params.get("endpoint")
                    && nested(Path::new(&self.prefix), Path::new(&other.prefix))
            }
        }
    }

    /// Fails (exit 2) when [`Store::overlaps`].
    ///
    /// # Errors
    /// An input error naming both places.
    pub fn check_apart(&self, target: &Store) -> Result<()> {
        if self.overlaps(target) {
            return Err(Error::input(format!(
                "the source {self} and the target {target} overlap (one is inside the other): pick a target outside the source"
            )));
        }
        Ok(())
    }

    /// Replaces every credential this locator knows of in `text` by `***` (backends sometimes
    /// echo request details in their errors).
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }

    /// Builds the OpenDAL operator. `create` allows a local target folder to be created (a dry
    /// run passes false: a missing folder then reads as empty and nothing is created).
    ///
    /// # Errors
    /// An input error when the storage cannot be configured (a missing local source folder,
    /// an option the service rejects).
    pub fn operator(&self, create: bool) -> Result<Operator> {
        // Registers the compiled-in services and the HTTP transport (once per process).
        opendal::install_default();
        let op = match self.kind() {
            Kind::Local => {
                let path = PathBuf::from(&self.place);
                if !path.exists() {
                    if !create {
                        // Nothing there yet: an empty in-memory store, so nothing is created.
                        return Operator::new(opendal::services::Memory::default())
                            .map_err(|e| Error::input(format!("{self}: {e}")));
                    }
                    std::fs::create_dir_all(&path).map_err(|e| {
                        Error::input(format!("cannot create the folder {}: {e}", path.display()))
                    })?;
                } else if !path.is_dir() {
                    return Err(Error::input(format!(
                        "{} is not a folder: file: locators name a folder",
                        path.display()
                    )));
                }
                let root = path.canonicalize().map_err(|e| {
                    Error::input(format!("cannot open the folder {}: {e}", path.display()))
                })?;
                Operator::new(opendal::services::Fs::default().root(&root.to_string_lossy()))
            }
            Kind::S3 => Operator::new(self.s3_builder()),
            Kind::Other => {
                let mut cfg: Vec<(String, String)> = self
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let place_key = match self.scheme.as_str() {
                    "azblob" => "container",
                    "webdav" | "sftp" | "http" => "endpoint",
                    _ => "bucket",
                };
                cfg.push((place_key.into(), self.place.clone()));
                cfg.push(("root".into(), format!("/{}", self.prefix)));
                Operator::via_iter(&self.scheme, cfg)
            }
        }
        .map_err(|e| Error::input(self.scrub(&format!("{self}: {}", one_line(&e)))))?;
        // Transient failures (an S3 server's 500/503 while it grows a volume, a reset
        // connection) are retried three times, 1, 2 and 4 s apart as OpenDAL's default does,
        // but quietly: the default logs every attempt at warn level with the whole request
        // context (hundreds of lines for an unreachable endpoint). Retries are logged at debug;
        // the failure that remains is one line.
        let secrets = self.secrets.clone();
        let retry = opendal::layers::RetryLayer::new()
            .with_jitter()
            .with_min_delay(std::time::Duration::from_secs(1))
            .with_max_delay(std::time::Duration::from_secs(4))
            .with_max_times(3)
            .with_notify(move |event: opendal::layers::RetryEvent<'_>| {
                let mut why = one_line(event.err);
                for s in &secrets {
                    why = why.replace(s.as_str(), "***");
                }
                tracing::debug!(
                    "retrying {:?} (attempt {}) in {:.1}s: {why}",
                    event.op,
                    event.attempt,
                    event.retry_after.as_secs_f64()
                );
            });
        Ok(op.layer(retry))
    }

    /// Whether uploads carry a CRC32C of every part (`x-amz-checksum-crc32c`), which the
    /// server checks before it accepts the part: S3 unless the URL says `checksum=none` (for
    /// a server that does not know the header).
    pub fn server_checks(&self) -> bool {
        self.kind() == Kind::S3 && self.params.get("checksum").is_none_or(|v| v != "none")
    }

    /// S3 (and compatible servers): options from the URL's query, else the standard AWS
    /// environment variables. Path-style addressing unless `virtual_host_style=true`.
    fn s3_builder(&self) -> opendal::services::S3 {
        let get = |names: &[&str], envs: &[&str]| -> Option<String> {
            names
                .iter()
                .find_map(|n| self.params.get(*n).cloned())
                .or_else(|| envs.iter().find_map(|e| std::env::var(e).ok()))
                .filter(|v| !v.is_empty())
        };
        let mut b = opendal::services::S3::default()
            .bucket(&self.place)
            .root(&format!("/{}", self.prefix));
        if self.server_checks() {
            b = b.checksum_algorithm("crc32c");
        }
        if let Some(v) = get(&["endpoint"], &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]) {
            b = b.endpoint(&v);
        }
        b = b.region(
            &get(&["region"], &["AWS_REGION", "AWS_DEFAULT_REGION"])
                .unwrap_or_else(|| "us-east-1".into()),
        );
        let key = get(
            &["access_key_id", "access_key", "aws_access_key_id"],
            &["AWS_ACCESS_KEY_ID"],
        );
        let secret = get(
            &["secret_access_key", "secret_key", "aws_secret_access_key"],
            &["AWS_SECRET_ACCESS_KEY"],
        );
        if let (Some(k), Some(s)) = (key, secret) {
            // Explicit keys: do not consult profiles or the EC2 metadata service (which
            // hangs off-cloud).
            b = b
                .access_key_id(&k)
                .secret_access_key(&s)
                .disable_config_load()
                .disable_ec2_metadata();
            if let Some(t) = get(&["session_token"], &["AWS_SESSION_TOKEN"]) {
                b = b.session_token(&t);
            }
        }
        if self
            .params
            .get("virtual_host_style")
            .is_some_and(|v| v == "true")
        {
            b = b.enable_virtual_host_style();
        }
        b
    }
}

/// `path` made absolute with symbolic links resolved, as far as it exists (a target folder
/// may not exist yet).
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let parts: Vec<Component> = absolute.components().collect();
    for cut in (1..=parts.len()).rev() {
        if let Ok(mut real) = parts[..cut].iter().collect::<PathBuf>().canonicalize() {
            for part in &parts[cut..] {
                match part {
                    Component::ParentDir => {
                        real.pop();
                    }
                    Component::Normal(name) => real.push(name),
                    _ => {}
                }
            }
            return real;
        }
    }
    absolute
}

/// An OpenDAL error as one short line: an S3 error by its status and code (what to do about
/// refused credentials or a missing bucket), anything else by its kind, message and innermost
/// cause ("Connection refused"). The request context (URL, every response header) is left out:
/// it made a 900-character line and says nothing an operator acts on.
pub(crate) fn one_line(e: &opendal::Error) -> String {
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let message = flat(e.message());
    let text = e.to_string();
    if let Some(code) = s3_code(e) {
        let status = text
            .find("status: ")
            .map(|i| {
                text[i + 8..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .filter(|s| !s.is_empty())
            .map(|s| format!("{s} "))
            .unwrap_or_default();
        let said = quoted_field(&message, "message").unwrap_or_default();
        return match code.as_str() {
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "InvalidToken"
            | "ExpiredToken"
            | "InvalidSecurity" => format!(
                "S3 refused the credentials ({status}{code}): check access_key_id and secret_access_key"
            ),
            "AccessDenied" => format!(
                "S3 denied access ({status}{code}): check that the credentials may use this bucket"
            ),
            "NoSuchBucket" => {
                format!("the bucket does not exist ({status}{code}): create it or check its name")
            }
            _ => format!("S3 said {status}{code}: {said}"),
        };
    }
    let head = text
        .split([',', '='])
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut line = if message.is_empty() {
        head
    } else {
        format!("{head}: {message}")
    };
    let mut cause = std::error::Error::source(e);
    let mut innermost = None;
    while let Some(c) = cause {
        innermost = Some(c);
        cause = c.source();
    }
    if let Some(c) = innermost {
        line.push_str(&format!(" ({})", flat(&c.to_string())));
    }
    line
}

/// The error code of an S3 error response (`InvalidAccessKeyId`, `NoSuchBucket`...).
pub(crate) fn s3_code(e: &opendal::Error) -> Option<String> {
    quoted_field(e.message(), "code")
}

/// `name: "value"` in a Rust `Debug` rendering (how OpenDAL shows an S3 error body).
fn quoted_field(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("{name}: \""))? + name.len() + 3;
    let end = text[start..].find('"')?;
    Some(text[start..start + end].to_string())
}

/// The optional OpenDAL services compiled into this build.
fn built_services() -> Vec<&'static str> {
    [
        ("gcs", cfg!(feature = "gcs")),
        ("azblob", cfg!(feature = "azblob")),
        ("webdav", cfg!(feature = "webdav")),
        ("sftp", cfg!(feature = "sftp")),
        ("oss", cfg!(feature = "oss")),
        ("b2", cfg!(feature = "b2")),
    ]
    .into_iter()
    .filter_map(|(service, built)| built.then_some(service))
    .collect()
}

fn known_service(scheme: &str) -> bool {
    built_services().contains(&scheme)
}

fn extra_services() -> String {
    let built = built_services();
    if built.is_empty() {
        " (other OpenDAL services need ferry built with their Cargo feature, e.g. --features gcs)"
            .into()
    } else {
        format!(" and {}", built.join(":, ") + ":")
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("p={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_string())
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind() == Kind::Local {
            return write!(f, "file://{}", self.place);
        }
        write!(f, "{}://{}", self.scheme, self.place)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        let mut sep = '?';
        for (k, v) in &self.params {
            let v = if is_secret(k) { "***" } else { v.as_str() };
            write!(f, "{sep}{k}={v}")?;
            sep = '&';
        }
        Ok(())
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_hides_credentials() {
        let s = Store::parse(
            "s3://media/files/x?endpoint=http://127.0.0.1:8333&region=us-east-1&access_key_id=AK&secret_access_key=S3CRET",
        )
        .unwrap();
        assert_eq!(s.kind(), Kind::S3);
        assert_eq!(s.place, "media");
        assert_eq!(s.prefix, "files/x");
        let shown = s.to_string();
        assert!(!shown.contains("S3CRET"), "{shown}");
        assert!(!format!("{s:?}").contains("S3CRET"));
        assert!(shown.contains("endpoint=http://127.0.0.1:8333"), "{shown}");
        assert_eq!(s.scrub("bad signature for S3CRET"), "bad signature for ***");
    }

    #[test]
    fn join_names_a_sub_place() {
        let s = Store::parse("s3://media/files?endpoint=http://127.0.0.1:1").unwrap();
        assert_eq!(
            s.join("web-videos/private/").prefix,
            "files/web-videos/private"
        );
        assert_eq!(s.join("").prefix, "files");
        let b = Store::parse("s3://media?endpoint=http://127.0.0.1:1").unwrap();
        assert_eq!(b.join("/hls/").prefix, "hls");
        let l = Store::parse("file:///srv/new").unwrap();
        assert_eq!(
            l.join("web-videos/").local_path().unwrap(),
            PathBuf::from("/srv/new/web-videos")
        );
    }

    #[test]
    fn local_forms() {
        for t in ["file:///var/lib/app files", "/var/lib/app files"] {
            let s = Store::parse(t).unwrap();
            assert_eq!(s.local_path().unwrap(), PathBuf::from("/var/lib/app files"));
        }
        assert_eq!(
            Store::parse("file:///a%20b").unwrap().local_path().unwrap(),
            PathBuf::from("/a b")
        );
        assert!(Store::parse("ftp2://x").is_err());
        assert!(Store::parse("media").is_err());
        assert!(Store::parse("s3:///prefix").is_err());
    }

    #[test]
    fn overlapping_places_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let local = |p: &str| Store::parse(&format!("file://{d}/{p}")).unwrap();
        assert!(local("files").overlaps(&local("files")));
        assert!(local("files").overlaps(&local("files/backup/new")));
        assert!(local("files/backup").overlaps(&local("files")));
        assert!(local("files/./x/..").overlaps(&local("files")));
        assert!(!local("files").overlaps(&local("files2")));
        assert!(!local("a").overlaps(&local("b")));
        std::fs::create_dir_all(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("alias")).unwrap();
        assert!(local("alias/x").overlaps(&local("real")));
        let s3 = |t: &str| Store::parse(t).unwrap();
        let e = "?endpoint=http://127.0.0.1:1";
        assert!(s3(&format!("s3://b/media{e}")).overlaps(&s3(&format!("s3://b/media/x{e}"))));
        assert!(s3(&format!("s3://b{e}")).overlaps(&s3(&format!("s3://b/media{e}"))));
        assert!(!s3(&format!("s3://b/media{e}")).overlaps(&s3(&format!("s3://b/media2{e}"))));
        assert!(!s3(&format!("s3://b/media{e}")).overlaps(&s3(&format!("s3://c/media{e}"))));
        assert!(!s3(&format!("s3://b/m{e}")).overlaps(&s3("s3://b/m?endpoint=http://other")));
        assert!(!local("b").overlaps(&s3(&format!("s3://b{e}"))));
        assert!(
            local("files")
                .check_apart(&local("files/x"))
                .unwrap_err()
                .to_string()
                .contains("overlap")
        );
    }
}
