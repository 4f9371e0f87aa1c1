//! The profile's tiny expression language: how one target column is computed from one source
//! row. Five forms, nothing more (heavy lifting belongs in the source SQL):
//!
//! - `column` — the value of a column of the source query;
//! - `'text'`, `42`, `1.5`, `true`, `false`, `null` — a constant (`''` inside quotes is a quote);
//! - `'web-videos/{prefix}{filename}'` — a string template: each `{column}` is replaced by that
//!   column's value; any NULL column makes the whole value NULL;
//! - `enum(map, expr)` — looks the value up in the enum map `map`; a value the map lacks is a
//!   row failure, NULL stays NULL;
//! - `uuid5(entity, expr)` — the deterministic target id of row `expr` of `entity` (see
//!   [`entity_id`]); NULL stays NULL. References are computed, never looked up.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use uuid::Uuid;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Column(String),
    Const(Value),
    Template(Vec<Part>),
    Enum { map: String, arg: Box<Expr> },
    Uuid5 { entity: String, arg: Box<Expr> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Column(String),
}

/// The namespace of every id ferry derives: UUIDv5(URL namespace, "https://ferry.dev/import").
pub fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://ferry.dev/import")
}

/// The target id of source row `id` of `entity` imported from `host`:
/// UUIDv5(namespace, "<host>/<entity>/<id>"). The same inputs give the same id on every run,
/// so a re-run updates instead of duplicating, and a reference is the same computation.
pub fn entity_id(host: &str, entity: &str, id: &str) -> Uuid {
    Uuid::new_v5(&namespace(), format!("{host}/{entity}/{id}").as_bytes())
}

/// What evaluation needs besides the row.
pub struct Env<'a> {
    pub host: &'a str,
    pub enums: &'a BTreeMap<String, BTreeMap<String, String>>,
}

/// Parses an expression.
///
/// # Errors
/// A sentence naming what is wrong, for the profile validator to place at its line.
pub fn parse(text: &str) -> Result<Expr, String> {
    let mut p = Parser {
        s: text.trim(),
        pos: 0,
    };
    let e = p.expr()?;
    p.ws();
    if p.pos < p.s.len() {
        return Err(format!(
            "unexpected '{}' after the expression in `{}`",
            &p.s[p.pos..],
            p.s
        ));
    }
    Ok(e)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s[self.pos..].starts_with(char::is_whitespace) {
            self.pos += self.s[self.pos..].chars().next().map_or(1, char::len_utf8);
        }
    }

    fn ident(&mut self) -> Option<String> {
        let rest = &self.s[self.pos..];
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if n == 0 || rest.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        self.pos += n;
        Some(rest[..n].to_string())
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.ws();
        if self.s[self.pos..].starts_with(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{c}' in `{}`", self.s))
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        self.ws();
        let rest = &self.s[self.pos..];
        if rest.starts_with('\'') {
            return self.string();
        }
        if rest.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            let n = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
                .unwrap_or(rest.len());
            let num: serde_json::Number = rest[..n]
                .parse()
                .map_err(|_| format!("'{}' is not a number", &rest[..n]))?;
            self.pos += n;
            return Ok(Expr::Const(Value::Number(num)));
        }
        let Some(name) = self.ident() else {
            return Err(if rest.is_empty() {
                "empty expression: write a column name, a constant, enum(map, x), uuid5(entity, x) or a 'template'".into()
            } else {
                format!("cannot read an expression at '{rest}'")
            });
        };
        self.ws();
        if !self.s[self.pos..].starts_with('(') {
            return Ok(match name.as_str() {
                "true" => Expr::Const(Value::Bool(true)),
                "false" => Expr::Const(Value::Bool(false)),
                "null" => Expr::Const(Value::Null),
                _ => Expr::Column(name),
            });
        }
        self.pos += 1;
        self.ws();
        let first = self
            .ident()
            .ok_or_else(|| format!("{name}(...) needs a name as its first argument"))?;
        self.expect(',')?;
        let arg = Box::new(self.expr()?);
        self.expect(')')?;
        match name.as_str() {
            "enum" => Ok(Expr::Enum { map: first, arg }),
            "uuid5" => Ok(Expr::Uuid5 { entity: first, arg }),
            other => Err(format!(
                "unknown function '{other}': the expression language has enum(map, x) and uuid5(entity, x)"
            )),
        }
    }

    fn string(&mut self) -> Result<Expr, String> {
        self.pos += 1;
        let mut text = String::new();
        loop {
            let rest = &self.s[self.pos..];
            let Some(c) = rest.chars().next() else {
                return Err(format!("unterminated string in `{}`", self.s));
            };
            self.pos += c.len_utf8();
            if c == '\'' {
                if self.s[self.pos..].starts_with('\'') {
                    self.pos += 1;
                    text.push('\'');
                    continue;
                }
                break;
            }
            text.push(c);
        }
        template(&text)
    }
}

