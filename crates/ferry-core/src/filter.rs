//! Table selection: `--tables` and `--exclude` take comma-separated names or globs.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};
use crate::schema::Schema;

#[derive(Debug, Clone, Default)]
pub struct TableFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    include_patterns: Vec<String>,
    exclude_patterns: Vec<String>,
}

/// Names among `patterns` without a wildcard (a name the operator typed, not a glob).
fn plain_names(patterns: &[String]) -> impl Iterator<Item = &String> {
    patterns.iter().filter(|p| !p.contains(['*', '?', '[']))
}

fn trimmed(patterns: &[String]) -> Vec<String> {
    patterns
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

impl TableFilter {
    /// # Errors
    /// An input error naming a pattern that is not a valid glob, or a name that `--tables`
    /// and `--exclude` both select (they cancel out).
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self> {
        let filter = Self {
            include: build(include)?,
            exclude: build(exclude)?,
            include_patterns: trimmed(include),
            exclude_patterns: trimmed(exclude),
        };
        if let Some(exclude) = &filter.exclude {
            let cancelled: Vec<&str> = plain_names(&filter.include_patterns)
                .filter(|p| exclude.is_match(p.as_str()))
                .map(String::as_str)
                .collect();
            if !cancelled.is_empty() {
                return Err(Error::input(format!(
                    "--tables and --exclude both name {}: the two options cancel out; remove {} from one of them",
                    cancelled.join(", "),
                    if cancelled.len() == 1 { "it" } else { "them" }
                )));
            }
        }
        Ok(filter)
    }

    pub fn matches(&self, table: &str) -> bool {
        self.include.as_ref().is_none_or(|g| g.is_match(table))
            && !self.exclude.as_ref().is_some_and(|g| g.is_match(table))
    }

    /// Include patterns without a wildcard that matched no table: most likely typos.
    pub fn unmatched_names<'a>(
        &self,
        tables: impl Iterator<Item = &'a str> + Clone,
    ) -> Vec<String> {
        plain_names(&self.include_patterns)
            .filter(|p| !tables.clone().any(|t| t == p.as_str()))
            .cloned()
            .collect()
    }

    /// Checks the names typed against the tables `schema` found: a `--tables` name the source
    /// does not have is an input error (most likely a typo); an `--exclude` name it does not
    /// have only a warning (excluding nothing harms nothing). Returns the warnings.
    ///
    /// # Errors
    /// An input error naming the `--tables` names the source does not have.
    pub fn check(&self, schema: &Schema) -> Result<Vec<String>> {
        let unmatched = self.unmatched_names(schema.tables.iter().map(|t| t.name.as_str()));
        if !unmatched.is_empty() {
            return Err(Error::input(format!(
                "--tables names tables the source does not have: {}; run --dry-run without --tables to list them",
                unmatched.join(", ")
            )));
        }
        let unknown: Vec<&str> = plain_names(&self.exclude_patterns)
            .filter(|p| !schema.filtered_out.iter().any(|t| t == *p))
            .map(String::as_str)
            .collect();
        Ok(if unknown.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "--exclude names tables the source does not have: {} (nothing was excluded for {}; check the spelling)",
                unknown.join(", "),
                if unknown.len() == 1 { "it" } else { "them" }
            )]
        })
    }
}

fn build(patterns: &[String]) -> Result<Option<GlobSet>> {
    let patterns: Vec<&str> = patterns
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(
            Glob::new(p)
                .map_err(|e| Error::input(format!("'{p}' is not a valid table pattern: {e}")))?,
        );
    }
    b.build()
        .map(Some)
        .map_err(|e| Error::input(format!("bad table patterns: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_and_exclude() {
        let f = TableFilter::new(&["user*".into(), "posts".into()], &["users_old".into()]).unwrap();
        assert!(f.matches("users"));
        assert!(f.matches("posts"));
        assert!(!f.matches("users_old"));
        assert!(!f.matches("comments"));
        assert_eq!(
            f.unmatched_names(["users"].into_iter()),
            vec!["posts".to_string()]
        );
    }

    #[test]
    fn the_same_name_in_both_lists_is_refused() {
        let e = TableFilter::new(&["users".into(), "posts".into()], &["user*".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cancel out") && e.contains("users"), "{e}");
        assert!(TableFilter::new(&["user*".into()], &["users_old".into()]).is_ok());
    }
}
