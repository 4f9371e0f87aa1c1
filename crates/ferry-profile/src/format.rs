//! The profile file format (TOML) as serde types, and its validation into a [`Profile`] the
//! engine runs. Every error names the file, line and column it is about (toml's spans).
//! docs/profiles.md documents each key.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use ferry_core::error::{Error, Result};
use serde::Deserialize;
use toml::Spanned;

use crate::expr::{self, Expr};

/// The shipped PeerTube 6.3 profile and its target schema, so `ferry import peertube` works
/// without the files on disk.
const BUILTIN: &[(&str, &str, &str, &str)] = &[(
    "peertube",
    include_str!("../../../profiles/peertube.toml"),
    "peertube-target.sql",
    include_str!("../../../profiles/peertube-target.sql"),
)];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    profile: Header,
    target: TargetSpec,
    #[serde(default)]
    enums: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default, rename = "entity")]
    entities: Vec<EntitySpec>,
    /// Other places the application keeps files (object storage): name → what it is, in words.
    #[serde(default)]
    media_stores: BTreeMap<String, String>,
    #[serde(default)]
    not_migrated: Vec<NotMigratedSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotMigratedSpec {
    table: Option<Spanned<String>>,
    files: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    reason: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    name: String,
    #[serde(default)]
    description: String,
    /// The profile's own version.
    #[serde(default)]
    version: String,
    /// The application it reads, in words ("PeerTube 6.3").
    #[serde(default)]
    source: String,
    version_query: Option<Spanned<String>>,
    #[serde(default)]
    supported_versions: Vec<String>,
    host_query: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetSpec {
    schema: Option<String>,
    schema_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntitySpec {
    name: Spanned<String>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    source: Spanned<String>,
    key: Option<Spanned<String>>,
    watermark: Option<String>,
    table: Option<String>,
    stats: Option<String>,
    #[serde(default)]
    columns: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    enums: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    skip: Vec<SkipRule>,
    #[serde(default)]
    media: Vec<Spanned<String>>,
    media_store: Option<Spanned<String>>,
    media_key: Option<Spanned<String>>,
    access: Option<Spanned<AccessSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessSpec {
    levels: BTreeMap<String, Vec<String>>,
    source: BTreeMap<String, BTreeMap<String, String>>,
    target: BTreeMap<String, BTreeMap<String, String>>,
}

/// Rows where the boolean source column `when` is true are counted as skipped with `reason`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipRule {
    pub when: String,
    pub reason: String,
}

/// Who may see a row, declared by an entity (`[entity.access]`): named levels, each a set of
/// audiences, and per deciding column (of the source query, or of the target row) the level of
/// each value (`"*"` for any other). A row's audience is what every deciding column allows
/// (the intersection); the engine refuses to write a row whose target audience holds anyone
/// its source audience does not.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    pub levels: BTreeMap<String, BTreeSet<String>>,
    pub source: BTreeMap<String, BTreeMap<String, String>>,
    pub target: BTreeMap<String, BTreeMap<String, String>>,
}

impl Access {
    /// The audience a row allows: the intersection of its deciding columns' levels. `value`
    /// renders a column's value as text (`None`: the column is NULL).
    ///
    /// # Errors
    /// A value no map names (and no `"*"`): who may see the row cannot be told.
    pub fn audience(
        &self,
        side: &str,
        columns: &BTreeMap<String, BTreeMap<String, String>>,
        value: impl Fn(&str) -> Option<String>,
    ) -> std::result::Result<BTreeSet<String>, String> {
        let mut out: Option<BTreeSet<String>> = None;
        for (column, map) in columns {
            let v = value(column).unwrap_or_else(|| "null".into());
            let level = map.get(&v).or_else(|| map.get("*")).ok_or_else(|| {
                format!("access: the {side} value {column} = {v} has no level in [entity.access.{side}.{column}], so who may see the row cannot be told")
            })?;
            let allowed = &self.levels[level];
            out = Some(match out {
                None => allowed.clone(),
                Some(o) => o.intersection(allowed).cloned().collect(),
            });
        }
        Ok(out.unwrap_or_default())
    }
}

/// What a profile deliberately leaves out (`[[not_migrated]]`): a source table, or a kind of
/// file whose paths a query lists. Every run reports its count (and bytes for files).
#[derive(Debug, Clone, PartialEq)]
pub struct NotMigrated {
    pub what: NotMigratedKind,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NotMigratedKind {
    /// A source table, by its name.
    Table(String),
    /// Files of a kind (`name`), listed by `source`: SQL returning a `path` column (relative to
    /// --media-from).
    Files { name: String, source: String },
}

/// A validated profile, entities in the order they run (dependencies first).
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub version: String,
    /// The application read, in words.
    pub source_app: String,
    /// Returns one value: the source's schema version.
    pub version_query: Option<String>,
    pub supported_versions: Vec<String>,
    /// Returns one value: the source's host name (the default `source_host`).
    pub host_query: Option<String>,
    /// DDL run on the target before the import (`CREATE … IF NOT EXISTS`).
    pub target_schema: String,
    pub entities: Vec<Entity>,
    /// The named media stores besides `--media-from` (object storage), name → description.
    pub media_stores: BTreeMap<String, String>,
    /// What the profile leaves out, with why.
    pub not_migrated: Vec<NotMigrated>,
    /// Where the profile came from (path or `builtin:name`), for messages.
    pub origin: String,
}

/// One entity: a source query, and either a target table or only media (or both).
#[derive(Debug, Clone)]
pub struct Entity {
    pub name: String,
    pub depends_on: Vec<String>,
    /// The source SQL, placeholders not yet bound.
    pub source: String,
    /// The integer source column pages are keyed on; `None` reads the query in one pass (media
    /// entities only).
    pub key: Option<String>,
    pub watermark: Option<String>,
    pub table: Option<String>,
    /// The report key (default: the entity name).
    pub stats: String,
    /// Target column → expression, in name order.
    pub columns: Vec<(String, Expr)>,
    /// The profile's enum maps overlaid with this entity's own.
    pub enums: BTreeMap<String, BTreeMap<String, String>>,
    pub skip: Vec<SkipRule>,
    /// Path templates of the files each row names (string expressions): where each file lands
    /// under `--media-to` (and, without `media_key`, where it is under `--media-from`).
    pub media: Vec<Expr>,
    /// The named media store the row's file is read from (NULL: `--media-from`).
    pub media_store: Option<Expr>,
    /// The file's key in that store (NULL: the path); the path ends with it.
    pub media_key: Option<Expr>,
    /// Who may see a row, when the entity declares it.
    pub access: Option<Access>,
}

impl Entity {
    /// Every source column the entity reads (columns, skip rules, key, watermark, media).
    pub fn source_columns(&self) -> BTreeSet<String> {
        let mut out = Vec::new();
        for (_, e) in &self.columns {
            e.columns(&mut out);
        }
        for e in self
            .media
            .iter()
            .chain(self.media_store.as_ref())
            .chain(self.media_key.as_ref())
        {
            e.columns(&mut out);
        }
        out.extend(self.skip.iter().map(|s| s.when.clone()));
        if let Some(a) = &self.access {
            out.extend(a.source.keys().cloned());
        }
        out.extend(self.key.clone());
        out.extend(self.watermark.clone());
        out.into_iter().collect()
    }
}

impl Profile {
    /// Reads and validates a profile file.
    ///
    /// # Errors
    /// An input error naming the file (and line, for content errors).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::input(format!(
                "cannot read the profile {}: {e}; give a profile file path or a shipped name ({})",
                path.display(),
                builtin_names().join(", ")
            ))
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Validates profile text; `origin` is its path (a `schema_file` is relative to it).
    ///
    /// # Errors
    /// An input error `origin:line:column: what is wrong`.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let dir = Path::new(origin)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let read = |file: &str| {
            let path: PathBuf = dir.join(file);
            std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read the target schema {}: {e}", path.display()))
        };
        if origin.ends_with(".yaml") || origin.ends_with(".yml") {
            return parse_yaml(text, origin, &read);
        }
        parse_with(text, origin, &read)
    }

    /// A profile shipped inside ferry (`peertube`).
    pub fn builtin(name: &str) -> Option<Self> {
        BUILTIN
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|(n, text, file, ddl)| {
                parse_with(text, &format!("builtin:{n}"), &|f| {
                    if f == *file {
                        Ok((*ddl).to_string())
                    } else {
                        Err(format!("the shipped profile names an unknown file {f}"))
                    }
                })
                .expect("the shipped profiles are valid (tested)")
            })
    }

    /// A shipped profile's name, or a path to a profile file.
    ///
    /// # Errors
    /// As [`Profile::load`].
    pub fn find(name_or_path: &str) -> Result<Self> {
        if let Some(p) = Self::builtin(name_or_path) {
            return Ok(p);
        }
        Self::load(Path::new(name_or_path))
    }

    /// The report's stats keys in run order (entities' `stats`, then `media` when any entity
    /// names files): what a server can show before the run starts.
    pub fn stats_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for e in self.entities.iter().filter(|e| e.table.is_some()) {
            if !keys.contains(&e.stats) {
                keys.push(e.stats.clone());
            }
        }
        if self.entities.iter().any(|e| !e.media.is_empty()) {
            keys.push("media".into());
        }
        keys
    }

    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.name == name)
    }
}

