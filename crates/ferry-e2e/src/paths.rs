//! Where things are: the workspace, its target folder, the `ferry` binary, the test artifacts.

use std::path::PathBuf;

pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(|p| p.parent())
        .expect("crates/ferry-e2e sits two levels below the workspace root")
        .to_path_buf()
}

pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// Screenshots and logs the tests leave behind for a human to look at.
pub fn artifacts_dir() -> PathBuf {
    let dir = target_dir().join("ferry-e2e");
    std::fs::create_dir_all(&dir).expect("create target/ferry-e2e");
    dir
}

/// `FERRY_BIN`, else `target/debug/ferry`. Cargo does not build another package's binary for
/// this crate's tests, so a missing one is a loud failure naming the build command.
pub fn ferry_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("FERRY_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "FERRY_BIN={} is not a file: point it at a built ferry binary",
            bin.display()
        );
        return bin;
    }
    let bin = target_dir().join("debug").join("ferry");
    assert!(
        bin.is_file(),
        "the ferry binary is not built at {}: run `cargo build -p ferry-cli` first (or set FERRY_BIN)",
        bin.display()
    );
    bin
}
