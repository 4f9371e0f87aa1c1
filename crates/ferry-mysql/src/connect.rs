//! Connections and their errors: one line that says what is wrong and what to do, never the
//! password. Sessions run in UTC with strict SQL mode, so MySQL rejects (instead of truncating)
//! what does not fit, and explicit zero keys stay zero. TLS as MySQL's ssl-mode and ssl-ca ask.
//! Also which database a connection reached (its identity).

use ferry_core::connector::Identity;
use ferry_core::locator::ServerUrl;
use ferry_core::{Error, Locator, Result};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

/// How a source maps MySQL's zero dates (`0000-00-00`, `2024-00-00`), from the locator's
/// `zero_dates` query parameter: `fail` (default: each is a reported row failure) or `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroDates {
    Fail,
    Null,
}

/// The driver URL (ferry's own parameters removed) and the zero-date rule.
pub fn parse(locator: &Locator) -> Result<(String, ZeroDates)> {
    let mut url = ServerUrl::url_of(locator, crate::locator::BACKEND)?.clone();
    let mut zero = ZeroDates::Fail;
    ferry_core::locator::take_query(&mut url, |k, v| {
        if k != "zero_dates" {
            return Ok(false);
        }
        zero = match v {
            "null" => ZeroDates::Null,
            "fail" => ZeroDates::Fail,
            other => {
                return Err(Error::input(format!(
                    "zero_dates={other} is not understood: use zero_dates=null or zero_dates=fail"
                )));
            }
        };
        Ok(true)
    })?;
    let _ = url.set_scheme("mysql");
    if url.path().trim_matches('/').is_empty() {
        return Err(Error::input(format!(
            "{locator} names no database: write mysql://user@host:3306/database"
        )));
    }
    Ok((url.to_string(), zero))
}

/// MySQL's `--ssl-mode`, as the URL's `ssl-mode` names it (any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    Disabled,
    /// Encrypt when the server can, else plain (MySQL's default).
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

/// ferry's connection parameters (TLS, and `zero_dates`, which `parse` reads) taken out of the
/// URL, so the driver sees only its own.
struct Settings {
    url: String,
    mode: SslMode,
    ca: Option<std::path::PathBuf>,
    cert: Option<std::path::PathBuf>,
    key: Option<std::path::PathBuf>,
}

