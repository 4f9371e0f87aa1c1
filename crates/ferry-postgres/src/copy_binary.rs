//! PostgreSQL's binary COPY format, by hand: tokio-postgres frames COPY but its typed writer
//! encodes from Rust types through `ToSql`, which has no exact decimal and would need a value
//! per cell boxed as a trait object. Encoding portable values straight into one buffer per
//! batch is both exact (numeric digits kept as written) and the fastest path we measured.
//! Decoding reuses tokio-postgres's framing (`BinaryCopyOutStream`) through `FromSql`.

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveDate, NaiveTime};
use ferry_core::schema::DataType;
use ferry_core::value::Value;
use tokio_postgres::types::{FromSql, Type};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Microseconds and days between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i32 = 10_957;

pub fn header(buf: &mut BytesMut) {
    buf.put_slice(SIGNATURE);
    buf.put_i32(0); // flags
    buf.put_i32(0); // header extension length
}

pub fn trailer(buf: &mut BytesMut) {
    buf.put_i16(-1);
}

/// How one target column's values are encoded.
#[derive(Debug, Clone)]
pub enum Encoding {
    /// From a portable value.
    Portable(DataType),
    /// JSON text into a jsonb column (its binary form is a version byte and the text).
    Jsonb,
    /// A value already in PostgreSQL's binary form (read raw from another PostgreSQL), or text
    /// for a type that accepts it (enums, text domains). `elem_oid` is the target's element
    /// type of an array column: the binary form names it, and user types differ per database.
    Native { elem_oid: u32 },
}

/// Appends one row. On a value the target cannot hold, the buffer is left as it was and the
/// reason is returned.
pub fn encode_row(buf: &mut BytesMut, columns: &[Encoding], row: &[Value]) -> Result<(), String> {
    let start = buf.len();
    buf.put_i16(row.len() as i16);
    for (v, c) in row.iter().zip(columns) {
        if let Err(e) = encode_field(buf, c, v) {
            buf.truncate(start);
            return Err(e);
        }
    }
    Ok(())
}

fn encode_field(buf: &mut BytesMut, column: &Encoding, v: &Value) -> Result<(), String> {
    match (column, v) {
        (Encoding::Portable(t), v) => encode_value(buf, t, v),
        (_, Value::Null) => {
            buf.put_i32(-1);
            Ok(())
        }
        (Encoding::Jsonb, Value::Json(s) | Value::Text(s)) => {
            buf.put_i32(s.len() as i32 + 1);
            buf.put_u8(1);
            buf.put_slice(s.as_bytes());
            Ok(())
        }
        (Encoding::Native { elem_oid }, Value::Bytes(b)) => {
            buf.put_i32(b.len() as i32);
            let at = buf.len();
            buf.put_slice(b);
            // Array header: dimensions, flags, element type.
            if *elem_oid != 0 && b.len() >= 12 {
                buf[at + 8..at + 12].copy_from_slice(&elem_oid.to_be_bytes());
            }
            Ok(())
        }
        (Encoding::Native { elem_oid: 0 }, Value::Text(_)) => {
            encode_value(buf, &DataType::text(), v)
        }
        (Encoding::Native { .. }, Value::Text(s)) => Err(format!(
            "'{s}' is text and this column is a PostgreSQL array: only arrays read from another PostgreSQL database can be loaded into it"
        )),
        (c, v) => Err(format!(
            "internal: a {} value reached a {c:?} column unconverted",
            v.render()
        )),
    }
}

/// Clears the element type of a raw array value read from PostgreSQL, so that the same array
/// read from two databases (whose user types have different ids) compares equal.
pub fn normalize_array(raw: &mut [u8]) {
    if raw.len() >= 12 {
        raw[8..12].fill(0);
    }
}

