//! SQLite type mapping. Declared types are free text written by applications, so they are
//! classified by name and then by SQLite's own affinity rules (contains INT → integer; CHAR,
//! CLOB or TEXT → text; BLOB or nothing → any; REAL, FLOA or DOUB → real; otherwise numeric);
//! then the profile of what the column really holds decides the portable type that holds every
//! value. Each step away from the declaration is noted for the report.

use ferry_core::schema::DataType;
use ferry_core::sqltext::split_type;

/// What a declaration asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Declared {
    Bool,
    Int,
    Real,
    Decimal {
        precision: u32,
        scale: u32,
    },
    Numeric,
    Text {
        max_chars: Option<u32>,
    },
    Date,
    Time,
    DateTime,
    /// Declared with a zone (`TIMESTAMPTZ`).
    DateTimeTz,
    Json,
    Uuid,
    /// BLOB or no type at all: anything.
    Any,
}

pub fn classify(declared: &str) -> Declared {
    let (name, params) = split_type(declared);
    let first = name.split_whitespace().next().unwrap_or("");
    // ferry writes `DATETIME_TEXT`-style names into SQLite targets: TEXT affinity (so SQLite
    // never turns 1.50 into 1.5) while the name still says what the column holds.
    let first = first.strip_suffix("_text").unwrap_or(first);
    match first {
        "bool" | "boolean" => return Declared::Bool,
        "date" => return Declared::Date,
        "time" => return Declared::Time,
        "datetime" | "timestamp" => return Declared::DateTime,
        "timestamptz" => return Declared::DateTimeTz,
        "json" | "jsonb" => return Declared::Json,
        "uuid" | "guid" => return Declared::Uuid,
        "decimal" | "numeric" => {
            return match params.as_slice() {
                [p] => Declared::Decimal {
                    precision: *p,
                    scale: 0,
                },
                [p, s, ..] if s <= p => Declared::Decimal {
                    precision: *p,
                    scale: *s,
                },
                _ => Declared::Numeric,
            };
        }
        _ => {}
    }
    if name.contains("int") {
        Declared::Int
    } else if name.contains("char") || name.contains("clob") || name.contains("text") {
        let limited = first.contains("char") && !first.contains("clob");
        Declared::Text {
            max_chars: if limited {
                params.first().copied()
            } else {
                None
            },
        }
    } else if name.is_empty() || name.contains("blob") {
        Declared::Any
    } else if name.contains("real") || name.contains("floa") || name.contains("doub") {
        Declared::Real
    } else {
        Declared::Numeric
    }
}

/// What a full scan found in one column.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub ints: u64,
    pub reals: u64,
    pub texts: u64,
    pub blobs: u64,
    /// Values the declared kind cannot take (not 0/1 for booleans, unparsable dates, invalid JSON,
    /// malformed UUIDs).
    pub bad: u64,
    /// Date/time texts that carry a zone offset.
    pub with_offset: u64,
    /// Date texts with a time of day other than midnight.
    pub with_time: u64,
    /// Longest text, in characters.
    pub max_chars: Option<u64>,
}

impl Profile {
    /// Records `n` values of one storage class (as `typeof` names it).
    pub fn set_class(&mut self, class: &str, n: u64) {
        match class {
            "integer" => self.ints = n,
            "real" => self.reals = n,
            "text" => self.texts = n,
            _ => self.blobs = n,
        }
    }

    fn only(&self, texts: bool, ints: bool, reals: bool, blobs: bool) -> bool {
        (texts || self.texts == 0)
            && (ints || self.ints == 0)
            && (reals || self.reals == 0)
            && (blobs || self.blobs == 0)
    }
}

/// The one storage class a declaration leads SQLite to store (its affinity), if there is one:
/// a column holding only that class needs no per-class count.
pub fn expected_class(declared: &Declared) -> Option<&'static str> {
    match declared {
        Declared::Int | Declared::Bool => Some("integer"),
        Declared::Real => Some("real"),
        Declared::Text { .. }
        | Declared::Date
        | Declared::Time
        | Declared::DateTime
        | Declared::DateTimeTz
        | Declared::Json => Some("text"),
        Declared::Decimal { .. } | Declared::Numeric | Declared::Uuid | Declared::Any => None,
    }
}

