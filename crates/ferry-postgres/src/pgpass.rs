//! Passwords from the environment when the URL has none, as libpq finds them: `PGPASSWORD`,
//! then the password file (`PGPASSFILE`, else `~/.pgpass`). Written by hand: no maintained
//! Rust crate reads libpq's password file, and its rules fit in a page.

use std::path::PathBuf;

use tokio_postgres::config::Host;

/// libpq's compiled-in socket directories: a connection through them matches `localhost`.
const DEFAULT_SOCKET_DIRS: [&str; 3] = ["/var/run/postgresql", "/run/postgresql", "/tmp"];

pub(crate) fn password(config: &tokio_postgres::Config) -> Option<Vec<u8>> {
    if let Some(p) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty()) {
        return Some(p.into_encoded_bytes());
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let meta = std::fs::metadata(&file).ok()?;
    if !meta.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "password file {} has group or world access; permissions should be u=rw (0600) or less: ignoring it",
                file.display()
            );
            return None;
        }
    }
    let contents = std::fs::read_to_string(&file).ok()?;
    let host = match config.get_hosts().first() {
        None => "localhost".to_string(),
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => {
            let p = p.display().to_string();
            if DEFAULT_SOCKET_DIRS.contains(&p.trim_end_matches('/')) {
                "localhost".into()
            } else {
                p
            }
        }
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user()?;
    let db = config.get_dbname().unwrap_or(user);
    lookup(&contents, [&host, &port, db, user]).map(String::into_bytes)
}

/// The password of the first line whose four fields (host, port, database, user) match; a
/// field `*` matches anything, `\` escapes `:` and `\`, lines starting with `#` are comments.
fn lookup(contents: &str, wanted: [&str; 4]) -> Option<String> {
    contents
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let fields = split(line);
            if fields.len() < 5 {
                return None;
            }
            let matches = fields
                .iter()
                .zip(wanted)
                .all(|((field, star), want)| *star || field == want);
            matches.then(|| fields[4].0.clone())
        })
}

/// A line's fields, de-escaped, each with whether it was the bare wildcard `*`.
fn split(line: &str) -> Vec<(String, bool)> {
    let mut fields = Vec::new();
    let (mut field, mut raw) = (String::new(), String::new());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars.next().unwrap_or('\\');
                field.push(next);
                raw.push('\\');
                raw.push(next);
            }
            ':' if fields.len() < 4 => {
                fields.push((std::mem::take(&mut field), raw == "*"));
                raw.clear();
            }
            // libpq ends the password at the next unescaped colon.
            ':' => break,
            c => {
                field.push(c);
                raw.push(c);
            }
        }
    }
    fields.push((field, raw == "*"));
    fields
}

#[cfg(test)]
mod tests {
    use super::lookup;

    #[test]
    fn first_matching_line_wins_with_wildcards_and_escapes() {
        let file = "# comment\n\
            otherhost:5432:*:app:nope\n\
            db.example.com:*:shop:app:s3cr\\:et\\\\x:ignored\n\
            *:*:*:app:fallback\n";
        assert_eq!(
            lookup(file, ["db.example.com", "6543", "shop", "app"]).as_deref(),
            Some("s3cr:et\\x")
        );
        assert_eq!(
            lookup(file, ["db.example.com", "6543", "other", "app"]).as_deref(),
            Some("fallback")
        );
        assert_eq!(lookup(file, ["h", "1", "d", "someone"]), None);
        // An escaped star is a literal star, not a wildcard.
        assert_eq!(lookup("\\*:*:*:*:pw", ["h", "1", "d", "u"]), None);
        assert_eq!(
            lookup("\\*:*:*:*:pw", ["*", "1", "d", "u"]).as_deref(),
            Some("pw")
        );
        // Too few fields: skipped, as libpq does.
        assert_eq!(lookup("h:1:d:u\n", ["h", "1", "d", "u"]), None);
    }
}
