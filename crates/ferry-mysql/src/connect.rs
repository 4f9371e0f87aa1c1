//! Connections and their errors: one line that says what is wrong and what to do, never the
//! password. Sessions run in UTC with strict SQL mode, so MySQL rejects (instead of truncating)
//! what does not fit, and explicit zero keys stay zero. Also which database a connection
//! reached (its identity).

use ferry_core::connector::Identity;
use ferry_core::{Error, Locator, Result};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

/// How a source maps MySQL's zero dates (`0000-00-00`, `2024-00-00`), from the locator's
/// `zero_dates` query parameter: `fail` (default: each is a reported row failure) or `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroDates {
    Fail,
    Null,
}

/// The driver URL (ferry's own parameters removed) and the zero-date rule.
pub fn parse(locator: &Locator) -> Result<(String, ZeroDates)> {
    let Locator::Mysql { url } = locator else {
        return Err(Error::input(format!("{locator} is not a MySQL locator")));
    };
    let mut url = url.clone();
    let mut zero = ZeroDates::Fail;
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut kept = Vec::new();
    for (k, v) in pairs {
        if k == "zero_dates" {
            zero = match v.as_str() {
                "null" => ZeroDates::Null,
                "fail" => ZeroDates::Fail,
                other => {
                    return Err(Error::input(format!(
                        "zero_dates={other} is not understood: use zero_dates=null or zero_dates=fail"
                    )));
                }
            };
        } else {
            kept.push((k, v));
        }
    }
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    let _ = url.set_scheme("mysql");
    if url.path().trim_matches('/').is_empty() {
        return Err(Error::input(format!(
            "{locator} names no database: write mysql://user@host:3306/database"
        )));
    }
    Ok((url.to_string(), zero))
}

pub async fn connect(url: &str, read_only: bool) -> Result<Conn> {
    let opts = Opts::from_url(url).map_err(|e| Error::input(format!("bad MySQL URL: {e}")))?;
    let host = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
    let user = opts.user().unwrap_or("").to_string();
    let db = opts.db_name().unwrap_or("").to_string();
    let mut conn = Conn::new(opts).await.map_err(|e| match &e {
        mysql_async::Error::Server(s) if s.code == 1045 => Error::input(format!(
            "MySQL at {host} refused user \"{user}\" ({}): check the user and password in the URL",
            s.message
        )),
        mysql_async::Error::Server(s) if s.code == 1049 => {
            Error::input(format!("MySQL database \"{db}\" does not exist at {host}: create it first (CREATE DATABASE `{db}`)"))
        }
        _ => Error::input(format!(
            "cannot connect to MySQL at {host} ({e}): check that the server is running and the URL's host and port"
        )),
    })?;
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

pub fn error(e: &mysql_async::Error) -> Error {
    match e {
        mysql_async::Error::Server(s) => {
            Error::run(format!("MySQL: {} (error {})", s.message, s.code))
        }
        other => Error::run(format!(
            "MySQL connection failed ({other}): check the server and rerun with --force"
        )),
    }
}

pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}
