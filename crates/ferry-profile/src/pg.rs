//! PostgreSQL connections for imports: the source read-only inside one REPEATABLE READ READ ONLY
//! transaction (one snapshot for every entity), the target read-write (read-only in dry runs),
//! and placeholder binding (`{since}` and the flags become parameters, never pasted text).

use std::collections::HashMap;

use ferry_core::{Error, Locator, Result};
use tokio_postgres::Client;

/// Opens a connection. `read_only` sets `default_transaction_read_only`, so not even a
/// mistaken statement in a profile can write.
pub(crate) async fn connect(locator: &Locator, read_only: bool, role: &str) -> Result<Client> {
    if locator.backend() != ferry_postgres::locator::BACKEND {
        return Err(Error::input(format!(
            "the {role} must be a postgres:// locator (got {})",
            locator.redacted()
        )));
    }
    let endpoint = ferry_postgres::connect::endpoint(locator)?;
    let client = ferry_postgres::connect::open(&endpoint)
        .await
        .map_err(|e| e.context(format!("the {role} {}", locator.redacted())))?;
    // No JIT: pages are small and fast, but a costly-looking plan (a correlated subquery that
    // rarely runs) made PostgreSQL spend ~0.4 s compiling every page.
    let mut setup = String::from("SET client_min_messages = warning; SET jit = off;");
    if read_only {
        setup.push_str("SET default_transaction_read_only = on;");
    }
    if let Some(s) = &endpoint.schema {
        setup.push_str(&format!("SET search_path = {};", quote(s)));
    }
    client.batch_execute(&setup).await.map_err(|e| db(&e))?;
    Ok(client)
}

/// A quoted identifier.
pub(crate) fn quote(name: &str) -> String {
    ferry_core::capabilities::quote_with('"', name)
}

/// One line for an error on an open connection.
pub(crate) fn db(e: &tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(d) => {
            let mut msg = format!("PostgreSQL: {}", d.message());
            if let Some(detail) = d.detail() {
                msg.push_str(&format!(" ({detail})"));
            }
            Error::run(msg)
        }
        None if e.is_closed() => Error::run("the PostgreSQL connection was lost; rerun the import"),
        None => Error::run(match std::error::Error::source(e) {
            Some(cause) => format!("PostgreSQL: {e}: {cause}"),
            None => format!("PostgreSQL: {e}"),
        }),
    }
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

    pub fn refs(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect()
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
