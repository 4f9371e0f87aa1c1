//! Value conversion into a portable type: the one place where SQLite's 0/1 becomes a boolean,
//! ISO text becomes a timestamp, and a value that does not fit becomes a row failure with a
//! reason, never a silently changed value.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};

use crate::schema::DataType;
use crate::value::Value;

/// Why one value could not be converted; becomes the row's failure reason.
pub type ConvertError = String;

/// Converts `value` so that it is exactly representable as `to`.
///
/// # Errors
/// A sentence naming the value and why it does not fit; nothing is rounded or truncated,
/// except the sub-microsecond digits of text times (see [`convert_noting_rounding`]).
pub fn convert(value: Value, to: &DataType) -> Result<Value, ConvertError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match to {
        DataType::Bool => to_bool(value),
        DataType::Int16 => {
            to_int(value).and_then(|v| range(v, i16::MIN as i64, i16::MAX as i64, "int16"))
        }
        DataType::Int32 => {
            to_int(value).and_then(|v| range(v, i32::MIN as i64, i32::MAX as i64, "int32"))
        }
        DataType::Int64 => to_int(value),
        DataType::Float64 => to_float(value),
        DataType::Float32 => match to_float(value)? {
            Value::Float(f) if f.is_finite() && (f as f32) as f64 != f => {
                Err(format!("{f} has more precision than a 32-bit float holds"))
            }
            v => Ok(v),
        },
        DataType::Decimal { precision, scale } => to_decimal(value, *precision, *scale),
        DataType::Text { max_chars } => {
            let text = to_text(value)?;
            check_len(text, *max_chars)
        }
        DataType::Char { len } => check_len(to_text(value)?, Some(*len)),
        DataType::Bytes => Ok(Value::Bytes(match value {
            Value::Bytes(b) | Value::RawText(b) => b,
            Value::Text(s) => s.into_bytes(),
            other => match to_text(other)? {
                Value::Text(s) => s.into_bytes(),
                _ => unreachable!("to_text returns text"),
            },
        })),
        DataType::Date => to_date(value),
        DataType::Time => to_time(value).map(|(v, _)| v),
        DataType::Timestamp => to_timestamp(value).map(|(v, _)| v),
        DataType::TimestampTz => to_timestamptz(value).map(|(v, _)| v),
        DataType::Uuid => match value {
            Value::Uuid(u) => Ok(Value::Uuid(u)),
            Value::Text(s) => uuid::Uuid::parse_str(s.trim())
                .map(Value::Uuid)
                .map_err(|_| format!("'{s}' is not a UUID")),
            Value::Bytes(b) if b.len() == 16 => {
                Ok(Value::Uuid(uuid::Uuid::from_slice(&b).expect("16 bytes")))
            }
            other => Err(format!("{} is not a UUID", other.render())),
        },
        DataType::Json => match value {
            Value::Json(s) => Ok(Value::Json(s)),
            Value::Text(s) => match serde_json::from_str::<serde::de::IgnoredAny>(&s) {
                Ok(_) => Ok(Value::Json(s)),
                Err(e) => Err(format!("not valid JSON ({e})")),
            },
            other => Err(format!("{} is not JSON text", other.render())),
        },
        // Bytes are the backend's own binary form (a same-backend copy reads it raw); any
        // other value goes in as its text form, which enums and text domains accept.
        DataType::Native { .. } => match value {
            Value::Bytes(b) => Ok(Value::Bytes(b)),
            other => to_text(other),
        },
    }
}

/// Whether `value` is already exactly what [`convert`] would make of it for `to` (so a copy
/// can pass it through without converting): a NULL, or a value of the type's own kind where
/// the conversion checks nothing more (no length, range or digits).
pub fn already(value: &Value, to: &DataType) -> bool {
    matches!(
        (value, to),
        (Value::Null, _)
            | (Value::Bool(_), DataType::Bool)
            | (Value::Int(_), DataType::Int64)
            | (Value::Float(_), DataType::Float64)
            | (Value::Text(_), DataType::Text { max_chars: None })
            | (Value::Bytes(_), DataType::Bytes)
            | (Value::Date(_), DataType::Date)
            | (Value::Time(_), DataType::Time)
            | (Value::Timestamp(_), DataType::Timestamp)
            | (Value::TimestampTz(_), DataType::TimestampTz)
            | (Value::Uuid(_), DataType::Uuid)
            | (Value::Json(_), DataType::Json)
    )
}

