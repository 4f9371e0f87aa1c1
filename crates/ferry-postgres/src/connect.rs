//! Connections and their errors: each failure becomes one line that says what is wrong and
//! what to do, without the password.

use ferry_core::{Error, Locator, Result};
use tokio_postgres::{Client, NoTls};

/// Where to connect, and which schema ferry reads or writes (`?schema=name` in the locator, or
/// `--schema-name`; default: the user's current schema, usually `public`).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    pub schema: Option<String>,
}

pub fn endpoint(locator: &Locator) -> Result<Endpoint> {
    let Locator::Postgres { url } = locator else {
        return Err(Error::input(format!(
            "{locator} is not a PostgreSQL locator"
        )));
    };
    let mut url = url.clone();
    let mut schema = None;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "schema" {
                schema = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    Ok(Endpoint {
        url: url.to_string(),
        schema,
    })
}

/// Opens a connection; `read_only` sessions cannot write even by mistake.
pub async fn connect(endpoint: &Endpoint, read_only: bool) -> Result<Client> {
    let url = endpoint.url.as_str();
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| Error::input(format!("bad PostgreSQL URL: {e}")))?;
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| connect_error(&config, &e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %error(&e), "PostgreSQL connection closed");
        }
    });
    let setup = if read_only {
        "SET default_transaction_read_only = on; SET client_min_messages = warning"
    } else {
        // Commits are per batch; a crash loses at most the last batches of a run that is then
        // reported failed, so waiting for each WAL flush buys nothing.
        "SET synchronous_commit = off; SET client_min_messages = warning"
    };
    client.batch_execute(setup).await.map_err(|e| error(&e))?;
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
        client
            .batch_execute(&format!(
                "SET search_path = {}",
                crate::dialect::quote(schema)
            ))
            .await
            .map_err(|e| error(&e))?;
    }
    Ok(client)
}

fn connect_error(config: &tokio_postgres::Config, e: &tokio_postgres::Error) -> Error {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("(default user)");
    let db = config.get_dbname().unwrap_or(user);
    if let Some(db_err) = e.as_db_error() {
        return match db_err.code().code() {
            "28P01" | "28000" => Error::input(format!(
                "PostgreSQL at {host}:{port} refused user \"{user}\": {}; check the user and password in the URL",
                db_err.message()
            )),
            "3D000" => Error::input(format!(
                "PostgreSQL database \"{db}\" does not exist at {host}:{port}: create it first (createdb {db})"
            )),
            _ => Error::input(format!("PostgreSQL at {host}:{port}: {}", db_err.message())),
        };
    }
    let cause = std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_else(|| e.to_string());
    Error::input(format!(
        "cannot connect to PostgreSQL at {host}:{port} ({cause}): check that the server is running and the URL's host and port"
    ))
}

/// Maps an error on an open connection.
pub fn error(e: &tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => {
            let mut msg = format!("PostgreSQL: {}", db.message());
            if let Some(d) = db.detail() {
                msg.push_str(&format!(" ({d})"));
            }
            Error::run(msg)
        }
        None if e.is_closed() => Error::run(
            "the PostgreSQL connection was lost: check the server and rerun with --force",
        ),
        None => {
            let cause = std::error::Error::source(e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            Error::run(format!(
                "PostgreSQL connection failed ({e}{cause}): check the server and rerun with --force"
            ))
        }
    }
}
