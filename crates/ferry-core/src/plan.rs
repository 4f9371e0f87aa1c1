//! The planner: pure, no I/O. From a source schema and a target dialect it decides which tables
//! are copied and in what order (parents before children; cycles broken by adding those foreign
//! keys after the load), what every table and column is called in the target, how every column
//! is typed and converted, and the target's DDL by phase. `--dry-run` prints exactly this plan.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::capabilities::Capabilities;
use crate::connector::{Ddl, Dialect};
use crate::locator::Backend;
use crate::names;
use crate::schema::{
    DataType, ForeignKey, Index, NativeObject, ObjectPhase, ObjectRows, Schema, SkippedObject,
    Table,
};

#[derive(Debug, Clone, Serialize)]
pub struct ColumnPlan {
    pub source_name: String,
    pub target_name: String,
    pub source_type: String,
    pub data_type: DataType,
    /// Convert values to this type before writing; `None` passes them through.
    pub convert_to: Option<DataType>,
    pub native_type: String,
    pub nullable: bool,
    pub default_sql: Option<String>,
    pub auto_increment: bool,
    /// Every lossy step or translation, named for the report.
    pub notes: Vec<String>,
}

/// An index as the target gets it: the source's [`Index`] under its target name, on the
/// target's column names.
pub type IndexPlan = Index;

/// A foreign key as the target gets it: target table and column names, the referenced columns
/// spelled out, the actions the target can express.
pub type ForeignKeyPlan = ForeignKey;

#[derive(Debug, Clone, Serialize)]
pub struct GeneratedColumn {
    pub name: String,
    pub native_type: String,
    pub expression: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TablePlan {
    /// The source table, restricted to the columns that are copied (readers read exactly these).
    #[serde(skip)]
    pub source: Table,
    pub source_name: String,
    pub target_name: String,
    pub columns: Vec<ColumnPlan>,
    /// Target names of the primary key columns.
    pub primary_key: Vec<String>,
    pub uniques: Vec<Vec<String>>,
    pub indexes: Vec<IndexPlan>,
    pub foreign_keys: Vec<ForeignKeyPlan>,
    /// Source names of the tables this one references (inside the copied set, itself excluded).
    pub depends_on: Vec<String>,
    pub row_count: u64,
    /// Indexes into `columns` of the values that name a row in errors; empty: the row locator.
    pub key_columns: Vec<usize>,
    /// Generated columns recreated from their expression (same backend), not copied.
    pub generated: Vec<GeneratedColumn>,
    /// The table already exists in the target (created by the application's migrations): ferry
    /// fills it and creates nothing, erasing rows (not the table) under `--force`.
    pub existing: bool,
}

impl TablePlan {
    /// Names row `row` of a batch for an error message: `id=42` or `rowid 17`.
    pub fn describe_row(&self, batch: &crate::value::Batch, row: usize) -> String {
        if self.key_columns.is_empty() {
            return match batch.locators.get(row) {
                Some(l) => format!("rowid {l}"),
                None => format!("row {} of its batch", row + 1),
            };
        }
        let values = batch.row(row);
        self.key_columns
            .iter()
            .map(|&i| format!("{}={}", self.columns[i].source_name, values[i].render()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub source: Backend,
    pub target: Backend,
    /// Parents before children.
    pub tables: Vec<TablePlan>,
    pub skipped: Vec<SkippedObject>,
    /// The source's user-defined types, created first by a target of the same backend.
    pub native_types: Vec<crate::schema::NativeType>,
    /// Views, triggers, functions... a target of the same backend recreates (in order).
    pub objects: Vec<NativeObject>,
    /// Renames, dropped defaults, broken cycles, foreign keys to tables left out.
    pub warnings: Vec<String>,
    /// Each deterministic translation applied to what the source declares (a name, a key, an
    /// action, a type the target spells otherwise), as `what: how`. Part of [`Plan::changes`].
    pub translations: Vec<String>,
    pub ddl: Ddl,
    /// The target's capabilities, for the steps after planning (verification's rule).
    #[serde(skip)]
    pub capabilities: Capabilities,
}

/// What kind of change a copy makes to what the source holds or declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Values or types that do not arrive exactly as the source had them.
    Lossy,
    /// A documented, deterministic rewrite of a declaration.
    Translation,
    /// An object the target does not get.
    NotCopied,
}

impl ChangeKind {
    /// The name in JSON and log fields.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Lossy => "lossy",
            ChangeKind::Translation => "translation",
            ChangeKind::NotCopied => "not_copied",
        }
    }
}

/// One change the report announces and `--strict` refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub what: String,
}

