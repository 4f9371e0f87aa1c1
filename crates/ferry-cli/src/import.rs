//! `ferry import <profile> --source … --target …`: an app-to-app import declared by a profile
//! (a shipped name such as `peertube`, or a path to a profile file). Glue only: the work is
//! `ferry_profile::import`.

use clap::Args;
use ferry::Error;
use ferry_profile::{ImportOptions, Profile};

#[derive(Args)]
pub struct ImportArgs {
    /// A shipped profile (peertube) or the path to a profile file.
    #[arg(value_name = "PROFILE")]
    pub profile: String,
    /// The application's database: postgres://user@host/db (opened read-only).
    #[arg(long, visible_alias = "source-db", value_name = "URL")]
    pub source: String,
    /// The new platform's database: postgres://user@host/db (its schema is created if missing).
    #[arg(long, visible_alias = "target-db", value_name = "URL")]
    pub target: String,
    /// The source instance's host name, used in the target ids and source_host columns
    /// (default: read from the source, e.g. PeerTube's instance account).
    #[arg(long, value_name = "HOST")]
    pub source_host: Option<String>,
    /// Where the application's files are: file:///var/www/peertube/storage or any blob locator.
    #[arg(long, value_name = "LOCATOR", requires = "media_to")]
    pub media_from: Option<String>,
    /// Where the files go (file:// or s3://…).
    #[arg(long, value_name = "LOCATOR")]
    pub media_to: Option<String>,
    /// Where the files of one of the profile's media stores are, e.g. PeerTube's object
    /// storage: web_videos=s3://bucket/prefix?endpoint=…; repeat per store.
    #[arg(long, value_name = "NAME=LOCATOR", value_parser = media_store)]
    pub media_store: Vec<(String, String)>,
    /// Count what would be migrated and skipped and list the files (count, bytes); write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub summary: crate::cli::SummaryFile,
    /// Run against a source version the profile does not list.
    #[arg(long)]
    pub allow_unsupported_version: bool,
    /// Carry no password hashes: every user must set a new password.
    #[arg(long)]
    pub require_password_reset: bool,
    /// Import remote (federated) content too; by default it is counted as skipped.
    #[arg(long)]
    pub include_remote: bool,
    /// Rows per page and per upsert statement.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub batch_size: usize,
    /// Continue an import that was stopped (killed, failed, cancelled) after the last page it
    /// wrote of each entity, instead of reading those entities again from their start.
    #[arg(long)]
    pub resume: bool,
}

pub async fn run(args: ImportArgs, bars: bool) -> i32 {
    let result = async {
        let profile = Profile::find(&args.profile)?;
        let mut options = ImportOptions::new(
            ferry::parse_locator(&args.source)?,
            ferry::parse_locator(&args.target)?,
        );
        options.source_host = args.source_host.clone();
        options.media_from = args.media_from.clone();
        options.media_to = args.media_to.clone();
        options.media_stores = args.media_store.iter().cloned().collect();
        options.dry_run = args.dry_run;
        options.allow_unsupported_version = args.allow_unsupported_version;
        options.require_password_reset = args.require_password_reset;
        options.include_remote = args.include_remote;
        options.resume = args.resume;
        if args.batch_size == 0 {
            return Err(Error::input("--batch-size must be at least 1"));
        }
        options.batch_size = args.batch_size;
        let info = ferry_profile::validate_source(&profile, &options).await?;
        eprintln!(
            "Importing {} (version {}) from {} as source host {}",
            if info.application.is_empty() {
                &profile.name
            } else {
                &info.application
            },
            info.version.as_deref().unwrap_or("unknown"),
            options.source.redacted(),
            info.source_host
        );
        ferry_profile::import(&profile, &options, &crate::context(bars, false)).await
    }
    .await;
    let endpoints = crate::cli::Endpoints {
        source: args.source,
        target: args.target,
        schema_name: None,
    };
    crate::finish(result, args.summary.path(), &endpoints, args.dry_run)
}

/// `NAME=LOCATOR` of `--media-store`.
fn media_store(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, locator)) if !name.is_empty() && !locator.is_empty() => {
            Ok((name.to_string(), locator.to_string()))
        }
        _ => Err(format!(
            "'{text}' is not NAME=LOCATOR (e.g. web_videos=s3://bucket/prefix?endpoint=…)"
        )),
    }
}