/// [`convert`], also saying whether the value lost non-zero digits: text times with 7 to 9
/// fractional digits (Go's `time.Time`, .NET) are rounded to the microsecond every target
/// holds, the way PostgreSQL rounds them on input, and the copy reports how many were.
///
/// # Errors
/// As [`convert`].
pub fn convert_noting_rounding(value: Value, to: &DataType) -> Result<(Value, bool), ConvertError> {
    if value.is_null() {
        return Ok((Value::Null, false));
    }
    match to {
        DataType::Time => to_time(value),
        DataType::Timestamp => to_timestamp(value),
        DataType::TimestampTz => to_timestamptz(value),
        _ => convert(value, to).map(|v| (v, false)),
    }
}

/// Rounds a nanosecond fraction to microseconds exactly as PostgreSQL's timestamp input does
/// (`rint(strtod(fraction) * 1e6)`, round half to even on the double): the same text gives
/// the same instant whether ferry or PostgreSQL parses it. `n as f64 / 1e9` is the correctly
/// rounded double of the decimal fraction, which is what `strtod` returns. The result may be
/// 1,000,000 (a carry into the next second).
pub fn round_nanos_to_micros(nanos: u32) -> u32 {
    ((nanos as f64 / 1e9) * 1e6).round_ties_even() as u32
}

/// `t` rounded to whole microseconds, and whether that dropped non-zero digits.
fn round_timestamp(t: NaiveDateTime) -> (NaiveDateTime, bool) {
    let nanos = t.and_utc().timestamp_subsec_nanos();
    if nanos.is_multiple_of(1000) {
        return (t, false);
    }
    let whole = t.with_nanosecond(0).expect("zero nanoseconds is valid");
    (
        whole + chrono::Duration::microseconds(round_nanos_to_micros(nanos) as i64),
        true,
    )
}

fn range(v: Value, min: i64, max: i64, name: &str) -> Result<Value, ConvertError> {
    match v {
        Value::Int(i) if i < min || i > max => Err(format!("{i} is out of range for {name}")),
        v => Ok(v),
    }
}

fn check_len(v: Value, max: Option<u32>) -> Result<Value, ConvertError> {
    if let (Value::Text(s), Some(max)) = (&v, max) {
        let n = s.chars().count();
        if n > max as usize {
            return Err(format!(
                "text of {n} characters is longer than the column's limit of {max}"
            ));
        }
    }
    Ok(v)
}

fn to_bool(value: Value) -> Result<Value, ConvertError> {
    match value {
        Value::Bool(b) => Ok(Value::Bool(b)),
        Value::Int(0) => Ok(Value::Bool(false)),
        Value::Int(1) => Ok(Value::Bool(true)),
        Value::Float(0.0) => Ok(Value::Bool(false)),
        Value::Float(1.0) => Ok(Value::Bool(true)),
        Value::Text(ref s) => match s.to_ascii_lowercase().as_str() {
            "0" | "f" | "false" => Ok(Value::Bool(false)),
            "1" | "t" | "true" => Ok(Value::Bool(true)),
            _ => Err(format!(
                "{} is not a boolean (0/1, true/false)",
                value.render()
            )),
        },
        other => Err(format!(
            "{} is not a boolean (0/1, true/false)",
            other.render()
        )),
    }
}

/// 2^53: beyond it not every integer is a double.
const EXACT_F64_INT: i64 = 1 << 53;

fn to_int(value: Value) -> Result<Value, ConvertError> {
    match value {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Bool(b) => Ok(Value::Int(b as i64)),
        Value::Float(f) => {
            if f.fract() == 0.0 && f >= -(EXACT_F64_INT as f64) && f <= EXACT_F64_INT as f64 {
                Ok(Value::Int(f as i64))
            } else {
                Err(format!("{f} is not an integer"))
            }
        }
        Value::Text(ref s) | Value::Decimal(ref s) => {
            let t = s.trim();
            let t = t.strip_suffix(".0").unwrap_or(t);
            t.parse::<i64>()
                .map(Value::Int)
                .map_err(|_| format!("{} is not an integer", value.render()))
        }
        other => Err(format!("{} is not an integer", other.render())),
    }
}