/// Names of the shipped profiles.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, ..)| *n).collect()
}

/// A YAML profile: the same keys as the TOML format. Syntax errors carry the YAML line; the
/// document is then read as its TOML equivalent, so content errors name the entity and key
/// (their TOML line would mean nothing to the author).
fn parse_yaml(
    text: &str,
    origin: &str,
    read: &dyn Fn(&str) -> std::result::Result<String, String>,
) -> Result<Profile> {
    let value: serde_norway::Value = serde_norway::from_str(text).map_err(|e| {
        let place = e.location().map_or_else(
            || origin.to_string(),
            |l| format!("{origin}:{}:{}", l.line(), l.column()),
        );
        Error::input(format!("{place}: invalid profile: {e}"))
    })?;
    let table = yaml_to_toml(value, "")
        .map_err(|m| Error::input(format!("{origin}: invalid profile: {m}")))?;
    let toml_text = toml::to_string(&table)
        .map_err(|e| Error::input(format!("{origin}: invalid profile: {e}")))?;
    const INNER: &str = "<yaml>";
    let mut profile = parse_with(&toml_text, INNER, read).map_err(|e| {
        let msg = e.message();
        let rest = msg
            .strip_prefix(INNER)
            .map(|r| {
                r.trim_start_matches(|c: char| c == ':' || c.is_ascii_digit())
                    .trim_start()
            })
            .unwrap_or(msg);
        Error::input(format!("{origin}: {rest}"))
    })?;
    profile.origin = origin.to_string();
    Ok(profile)
}

