//! PostgreSQL as a target, the pure part: type mapping, default translation and DDL by phase
//! (tables; then primary keys, unique constraints and indexes; then foreign keys; then identity
//! counters past the copied maximum; then ANALYZE).

use ferry_core::Capabilities;
use ferry_core::connector::{ColumnMapping, Ddl, Dialect};
use ferry_core::convert::convert;
use ferry_core::locator::Backend;
use ferry_core::plan::{ForeignKeyPlan, Plan};
use ferry_core::schema::{Column, DataType, DefaultValue, ObjectPhase, Table};
use ferry_core::sqltext::ddl as sql;
use ferry_core::value::Value;

use crate::type_map::native_type;

pub struct PostgresDialect;

/// A source whose clock defaults (`CURRENT_TIMESTAMP`) give UTC: SQLite's.
const SQLITE: Backend = Backend::new("sqlite", "SQLite");

pub fn quote(name: &str) -> String {
    ferry_core::capabilities::quote_with('"', name)
}

/// A statement that fails, naming the foreign key, when loaded rows reference missing parents.
fn validate_foreign_key(table: &str, fk: &ForeignKeyPlan) -> String {
    let message = format!(
        "rows of {table} reference rows of {} that do not exist (foreign key {table}({}) to {}({})): remove the orphans from the source, then copy again with --force",
        fk.ref_table,
        fk.columns.join(", "),
        fk.ref_table,
        fk.ref_columns.join(", ")
    )
    .replace('%', "%%");
    format!(
        "DO $ferry$ BEGIN IF EXISTS (SELECT 1 {}) THEN RAISE EXCEPTION {}; END IF; END $ferry$",
        sql::orphans_from(quote, table, &fk.columns, &fk.ref_table, &fk.ref_columns),
        literal(&message)
    )
}

pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Dialect for PostgresDialect {
    fn backend(&self) -> Backend {
        crate::locator::BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_identifier_bytes: 63,
            // ferry quotes every name, so "Users" and "users" are two tables.
            folds_case: false,
            index_names_per_table: false,
            set_null_needs_nullable: false,
            max_parallel_writers: usize::MAX,
            transactional_ddl: true,
            dynamic_typing: false,
            replays_native_ddl: false,
            pad_space_keys: false,
            foreign_keys_after_data: true,
            quote: '"',
        }
    }

    fn map_column(&self, column: &Column, table: &Table, source: Backend) -> ColumnMapping {
        let mut notes = Vec::new();
        let default_sql = column
            .default
            .as_ref()
            .filter(|_| !column.auto_increment)
            .and_then(|d| translate_default(d, &column.data_type, source, &mut notes));
        // Between two PostgreSQL databases jsonb stays jsonb (ferry models it as JSON text).
        let native_type = if source == self.backend() && column.native_type == "jsonb" {
            column.native_type.clone()
        } else if column.data_type == DataType::Json && keyed(&column.name, table) {
            // json has no equality, so no btree index or key can be built on it: jsonb can.
            notes.push(
                "JSON in an index or key: stored as jsonb (PostgreSQL's json cannot be indexed), which keeps neither key order, whitespace nor duplicate keys".into(),
            );
            "jsonb".into()
        } else {
            native_type(&column.data_type)
        };
        ColumnMapping {
            convert_to: Some(column.data_type.clone()),
            native_type,
            default_sql,
            notes,
        }
    }

    fn ddl(&self, plan: &Plan) -> Ddl {
        let mut ddl = Ddl::default();
        ddl.create
            .extend(plan.native_types.iter().map(|t| t.sql.clone()));
        ddl.create
            .extend(plan.object_sql(ObjectPhase::BeforeTables));
        ddl.objects = plan.object_sql(ObjectPhase::AfterData);
        ddl.drop = plan.object_drops();
        for t in &plan.tables {
            let table = quote(&t.target_name);
            if t.existing {
                // The application's own table: only its counters and statistics are ferry's,
                // and its foreign keys are checked again (a superuser loads in replica mode).
                ddl.foreign_keys.extend(
                    t.foreign_keys
                        .iter()
                        .map(|fk| validate_foreign_key(&t.target_name, fk)),
                );
                ddl.sequences.extend(sequence_resets(t));
                ddl.analyze.push(format!("ANALYZE {table}"));
                continue;
            }
            let cols: Vec<String> = t
                .columns
                .iter()
                .map(|c| {
                    let mut def = format!("{} {}", quote(&c.target_name), c.native_type);
                    if c.auto_increment
                        && matches!(
                            c.convert_to,
                            Some(DataType::Int16 | DataType::Int32 | DataType::Int64)
                        )
                    {
                        def.push_str(" GENERATED BY DEFAULT AS IDENTITY");
                    }
                    if !c.nullable {
                        def.push_str(" NOT NULL");
                    }
                    if let Some(d) = &c.default_sql {
                        def.push_str(&format!(" DEFAULT {d}"));
                    }
                    def
                })
                .collect();
            let mut cols = cols;
            cols.extend(t.generated.iter().map(|g| {
                format!(
                    "{} {} GENERATED ALWAYS AS ({}) STORED",
                    quote(&g.name),
                    g.native_type,
                    g.expression
                )
            }));
            ddl.create.push(format!(
                "CREATE TABLE {table} (\n  {}\n)",
                cols.join(",\n  ")
            ));
            ddl.indexes.extend(sql::add_keys(quote, t, true));
            for idx in &t.indexes {
                if !idx.portable {
                    // Expression and partial indexes come only from PostgreSQL itself: replay
                    // its definition on this table (the plan dropped them for other sources).
                    if let Some(def) = idx
                        .native_sql
                        .as_deref()
                        .and_then(|d| retarget_index(d, &idx.name, &table))
                    {
                        ddl.indexes.push(def);
                    }
                    continue;
                }
                ddl.indexes
                    .push(sql::create_index(quote, &t.target_name, idx));
            }
            ddl.foreign_keys.extend(sql::add_foreign_keys(quote, t));
            ddl.sequences.extend(sequence_resets(t));
            ddl.analyze.push(format!("ANALYZE {table}"));
        }
        for t in plan.tables.iter().rev() {
            ddl.drop.push(if t.existing {
                format!("DELETE FROM {}", quote(&t.target_name))
            } else {
                format!("DROP TABLE IF EXISTS {} CASCADE", quote(&t.target_name))
            });
        }
        ddl
    }
}