/// Splits `a{col}b` into parts; a string without placeholders is a constant.
fn template(text: &str) -> Result<Expr, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("'{{' without '}}' in the template '{text}'"))?;
        if open > 0 {
            parts.push(Part::Text(rest[..open].to_string()));
        }
        let name = rest[open + 1..open + close].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "'{{{name}}}' in the template '{text}' is not a column name"
            ));
        }
        parts.push(Part::Column(name.to_string()));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    if parts.iter().all(|p| matches!(p, Part::Text(_))) {
        return Ok(Expr::Const(Value::String(text.to_string())));
    }
    Ok(Expr::Template(parts))
}

impl Expr {
    /// Every source column the expression reads.
    pub fn columns(&self, out: &mut Vec<String>) {
        match self {
            Expr::Column(c) => out.push(c.clone()),
            Expr::Const(_) => {}
            Expr::Template(parts) => {
                for p in parts {
                    if let Part::Column(c) = p {
                        out.push(c.clone());
                    }
                }
            }
            Expr::Enum { arg, .. } | Expr::Uuid5 { arg, .. } => arg.columns(out),
        }
    }

    /// Evaluates against one source row (a JSON object from `row_to_json`).
    ///
    /// # Errors
    /// A sentence for the row's failure (an enum value the map lacks).
    pub fn eval(&self, row: &Map<String, Value>, env: &Env<'_>) -> Result<Value, String> {
        Ok(match self {
            Expr::Column(c) => row.get(c).cloned().unwrap_or(Value::Null),
            Expr::Const(v) => v.clone(),
            Expr::Template(parts) => {
                let mut out = String::new();
                for p in parts {
                    match p {
                        Part::Text(t) => out.push_str(t),
                        Part::Column(c) => match row.get(c).and_then(render) {
                            Some(v) => out.push_str(&v),
                            None => return Ok(Value::Null),
                        },
                    }
                }
                Value::String(out)
            }
            Expr::Enum { map, arg } => {
                let v = arg.eval(row, env)?;
                let Some(key) = render(&v) else {
                    return Ok(Value::Null);
                };
                let found = env.enums.get(map).and_then(|m| m.get(&key));
                match found {
                    Some(t) => Value::String(t.clone()),
                    None => return Err(format!("value {key} is not in the enum map '{map}'")),
                }
            }
            Expr::Uuid5 { entity, arg } => match render(&arg.eval(row, env)?) {
                Some(id) => Value::String(entity_id(env.host, entity, &id).to_string()),
                None => Value::Null,
            },
        })
    }
}

/// A scalar as text (numbers without quotes); NULL → None.
pub fn render(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row() -> Map<String, Value> {
        json!({"id": 7, "role": 0, "prefix": "private/", "filename": "a.mp4", "none": null})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn every_form_parses_and_evaluates() {
        let mut enums = BTreeMap::new();
        enums.insert(
            "role".to_string(),
            BTreeMap::from([("0".to_string(), "admin".to_string())]),
        );
        let env = Env {
            host: "pt.example",
            enums: &enums,
        };
        let r = row();
        let eval = |t: &str| parse(t).unwrap().eval(&r, &env);
        assert_eq!(eval("id").unwrap(), json!(7));
        assert_eq!(eval("'it''s'").unwrap(), json!("it's"));
        assert_eq!(eval("42").unwrap(), json!(42));
        assert_eq!(eval("null").unwrap(), Value::Null);
        assert_eq!(
            eval("'web-videos/{prefix}{filename}'").unwrap(),
            json!("web-videos/private/a.mp4")
        );
        assert_eq!(eval("'x/{none}'").unwrap(), Value::Null);
        assert_eq!(eval("enum(role, role)").unwrap(), json!("admin"));
        assert!(
            eval("enum(role, id)")
                .unwrap_err()
                .contains("not in the enum map")
        );
        assert_eq!(
            eval("uuid5(users, id)").unwrap(),
            json!(entity_id("pt.example", "users", "7").to_string())
        );
        assert_eq!(eval("uuid5(users, none)").unwrap(), Value::Null);
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = entity_id("h", "videos", "1");
        assert_eq!(a, entity_id("h", "videos", "1"));
        assert_ne!(a, entity_id("h", "comments", "1"));
        assert_ne!(a, entity_id("other", "videos", "1"));
        assert_eq!(a.get_version_num(), 5);
    }

    #[test]
    fn bad_expressions_say_why() {
        assert!(parse("foo(a, b)").unwrap_err().contains("unknown function"));
        assert!(parse("'abc").unwrap_err().contains("unterminated"));
        assert!(parse("a b").unwrap_err().contains("unexpected"));
        assert!(parse("'{a b}'").unwrap_err().contains("not a column name"));
    }
}
