//! [`JobSpec`]: a copy job's options as one serde type, with their defaults in this one place.
//! The CLI's flags, the job server's request bodies and a migrate spec's `[database]` section
//! all become a `JobSpec`, and only [`JobSpec::copy_options`] turns it into the engine's
//! [`CopyOptions`], so a default or a check cannot differ between the front-ends.

use std::path::PathBuf;

pub use ferry_core::chunks::DEFAULT_CHUNK_ROWS;
use ferry_core::engine::{CopyOptions, MAX_BATCH_ROWS};
use ferry_core::filter::TableFilter;
use ferry_core::plan::SchemaMode;
use ferry_core::{Error, Locator, Result};
use serde::{Deserialize, Serialize};

/// Rows per batch when a job names none.
pub const DEFAULT_BATCH_SIZE: usize = 10_000;

/// Where reject files go when a job names no folder.
pub const DEFAULT_REJECT_DIR: &str = "ferry-rejects";

/// One copy job: where from, where to, and how. Unset fields take the defaults written in
/// [`Default`] and [`JobSpec::copy_options`].
///
/// The endpoints are `source` and `target` (as `--source`, `--target` and a migrate spec's
/// keys); the job API's names `source_url` and `target_url` are accepted for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Where to read: a locator (`sqlite:///app.db`, `postgres://…`, `mysql://…`).
    #[serde(alias = "source_url")]
    pub source: String,
    /// Where to write: a locator.
    #[serde(alias = "target_url")]
    pub target: String,
    /// The PostgreSQL schema to read from a `postgres:` source (same as `?schema=` in its URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_name: Option<String>,
    /// Only these tables: names or globs (default: all).
    #[serde(default)]
    pub tables: Vec<String>,
    /// Leave these tables out: names or globs.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Rows per batch (default [`DEFAULT_BATCH_SIZE`]).
    #[serde(default)]
    pub batch_size: Option<u64>,
    /// Tables processed at once (default: the number of cores).
    #[serde(default)]
    pub workers: Option<u64>,
    /// Print the plan and the source's row counts; write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Erase target tables that already hold rows (after confirmation, see `yes`).
    #[serde(default)]
    pub force: bool,
    /// The answer to the confirmation `force` asks for.
    #[serde(default)]
    pub yes: bool,
    /// Rows the target rejects go to reject files instead of stopping the run.
    #[serde(default)]
    pub ignore_errors: bool,
    /// Verify the target after the copy (default true).
    #[serde(default = "default_verify")]
    pub verify: bool,
    /// Folder for the reject files (default [`DEFAULT_REJECT_DIR`]).
    #[serde(default)]
    pub reject_dir: Option<PathBuf>,
    /// Whether tables that already exist in the target are filled: `auto`, `create`, `existing`.
    #[serde(default)]
    pub schema: SchemaMode,
    /// Leave out source columns that the target's existing tables lack.
    #[serde(default)]
    pub ignore_missing_columns: bool,
    /// Refuse, before writing, a run with any lossy step, translation or object not copied.
    #[serde(default)]
    pub strict: bool,
    /// Continue the copy recorded in the target's ledger: skip its done chunks and steps.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resume: bool,
    /// `K/N`: copy only the chunks numbered K modulo N into the shared ledger (no keys,
    /// foreign keys or verification: `finish` does those once every shard is done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// After every shard: check all chunks are done, then build keys, indexes and foreign
    /// keys, reset counters and verify.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finish: bool,
    /// Rows per chunk, the unit a copy commits, resumes and shards (default
    /// [`DEFAULT_CHUNK_ROWS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_rows: Option<u64>,
    /// How a dynamically typed source (SQLite) gets its column types: `sample` (default)
    /// profiles a sample of each large table and checks every value as it is copied (a table
    /// a value does not fit is profiled in full and copied again, said in the report); `full`
    /// scans every value first. Dry runs and `strict` always scan every value.
    #[serde(default)]
    pub profile: Profiling,
}

/// How column types are chosen where the source declares none it enforces (`profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profiling {
    /// A sample of each large table, then every value checked while copying.
    #[default]
    Sample,
    /// Every value, before the copy.
    Full,
}

fn default_verify() -> bool {
    true
}

impl Default for JobSpec {
    fn default() -> Self {
        Self {
            source: String::new(),
            target: String::new(),
            schema_name: None,
            tables: Vec::new(),
            exclude: Vec::new(),
            batch_size: None,
            workers: None,
            dry_run: false,
            force: false,
            yes: false,
            ignore_errors: false,
            verify: default_verify(),
            reject_dir: None,
            schema: SchemaMode::default(),
            ignore_missing_columns: false,
            strict: false,
            profile: Profiling::Sample,
            resume: false,
            shard: None,
            finish: false,
            chunk_rows: None,
        }
    }
}

