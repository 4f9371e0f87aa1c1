//! Test support shared by ferry's crates: private database servers that a test starts with its
//! own settings (TLS on, TLS required, users with passwords), which the shared servers at
//! 127.0.0.1 (trust auth, no TLS demanded) cannot give, and the certificates they use. Nothing
//! is mocked; a missing server binary fails the test with what to install.

pub mod certs;
pub mod mariadb;
pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A loopback port nobody listens on right now (the OS picks it; a server may still lose the
/// race, so starters retry).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// The first of `names` found in PATH, in `dirs`, or in the usual system directories.
pub(crate) fn find_bin(names: &[&str], dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut search: Vec<PathBuf> = std::env::split_paths(&path).collect();
    search.extend(dirs.iter().cloned());
    search.extend(["/usr/sbin", "/usr/local/bin", "/usr/bin"].map(PathBuf::from));
    names
        .iter()
        .flat_map(|n| search.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Runs `cmd`, panicking with its output when it fails.
pub(crate) fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `contents` to `path` with mode 0600 (servers refuse key files others can read).
pub(crate) fn write_private(path: &Path, contents: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
