//! ferry's MySQL/MariaDB backend: a read-only source (information_schema introspection,
//! snapshot reads over the binary protocol) and a target (dialect, multi-row INSERT writer).

pub mod connect;
mod dialect;
mod introspect;
pub mod locator;
mod objects;
mod query;
mod read;
mod snapshot;
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
use mysql_async::prelude::Queryable;

pub use connect::ZeroDates;
pub use dialect::MysqlDialect;
pub use locator::MysqlRegistration;

/// A MySQL or MariaDB database, read-only. `?zero_dates=null` maps zero dates to NULL. Every
/// read (schema, rows, orphans, verification) runs on a connection of one consistent snapshot,
/// taken at the first use and held until the source is dropped (`snapshot.rs`).
pub struct MysqlSource {
    locator: Locator,
    url: String,
    zero_dates: ZeroDates,
    readers: std::sync::atomic::AtomicUsize,
    /// Take the global read lock so every connection starts at one moment (not for a target
    /// read back after ferry wrote it).
    lock: bool,
    snapshot: tokio::sync::OnceCell<Arc<snapshot::Snapshot>>,
}

async fn identity(url: &str) -> Result<Option<Identity>> {
    let mut conn = connect::connect(url, true).await?;
    let identity = connect::identity(&mut conn).await;
    let _ = conn.disconnect().await;
    identity.map(Some)
}

impl MysqlSource {
    /// # Errors
    /// An input error saying what is wrong (unreachable, refused user, no such database).
    pub async fn open(locator: &Locator) -> Result<Self> {
        let (url, zero_dates) = connect::parse(locator)?;
        let conn = connect::connect(&url, true).await?;
        let _ = conn.disconnect().await;
        Ok(Self::new(locator.clone(), url, zero_dates, true))
    }

    fn new(locator: Locator, url: String, zero_dates: ZeroDates, lock: bool) -> Self {
        Self {
            locator,
            url,
            zero_dates,
            lock,
            readers: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .into(),
            snapshot: tokio::sync::OnceCell::new(),
        }
    }

    async fn snapshot(&self) -> Result<&snapshot::Snapshot> {
        self.snapshot
            .get_or_try_init(|| async {
                let readers = self.readers.load(std::sync::atomic::Ordering::Relaxed);
                snapshot::Snapshot::start(&self.url, readers, self.lock)
                    .await
                    .map(Arc::new)
            })
            .await
            .map(|s| s.as_ref())
    }
}

#[async_trait]
impl Source for MysqlSource {
    fn locator(&self) -> &Locator {
        &self.locator
    }

    async fn identity(&self) -> Result<Option<Identity>> {
        identity(&self.url).await
    }

    fn snapshot_method(&self) -> Option<String> {
        self.snapshot.get().map(|s| s.description().to_string())
    }