/// How a front-end names a field in its messages, so an error points at what the user wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// Command-line flags: `--batch-size`.
    Flags,
    /// Keys of a spec section: `[database] batch_size`.
    Section(&'static str),
    /// Keys of a request body: `batch_size`.
    Body,
}

impl Fields {
    /// The name of `field` (a [`JobSpec`] field name) as the user wrote it.
    pub fn name(self, field: &str) -> String {
        match self {
            Fields::Flags => format!("--{}", field.replace('_', "-")),
            Fields::Section(section) => format!("{section} {field}"),
            Fields::Body => field.to_string(),
        }
    }
}

impl JobSpec {
    /// The source and target locators, the source narrowed to `schema_name`.
    ///
    /// # Errors
    /// An input error when a locator does not parse, or `schema_name` is set for a source
    /// that is not PostgreSQL.
    pub fn locators(&self, fields: Fields) -> Result<(Locator, Locator)> {
        let mut source = crate::parse_locator(&self.source)?;
        if let Some(schema) = &self.schema_name {
            source = crate::with_schema(&source, schema).ok_or_else(|| {
                Error::input(format!(
                    "{} applies to a postgres: source only",
                    fields.name("schema_name")
                ))
            })?;
        }
        Ok((source, crate::parse_locator(&self.target)?))
    }

    /// The engine's options: every default of a copy job is filled in here.
    ///
    /// # Errors
    /// An input error naming the field (as `fields` spells it) when a table pattern does not
    /// parse, the batch size is outside 1..=[`MAX_BATCH_ROWS`] or `workers` is 0.
    pub fn copy_options(&self, fields: Fields) -> Result<CopyOptions> {
        let filter = TableFilter::new(&self.tables, &self.exclude)?;
        let batch_rows = self.batch_rows(fields)?;
        let workers = match self.workers {
            Some(0) => {
                return Err(Error::input(format!(
                    "{} must be at least 1: it is how many tables are processed at once",
                    fields.name("workers")
                )));
            }
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => default_workers(),
        };
        Ok(CopyOptions {
            schema: ferry_core::connector::SchemaOptions {
                filter,
                profile: true,
                sample: self.profile == Profiling::Sample,
            },
            batch_rows,
            workers,
            dry_run: self.dry_run,
            force: self.force,
            ignore_errors: self.ignore_errors,
            verify: self.verify,
            reject_dir: self
                .reject_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_REJECT_DIR)),
            schema_mode: self.schema,
            ignore_missing_columns: self.ignore_missing_columns,
            strict: self.strict,
            resume: self.resume,
            shard: self.shard(fields)?,
            finish: self.finish,
            chunk_rows: match self.chunk_rows {
                Some(0) => {
                    return Err(Error::input(format!(
                        "{} must be at least 1 row",
                        fields.name("chunk_rows")
                    )));
                }
                Some(n) => n,
                None => DEFAULT_CHUNK_ROWS,
            },
            // Only the job server shares a copy's chunks (it sets them per run).
            claims: None,
            keep_ledger: false,
        })
    }

    /// `shard` as `(k, n)` with k < n, refused beside `finish` (which runs once, after them).
    fn shard(&self, fields: Fields) -> Result<Option<(u64, u64)>> {
        let Some(text) = &self.shard else {
            return Ok(None);
        };
        let name = fields.name("shard");
        if self.finish {
            return Err(Error::input(format!(
                "{name} and {} do not go together: run the shards, then --finish once without {name}",
                fields.name("finish")
            )));
        }
        let parsed = text.split_once('/').and_then(|(k, n)| {
            Some((k.trim().parse::<u64>().ok()?, n.trim().parse::<u64>().ok()?))
        });
        match parsed {
            Some((k, n)) if k < n => Ok(Some((k, n))),
            _ => Err(Error::input(format!(
                "{name} {text:?} is not K/N with 0 <= K < N (for example 0/3, 1/3, 2/3)"
            ))),
        }
    }

    /// `batch_size` within 1..=[`MAX_BATCH_ROWS`], or the default.
    fn batch_rows(&self, fields: Fields) -> Result<usize> {
        let Some(rows) = self.batch_size else {
            return Ok(DEFAULT_BATCH_SIZE);
        };
        let name = fields.name("batch_size");
        if rows == 0 {
            return Err(Error::input(format!("{name} must be at least 1 row")));
        }
        match usize::try_from(rows) {
            Ok(rows) if rows <= MAX_BATCH_ROWS => Ok(rows),
            _ => Err(Error::input(format!(
                "{name} {rows} is too large: at most {MAX_BATCH_ROWS} rows per batch (each batch is held in memory, about three per table); the default is {DEFAULT_BATCH_SIZE}"
            ))),
        }
    }
}