fn with_len(
    buf: &mut BytesMut,
    f: impl FnOnce(&mut BytesMut) -> Result<(), String>,
) -> Result<(), String> {
    let at = buf.len();
    buf.put_i32(0);
    f(buf)?;
    let len = (buf.len() - at - 4) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn encode_value(buf: &mut BytesMut, t: &DataType, v: &Value) -> Result<(), String> {
    match (t, v) {
        (_, Value::Null) => buf.put_i32(-1),
        (DataType::Bool, Value::Bool(b)) => {
            buf.put_i32(1);
            buf.put_u8(*b as u8);
        }
        (DataType::Int16, Value::Int(i)) => {
            buf.put_i32(2);
            buf.put_i16(*i as i16);
        }
        (DataType::Int32, Value::Int(i)) => {
            buf.put_i32(4);
            buf.put_i32(*i as i32);
        }
        (DataType::Int64, Value::Int(i)) => {
            buf.put_i32(8);
            buf.put_i64(*i);
        }
        (DataType::Float32, Value::Float(f)) => {
            buf.put_i32(4);
            buf.put_f32(*f as f32);
        }
        (DataType::Float64, Value::Float(f)) => {
            buf.put_i32(8);
            buf.put_f64(*f);
        }
        (DataType::Decimal { .. }, Value::Decimal(d)) => with_len(buf, |b| encode_numeric(b, d))?,
        (
            DataType::Text { .. } | DataType::Char { .. } | DataType::Json,
            Value::Text(s) | Value::Json(s),
        ) => {
            if s.as_bytes().contains(&0) {
                return Err(
                    "text contains a NUL character, which PostgreSQL text cannot store".into(),
                );
            }
            buf.put_i32(s.len() as i32);
            buf.put_slice(s.as_bytes());
        }
        (DataType::Bytes, Value::Bytes(b)) => {
            buf.put_i32(b.len() as i32);
            buf.put_slice(b);
        }
        (DataType::Date, Value::Date(d)) => {
            buf.put_i32(4);
            buf.put_i32(d.to_epoch_days() - PG_EPOCH_DAYS);
        }
        (DataType::Time, Value::Time(t)) => {
            buf.put_i32(8);
            buf.put_i64(
                t.signed_duration_since(NaiveTime::MIN)
                    .num_microseconds()
                    .unwrap_or(0),
            );
        }
        (DataType::Timestamp, Value::Timestamp(t)) => {
            buf.put_i32(8);
            buf.put_i64(t.and_utc().timestamp_micros() - PG_EPOCH_MICROS);
        }
        (DataType::TimestampTz, Value::TimestampTz(t)) => {
            buf.put_i32(8);
            buf.put_i64(t.timestamp_micros() - PG_EPOCH_MICROS);
        }
        (DataType::Uuid, Value::Uuid(u)) => {
            buf.put_i32(16);
            buf.put_slice(u.as_bytes());
        }
        (t, v) => {
            return Err(format!(
                "internal: a {} value reached a {t} column unconverted",
                v.render()
            ));
        }
    }
    Ok(())
}

/// Encodes a normalized decimal (`-12.340`, `NaN`, `Infinity`) as PostgreSQL numeric: base-10000
/// digits with a weight, a sign and the display scale.
pub fn encode_numeric(buf: &mut BytesMut, text: &str) -> Result<(), String> {
    let special = match text {
        "NaN" => Some(0xC000u16),
        "Infinity" => Some(0xD000),
        "-Infinity" => Some(0xF000),
        _ => None,
    };
    if let Some(sign) = special {
        buf.put_i16(0);
        buf.put_i16(0);
        buf.put_u16(sign);
        buf.put_u16(0);
        return Ok(());
    }
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(format!("'{text}' is not a decimal number"));
    }
    let int = int.trim_start_matches('0');
    let dscale = frac.len() as u16;
    // Base-10000 groups, aligned so that the decimal point falls between two groups: each
    // digit adds to its group at its place. Written in place (no buffer per value: this runs
    // for every decimal cell) unless the number has more than 256 digits.
    const PLACE: [i16; 4] = [1000, 100, 10, 1];
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let total = (int_pad + int.len() + frac.len() + frac_pad) / 4;
    let mut stack = [0i16; 64];
    let mut heap = Vec::new();
    let groups: &mut [i16] = if total <= stack.len() {
        &mut stack[..total]
    } else {
        heap.resize(total, 0);
        &mut heap
    };
    for (k, d) in int.bytes().chain(frac.bytes()).enumerate() {
        let at = int_pad + k;
        groups[at / 4] += (d - b'0') as i16 * PLACE[at % 4];
    }
    let int_groups = (int.len() + int_pad) / 4;
    let first = groups.iter().position(|&g| g != 0);
    let last = groups.iter().rposition(|&g| g != 0);
    let (digits, weight) = match (first, last) {
        (Some(lo), Some(hi)) => (&groups[lo..=hi], int_groups as i32 - 1 - lo as i32),
        _ => (&groups[..0], 0),
    };
    buf.put_i16(digits.len() as i16);
    buf.put_i16(weight as i16);
    buf.put_u16(if neg && !digits.is_empty() { 0x4000 } else { 0 });
    buf.put_u16(dscale);
    for &g in digits {
        buf.put_i16(g);
    }
    Ok(())
}

