//! `frozen` and `rollback`: the source as it stands. Row counts and watermarks (`max(column)`)
//! per table, compared with what `cutover sync` recorded at the end of the final pass (or, for
//! a copy never synced by ferry, with the target's), and read twice during `frozen`, so the
//! operator knows maintenance mode is really on. `rollback` also prints the way back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Env, Found, scalar};
use crate::cutover::spec::{CutoverSpec, JobKind};
use crate::cutover::{Reading, ReconRow};
use crate::{SchemaOptions, TableFilter, parse_locator};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Tables watched (default: every table of the copy, or of the source).
    pub tables: Vec<String>,
    /// Table → the column whose maximum says when it was last written (`updatedAt`).
    pub watermarks: BTreeMap<String, String>,
    /// Seconds between the two reads of `frozen` (default 2).
    pub watch_s: Option<f64>,
}

/// The tables and watermarks every `frozen` and `rollback` check of `spec` watches: what
/// `sync` records.
pub fn watched(
    spec: &CutoverSpec,
) -> Result<(Vec<String>, BTreeMap<String, String>), ferry_core::Error> {
    let mut tables = Vec::new();
    let mut marks = BTreeMap::new();
    let mut all = false;
    for c in spec.prepared()? {
        if let super::Params::Frozen(p) | super::Params::Rollback(p) = c.params {
            all |= p.tables.is_empty();
            tables.extend(p.tables);
            marks.extend(p.watermarks);
        }
    }
    if all {
        tables.clear();
    }
    tables.sort();
    tables.dedup();
    Ok((tables, marks))
}

/// Counts and watermarks of `tables` (all of the job's tables when empty) in `db`.
///
/// # Errors
/// When the database cannot be opened or a query fails.
pub async fn read(
    spec: &CutoverSpec,
    db: &str,
    tables: &[String],
    marks: &BTreeMap<String, String>,
) -> ferry_core::Result<BTreeMap<String, Reading>> {
    let locator = parse_locator(db)?;
    let dialect = crate::dialect(&locator)?;
    let names = if tables.is_empty() {
        table_names(spec, db).await?
    } else {
        tables.to_vec()
    };
    let mut out = BTreeMap::new();
    for name in names {
        let q = dialect.quote(&name);
        let rows = scalar(db, &format!("SELECT count(*) FROM {q}"))
            .await
            .map_err(|e| e.context(format!("counting {name}")))?
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let watermark = match marks.get(&name) {
            Some(col) => scalar(db, &format!("SELECT max({}) FROM {q}", dialect.quote(col)))
                .await
                .map_err(|e| e.context(format!("max({col}) of {name}")))?,
            None => None,
        };
        out.insert(name, Reading { rows, watermark });
    }
    Ok(out)
}

/// The tables of `db` the job covers (its `tables`/`exclude`).
///
/// # Errors
/// When the database cannot be opened or read.
pub async fn table_names(spec: &CutoverSpec, db: &str) -> ferry_core::Result<Vec<String>> {
    let source = crate::open_source(&parse_locator(db)?).await?;
    let filter = TableFilter::new(&spec.job.tables, &spec.job.exclude)?;
    let schema = source.schema(&SchemaOptions::declared(filter)).await?;
    Ok(schema.tables.iter().map(|t| t.name.clone()).collect())
}

/// [`read`] of the tables and watermarks a check's parameters name.
async fn read_params(
    p: &Params,
    env: &Env<'_>,
    db: &str,
) -> ferry_core::Result<BTreeMap<String, Reading>> {
    read(env.spec, db, &p.tables, &p.watermarks).await
}

/// What the source is compared with, and how that is named in the evidence.
async fn baseline(
    p: &Params,
    env: &Env<'_>,
) -> ferry_core::Result<Option<(BTreeMap<String, Reading>, String)>> {
    if let Some(state) = &env.state {
        return Ok(Some((state.source.clone(), "the last sync".into())));
    }
    if env.spec.job.kind == JobKind::Copy {
        let target = read_params(p, env, &env.spec.target.database).await?;
        return Ok(Some((target, "the target".into())));
    }
    Ok(None)
}

fn compare(
    now: &BTreeMap<String, Reading>,
    then: &BTreeMap<String, Reading>,
    what: &str,
    problems: &mut Vec<String>,
    table: &mut Vec<ReconRow>,
) {
    for (name, r) in now {
        let Some(b) = then.get(name) else {
            problems.push(format!("{name}: not in {what}"));
            continue;
        };
        if r.rows != b.rows {
            problems.push(format!("{name}: {} rows now, {} in {what}", r.rows, b.rows));
        }
        if r.watermark.is_some() && b.watermark.is_some() && r.watermark != b.watermark {
            problems.push(format!(
                "{name}: last written {} now, {} in {what}",
                r.watermark.as_deref().unwrap_or_default(),
                b.watermark.as_deref().unwrap_or_default()
            ));
        }
        table.push(ReconRow {
            name: name.clone(),
            source: r.rows,
            target: b.rows,
            matched: r == b
                || (r.rows == b.rows && (r.watermark.is_none() || b.watermark.is_none())),
            note: format!("source now vs {what}"),
        });
    }
}

