//! Command-line arguments. Flags map one to one onto the library's [`JobSpec`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ferry::{JobSpec, SchemaMode};

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "Move an application's data between databases, with proof that nothing was lost."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format when stderr is not a terminal (or with --no-progress).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Plain log lines instead of progress bars, even on a terminal.
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Copy every table of a database into another, then verify.
    Copy(CopyArgs),
    /// Compare a source and a target: row counts, content checksums, differing keys.
    Verify(VerifyArgs),
    /// Create a sample SQLite application database and copy it into a new SQLite file.
    Demo(DemoArgs),
    /// Run the job server: migrations as background jobs behind an admin HTTP API.
    Serve(crate::serve::ServeArgs),
    /// Users and tokens of the job server's store.
    #[command(subcommand)]
    Admin(crate::serve::AdminCommand),
    /// Copy or verify the files an application's rows point at, between storage backends.
    #[command(subcommand)]
    Blobs(crate::blobs::BlobsCommand),
    /// Move a whole application (rows, stored file locations, files) as a TOML spec says.
    Migrate(crate::migrate::MigrateArgs),
    /// Import an application into a new platform as a profile declares (peertube, or a file).
    Import(crate::import::ImportArgs),
    /// The cutover: the final sync and the go/no-go checklist (GO exits 0, NO-GO 1).
    #[command(subcommand)]
    Cutover(crate::cutover::CutoverCommand),
}

#[derive(Args)]
pub struct Endpoints {
    /// Where to read: sqlite:///path/app.db or postgres://user@host/db.
    #[arg(long, visible_alias = "source-db", value_name = "URL")]
    pub source: String,
    /// Where to write: sqlite:///path/new.db or postgres://user@host/db.
    #[arg(long, visible_alias = "target-db", value_name = "URL")]
    pub target: String,
    /// The PostgreSQL schema to read from the source (default: the user's current schema,
    /// usually public); same as `?schema=NAME` in the URL.
    #[arg(long, value_name = "NAME")]
    pub schema_name: Option<String>,
}

/// `--summary FILE`, which every command that runs work takes.
#[derive(Args)]
pub struct SummaryFile {
    /// Write the JSON summary to FILE (always valid JSON, also on failure).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
}

impl SummaryFile {
    pub fn path(&self) -> Option<&std::path::Path> {
        self.summary.as_deref()
    }
}

#[derive(Args)]
pub struct Selection {
    /// Only these tables: comma-separated names or globs.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub tables: Vec<String>,
    /// Leave these tables out: comma-separated names or globs.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub exclude: Vec<String>,
    /// Tables processed at once (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    #[command(flatten)]
    pub summary: SummaryFile,
}

#[derive(Args)]
pub struct CopyArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,
    #[command(flatten)]
    pub selection: Selection,
    /// Rows per batch (each batch is written atomically).
    #[arg(long, default_value_t = ferry::spec::DEFAULT_BATCH_SIZE, value_name = "N")]
    pub batch_size: usize,
    /// Print the plan and source row counts; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Erase target tables that already exist (asks first; see --yes).
    #[arg(long)]
    pub force: bool,
    /// Answer yes to the confirmation --force asks for (for scripts).
    #[arg(long)]
    pub yes: bool,
    /// Rows the target rejects go to reject files instead of stopping the run (exit code 1).
    #[arg(long)]
    pub ignore_errors: bool,
    /// Folder for the reject files of --ignore-errors.
    #[arg(long, default_value = ferry::spec::DEFAULT_REJECT_DIR, value_name = "DIR")]
    pub reject_dir: PathBuf,
    /// Skip the verification that ends every copy.
    #[arg(long)]
    pub no_verify: bool,
    /// Tables that exist in the target: fill them (auto: and create the missing ones; existing:
    /// only fill, never create) or refuse them (create).
    #[arg(long, value_enum, default_value_t = SchemaArg::Auto)]
    pub schema: SchemaArg,
    /// Leave out source columns that the target's existing tables lack (reported).
    #[arg(long)]
    pub ignore_missing_columns: bool,
    /// Refuse, before writing, a run with any lossy step, translation or object not copied.
    #[arg(long)]
    pub strict: bool,
    /// Continue the copy recorded in the target's ledger (a killed run): skip its done chunks
    /// and steps, redo the rest, then keys, indexes, foreign keys and verification.
    #[arg(long)]
    pub resume: bool,
    /// Copy only the chunks numbered K modulo N (one of N workers on one copy); run --finish
    /// once after every shard.
    #[arg(long, value_name = "K/N", conflicts_with = "finish")]
    pub shard: Option<String>,
    /// After all shards: check every chunk is done, then build keys, indexes and foreign keys,
    /// reset counters and verify.
    #[arg(long)]
    pub finish: bool,
    /// Rows per chunk, the unit a copy commits, resumes and shards.
    #[arg(long, default_value_t = ferry::spec::DEFAULT_CHUNK_ROWS, value_name = "N")]
    pub chunk_rows: u64,
    /// How SQLite column types are chosen: from a sample of each large table, every value
    /// then checked as it is copied (a table that does not fit is profiled and copied again),
    /// or from every value before copying (full; what --dry-run and --strict do).
    #[arg(long, value_enum, default_value_t = ProfileArg::Sample)]
    pub profile: ProfileArg,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ProfileArg {
    Sample,
    Full,
}

impl Endpoints {
    /// The job's endpoints, every other field at its default.
    pub fn spec(&self) -> JobSpec {
        JobSpec {
            source: self.source.clone(),
            target: self.target.clone(),
            schema_name: self.schema_name.clone(),
            ..JobSpec::default()
        }
    }
}

impl Selection {
    /// `spec` narrowed to these tables and workers.
    pub fn apply(&self, spec: JobSpec) -> JobSpec {
        JobSpec {
            tables: self.tables.clone(),
            exclude: self.exclude.clone(),
            workers: self.workers.map(|n| n as u64),
            ..spec
        }
    }
}

impl CopyArgs {
    /// The flags as a job: the CLI adds nothing of its own.
    pub fn spec(&self) -> JobSpec {
        JobSpec {
            batch_size: Some(self.batch_size as u64),
            dry_run: self.dry_run,
            force: self.force,
            yes: self.yes,
            ignore_errors: self.ignore_errors,
            verify: !self.no_verify,
            reject_dir: Some(self.reject_dir.clone()),
            schema: match self.schema {
                SchemaArg::Auto => SchemaMode::Auto,
                SchemaArg::Create => SchemaMode::Create,
                SchemaArg::Existing => SchemaMode::Existing,
            },
            ignore_missing_columns: self.ignore_missing_columns,
            strict: self.strict,
            resume: self.resume,
            shard: self.shard.clone(),
            finish: self.finish,
            chunk_rows: Some(self.chunk_rows),
            profile: match self.profile {
                ProfileArg::Sample => ferry::spec::Profiling::Sample,
                ProfileArg::Full => ferry::spec::Profiling::Full,
            },
            ..self.selection.apply(self.endpoints.spec())
        }
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SchemaArg {
    Auto,
    Create,
    Existing,
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,
    #[command(flatten)]
    pub selection: Selection,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Folder for the demo's two SQLite files.
    #[arg(long, default_value = "ferry-demo", value_name = "DIR")]
    pub dir: PathBuf,
    /// Rows in the sample database, about.
    #[arg(long, default_value_t = 400_000, value_name = "N")]
    pub rows: u64,
}