/// The SQL aggregates that fill a `Profile` for column expression `c`, in `Profile` field order
/// after the four storage-class counts.
pub fn profile_exprs(declared: &Declared, c: &str) -> [String; 4] {
    let zero = || "0".to_string();
    let date_glob = format!("{c} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'");
    let offset = format!(
        "sum(typeof({c})='text' AND ({c} GLOB '*[+-][0-9][0-9]:[0-9][0-9]' OR {c} GLOB '*[0-9][+-][0-9][0-9][0-9][0-9]' OR {c} GLOB '*[Zz]'))"
    );
    match declared {
        Declared::Bool => [
            format!(
                "sum(CASE typeof({c}) WHEN 'integer' THEN {c} NOT IN (0,1) WHEN 'real' THEN {c} NOT IN (0.0,1.0) \
                 WHEN 'text' THEN lower({c}) NOT IN ('0','1','t','f','true','false') WHEN 'blob' THEN 1 ELSE 0 END)"
            ),
            zero(),
            zero(),
            zero(),
        ],
        Declared::Date | Declared::DateTime | Declared::DateTimeTz => [
            format!("sum(typeof({c})='text' AND NOT ({date_glob} AND julianday({c}) IS NOT NULL))"),
            offset,
            format!("sum(typeof({c})='text' AND length({c}) > 10 AND time({c}) IS NOT '00:00:00')"),
            zero(),
        ],
        Declared::Time => [
            format!(
                "sum(typeof({c})='text' AND NOT ({c} GLOB '[0-9][0-9]:[0-9][0-9]*' AND time({c}) IS NOT NULL))"
            ),
            offset,
            zero(),
            zero(),
        ],
        // Texts are decimals only as plain literals (ferry's DECIMAL_TEXT columns hold them;
        // NUMERIC affinity leaves no other numeric text).
        Declared::Decimal { .. } | Declared::Numeric => [
            format!(
                "sum(typeof({c})='text' AND NOT (ltrim({c},'+-') GLOB '[0-9]*' AND NOT ltrim({c},'+-') GLOB '*[^0-9.]*' \
                 AND NOT ltrim({c},'+-') GLOB '*.*.*' AND length({c}) - length(ltrim({c},'+-')) <= 1))"
            ),
            zero(),
            zero(),
            zero(),
        ],
        Declared::Json => [
            format!("sum(typeof({c})='text' AND json_valid({c})=0)"),
            zero(),
            zero(),
            zero(),
        ],
        Declared::Uuid => [
            format!(
                "sum(CASE typeof({c}) WHEN 'text' THEN length({c}) NOT IN (32,36,38) WHEN 'blob' THEN length({c})!=16 WHEN 'null' THEN 0 ELSE 1 END)"
            ),
            zero(),
            zero(),
            zero(),
        ],
        Declared::Text { max_chars: Some(_) } => [
            zero(),
            zero(),
            zero(),
            format!("max(CASE WHEN typeof({c})='text' THEN length({c}) END)"),
        ],
        _ => [zero(), zero(), zero(), zero()],
    }
}

