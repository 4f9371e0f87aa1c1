//! ferry's PostgreSQL backend: binary COPY writer, binary COPY reader (used for verification
//! now, and as the PostgreSQL source), catalog introspection and the dialect.

pub mod connect;
mod copy_binary;
mod dialect;
mod introspect;
mod keys;
pub mod locator;
mod objects;
mod pgpass;
mod query;
mod read;
mod type_map;
mod write;

use std::sync::Arc;

use async_trait::async_trait;
use ferry_core::connector::{
    Ddl, Dialect, Identity, Proof, ReadRequest, SchemaOptions, Source, StatementRunner,
    TableWriter, Target,
};
use ferry_core::plan::TablePlan;
use ferry_core::schema::{Schema, Table};
use ferry_core::{Locator, Result};

pub use dialect::{PostgresDialect, quote};
pub use locator::PostgresRegistration;
pub use query::{Session, UpsertWriter};

/// A PostgreSQL database, read-only.
pub struct PostgresSource {
    locator: Locator,
    endpoint: connect::Endpoint,
    /// A connection holding a REPEATABLE READ READ ONLY transaction whose exported snapshot
    /// every reader joins, so all tables are read as of one instant while the application runs.
    snapshot: tokio::sync::Mutex<Option<(tokio_postgres::Client, String)>>,
    /// Reader connections between two reads, already in the snapshot's transaction: a copy
    /// reads a large table in many chunks, and a connection with its snapshot import per chunk
    /// costs more than the chunk's rows.
    idle: std::sync::Mutex<Vec<tokio_postgres::Client>>,
}

async fn identity(endpoint: &connect::Endpoint) -> Result<Option<Identity>> {
    let client = connect::connect(endpoint, true).await?;
    connect::identity(&client).await.map(Some)
}

impl PostgresSource {
    /// Checks that the server answers and the credentials work, before any work is planned.
    ///
    /// # Errors
    /// An input error saying what is wrong (unreachable, wrong password, no such database).
    pub async fn open(locator: &Locator) -> Result<Self> {
        let endpoint = connect::endpoint(locator)?;
        connect::connect(&endpoint, true).await?;
        Ok(Self {
            locator: locator.clone(),
            endpoint,
            snapshot: Default::default(),
            idle: Default::default(),
        })
    }
}

#[async_trait]
impl Source for PostgresSource {
    fn locator(&self) -> &Locator {
        &self.locator
    }

    async fn identity(&self) -> Result<Option<Identity>> {
        identity(&self.endpoint).await
    }

    fn snapshot_method(&self) -> Option<String> {
        let held = self
            .snapshot
            .try_lock()
            .map(|s| s.is_some())
            .unwrap_or(true);
        held.then(|| "PostgreSQL exported snapshot".to_string())
    }

    async fn schema(&self, options: &SchemaOptions) -> Result<Schema> {
        let mut snapshot = self.snapshot.lock().await;
        if snapshot.is_none() {
            let client = connect::connect(&self.endpoint, true).await?;
            connect::batch(&client, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
            let id: String = client
                .query_one("SELECT pg_export_snapshot()", &[])
                .await
                .map_err(|e| connect::error(&e))?
                .get(0);
            *snapshot = Some((client, id));
        }
        let (client, _) = snapshot.as_ref().expect("set above");
        introspect::schema(client, &options.filter).await
    }

    async fn read(&self, request: ReadRequest<'_>) -> Result<()> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let (client, in_snapshot) = match idle.filter(|c| !c.is_closed()) {
            Some(client) => (client, true),
            None => {
                let client = connect::connect(&self.endpoint, true).await?;
                let snapshot = self.snapshot.lock().await;
                if let Some((_, id)) = snapshot.as_ref() {
                    connect::batch(&client, &format!(
                        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
                        id.replace('\'', "''")
                    ))
                    .await?;
                }
                (client, snapshot.is_some())
            }
        };
        let (table, rows) = (request.table, request.batch_rows);
        let whole = read::read_table(&client, table, rows, request.tx, &request.cancel).await?;
        // Kept for the next read only in the snapshot (outside one, a later read must not see
        // another instant than its neighbours') and after a COPY read to its end: one stopped
        // midway still has rows coming.
        if whole && in_snapshot {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(client);
        }
        Ok(())
    }