impl Change {
    pub fn not_copied(object: &SkippedObject) -> Self {
        let size = match (object.count, object.bytes) {
            (Some(n), Some(b)) => format!(" ({n}, {b} bytes)"),
            (Some(n), None) => format!(" ({n})"),
            _ => String::new(),
        };
        Self {
            kind: ChangeKind::NotCopied,
            what: format!("{} {}{size}: {}", object.kind, object.name, object.reason),
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ChangeKind::Lossy => "lossy",
            ChangeKind::Translation => "translated",
            ChangeKind::NotCopied => "not copied",
        };
        write!(f, "{kind}: {}", self.what)
    }
}

impl Plan {
    pub fn table(&self, source_name: &str) -> Option<&TablePlan> {
        self.tables.iter().find(|t| t.source_name == source_name)
    }

    /// The statements of the recreated objects that run in `phase`, in order.
    pub fn object_sql(&self, phase: ObjectPhase) -> Vec<String> {
        self.objects
            .iter()
            .filter(|o| o.phase == phase)
            .flat_map(|o| o.create.iter().cloned())
            .collect()
    }

    /// Statements erasing the recreated objects under `--force`, dependents first, to run
    /// before the tables are dropped.
    pub fn object_drops(&self) -> Vec<String> {
        self.objects
            .iter()
            .rev()
            .flat_map(|o| o.drop.iter().cloned())
            .collect()
    }

    /// Every lossy step, as `table.column: note` lines.
    pub fn lossy_steps(&self) -> Vec<String> {
        self.tables
            .iter()
            .flat_map(|t| {
                t.columns.iter().flat_map(move |c| {
                    c.notes
                        .iter()
                        .map(move |n| format!("{}.{}: {n}", t.source_name, c.source_name))
                })
            })
            .collect()
    }

    /// Every change this plan makes, in one list: lossy steps, translations, objects not
    /// copied. The report lists them and `--strict` refuses a plan where it is not empty, so a
    /// new kind of change is announced and refusable by being added here (or to the lists it
    /// reads).
    pub fn changes(&self) -> Vec<Change> {
        let lossy = self.lossy_steps().into_iter().map(|what| Change {
            kind: ChangeKind::Lossy,
            what,
        });
        let translations = self.translations.iter().map(|what| Change {
            kind: ChangeKind::Translation,
            what: what.clone(),
        });
        let not_copied = self.skipped.iter().map(Change::not_copied);
        lossy.chain(translations).chain(not_copied).collect()
    }
}

