//! `backup`: the way back exists. A PostgreSQL dump named in the spec is readable
//! (`pg_restore --list`) and holds the data of every source table; a media backup folder or
//! bucket holds at least the source's file count.

use std::path::PathBuf;

use ferry_blobs::{Manifest, Store};
use serde::{Deserialize, Serialize};

use super::{Env, Found, source};
use crate::cutover::ReconRow;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// A `pg_dump -Fc` (or `-Fd`, `-Ft`) archive of the source.
    pub dump: Option<PathBuf>,
    /// A storage locator holding a copy of the source's files.
    pub media_backup: Option<String>,
    /// Tables the dump must hold (default: every table of the job in the source).
    pub tables: Vec<String>,
}

pub async fn run(p: &Params, env: &Env<'_>) -> ferry_core::Result<Found> {
    if p.dump.is_none() && p.media_backup.is_none() {
        return Ok(Found::skipped(
            "no backup named: set dump = \"source.dump\" and/or media_backup = \"file:///backups/media\"",
        ));
    }
    let mut problems = Vec::new();
    let mut table = Vec::new();
    let mut said = Vec::new();
    if let Some(dump) = &p.dump {
        let listed = match pg_restore_list(dump).await {
            Ok(listed) => listed,
            Err(why) => return Ok(Found::fail(why)),
        };
        let wanted = if p.tables.is_empty() {
            source::table_names(env.spec, &env.spec.source.database).await?
        } else {
            p.tables.clone()
        };
        let absent: Vec<&String> = wanted
            .iter()
            .filter(|t| !listed.contains(t.as_str()))
            .collect();
        if !absent.is_empty() {
            problems.push(format!(
                "the dump {} holds no data for {} of {} source tables: {}",
                dump.display(),
                absent.len(),
                wanted.len(),
                absent
                    .iter()
                    .take(10)
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        table.push(ReconRow::present(
            "tables in the dump",
            wanted.len(),
            absent.len(),
            "pg_restore --list",
        ));
        said.push(format!(
            "the dump lists {} of {} source tables",
            wanted.len() - absent.len(),
            wanted.len()
        ));
    }
    if let Some(backup) = &p.media_backup {
        let Some(from) = &env.spec.source.media else {
            return Ok(Found::skipped(
                "media_backup needs the source's media location ([source] media or --media-from)",
            ));
        };
        let source_files = ferry_blobs::manifest::keys(&Store::parse(from)?, &Manifest::Listing)
            .await?
            .0
            .len() as u64;
        let backup_store = Store::parse(backup)?;
        let backup_files = ferry_blobs::manifest::keys(&backup_store, &Manifest::Listing)
            .await?
            .0
            .len() as u64;
        if backup_files < source_files {
            problems.push(format!(
                "the media backup {backup_store} holds {backup_files} files, the source {source_files}"
            ));
        }
        table.push(ReconRow {
            name: "files in the media backup".into(),
            source: source_files,
            target: backup_files,
            matched: backup_files >= source_files,
            note: "at least the source's count".into(),
        });
        said.push(format!(
            "the media backup holds {backup_files} files (source {source_files})"
        ));
    }
    let mut found = Found::judge(said.join("; "), problems);
    found.table = table;
    Ok(found)
}

/// The tables whose data `pg_restore --list` shows in `dump`.
async fn pg_restore_list(
    dump: &std::path::Path,
) -> Result<std::collections::HashSet<String>, String> {
    let out = tokio::process::Command::new("pg_restore")
        .arg("--list")
        .arg(dump)
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "pg_restore is not installed: install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client)".to_string(),
            _ => format!("cannot run pg_restore: {e}"),
        })?;
    if !out.status.success() {
        return Err(format!(
            "pg_restore --list {} failed: {}",
            dump.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("no message")
        ));
    }
    // "3360; 0 16390 TABLE DATA public video postgres"
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| l.split_once(" TABLE DATA "))
        .filter_map(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string))
        .collect())
}
