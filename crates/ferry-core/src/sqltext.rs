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