    /// Only constraints PostgreSQL has not validated (`NOT VALID`) can have orphans; the engine
    /// asks only for those. Runs in the snapshot the copy reads.
    async fn orphans(
        &self,
        table: &Table,
        fk: &ferry_core::schema::ForeignKey,
        limit: usize,
    ) -> Result<Option<(u64, Vec<String>)>> {
        let (count, keys) = ferry_core::sqltext::ddl::orphans(dialect::quote, table, fk, &[]);
        let snapshot = self.snapshot.lock().await;
        let Some((client, _)) = snapshot.as_ref() else {
            return Ok(None);
        };
        let n: i64 = client
            .query_one(&count, &[])
            .await
            .map_err(|e| connect::error(&e))?
            .get(0);
        let shown = client
            .query(&format!("{keys} LIMIT {limit}"), &[])
            .await
            .map_err(|e| connect::error(&e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(Some((n as u64, shown)))
    }

    /// In the snapshot when `schema` has taken one, else on a read-only session of its own.
    async fn query_keys(&self, sql: &str) -> Result<Vec<Option<String>>> {
        let snapshot = self.snapshot.lock().await;
        match snapshot.as_ref() {
            Some((client, _)) => keys::first_column_in_snapshot(client, sql).await,
            None => {
                let client = connect::connect(&self.endpoint, true).await?;
                keys::first_column(&client, sql).await
            }
        }
    }
}

/// A PostgreSQL database ferry writes into.
pub struct PostgresTarget {
    locator: Locator,
    endpoint: connect::Endpoint,
    dialect: PostgresDialect,
}

impl PostgresTarget {
    /// # Errors
    /// An input error saying what is wrong (unreachable, wrong password, no such database, a
    /// standby).
    pub async fn open(locator: &Locator) -> Result<Self> {
        let endpoint = connect::endpoint(locator)?;
        let client = connect::connect(&endpoint, false).await?;
        connect::refuse_standby(&client, locator).await?;
        Ok(Self {
            locator: locator.clone(),
            endpoint,
            dialect: PostgresDialect,
        })
    }
}

#[async_trait]
impl Target for PostgresTarget {
    fn locator(&self) -> &Locator {
        &self.locator
    }

    fn dialect(&self) -> &dyn Dialect {
        &self.dialect
    }

    async fn identity(&self) -> Result<Option<Identity>> {
        identity(&self.endpoint).await
    }

    async fn existing_tables(&self) -> Result<Vec<(String, u64)>> {
        let client = connect::connect(&self.endpoint, false).await?;
        introspect::tables_with_counts(&client, None).await
    }

    async fn statements(&self, _: &[String]) -> Result<Box<dyn StatementRunner>> {
        let client = connect::connect(&self.endpoint, false).await?;
        Ok(Box::new(Statements(client)))
    }

    /// Runs the DDL inside one transaction on the real database and rolls it back, each
    /// statement under a savepoint so that every refusal is found, not only the first.
    async fn preflight(&self, ddl: &Ddl, erase: bool, _existing: &[String]) -> Result<Proof> {
        let client = connect::connect(&self.endpoint, false).await?;
        // Dropping the tables to erase waits for the application's locks on them: not forever.
        connect::batch(&client, "BEGIN; SET LOCAL lock_timeout = '10s'").await?;
        let erased = if erase { ddl.drop.as_slice() } else { &[] };
        let mut proof = Proof::default();
        for s in erased.iter().chain(ddl.proved()) {
            connect::batch(&client, "SAVEPOINT ferry_preflight").await?;
            let undo = match client.batch_execute(s).await {
                Ok(()) => "RELEASE SAVEPOINT ferry_preflight",
                Err(e) => {
                    proof
                        .failures
                        .push((s.clone(), connect::error(&e).to_string()));
                    "ROLLBACK TO SAVEPOINT ferry_preflight"
                }
            };
            connect::batch(&client, undo).await?;
        }
        connect::batch(&client, "ROLLBACK").await?;
        Ok(proof)
    }

    async fn writer(&self, table: &TablePlan) -> Result<Box<dyn TableWriter>> {
        let client = connect::connect(&self.endpoint, false).await?;
        Ok(Box::new(write::PostgresWriter::new(client, table).await?))
    }

    async fn as_source(&self) -> Result<Arc<dyn Source>> {
        Ok(Arc::new(PostgresSource {
            locator: self.locator.clone(),
            endpoint: self.endpoint.clone(),
            snapshot: Default::default(),
            idle: Default::default(),
        }))
    }
}

/// Runs DDL on one connection, for [`Target::execute`].
struct Statements(tokio_postgres::Client);

#[async_trait]
impl StatementRunner for Statements {
    async fn run(&mut self, statement: &str) -> Result<()> {
        connect::batch(&self.0, statement).await
    }
}