fn yaml_to_toml(v: serde_norway::Value, at: &str) -> std::result::Result<toml::Value, String> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => {
            return Err(format!(
                "{at} is empty (null); remove the key or give a value"
            ));
        }
        Y::Bool(b) => toml::Value::Boolean(b),
        Y::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Y::String(s) => toml::Value::String(s),
        Y::Sequence(items) => toml::Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| yaml_to_toml(v, &format!("{at}[{i}]")))
                .collect::<std::result::Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut t = toml::Table::new();
            for (k, v) in map {
                // Enum maps have numeric keys (`0: admin`); keys are text in the format.
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(format!("{at}: the key {other:?} is not text")),
                };
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                t.insert(key, yaml_to_toml(v, &path)?);
            }
            toml::Value::Table(t)
        }
        Y::Tagged(t) => yaml_to_toml(t.value, at)?,
    })
}

/// `origin:line:column` of a byte offset.
fn at(text: &str, origin: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |n| before.len() - n - 1)
        + 1;
    format!("{origin}:{line}:{col}")
}

fn parse_with(
    text: &str,
    origin: &str,
    read: &dyn Fn(&str) -> std::result::Result<String, String>,
) -> Result<Profile> {
    let file: File = toml::from_str(text).map_err(|e| {
        let place = e
            .span()
            .map_or_else(|| origin.to_string(), |s| at(text, origin, s.start));
        Error::input(format!("{place}: invalid profile: {}", e.message().trim()))
    })?;
    let err =
        |offset: usize, msg: String| Error::input(format!("{}: {msg}", at(text, origin, offset)));

    let target_schema = match (&file.target.schema, &file.target.schema_file) {
        (Some(s), None) => s.clone(),
        (None, Some(f)) => read(f.get_ref()).map_err(|m| err(f.span().start, m))?,
        _ => {
            return Err(Error::input(format!(
                "{origin}: [target] needs exactly one of schema (inline DDL) or schema_file (a path relative to the profile)"
            )));
        }
    };
    for store in file.media_stores.keys() {
        if store.is_empty() || !store.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::input(format!(
                "{origin}: media store name '{store}' must be letters, digits and _"
            )));
        }
    }
    if file.entities.is_empty() {
        return Err(Error::input(format!(
            "{origin}: the profile has no [[entity]]"
        )));
    }
    if !file.profile.supported_versions.is_empty() && file.profile.version_query.is_none() {
        return Err(Error::input(format!(
            "{origin}: [profile] supported_versions needs a version_query that returns the source's version"
        )));
    }

    let names: HashMap<&str, usize> = file
        .entities
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.get_ref().as_str(), i))
        .collect();
    let mut entities = Vec::new();
    let mut seen = BTreeSet::new();
    for spec in &file.entities {
        let name = spec.name.get_ref().clone();
        if !seen.insert(name.clone()) {
            return Err(err(
                spec.name.span().start,
                format!("entity '{name}' is declared twice"),
            ));
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(err(
                spec.name.span().start,
                format!("entity name '{name}' must be letters, digits and _"),
            ));
        }
        for d in &spec.depends_on {
            if !names.contains_key(d.get_ref().as_str()) {
                return Err(err(
                    d.span().start,
                    format!(
                        "entity '{name}' depends on '{}', which the profile does not declare",
                        d.get_ref()
                    ),
                ));
            }
        }
        if spec.table.is_none() && spec.media.is_empty() {
            return Err(err(
                spec.name.span().start,
                format!(
                    "entity '{name}' has neither a table nor media: give table = \"…\" with [entity.columns], or media = [\"path template\"]"
                ),
            ));
        }
        if spec.table.is_some() && spec.key.is_none() {
            return Err(err(
                spec.name.span().start,
                format!(
                    "entity '{name}' fills a table and needs key = \"<integer source id column>\" (pages and ids are keyed on it)"
                ),
            ));
        }
        if spec.table.is_some() && spec.columns.is_empty() {
            return Err(err(
                spec.name.span().start,
                format!("entity '{name}' fills a table but has no [entity.columns]"),
            ));
        }
        let mut enums = file.enums.clone();
        enums.extend(spec.enums.clone());
        let mut columns = Vec::new();
        for (col, text_expr) in &spec.columns {
            if col == "id" || col == "source_host" {
                return Err(err(
                    text_expr.span().start,
                    format!(
                        "entity '{name}': column '{col}' is filled by ferry itself (the deterministic id and the source host); remove it"
                    ),
                ));
            }
            let e = expr::parse(text_expr.get_ref()).map_err(|m| {
                err(
                    text_expr.span().start,
                    format!("entity '{name}' column '{col}': {m}"),
                )
            })?;
            check_refs(&e, &enums, &names).map_err(|m| {
                err(
                    text_expr.span().start,
                    format!("entity '{name}' column '{col}': {m}"),
                )
            })?;
            columns.push((col.clone(), e));
        }
        let mut media = Vec::new();
        for m in &spec.media {
            let e = expr::parse(m.get_ref())
                .map_err(|msg| err(m.span().start, format!("entity '{name}' media: {msg}")))?;
            check_refs(&e, &enums, &names)
                .map_err(|msg| err(m.span().start, format!("entity '{name}' media: {msg}")))?;
            media.push(e);
        }
        let mut located = [None, None];
        for (slot, (label, m)) in located.iter_mut().zip([
            ("media_store", &spec.media_store),
            ("media_key", &spec.media_key),
        ]) {
            let Some(m) = m else { continue };
            if spec.media.len() != 1 {
                return Err(err(
                    m.span().start,
                    format!(
                        "entity '{name}' {label}: needs exactly one media entry (the file it locates)"
                    ),
                ));
            }
            let e = expr::parse(m.get_ref())
                .map_err(|msg| err(m.span().start, format!("entity '{name}' {label}: {msg}")))?;
            check_refs(&e, &enums, &names)
                .map_err(|msg| err(m.span().start, format!("entity '{name}' {label}: {msg}")))?;
            *slot = Some(e);
        }
        let [media_store, media_key] = located;
        let access = match &spec.access {
            Some(a) => Some(
                check_access(a.get_ref(), &spec.columns)
                    .map_err(|m| err(a.span().start, format!("entity '{name}' access: {m}")))?,
            ),
            None => None,
        };
        check_placeholders(spec.source.get_ref()).map_err(|m| {
            err(
                spec.source.span().start,
                format!("entity '{name}' source: {m}"),
            )
        })?;
        entities.push(Entity {
            name: name.clone(),
            depends_on: spec
                .depends_on
                .iter()
                .map(|d| d.get_ref().clone())
                .collect(),
            source: spec.source.get_ref().clone(),
            key: spec.key.as_ref().map(|k| k.get_ref().clone()),
            watermark: spec.watermark.clone(),
            table: spec.table.clone(),
            stats: spec.stats.clone().unwrap_or(name),
            columns,
            enums,
            skip: spec.skip.clone(),
            media,
            media_store,
            media_key,
            access,
        });
    }
    let entities = order(entities).map_err(|m| Error::input(format!("{origin}: {m}")))?;
    let mut not_migrated = Vec::new();
    for n in &file.not_migrated {
        let what = match (&n.table, &n.files, &n.source) {
            (Some(t), None, None) => NotMigratedKind::Table(t.get_ref().clone()),
            (None, Some(f), Some(q)) => {
                check_placeholders(q.get_ref()).map_err(|m| {
                    err(q.span().start, format!("not_migrated {}: {m}", f.get_ref()))
                })?;
                NotMigratedKind::Files {
                    name: f.get_ref().clone(),
                    source: q.get_ref().clone(),
                }
            }
            _ => {
                return Err(err(
                    n.reason.span().start,
                    "[[not_migrated]] names either table = \"…\", or files = \"kind\" with source = \"SQL returning a path column\"".into(),
                ));
            }
        };
        if n.reason.get_ref().trim().is_empty() {
            return Err(err(
                n.reason.span().start,
                "[[not_migrated]] needs a reason (why the data is left out)".into(),
            ));
        }
        not_migrated.push(NotMigrated {
            what,
            reason: n.reason.get_ref().clone(),
        });
    }
    Ok(Profile {
        name: file.profile.name,
        description: file.profile.description,
        version: file.profile.version,
        source_app: file.profile.source,
        version_query: file.profile.version_query.map(|q| q.into_inner()),
        supported_versions: file.profile.supported_versions,
        host_query: file.profile.host_query,
        target_schema,
        entities,
        media_stores: file.media_stores,
        not_migrated,
        origin: origin.to_string(),
    })
}

