//! Connections and their errors: each failure becomes one line that says what is wrong and
//! what to do, without the password; TLS as libpq's sslmode and sslrootcert ask. Also what a
//! connection reached: the database's identity and whether the server is a standby.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_core::connector::Identity;
use ferry_core::{Error, Locator, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, NoTls};

/// Where to connect, and which schema ferry reads or writes (`?schema=name` in the locator, or
/// `--schema-name`; default: the user's current schema, usually `public`).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The driver's URL: ferry's own parameters (schema, TLS) removed.
    pub url: String,
    pub schema: Option<String>,
    pub tls: Tls,
}

/// libpq's TLS parameters, which tokio-postgres does not know (beyond disable/prefer/require).
#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub mode: Mode,
    /// `sslrootcert`: a CA file, or `system` for the OS's roots.
    pub root_cert: Option<String>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// libpq's `sslmode` (without `allow`, which tries plain first and has no use ferry knows of).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    Disable,
    /// Encrypt when the server can, else plain (libpq's default).
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

pub fn endpoint(locator: &Locator) -> Result<Endpoint> {
    let mut url = crate::locator::url(locator)?.clone();
    let mut schema = None;
    let mut tls = Tls::default();
    ferry_core::locator::take_query(&mut url, |k, v| {
        match k {
            "schema" => schema = Some(v.to_string()),
            "sslmode" => {
                tls.mode = match v {
                    "disable" => Mode::Disable,
                    "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(Error::input(format!(
                            "sslmode={other} is not understood: use disable, prefer, require, verify-ca or verify-full"
                        )));
                    }
                }
            }
            "sslrootcert" => tls.root_cert = Some(v.to_string()),
            "sslcert" => tls.cert = Some(v.into()),
            "sslkey" => tls.key = Some(v.into()),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if tls.cert.is_some() != tls.key.is_some() {
        return Err(Error::input(
            "sslcert and sslkey go together: give both the client certificate and its key",
        ));
    }
    Ok(Endpoint {
        url: url.to_string(),
        schema,
        tls,
    })
}

/// Opens a plain session: TLS as the URL asks, the password from the URL or the environment
/// (`PGPASSWORD`, then `PGPASSFILE` or `~/.pgpass`). Every PostgreSQL connection ferry makes
/// (copies, profiles, manifests, the job store) goes through here.
pub async fn open(endpoint: &Endpoint) -> Result<Client> {
    let mut config: tokio_postgres::Config = endpoint
        .url
        .parse()
        .map_err(|e| Error::input(format!("bad PostgreSQL URL: {e}")))?;
    if config.get_password().is_none()
        && let Some(password) = crate::pgpass::password(&config)
    {
        config.password(password);
    }
    // PostgreSQL has no TLS on Unix sockets; libpq ignores sslmode there, and so does ferry.
    let unix = matches!(config.get_hosts().first(), Some(Host::Unix(_)));
    let mode = if unix {
        Mode::Disable
    } else {
        endpoint.tls.mode
    };
    config.ssl_mode(match mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    if mode == Mode::Disable {
        connect_with(&config, &endpoint.tls, NoTls).await
    } else {
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(client_config(&endpoint.tls)?);
        connect_with(&config, &endpoint.tls, tls).await
    }
}

/// Connects with `make` (plain or TLS) and drives the connection on its own task.
async fn connect_with<T>(config: &tokio_postgres::Config, tls: &Tls, make: T) -> Result<Client>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config
        .connect(make)
        .await
        .map_err(|e| connect_error(config, tls, &e))?;
    spawn(connection);
    Ok(client)
}

fn spawn<F>(connection: F)
where
    F: std::future::Future<Output = std::result::Result<(), tokio_postgres::Error>>
        + Send
        + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %error(&e), "PostgreSQL connection closed");
        }
    });
}

/// The rustls configuration for libpq's modes: prefer and require encrypt without checking the
/// certificate unless `sslrootcert` is given (then the chain is checked, as libpq does),
/// verify-ca checks the chain, verify-full the chain and the host name.
fn client_config(tls: &Tls) -> Result<rustls::ClientConfig> {
    let provider = ferry_core::tls::provider();
    let roots = match (&tls.root_cert, tls.mode) {
        (Some(r), _) => Some(root_store(r)?),
        (None, Mode::VerifyCa | Mode::VerifyFull) => {
            let mode = if tls.mode == Mode::VerifyCa {
                "verify-ca"
            } else {
                "verify-full"
            };
            return Err(Error::input(format!(
                "sslmode={mode} needs the CA to check against: add sslrootcert=/path/to/ca.pem (or sslrootcert=system for the system's CAs)"
            )));
        }
        (None, _) => None,
    };
    let webpki = match roots {
        None => None,
        Some(roots) => Some(
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| Error::input(format!("sslrootcert holds no usable CA: {e}")))?,
        ),
    };
    let verifier = Arc::new(Verifier {
        provider: provider.clone(),
        webpki,
        check_name: tls.mode == Mode::VerifyFull,
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::input(format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "sslcert")?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                Error::input(format!(
                    "sslkey {}: no private key read ({e}): give the client key in PEM form",
                    key.display()
                ))
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::input(format!(
                    "sslcert and sslkey do not make a client identity ({e}): check that the key belongs to the certificate"
                ))
            })
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

