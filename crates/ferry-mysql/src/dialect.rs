//! MySQL/MariaDB as a target, the pure part: types, defaults and DDL by phase. AUTO_INCREMENT
//! columns get their primary key inline (MySQL requires it at creation) and MySQL moves the
//! counter past the copied maximum by itself; other keys, indexes and foreign keys come after
//! the data.

use ferry_core::Capabilities;
use ferry_core::connector::{ColumnMapping, Ddl, Dialect};
use ferry_core::locator::Backend;
use ferry_core::plan::Plan;
use ferry_core::schema::{Column, DataType, DefaultValue, ObjectPhase, Table};
use ferry_core::sqltext::ddl as sql;

use crate::connect::quote;
use crate::type_map::{JSON_AS_TEXT, native_type, write_type};

/// `no_pad_collation`: the server's binary `NO PAD` collation for utf8mb4 (MariaDB's
/// `utf8mb4_nopad_bin`, MySQL 8's `utf8mb4_0900_bin`), learned when the target is opened;
/// `None` for a dialect without a server (key text then cannot be made exact).
#[derive(Debug, Clone, Default)]
pub struct MysqlDialect {
    pub no_pad_collation: Option<String>,
}

fn indexed(column: &str, table: &Table) -> bool {
    table.primary_key.iter().any(|c| c == column)
        || table.uniques.iter().flatten().any(|c| c == column)
        || table
            .indexes
            .iter()
            .filter(|i| i.portable)
            .flat_map(|i| &i.columns)
            .any(|c| c == column)
        || table
            .foreign_keys
            .iter()
            .flat_map(|f| &f.columns)
            .any(|c| c == column)
}

/// The column that gets the table's one AUTO_INCREMENT: the auto-increment column of the
/// primary key, else the first one (a PostgreSQL table may have several identity columns).
fn auto_column(table: &Table) -> Option<&str> {
    let autos = || table.columns.iter().filter(|c| c.auto_increment);
    autos()
        .find(|c| table.primary_key.contains(&c.name))
        .or_else(|| autos().next())
        .map(|c| c.name.as_str())
}

/// [`auto_column`] over a plan's table (target names; the same column).
fn auto_column_plan(t: &ferry_core::plan::TablePlan) -> Option<&str> {
    let autos = || t.columns.iter().filter(|c| c.auto_increment);
    autos()
        .find(|c| t.primary_key.contains(&c.target_name))
        .or_else(|| autos().next())
        .map(|c| c.target_name.as_str())
}

/// A MySQL unsigned integer type without its display width: `bigint(20) unsigned` →
/// `bigint unsigned`.
fn unsigned_integer(native: &str) -> Option<String> {
    let native = native.to_ascii_lowercase();
    let base = native.split(['(', ' ']).next()?;
    let integer = matches!(
        base,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
    );
    (integer && native.contains("unsigned")).then(|| format!("{base} unsigned"))
}

