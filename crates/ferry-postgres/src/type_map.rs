//! PostgreSQL type mapping, both ways: portable types to DDL type names, and catalog types to
//! portable types. Types ferry does not model yet are read as their text form.

use ferry_core::schema::DataType;

pub fn native_type(t: &DataType) -> String {
    match t {
        DataType::Bool => "boolean".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal {
            precision: Some(p),
            scale,
        } => format!("numeric({p},{})", scale.unwrap_or(0)),
        DataType::Decimal { .. } => "numeric".into(),
        DataType::Text { max_chars: Some(n) } => format!("varchar({n})"),
        DataType::Text { max_chars: None } => "text".into(),
        DataType::Char { len } => format!("character({len})"),
        DataType::Bytes => "bytea".into(),
        DataType::Date => "date".into(),
        DataType::Time => "time".into(),
        DataType::Timestamp => "timestamp".into(),
        DataType::TimestampTz => "timestamptz".into(),
        DataType::Uuid => "uuid".into(),
        // json keeps the document's text exactly; jsonb would reorder keys and drop duplicates.
        DataType::Json => "json".into(),
        DataType::Native { name, .. } => name.clone(),
    }
}

/// Maps a catalog type (`pg_type.typname` and `atttypmod`) to a portable type. Returns `None`
/// for types read as text (the reader casts them).
pub fn from_catalog(typname: &str, typmod: i32) -> Option<DataType> {
    let modifier = (typmod >= 4).then(|| (typmod - 4) as u32);
    Some(match typname {
        "bool" => DataType::Bool,
        "int2" => DataType::Int16,
        "int4" => DataType::Int32,
        "int8" => DataType::Int64,
        "float4" => DataType::Float32,
        "float8" => DataType::Float64,
        "numeric" => match modifier {
            Some(m) => DataType::Decimal {
                precision: Some(m >> 16),
                scale: Some(m & 0xffff),
            },
            None => DataType::Decimal {
                precision: None,
                scale: None,
            },
        },
        "text" | "name" | "citext" => DataType::text(),
        "varchar" => DataType::Text {
            max_chars: modifier,
        },
        "bpchar" => DataType::Char {
            len: modifier.unwrap_or(1),
        },
        "bytea" => DataType::Bytes,
        "date" => DataType::Date,
        "time" => DataType::Time,
        "timestamp" => DataType::Timestamp,
        "timestamptz" => DataType::TimestampTz,
        "uuid" => DataType::Uuid,
        "json" | "jsonb" => DataType::Json,
        _ => return None,
    })
}

/// The wire type a column is read as, from its `format_type` name; `None` means ferry reads the
/// column cast to text.
pub fn from_catalog_type(format_type: &str) -> Option<tokio_postgres::types::Type> {
    use tokio_postgres::types::Type;
    let t = format_type;
    let with_zone = t.contains("with time zone") && !t.contains("without");
    if t.ends_with(']') {
        return None;
    }
    Some(match t {
        "boolean" => Type::BOOL,
        "smallint" => Type::INT2,
        "integer" => Type::INT4,
        "bigint" => Type::INT8,
        "real" => Type::FLOAT4,
        "double precision" => Type::FLOAT8,
        "text" => Type::TEXT,
        "bytea" => Type::BYTEA,
        "date" => Type::DATE,
        "uuid" => Type::UUID,
        "json" => Type::JSON,
        "jsonb" => Type::JSONB,
        _ if t.starts_with("numeric") => Type::NUMERIC,
        _ if t.starts_with("character varying") => Type::VARCHAR,
        _ if t.starts_with("character") => Type::BPCHAR,
        _ if t.starts_with("timestamp") && with_zone => Type::TIMESTAMPTZ,
        _ if t.starts_with("timestamp") => Type::TIMESTAMP,
        _ if t.starts_with("time") && !with_zone => Type::TIME,
        _ => return None,
    })
}

/// The cast and wire type that read a column of portable type `t` whatever its declared name
/// (a domain over it, `citext`): `None` for types read as text.
pub fn wire_type(t: &DataType) -> Option<(&'static str, tokio_postgres::types::Type)> {
    use tokio_postgres::types::Type;
    Some(match t {
        DataType::Bool => ("boolean", Type::BOOL),
        DataType::Int16 => ("int2", Type::INT2),
        DataType::Int32 => ("int4", Type::INT4),
        DataType::Int64 => ("int8", Type::INT8),
        DataType::Float32 => ("float4", Type::FLOAT4),
        DataType::Float64 => ("float8", Type::FLOAT8),
        DataType::Decimal { .. } => ("numeric", Type::NUMERIC),
        DataType::Bytes => ("bytea", Type::BYTEA),
        DataType::Date => ("date", Type::DATE),
        DataType::Time => ("time", Type::TIME),
        DataType::Timestamp => ("timestamp", Type::TIMESTAMP),
        DataType::TimestampTz => ("timestamptz", Type::TIMESTAMPTZ),
        DataType::Uuid => ("uuid", Type::UUID),
        DataType::Json => ("json", Type::JSON),
        DataType::Text { .. } | DataType::Char { .. } | DataType::Native { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_portable_type_round_trips_through_the_catalog_names() {
        let cases = [
            (DataType::Bool, "bool", -1),
            (DataType::Int64, "int8", -1),
            (DataType::Float64, "float8", -1),
            (
                DataType::Decimal {
                    precision: Some(10),
                    scale: Some(2),
                },
                "numeric",
                ((10 << 16) | 2) + 4,
            ),
            (
                DataType::Text {
                    max_chars: Some(20),
                },
                "varchar",
                24,
            ),
            (DataType::Timestamp, "timestamp", -1),
            (DataType::Json, "json", -1),
        ];
        for (t, name, typmod) in cases {
            assert_eq!(from_catalog(name, typmod), Some(t.clone()), "{t}");
        }
    }
}