fn read_certs(path: &Path, param: &str) -> Result<Vec<CertificateDer<'static>>> {
    let bad = |why: String| {
        Error::input(format!(
            "{param} {}: {why}: give a PEM file of certificates",
            path.display()
        ))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(certs)
}

fn root_store(root_cert: &str) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    if root_cert == "system" {
        let found = rustls_native_certs::load_native_certs();
        store.add_parsable_certificates(found.certs);
        if store.is_empty() {
            return Err(Error::input(
                "sslrootcert=system found no CA certificates on this system: install the CA bundle (ca-certificates) or give sslrootcert=/path/to/ca.pem",
            ));
        }
    } else {
        for cert in read_certs(Path::new(root_cert), "sslrootcert")? {
            store.add(cert).map_err(|e| {
                Error::input(format!(
                    "sslrootcert {root_cert}: a certificate is not usable as a CA ({e})"
                ))
            })?;
        }
    }
    Ok(store)
}

/// libpq's certificate checks. Without `webpki` (prefer/require without sslrootcert) the
/// certificate is not checked: encryption against passive eavesdroppers only, as in libpq.
/// Without `check_name` (verify-ca, require with sslrootcert) the chain must lead to the CA
/// whatever name the certificate carries: webpki checks the chain before the name, so a name
/// error means the chain was good. The handshake signatures are always checked.
#[derive(Debug)]
struct Verifier {
    provider: Arc<rustls::crypto::CryptoProvider>,
    webpki: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    check_name: bool,
}

// Short names, so that the two signature checks rustls asks for read as the one-liners they are.
type Cert<'a> = CertificateDer<'a>;
type Dss = DigitallySignedStruct;
type Signed = std::result::Result<HandshakeSignatureValid, rustls::Error>;