fn settings(url: &str) -> Result<Settings> {
    let mut url = url::Url::parse(url).map_err(|e| Error::input(format!("bad MySQL URL: {e}")))?;
    let (mut mode, mut ca, mut cert, mut key) = (SslMode::Preferred, None, None, None);
    ferry_core::locator::take_query(&mut url, |k, v| {
        match k {
            "ssl-mode" => {
                mode = match v.to_ascii_uppercase().as_str() {
                    "DISABLED" => SslMode::Disabled,
                    "PREFERRED" => SslMode::Preferred,
                    "REQUIRED" => SslMode::Required,
                    "VERIFY_CA" => SslMode::VerifyCa,
                    "VERIFY_IDENTITY" => SslMode::VerifyIdentity,
                    _ => {
                        return Err(Error::input(format!(
                            "ssl-mode={v} is not understood: use DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY"
                        )));
                    }
                }
            }
            "ssl-ca" => ca = Some(v.into()),
            "ssl-cert" => cert = Some(v.into()),
            "ssl-key" => key = Some(v.into()),
            "zero_dates" => {}
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if cert.is_some() != key.is_some() {
        return Err(Error::input(
            "ssl-cert and ssl-key go together: give both the client certificate and its key",
        ));
    }
    // As the mysql client does: REQUIRED with a CA checks the CA.
    if mode == SslMode::Required && ca.is_some() {
        mode = SslMode::VerifyCa;
    }
    Ok(Settings {
        url: url.to_string(),
        mode,
        ca,
        cert,
        key,
    })
}

fn ssl_opts(s: &Settings, mode: SslMode) -> Option<mysql_async::SslOpts> {
    let mut ssl = mysql_async::SslOpts::default();
    match mode {
        SslMode::Disabled => return None,
        SslMode::Preferred | SslMode::Required => {
            ssl = ssl
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true);
        }
        SslMode::VerifyCa => ssl = ssl.with_danger_skip_domain_validation(true),
        SslMode::VerifyIdentity => {}
    }
    if let Some(ca) = &s.ca {
        ssl = ssl
            .with_root_certs(vec![ca.clone().into()])
            .with_disable_built_in_roots(true);
    }
    if let (Some(cert), Some(key)) = (&s.cert, &s.key) {
        ssl = ssl.with_client_identity(Some(mysql_async::ClientIdentity::new(
            cert.clone().into(),
            key.clone().into(),
        )));
    }
    Some(ssl)
}

/// Opens a bare session: TLS as `ssl-mode`/`ssl-ca` ask, the password from the URL or
/// `MYSQL_PWD`, a Unix socket with `?socket=/path`. Every MySQL connection ferry makes goes
/// through here.
pub async fn open(url: &str) -> Result<Conn> {
    let s = settings(url)?;
    // mysql_async builds its rustls config from the process's default provider.
    let _ = ferry_core::tls::provider();
    let opts = Opts::from_url(&s.url).map_err(|e| Error::input(format!("bad MySQL URL: {e}")))?;
    let socket = opts.socket().is_some();
    let host = match opts.socket() {
        Some(socket) => socket.to_string(),
        None => format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port()),
    };
    let user = opts.user().unwrap_or("").to_string();
    let db = opts.db_name().unwrap_or("").to_string();
    let mut builder = OptsBuilder::from_opts(opts);
    if url_has_no_password(&s.url)
        && let Some(pw) = std::env::var("MYSQL_PWD").ok().filter(|p| !p.is_empty())
    {
        builder = builder.pass(Some(pw));
    }
    // A Unix socket is local and needs no TLS (the mysql client skips it there too; the driver
    // cannot run TLS over a socket). Over TCP with TLS, no switch to the server's socket either.
    let mode = if socket { SslMode::Disabled } else { s.mode };
    let ssl = ssl_opts(&s, mode);
    if ssl.is_some() {
        builder = builder.prefer_socket(false);
    }
    let attempt = Conn::new(builder.clone().ssl_opts(ssl)).await;
    let result =
        match attempt {
            // PREFERRED falls back to plain only when the server has no TLS at all.
            Err(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            )) if s.mode == SslMode::Preferred => Conn::new(builder.prefer_socket(None)).await,
            other => other,
        };
    result.map_err(|e| connect_error(&e, &s, &host, &user, &db))
}

/// Whether the URL names no password (mysql_async reads an empty one as none too).
fn url_has_no_password(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.password().is_none_or(str::is_empty))
}

fn connect_error(e: &mysql_async::Error, s: &Settings, host: &str, user: &str, db: &str) -> Error {
    if let Some(r) = ferry_core::tls::rustls_error(e) {
        let ca = match &s.ca {
            Some(path) => format!("the CA in ssl-ca {}", path.display()),
            None => "a CA the system trusts".to_string(),
        };
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let why = ferry_core::tls::reason(r, &ca, name, "use ssl-mode=REQUIRED without ssl-ca");
        return Error::input(format!("TLS handshake with MySQL at {host} failed: {why}"));
    }
    match e {
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => {
            Error::input(format!(
                "MySQL at {host} does not offer TLS, which ssl-mode asks for: enable TLS on the server, or use ssl-mode=PREFERRED or DISABLED"
            ))
        }
        mysql_async::Error::Io(mysql_async::IoError::Tls(t)) => Error::input(format!(
            "TLS with MySQL at {host} failed ({t}): check ssl-mode, ssl-ca, ssl-cert and ssl-key"
        )),
        // MariaDB answers a plain connection to a TLS-only server (require_secure_transport)
        // with "access denied" too, so the hint names both causes.
        mysql_async::Error::Server(e) if e.code == 1045 && s.mode == SslMode::Disabled => {
            Error::input(format!(
                "MySQL at {host} refused user \"{user}\" ({}): check the user and password (URL or MYSQL_PWD), and remove ssl-mode=DISABLED if the server accepts only TLS",
                e.message
            ))
        }
        mysql_async::Error::Server(s) if s.code == 1045 => Error::input(format!(
            "MySQL at {host} refused user \"{user}\" ({}): check the user and password (URL or MYSQL_PWD)",
            s.message
        )),
        mysql_async::Error::Server(s) if s.code == 1049 => Error::input(format!(
            "MySQL database \"{db}\" does not exist at {host}: create it first (CREATE DATABASE `{db}`)"
        )),
        mysql_async::Error::Server(s)
            if s.code == 3159 || s.message.contains("secure transport") =>
        {
            Error::input(format!(
                "MySQL at {host} accepts only TLS connections ({}): remove ssl-mode=DISABLED",
                s.message
            ))
        }
        _ => Error::input(format!(
            "cannot connect to MySQL at {host} ({e}): check that the server is running and the URL's host and port"
        ))
        // Refused or reset: a server restarting looks like this for a moment.
        .transient_if(matches!(e, mysql_async::Error::Io(_))),
    }
}

