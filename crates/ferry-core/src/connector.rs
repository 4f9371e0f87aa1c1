//! The connector traits a backend implements: `Source` (introspect and read), `Target` (check,
//! execute DDL, write) and `Dialect` (the pure part of a target: type mapping and DDL text).
//!
//! Contracts, which the shared conformance tests check for every backend:
//! - A `Source` never writes: it opens its database read-only.
//! - `Source::read` sends every row of the table exactly once, in batches of at most
//!   `batch_rows`, paging by key (never OFFSET), and stops promptly when cancelled.
//! - `TableWriter::write` is atomic per call: on `WriteError::Rejected` nothing of the batch was
//!   written, so the engine can split the batch to isolate bad rows.

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::capabilities::Capabilities;
use crate::error::{Error, Result};
use crate::filter::TableFilter;
use crate::locator::{Backend, Locator};
use crate::plan::{Plan, TablePlan};
use crate::schema::{Column, DataType, ForeignKey, Schema, Table};
use crate::value::Batch;

/// What to discover. Profiling (scanning values to choose types that hold them all) costs a
/// pass over the data; verification of a target does not need it.
#[derive(Debug, Clone, Default)]
pub struct SchemaOptions {
    pub filter: TableFilter,
    pub profile: bool,
    /// With `profile`: a source that profiles by scanning (SQLite) scans only a sample of each
    /// large table when the sample agrees with the declared types, and marks the table
    /// `sampled`; the copy then reads the source once. Dry runs and `--strict` scan everything.
    pub sample: bool,
}

impl SchemaOptions {
    /// The tables `filter` keeps, with the types their database declares (no profiling): what
    /// checking, verifying or resuming a copy reads.
    pub fn declared(filter: TableFilter) -> Self {
        Self {
            filter,
            ..Self::default()
        }
    }
}

/// Which database a locator reaches, whatever its spelling (`localhost` or `127.0.0.1`, a hard
/// link or a symbolic link to the file): two sides that share a part are the same database. It
/// prints what an operator can check (a file's device and inode, a server's identifier, a
/// schema), never a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Each part alone names the database: SQLite has one for the file and one for its `-wal`
    /// (two files sharing either would write into each other); servers have one.
    pub parts: Vec<String>,
    /// For messages: `the file /srv/app.db (device 2049, inode 131)`.
    pub label: String,
}

impl Identity {
    pub fn new(part: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            parts: vec![part.into()],
            label: label.into(),
        }
    }

    /// The first part the two identities share: then they are the same database.
    pub fn shared<'a>(&'a self, other: &Identity) -> Option<&'a str> {
        self.parts
            .iter()
            .find(|p| other.parts.contains(p))
            .map(String::as_str)
    }

    /// One text naming the database, for keys such as the job server's one-job-per-target rule.
    pub fn key(&self) -> String {
        self.parts.join(" + ")
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

/// One read of a table's rows: what [`Source::read`] streams, where to, and what stops it.
pub struct ReadRequest<'a> {
    pub table: &'a Table,
    /// Rows per batch sent.
    pub batch_rows: usize,
    pub tx: mpsc::Sender<Batch>,
    pub cancel: CancellationToken,
}

impl<'a> ReadRequest<'a> {
    pub fn new(
        table: &'a Table,
        batch_rows: usize,
        tx: mpsc::Sender<Batch>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            table,
            batch_rows,
            tx,
            cancel,
        }
    }
}

#[async_trait]
pub trait Source: Send + Sync {
    fn locator(&self) -> &Locator;

    /// Which database this is (see [`Identity`]), to refuse a target that is the source.
    ///
    /// # Errors
    /// When the database cannot be asked.
    async fn identity(&self) -> Result<Option<Identity>>;

    /// How this source gives every read one consistent picture of the data (for the report:
    /// "SQLite WAL snapshot", "PostgreSQL exported snapshot"...), once `schema` has run.
    fn snapshot_method(&self) -> Option<String> {
        None
    }

    /// How many reads the caller runs at once (the copy's and verification's workers), told
    /// before `schema`: a source whose reader connections share one snapshot, opened together
    /// at the start, opens that many.
    fn expect_readers(&self, _readers: usize) {}

    /// Discovers every table (and what is not copied: views, triggers, virtual tables), with
    /// exact row counts.
    ///
    /// # Errors
    /// When the database cannot be read.
    async fn schema(&self, options: &SchemaOptions) -> Result<Schema>;

