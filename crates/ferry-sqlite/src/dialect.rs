//! SQLite as a target, the pure part: type mapping and DDL. Between two SQLite files the
//! source's own statements are replayed and values pass through untouched, so the copy is
//! byte-identical; from other backends tables are written from the portable model.

use ferry_core::Capabilities;
use ferry_core::connector::{ColumnMapping, Ddl, Dialect};
use ferry_core::locator::Backend;
use ferry_core::plan::Plan;
use ferry_core::schema::{Column, DefaultValue, ObjectPhase, Table};
use ferry_core::sqltext::ddl as sql;

use crate::open::quote;
use crate::type_map::{native_type, target_note};

pub struct SqliteDialect;

impl Dialect for SqliteDialect {
    fn backend(&self) -> Backend {
        crate::locator::BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // SQLite has no limit; this only bounds pathological names.
            max_identifier_bytes: 1 << 20,
            folds_case: true,
            index_names_per_table: false,
            set_null_needs_nullable: false,
            max_parallel_writers: 1,
            transactional_ddl: true,
            dynamic_typing: true,
            replays_native_ddl: true,
            pad_space_keys: false,
            foreign_keys_after_data: false,
            quote: '"',
        }
    }

    fn map_column(&self, column: &Column, _table: &Table, source: Backend) -> ColumnMapping {
        if source == self.backend() {
            return ColumnMapping {
                convert_to: None,
                native_type: column.native_type.clone(),
                default_sql: None,
                notes: vec![],
            };
        }
        if let Some((text, note)) = ferry_core::connector::native_as_text(column) {
            let mut mapping = self.map_column(&text, _table, source);
            mapping.notes.push(note);
            return mapping;
        }
        let mut notes = Vec::new();
        let default_sql = column.default.as_ref().and_then(|d| match d {
            DefaultValue::Null => Some("NULL".into()),
            DefaultValue::Literal(x) => Some(x.clone()),
            DefaultValue::StringLiteral(s) => Some(format!("'{}'", s.replace('\'', "''"))),
            DefaultValue::CurrentTimestamp => Some("CURRENT_TIMESTAMP".into()),
            DefaultValue::CurrentDate => Some("CURRENT_DATE".into()),
            DefaultValue::CurrentTime => Some("CURRENT_TIME".into()),
            DefaultValue::UnixEpochNow => Some("(strftime('%s','now'))".into()),
            DefaultValue::Expression(e) => {
                notes.push(format!("default {e} has no SQLite equivalent: dropped"));
                None
            }
        });
        notes.extend(target_note(&column.data_type));
        ColumnMapping {
            convert_to: Some(column.data_type.clone()),
            native_type: native_type(&column.data_type),
            default_sql,
            notes,
        }
    }

    fn ddl(&self, plan: &Plan) -> Ddl {
        let mut ddl = Ddl::default();
        let same = plan.source == self.backend();
        ddl.create
            .extend(plan.object_sql(ObjectPhase::BeforeTables));
        for t in plan.tables.iter().filter(|t| !t.existing) {
            let native = t.source.native_sql.as_ref().filter(|_| same);
            match native {
                Some(sql) => ddl.create.push(sql.clone()),
                None => ddl.create.push(create_table(t)),
            }
            for idx in &t.indexes {
                match idx.native_sql.as_ref().filter(|_| same) {
                    Some(sql) => ddl.indexes.push(sql.clone()),
                    None => ddl
                        .indexes
                        .push(sql::create_index(quote, &t.target_name, idx)),
                }
            }
        }
        ddl.objects = plan.object_sql(ObjectPhase::AfterData);
        ddl.drop = plan.object_drops();
        for t in plan.tables.iter().rev() {
            ddl.drop.push(if t.existing {
                format!("DELETE FROM {}", quote(&t.target_name))
            } else {
                format!("DROP TABLE IF EXISTS {}", quote(&t.target_name))
            });
        }
        if !plan.tables.is_empty() {
            ddl.analyze.push("ANALYZE".into());
        }
        ddl
    }
}

/// SQLite cannot add constraints after the fact, so keys and foreign keys are declared inline;
/// foreign keys are not enforced during the load (the writer turns them off).
fn create_table(t: &ferry_core::plan::TablePlan) -> String {
    let mut parts = Vec::new();
    let single_auto = t.primary_key.len() == 1
        && t.columns
            .iter()
            .any(|c| c.auto_increment && c.target_name == t.primary_key[0]);
    for c in &t.columns {
        let mut def = format!("{} {}", quote(&c.target_name), c.native_type);
        if single_auto && c.target_name == t.primary_key[0] {
            def = format!("{} INTEGER PRIMARY KEY", quote(&c.target_name));
        } else if !c.nullable {
            def.push_str(" NOT NULL");
        }
        if let Some(d) = &c.default_sql {
            def.push_str(&format!(" DEFAULT {d}"));
        }
        parts.push(def);
    }
    let list = |cols: &[String]| sql::list(quote, cols);
    if !t.primary_key.is_empty() && !single_auto {
        parts.push(format!("PRIMARY KEY ({})", list(&t.primary_key)));
    }
    for u in &t.uniques {
        parts.push(format!("UNIQUE ({})", list(u)));
    }
    for fk in &t.foreign_keys {
        parts.push(sql::foreign_key(quote, fk));
    }
    format!(
        "CREATE TABLE {} (\n  {}\n)",
        quote(&t.target_name),
        parts.join(",\n  ")
    )
}
