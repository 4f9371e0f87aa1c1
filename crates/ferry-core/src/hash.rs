//! Canonical row hashing for verification: an order-independent digest of a table (the sum
//! modulo 2^64 of a 64-bit hash of each row's canonical encoding), plus the same sums split
//! into buckets by key so that a mismatch can be narrowed to a few keys without holding the
//! whole table in memory.

use xxhash_rust::xxh3::xxh3_64;

use crate::value::Value;

/// Buckets the per-table digest is split into (by key hash) for the keyed diff.
pub const BUCKETS: usize = 1024;

/// Encodes values canonically into `buf` (cleared first): a tag byte and a length-prefixed
/// payload per value, so that `('ab','c')` and `('a','bc')` differ. Values must already be in
/// the comparison type (see `verify`).
pub fn encode_canonical(values: &[Value], buf: &mut Vec<u8>) {
    buf.clear();
    for v in values {
        encode_value(v, buf);
    }
}

/// Appends one value's canonical encoding to `buf` (see [`encode_canonical`]): a row is
/// encoded value by value, so a key is hashed from the row's own values without copying them.
pub fn encode_value(v: &Value, buf: &mut Vec<u8>) {
    match v {
        Value::Null => buf.push(0),
        Value::Bool(b) => buf.extend_from_slice(&[1, *b as u8]),
        Value::Int(i) => {
            buf.push(2);
            buf.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            buf.push(3);
            let bits = if f.is_nan() {
                f64::NAN.to_bits()
            } else {
                f.to_bits()
            };
            buf.extend_from_slice(&bits.to_le_bytes());
        }
        Value::Decimal(s) => tagged(buf, 4, s.as_bytes()),
        // Text and invalid-UTF-8 text compare by their bytes.
        Value::Text(s) => tagged(buf, 5, s.as_bytes()),
        Value::RawText(b) => tagged(buf, 5, b),
        Value::Bytes(b) => tagged(buf, 6, b),
        Value::Date(d) => {
            buf.push(7);
            buf.extend_from_slice(&d.to_epoch_days().to_le_bytes());
        }
        Value::Time(t) => {
            buf.push(8);
            let micros = t
                .signed_duration_since(chrono::NaiveTime::MIN)
                .num_microseconds()
                .unwrap_or(0);
            buf.extend_from_slice(&micros.to_le_bytes());
        }
        Value::Timestamp(t) => {
            buf.push(9);
            buf.extend_from_slice(&t.and_utc().timestamp_micros().to_le_bytes());
        }
        Value::TimestampTz(t) => {
            buf.push(10);
            buf.extend_from_slice(&t.timestamp_micros().to_le_bytes());
        }
        Value::Uuid(u) => {
            buf.push(11);
            buf.extend_from_slice(u.as_bytes());
        }
        Value::Json(s) => tagged(buf, 12, s.as_bytes()),
    }
}

fn tagged(buf: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    buf.push(tag);
    buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    buf.extend_from_slice(bytes);
}

pub fn hash_values(values: &[Value], buf: &mut Vec<u8>) -> u64 {
    encode_canonical(values, buf);
    xxh3_64(buf)
}

/// The running digest of one side of one table.
#[derive(Debug, Clone)]
pub struct TableDigest {
    pub rows: u64,
    pub sum: u64,
    pub buckets: Vec<u64>,
}

impl Default for TableDigest {
    fn default() -> Self {
        Self {
            rows: 0,
            sum: 0,
            buckets: vec![0; BUCKETS],
        }
    }
}

impl TableDigest {
    pub fn add(&mut self, key_hash: u64, row_hash: u64) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(row_hash);
        let b = bucket_of(key_hash);
        self.buckets[b] = self.buckets[b].wrapping_add(row_hash);
    }
}

pub fn bucket_of(key_hash: u64) -> usize {
    (key_hash % BUCKETS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_matter_and_order_does_not() {
        let mut buf = Vec::new();
        let a = hash_values(
            &[Value::Text("ab".into()), Value::Text("c".into())],
            &mut buf,
        );
        let b = hash_values(
            &[Value::Text("a".into()), Value::Text("bc".into())],
            &mut buf,
        );
        assert_ne!(a, b);
        let mut d1 = TableDigest::default();
        let mut d2 = TableDigest::default();
        d1.add(1, a);
        d1.add(2, b);
        d2.add(2, b);
        d2.add(1, a);
        assert_eq!(d1.sum, d2.sum);
        assert_eq!(d1.buckets, d2.buckets);
    }

    #[test]
    fn null_differs_from_empty_text() {
        let mut buf = Vec::new();
        assert_ne!(
            hash_values(&[Value::Null], &mut buf),
            hash_values(&[Value::Text(String::new())], &mut buf)
        );
    }
}