    /// Streams the rows of `request.table` (its columns in schema order) into `request.tx`.
    ///
    /// # Errors
    /// When reading fails, or `Error::cancelled()` when `request.cancel` fires.
    async fn read(&self, request: ReadRequest<'_>) -> Result<()>;

    /// Rows of `table` whose foreign key `fk` points at no row of its parent (databases that
    /// never enforced foreign keys have them): how many, and up to `limit` of their keys.
    /// `None` when this source does not check (it enforces foreign keys itself).
    ///
    /// # Errors
    /// When the query fails.
    async fn orphans(
        &self,
        _table: &Table,
        _fk: &ForeignKey,
        _limit: usize,
    ) -> Result<Option<(u64, Vec<String>)>> {
        Ok(None)
    }

    /// Runs a read-only query on this source's read-only session (in the snapshot it holds,
    /// once `schema` has run) and returns each row's first column as text, `None` for NULL:
    /// how a blob manifest gets its keys from the application's database. A statement that
    /// writes is refused by the read-only session.
    ///
    /// # Errors
    /// When the query fails or returns no columns; when this source runs no queries.
    async fn query_keys(&self, _sql: &str) -> Result<Vec<Option<String>>> {
        Err(Error::input(format!(
            "{} sources do not run queries",
            self.locator().backend()
        )))
    }
}

/// How a target stores one source column.
#[derive(Debug, Clone)]
pub struct ColumnMapping {
    /// Values are converted to this portable type before writing; `None` passes them through
    /// untouched (a same-backend copy of a dynamically typed column).
    pub convert_to: Option<DataType>,
    /// The target's type name, for DDL and the report.
    pub native_type: String,
    /// The default, translated to the target's SQL; `None` when there is none or it was dropped.
    pub default_sql: Option<String>,
    /// Lossy steps and translations, for the report.
    pub notes: Vec<String>,
}

/// DDL statements by phase, in the order they run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Ddl {
    /// Before the data: tables with their columns, types, NOT NULL and defaults.
    pub create: Vec<String>,
    /// After the data: primary keys, unique constraints and indexes.
    pub indexes: Vec<String>,
    pub foreign_keys: Vec<String>,
    /// Identity and sequence counters moved past the copied maximum.
    pub sequences: Vec<String>,
    /// Last, before ANALYZE: the views, triggers, materialized views (created, then refreshed),
    /// full-text indexes over external content (rebuilt) and comments a target of the same
    /// backend recreates (`Plan::objects`), so that triggers do not fire during the copy.
    pub objects: Vec<String>,
    pub analyze: Vec<String>,
    /// To erase tables with `--force`, children first.
    pub drop: Vec<String>,
}

/// What proving a run's DDL on a target found (see [`Target::preflight`]).
#[derive(Debug, Clone, Default)]
pub struct Proof {
    /// Each statement the target refused, with the target's error.
    pub failures: Vec<(String, String)>,
    /// What could not be proved and why (for the report's warnings).
    pub notes: Vec<String>,
}

impl Ddl {
    /// The statements a preflight proves, in the order a run executes them (views, triggers
    /// and the other recreated objects included): everything but `analyze` (statistics, which
    /// change nothing a later statement depends on) and `drop`.
    pub fn proved(&self) -> impl Iterator<Item = &String> {
        self.create
            .iter()
            .chain(&self.indexes)
            .chain(&self.foreign_keys)
            .chain(&self.sequences)
            .chain(&self.objects)
    }
}

/// For a target of another backend than the source's: a native column as the portable column
/// it becomes there (an array a JSON array, anything else its text form), with the note that
/// names the lossy step.
pub fn native_as_text(column: &Column) -> Option<(Column, String)> {
    let DataType::Native { name, array } = &column.data_type else {
        return None;
    };
    let mut portable = column.clone();
    if *array {
        portable.data_type = DataType::Json;
        return Some((
            portable,
            format!("{name} is copied as a JSON array (its element type is not kept)"),
        ));
    }
    portable.data_type = DataType::text();
    Some((portable, format!("{name} is copied as its text form")))
}