/// Chooses the portable type that holds every value found, with notes for each step away from
/// the declaration.
pub fn decide(declared: &Declared, p: &Profile, declared_text: &str) -> (DataType, Vec<String>) {
    let mut notes = Vec::new();
    let ty = match declared {
        Declared::Bool if p.bad == 0 && p.blobs == 0 => DataType::Bool,
        Declared::Int if p.only(false, true, false, false) => DataType::Int64,
        Declared::Real if p.only(false, true, true, false) => DataType::Float64,
        Declared::Decimal { precision, scale } if p.only(true, true, true, false) && p.bad == 0 => {
            DataType::Decimal {
                precision: Some(*precision),
                scale: Some(*scale),
            }
        }
        Declared::Numeric if p.only(false, true, false, false) => DataType::Int64,
        Declared::Numeric if p.only(true, true, true, false) && p.bad == 0 => DataType::Decimal {
            precision: None,
            scale: None,
        },
        Declared::Text { max_chars } if p.only(true, false, false, false) => {
            match (max_chars, p.max_chars) {
                (Some(limit), Some(longest)) if longest > *limit as u64 => {
                    notes.push(format!(
                    "declared {declared_text} but holds text of {longest} characters: widened to unlimited text"
                ));
                    DataType::text()
                }
                (limit, _) => DataType::Text { max_chars: *limit },
            }
        }
        Declared::Date | Declared::DateTime if p.only(true, false, false, false) && p.bad == 0 => {
            if p.with_offset > 0 && p.with_offset < p.texts {
                notes.push(format!("declared {declared_text} but mixes times with and without a zone offset: kept as text"));
                DataType::text()
            } else if p.with_offset > 0 {
                DataType::TimestampTz
            } else if *declared == Declared::Date && p.with_time > 0 {
                notes.push(format!(
                    "declared {declared_text} but holds times of day: copied as timestamp"
                ));
                DataType::Timestamp
            } else if *declared == Declared::Date {
                DataType::Date
            } else {
                DataType::Timestamp
            }
        }
        Declared::DateTimeTz if p.only(true, false, false, false) && p.bad == 0 => {
            if p.with_offset == p.texts {
                DataType::TimestampTz
            } else if p.with_offset == 0 {
                notes.push(format!("declared {declared_text} but holds times without a zone offset: copied as timestamp"));
                DataType::Timestamp
            } else {
                notes.push(format!("declared {declared_text} but mixes times with and without a zone offset: kept as text"));
                DataType::text()
            }
        }
        Declared::Time if p.only(true, false, false, false) && p.bad == 0 && p.with_offset == 0 => {
            DataType::Time
        }
        Declared::Json if p.only(true, false, false, false) && p.bad == 0 => DataType::Json,
        Declared::Uuid if p.only(true, false, false, true) && p.bad == 0 => DataType::Uuid,
        _ => {
            let holds = holds(declared, p);
            let classes = [p.ints, p.reals, p.texts, p.blobs]
                .iter()
                .filter(|&&n| n > 0)
                .count();
            if holds_differs(declared, &holds) || classes > 1 {
                notes.push(format!(
                    "declared {declared_text} but {}: copied as {holds}",
                    describe(p)
                ));
            }
            holds
        }
    };
    (ty, notes)
}

/// The narrowest portable type holding every storage class present.
fn holds(declared: &Declared, p: &Profile) -> DataType {
    match (p.ints > 0, p.reals > 0, p.texts > 0, p.blobs > 0) {
        (_, _, _, true) => DataType::Bytes,
        (_, _, true, false) => DataType::text(),
        (true, true, false, false) => DataType::Decimal {
            precision: None,
            scale: None,
        },
        (false, true, false, false) => DataType::Float64,
        (true, false, false, false) => DataType::Int64,
        (false, false, false, false) => match declared {
            // Empty or all-NULL column: follow the declaration.
            Declared::Int => DataType::Int64,
            Declared::Real => DataType::Float64,
            Declared::Text { max_chars } => DataType::Text {
                max_chars: *max_chars,
            },
            Declared::Any => DataType::Bytes,
            _ => DataType::Decimal {
                precision: None,
                scale: None,
            },
        },
    }
}

fn holds_differs(declared: &Declared, holds: &DataType) -> bool {
    !matches!(
        (declared, holds),
        (Declared::Int, DataType::Int64)
            | (Declared::Real, DataType::Float64)
            | (Declared::Text { .. }, DataType::Text { .. })
            | (Declared::Numeric, DataType::Decimal { .. })
            | (Declared::Any, _)
    )
}

fn describe(p: &Profile) -> String {
    let mut kinds = Vec::new();
    for (n, what) in [
        (p.ints, "integers"),
        (p.reals, "reals"),
        (p.texts, "texts"),
        (p.blobs, "blobs"),
    ] {
        if n > 0 {
            kinds.push(format!("{n} {what}"));
        }
    }
    if p.bad > 0 {
        kinds.push(format!("{} values the declared type cannot take", p.bad));
    }
    if kinds.is_empty() {
        "holds only NULLs".into()
    } else {
        format!("holds {}", kinds.join(", "))
    }
}