impl Dialect for MysqlDialect {
    fn backend(&self) -> Backend {
        crate::locator::BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_identifier_bytes: 64,
            folds_case: true,
            index_names_per_table: true,
            set_null_needs_nullable: true,
            max_parallel_writers: usize::MAX,
            // Each DDL statement commits on its own.
            transactional_ddl: false,
            dynamic_typing: false,
            replays_native_ddl: false,
            pad_space_keys: true,
            foreign_keys_after_data: true,
            quote: '`',
        }
    }

    fn map_column(&self, column: &Column, table: &Table, source: Backend) -> ColumnMapping {
        if let Some((portable, note)) = ferry_core::connector::native_as_text(column) {
            let mut mapping = self.map_column(&portable, table, source);
            if portable.data_type == DataType::Json {
                // An array becomes a JSON array: MySQL's JSON type holds it as one.
                mapping.native_type = "json".into();
                mapping.notes.retain(|n| n != JSON_AS_TEXT);
            }
            mapping.notes.push(note);
            return mapping;
        }
        let (native, note) = native_type(&column.data_type, indexed(&column.name, table));
        let mut notes: Vec<String> = note.into_iter().collect();
        // Between two MySQL databases an unsigned integer keeps its type (a BIGINT UNSIGNED
        // AUTO_INCREMENT key must stay an integer: MySQL refuses AUTO_INCREMENT on decimal).
        let native = match (
            source == self.backend(),
            unsigned_integer(&column.native_type),
        ) {
            (true, Some(unsigned)) => unsigned,
            _ => native,
        };
        if column.auto_increment && auto_column(table).is_some_and(|a| a != column.name) {
            notes.push(format!(
                "MySQL allows one AUTO_INCREMENT column per table: created as a plain column, the values are copied (the table's counter is on '{}')",
                auto_column(table).unwrap_or_default()
            ));
        }
        let unbounded = matches!(native.as_str(), "longtext" | "longblob");
        let default_sql = column
            .default
            .as_ref()
            .filter(|_| !column.auto_increment)
            .and_then(|d| match d {
                DefaultValue::Null => Some("NULL".into()),
                // Text and blob columns take a default only as an expression (MySQL 8.0.13+,
                // MariaDB 10.2+): a parenthesised literal is one.
                DefaultValue::Literal(x) | DefaultValue::StringLiteral(x) if unbounded => {
                    Some(format!("('{}')", x.replace('\'', "''")))
                }
                _ if unbounded => {
                    notes.push(format!(
                        "default {d:?} dropped: MySQL text and blob columns take only literal defaults"
                    ));
                    None
                }
                DefaultValue::Literal(x) if matches!(column.data_type, DataType::Bool) => {
                    Some(if x == "0" || x.eq_ignore_ascii_case("false") {
                        "0".into()
                    } else {
                        "1".into()
                    })
                }
                DefaultValue::Literal(x) => Some(format!("'{}'", x.replace('\'', "''"))),
                DefaultValue::StringLiteral(s) => Some(format!("'{}'", s.replace('\'', "''"))),
                DefaultValue::CurrentTimestamp
                    if matches!(
                        column.data_type,
                        DataType::Timestamp | DataType::TimestampTz
                    ) =>
                {
                    Some("CURRENT_TIMESTAMP(6)".into())
                }
                // An expression default (MySQL 8.0.13+, MariaDB 10.2+; proved before writing).
                DefaultValue::CurrentDate if column.data_type == DataType::Date => {
                    Some("(CURRENT_DATE)".into())
                }
                other => {
                    notes.push(format!(
                        "default {other:?} has no MySQL equivalent here: dropped"
                    ));
                    None
                }
            });
        // An indexed text column bounded to varchar(255) is bounded for conversion too, so
        // longer values are found by the scan before writing (not refused by MySQL mid-copy).
        let convert_to = match (&column.data_type, native.as_str()) {
            (DataType::Text { .. }, "varchar(255)") => DataType::Text {
                max_chars: Some(255),
            },
            _ => write_type(&column.data_type),
        };
        ColumnMapping {
            convert_to: Some(convert_to),
            native_type: native,
            default_sql,
            notes,
        }
    }

    /// MySQL commits each DDL statement: a resumed run repeating the one a kill interrupted
    /// before its ledger mark finds its index, key or object there already.
    fn already_applied(&self, error: &str) -> bool {
        [
            "Duplicate key name",
            "Multiple primary key defined",
            "Duplicate foreign key constraint name",
            "errno: 121",
            "already exists",
        ]
        .iter()
        .any(|m| error.contains(m))
    }

    fn exact_text_type(&self, native_type: &str) -> Option<String> {
        let textual = [
            "varchar",
            "char",
            "tinytext",
            "text",
            "mediumtext",
            "longtext",
        ]
        .iter()
        .any(|t| native_type.split('(').next() == Some(*t));
        let collation = self.no_pad_collation.as_ref()?;
        textual.then(|| format!("{native_type} COLLATE {collation}"))
    }

    fn ddl(&self, plan: &Plan) -> Ddl {
        let mut ddl = Ddl::default();
        let list = |cols: &[String]| sql::list(quote, cols);
        for t in &plan.tables {
            let table = quote(&t.target_name);
            if t.existing {
                ddl.analyze.push(format!("ANALYZE TABLE {table}"));
                continue;
            }
            // MySQL's one AUTO_INCREMENT column must be the first column of a key when the
            // table is created (error 1075), and an integer (error 1063): its primary key
            // goes inline, and so does an index leading with it (or a plain one) when the
            // key does not start with it.
            let auto = auto_column_plan(t);
            let in_pk = auto.is_some_and(|a| t.primary_key.iter().any(|k| k == a));
            let mut inline_index = None;
            let mut parts: Vec<String> = t
                .columns
                .iter()
                .map(|c| {
                    let mut def = format!("{} {}", quote(&c.target_name), c.native_type);
                    if !c.nullable || (in_pk && t.primary_key.contains(&c.target_name)) {
                        def.push_str(" NOT NULL");
                    }
                    if let Some(d) = &c.default_sql {
                        def.push_str(&format!(" DEFAULT {d}"));
                    }
                    if auto == Some(c.target_name.as_str()) {
                        def.push_str(" AUTO_INCREMENT");
                    }
                    def
                })
                .collect();
            if in_pk {
                parts.push(format!("PRIMARY KEY ({})", list(&t.primary_key)));
            }
            if let Some(a) = auto
                && t.primary_key.first().map(String::as_str) != Some(a)
            {
                let leading = t
                    .indexes
                    .iter()
                    .position(|i| i.columns.first().map(String::as_str) == Some(a));
                parts.push(match leading {
                    Some(i) => {
                        inline_index = Some(i);
                        let idx = &t.indexes[i];
                        format!(
                            "{}KEY {} ({})",
                            if idx.unique { "UNIQUE " } else { "" },
                            quote(&idx.name),
                            list(&idx.columns)
                        )
                    }
                    None => format!("KEY ({})", quote(a)),
                });
            }
            ddl.create.push(format!(
                "CREATE TABLE {table} (\n  {}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
                parts.join(",\n  ")
            ));
            ddl.indexes.extend(sql::add_keys(quote, t, !in_pk));
            for (i, idx) in t.indexes.iter().enumerate() {
                if inline_index == Some(i) {
                    continue;
                }
                ddl.indexes
                    .push(sql::create_index(quote, &t.target_name, idx));
            }
            ddl.foreign_keys.extend(sql::add_foreign_keys(quote, t));
            ddl.analyze.push(format!("ANALYZE TABLE {table}"));
        }
        ddl.objects = plan.object_sql(ObjectPhase::AfterData);
        ddl.drop = plan.object_drops();
        if !plan.tables.is_empty() {
            ddl.drop.push("SET foreign_key_checks = 0".into());
        }
        for t in plan.tables.iter().rev() {
            ddl.drop.push(if t.existing {
                format!("DELETE FROM {}", quote(&t.target_name))
            } else {
                format!("DROP TABLE IF EXISTS {}", quote(&t.target_name))
            });
        }
        ddl
    }
}
