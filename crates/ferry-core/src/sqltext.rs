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
    use crate::plan::{ForeignKeyPlan, IndexPlan, TablePlan};

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

    /// A table's keys, added once its rows are in: `ALTER TABLE t ADD PRIMARY KEY (..)` (unless
    /// `primary_key` is false: the table was created with it), then one `ADD UNIQUE (..)` per
    /// unique constraint.
    pub fn add_keys(
        quote: impl Fn(&str) -> String + Copy,
        t: &TablePlan,
        primary_key: bool,
    ) -> Vec<String> {
        let table = quote(&t.target_name);
        let pk = (primary_key && !t.primary_key.is_empty()).then_some(&t.primary_key);
        pk.into_iter()
            .map(|pk| format!("ALTER TABLE {table} ADD PRIMARY KEY ({})", list(quote, pk)))
            .chain(
                t.uniques
                    .iter()
                    .map(|u| format!("ALTER TABLE {table} ADD UNIQUE ({})", list(quote, u))),
            )
            .collect()
    }

    /// `ALTER TABLE t ADD FOREIGN KEY ..`, for each foreign key of a table.
    pub fn add_foreign_keys(quote: impl Fn(&str) -> String + Copy, t: &TablePlan) -> Vec<String> {
        let table = quote(&t.target_name);
        t.foreign_keys
            .iter()
            .map(|fk| format!("ALTER TABLE {table} ADD {}", foreign_key(quote, fk)))
            .collect()
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
            quote(&idx.name),
            quote(table),
            list(quote, &idx.columns)
        )
    }

    /// The `FROM … WHERE …` that finds a foreign key's orphans, in SQL every backend runs:
    /// rows `c` of `table` whose key `columns` are all set and name no row `p` of `ref_table`
    /// by `parent_cols`.
    pub fn orphans_from(
        quote: impl Fn(&str) -> String + Copy,
        table: &str,
        columns: &[String],
        ref_table: &str,
        parent_cols: &[String],
    ) -> String {
        let mut filter: Vec<String> = columns
            .iter()
            .map(|c| format!("c.{} IS NOT NULL", quote(c)))
            .collect();
        let join: Vec<String> = columns
            .iter()
            .zip(parent_cols)
            .map(|(c, p)| format!("p.{} = c.{}", quote(p), quote(c)))
            .collect();
        filter.push(format!(
            "NOT EXISTS (SELECT 1 FROM {} p WHERE {})",
            quote(ref_table),
            join.join(" AND ")
        ));
        format!("FROM {} c WHERE {}", quote(table), filter.join(" AND "))
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
        let from = orphans_from(quote, &table.name, &fk.columns, &fk.ref_table, parent_cols);
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