/// Opens a session for copying: UTC, strict SQL mode; `read_only` sessions leave foreign key
/// checks on.
pub async fn connect(url: &str, read_only: bool) -> Result<Conn> {
    let mut conn = open(url).await?;
    let mode = "SET NAMES utf8mb4, time_zone = '+00:00', \
        sql_mode = 'STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'";
    conn.query_drop(mode).await.map_err(|e| error(&e))?;
    if !read_only {
        conn.query_drop("SET foreign_key_checks = 0")
            .await
            .map_err(|e| error(&e))?;
    }
    Ok(conn)
}

/// The server (MySQL's `@@server_uuid`; MariaDB has none, so `@@hostname`, `@@port` and
/// `@@datadir`, which no two running servers share) and the schema (`DATABASE()`).
///
/// # Errors
/// When the queries fail.
pub async fn identity(conn: &mut Conn) -> Result<Identity> {
    let uuid: Option<(String, String)> = conn
        .query_first("SHOW GLOBAL VARIABLES LIKE 'server_uuid'")
        .await
        .map_err(|e| error(&e))?;
    let (host, port, datadir, schema): (String, u16, String, Option<String>) = conn
        .query_first("SELECT @@hostname, @@port, @@datadir, DATABASE()")
        .await
        .map_err(|e| error(&e))?
        .ok_or_else(|| Error::run("MySQL returned no row for its own identity"))?;
    let schema = schema.unwrap_or_default();
    let (server, label) = match uuid.map(|(_, v)| v).filter(|v| !v.is_empty()) {
        Some(uuid) => (
            format!("uuid {uuid}"),
            format!("the MySQL server with server_uuid {uuid}"),
        ),
        None => (
            format!("host {host} port {port} datadir {datadir}"),
            format!("the server on host {host}, port {port}, data directory {datadir}"),
        ),
    };
    Ok(Identity::new(
        format!("mysql:{server}:schema {schema}"),
        format!("schema `{schema}` of {label}"),
    ))
}

/// Maps an error on an open connection; marks the transient ones (`ferry_core::retry`): a
/// deadlock, a lock wait timeout, a server shutting down, a lost connection.
pub fn error(e: &mysql_async::Error) -> Error {
    match e {
        mysql_async::Error::Server(s) => {
            Error::run(format!("MySQL: {} (error {})", s.message, s.code))
                .transient_if(ferry_core::retry::transient_mysql_code(s.code))
        }
        other => Error::run(format!(
            "MySQL connection failed ({other}): check the server and rerun with --force"
        ))
        .transient_if(matches!(
            other,
            mysql_async::Error::Io(_) | mysql_async::Error::Driver(_)
        )),
    }
}

pub fn quote(name: &str) -> String {
    ferry_core::capabilities::quote_with('`', name)
}
