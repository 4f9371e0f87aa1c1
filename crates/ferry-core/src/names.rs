//! Identifier fitting: targets limit name length (PostgreSQL 63 bytes, MySQL 64 characters) and
//! truncate silently, so two long names can become one. ferry shortens names itself, makes
//! collisions unique with a short hash, and reports every rename before any write.

use std::collections::HashSet;

use xxhash_rust::xxh3::xxh3_64;

/// Shortens `name` to at most `max_bytes` bytes at a character boundary.
pub fn truncate(name: &str, max_bytes: usize) -> &str {
    if name.len() <= max_bytes {
        return name;
    }
    let mut end = max_bytes;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Fits every name to `max_bytes`, keeping them distinct (case-insensitively when `fold_case`).
/// Returns the new names in input order. A name that fits and collides with nothing is kept.
pub fn fit_all(names: &[String], max_bytes: usize, fold_case: bool) -> Vec<String> {
    let key = |s: &str| {
        if fold_case {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    let mut taken: HashSet<String> = HashSet::new();
    // Names that already fit keep priority, so a short name is never renamed because of a long one.
    for n in names.iter().filter(|n| n.len() <= max_bytes) {
        taken.insert(key(n));
    }
    let mut out = Vec::with_capacity(names.len());
    let mut kept: HashSet<String> = HashSet::new();
    for n in names {
        if n.len() <= max_bytes && kept.insert(key(n)) {
            out.push(n.clone());
            continue;
        }
        let mut candidate = truncate(n, max_bytes).to_string();
        if taken.contains(&key(&candidate)) {
            candidate = unique_variant(n, max_bytes);
        }
        taken.insert(key(&candidate));
        out.push(candidate);
    }
    out
}

/// `name` when it fits; otherwise cut to `max_bytes` with a short hash of the whole name at the
/// end, so that two long names sharing a prefix stay distinct.
pub fn fit_hashed(name: &str, max_bytes: usize) -> String {
    if name.len() <= max_bytes {
        name.to_string()
    } else {
        unique_variant(name, max_bytes)
    }
}

fn unique_variant(name: &str, max_bytes: usize) -> String {
    let suffix = format!("_{:08x}", xxh3_64(name.as_bytes()) as u32);
    format!("{}{}", truncate(name, max_bytes - suffix.len()), suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_that_collide_are_made_unique() {
        let a = format!("{}_alpha", "x".repeat(70));
        let b = format!("{}_beta", "x".repeat(70));
        let out = fit_all(&[a.clone(), b.clone(), "short".into()], 63, false);
        assert!(out.iter().all(|n| n.len() <= 63));
        assert_ne!(out[0], out[1]);
        assert_eq!(out[2], "short");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let name = "é".repeat(40); // 80 bytes
        let t = truncate(&name, 63);
        assert_eq!(t.len(), 62);
    }
}