/// The pure half of a target: no I/O, so the planner can use it for dry runs and tests.
pub trait Dialect: Send + Sync {
    fn backend(&self) -> Backend;
    /// What this backend can do, as data: limits, case folding, writers, typing, quoting.
    fn capabilities(&self) -> Capabilities;
    /// `name` as an identifier in this backend's SQL.
    fn quote(&self, name: &str) -> String {
        crate::capabilities::quote_with(self.capabilities().quote, name)
    }
    fn map_column(&self, column: &Column, table: &Table, source: Backend) -> ColumnMapping;
    /// Every statement needed to create the planned tables, by phase.
    fn ddl(&self, plan: &Plan) -> Ddl;
    /// `native_type` spelled so that it compares text byte for byte, trailing spaces
    /// included (with `Capabilities::pad_space_keys`: a `NO PAD` binary collation); `None`
    /// when the target has no such spelling.
    fn exact_text_type(&self, _native_type: &str) -> Option<String> {
        None
    }
    /// Whether `error`, from a DDL statement a resumed run repeats, says that the statement
    /// took effect before the interruption (an index or key that already exists): where DDL
    /// is not transactional, a kill between a statement and its ledger mark leaves that.
    fn already_applied(&self, _error: &str) -> bool {
        false
    }
}

#[async_trait]
pub trait Target: Send + Sync {
    fn locator(&self) -> &Locator;
    fn dialect(&self) -> &dyn Dialect;

    /// Which database this is (see [`Identity`]); `None` when it does not exist yet (a SQLite
    /// file a copy would create), which no source can be.
    ///
    /// # Errors
    /// When the database cannot be asked.
    async fn identity(&self) -> Result<Option<Identity>>;

    /// Every table that exists in the target, with its exact row count.
    ///
    /// # Errors
    /// When the target cannot be queried.
    async fn existing_tables(&self) -> Result<Vec<(String, u64)>>;

    /// Runs statements in order on one connection, stopping at the first failure.
    ///
    /// # Errors
    /// The failing statement's error, naming the statement.
    async fn execute(&self, statements: &[String]) -> Result<()> {
        if statements.is_empty() {
            return Ok(());
        }
        let mut runner = self.statements(statements).await?;
        let result = execute_in_order(runner.as_mut(), statements).await;
        runner.close().await;
        result
    }

    /// A connection to run `statements` on, one by one (for [`Target::execute`]).
    ///
    /// # Errors
    /// When the connection cannot be opened.
    async fn statements(&self, statements: &[String]) -> Result<Box<dyn StatementRunner>>;

    /// Proves a run's DDL before anything is written: runs every statement of `ddl` (tables,
    /// keys, indexes, foreign keys, counter resets) where the real target does not change (a
    /// rolled-back transaction, a scratch database, an in-memory database), and returns each
    /// statement the target refused. `erase`: the run will drop the planned tables first.
    /// `existing`: target tables the run fills without creating (new tables may reference them).
    ///
    /// # Errors
    /// When the target cannot be reached.
    async fn preflight(&self, _ddl: &Ddl, _erase: bool, _existing: &[String]) -> Result<Proof> {
        Ok(Proof {
            failures: Vec::new(),
            notes: vec![format!(
                "the {} target cannot prove its DDL before writing",
                self.dialect().backend()
            )],
        })
    }

    /// A writer for one table, on its own connection.
    ///
    /// # Errors
    /// When the connection cannot be opened.
    async fn writer(&self, table: &TablePlan) -> Result<Box<dyn TableWriter>>;

    /// The same database opened read-only as a source, for verification.
    ///
    /// # Errors
    /// When it cannot be opened.
    async fn as_source(&self) -> Result<std::sync::Arc<dyn Source>>;
}

/// Runs one statement on a target's connection: what each backend gives [`execute_in_order`].
#[async_trait]
pub trait StatementRunner: Send {
    /// # Errors
    /// The backend's error for the statement.
    async fn run(&mut self, statement: &str) -> Result<()>;

    /// Ends the connection cleanly, where dropping it would not.
    async fn close(self: Box<Self>) {}
}

/// What [`Target::execute`] does: runs statements in order, stopping at the first
/// failure, whose error names the statement (its first line).
///
/// # Errors
/// The failing statement's error.
pub async fn execute_in_order(
    runner: &mut dyn StatementRunner,
    statements: &[String],
) -> Result<()> {
    for statement in statements {
        runner.run(statement).await.map_err(|e| {
            let line = statement.lines().next().unwrap_or_default();
            let cut = &line[..line.floor_char_boundary(100)];
            let more = if cut.len() < line.len() { "..." } else { "" };
            e.context(format!("running `{cut}{more}`"))
        })?;
    }
    Ok(())
}