/// Decimals of at most this many significant digits survive SQLite's NUMERIC affinity (which
/// stores them as REAL, or INTEGER when integral) exactly: every such decimal round-trips
/// through a double (DBL_DIG).
pub const EXACT_NUMERIC_DIGITS: u32 = 15;

/// The SQLite declared type for a portable type (used when the source is another backend):
/// the names SQLite applications and ORMs declare themselves, so values take the storage class
/// the application expects (numbers compare as numbers) and drivers that key on the declared
/// name (`PARSE_DECLTYPES`) see the usual one. Reading the file back maps each name to the same
/// portable type.
pub fn native_type(t: &DataType) -> String {
    match t {
        DataType::Bool => "BOOLEAN".into(),
        DataType::Int16 | DataType::Int32 | DataType::Int64 => "INTEGER".into(),
        DataType::Float32 | DataType::Float64 => "REAL".into(),
        DataType::Decimal {
            precision: Some(p),
            scale,
        } if *p <= EXACT_NUMERIC_DIGITS => format!("NUMERIC({p},{})", scale.unwrap_or(0)),
        // More digits than a REAL keeps (or an unknown number of them): TEXT affinity keeps
        // every digit, since NUMERIC affinity would round them (see `target_note`).
        DataType::Decimal {
            precision: Some(p),
            scale,
        } => format!("DECIMAL_TEXT({p},{})", scale.unwrap_or(0)),
        DataType::Decimal { .. } => "DECIMAL_TEXT".into(),
        DataType::Text { max_chars: Some(n) } => format!("VARCHAR({n})"),
        DataType::Text { max_chars: None } => "TEXT".into(),
        DataType::Char { len } => format!("CHARACTER({len})"),
        DataType::Bytes => "BLOB".into(),
        DataType::Date => "DATE".into(),
        DataType::Time => "TIME".into(),
        DataType::Timestamp => "DATETIME".into(),
        // Instants are written with `+00:00` in a column whose name says so (NUMERIC affinity,
        // like DATETIME), so even an empty column reads back as a timestamp with time zone.
        DataType::TimestampTz => "TIMESTAMPTZ".into(),
        // TEXT affinity: under NUMERIC affinity the document `1.50` would become the REAL 1.5.
        DataType::Uuid => "UUID_TEXT".into(),
        DataType::Json => "JSON_TEXT".into(),
        DataType::Native { .. } => "TEXT".into(),
    }
}