/// An access declaration: every level a value names exists, and every target column it reads
/// is one the entity fills.
fn check_access(
    a: &AccessSpec,
    columns: &BTreeMap<String, Spanned<String>>,
) -> std::result::Result<Access, String> {
    if a.levels.is_empty() || a.source.is_empty() || a.target.is_empty() {
        return Err(
            "give levels (name = [audiences]), and source and target maps (column = { value = level })".into(),
        );
    }
    for (side, maps) in [("source", &a.source), ("target", &a.target)] {
        for (column, map) in maps {
            if side == "target" && !columns.contains_key(column) {
                return Err(format!(
                    "target column '{column}' is not one of the entity's columns"
                ));
            }
            for (value, level) in map {
                if !a.levels.contains_key(level) {
                    return Err(format!(
                        "{side}.{column}: value {value} names level '{level}', which levels does not declare"
                    ));
                }
            }
        }
    }
    Ok(Access {
        levels: a
            .levels
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect(),
        source: a.source.clone(),
        target: a.target.clone(),
    })
}

fn check_refs(
    e: &Expr,
    enums: &BTreeMap<String, BTreeMap<String, String>>,
    entities: &HashMap<&str, usize>,
) -> std::result::Result<(), String> {
    match e {
        Expr::Enum { map, arg } => {
            if !enums.contains_key(map) {
                return Err(format!(
                    "enum map '{map}' is not declared ([enums.{map}] or [entity.enums.{map}])"
                ));
            }
            check_refs(arg, enums, entities)
        }
        Expr::Uuid5 { entity, arg } => {
            if !entities.contains_key(entity.as_str()) {
                return Err(format!(
                    "uuid5 names entity '{entity}', which the profile does not declare"
                ));
            }
            check_refs(arg, enums, entities)
        }
        _ => Ok(()),
    }
}

