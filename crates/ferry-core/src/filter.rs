//! Table selection: `--tables` and `--exclude` take comma-separated names or globs.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct TableFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    include_patterns: Vec<String>,
}

impl TableFilter {
    /// # Errors
    /// An input error naming a pattern that is not a valid glob.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self> {
        Ok(Self {
            include: build(include)?,
            exclude: build(exclude)?,
            include_patterns: include
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        })
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
        self.include_patterns
            .iter()
            .filter(|p| !p.contains(['*', '?', '[']))
            .filter(|p| !tables.clone().any(|t| t == p.as_str()))
            .cloned()
            .collect()
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
}