/// Rewrites `pg_get_indexdef` output (`CREATE INDEX name ON [ONLY] schema.table USING ...`)
/// for the target's index and table names.
fn retarget_index(def: &str, index: &str, table: &str) -> Option<String> {
    let on = def.find(" ON ")?;
    let head = &def[..on];
    let unique = head.contains("UNIQUE ");
    let using = def[on..].find(" USING ")? + on;
    Some(format!(
        "CREATE {}INDEX {} ON {table}{}",
        if unique { "UNIQUE " } else { "" },
        quote(index),
        &def[using..]
    ))
}

/// Moves identity and serial counters past the copied maximum.
fn sequence_resets(t: &ferry_core::plan::TablePlan) -> Vec<String> {
    let table = quote(&t.target_name);
    t.columns
        .iter()
        .filter(|c| c.auto_increment)
        .map(|c| {
            let col = quote(&c.target_name);
            // Identity sequences start at 1: keys at or below 0 leave the counter at 1.
            format!(
                "SELECT setval(pg_get_serial_sequence({}, {}), GREATEST(max({col}), 1), coalesce(max({col}) >= 1, false)) FROM {table}",
                literal(&table),
                literal(&c.target_name)
            )
        })
        .collect()
}

/// Translates a default to PostgreSQL, or drops it with a note. SQLite's clock defaults are in
/// UTC, so they become UTC here too, in the same text format for text columns.
fn translate_default(
    d: &DefaultValue,
    ty: &DataType,
    source: Backend,
    notes: &mut Vec<String>,
) -> Option<String> {
    let utc_now = "(now() AT TIME ZONE 'utc')";
    let mut drop = |why: String| {
        notes.push(why);
        None
    };
    match (d, ty) {
        (DefaultValue::Null, _) => Some("NULL".into()),
        (DefaultValue::CurrentTimestamp, DataType::TimestampTz) => Some("CURRENT_TIMESTAMP".into()),
        (DefaultValue::CurrentTimestamp, DataType::Timestamp) if source == SQLITE => {
            Some(utc_now.into())
        }
        (DefaultValue::CurrentTimestamp, DataType::Timestamp) => Some("LOCALTIMESTAMP".into()),
        (DefaultValue::CurrentTimestamp, DataType::Text { .. }) => {
            Some(format!("to_char({utc_now}, 'YYYY-MM-DD HH24:MI:SS')"))
        }
        // PostgreSQL's own CURRENT_DATE is the session's date; SQLite's and MySQL's (ferry's
        // sessions) are UTC's.
        (DefaultValue::CurrentDate, DataType::Date) if source == crate::locator::BACKEND => {
            Some("CURRENT_DATE".into())
        }
        (DefaultValue::CurrentDate, DataType::Date) => Some(format!("{utc_now}::date")),
        (DefaultValue::CurrentDate, DataType::Text { .. }) => {
            Some(format!("to_char({utc_now}, 'YYYY-MM-DD')"))
        }
        (DefaultValue::CurrentTime, DataType::Time) => Some(format!("{utc_now}::time(0)")),
        (DefaultValue::CurrentTime, DataType::Text { .. }) => {
            Some(format!("to_char({utc_now}, 'HH24:MI:SS')"))
        }
        (
            DefaultValue::UnixEpochNow,
            DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::Decimal { .. },
        ) => Some("(extract(epoch from now()))::bigint".into()),
        (DefaultValue::UnixEpochNow, DataType::Text { .. }) => {
            Some("((extract(epoch from now()))::bigint)::text".into())
        }
        (DefaultValue::Literal(text) | DefaultValue::StringLiteral(text), _) => {
            let value = match d {
                DefaultValue::Literal(_) => ferry_core::convert::normalize_decimal(text)
                    .map(|n| {
                        if n.contains('.') {
                            Value::Decimal(n)
                        } else {
                            n.parse().map(Value::Int).unwrap_or(Value::Decimal(n))
                        }
                    })
                    .unwrap_or_else(|| Value::Text(text.clone())),
                _ => Value::Text(text.clone()),
            };
            match convert(value, ty) {
                Ok(v) => Some(value_literal(&v)),
                Err(e) => drop(format!(
                    "default {text} does not fit the column ({e}): dropped"
                )),
            }
        }
        // Between two PostgreSQL databases the source's own expression is replayed verbatim
        // (the functions and sequences it calls are recreated before the tables).
        (DefaultValue::Expression(e), _) if source == crate::locator::BACKEND => Some(e.clone()),
        (DefaultValue::Expression(e), _) => drop(format!(
            "default {e} is an expression PostgreSQL may not understand: dropped"
        )),
        (other, ty) => drop(format!("default {other:?} has no {ty} equivalent: dropped")),
    }
}

