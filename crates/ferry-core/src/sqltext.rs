//! Small helpers for SQL text shared by backends: splitting a declared type into its name and
//! parameters.

/// Splits `varchar(255)` into `("varchar", [255])` and `numeric(10, 2)` into
/// `("numeric", [10, 2])`. The name is lowercased and trimmed; unparsable parameters are dropped.
pub fn split_type(declared: &str) -> (String, Vec<u32>) {
    let declared = declared.trim();
    match declared.find('(') {
        Some(open) => {
            let name = declared[..open].trim().to_ascii_lowercase();
            let close = declared[open..]
                .find(')')
                .map_or(declared.len(), |c| open + c);
            let params = declared[open + 1..close]
                .split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect();
            (name, params)
        }
        None => (declared.to_ascii_lowercase(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits() {
        assert_eq!(
            super::split_type("VARCHAR(255)"),
            ("varchar".into(), vec![255])
        );
        assert_eq!(
            super::split_type(" numeric ( 10 , 2 ) "),
            ("numeric".into(), vec![10, 2])
        );
        assert_eq!(
            super::split_type("text nocase"),
            ("text nocase".into(), vec![])
        );
    }
}

/// The standard-SQL pieces of DDL that PostgreSQL, MySQL and SQLite share, written once with
/// each backend's identifier quoting.
pub mod ddl {
    use crate::plan::{ForeignKeyPlan, IndexPlan};

    /// `"a", "b"` with the backend's quoting.
    pub fn list(quote: impl Fn(&str) -> String, columns: &[String]) -> String {
        columns
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `FOREIGN KEY (..) REFERENCES parent (..) [ON DELETE ..] [ON UPDATE ..]`.
    pub fn foreign_key(quote: impl Fn(&str) -> String + Copy, fk: &ForeignKeyPlan) -> String {
        let mut s = format!(
            "FOREIGN KEY ({}) REFERENCES {} ({})",
            list(quote, &fk.columns),
            quote(&fk.ref_table),
            list(quote, &fk.ref_columns)
        );
        for (what, action) in [("DELETE", &fk.on_delete), ("UPDATE", &fk.on_update)] {
            if let Some(a) = action {
                s.push_str(&format!(" ON {what} {a}"));
            }
        }
        s
    }

    /// `CREATE [UNIQUE] INDEX name ON table (..)` for a plain-column index.
    pub fn create_index(
        quote: impl Fn(&str) -> String + Copy,
        table: &str,
        idx: &IndexPlan,
    ) -> String {
        format!(
            "CREATE {}INDEX {} ON {} ({})",
            if idx.unique { "UNIQUE " } else { "" },
            quote(&idx.target_name),
            quote(table),
            list(quote, &idx.columns)
        )
    }

    /// The `FROM … WHERE …` that finds a foreign key's orphans, in SQL every backend runs:
    /// child rows `c` whose key columns are all set and name no parent row `p` by
    /// `parent_cols`.
    pub fn orphans_from(
        quote: impl Fn(&str) -> String + Copy,
        table: &crate::schema::Table,
        fk: &crate::schema::ForeignKey,
        parent_cols: &[String],
    ) -> String {
        let mut filter: Vec<String> = fk
            .columns
            .iter()
            .map(|c| format!("c.{} IS NOT NULL", quote(c)))
            .collect();
        let join: Vec<String> = fk
            .columns
            .iter()
            .zip(parent_cols)
            .map(|(c, p)| format!("p.{} = c.{}", quote(p), quote(c)))
            .collect();
        filter.push(format!(
            "NOT EXISTS (SELECT 1 FROM {} p WHERE {})",
            quote(&fk.ref_table),
            join.join(" AND ")
        ));
        format!(
            "FROM {} c WHERE {}",
            quote(&table.name),
            filter.join(" AND ")
        )
    }

    /// The orphans of a foreign key, in SQL PostgreSQL and MySQL both run: a count, and a
    /// query naming each orphan's key (`id=42, ...`), to which the caller appends its LIMIT.
    pub fn orphans(
        quote: impl Fn(&str) -> String + Copy,
        table: &crate::schema::Table,
        fk: &crate::schema::ForeignKey,
        parent_key: &[String],
    ) -> (String, String) {
        let parent_cols = if fk.ref_columns.is_empty() {
            parent_key
        } else {
            &fk.ref_columns
        };
        let from = orphans_from(quote, table, fk, parent_cols);
        let keys = if table.primary_key.is_empty() {
            &fk.columns
        } else {
            &table.primary_key
        };
        let shown: Vec<String> = keys
            .iter()
            .map(|k| format!("concat('{}=', c.{})", k.replace('\'', "''"), quote(k)))
            .collect();
        (
            format!("SELECT count(*) {from}"),
            format!("SELECT concat_ws(', ', {}) {from}", shown.join(", ")),
        )
    }
}