pub fn decode_numeric(raw: &[u8]) -> Result<String, String> {
    let bad = || "malformed numeric".to_string();
    if raw.len() < 8 {
        return Err(bad());
    }
    let rd = |i: usize| i16::from_be_bytes([raw[i], raw[i + 1]]);
    let ndigits = rd(0) as usize;
    let weight = rd(2) as i32;
    let sign = u16::from_be_bytes([raw[4], raw[5]]);
    let dscale = u16::from_be_bytes([raw[6], raw[7]]) as usize;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    if raw.len() < 8 + ndigits * 2 {
        return Err(bad());
    }
    // Written digit by digit into one string: this runs for every numeric cell verify reads.
    let group = |k: i32| -> u16 {
        if k < 0 || k as usize >= ndigits {
            0
        } else {
            rd(8 + k as usize * 2) as u16
        }
    };
    let four = |out: &mut String, g: u16, skip_zeros: bool| {
        let digits = [g / 1000 % 10, g / 100 % 10, g / 10 % 10, g % 10];
        let skip = if skip_zeros {
            digits.iter().take_while(|&&d| d == 0).count()
        } else {
            0
        };
        for d in &digits[skip..] {
            out.push((b'0' + *d as u8) as char);
        }
    };
    let int_groups = (weight + 1).max(0) as usize;
    let mut out = String::with_capacity(2 + int_groups * 4 + dscale + 4);
    if sign == 0x4000 {
        out.push('-');
    }
    let int_start = out.len();
    for k in 0..=weight.max(-1) {
        let g = group(k);
        if out.len() > int_start {
            four(&mut out, g, false);
        } else if g != 0 {
            four(&mut out, g, true);
        }
    }
    if out.len() == int_start {
        out.push('0');
    }
    if dscale > 0 {
        out.push('.');
        let frac_start = out.len();
        let mut k = weight + 1;
        while out.len() - frac_start < dscale {
            four(&mut out, group(k), false);
            k += 1;
        }
        out.truncate(frac_start + dscale);
    }
    Ok(out)
}

/// A value decoded from binary COPY output, for any column type ferry reads.
pub struct Decoded(pub Value);