fn value_literal(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => literal(&ferry_core::convert::float_text(*f)),
        Value::Decimal(s) => literal(s),
        Value::Bytes(b) => format!("'\\x{}'::bytea", ferry_core::value::hex(b)),
        Value::Text(s) | Value::Json(s) => literal(s),
        other => literal(other.render().trim_matches('\'')),
    }
}

/// Whether `column` is part of `table`'s primary key, a unique constraint or an index.
fn keyed(column: &str, table: &Table) -> bool {
    table.primary_key.iter().any(|c| c == column)
        || table.uniques.iter().flatten().any(|c| c == column)
        || table
            .indexes
            .iter()
            .any(|i| i.columns.iter().any(|c| c == column))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_translate_or_drop() {
        let mut notes = Vec::new();
        let translated = [
            (DefaultValue::Literal("1".into()), DataType::Bool, "true"),
            (
                DefaultValue::CurrentTimestamp,
                DataType::Timestamp,
                "(now() AT TIME ZONE 'utc')",
            ),
            (
                DefaultValue::StringLiteral("it's".into()),
                DataType::text(),
                "'it''s'",
            ),
        ];
        for (default, data_type, expected) in &translated {
            let sql = translate_default(default, data_type, SQLITE, &mut notes);
            assert_eq!(sql.as_deref(), Some(*expected), "{default:?}");
        }
        assert!(notes.is_empty());
        // Each dropped default is a note.
        let dropped = [
            (DefaultValue::Expression("random()".into()), DataType::Int64),
            (DefaultValue::StringLiteral("abc".into()), DataType::Int64),
        ];
        for (default, data_type) in &dropped {
            let sql = translate_default(default, data_type, SQLITE, &mut notes);
            assert!(sql.is_none(), "{default:?}");
        }
        assert_eq!(notes.len(), 2);
    }
}
