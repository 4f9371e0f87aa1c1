//! The workspace's layout rule, checked on the dependency graph: a database client (rusqlite,
//! tokio-postgres, mysql_async) is a normal dependency of its backend crate only. The job
//! store, blob manifests and profiles reach their databases through the backends, so adding a
//! backend or changing a driver touches one folder.

use std::process::Command;

/// Each client and the one backend crate that may use it.
const CLIENTS: [(&str, &str); 3] = [
    ("rusqlite", "ferry-sqlite"),
    ("tokio-postgres", "ferry-postgres"),
    ("mysql_async", "ferry-mysql"),
];

/// Crates that exist only for tests: they may open databases directly.
const TEST_ONLY: [&str; 2] = ["ferry-testkit", "ferry-e2e"];

/// The workspace crates that depend on `client` directly (normal dependencies only).
fn direct_users(client: &str) -> Vec<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-e", "normal", "-i", client])
        .args(["--depth", "1", "--prefix", "depth"])
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo tree: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree -i {client} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `--prefix depth`: "0rusqlite v0.41.1", then "1ferry-sqlite v0.1.0 (/path)" per user.
    // A workspace crate is one built from a path (its line names the folder).
    text.lines()
        .filter_map(|line| line.strip_prefix('1'))
        .filter(|line| line.contains(" ("))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn database_clients_are_used_only_by_their_backend_crates() {
    let mut wrong = Vec::new();
    for (client, backend) in CLIENTS {
        let users = direct_users(client);
        assert!(
            users.iter().any(|u| u == backend),
            "cargo tree -i {client} does not list {backend}: {users:?} (is the check reading the graph right?)"
        );
        for user in users {
            let allowed = user == backend || TEST_ONLY.contains(&user.as_str());
            if !allowed {
                wrong.push(format!("{user} uses {client}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "database clients outside their backend crates: {} (reach the database through the backend crate: its Source, Target or session)",
        wrong.join(", ")
    );
}