fn to_float(value: Value) -> Result<Value, ConvertError> {
    match value {
        Value::Float(f) => Ok(Value::Float(f)),
        Value::Int(i) => {
            if (-EXACT_F64_INT..=EXACT_F64_INT).contains(&i) {
                Ok(Value::Float(i as f64))
            } else {
                Err(format!("{i} cannot be held exactly by a 64-bit float"))
            }
        }
        Value::Text(ref s) | Value::Decimal(ref s) => parse_float(s.trim())
            .map(Value::Float)
            .ok_or_else(|| format!("{} is not a number", value.render())),
        other => Err(format!("{} is not a number", other.render())),
    }
}

fn parse_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "infinity" | "+inf" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// The shortest decimal text that reads back as the same double (Rust's `Display` for f64
/// never uses an exponent, so this is also plain notation).
pub fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "Infinity".into()
    } else if f == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        f.to_string()
    }
}

fn to_decimal(
    value: Value,
    precision: Option<u32>,
    scale: Option<u32>,
) -> Result<Value, ConvertError> {
    let text = match value {
        Value::Decimal(s) => s,
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float_text(f),
        Value::Bool(b) => (b as i64).to_string(),
        Value::Text(s) => s.trim().to_string(),
        other => return Err(format!("{} is not a number", other.render())),
    };
    match plain_decimal(text, precision, scale) {
        Ok(fast) => Ok(fast),
        Err(text) => decimal_from_text(&text, precision, scale),
    }
}

/// The general path of [`to_decimal`]: any decimal syntax, normalized, checked, padded.
fn decimal_from_text(
    text: &str,
    precision: Option<u32>,
    scale: Option<u32>,
) -> Result<Value, ConvertError> {
    let normal =
        normalize_decimal(text).ok_or_else(|| format!("'{text}' is not a decimal number"))?;
    if let Some(p) = precision {
        let s = scale.unwrap_or(0);
        let Some((int_digits, frac_digits)) = decimal_digits(&normal) else {
            return Err(format!("{normal} does not fit decimal({p},{s})"));
        };
        if frac_digits > s as usize {
            return Err(format!(
                "{normal} has more than {s} decimal places: decimal({p},{s}) would round it"
            ));
        }
        if int_digits > (p.saturating_sub(s)) as usize {
            return Err(format!("{normal} has too many digits for decimal({p},{s})"));
        }
        // A constrained decimal always shows `s` places (1.5 in decimal(10,2) is 1.50); padding
        // with zeros is what the database does too, and changes no value.
        return Ok(Value::Decimal(with_scale(&normal, s as usize)));
    }
    Ok(Value::Decimal(normal))
}

/// The fast path of [`to_decimal`], for text that is already a plain decimal as readers and
/// `float_text` write it (`-12.5`, `0.04`, `17`: no sign but `-`, no leading zeros, no
/// exponent, not negative zero) and fits: the same text, padded in place to the column's
/// scale, without the copies the general path makes. Anything else is handed back for it.
fn plain_decimal(
    text: String,
    precision: Option<u32>,
    scale: Option<u32>,
) -> Result<Value, String> {
    let negative = text.starts_with('-');
    let digits = if negative { &text[1..] } else { &text[..] };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || !int.starts_with('0'))
        && (digits.len() == int.len() || !frac.is_empty());
    let zero = int == "0" && frac.bytes().all(|b| b == b'0');
    let int_digits = if int == "0" { 0 } else { int.len() };
    let frac_digits = frac.len();
    if !plain || (zero && negative) {
        return Err(text);
    }
    let Some(p) = precision else {
        return Ok(Value::Decimal(text));
    };
    let s = scale.unwrap_or(0) as usize;
    if frac_digits > s || int_digits > (p as usize).saturating_sub(s) {
        return Err(text);
    }
    let pad = s - frac_digits;
    let mut text = text;
    if pad > 0 && frac_digits == 0 {
        text.push('.');
    }
    text.extend(std::iter::repeat_n('0', pad));
    Ok(Value::Decimal(text))
}

