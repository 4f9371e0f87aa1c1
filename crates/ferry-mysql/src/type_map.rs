//! MySQL/MariaDB type mapping, both ways. Unsigned integers widen so every value fits,
//! `tinyint(1)` is a boolean, ENUM and SET are text, TIMESTAMP is an instant (sessions run in
//! UTC). Towards MySQL, text that is indexed gets a bounded varchar, JSON stays text (MySQL's
//! JSON type would reorder keys), and instants are stored as UTC datetimes.

use ferry_core::schema::DataType;

/// A catalog column (`information_schema.COLUMNS`) as a portable type, with a note when the
/// mapping is not one to one.
pub fn from_catalog(
    data_type: &str,
    column_type: &str,
    max_chars: Option<u64>,
    precision: Option<u64>,
    scale: Option<u64>,
) -> (DataType, Option<String>) {
    let unsigned = column_type.contains("unsigned");
    let dt = data_type.to_ascii_lowercase();
    let t = match dt.as_str() {
        "tinyint" if column_type.starts_with("tinyint(1)") && !unsigned => DataType::Bool,
        "tinyint" => DataType::Int16,
        "smallint" if unsigned => DataType::Int32,
        "smallint" => DataType::Int16,
        "mediumint" => DataType::Int32,
        "int" | "integer" if unsigned => DataType::Int64,
        "int" | "integer" => DataType::Int32,
        "bigint" if unsigned => DataType::Decimal {
            precision: Some(20),
            scale: Some(0),
        },
        "bigint" => DataType::Int64,
        "decimal" | "numeric" => DataType::Decimal {
            precision: precision.map(|p| p as u32),
            scale: scale.map(|s| s as u32),
        },
        "float" => DataType::Float32,
        "double" | "real" => DataType::Float64,
        "char" | "varchar" => DataType::Text {
            max_chars: max_chars.map(|n| n as u32),
        },
        "tinytext" | "text" | "mediumtext" | "longtext" => DataType::text(),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => DataType::Bytes,
        "date" => DataType::Date,
        "datetime" => DataType::Timestamp,
        "timestamp" => DataType::TimestampTz,
        "time" => DataType::Time,
        "year" => DataType::Int16,
        "json" => DataType::Json,
        "enum" | "set" => {
            return (
                DataType::text(),
                Some(format!("{column_type} copied as its text values")),
            );
        }
        "bit" if column_type == "bit(1)" => DataType::Bool,
        "bit" => DataType::Bytes,
        _ => {
            return (
                DataType::Bytes,
                Some(format!("{column_type} copied as its raw bytes")),
            );
        }
    };
    (t, None)
}

/// The MySQL type for a portable type. `indexed` columns need a bounded length.
pub fn native_type(t: &DataType, indexed: bool) -> (String, Option<String>) {
    let s = |x: &str| (x.to_string(), None);
    match t {
        DataType::Bool => s("tinyint(1)"),
        DataType::Int16 => s("smallint"),
        DataType::Int32 => s("int"),
        DataType::Int64 => s("bigint"),
        DataType::Float32 => s("float"),
        DataType::Float64 => s("double"),
        DataType::Decimal { precision: Some(p), scale } if *p <= 65 => (format!("decimal({p},{})", scale.unwrap_or(0)), None),
        DataType::Decimal { .. } => (
            "decimal(65,30)".into(),
            Some("unconstrained decimal stored as decimal(65,30): values with more digits are rejected, never rounded".into()),
        ),
        DataType::Text { max_chars: Some(n) } if *n <= 16383 => (format!("varchar({n})"), None),
        DataType::Text { .. } if indexed => (
            "varchar(255)".into(),
            Some("indexed text limited to varchar(255) (InnoDB key size): longer values are rejected, never cut".into()),
        ),
        DataType::Text { .. } => s("longtext"),
        // CHAR would strip trailing spaces on read: varchar keeps them.
        DataType::Char { len } => (format!("varchar({len})"), None),
        DataType::Bytes if indexed => (
            "varbinary(1024)".into(),
            Some("indexed binary limited to varbinary(1024) (InnoDB key size): longer values are rejected".into()),
        ),
        DataType::Bytes => s("longblob"),
        DataType::Date => s("date"),
        DataType::Time => s("time(6)"),
        DataType::Timestamp => s("datetime(6)"),
        DataType::TimestampTz => ("datetime(6)".into(), Some("instant stored as a UTC datetime (MySQL has no zone type)".into())),
        DataType::Uuid => s("char(36)"),
        DataType::Json => ("longtext".into(), Some(JSON_AS_TEXT.into())),
        DataType::Native { name, .. } => ("longtext".into(), Some(format!("{name} is copied as its text form"))),
    }
}

/// The note on a JSON column kept as text.
pub const JSON_AS_TEXT: &str = "JSON kept as text: MySQL's JSON type would reorder its keys";

/// The portable type values are converted to before writing (a bounded decimal when MySQL
/// needs one).
pub fn write_type(t: &DataType) -> DataType {
    match t {
        DataType::Decimal {
            precision: Some(p), ..
        } if *p <= 65 => t.clone(),
        DataType::Decimal { .. } => DataType::Decimal {
            precision: Some(65),
            scale: Some(30),
        },
        DataType::Char { len } => DataType::Text {
            max_chars: Some(*len),
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_types() {
        assert_eq!(
            from_catalog("tinyint", "tinyint(1)", None, None, None).0,
            DataType::Bool
        );
        assert_eq!(
            from_catalog("int", "int(10) unsigned", None, None, None).0,
            DataType::Int64
        );
        assert_eq!(
            from_catalog("bigint", "bigint(20) unsigned", None, None, None).0,
            DataType::Decimal {
                precision: Some(20),
                scale: Some(0)
            }
        );
        assert_eq!(
            from_catalog("varchar", "varchar(40)", Some(40), None, None).0,
            DataType::Text {
                max_chars: Some(40)
            }
        );
        assert!(
            from_catalog("enum", "enum('a','b')", Some(1), None, None)
                .1
                .is_some()
        );
        assert_eq!(
            from_catalog("timestamp", "timestamp", None, None, None).0,
            DataType::TimestampTz
        );
    }
}
