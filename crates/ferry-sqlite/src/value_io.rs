//! Values in and out of SQLite: raw storage classes become portable values as they are (text
//! that is not UTF-8 stays bytes, never replaced), and portable values are bound in the forms
//! documented in ARCHITECTURE.md (booleans 0/1, times as ISO-8601 text, decimals as text).

use ferry_core::convert::timestamp_text;
use ferry_core::value::Value;
use rusqlite::types::{ToSqlOutput, ValueRef};

pub fn from_ref(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(b) => match std::str::from_utf8(b) {
            Ok(s) => Value::Text(s.to_string()),
            Err(_) => Value::RawText(b.to_vec()),
        },
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

/// Binds a portable value.
pub struct Bind<'a>(pub &'a Value);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::Value as V;
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(*b as i64)),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Float(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Value::Decimal(s) | Value::Text(s) | Value::Json(s) => {
                ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))
            }
            Value::RawText(b) => ToSqlOutput::Borrowed(ValueRef::Text(b)),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::Date(d) => ToSqlOutput::Owned(V::Text(d.format("%Y-%m-%d").to_string())),
            Value::Time(t) => ToSqlOutput::Owned(V::Text(t.format("%H:%M:%S%.f").to_string())),
            Value::Timestamp(t) => ToSqlOutput::Owned(V::Text(timestamp_text(t))),
            Value::TimestampTz(t) => {
                ToSqlOutput::Owned(V::Text(t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()))
            }
            Value::Uuid(u) => ToSqlOutput::Owned(V::Text(u.to_string())),
        })
    }
}