/// Tables processed at once when a job names no number: one per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> JobSpec {
        JobSpec {
            source: "sqlite:///s.db".into(),
            target: "sqlite:///t.db".into(),
            ..JobSpec::default()
        }
    }

    #[test]
    fn unset_fields_take_the_engines_defaults() {
        let o = spec().copy_options(Fields::Flags).unwrap();
        let d = CopyOptions::default();
        assert_eq!(o.batch_rows, d.batch_rows);
        assert_eq!(o.workers, d.workers);
        assert_eq!(o.reject_dir, d.reject_dir);
        assert_eq!((o.verify, o.strict, o.force), (true, false, false));
        assert_eq!(o.schema_mode, SchemaMode::Auto);
        assert!(o.schema.profile);
    }

    #[test]
    fn a_toml_section_and_a_json_body_give_the_same_spec() {
        let toml: JobSpec = toml::from_str(
            "source = \"sqlite:///s.db\"\ntarget = \"sqlite:///t.db\"\nbatch_size = 500\nstrict = true\nschema = \"existing\"",
        )
        .unwrap();
        let json: JobSpec = serde_json::from_value(serde_json::json!({
            "source_url": "sqlite:///s.db", "target_url": "sqlite:///t.db",
            "batch_size": 500, "strict": true, "schema": "existing"
        }))
        .unwrap();
        assert_eq!(toml, json);
        let o = toml.copy_options(Fields::Body).unwrap();
        assert_eq!((o.batch_rows, o.strict), (500, true));
        assert_eq!(o.schema_mode, SchemaMode::Existing);
    }

    #[test]
    fn errors_name_the_field_as_the_front_end_spells_it() {
        let zero = JobSpec {
            batch_size: Some(0),
            ..spec()
        };
        let e = zero.copy_options(Fields::Flags).unwrap_err().to_string();
        assert!(e.contains("--batch-size must be at least 1"), "{e}");
        let e = zero
            .copy_options(Fields::Section("[database]"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[database] batch_size must be at least 1"),
            "{e}"
        );
        let huge = JobSpec {
            batch_size: Some(MAX_BATCH_ROWS as u64 + 1),
            ..spec()
        };
        let e = huge.copy_options(Fields::Flags).unwrap_err().to_string();
        assert!(e.contains("is too large"), "{e}");
        let idle = JobSpec {
            workers: Some(0),
            ..spec()
        };
        let e = idle.copy_options(Fields::Body).unwrap_err().to_string();
        assert!(e.starts_with("workers must be at least 1"), "{e}");
        let unknown: std::result::Result<JobSpec, _> =
            toml::from_str("source = \"a\"\ntarget = \"b\"\nbogus = 1");
        assert!(unknown.is_err());
    }

    #[test]
    fn shards_are_k_of_n_and_not_finish() {
        let shard = |s: &str| JobSpec {
            shard: Some(s.into()),
            ..spec()
        };
        let o = shard("2/3").copy_options(Fields::Flags).unwrap();
        assert_eq!(o.shard, Some((2, 3)));
        for bad in ["3/3", "x/2", "1", "1/0"] {
            let e = shard(bad)
                .copy_options(Fields::Flags)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("--shard"), "{e}");
        }
        let both = JobSpec {
            finish: true,
            ..shard("0/2")
        };
        let e = both.copy_options(Fields::Body).unwrap_err().to_string();
        assert!(e.contains("shard and finish do not go together"), "{e}");
        let json: JobSpec = serde_json::from_value(serde_json::json!({
            "source": "sqlite:///s.db", "target": "sqlite:///t.db", "resume": true, "chunk_rows": 5
        }))
        .unwrap();
        let o = json.copy_options(Fields::Body).unwrap();
        assert_eq!((o.resume, o.chunk_rows), (true, 5));
    }

    #[test]
    fn schema_name_narrows_a_postgres_source_only() {
        let pg = JobSpec {
            source: "postgres://u@h/db".into(),
            schema_name: Some("shop".into()),
            ..spec()
        };
        let (source, _) = pg.locators(Fields::Flags).unwrap();
        assert!(source.to_string().contains("schema=shop"), "{source}");
        let sqlite = JobSpec {
            schema_name: Some("shop".into()),
            ..spec()
        };
        let e = sqlite.locators(Fields::Flags).unwrap_err().to_string();
        assert!(
            e.contains("--schema-name applies to a postgres: source only"),
            "{e}"
        );
    }
}