/// Builds the plan for copying `schema` into a target speaking `dialect`.
pub fn build(schema: &Schema, dialect: &dyn Dialect) -> Plan {
    let mut warnings = Vec::new();
    // Deterministic translations (renames, scoped index names, foreign key actions) and
    // objects left out: announced in every report and refused by `--strict`.
    let mut translations = Vec::new();
    let mut left_out: Vec<SkippedObject> = Vec::new();
    let capabilities = dialect.capabilities();
    let max = capabilities.max_identifier_bytes;
    let fold = capabilities.folds_case;
    let same_backend = schema.backend == dialect.backend();
    let (objects, skipped, dropped) = split_objects(schema, dialect.backend(), &mut translations);
    let kept;
    let schema = if dropped.is_empty() {
        schema
    } else {
        kept = Schema {
            tables: schema
                .tables
                .iter()
                .filter(|t| !dropped.contains(&t.name))
                .cloned()
                .collect(),
            ..schema.clone()
        };
        &kept
    };

    // Tables and indexes share one namespace in PostgreSQL, so fit them together.
    let mut all_names: Vec<String> = schema.tables.iter().map(|t| t.name.clone()).collect();
    let index_owner: Vec<(usize, usize)> = schema
        .tables
        .iter()
        .enumerate()
        .flat_map(|(ti, t)| (0..t.indexes.len()).map(move |ii| (ti, ii)))
        .collect();
    all_names.extend(crate::preflight::scoped_index_names(
        schema,
        dialect,
        &mut translations,
    ));
    let fitted = names::fit_all(&all_names, max, fold);
    for (old, new) in all_names.iter().zip(&fitted) {
        if old == new {
            continue;
        }
        // Say why: a short name is renamed only because it collides with another.
        translations.push(if old.len() > max {
            format!(
                "name '{old}' is {} bytes, longer than the target allows ({max} bytes), and becomes '{new}'",
                old.len()
            )
        } else {
            format!(
                "name '{old}' is used more than once in the target's one namespace for tables and indexes{} and becomes '{new}'",
                if fold { " (names differing only in case collide)" } else { "" }
            )
        });
    }
    let table_names: HashMap<&str, &str> = schema
        .tables
        .iter()
        .zip(&fitted)
        .map(|(t, n)| (t.name.as_str(), n.as_str()))
        .collect();
    let mut index_names: HashMap<(usize, usize), String> = HashMap::new();
    for (k, &(ti, ii)) in index_owner.iter().enumerate() {
        index_names.insert((ti, ii), fitted[schema.tables.len() + k].clone());
    }

    let column_names: HashMap<&str, HashMap<String, String>> = schema
        .tables
        .iter()
        .map(|t| {
            let cols: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
            let fitted = names::fit_all(&cols, max, fold);
            (t.name.as_str(), cols.into_iter().zip(fitted).collect())
        })
        .collect();

    let mut tables = Vec::new();
    for (ti, table) in schema.tables.iter().enumerate() {
        // Between two databases of one backend a generated column is recreated, not copied:
        // a backend replaying its own CREATE TABLE needs no expression; others do.
        let recreated = |c: &crate::schema::Column| {
            same_backend
                && c.generated
                && (capabilities.replays_native_ddl || c.generation.is_some())
        };
        let copied: Vec<_> = table
            .columns
            .iter()
            .filter(|c| !recreated(c))
            .cloned()
            .collect();
        let generated: Vec<GeneratedColumn> = table
            .columns
            .iter()
            .filter(|c| recreated(c) && c.generation.is_some())
            .map(|c| GeneratedColumn {
                name: c.name.clone(),
                native_type: c.native_type.clone(),
                expression: c.generation.clone().unwrap_or_default(),
            })
            .collect();
        let col_map = &column_names[table.name.as_str()];
        let rename = |c: &String| col_map.get(c).cloned().unwrap_or_else(|| c.clone());
        let mut columns = Vec::new();
        for col in &copied {
            let target_name = rename(&col.name);
            if target_name != col.name {
                translations.push(format!(
                    "column '{}.{}' is longer than the target allows and becomes '{target_name}'",
                    table.name, col.name
                ));
            }
            let mut mapping = dialect.map_column(col, table, schema.backend);
            // A column of a type the target recreates (a PostgreSQL domain, between two
            // PostgreSQL databases) keeps that type; what the source says about other
            // backends does not apply.
            let recreated_type = same_backend
                && schema
                    .native_types
                    .iter()
                    .any(|n| n.name == col.native_type);
            if recreated_type {
                mapping.native_type = col.native_type.clone();
            }
            // The profile's notes describe a conversion; values passed through are not converted.
            let mut notes = if mapping.convert_to.is_some() && !recreated_type {
                col.notes.clone()
            } else {
                Vec::new()
            };
            notes.extend(mapping.notes);
            if col.generated {
                notes.push(
                    "generated column: copied as plain values, its expression is not recreated"
                        .into(),
                );
            }
            columns.push(ColumnPlan {
                source_name: col.name.clone(),
                target_name,
                source_type: col.native_type.clone(),
                data_type: col.data_type.clone(),
                convert_to: mapping.convert_to,
                native_type: mapping.native_type,
                nullable: col.nullable,
                default_sql: mapping.default_sql,
                auto_increment: col.auto_increment,
                notes,
            });
        }
        let key_columns: Vec<usize> = table
            .primary_key
            .iter()
            .filter_map(|k| copied.iter().position(|c| &c.name == k))
            .collect();
        let indexes = table
            .indexes
            .iter()
            .enumerate()
            .filter_map(|(ii, idx): (usize, &Index)| {
                if !idx.portable && !same_backend {
                    left_out.push(SkippedObject {
                        kind: "index".into(),
                        name: format!("{} on {}", idx.name, table.name),
                        reason: format!(
                            "uses expressions or a WHERE clause: not recreated on {}",
                            dialect.backend()
                        ),
                        ..Default::default()
                    });
                    return None;
                }
                Some(IndexPlan {
                    name: index_names[&(ti, ii)].clone(),
                    columns: idx.columns.iter().map(rename).collect(),
                    unique: idx.unique,
                    native_sql: idx.native_sql.clone(),
                    portable: idx.portable,
                })
            })
            .collect();
        let mut depends_on = BTreeSet::new();
        let mut foreign_keys = Vec::new();
        for fk in &table.foreign_keys {
            let Some(parent) = schema.table(&fk.ref_table) else {
                left_out.push(SkippedObject {
                    kind: "foreign key".into(),
                    name: format!("{}({})", table.name, fk.columns.join(", ")),
                    reason: format!("references '{}', which is not copied", fk.ref_table),
                    ..Default::default()
                });
                continue;
            };
            if fk.ref_table != table.name {
                depends_on.insert(fk.ref_table.clone());
            }
            let parent_map = &column_names[parent.name.as_str()];
            let ref_columns = if fk.ref_columns.is_empty() {
                &parent.primary_key
            } else {
                &fk.ref_columns
            };
            // ON DELETE and ON UPDATE, as the target can express them.
            let mut action = |action: Option<&String>, what| {
                let (columns, notes) = (&fk.columns, &mut translations);
                crate::preflight::fk_action(action, what, table, columns, dialect, notes)
            };
            foreign_keys.push(ForeignKeyPlan {
                columns: fk.columns.iter().map(rename).collect(),
                ref_table: table_names[parent.name.as_str()].to_string(),
                ref_columns: ref_columns
                    .iter()
                    .map(|c| parent_map.get(c).cloned().unwrap_or_else(|| c.clone()))
                    .collect(),
                on_delete: action(fk.on_delete.as_ref(), "DELETE"),
                on_update: action(fk.on_update.as_ref(), "UPDATE"),
                enforced: fk.enforced,
            });
        }
        let mut tp = TablePlan {
            source: Table {
                columns: copied.clone(),
                ..table.clone()
            },
            source_name: table.name.clone(),
            target_name: table_names[table.name.as_str()].to_string(),
            primary_key: table.primary_key.iter().map(rename).collect(),
            uniques: table
                .uniques
                .iter()
                .map(|u| u.iter().map(rename).collect())
                .collect(),
            indexes,
            foreign_keys,
            depends_on: depends_on.into_iter().collect(),
            row_count: table.row_count,
            key_columns,
            columns,
            generated,
            existing: false,
        };
        read_native_as_text(&mut tp);
        tables.push(tp);
    }

    let (order, cycles) = fk_order(&tables);
    for cycle in cycles {
        warnings.push(format!(
            "foreign keys form a cycle between {}: they are added after all rows are loaded",
            cycle.join(", ")
        ));
    }
    let mut by_name: BTreeMap<String, TablePlan> = tables
        .into_iter()
        .map(|t| (t.source_name.clone(), t))
        .collect();
    let tables: Vec<TablePlan> = order.iter().filter_map(|n| by_name.remove(n)).collect();

    let mut plan = Plan {
        source: schema.backend,
        target: dialect.backend(),
        tables,
        // A domain's constraints are skipped only where the domain is not recreated.
        skipped: skipped
            .into_iter()
            .filter(|s| !(same_backend && schema.native_types.iter().any(|n| n.name == s.name)))
            .chain(left_out)
            .collect(),
        objects,
        native_types: if same_backend {
            schema.native_types.clone()
        } else {
            Vec::new()
        },
        warnings,
        translations,
        ddl: Ddl::default(),
        capabilities,
    };
    plan.ddl = dialect.ddl(&plan);
    plan
}