impl Verifier {
    fn algorithms(&self) -> &rustls::crypto::WebPkiSupportedAlgorithms {
        &self.provider.signature_verification_algorithms
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(&self, msg: &[u8], cert: &Cert<'_>, dss: &Dss) -> Signed {
        rustls::crypto::verify_tls12_signature(msg, cert, dss, self.algorithms())
    }

    fn verify_tls13_signature(&self, msg: &[u8], cert: &Cert<'_>, dss: &Dss) -> Signed {
        rustls::crypto::verify_tls13_signature(msg, cert, dss, self.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Opens a connection; `read_only` sessions cannot write even by mistake.
pub async fn connect(endpoint: &Endpoint, read_only: bool) -> Result<Client> {
    let client = open(endpoint).await?;
    let setup = if read_only {
        "SET default_transaction_read_only = on; SET client_min_messages = warning"
    } else {
        // Commits are per batch; a crash loses at most the last batches of a run that is then
        // reported failed, so waiting for each WAL flush buys nothing.
        "SET synchronous_commit = off; SET client_min_messages = warning"
    };
    batch(&client, setup).await?;
    if let Some(schema) = &endpoint.schema {
        let exists: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                &[schema],
            )
            .await
            .map_err(|e| error(&e))?
            .get(0);
        if !exists {
            return Err(Error::input(format!(
                "PostgreSQL schema \"{schema}\" does not exist: check --schema-name (CREATE SCHEMA to make it)"
            )));
        }
        batch(
            &client,
            &format!("SET search_path = {}", crate::dialect::quote(schema)),
        )
        .await?;
    }
    Ok(client)
}

/// The cluster's `system_identifier` (from `pg_control_system()`, which PostgreSQL grants to
/// every user by default), the database's OID and the schema ferry reads or writes: copying
/// one schema into another of the same database is legitimate. Where `pg_control_system()` is
/// revoked (some hosted services) the cluster is named by its postmaster's start time (to the
/// microsecond), port and `cluster_name`, which every user may read and no two running servers
/// share.
///
/// # Errors
/// When the catalog queries fail.
pub async fn identity(client: &Client) -> Result<Identity> {
    let row = client
        .query_one(
            "SELECT d.oid::text, d.datname::text, coalesce(current_schema()::text, ''), \
                    pg_postmaster_start_time()::text, current_setting('port'), \
                    current_setting('cluster_name') \
             FROM pg_database d WHERE d.datname = current_database()",
            &[],
        )
        .await
        .map_err(|e| error(&e))?;
    let (oid, name, schema): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let (cluster, cluster_label) = match client
        .query_one(
            "SELECT system_identifier::text FROM pg_control_system()",
            &[],
        )
        .await
    {
        Ok(r) => {
            let id: String = r.get(0);
            (
                format!("system {id}"),
                format!("the PostgreSQL cluster with system identifier {id}"),
            )
        }
        Err(_) => {
            let (started, port, cluster_name): (String, String, String) =
                (row.get(3), row.get(4), row.get(5));
            (
                format!("started {started} port {port} cluster {cluster_name}"),
                format!("the PostgreSQL server on port {port} started at {started}"),
            )
        }
    };
    Ok(Identity::new(
        format!("postgres:{cluster}:database {oid}:schema {schema}"),
        format!("database \"{name}\" (oid {oid}), schema \"{schema}\", of {cluster_label}"),
    ))
}

/// A standby (a read-only replica, in recovery) cannot be written: say so before anything else
/// fails on it.
///
/// # Errors
/// An input error naming the target when it is a standby.
pub async fn refuse_standby(client: &Client, locator: &Locator) -> Result<()> {
    let standby: bool = client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .map_err(|e| error(&e))?
        .get(0);
    if standby {
        return Err(Error::input(format!(
            "the target {locator} is a PostgreSQL standby (a read-only replica in recovery): ferry cannot write there; give the primary server's URL"
        )));
    }
    Ok(())
}

fn connect_error(config: &tokio_postgres::Config, tls: &Tls, e: &tokio_postgres::Error) -> Error {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            Host::Tcp(h) => h.clone(),
            Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("(default user)");
    let db = config.get_dbname().unwrap_or(user);
    if let Some(r) = ferry_core::tls::rustls_error(e) {
        let ca = match tls.root_cert.as_deref() {
            Some("system") => "a CA the system trusts".to_string(),
            Some(path) => format!("the CA in sslrootcert {path}"),
            None => "a trusted CA".to_string(),
        };
        let why = ferry_core::tls::reason(r, &ca, &host, "use sslmode=require without sslrootcert");
        let hint = match r {
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => ", or sslmode=verify-ca to check only the CA",
            _ => "",
        };
        return Error::input(format!(
            "TLS handshake with PostgreSQL at {host}:{port} failed: {why}{hint}"
        ));
    }
    let cause = std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_else(|| e.to_string());
    if cause.contains("password missing") {
        return Error::input(format!(
            "PostgreSQL at {host}:{port} asks for a password for user \"{user}\": put it in the URL, PGPASSWORD or ~/.pgpass (mode 0600)"
        ));
    }
    if e.to_string().contains("TLS") {
        let hint = if cause.contains("does not support TLS") {
            "turn ssl on in the server, or use sslmode=prefer or sslmode=disable"
        } else {
            "check the TLS settings (sslmode, sslrootcert, sslcert, sslkey)"
        };
        return Error::input(format!(
            "TLS with PostgreSQL at {host}:{port} failed ({cause}): {hint}"
        ));
    }
    if let Some(db_err) = e.as_db_error() {
        return match db_err.code().code() {
            "28000" if db_err.message().contains("no encryption") => Error::input(format!(
                "PostgreSQL at {host}:{port} accepts only TLS connections ({}): remove sslmode=disable",
                db_err.message()
            )),
            "28P01" | "28000" => Error::input(format!(
                "PostgreSQL at {host}:{port} refused user \"{user}\": {}; check the user and password (URL, PGPASSWORD or .pgpass)",
                db_err.message()
            )),
            "3D000" => Error::input(format!(
                "PostgreSQL database \"{db}\" does not exist at {host}:{port}: create it first (createdb {db})"
            )),
            code => Error::input(format!("PostgreSQL at {host}:{port}: {}", db_err.message()))
                .transient_if(ferry_core::retry::transient_sqlstate(code)),
        };
    }
    // Refused, reset or timed out: a server restarting looks like this for a moment (the
    // retry policy reads the mark; a first connection is never retried).
    Error::input(format!(
        "cannot connect to PostgreSQL at {host}:{port} ({cause}): check that the server is running and the URL's host and port"
    ))
    .transient_if(true)
}

/// Runs `sql` (one or more statements), PostgreSQL's error as ferry's.
///
/// # Errors
/// See [`error`].
pub async fn batch(client: &tokio_postgres::Client, sql: &str) -> Result<()> {
    client.batch_execute(sql).await.map_err(|e| error(&e))
}

/// Maps an error on an open connection; marks the transient ones (`ferry_core::retry`): a
/// restart, a serialization failure, a deadlock, a lost connection.
pub fn error(e: &tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => {
            let mut msg = format!("PostgreSQL: {}", db.message());
            if let Some(d) = db.detail() {
                msg.push_str(&format!(" ({d})"));
            }
            Error::run(msg).transient_if(ferry_core::retry::transient_sqlstate(db.code().code()))
        }
        None if e.is_closed() => Error::run(
            "the PostgreSQL connection was lost: check the server and rerun with --force",
        )
        .transient_if(true),
        None => {
            let cause = std::error::Error::source(e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            Error::run(format!(
                "PostgreSQL connection failed ({e}{cause}): check the server and rerun with --force"
            ))
            .transient_if(true)
        }
    }
}
