//! What a backend can do, as data (like OpenDAL's `Capability`): the planner, the engine,
//! verification and the conformance suite decide on these fields, never on a backend's name.

/// A backend's abilities and limits as a target (and, for `dynamic_typing`, as a source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// Longest identifier in bytes.
    pub max_identifier_bytes: usize,
    /// Whether names that differ only in case collide (unquoted identifiers fold case).
    pub folds_case: bool,
    /// Whether index names are scoped to their table (MySQL) rather than shared by the whole
    /// schema with tables and other indexes (PostgreSQL, SQLite).
    pub index_names_per_table: bool,
    /// Whether a foreign key's `ON DELETE/UPDATE SET NULL` is refused on a NOT NULL column
    /// (MySQL error 1825), where PostgreSQL and SQLite accept the definition.
    pub set_null_needs_nullable: bool,
    /// How many tables may be written at once (SQLite allows one writer).
    pub max_parallel_writers: usize,
    /// Whether DDL runs inside a transaction that can be rolled back (MySQL commits each
    /// statement).
    pub transactional_ddl: bool,
    /// Columns declare an affinity, not a type: each value keeps its own storage class, so
    /// between two such databases values pass through untouched and verification compares
    /// them raw, storage class included.
    pub dynamic_typing: bool,
    /// Between two databases of this backend, a table is created from the source's own
    /// `CREATE TABLE` text, which recreates its generated columns without their expressions.
    pub replays_native_ddl: bool,
    /// Whether unique keys compare text with trailing spaces ignored (MySQL/MariaDB `PAD SPACE`
    /// collations, `utf8mb4_bin` included): `'x'` and `'x '` collide where the source kept
    /// both. The scan before writing looks for such values (`preflight::scan_values`).
    pub pad_space_keys: bool,
    /// Foreign keys are added after the rows are loaded (`ALTER TABLE ... ADD FOREIGN KEY`),
    /// so orphan rows can be looked for in the target, with its fresh indexes, before they
    /// are; SQLite declares them with the table.
    pub foreign_keys_after_data: bool,
    /// The character that quotes an identifier (doubled inside it).
    pub quote: char,
}

/// `name` quoted with `quote`, any `quote` inside doubled: `"a""b"`, `` `a``b` ``.
pub fn quote_with(quote: char, name: &str) -> String {
    let doubled: String = [quote, quote].iter().collect();
    format!("{quote}{}{quote}", name.replace(quote, &doubled))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting_doubles_the_quote() {
        assert_eq!(super::quote_with('"', "a\"b"), "\"a\"\"b\"");
        assert_eq!(super::quote_with('`', "a`b"), "`a``b`");
        assert_eq!(super::quote_with('"', "a`b"), "\"a`b\"");
    }
}