/// Which objects a target of `target` recreates (all of them on the source's own backend, but
/// those of tables left out), which are named as not copied, and which tables are left out
/// with their object (a virtual table whose rows only its own backend can hold). A full-text
/// table holding its own text goes to another backend as a plain table, named as a translation.
fn split_objects(
    schema: &Schema,
    target: Backend,
    translations: &mut Vec<String>,
) -> (Vec<NativeObject>, Vec<SkippedObject>, BTreeSet<String>) {
    let same_backend = schema.backend == target;
    let mut objects = Vec::new();
    let mut skipped = schema.skipped.clone();
    let mut dropped = BTreeSet::new();
    for o in &schema.objects {
        let table_out = o
            .table
            .as_ref()
            .filter(|t| schema.table(t).is_none())
            .cloned();
        if same_backend && table_out.is_none() {
            objects.push(o.clone());
            continue;
        }
        if o.rows == ObjectRows::Everywhere && table_out.is_none() {
            translations.push(format!(
                "{} '{}' is copied as a plain table of its columns (its text exists nowhere else); the {} full-text index itself is not recreated on {target}",
                o.kind, o.name, schema.backend
            ));
            continue;
        }
        if o.rows != ObjectRows::None {
            dropped.insert(o.name.clone());
        }
        let reason = match table_out {
            Some(t) if t == o.name => "left out by the table filter".to_string(),
            Some(t) => format!("its table \"{t}\" is not copied"),
            None => format!(
                "recreated only between two {} databases; recreate it on the target",
                schema.backend
            ),
        };
        skipped.push(SkippedObject {
            kind: o.kind.clone(),
            name: o.name.clone(),
            reason,
            ..Default::default()
        });
    }
    (objects, skipped, dropped)
}