/// The step a portable type takes into SQLite's declared type, when it is not exact.
pub fn target_note(t: &DataType) -> Option<String> {
    match t {
        DataType::Decimal {
            precision: Some(p),
            scale,
        } if *p > EXACT_NUMERIC_DIGITS => Some(format!(
            "numeric({p},{s}) has more digits than SQLite's NUMERIC keeps exactly ({EXACT_NUMERIC_DIGITS}): declared {} (text affinity) so every digit is kept, values stored as text",
            native_type(t),
            s = scale.unwrap_or(0)
        )),
        DataType::Decimal {
            precision: None, ..
        } => Some(format!(
            "numeric without a precision may hold more digits than SQLite's NUMERIC keeps exactly ({EXACT_NUMERIC_DIGITS}): declared {} (text affinity) so every digit is kept, values stored as text",
            native_type(t)
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_rules() {
        let text = Declared::Text { max_chars: None };
        let decimal = Declared::Decimal {
            precision: 10,
            scale: 2,
        };
        for (declaration, declared) in [
            ("INTEGER", Declared::Int),
            ("UNSIGNED BIG INT", Declared::Int),
            ("INTEGER_OR_TEXT", Declared::Int),
            ("LONGVARCHAR", text.clone()),
            (
                "varchar(20)",
                Declared::Text {
                    max_chars: Some(20),
                },
            ),
            ("text nocase", text.clone()),
            ("BLOB SUB_TYPE TEXT", text),
            ("", Declared::Any),
            ("DOUBLE PRECISION", Declared::Real),
            ("numeric(10,2)", decimal.clone()),
            ("DATETIME", Declared::DateTime),
            ("boolean", Declared::Bool),
            ("MONEY", Declared::Numeric),
            ("DECIMAL_TEXT(10,2)", decimal),
            ("TIMESTAMPTZ_TEXT", Declared::DateTimeTz),
            ("JSON_TEXT", Declared::Json),
        ] {
            assert_eq!(classify(declaration), declared, "{declaration}");
        }
    }

    #[test]
    fn targets_get_the_usual_names_which_read_back_as_the_same_type() {
        let d = |p, s| DataType::Decimal {
            precision: Some(p),
            scale: Some(s),
        };
        let reals = Profile {
            reals: 2,
            ints: 1,
            ..Default::default()
        };
        let texts = Profile {
            texts: 3,
            ..Default::default()
        };
        let ints = Profile {
            ints: 3,
            ..Default::default()
        };
        let empty = Profile::default();
        for (t, name, stored) in [
            (d(10, 2), "NUMERIC(10,2)", &reals),
            (d(15, 0), "NUMERIC(15,0)", &ints),
            (d(20, 4), "DECIMAL_TEXT(20,4)", &texts),
            (
                DataType::Decimal {
                    precision: None,
                    scale: None,
                },
                "DECIMAL_TEXT",
                &texts,
            ),
            (DataType::Timestamp, "DATETIME", &texts),
            // Empty: the declared name alone says it holds instants.
            (DataType::TimestampTz, "TIMESTAMPTZ", &empty),
            (DataType::Date, "DATE", &texts),
            (DataType::Time, "TIME", &texts),
            (DataType::Bool, "BOOLEAN", &ints),
            (DataType::Int64, "INTEGER", &ints),
            (DataType::Json, "JSON_TEXT", &texts),
        ] {
            assert_eq!(native_type(&t), name);
            let (back, notes) = decide(&classify(name), stored, name);
            assert_eq!(back, t, "{name}");
            assert!(notes.is_empty(), "{name}: {notes:?}");
        }
        assert!(target_note(&d(15, 2)).is_none(), "exact in a REAL");
        assert!(target_note(&d(16, 2)).is_some());
        assert!(
            target_note(&DataType::Decimal {
                precision: None,
                scale: None
            })
            .is_some()
        );
    }

    #[test]
    fn profile_decides() {
        let ints = Profile {
            ints: 5,
            ..Default::default()
        };
        assert_eq!(decide(&Declared::Int, &ints, "INTEGER").0, DataType::Int64);
        let mixed = Profile {
            ints: 5,
            texts: 2,
            ..Default::default()
        };
        let (t, notes) = decide(&Declared::Int, &mixed, "INTEGER");
        assert_eq!(t, DataType::text());
        assert_eq!(notes.len(), 1, "a mixed column is a named lossy step");
        let bools = Profile {
            ints: 3,
            ..Default::default()
        };
        assert_eq!(decide(&Declared::Bool, &bools, "BOOLEAN").0, DataType::Bool);
        let not_bools = Profile {
            ints: 3,
            bad: 1,
            ..Default::default()
        };
        assert_eq!(
            decide(&Declared::Bool, &not_bools, "BOOLEAN").0,
            DataType::Int64
        );
        let long = Profile {
            texts: 3,
            max_chars: Some(30),
            ..Default::default()
        };
        assert_eq!(
            decide(
                &Declared::Text {
                    max_chars: Some(10)
                },
                &long,
                "varchar(10)"
            )
            .0,
            DataType::text()
        );
        let tz = Profile {
            texts: 3,
            with_offset: 3,
            ..Default::default()
        };
        assert_eq!(
            decide(&Declared::DateTime, &tz, "DATETIME").0,
            DataType::TimestampTz
        );
        let any = Profile {
            ints: 1,
            reals: 1,
            ..Default::default()
        };
        assert_eq!(
            decide(&Declared::Any, &any, "").0,
            DataType::Decimal {
                precision: None,
                scale: None
            }
        );
    }
}
