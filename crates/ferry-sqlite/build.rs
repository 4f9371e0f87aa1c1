//! Stops a build whose bundled SQLite would lack the snapshot API (`src/wal_snapshot.rs`) with
//! a sentence instead of a linker error: cargo reads the workspace's `.cargo/config.toml`, which
//! sets `LIBSQLITE3_FLAGS`, only when it runs from inside the repository.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBSQLITE3_FLAGS");
    let flags = std::env::var("LIBSQLITE3_FLAGS").unwrap_or_default();
    if !flags.contains("-DSQLITE_ENABLE_SNAPSHOT") {
        panic!(
            "ferry-sqlite needs SQLite's snapshot API: run cargo from the ferry repository (its \
             .cargo/config.toml sets LIBSQLITE3_FLAGS=-DSQLITE_ENABLE_SNAPSHOT), or set that \
             environment variable yourself"
        );
    }
}