/// Why a write failed.
#[derive(Debug)]
pub enum WriteError {
    /// The target refused data in this batch; nothing of the batch was written. `row` is the
    /// offending row's index in the batch when the target said which.
    Rejected { row: Option<usize>, reason: String },
    /// Anything else (lost connection, full disk): the run cannot go on.
    Fatal(Error),
}

#[async_trait]
pub trait TableWriter: Send {
    /// Writes every row of `batch`, atomically.
    ///
    /// # Errors
    /// See `WriteError`.
    async fn write(&mut self, batch: &Batch) -> Result<(), WriteError>;

    /// Runs one statement on the writer's connection and returns the rows it changed: what
    /// the chunk methods below are built on.
    ///
    /// # Errors
    /// The statement's error; a target whose writers cannot run statements.
    async fn run_sql(&mut self, _sql: &str) -> Result<u64> {
        Err(Error::run(
            "this target cannot write a chunk in one transaction",
        ))
    }

    /// Tells the writer it is inside a chunk's transaction (`Some`: whether each batch runs
    /// under a savepoint, so a rejected one leaves the chunk's other batches in place, for
    /// `--ignore-errors`) or not (`None`): a batch then is not its own transaction.
    fn set_chunk(&mut self, _isolate_batches: Option<bool>) {}

    /// Starts a chunk: every batch written until [`TableWriter::commit_chunk`] joins one
    /// transaction, so the chunk lands whole or not at all. Dropping the writer in a chunk
    /// rolls it back (its connection closes).
    ///
    /// # Errors
    /// When the transaction cannot start.
    async fn begin_chunk(&mut self, isolate_batches: bool) -> Result<()> {
        self.run_sql("BEGIN").await?;
        self.set_chunk(Some(isolate_batches));
        Ok(())
    }

    /// Runs `claim` (the ledger's `UPDATE` marking the chunk done) in the chunk's transaction
    /// and commits when it changed exactly one row; otherwise rolls the chunk back (another
    /// worker committed it first). Returns whether this writer's chunk was committed.
    ///
    /// # Errors
    /// When the statement or the commit fails (then nothing of the chunk was committed).
    async fn commit_chunk(&mut self, claim: &str) -> Result<bool> {
        self.set_chunk(None);
        let claimed = self.run_sql(claim).await? == 1;
        self.run_sql(if claimed { "COMMIT" } else { "ROLLBACK" })
            .await?;
        Ok(claimed)
    }
}

/// Cuts a reader's rows into batches of `rows` and sends each full one, checking for
/// cancellation between batches: the loop every async `Source::read` shares.
pub struct BatchSender<'a> {
    tx: &'a mpsc::Sender<Batch>,
    cancel: &'a CancellationToken,
    batch: Batch,
    rows: usize,
}

impl<'a> BatchSender<'a> {
    pub fn new(
        tx: &'a mpsc::Sender<Batch>,
        cancel: &'a CancellationToken,
        width: usize,
        rows: usize,
    ) -> Self {
        let rows = Batch::rows_for(width, rows);
        Self {
            tx,
            cancel,
            batch: Batch::new(width, rows),
            rows,
        }
    }

    pub fn push(&mut self, value: crate::value::Value) {
        self.batch.values.push(value);
    }

    /// Ends a row; sends the batch when it is full. `Ok(false)`: the consumer stopped (it
    /// reports why), so the reader should stop too.
    ///
    /// # Errors
    /// `Error::cancelled()` when the run was cancelled.
    pub async fn end_row(&mut self) -> Result<bool> {
        if self.batch.len() < self.rows {
            return Ok(true);
        }
        if self.cancel.is_cancelled() {
            return Err(Error::cancelled());
        }
        let next = Batch::new(self.batch.width, self.rows);
        let full = std::mem::replace(&mut self.batch, next);
        Ok(self.tx.send(full).await.is_ok())
    }

    /// Sends the last, partial batch.
    pub async fn finish(self) {
        if !self.batch.is_empty() {
            let _ = self.tx.send(self.batch).await;
        }
    }
}