    fn expect_readers(&self, readers: usize) {
        self.readers
            .store(readers.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    async fn schema(&self, options: &SchemaOptions) -> Result<Schema> {
        let snapshot = self.snapshot().await?;
        let mut lease = snapshot.checkout().await?;
        let schema = introspect::schema(&mut lease.conn, &options.filter).await;
        snapshot.give_back(lease, schema.is_ok()).await;
        schema
    }

    async fn read(&self, request: ReadRequest<'_>) -> Result<()> {
        let snapshot = self.snapshot().await?;
        let mut lease = snapshot.checkout().await?;
        let result = read::read_table(
            &mut lease.conn,
            request.table,
            request.batch_rows,
            self.zero_dates,
            request.tx,
            &request.cancel,
        )
        .await;
        snapshot.give_back(lease, result.is_ok()).await;
        result
    }

    /// MySQL enforces foreign keys only while `foreign_key_checks` is on, and dumps are loaded
    /// with it off: orphans are looked for.
    async fn orphans(
        &self,
        table: &Table,
        fk: &ferry_core::schema::ForeignKey,
        limit: usize,
    ) -> Result<Option<(u64, Vec<String>)>> {
        let (count, keys) = ferry_core::sqltext::ddl::orphans(connect::quote, table, fk, &[]);
        let snapshot = self.snapshot().await?;
        let mut lease = snapshot.checkout().await?;
        let conn = &mut lease.conn;
        let result = async {
            let n: Option<u64> = conn.query_first(count).await?;
            let shown: Vec<String> = conn.query(format!("{keys} LIMIT {limit}")).await?;
            Ok::<_, mysql_async::Error>((n.unwrap_or(0), shown))
        }
        .await
        .map_err(|e| connect::error(&e));
        snapshot.give_back(lease, result.is_ok()).await;
        result.map(Some)
    }

    async fn query_keys(&self, sql: &str) -> Result<Vec<Option<String>>> {
        let snapshot = self.snapshot().await?;
        let mut lease = snapshot.checkout().await?;
        let result = query::first_column(&mut lease.conn, sql).await;
        snapshot.give_back(lease, result.is_ok()).await;
        result
    }
}

/// A MySQL or MariaDB database ferry writes into.
pub struct MysqlTarget {
    locator: Locator,
    url: String,
    dialect: MysqlDialect,
}

impl MysqlTarget {
    /// # Errors
    /// An input error saying what is wrong (unreachable, refused user, no such database).
    pub async fn open(locator: &Locator) -> Result<Self> {
        let (url, _) = connect::parse(locator)?;
        let mut conn = connect::connect(&url, false).await?;
        // The first binary NO PAD utf8mb4 collation the server has (MariaDB 10.2+, MySQL 8).
        let no_pad_collation: Option<String> = conn
            .query_first(
                "SELECT COLLATION_NAME FROM information_schema.COLLATIONS \
                 WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin') ORDER BY 1 DESC LIMIT 1",
            )
            .await
            .map_err(|e| connect::error(&e))?;
        let _ = conn.disconnect().await;
        Ok(Self {
            locator: locator.clone(),
            url,
            dialect: MysqlDialect { no_pad_collation },
        })
    }
}

#[async_trait]
impl Target for MysqlTarget {
    fn locator(&self) -> &Locator {
        &self.locator
    }

    fn dialect(&self) -> &dyn Dialect {
        &self.dialect
    }

    async fn identity(&self) -> Result<Option<Identity>> {
        identity(&self.url).await
    }

    async fn existing_tables(&self) -> Result<Vec<(String, u64)>> {
        let mut conn = connect::connect(&self.url, true).await?;
        introspect::tables_with_counts(&mut conn, None).await
    }

    async fn statements(&self, _: &[String]) -> Result<Box<dyn StatementRunner>> {
        Ok(Box::new(Statements(
            connect::connect(&self.url, false).await?,
        )))
    }

    /// DDL is not transactional in MySQL: the statements run in a scratch database ferry
    /// creates for the proof and drops afterwards (also when the proof fails), holding copies
    /// (`CREATE TABLE ... LIKE`) of the existing tables new ones may reference.
    async fn preflight(&self, ddl: &Ddl, _erase: bool, existing: &[String]) -> Result<Proof> {
        let mut conn = connect::connect(&self.url, false).await?;
        let real: Option<String> = conn
            .query_first("SELECT DATABASE()")
            .await
            .map_err(|e| connect::error(&e))?
            .flatten();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let scratch = format!("ferry_preflight_{}_{nanos:x}", std::process::id());
        if let Err(e) = conn
            .query_drop(format!("CREATE DATABASE {}", connect::quote(&scratch)))
            .await
        {
            // Without the CREATE privilege only the checks that need no database remain.
            let _ = conn.disconnect().await;
            return Ok(Proof {
                failures: Vec::new(),
                notes: vec![format!(
                    "the DDL was not proved before writing: MySQL refused a scratch database ({}); grant CREATE to the target's user to have it proved",
                    connect::error(&e)
                )],
            });
        }
        let result = async {
            let mut proof = Proof::default();
            conn.query_drop(format!("USE {}", connect::quote(&scratch)))
                .await
                .map_err(|e| connect::error(&e))?;
            let copies: Vec<String> = match &real {
                Some(db) => existing
                    .iter()
                    .map(|t| {
                        format!(
                            "CREATE TABLE {} LIKE {}.{}",
                            connect::quote(t),
                            connect::quote(db),
                            connect::quote(t)
                        )
                    })
                    .collect(),
                None => Vec::new(),
            };
            for s in copies.iter().chain(ddl.proved()) {
                if let Err(e) = conn.query_drop(s.as_str()).await {
                    proof
                        .failures
                        .push((s.clone(), connect::error(&e).to_string()));
                }
            }
            Ok::<_, ferry_core::Error>(proof)
        }
        .await;
        let dropped = conn
            .query_drop(format!("DROP DATABASE {}", connect::quote(&scratch)))
            .await;
        let _ = conn.disconnect().await;
        let proof = result?;
        dropped.map_err(|e| {
            connect::error(&e).context(format!(
                "dropping ferry's scratch database `{scratch}` (drop it by hand)"
            ))
        })?;
        Ok(proof)
    }

    async fn writer(&self, table: &TablePlan) -> Result<Box<dyn TableWriter>> {
        let conn = connect::connect(&self.url, false).await?;
        Ok(Box::new(write::MysqlWriter::new(conn, table).await?))
    }

    async fn as_source(&self) -> Result<Arc<dyn Source>> {
        Ok(Arc::new(MysqlSource::new(
            self.locator.clone(),
            self.url.clone(),
            ZeroDates::Fail,
            false,
        )))
    }
}

/// Runs DDL on one connection, for [`Target::execute`].
struct Statements(mysql_async::Conn);

#[async_trait]
impl StatementRunner for Statements {
    async fn run(&mut self, statement: &str) -> Result<()> {
        self.0
            .query_drop(statement)
            .await
            .map_err(|e| connect::error(&e))
    }

    async fn close(self: Box<Self>) {
        let _ = self.0.disconnect().await;
    }
}
