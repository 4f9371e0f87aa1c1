//! SQLite objects other than plain tables, as another SQLite file recreates them: views and
//! triggers from their own statements, and virtual tables by module. Full-text tables (FTS3/4/5)
//! holding their own text and R-trees are copied with their rows (as tables the engine reads
//! and writes, rowids kept); full-text over external content (`content=`) is recreated after
//! the data and rebuilt from it; contentless full-text and other modules are named as not
//! copied. Shadow tables (a virtual table's storage) are never copied as tables.

use ferry_core::schema::{NativeObject, ObjectPhase, ObjectRows, SkippedObject};

use crate::open::quote;

/// The module of a `CREATE VIRTUAL TABLE` statement, lowercased (`fts5`, `rtree`).
pub fn module(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    if !lower.trim_start().starts_with("create virtual table") {
        return None;
    }
    let at = lower.find(" using ")? + " using ".len();
    let name: String = lower[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Full-text modules, whose rowid (docid) is not a column and must be written explicitly.
pub fn is_full_text(module: &str) -> bool {
    matches!(module, "fts3" | "fts4" | "fts5")
}

/// A table created by this statement keeps its source rowids when written (full-text tables:
/// applications join on the rowid, and an external-content index refers to its rows by it).
pub fn keeps_rowid(native_sql: Option<&str>) -> bool {
    native_sql
        .and_then(module)
        .is_some_and(|m| is_full_text(&m))
}

/// The module's arguments, split at top-level commas, quotes respected.
fn arguments(sql: &str) -> Vec<String> {
    let Some(open) = sql.find('(') else {
        return Vec::new();
    };
    let mut args = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut quote_char: Option<char> = None;
    for c in sql[open + 1..].chars() {
        match (quote_char, c) {
            (Some(q), c) if c == q => {
                quote_char = None;
                current.push(c);
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"' | '`') => {
                quote_char = Some(c);
                current.push(c);
            }
            (None, '[') => {
                quote_char = Some(']');
                current.push(c);
            }
            (None, '(') => {
                depth += 1;
                current.push(c);
            }
            (None, ')') if depth == 0 => break,
            (None, ')') => {
                depth -= 1;
                current.push(c);
            }
            (None, ',') if depth == 0 => args.push(std::mem::take(&mut current)),
            (None, c) => current.push(c),
        }
    }
    args.push(current);
    args.into_iter().map(|a| a.trim().to_string()).collect()
}

/// The value of a full-text table's `content=` option, unquoted: `Some("")` is contentless,
/// `Some(table)` external content, `None` the index holds its own text.
pub fn content_option(sql: &str) -> Option<String> {
    arguments(sql).into_iter().find_map(|arg| {
        let (key, value) = arg.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("content") {
            return None;
        }
        let v = value.trim();
        let unquoted = match (v.chars().next(), v.chars().last()) {
            (Some('\'' | '"' | '`'), Some(_)) | (Some('['), Some(']')) if v.len() >= 2 => {
                &v[1..v.len() - 1]
            }
            _ => v,
        };
        Some(unquoted.to_string())
    })
}

/// The storage tables of a virtual table of `module` named `name`.
pub fn shadow_names(name: &str, module: &str) -> Vec<String> {
    let suffixes: &[&str] = match module {
        "fts3" | "fts4" => &["content", "segments", "segdir", "docsize", "stat"],
        "fts5" => &["data", "idx", "content", "docsize", "config"],
        "rtree" | "rtree_i32" | "geopoly" => &["node", "parent", "rowid"],
        _ => &[],
    };
    suffixes.iter().map(|s| format!("{name}_{s}")).collect()
}

/// What becomes of one virtual table.
pub enum Virtual {
    /// Its rows are copied as a table (the statement recreates it on SQLite), with the object
    /// that names it in reports and decides where it goes.
    WithRows(NativeObject),
    /// Recreated after the data and rebuilt from its external content.
    Rebuilt(NativeObject),
    NotCopied(SkippedObject),
}

pub fn virtual_table(name: &str, sql: &str) -> Virtual {
    let kind = "virtual table".to_string();
    let module = module(sql).unwrap_or_default();
    let skip = |reason: String| {
        Virtual::NotCopied(SkippedObject {
            kind: kind.clone(),
            name: name.to_string(),
            reason,
            ..Default::default()
        })
    };
    let with_rows = |rows| {
        Virtual::WithRows(NativeObject {
            kind: kind.clone(),
            name: name.to_string(),
            table: Some(name.to_string()),
            phase: ObjectPhase::AfterData,
            create: Vec::new(),
            drop: Vec::new(),
            rows,
        })
    };
    match module.as_str() {
        "rtree" | "rtree_i32" => with_rows(ObjectRows::SameBackend),
        m if is_full_text(m) => match content_option(sql) {
            None => with_rows(ObjectRows::Everywhere),
            Some(c) if c.is_empty() => skip(format!(
                "contentless full-text index ({module}, content=''): its text is not stored, so it cannot be copied; rebuild it from the application's data"
            )),
            Some(content) => {
                let q = quote(name);
                Virtual::Rebuilt(NativeObject {
                    kind: kind.clone(),
                    name: name.to_string(),
                    table: Some(content),
                    phase: ObjectPhase::AfterData,
                    create: vec![
                        sql.to_string(),
                        format!("INSERT INTO {q}({q}) VALUES ('rebuild')"),
                    ],
                    drop: vec![format!("DROP TABLE IF EXISTS {q}")],
                    rows: ObjectRows::None,
                })
            }
        },
        _ => skip(format!(
            "virtual table of the module '{module}', which ferry does not copy (FTS3/4/5 and R-tree are)"
        )),
    }
}

/// A view or trigger, recreated from its own statement after the data.
pub fn plain(kind: &str, name: &str, table: Option<&str>, sql: &str) -> NativeObject {
    let drop = match kind {
        "view" => format!("DROP VIEW IF EXISTS {}", quote(name)),
        _ => format!("DROP TRIGGER IF EXISTS {}", quote(name)),
    };
    NativeObject::new(
        kind,
        name,
        table.map(str::to_string),
        ObjectPhase::AfterData,
        vec![sql.to_string()],
        vec![drop],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_virtual_table_statements() {
        let ext = "CREATE VIRTUAL TABLE posts_fts USING fts5(title, body, content='posts', content_rowid='id')";
        assert_eq!(module(ext).as_deref(), Some("fts5"));
        assert_eq!(content_option(ext).as_deref(), Some("posts"));
        let own = "create virtual table notes_fts using FTS4(body, tokenize=porter)";
        assert_eq!(module(own).as_deref(), Some("fts4"));
        assert_eq!(content_option(own), None);
        assert_eq!(
            content_option("CREATE VIRTUAL TABLE x USING fts5(a, content=\"\")").as_deref(),
            Some("")
        );
        assert_eq!(
            content_option("CREATE VIRTUAL TABLE x USING fts4(a, content=[my docs])").as_deref(),
            Some("my docs")
        );
        assert!(keeps_rowid(Some(own)));
        assert!(!keeps_rowid(Some(
            "CREATE VIRTUAL TABLE r USING rtree(id, a, b)"
        )));
        assert!(!keeps_rowid(Some("CREATE TABLE t (a)")));
        assert_eq!(
            shadow_names("r", "rtree"),
            ["r_node", "r_parent", "r_rowid"]
        );
    }
}