/// `p` with the spec's watermarks when it names none: every check reads the same columns
/// `sync` recorded.
fn with_marks(p: &Params, env: &Env<'_>) -> ferry_core::Result<Params> {
    let mut p = p.clone();
    if p.watermarks.is_empty() {
        p.watermarks = watched(env.spec)?.1;
    }
    Ok(p)
}

pub async fn frozen(p: &Params, env: &Env<'_>) -> ferry_core::Result<Found> {
    let p = &with_marks(p, env)?;
    let db = &env.spec.source.database;
    let first = read_params(p, env, db).await?;
    let mut problems = Vec::new();
    let mut table = Vec::new();
    let base = baseline(p, env).await?;
    if let Some((then, what)) = &base {
        compare(&first, then, what, &mut problems, &mut table);
    }
    let wait = p.watch_s.unwrap_or(2.0).clamp(0.0, 600.0);
    // A cancelled run (a job's DELETE, Ctrl-C) does not wait out the watch.
    tokio::select! {
        () = tokio::time::sleep(std::time::Duration::from_secs_f64(wait)) => {}
        () = env.cx.cancel.cancelled() => return Err(ferry_core::Error::cancelled()),
    }
    let second = read_params(p, env, db).await?;
    for (name, r) in &second {
        if let Some(f) = first.get(name)
            && f != r
        {
            problems.push(format!(
                "{name}: {} rows, then {} rows {wait} s later: the source is taking writes",
                f.rows, r.rows
            ));
        }
    }
    let against = base.map_or_else(
        || "no sync recorded: only the two reads compared".to_string(),
        |(_, w)| format!("unchanged since {w}"),
    );
    let mut found = Found::judge(
        format!(
            "{} tables: {against}, and no write in {wait} s",
            first.len()
        ),
        problems,
    );
    if found.status == crate::cutover::Status::Fail {
        found.details.push(
            "the source took writes: put the application in maintenance (read-only) mode, run `ferry cutover sync` again, then check".into(),
        );
    }
    found.table = table;
    Ok(found)
}

pub async fn rollback(p: &Params, env: &Env<'_>) -> ferry_core::Result<Found> {
    let p = &with_marks(p, env)?;
    let now = read_params(p, env, &env.spec.source.database).await?;
    let mut problems = Vec::new();
    let mut table = Vec::new();
    let base = baseline(p, env).await?;
    if let Some((then, what)) = &base {
        compare(&now, then, what, &mut problems, &mut table);
    }
    let mut found = Found::judge(
        format!(
            "the source answers reads ({} tables) and is unchanged since {}",
            now.len(),
            base.as_ref()
                .map_or("(no sync recorded)", |(_, w)| w.as_str())
        ),
        problems,
    );
    found.details.extend(steps(env.spec));
    found.table = table;
    Ok(found)
}

/// The way back, for this spec.
pub fn steps(spec: &CutoverSpec) -> Vec<String> {
    let redact =
        |db: &str| parse_locator(db).map_or_else(|_| "(the database)".into(), |l| l.redacted());
    let (source, target) = (redact(&spec.source.database), redact(&spec.target.database));
    let mut steps = vec![
        "1. Switch traffic back: point DNS or the proxy at the old service again".to_string(),
        "2. Take the old service out of maintenance (read-only) mode".to_string(),
        format!("3. Nothing to restore in the source {source}: ferry only read it"),
    ];
    let what = match spec.job.kind {
        JobKind::Copy if spec.job.tables.is_empty() => "the copied tables".to_string(),
        JobKind::Copy => format!("the copied tables ({})", spec.job.tables.join(", ")),
        JobKind::Profile => format!(
            "the rows the {} profile wrote (its tables' rows with this source_host)",
            spec.job.profile.as_deref().unwrap_or("profile")
        ),
    };
    steps.push(format!(
        "4. On the target {target}: drop {what} before a new attempt, or keep them to inspect"
    ));
    if let Some(m) = &spec.target.media {
        let shown = ferry_blobs::Store::parse(m)
            .map_or_else(|_| "(the target media)".into(), |s| s.to_string());
        steps.push(format!(
            "5. Remove the files copied to {shown} (the source's files were never changed)"
        ));
    }
    steps
}