impl<'a> FromSql<'a> for Decoded {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let be8 = |raw: &[u8]| -> Result<i64, String> {
            raw.try_into()
                .map(i64::from_be_bytes)
                .map_err(|_| "bad length".to_string())
        };
        let v = match *ty {
            Type::BOOL => Value::Bool(raw.first().copied().unwrap_or(0) != 0),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)? as i64),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)? as i64),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Float(f32::from_sql(ty, raw)? as f64),
            Type::FLOAT8 => Value::Float(f64::from_sql(ty, raw)?),
            Type::NUMERIC => Value::Decimal(decode_numeric(raw)?),
            Type::BYTEA => Value::Bytes(raw.to_vec()),
            Type::DATE => {
                let days = i32::from_sql(ty, raw)?;
                let d =
                    NaiveDate::from_epoch_days(days + PG_EPOCH_DAYS).ok_or("date out of range")?;
                Value::Date(d)
            }
            Type::TIME => {
                let micros = be8(raw)?;
                Value::Time(NaiveTime::MIN + chrono::Duration::microseconds(micros))
            }
            Type::TIMESTAMP => {
                let micros = be8(raw)?;
                let t = DateTime::from_timestamp_micros(micros + PG_EPOCH_MICROS)
                    .ok_or("timestamp out of range")?;
                Value::Timestamp(t.naive_utc())
            }
            Type::TIMESTAMPTZ => {
                let micros = be8(raw)?;
                Value::TimestampTz(
                    DateTime::from_timestamp_micros(micros + PG_EPOCH_MICROS)
                        .ok_or("timestamp out of range")?,
                )
            }
            Type::UUID => Value::Uuid(uuid::Uuid::from_slice(raw)?),
            Type::JSON => Value::Json(String::from_utf8(raw.to_vec())?),
            Type::JSONB => Value::Json(String::from_utf8(
                raw.get(1..).unwrap_or_default().to_vec(),
            )?),
            _ => Value::Text(String::from_utf8(raw.to_vec())?),
        };
        Ok(Decoded(v))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Decoded(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_round_trips() {
        for text in [
            "0",
            "1",
            "-1",
            "12345.6789",
            "0.0001",
            "100000000",
            "-0.50",
            "123456789012345678901234567890.123",
            "NaN",
            "Infinity",
            "1.000",
            "0.00",
        ] {
            let mut buf = BytesMut::new();
            encode_numeric(&mut buf, text).unwrap();
            assert_eq!(decode_numeric(&buf).unwrap(), text, "round trip of {text}");
        }
        // More digits than the encoder keeps on its stack.
        let long = format!("-{}7.{}5", "9".repeat(300), "0".repeat(40));
        let mut buf = BytesMut::new();
        encode_numeric(&mut buf, &long).unwrap();
        assert_eq!(decode_numeric(&buf).unwrap(), long);
    }
}

#[cfg(test)]
mod roundtrip {
    use super::*;
    use proptest::prelude::*;

    /// Decodes one encoded field back through the reader's `FromSql`.
    fn back(t: &DataType, ty: &Type, v: &Value) -> Value {
        let mut buf = BytesMut::new();
        encode_value(&mut buf, t, v).unwrap();
        let len = i32::from_be_bytes(buf[..4].try_into().unwrap());
        if len < 0 {
            return Value::Null;
        }
        Decoded::from_sql(ty, &buf[4..]).unwrap().0
    }

    proptest! {
        #[test]
        fn ints_floats_text_bytes(i in any::<i64>(), f in any::<f64>(), s in "\\PC*", b in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(back(&DataType::Int64, &Type::INT8, &Value::Int(i)), Value::Int(i));
            let Value::Float(g) = back(&DataType::Float64, &Type::FLOAT8, &Value::Float(f)) else { panic!() };
            prop_assert!(g.to_bits() == f.to_bits() || (f.is_nan() && g.is_nan()));
            let s = s.replace('\0', "");
            prop_assert_eq!(back(&DataType::text(), &Type::TEXT, &Value::Text(s.clone())), Value::Text(s));
            prop_assert_eq!(back(&DataType::Bytes, &Type::BYTEA, &Value::Bytes(b.clone())), Value::Bytes(b));
        }

        #[test]
        fn decimals(int in "-?[1-9][0-9]{0,30}|0", frac in "[0-9]{0,20}") {
            let text = if frac.is_empty() { int.clone() } else { format!("{int}.{frac}") };
            let t = DataType::Decimal { precision: None, scale: None };
            prop_assert_eq!(back(&t, &Type::NUMERIC, &Value::Decimal(text.clone())), Value::Decimal(text));
        }

        #[test]
        fn times(micros in -30_000_000_000_000_000i64..200_000_000_000_000_000i64) {
            let ts = DateTime::from_timestamp_micros(micros).unwrap();
            prop_assert_eq!(back(&DataType::TimestampTz, &Type::TIMESTAMPTZ, &Value::TimestampTz(ts)), Value::TimestampTz(ts));
            let naive = ts.naive_utc();
            prop_assert_eq!(back(&DataType::Timestamp, &Type::TIMESTAMP, &Value::Timestamp(naive)), Value::Timestamp(naive));
            let d = naive.date();
            prop_assert_eq!(back(&DataType::Date, &Type::DATE, &Value::Date(d)), Value::Date(d));
            let t = naive.time();
            prop_assert_eq!(back(&DataType::Time, &Type::TIME, &Value::Time(t)), Value::Time(t));
        }
    }
}