/// The placeholders a source query may use, bound as parameters by the engine.
pub const PLACEHOLDERS: &[&str] = &["since", "include_remote", "require_password_reset"];

fn check_placeholders(sql: &str) -> std::result::Result<(), String> {
    for name in placeholder_names(sql) {
        if !PLACEHOLDERS.contains(&name.as_str()) {
            return Err(format!(
                "unknown placeholder {{{name}}}: source queries may use {}",
                PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

/// `{name}` occurrences (letters and _ only) in SQL.
pub(crate) fn placeholder_names(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        if let Some(close) = after.find('}') {
            let name = &after[..close];
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                out.push(name.to_string());
            }
        }
        rest = after;
    }
    out
}

/// Dependencies first, otherwise in file order (Kahn's algorithm); a cycle is an error.
fn order(entities: Vec<Entity>) -> std::result::Result<Vec<Entity>, String> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut left = entities;
    let mut out = Vec::new();
    while !left.is_empty() {
        let Some(i) = left
            .iter()
            .position(|e| e.depends_on.iter().all(|d| done.contains(d)))
        else {
            let names: Vec<_> = left.iter().map(|e| e.name.as_str()).collect();
            return Err(format!(
                "the depends_on of these entities form a cycle: {}",
                names.join(", ")
            ));
        };
        let e = left.remove(i);
        done.insert(e.name.clone());
        out.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error parsing `text` (as the file `file`) fails with, which must contain `needle`.
    fn refused(text: &str, file: &str, needle: &str) -> String {
        let e = Profile::parse(text, file).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
        e
    }

    const MINI: &str = include_str!("../tests/fixtures/mini-profile.toml");

    #[test]
    fn dependencies_run_first() {
        let p = Profile::parse(MINI, "mini.toml").unwrap();
        let names: Vec<_> = p.entities.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn errors_point_at_the_line() {
        let bad = MINI.replace("uuid5(a, id)", "uuid5(nope, id)");
        let e = refused(&bad, "mini.toml", "'nope'");
        assert!(e.starts_with("mini.toml:14:"), "{e}");
        let bad = MINI.replace("depends_on = [\"a\"]", "depends_on = [\"zz\"]");
        let e = refused(&bad, "mini.toml", "mini.toml:10:");
        assert!(e.starts_with("mini.toml:10:"), "{e}");
        let bad = MINI.replace(
            "key = \"id\"\ntable = \"t\"\ncolumns = { n = \"'x'\" }",
            "kee = 1",
        );
        let e = refused(&bad, "mini.toml", "mini.toml:19:");
        assert!(e.contains("kee"), "{e}");
        let bad = MINI.replace("SELECT 1 AS id\"\nkey", "SELECT {nope} AS id\"\nkey");
        refused(&bad, "mini.toml", "unknown placeholder {nope}");
    }

    #[test]
    fn yaml_profiles_read_like_toml() {
        let yaml = r#"
profile:
  name: mini
target:
  schema: CREATE TABLE IF NOT EXISTS t (id uuid PRIMARY KEY, source_host text, n text)
enums:
  kind:
    0: zero
entity:
  - name: a
    source: SELECT 1 AS id, 0 AS k
    key: id
    table: t
    columns:
      n: enum(kind, k)
"#;
        let p = Profile::parse(yaml, "mini.yaml").unwrap();
        assert_eq!(p.entities[0].enums["kind"]["0"], "zero");
        assert_eq!(p.origin, "mini.yaml");
        let e = Profile::parse(&yaml.replace("enum(kind, k)", "enum(nope, k)"), "mini.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("mini.yaml: entity 'a' column 'n'"), "{e}");
        let e = Profile::parse("profile:\n  name: [unclosed\n", "bad.yml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("bad.yml:"), "{e}");
        assert!(e.contains("invalid profile"), "{e}");
    }

    #[test]
    fn the_documented_example_is_valid() {
        let doc = include_str!("../../../docs/profiles.md");
        let start = doc.find("```toml\n").expect("an example") + 8;
        let text = &doc[start..start + doc[start..].find("```").unwrap()];
        let text = text.replace(
            "schema_file = \"forum-target.sql\"",
            "schema = \"SELECT 1\"",
        );
        let p = Profile::parse(&text, "forum.toml").unwrap();
        assert_eq!(p.entities[0].media.len(), 1);
        assert!(p.entities[0].source_columns().contains("avatar"));
    }

    #[test]
    fn media_stores_locate_one_media_entry() {
        let files = "\n[[entity]]\nname = \"files\"\nsource = \"SELECT 'a/k' AS path, 'os' AS store, 'k' AS object_key\"\nmedia = [\"path\"]\nmedia_store = \"store\"\nmedia_key = \"object_key\"\n";
        let with_store = format!("[media_stores]\nos = \"object storage\"\n{MINI}{files}");
        let p = Profile::parse(&with_store, "mini.toml").unwrap();
        assert_eq!(p.media_stores["os"], "object storage");
        let e = p.entity("files").unwrap();
        assert!(e.media_store.is_some() && e.media_key.is_some());
        assert!(e.source_columns().contains("object_key"));
        let two = with_store.replace("media = [\"path\"]", "media = [\"path\", \"'b'\"]");
        refused(
            &two,
            "mini.toml",
            "entity 'files' media_store: needs exactly one media entry",
        );
        let bad = with_store.replace("[media_stores]\nos", "[media_stores]\n\"o s\"");
        refused(&bad, "mini.toml", "media store name 'o s'");
    }

    #[test]
    fn cycles_are_refused() {
        let bad = MINI.replace("name = \"a\"", "name = \"a\"\ndepends_on = [\"b\"]");
        refused(&bad, "mini.toml", "cycle");
    }

    #[test]
    fn the_shipped_profiles_are_valid() {
        for name in builtin_names() {
            let p = Profile::builtin(name).unwrap();
            assert!(!p.entities.is_empty());
        }
        let p = Profile::builtin("peertube").unwrap();
        let stats: BTreeSet<_> = p.entities.iter().map(|e| e.stats.as_str()).collect();
        assert_eq!(
            stats,
            BTreeSet::from([
                "users",
                "channels",
                "videos",
                "captions",
                "comments",
                "playlists",
                "chapters",
                "ratings",
                "video_sources",
                "storyboards",
                "streaming_playlists",
                "playlist_items",
                "subscriptions",
                "video_passwords",
                "media"
            ])
        );
        assert_eq!(p.supported_versions, ["865"]);
        assert_eq!(
            p.stats_keys(),
            [
                "users",
                "channels",
                "videos",
                "video_passwords",
                "captions",
                "comments",
                "playlists",
                "playlist_items",
                "subscriptions",
                "chapters",
                "ratings",
                "video_sources",
                "storyboards",
                "streaming_playlists",
                "media"
            ]
        );
        assert!(p.entity("videos").unwrap().access.is_some());
        assert!(p.not_migrated.iter().any(|n| n.what
            == NotMigratedKind::Table("userVideoHistory".into())
            && !n.reason.is_empty()));
    }

    const GUARDED: &str = include_str!("../tests/fixtures/guarded-profile.toml");

    #[test]
    fn access_and_not_migrated_are_checked() {
        let p = Profile::parse(GUARDED, "g.toml").unwrap();
        let a = p.entities[0].access.as_ref().unwrap();
        // The source columns an access rule reads must come from the query.
        assert!(p.entities[0].source_columns().contains("hidden"));
        let source = |p: &str, hidden: &str| {
            let (p, hidden) = (p.to_string(), hidden.to_string());
            a.audience("source", &a.source, move |c| {
                Some(if c == "p" { p.clone() } else { hidden.clone() })
            })
        };
        assert_eq!(source("1", "false").unwrap().len(), 2);
        assert_eq!(source("1", "true").unwrap().len(), 1, "the intersection");
        assert_eq!(
            source("7", "false").unwrap().len(),
            1,
            "\"*\" for any other"
        );
        let e = a
            .audience("target", &a.target, |_| Some("ajar".into()))
            .unwrap_err();
        assert!(e.contains("vis = ajar has no level"), "{e}");
        assert_eq!(p.not_migrated.len(), 1);

        let bad = GUARDED.replace("closed = \"owner\" }", "closed = \"nobody\" }");
        let e = refused(&bad, "g.toml", "names level 'nobody'");
        assert!(e.starts_with("g.toml:"), "{e}");
        let bad = GUARDED.replace("target = { vis", "target = { visibility");
        refused(&bad, "g.toml", "target column 'visibility' is not one of");
        let bad = GUARDED.replace("table = \"history\"", "files = \"history\"");
        refused(&bad, "g.toml", "[[not_migrated]] names either");
        let bad = GUARDED.replace("reason = \"watch history\"", "reason = \" \"");
        refused(&bad, "g.toml", "needs a reason");
    }
}
