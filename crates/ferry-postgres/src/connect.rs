//! Connections and their errors: each failure becomes one line that says what is wrong and
//! what to do, without the password. Also what a connection reached: the database's identity
//! and whether the server is a standby.

use ferry_core::connector::Identity;
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
            tracing::debug!(error = %e, "PostgreSQL connection closed");
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
