//! PostgreSQL sessions for imports, opened through ferry-postgres: the source read-only inside
//! one REPEATABLE READ READ ONLY transaction (one snapshot for every entity), the target
//! read-write (read-only in dry runs); and placeholder binding (`{since}` and the flags become parameters, never pasted text).

use std::collections::HashMap;

use ferry_core::{Error, Locator, Result};
use ferry_postgres::Session;

/// Opens a session (ferry-postgres's connection). `read_only` sets
/// `default_transaction_read_only`, so not even a mistaken statement in a profile can write.
pub(crate) async fn connect(locator: &Locator, read_only: bool, role: &str) -> Result<Session> {
    if locator.backend() != ferry_postgres::locator::BACKEND {
        return Err(Error::input(format!(
            "the {role} must be a postgres:// locator (got {})",
            locator.redacted()
        )));
    }
    Session::open(locator, read_only)
        .await
        .map_err(|e| e.context(format!("the {role} {}", locator.redacted())))
}

/// SQL with `$n` parameters, all sent as text and cast where used.
pub(crate) struct Bound {
    pub sql: String,
    pub params: Vec<Option<String>>,
}

impl Bound {
    /// Adds a parameter and returns its `$n` cast to `ty`.
    pub fn param(&mut self, value: Option<String>, ty: &str) -> String {
        self.params.push(value);
        format!("(${}::text::{ty})", self.params.len())
    }
}

/// Replaces the profile placeholders in `sql` by parameters: `{since}` (timestamptz; `None` is
/// `-infinity`), `{include_remote}` and `{require_password_reset}` (boolean).
pub(crate) fn bind(sql: &str, values: &HashMap<&str, Option<String>>) -> Bound {
    let mut b = Bound {
        sql: String::new(),
        params: Vec::new(),
    };
    let mut assigned: HashMap<String, String> = HashMap::new();
    let mut rest = sql;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let name = after.find('}').map(|c| &after[..c]);
        match name.filter(|n| values.contains_key(n)) {
            Some(name) => {
                b.sql.push_str(&rest[..open]);
                let p = match assigned.get(name) {
                    Some(p) => p.clone(),
                    None => {
                        let (value, ty) = if name == "since" {
                            (
                                Some(values[name].clone().unwrap_or_else(|| "-infinity".into())),
                                "timestamptz",
                            )
                        } else {
                            (values[name].clone(), "boolean")
                        };
                        let p = b.param(value, ty);
                        assigned.insert(name.to_string(), p.clone());
                        p
                    }
                };
                b.sql.push_str(&p);
                rest = &after[name.len() + 1..];
            }
            None => {
                b.sql.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    b.sql.push_str(rest);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_parameters() {
        let values = HashMap::from([
            ("since", None),
            ("include_remote", Some("false".to_string())),
        ]);
        let b = bind(
            "SELECT '{}' WHERE a > {since} AND {include_remote} OR b > {since} {x}",
            &values,
        );
        assert_eq!(
            b.sql,
            "SELECT '{}' WHERE a > ($1::text::timestamptz) AND ($2::text::boolean) OR b > ($1::text::timestamptz) {x}"
        );
        assert_eq!(
            b.params,
            [Some("-infinity".to_string()), Some("false".to_string())]
        );
    }
}