/// Rewrites a normalized decimal with exactly `scale` fractional digits; the caller has checked
/// that only zeros are removed.
fn with_scale(normal: &str, scale: usize) -> String {
    let (int, frac) = normal.split_once('.').unwrap_or((normal, ""));
    let mut frac: String = frac.chars().take(scale).collect();
    while frac.len() < scale {
        frac.push('0');
    }
    if scale == 0 {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// Integer and fractional digit counts of a normalized decimal, ignoring leading zeros of the
/// integer part and trailing zeros of the fraction. `None` for NaN and infinities.
fn decimal_digits(normal: &str) -> Option<(usize, usize)> {
    let digits = normal.strip_prefix('-').unwrap_or(normal);
    if !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    Some((int.len(), frac.len()))
}

/// Checks decimal syntax and writes it in plain notation (exponents expanded), keeping every
/// digit given. Returns `None` when the text is not a number.
pub fn normalize_decimal(text: &str) -> Option<String> {
    match text.to_ascii_lowercase().as_str() {
        "nan" => return Some("NaN".into()),
        "inf" | "infinity" | "+infinity" => return Some("Infinity".into()),
        "-inf" | "-infinity" => return Some("-Infinity".into()),
        _ => {}
    }
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (neg, m) = match mantissa.as_bytes().first()? {
        b'-' => (true, &mantissa[1..]),
        b'+' => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (int, frac) = m.split_once('.').unwrap_or((m, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if exp.unsigned_abs() > 1000 {
        return None;
    }
    let mut digits: String = format!("{int}{frac}");
    let mut point = int.len() as i64 + exp as i64;
    if point < 0 {
        digits = format!("{}{digits}", "0".repeat((-point) as usize));
        point = 0;
    }
    while (digits.len() as i64) < point {
        digits.push('0');
    }
    let (i, f) = digits.split_at(point as usize);
    let i = i.trim_start_matches('0');
    let i = if i.is_empty() { "0" } else { i };
    let mut out = String::with_capacity(digits.len() + 2);
    if neg && (i != "0" || f.bytes().any(|b| b != b'0')) {
        out.push('-');
    }
    out.push_str(i);
    if !f.is_empty() {
        out.push('.');
        out.push_str(f);
    }
    Some(out)
}

fn to_text(value: Value) -> Result<Value, ConvertError> {
    Ok(Value::Text(match value {
        Value::Text(s) => s,
        Value::RawText(b) => {
            return Err(format!(
                "text is not valid UTF-8 ({}): the target cannot store it unchanged",
                String::from_utf8_lossy(&b)
                    .chars()
                    .take(40)
                    .collect::<String>()
            ));
        }
        Value::Bytes(b) => {
            String::from_utf8(b).map_err(|_| "binary value is not valid UTF-8 text".to_string())?
        }
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float_text(f),
        Value::Bool(b) => (if b { "true" } else { "false" }).into(),
        Value::Decimal(s) | Value::Json(s) => s,
        Value::Date(d) => d.format("%Y-%m-%d").to_string(),
        Value::Time(t) => t.format("%H:%M:%S%.f").to_string(),
        Value::Timestamp(t) => t.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
        Value::TimestampTz(t) => t.format("%Y-%m-%d %H:%M:%S%.f%:z").to_string(),
        Value::Uuid(u) => u.to_string(),
        Value::Null => unreachable!("nulls return early"),
    }))
}

fn to_date(value: Value) -> Result<Value, ConvertError> {
    match value {
        Value::Date(d) => Ok(Value::Date(d)),
        Value::Timestamp(t) if t.time() == NaiveTime::MIN => Ok(Value::Date(t.date())),
        Value::Text(ref s) => date_from_text(s, &value),
        other => Err(format!("{} is not a date", other.render())),
    }
}

/// A date written as text (`value` for the message): midnight is a date, another time of
/// day or an offset is not.
fn date_from_text(s: &str, value: &Value) -> Result<Value, ConvertError> {
    match parse_datetime(s) {
        Some(Parsed {
            date,
            time,
            offset: None,
        }) if time.is_none_or(|t| t == NaiveTime::MIN) => Ok(Value::Date(date)),
        _ => Err(format!("{} is not a date (YYYY-MM-DD)", value.render())),
    }
}

/// [`convert_noting_rounding`] from a borrowed value where the conversion only reads it
/// (dates parsed from text), so the copy does not duplicate the text first; `None` for the
/// rest, which take the value itself.
pub fn convert_borrowed(
    value: &Value,
    to: &DataType,
) -> Option<Result<(Value, bool), ConvertError>> {
    match (to, value) {
        (DataType::Date, Value::Text(s)) => Some(date_from_text(s, value).map(|v| (v, false))),
        _ => None,
    }
}

fn to_time(value: Value) -> Result<(Value, bool), ConvertError> {
    match value {
        Value::Time(t) => Ok((Value::Time(t), false)),
        Value::Text(ref s) => {
            let t = parse_time(s.trim().as_bytes())
                .ok_or_else(|| format!("{} is not a time of day (HH:MM:SS)", value.render()))?;
            let (rounded, lost) = round_timestamp(NaiveDate::MIN.and_time(t));
            if rounded.date() != NaiveDate::MIN {
                return Err(format!(
                    "{} rounds to 24:00:00, which the column cannot hold",
                    value.render()
                ));
            }
            Ok((Value::Time(rounded.time()), lost))
        }
        other => Err(format!("{} is not a time of day", other.render())),
    }
}

fn to_timestamp(value: Value) -> Result<(Value, bool), ConvertError> {
    match value {
        Value::Timestamp(t) => Ok((Value::Timestamp(t), false)),
        Value::Date(d) => Ok((Value::Timestamp(d.and_time(NaiveTime::MIN)), false)),
        // An instant in a column without a zone is written in UTC (how ferry stores instants
        // where the target has no zone type): the same instant, never a dropped offset.
        Value::TimestampTz(t) => Ok((Value::Timestamp(t.naive_utc()), false)),
        Value::Text(ref s) => match parse_datetime(s) {
            Some(Parsed { date, time, offset }) => {
                let naive = date.and_time(time.unwrap_or(NaiveTime::MIN));
                let (naive, lost) = round_timestamp(naive);
                Ok((
                    Value::Timestamp(naive - chrono::Duration::seconds(offset.unwrap_or(0) as i64)),
                    lost,
                ))
            }
            None => Err(format!(
                "{} is not a timestamp (YYYY-MM-DD HH:MM:SS)",
                value.render()
            )),
        },
        other => Err(format!("{} is not a timestamp", other.render())),
    }
}

fn to_timestamptz(value: Value) -> Result<(Value, bool), ConvertError> {
    match value {
        Value::TimestampTz(t) => Ok((Value::TimestampTz(t), false)),
        // A zone-less timestamp stands for UTC where a zone is required: that is how ferry
        // stores instants in databases without a zone type (MySQL datetime, sessions in UTC).
        Value::Timestamp(t) => Ok((Value::TimestampTz(Utc.from_utc_datetime(&t)), false)),
        Value::Text(ref s) => match parse_datetime(s) {
            Some(Parsed {
                date,
                time,
                offset: Some(secs),
            }) => {
                let (naive, lost) = round_timestamp(date.and_time(time.unwrap_or(NaiveTime::MIN)));
                let naive = naive - chrono::Duration::seconds(secs as i64);
                Ok((Value::TimestampTz(Utc.from_utc_datetime(&naive)), lost))
            }
            Some(_) => Err(format!(
                "{} has no zone offset; the column holds instants",
                value.render()
            )),
            None => Err(format!(
                "{} is not a timestamp with offset (YYYY-MM-DD HH:MM:SS+HH:MM)",
                value.render()
            )),
        },
        other => Err(format!("{} is not a timestamp with zone", other.render())),
    }
}

/// A date, time and offset read from text in the forms SQLite's date functions accept.
#[derive(Debug, PartialEq)]
pub struct Parsed {
    pub date: NaiveDate,
    pub time: Option<NaiveTime>,
    /// Seconds east of UTC.
    pub offset: Option<i32>,
}

/// Parses `YYYY-MM-DD[( |T)HH:MM[:SS[.fraction]]][Z|±HH:MM|±HHMM]`.
///
/// Hand-written because it runs once per value on the hot path, and because it must accept
/// exactly SQLite's own forms. The time keeps up to 9 fractional digits (nanoseconds); the
/// converters round it to microseconds.
pub fn parse_datetime(text: &str) -> Option<Parsed> {
    let b = text.trim().as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(&b[0..4])? as i32, num(&b[5..7])?, num(&b[8..10])?)?;
    let rest = &b[10..];
    if rest.is_empty() {
        return Some(Parsed {
            date,
            time: None,
            offset: None,
        });
    }
    if rest[0] != b' ' && rest[0] != b'T' && rest[0] != b't' {
        return None;
    }
    let rest = &rest[1..];
    let tz_at = rest
        .iter()
        .position(|&c| c == b'Z' || c == b'z' || c == b'+' || c == b'-')
        .unwrap_or(rest.len());
    let time = parse_time(&rest[..tz_at])?;
    let offset = match &rest[tz_at..] {
        [] => None,
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let h = num(&[*h1, *h2])? as i32;
            let m = num(&[*m1, *m2])? as i32;
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => return None,
    };
    Some(Parsed {
        date,
        time: Some(time),
        offset,
    })
}

fn parse_time(b: &[u8]) -> Option<NaiveTime> {
    if b.len() < 5 || b[2] != b':' {
        return None;
    }
    let h = num(&b[0..2])?;
    let m = num(&b[3..5])?;
    let (s, nanos) = if b.len() == 5 {
        (0, 0)
    } else {
        if b[5] != b':' || b.len() < 8 {
            return None;
        }
        let s = num(&b[6..8])?;
        let frac = &b[8..];
        let nanos = if frac.is_empty() {
            0
        } else {
            if frac[0] != b'.' || frac.len() < 2 {
                return None;
            }
            let digits = &frac[1..];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            // Nanoseconds are the finest any application writes (Go); digits past the ninth
            // are accepted only as zeros rather than silently rounded twice.
            if digits.len() > 9 && digits[9..].iter().any(|&d| d != b'0') {
                return None;
            }
            let mut v = 0u32;
            for i in 0..9 {
                v = v * 10 + digits.get(i).map_or(0, |d| (d - b'0') as u32);
            }
            v
        };
        (s, nanos)
    };
    NaiveTime::from_hms_nano_opt(h, m, s, nanos)
}

fn num(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// Formats a naive timestamp the way SQLite's own functions write it (fraction only when set).
pub fn timestamp_text(t: &NaiveDateTime) -> String {
    if t.and_utc().timestamp_subsec_micros() == 0 {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sqlite_datetime_forms() {
        let p = parse_datetime("2024-03-05 12:34:56").unwrap();
        assert_eq!(p.time.unwrap().to_string(), "12:34:56");
        assert!(parse_datetime("2024-03-05T12:34").unwrap().offset.is_none());
        assert_eq!(
            parse_datetime("2024-03-05T12:34:56.123Z").unwrap().offset,
            Some(0)
        );
        assert_eq!(
            parse_datetime("2024-03-05 12:34:56+02:00").unwrap().offset,
            Some(7200)
        );
        assert_eq!(
            parse_datetime("2024-03-05 12:34:56-0530").unwrap().offset,
            Some(-19800)
        );
        assert!(parse_datetime("2024-02-30").is_none());
        assert!(parse_datetime("yesterday").is_none());
        assert!(parse_datetime("2024-03-05 12:34:56.1234567").is_some());
        assert!(parse_datetime("2024-03-05 12:34:56.1234567890").is_some());
        assert!(
            parse_datetime("2024-03-05 12:34:56.1234567891").is_none(),
            "no more than nanoseconds"
        );
    }

    #[test]
    fn nanoseconds_round_to_microseconds() {
        let tz = |s: &str| convert_noting_rounding(Value::Text(s.into()), &DataType::TimestampTz);
        let (v, lost) = tz("2026-07-08 12:00:28.111135256+02:00").unwrap();
        assert!(lost);
        assert_eq!(
            v.render(),
            tz("2026-07-08 10:00:28.111135Z").unwrap().0.render()
        );
        // Trailing zeros lose nothing and are not counted.
        assert!(!tz("2026-07-08 12:00:28.1111350+02:00").unwrap().1);
        // A carry crosses the second, the minute and the day.
        let (v, _) = convert_noting_rounding(
            Value::Text("2026-12-31 23:59:59.9999996".into()),
            &DataType::Timestamp,
        )
        .unwrap();
        assert_eq!(
            v,
            convert(Value::Text("2027-01-01".into()), &DataType::Timestamp).unwrap()
        );
        assert!(convert(Value::Text("23:59:59.9999999".into()), &DataType::Time).is_err());
        assert_eq!(
            convert(Value::Text("12:00:00.0000015".into()), &DataType::Time),
            convert(Value::Text("12:00:00.000002".into()), &DataType::Time)
        );
        // Halves go to the even microsecond, as PostgreSQL's rint() does.
        assert_eq!(round_nanos_to_micros(500), 0);
        assert_eq!(round_nanos_to_micros(1_500), 2);
        assert_eq!(round_nanos_to_micros(2_500), 2);
        assert_eq!(round_nanos_to_micros(999_999_600), 1_000_000);
    }

    #[test]
    fn booleans_and_integers() {
        assert_eq!(
            convert(Value::Int(1), &DataType::Bool),
            Ok(Value::Bool(true))
        );
        assert!(convert(Value::Int(2), &DataType::Bool).is_err());
        assert!(convert(Value::Float(1.5), &DataType::Int64).is_err());
        assert!(
            convert(Value::Int(i64::MAX), &DataType::Float64).is_err(),
            "would lose digits"
        );
        assert!(convert(Value::Int(70000), &DataType::Int16).is_err());
    }

    #[test]
    fn decimals_never_round() {
        let d = |p, s| DataType::Decimal {
            precision: Some(p),
            scale: Some(s),
        };
        assert_eq!(
            convert(Value::Float(1.25), &d(10, 2)),
            Ok(Value::Decimal("1.25".into()))
        );
        assert_eq!(
            convert(Value::Float(1.5), &d(10, 2)),
            Ok(Value::Decimal("1.50".into()))
        );
        assert_eq!(
            convert(Value::Text("2.500".into()), &d(10, 1)),
            Ok(Value::Decimal("2.5".into()))
        );
        assert!(convert(Value::Float(1.005), &d(10, 2)).is_err());
        assert!(convert(Value::Int(123456789), &d(5, 2)).is_err());
        assert_eq!(normalize_decimal("1.5e3").unwrap(), "1500");
        assert_eq!(normalize_decimal("-0.000").unwrap(), "0.000");
        assert_eq!(normalize_decimal("12e-3").unwrap(), "0.012");
        assert!(normalize_decimal("1.2.3").is_none());
    }

    #[test]
    fn invalid_utf8_is_refused_not_mangled() {
        let err = convert(Value::RawText(vec![0x61, 0xff]), &DataType::text()).unwrap_err();
        assert!(err.contains("not valid UTF-8"));
        assert_eq!(
            convert(Value::RawText(vec![0xff]), &DataType::Bytes),
            Ok(Value::Bytes(vec![0xff]))
        );
    }

    proptest! {
        #[test]
        fn float_text_round_trips(f in any::<f64>()) {
            let back = parse_float(&float_text(f)).unwrap();
            prop_assert!(back.to_bits() == f.to_bits() || (f.is_nan() && back.is_nan()));
        }

        #[test]
        fn float_to_decimal_is_exact(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let Value::Decimal(d) = convert(Value::Float(f), &DataType::Decimal { precision: None, scale: None }).unwrap() else { panic!() };
            prop_assert_eq!(d.parse::<f64>().unwrap(), f);
        }

        #[test]
        fn timestamps_round_trip(secs in -2_000_000_000i64..4_000_000_000i64, micros in 0u32..1_000_000) {
            let t = chrono::DateTime::from_timestamp(secs, micros * 1000).unwrap().naive_utc();
            let text = timestamp_text(&t);
            prop_assert_eq!(convert(Value::Text(text), &DataType::Timestamp).unwrap(), Value::Timestamp(t));
        }

        #[test]
        fn plain_decimals_take_the_general_paths_result(
            text in "-?(0|[1-9][0-9]{0,8}|00[0-9]{0,3})(\\.[0-9]{0,4})?|-?\\.[0-9]{1,3}|[0-9]{1,3}e[0-9]",
            p in 1u32..12,
            s in 0u32..5,
            limited in any::<bool>(),
        ) {
            let (p, s) = if limited { (Some(p.max(s)), Some(s)) } else { (None, None) };
            let general = decimal_from_text(&text, p, s);
            match plain_decimal(text.clone(), p, s) {
                Ok(fast) => prop_assert_eq!(Ok(fast), general, "{}", text),
                Err(back) => prop_assert_eq!(back, text),
            }
        }

        #[test]
        fn integers_round_trip_through_text(i in any::<i64>()) {
            let Value::Text(s) = convert(Value::Int(i), &DataType::text()).unwrap() else { panic!() };
            prop_assert_eq!(convert(Value::Text(s), &DataType::Int64).unwrap(), Value::Int(i));
        }
    }
}
