//! Portable values: what readers produce, conversions transform, and writers encode.
//!
//! A batch is a flat vector of values, `width` per row, so a batch of 10,000 rows is one
//! allocation plus its strings rather than 10,000 small vectors.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// An exact decimal in plain notation (`-12.3400`, `NaN`, `Infinity`, `-Infinity`).
    Decimal(String),
    Text(String),
    /// Text whose bytes are not valid UTF-8 (SQLite does not check): kept byte for byte.
    RawText(Vec<u8>),
    Bytes(Vec<u8>),
    Date(NaiveDate),
    Time(NaiveTime),
    Timestamp(NaiveDateTime),
    TimestampTz(DateTime<Utc>),
    Uuid(uuid::Uuid),
    /// JSON document text (validated when it was converted to the JSON type).
    Json(String),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A short rendering for error messages and reject files: keys, not whole documents.
    pub fn render(&self) -> String {
        match self {
            Value::Null => "NULL".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Decimal(s) | Value::Json(s) => s.clone(),
            Value::Text(s) => format!("'{}'", s.replace('\'', "''")),
            Value::RawText(b) => format!("'{}'", String::from_utf8_lossy(b)),
            Value::Bytes(b) => format!("x'{}'", hex(b)),
            Value::Date(d) => d.to_string(),
            Value::Time(t) => t.to_string(),
            Value::Timestamp(t) => t.to_string(),
            Value::TimestampTz(t) => t.to_rfc3339(),
            Value::Uuid(u) => u.to_string(),
        }
    }

    /// The value as JSON for reject files: text as text, bytes as hex, invalid UTF-8 as hex.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(f.to_string())),
            Value::Text(s) | Value::Decimal(s) | Value::Json(s) => J::String(s.clone()),
            Value::RawText(b) | Value::Bytes(b) => J::String(format!("\\x{}", hex(b))),
            other => J::String(other.render()),
        }
    }

    /// Approximate bytes this value occupies on the wire, for throughput figures.
    pub fn wire_size(&self) -> usize {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_)
            | Value::Float(_)
            | Value::Time(_)
            | Value::Timestamp(_)
            | Value::TimestampTz(_) => 8,
            Value::Date(_) => 4,
            Value::Uuid(_) => 16,
            Value::Decimal(s) | Value::Text(s) | Value::Json(s) => s.len(),
            Value::RawText(b) | Value::Bytes(b) => b.len(),
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Rows of one table, flattened.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub width: usize,
    pub values: Vec<Value>,
    /// Per row, the row locator (SQLite rowid) when the table is paged by it: names the row in
    /// errors when the table has no primary key.
    pub locators: Vec<i64>,
}

/// Values one batch holds at most, whatever the batch size asks: a wide table's rows travel in
/// smaller batches, so the memory of the batches in flight (about four per table being copied,
/// 32 bytes a value plus its text) does not grow with the table's width. 10,000 rows of a
/// 6-column table fit; TPC-H's 16-column lineitem goes 4,096 rows at a time.
pub const MAX_BATCH_VALUES: usize = 1 << 16;

impl Batch {
    /// Rows per batch for a table `width` columns wide when `rows` are asked: at least one,
    /// at most [`MAX_BATCH_VALUES`] values.
    pub fn rows_for(width: usize, rows: usize) -> usize {
        rows.min(MAX_BATCH_VALUES / width.max(1)).max(1)
    }

    pub fn new(width: usize, rows: usize) -> Self {
        // Room for the batch up front only up to a bound: a huge `--batch-size` against a small
        // table must not reserve rows × width values it will never fill.
        const MAX_RESERVED_VALUES: usize = 1 << 18;
        Self {
            width,
            values: Vec::with_capacity(width.saturating_mul(rows).min(MAX_RESERVED_VALUES)),
            locators: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn row(&self, i: usize) -> &[Value] {
        &self.values[i * self.width..(i + 1) * self.width]
    }

    pub fn rows(&self) -> impl Iterator<Item = &[Value]> {
        self.values.chunks_exact(self.width.max(1))
    }

    pub fn wire_size(&self) -> u64 {
        self.values.iter().map(|v| v.wire_size() as u64).sum()
    }

    /// A new batch with only the rows whose index is in `keep` (ascending).
    pub fn select(&self, keep: &[usize]) -> Batch {
        let mut out = Batch::new(self.width, keep.len());
        for &i in keep {
            out.values.extend_from_slice(self.row(i));
            if !self.locators.is_empty() {
                out.locators.push(self.locators[i]);
            }
        }
        out
    }
}