/// A native column whose values are not written in the backend's own form (another target, or
/// an existing target column of another type) is read as its text form, an array bound for a
/// JSON column as a JSON array.
fn read_native_as_text(tp: &mut TablePlan) {
    for (src, col) in tp.source.columns.iter_mut().zip(&tp.columns) {
        if let DataType::Native { array, .. } = src.data_type
            && !matches!(col.convert_to, Some(DataType::Native { .. }))
        {
            // An array written as JSON is read as JSON (the source renders it).
            src.data_type = if array && col.convert_to == Some(DataType::Json) {
                DataType::Json
            } else {
                DataType::text()
            };
        }
    }
}

/// Where the target's own tables are used (`--schema auto|existing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaMode {
    /// Fill tables that exist in the target, create the missing ones.
    #[default]
    Auto,
    /// ferry creates every table (existing ones are refused, or dropped under `--force`).
    Create,
    /// Only fill tables the application created; a missing one is an error.
    Existing,
}

/// Points the plan at tables that already exist in the target: columns matched by name (exactly,
/// else case-insensitively), values converted to each target column's own type, nothing created
/// for those tables. Returns notes for the report.
///
/// # Errors
/// An input error for a table missing under `Existing`, or a source column with no target
/// column (unless `ignore_missing_columns`, which leaves it out and says so).
pub fn adopt(
    plan: &mut Plan,
    target: &Schema,
    dialect: &dyn Dialect,
    mode: SchemaMode,
    ignore_missing_columns: bool,
) -> crate::error::Result<Vec<String>> {
    use crate::error::Error;
    let mut notes = Vec::new();
    if mode == SchemaMode::Create {
        return Ok(notes);
    }
    let same_backend = plan.source == plan.target;
    let find = |name: &str| {
        target.tables.iter().find(|t| t.name == name).or_else(|| {
            target
                .tables
                .iter()
                .find(|t| t.name.eq_ignore_ascii_case(name))
        })
    };
    for tp in &mut plan.tables {
        let Some(existing) = find(&tp.target_name).or_else(|| find(&tp.source_name)) else {
            if mode == SchemaMode::Existing {
                return Err(Error::input(format!(
                    "table \"{}\" does not exist in the target: --schema existing only fills tables the application created (--schema auto creates missing ones)",
                    tp.source_name
                )));
            }
            continue;
        };
        tp.existing = true;
        tp.target_name = existing.name.clone();
        // The application's own foreign keys, which the target re-validates after the load.
        tp.foreign_keys = existing
            .foreign_keys
            .iter()
            .map(|fk| ForeignKeyPlan {
                columns: fk.columns.clone(),
                ref_table: fk.ref_table.clone(),
                ref_columns: if fk.ref_columns.is_empty() {
                    target
                        .table(&fk.ref_table)
                        .map(|p| p.primary_key.clone())
                        .unwrap_or_default()
                } else {
                    fk.ref_columns.clone()
                },
                on_delete: fk.on_delete.clone(),
                on_update: fk.on_update.clone(),
                enforced: fk.enforced,
            })
            .collect();
        let mut missing = Vec::new();
        let mut keep = Vec::new();
        for (i, c) in tp.columns.iter_mut().enumerate() {
            let found = existing
                .columns
                .iter()
                .find(|t| t.name == c.source_name)
                .or_else(|| {
                    existing
                        .columns
                        .iter()
                        .find(|t| t.name.eq_ignore_ascii_case(&c.source_name))
                });
            match found {
                Some(t) => {
                    c.target_name = t.name.clone();
                    c.native_type = t.native_type.clone();
                    c.auto_increment = t.auto_increment;
                    c.nullable = t.nullable;
                    c.default_sql = None;
                    // Between two dynamically typed databases values pass through as they are.
                    c.convert_to = if same_backend && plan.capabilities.dynamic_typing {
                        None
                    } else {
                        Some(t.data_type.clone())
                    };
                    c.notes.clear();
                    keep.push(i);
                }
                None => missing.push(c.source_name.clone()),
            }
        }
        if !missing.is_empty() {
            if !ignore_missing_columns {
                return Err(Error::input(format!(
                    "the target's table \"{}\" has no column for {}: add them to the target, or pass --ignore-missing-columns to leave them out",
                    existing.name,
                    missing
                        .iter()
                        .map(|m| format!("\"{m}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            notes.push(format!(
                "{}: source columns {} have no target column and are not copied (--ignore-missing-columns)",
                tp.source_name,
                missing.join(", ")
            ));
            tp.columns = keep.iter().map(|&i| tp.columns[i].clone()).collect();
            tp.source.columns = keep.iter().map(|&i| tp.source.columns[i].clone()).collect();
            tp.key_columns = tp
                .source
                .primary_key
                .iter()
                .filter_map(|k| tp.source.columns.iter().position(|c| &c.name == k))
                .collect();
        }
        read_native_as_text(tp);
        let filled: Vec<&str> = tp.columns.iter().map(|c| c.target_name.as_str()).collect();
        let defaulted: Vec<&str> = existing
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| !filled.contains(n))
            .collect();
        if !defaulted.is_empty() {
            notes.push(format!(
                "{}: target columns {} have no source column and are left to their defaults",
                existing.name,
                defaulted.join(", ")
            ));
        }
    }
    // The application that created the target's tables owns its views, triggers and
    // functions: they may exist already, and ferry does not create them a second time.
    if plan.tables.iter().any(|t| t.existing) {
        for o in plan.objects.drain(..) {
            plan.skipped.push(SkippedObject {
                kind: o.kind,
                name: o.name,
                reason: "the target's tables already exist (created by the application, which owns its views, triggers and functions): not recreated".into(),
                ..Default::default()
            });
        }
    }
    plan.ddl = dialect.ddl(plan);
    Ok(notes)
}

/// Orders tables parents-first (Kahn's algorithm, ties by name for a stable plan). Tables left
/// in cycles are appended in name order and returned as cycles for the report.
pub fn fk_order(tables: &[TablePlan]) -> (Vec<String>, Vec<Vec<String>>) {
    dependency_order(tables.iter().map(|t| {
        (
            t.source_name.as_str(),
            t.depends_on.iter().map(String::as_str),
        )
    }))
}

/// Orders named items so that each comes after the items it depends on (Kahn's algorithm,
/// ties by name); dependencies on names not in the list are ignored. Items left in cycles are
/// appended in name order and returned as cycles.
pub fn dependency_order<'a, D: IntoIterator<Item = &'a str>>(
    items: impl IntoIterator<Item = (&'a str, D)>,
) -> (Vec<String>, Vec<Vec<String>>) {
    let items: Vec<(&str, Vec<&str>)> = items
        .into_iter()
        .map(|(n, d)| (n, d.into_iter().filter(|&d| d != n).collect()))
        .collect();
    let known: BTreeSet<&str> = items.iter().map(|(n, _)| *n).collect();
    let mut remaining: BTreeMap<&str, BTreeSet<&str>> = items
        .into_iter()
        .map(|(n, d)| (n, d.into_iter().filter(|d| known.contains(d)).collect()))
        .collect();
    let mut order = Vec::new();
    loop {
        let ready: Vec<&str> = remaining
            .iter()
            .filter(|(_, deps)| deps.is_empty())
            .map(|(n, _)| *n)
            .collect();
        if ready.is_empty() {
            break;
        }
        for n in &ready {
            remaining.remove(n);
            order.push(n.to_string());
        }
        for deps in remaining.values_mut() {
            for n in &ready {
                deps.remove(n);
            }
        }
    }
    let cycles = if remaining.is_empty() {
        Vec::new()
    } else {
        vec![remaining.keys().map(|s| s.to_string()).collect::<Vec<_>>()]
    };
    order.extend(remaining.keys().map(|s| s.to_string()));
    (order, cycles)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn tp(name: &str, deps: &[&str]) -> TablePlan {
        TablePlan {
            source: Table {
                name: name.into(),
                columns: vec![],
                primary_key: vec![],
                uniques: vec![],
                indexes: vec![],
                foreign_keys: vec![],
                row_count: 0,
                sampled: false,
                native_sql: None,
                paging: crate::schema::Paging::RowLocator,
                locator_range: None,
            },
            source_name: name.into(),
            target_name: name.into(),
            columns: vec![],
            primary_key: vec![],
            uniques: vec![],
            indexes: vec![],
            foreign_keys: vec![],
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
            row_count: 0,
            key_columns: vec![],
            generated: vec![],
            existing: false,
        }
    }

    #[test]
    fn parents_come_first_and_cycles_are_reported() {
        let (order, cycles) = fk_order(&[
            tp("comments", &["posts", "users"]),
            tp("posts", &["users"]),
            tp("users", &[]),
        ]);
        assert_eq!(order, ["users", "posts", "comments"]);
        assert!(cycles.is_empty());
        let (order, cycles) = fk_order(&[tp("a", &["b"]), tp("b", &["a"]), tp("c", &[])]);
        assert_eq!(order, ["c", "a", "b"]);
        assert_eq!(cycles, vec![vec!["a".to_string(), "b".to_string()]]);
    }
}
