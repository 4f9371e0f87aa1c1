//! Black-box tests of the `ferry` command line: the real binary, run without a terminal, against
//! SQLite files made here and a real PostgreSQL server (see `common::pg_admin_url`; each test
//! makes and drops its own database).

mod common;

use std::path::{Path, PathBuf};

use common::{
    BAD_UTF8_SQL, PgDb, ferry, make_sqlite, read_summary, sqlite_rows, sqlite_url, temp_sqlite,
    write_migrate_spec,
};
use serde_json::Value;
use tempfile::TempDir;

/// A small application database: two tables joined by a foreign key, a boolean kept as 0/1, a
/// datetime kept as text, and a third table with a text primary key.
const APP_SQL: &str = "
    CREATE TABLE authors (
      id INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      active BOOLEAN NOT NULL,
      joined_at DATETIME
    );
    CREATE TABLE books (
      id INTEGER PRIMARY KEY,
      author_id INTEGER NOT NULL REFERENCES authors(id),
      title TEXT NOT NULL,
      in_print BOOLEAN
    );
    CREATE TABLE tags (name TEXT PRIMARY KEY, weight REAL);
    INSERT INTO authors VALUES
      (1, 'Ada', 1, '2024-01-02 03:04:05'),
      (2, 'Brian', 0, '2023-12-31 23:59:59'),
      (3, 'Cleo', 1, NULL);
    INSERT INTO books VALUES
      (10, 1, 'Notes', 1),
      (11, 1, 'More notes', 0),
      (12, 3, 'Poems', NULL),
      (13, 2, 'C', 1);
    INSERT INTO tags VALUES ('x', 1.5), ('y', NULL);
";

/// A tempdir holding `app.db` made from `APP_SQL`; returns (dir, sqlite URL of app.db).
fn app_source() -> (TempDir, String) {
    let (dir, db) = temp_sqlite("app.db", APP_SQL);
    let url = sqlite_url(&db);
    (dir, url)
}

/// `ferry copy` of [`app_source`] to `target` with `extra` flags and `--summary`: (dir, source
/// URL, the run, the summary's path).
fn copy_app(target: &str, extra: &[&str]) -> (TempDir, String, common::Run, PathBuf) {
    let (dir, source) = app_source();
    let (run, summary) = copy_summarised(dir.path(), &source, target, extra);
    (dir, source, run, summary)
}

/// [`ferry_copy`] with `--summary CWD/summary.json` added: the run and the summary's path.
fn copy_summarised(
    cwd: &Path,
    source: &str,
    target: &str,
    extra: &[&str],
) -> (common::Run, PathBuf) {
    let summary = cwd.join("summary.json");
    let summary_arg = path_str(&summary);
    let mut args = vec!["--summary", summary_arg.as_str()];
    args.extend_from_slice(extra);
    (ferry_copy(cwd, source, target, &args), summary)
}

/// `secret` is in neither of `run`'s outputs nor in the summary it wrote at `summary`.
fn assert_not_printed(run: &common::Run, summary: &Path, secret: &str) {
    let text = std::fs::read_to_string(summary).unwrap();
    for (what, out) in [
        ("stderr", &run.stderr),
        ("stdout", &run.stdout),
        ("summary", &text),
    ] {
        assert!(
            !out.contains(secret),
            "the password leaked into {what}\n{}\n--- summary:\n{text}",
            run.show()
        );
    }
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("UTF-8 temp path").to_string()
}

#[track_caller]
/// `ferry copy --source SOURCE --target TARGET EXTRA…` in `cwd`.
fn ferry_copy(cwd: &Path, source: &str, target: &str, extra: &[&str]) -> common::Run {
    let mut args = vec!["copy", "--source", source, "--target", target];
    args.extend_from_slice(extra);
    ferry(cwd, &args)
}

/// `ferry verify --source SOURCE --target TARGET EXTRA…` in `cwd`.
fn ferry_verify(cwd: &Path, source: &str, target: &str, extra: &[&str]) -> common::Run {
    let mut args = vec!["verify", "--source", source, "--target", target];
    args.extend_from_slice(extra);
    ferry(cwd, &args)
}

fn assert_one_error_line(run: &common::Run) -> String {
    let lines = run.stderr_lines();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one line on stderr\n{}",
        run.show()
    );
    assert!(
        lines[0].starts_with("error: "),
        "the line must start with `error: `\n{}",
        run.show()
    );
    lines[0].to_string()
}

// ---------------------------------------------------------------------------------------------
// 1. A full copy to PostgreSQL

#[test]
fn copy_sqlite_to_postgres_copies_rows_types_keys_and_writes_the_summary() {
    let pg = PgDb::new();
    let (_dir, source, run, summary) = copy_app(&pg.url, &[]);
    run.expect_code(0);

    // The final table on stderr: a header and a row per table, then the result line.
    let header = run.stderr_line("no final table on stderr", |l| {
        l.starts_with("table ") && l.contains("migrated") && l.contains("failed")
    });
    assert!(header.contains("rows"), "{header}");
    for (table, rows) in [("authors", 3), ("books", 4), ("tags", 2)] {
        let line = run.stderr_line(&format!("no row for {table} in the final table"), |l| {
            l.split_whitespace().next() == Some(table)
        });
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            &cells[1..4],
            &[&rows.to_string(), &rows.to_string(), "0"],
            "{line}"
        );
    }
    run.expect_stderr("verify: 3 tables match");
    run.expect_stderr_line(|l| l == "source read: SQLite shared lock (writers wait)");
    run.expect_stderr_line(|l| l.starts_with("completed: 9 rows copied, 0 failed"));
    assert!(
        run.stdout.trim().is_empty(),
        "nothing on stdout\n{}",
        run.show()
    );

    // The summary.
    let j = read_summary(&summary);
    assert_eq!(j["status"], "completed", "{j:#}");
    assert_eq!(j["dry_run"], false);
    assert_eq!(j["source"], source.as_str());
    assert_eq!(j["target"], pg.url.as_str());
    assert_eq!(j["source_snapshot"], "SQLite shared lock (writers wait)");
    assert!(j["elapsed_s"].as_f64().is_some_and(|t| t >= 0.0), "{j:#}");
    for (table, rows) in [("authors", 3), ("books", 4), ("tags", 2)] {
        let st = &j["stats"][table];
        assert_eq!(st["total"], rows, "stats.{table}: {st:#}");
        assert_eq!(st["migrated"], rows, "stats.{table}: {st:#}");
        assert_eq!(st["skipped"], 0, "stats.{table}: {st:#}");
        assert_eq!(st["failed"], 0, "stats.{table}: {st:#}");
        assert_eq!(st["errors"], Value::Array(vec![]), "stats.{table}: {st:#}");
        let v = &j["verify"][table];
        assert_eq!(v["source_rows"], rows, "verify.{table}: {v:#}");
        assert_eq!(v["target_rows"], rows, "verify.{table}: {v:#}");
        assert_eq!(v["checksum_match"], true, "verify.{table}: {v:#}");
    }
    assert_eq!(j["stats"].as_object().unwrap().len(), 3, "{j:#}");

    // The rows are really in PostgreSQL, with the right types.
    assert_eq!(pg.tables(), ["authors", "books", "tags"]);
    let types = pg.query(
        "SELECT column_name, data_type FROM information_schema.columns \
         WHERE table_name = 'authors' ORDER BY ordinal_position",
    );
    assert_eq!(
        types,
        [
            [s("id"), s("bigint")],
            [s("name"), s("text")],
            [s("active"), s("boolean")],
            [s("joined_at"), s("timestamp without time zone")],
        ],
    );
    assert_eq!(
        pg.query("SELECT id, name, active, joined_at FROM authors ORDER BY id"),
        [
            [s("1"), s("Ada"), s("t"), s("2024-01-02 03:04:05")],
            [s("2"), s("Brian"), s("f"), s("2023-12-31 23:59:59")],
            [s("3"), s("Cleo"), s("t"), None],
        ]
    );
    assert_eq!(
        pg.query("SELECT id, author_id, title, in_print FROM books ORDER BY id"),
        [
            [s("10"), s("1"), s("Notes"), s("t")],
            [s("11"), s("1"), s("More notes"), s("f")],
            [s("12"), s("3"), s("Poems"), None],
            [s("13"), s("2"), s("C"), s("t")],
        ]
    );
    assert_eq!(
        pg.query("SELECT name, weight FROM tags ORDER BY name"),
        [[s("x"), s("1.5")], [s("y"), None]]
    );
    // Primary keys and the foreign key exist.
    assert_eq!(
        pg.query(
            "SELECT conrelid::regclass::text, contype, confrelid::regclass::text FROM pg_constraint \
             WHERE contype IN ('p', 'f') AND connamespace = 'public'::regnamespace \
             ORDER BY 1, 2"
        ),
        [
            [s("authors"), s("p"), s("-")],
            [s("books"), s("f"), s("authors")],
            [s("books"), s("p"), s("-")],
            [s("tags"), s("p"), s("-")],
        ]
    );
    // The foreign key is enforced.
    let bad = common::pg_try_query(
        &pg.url,
        "INSERT INTO books (id, author_id, title) VALUES (99, 42, 'orphan')",
    );
    assert!(
        bad.as_ref().is_err_and(|e| e.starts_with("23503")),
        "{bad:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Aliases

#[test]
fn source_db_and_target_db_aliases_work() {
    let (dir, source) = app_source();
    let pg = PgDb::new();
    let summary = dir.path().join("summary.json");
    ferry(
        dir.path(),
        &[
            "copy",
            "--source-db",
            &source,
            "--target-db",
            &pg.url,
            "--summary",
            &path_str(&summary),
        ],
    )
    .expect_code(0);
    assert_eq!(pg.scalar("SELECT count(*) FROM authors"), s("3"));
    assert_eq!(pg.scalar("SELECT count(*) FROM books"), s("4"));
    let j = read_summary(&summary);
    assert_eq!(j["status"], "completed");
    assert_eq!(j["source"], source.as_str());

    // verify takes the same aliases.
    ferry(
        dir.path(),
        &["verify", "--source-db", &source, "--target-db", &pg.url],
    )
    .expect_code(0);
}

// ---------------------------------------------------------------------------------------------
// 3-5. Input errors: exit 2, one line, a summary that is still JSON

#[test]
fn unknown_scheme_is_a_one_line_input_error_and_the_summary_says_failed() {
    let (dir, source, run, summary) = copy_app("oracle://x", &[]);
    run.expect_code(2);
    let line = assert_one_error_line(&run);
    assert!(
        line.contains("oracle"),
        "the error must name the scheme: {line}"
    );
    assert!(run.stdout.is_empty(), "{}", run.show());

    let j = read_summary(&summary);
    assert_eq!(j["status"], "failed", "{j:#}");
    assert_eq!(j["dry_run"], false);
    assert!(
        j["error"].as_str().is_some_and(|e| e.contains("oracle")),
        "{j:#}"
    );
    assert!(
        j["stats"].as_object().is_some_and(|m| m.is_empty()),
        "{j:#}"
    );

    // The same for an unknown source scheme, and without --summary.
    let run = ferry(
        dir.path(),
        &["copy", "--source", "oracle://x", "--target", &source],
    );
    run.expect_code(2);
    let line = assert_one_error_line(&run);
    assert!(line.contains("oracle"), "{line}");
}

#[test]
fn missing_sqlite_source_is_a_one_line_error_naming_the_path() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("no-such-app.db");
    let target = dir.path().join("out.db");
    let (run, summary) =
        copy_summarised(dir.path(), &sqlite_url(&missing), &sqlite_url(&target), &[]);
    run.expect_code(2);
    let line = assert_one_error_line(&run);
    assert!(
        line.contains(&path_str(&missing)),
        "the error must name the path: {line}"
    );
    assert!(!missing.exists(), "the missing source must not be created");
    assert!(!target.exists(), "nothing may be written to the target");
    assert_eq!(read_summary(&summary)["status"], "failed");
}

#[test]
fn unreachable_server_is_a_one_line_error_without_the_password() {
    let target = "postgres://app:SuperSecret123@127.0.0.1:1/db";
    let (dir, source, run, summary) = copy_app(target, &[]);
    run.expect_code(2);
    let line = assert_one_error_line(&run);
    assert!(
        line.to_lowercase().contains("cannot connect"),
        "the error must say it cannot connect: {line}"
    );
    assert!(line.contains("127.0.0.1:1"), "{line}");
    assert_not_printed(&run, &summary, "SuperSecret123");
    let j = read_summary(&summary);
    assert_eq!(j["status"], "failed");
    assert_eq!(j["target"], "postgres://app:***@127.0.0.1:1/db");

    // verify fails the same way.
    let run = ferry_verify(dir.path(), &source, target, &[]);
    run.expect_code(2);
    let line = assert_one_error_line(&run);
    assert!(line.to_lowercase().contains("cannot connect"), "{line}");
    assert!(!run.stderr.contains("SuperSecret123") && !run.stdout.contains("SuperSecret123"));
}

// ---------------------------------------------------------------------------------------------
// 6. A target that already has the tables

#[test]
fn non_empty_target_needs_force_and_confirmation() {
    let (dir, src) = temp_sqlite(
        "items.db",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three');",
    );
    let source = sqlite_url(&src);
    let pg = PgDb::new();
    pg.query("CREATE TABLE items (id bigint PRIMARY KEY, name text); INSERT INTO items VALUES (99, 'old');");
    let existing = || pg.query("SELECT id, name FROM items ORDER BY id");

    // A dry run only warns.
    let run = ferry_copy(dir.path(), &source, &pg.url, &["--dry-run"]);
    run.expect_code(0);
    assert!(
        run.stderr.lines().any(|l| l.starts_with("warning: ")
            && l.contains("\"items\"")
            && l.contains("--force")),
        "a dry run must warn about the non-empty table\n{}",
        run.show()
    );
    assert_eq!(existing(), [[s("99"), s("old")]]);

    // No --force: refused, naming the table.
    let (run, summary) = copy_summarised(dir.path(), &source, &pg.url, &[]);
    run.expect_code(2);
    // Without a terminal, progress is logged on stderr; the error is the last line.
    let line = run.stderr_lines().last().copied().unwrap_or_default();
    assert!(line.starts_with("error: "), "{}", run.show());
    assert!(
        line.contains("\"items\""),
        "the error must name the table: {line}"
    );
    assert!(
        line.contains("--force"),
        "the error must say what to do: {line}"
    );
    assert_eq!(existing(), [[s("99"), s("old")]]);
    assert_eq!(read_summary(&summary)["status"], "failed");

    // --force without --yes and without a terminal: refused rather than waiting.
    let run = ferry(
        dir.path(),
        &["copy", "--source", &source, "--target", &pg.url, "--force"],
    );
    run.expect_code(2);
    let line = run.stderr_lines().last().copied().unwrap_or_default();
    assert!(line.starts_with("error: "), "{}", run.show());
    assert!(line.contains("items"), "{}", run.show());
    assert!(line.contains("--yes"), "{}", run.show());
    assert_eq!(existing(), [[s("99"), s("old")]], "the row must survive");

    // --force --yes: erased and copied.
    let run = ferry(
        dir.path(),
        &[
            "copy", "--source", &source, "--target", &pg.url, "--force", "--yes",
        ],
    );
    run.expect_code(0);
    assert_eq!(
        existing(),
        [[s("1"), s("one")], [s("2"), s("two")], [s("3"), s("three")]]
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Dry runs

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let pg = PgDb::new();
    let (dir, source, run, summary) = copy_app(&pg.url, &["--dry-run"]);
    run.expect_code(0);
    let out = &run.stdout;
    assert!(out.starts_with("Plan: "), "{}", run.show());
    for (table, rows) in [("authors", 3), ("books", 4), ("tags", 2)] {
        assert!(
            out.lines()
                .any(|l| l.trim() == format!("{table}: {rows} rows")),
            "no plan entry `{table}: {rows} rows`\n{}",
            run.show()
        );
    }
    // The type mapping, one column per line: name, SQLite type → PostgreSQL type.
    let mapping = |col: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(col))
            .unwrap_or_else(|| panic!("no plan line for column {col}\n{}", run.show()))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(mapping("active"), "active BOOLEAN → boolean NOT NULL");
    assert_eq!(mapping("joined_at"), "joined_at DATETIME → timestamp");
    assert_eq!(mapping("author_id"), "author_id INTEGER → bigint NOT NULL");
    assert!(out.contains("Lossy steps:"), "{}", run.show());

    assert!(
        pg.tables().is_empty(),
        "a dry run created {:?}",
        pg.tables()
    );
    let j = read_summary(&summary);
    assert_eq!(j["status"], "completed");
    assert_eq!(j["dry_run"], true);
    assert_eq!(j["stats"]["books"]["total"], 4);
    assert_eq!(j["stats"]["books"]["migrated"], 0);

    // With an SQLite target, the file is not even created.
    let target = dir.path().join("new.db");
    let run = ferry_copy(dir.path(), &source, &sqlite_url(&target), &["--dry-run"]);
    run.expect_code(0);
    run.expect_stdout("authors: 3 rows");
    assert!(!target.exists(), "a dry run created {}", target.display());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("new.db"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---------------------------------------------------------------------------------------------
// 8. Table selection

#[test]
fn tables_glob_and_exclude_select_the_tables() {
    let (dir, src) = temp_sqlite(
        "many.db",
        "CREATE TABLE app_users (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE app_posts (id INTEGER PRIMARY KEY, title TEXT);
         CREATE TABLE app_logs (id INTEGER PRIMARY KEY, line TEXT);
         CREATE TABLE other (id INTEGER PRIMARY KEY);
         INSERT INTO app_users VALUES (1, 'a'), (2, 'b');
         INSERT INTO app_posts VALUES (1, 'p');
         INSERT INTO app_logs VALUES (1, 'l');
         INSERT INTO other VALUES (1);",
    );
    let source = sqlite_url(&src);
    let pg = PgDb::new();
    let (run, summary) = copy_summarised(
        dir.path(),
        &source,
        &pg.url,
        &["--tables", "app_*", "--exclude", "app_logs"],
    );
    run.expect_code(0);
    assert_eq!(pg.tables(), ["app_posts", "app_users"]);
    assert_eq!(pg.scalar("SELECT count(*) FROM app_users"), s("2"));
    let j = read_summary(&summary);
    let mut copied: Vec<&String> = j["stats"].as_object().unwrap().keys().collect();
    copied.sort();
    assert_eq!(copied, ["app_posts", "app_users"]);

    // A comma-separated list mixing a name and a glob, into SQLite.
    let target = dir.path().join("subset.db");
    ferry_copy(
        dir.path(),
        &source,
        &sqlite_url(&target),
        &["--tables", "other,app_l*"],
    )
    .expect_code(0);
    let names: Vec<String> = sqlite_rows(
        &target,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect();
    assert_eq!(names, ["app_logs", "other"]);

    // A --tables name the source does not have is an input error.
    let run = ferry_copy(
        dir.path(),
        &source,
        &sqlite_url(&dir.path().join("x.db")),
        &["--tables", "nope"],
    );
    run.expect_code(2);
    run.expect_stderr("nope");
}

// ---------------------------------------------------------------------------------------------
// 9. verify

#[test]
fn verify_finds_changed_and_missing_rows_by_key() {
    let (dir, source) = app_source();
    let pg = PgDb::new();
    ferry(
        dir.path(),
        &["copy", "--source", &source, "--target", &pg.url],
    )
    .expect_code(0);

    let summary = dir.path().join("verify.json");
    let verify = || {
        ferry_verify(
            dir.path(),
            &source,
            &pg.url,
            &["--summary", &path_str(&summary)],
        )
    };
    let run = verify();
    run.expect_code(0);
    run.expect_stderr("verify: 3 tables match");
    let j = read_summary(&summary);
    assert_eq!(j["status"], "completed");
    for table in ["authors", "books", "tags"] {
        assert_eq!(j["verify"][table]["checksum_match"], true, "{j:#}");
    }

    pg.query("UPDATE books SET title = 'Changed' WHERE id = 11; DELETE FROM books WHERE id = 13;");
    let run = verify();
    run.expect_code(1);
    let err = &run.stderr;
    assert!(
        err.contains("verify: books: source 4 rows, target 3 rows"),
        "{}",
        run.show()
    );
    assert!(
        err.lines().any(|l| l.trim() == "missing in target: id=13"),
        "{}",
        run.show()
    );
    assert!(
        err.lines().any(|l| l.trim() == "different: id=11"),
        "{}",
        run.show()
    );
    let j = read_summary(&summary);
    let books = &j["verify"]["books"];
    assert_eq!(books["source_rows"], 4, "{books:#}");
    assert_eq!(books["target_rows"], 3, "{books:#}");
    assert_eq!(books["checksum_match"], false, "{books:#}");
    assert_eq!(
        books["missing_keys"],
        serde_json::json!(["id=13"]),
        "{books:#}"
    );
    assert_eq!(
        books["different_keys"],
        serde_json::json!(["id=11"]),
        "{books:#}"
    );
    assert_eq!(books["extra_keys"], serde_json::json!([]), "{books:#}");
    // The untouched tables still match.
    assert_eq!(j["verify"]["authors"]["checksum_match"], true);
    assert_eq!(j["verify"]["tags"]["checksum_match"], true);

    // A table missing in the target is a difference too, not a crash.
    pg.query("DROP TABLE tags");
    let run = verify();
    run.expect_code(1);
    run.expect_stderr_line(|l| l.starts_with("verify: tags: ") && l.contains("missing"));
    let j = read_summary(&summary);
    assert_eq!(j["status"], "completed", "{j:#}");
    assert!(
        j["verify"]["tags"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("missing")),
        "{j:#}"
    );
    assert_eq!(j["verify"]["tags"]["target_rows"], 0, "{j:#}");

    // --tables narrows verify as it narrows copy.
    ferry_verify(dir.path(), &source, &pg.url, &["--tables", "auth*"]).expect_code(0);
}

// ---------------------------------------------------------------------------------------------
// 10. Rejected rows

#[test]
fn invalid_utf8_stops_the_copy_and_names_the_row() {
    let dir = TempDir::new().unwrap();
    let source = sqlite_url(&make_sqlite(&dir.path().join("bad.db"), BAD_UTF8_SQL));
    let pg = PgDb::new();
    let (run, summary) = copy_summarised(dir.path(), &source, &pg.url, &[]);
    run.expect_code(1);
    let err = &run.stderr;
    assert!(err.contains("notes"), "must name the table\n{}", run.show());
    assert!(
        err.contains("id=2"),
        "must name the row key\n{}",
        run.show()
    );
    assert!(err.contains("UTF-8"), "must say why\n{}", run.show());
    assert!(
        err.contains("--ignore-errors"),
        "must say what to do\n{}",
        run.show()
    );
    let j = read_summary(&summary);
    assert_eq!(j["status"], "failed", "{j:#}");
    assert!(
        j["error"]
            .as_str()
            .is_some_and(|e| e.contains("notes") && e.contains("id=2")),
        "{j:#}"
    );
    assert!(
        !dir.path().join("ferry-rejects").exists(),
        "no reject files without --ignore-errors"
    );
}

#[test]
fn ignore_errors_copies_the_rest_and_writes_the_reject_file() {
    let dir = TempDir::new().unwrap();
    let source = sqlite_url(&make_sqlite(&dir.path().join("bad.db"), BAD_UTF8_SQL));
    let pg = PgDb::new();
    let rejects = dir.path().join("rejected");
    let (run, summary) = copy_summarised(
        dir.path(),
        &source,
        &pg.url,
        &["--ignore-errors", "--reject-dir", &path_str(&rejects)],
    );
    run.expect_code(1);
    assert_eq!(
        pg.query("SELECT id, body FROM notes ORDER BY id"),
        [[s("1"), s("first")], [s("3"), s("third")]]
    );
    assert_eq!(pg.scalar("SELECT count(*) FROM fine"), s("2"));

    let file = rejects.join("notes.rejects.jsonl");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", file.display(), run.show()));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line: Value = serde_json::from_str(lines[0]).expect("a JSON line");
    assert_eq!(line["key"], "id=2", "{line:#}");
    assert!(
        line["reason"].as_str().is_some_and(|r| r.contains("UTF-8")),
        "{line:#}"
    );
    assert_eq!(line["row"]["id"], 2, "{line:#}");
    assert_eq!(line["row"]["body"], "\\x61ff62", "{line:#}");
    let others: Vec<_> = std::fs::read_dir(&rejects)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        others.len(),
        1,
        "only the table with rejects has a file: {others:?}"
    );

    let j = read_summary(&summary);
    let notes = &j["stats"]["notes"];
    assert_eq!(notes["total"], 3, "{notes:#}");
    assert_eq!(notes["migrated"], 2, "{notes:#}");
    assert_eq!(notes["failed"], 1, "{notes:#}");
    let errors = notes["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{notes:#}");
    assert!(errors[0].as_str().unwrap().starts_with("id=2"), "{notes:#}");
    assert_eq!(j["stats"]["fine"]["failed"], 0);
    assert_eq!(j["stats"]["fine"]["migrated"], 2);
    // The run itself completed; verification reports the row that is not in the target.
    assert_eq!(j["status"], "completed", "{j:#}");
    assert_eq!(
        j["verify"]["notes"]["missing_keys"],
        serde_json::json!(["id=2"]),
        "{j:#}"
    );
    run.expect_stderr_line(|l| l.starts_with("finished with failures"));
}

#[test]
fn default_reject_dir_is_relative_to_the_working_directory() {
    let dir = TempDir::new().unwrap();
    let work = TempDir::new().unwrap();
    let source = sqlite_url(&make_sqlite(&dir.path().join("bad.db"), BAD_UTF8_SQL));
    let target = dir.path().join("out.db");
    let run = ferry_copy(
        work.path(),
        &source,
        &sqlite_url(&target),
        &["--ignore-errors"],
    );
    // SQLite stores the bytes as they are, so nothing is rejected and the copy is exact.
    run.expect_code(0);
    assert_eq!(
        sqlite_rows(&target, "SELECT id, hex(body) FROM notes ORDER BY id"),
        [
            [s("1"), s("6669727374")],
            [s("2"), s("61FF62")],
            [s("3"), s("7468697264")]
        ]
    );
    assert!(!work.path().join("ferry-rejects").exists());
}

// ---------------------------------------------------------------------------------------------
// 11. demo

#[test]
fn demo_creates_a_source_and_an_identical_copy() {
    let dir = TempDir::new().unwrap();
    let demo = dir.path().join("demo");
    let run = ferry(
        dir.path(),
        &["demo", "--dir", &path_str(&demo), "--rows", "2000"],
    );
    run.expect_code(0);
    let (src, dst) = (demo.join("demo-source.db"), demo.join("demo-target.db"));
    assert!(src.is_file() && dst.is_file(), "{}", run.show());
    let tables = |p: &Path| -> Vec<String> {
        sqlite_rows(
            p,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
    };
    let names = tables(&src);
    assert!(names.len() >= 5, "{names:?}");
    assert_eq!(tables(&dst), names);
    let mut total = 0;
    for t in &names {
        let q = format!("SELECT count(*) FROM \"{t}\"");
        let a = sqlite_rows(&src, &q);
        let b = sqlite_rows(&dst, &q);
        assert_eq!(a, b, "row counts of {t}");
        total += a[0][0].as_ref().unwrap().parse::<u64>().unwrap();
    }
    assert!(total >= 2000, "about 2000 rows expected, got {total}");
    run.expect_stderr("verify:");
    // Between two SQLite files the demo's view and trigger are recreated, not skipped.
    assert!(
        run.stderr.contains("recreated: view popular_posts")
            && run.stderr.contains("recreated: trigger posts_touch")
            && !run.stderr.contains("not copied"),
        "{}",
        run.show()
    );
    let views = sqlite_rows(&dst, "SELECT count(*) FROM popular_posts");
    assert_eq!(
        views,
        sqlite_rows(&src, "SELECT count(*) FROM popular_posts")
    );
    assert!(!dir.path().join("ferry-rejects").exists());
}

// ---------------------------------------------------------------------------------------------
// SQLite to SQLite, for completeness

#[test]
fn copy_sqlite_to_sqlite_and_verify() {
    let (dir, source) = app_source();
    let target = dir.path().join("copy.db");
    ferry_copy(dir.path(), &source, &sqlite_url(&target), &[]).expect_code(0);
    assert_eq!(
        sqlite_rows(
            &target,
            "SELECT id, name, active, joined_at FROM authors ORDER BY id"
        ),
        [
            [s("1"), s("Ada"), s("1"), s("2024-01-02 03:04:05")],
            [s("2"), s("Brian"), s("0"), s("2023-12-31 23:59:59")],
            [s("3"), s("Cleo"), s("1"), None],
        ]
    );
    ferry_verify(dir.path(), &source, &sqlite_url(&target), &[]).expect_code(0);

    // Relative sqlite paths are relative to the working directory.
    let run = ferry_copy(dir.path(), "sqlite://app.db", "sqlite:relative.db", &[]);
    run.expect_code(0);
    assert_eq!(
        sqlite_rows(
            &dir.path().join("relative.db"),
            "SELECT count(*) FROM books"
        ),
        [[s("4")]]
    );
}

// ---------------------------------------------------------------------------------------------
// Passwords in a working URL

#[test]
fn a_password_in_a_working_url_is_printed_nowhere() {
    let (dir, source) = app_source();
    let pg = PgDb::new();
    let (url, password) = common::with_password(&pg.url, "SuperSecret123");
    let summary = dir.path().join("summary.json");
    let summary_path = path_str(&summary);
    let runs: [(&[&str], i32); 4] = [
        (
            &["copy", "--source", &source, "--target", &url, "--dry-run"],
            0,
        ),
        (&["copy", "--source", &source, "--target", &url], 0),
        (&["verify", "--source", &source, "--target", &url], 0),
        // A failure after connecting: the target is now non-empty.
        (&["copy", "--source", &source, "--target", &url], 2),
    ];
    for (args, code) in runs {
        let mut args: Vec<&str> = args.to_vec();
        args.extend(["--summary", &summary_path]);
        let run = ferry(dir.path(), &args);
        run.expect_code(code);
        assert_not_printed(&run, &summary, &password);
        let j = read_summary(&summary);
        assert!(
            j["target"].as_str().is_some_and(|t| t.contains(":***@")),
            "the summary names the target with the password hidden: {j:#}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The source is untouchable: a target that is the source under another spelling

/// `ferry copy --force --yes` from `source` into `target`: refused with exit code 2 and one
/// line naming both sides; returns that line.
#[track_caller]
fn refused_as_the_same_database(cwd: &Path, source: &str, target: &str) -> String {
    let run = ferry(
        cwd,
        &[
            "copy", "--source", source, "--target", target, "--force", "--yes",
        ],
    );
    run.expect_code(2);
    let line = assert_one_error_line(&run);
    assert!(line.contains("are the same database"), "{line}");
    line
}

#[test]
fn a_hard_or_symbolic_link_to_the_sqlite_source_is_refused_and_the_source_is_untouched() {
    let (dir, source) = app_source();
    let app = dir.path().join("app.db");
    let before = std::fs::read(&app).unwrap();
    std::fs::hard_link(&app, dir.path().join("hard.db")).unwrap();
    std::os::unix::fs::symlink(&app, dir.path().join("sym.db")).unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("hard.db"),
        dir.path().join("sym-to-hard.db"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();

    let line = refused_as_the_same_database(
        dir.path(),
        &source,
        &sqlite_url(&dir.path().join("hard.db")),
    );
    assert!(line.contains("hard.db is a hard link of"), "{line}");
    assert!(line.contains("inode"), "{line}");
    let line = refused_as_the_same_database(
        dir.path(),
        &source,
        &sqlite_url(&dir.path().join("sym-to-hard.db")),
    );
    assert!(line.contains("hard link"), "{line}");
    for alias in ["sym.db", "sub/../app.db"] {
        let line =
            refused_as_the_same_database(dir.path(), &source, &sqlite_url(&dir.path().join(alias)));
        assert!(line.contains("symbolic link or `..`"), "{line}");
    }
    // A link that leads nowhere yet, to where SQLite keeps the source's journal, would be
    // created there and read back into the source.
    std::os::unix::fs::symlink("sub/../app.db-journal", dir.path().join("dangling.db")).unwrap();
    let line = refused_as_the_same_database(
        dir.path(),
        &source,
        &sqlite_url(&dir.path().join("dangling.db")),
    );
    assert!(line.contains("companion file"), "{line}");
    assert!(!dir.path().join("app.db-journal").exists());
    // The other way round too: the alias as the source, the file as the target.
    refused_as_the_same_database(
        dir.path(),
        &sqlite_url(&dir.path().join("hard.db")),
        &source,
    );

    // ferry migrate writes through the same door.
    let spec = write_migrate_spec(
        &dir.path().join("move.toml"),
        &source,
        &sqlite_url(&dir.path().join("hard.db")),
        "",
    );
    let run = ferry(
        dir.path(),
        &[
            "migrate",
            "--spec",
            &path_str(&spec),
            "--metadata-only",
            "--force",
            "--yes",
        ],
    );
    run.expect_code(2);
    run.expect_stderr("hard link");

    assert!(
        std::fs::read(&app).unwrap() == before,
        "the source file changed"
    );
    assert_eq!(sqlite_rows(&app, "SELECT count(*) FROM books"), [[s("4")]]);
}

#[test]
fn the_same_postgres_database_under_another_spelling_is_refused() {
    let db = PgDb::new();
    db.query(
        "CREATE TABLE t (id int PRIMARY KEY, v text); \
         INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 50) g; \
         CREATE SCHEMA other",
    );
    let rows = || db.query("SELECT id::text, v FROM t ORDER BY id");
    let before = rows();
    let aliases = common::other_spellings(&db.url);
    let cwd = TempDir::new().unwrap();
    for alias in &aliases {
        let line = refused_as_the_same_database(cwd.path(), &db.url, alias);
        assert!(line.contains("system identifier"), "{line}");
        assert!(
            line.contains(&format!("database \"{}\"", db.name)),
            "{line}"
        );
        assert!(line.contains("schema \"public\""), "{line}");
        assert_eq!(rows(), before, "the source changed");
    }
    // Another schema of the same database is another place: allowed.
    let target = format!("{}?schema=other", aliases[0]);
    ferry(
        cwd.path(),
        &["copy", "--source", &db.url, "--target", &target],
    )
    .expect_code(0);
    assert_eq!(
        db.query("SELECT id::text, v FROM other.t ORDER BY id"),
        before
    );
    assert_eq!(rows(), before);
}

/// A private primary and its standby, started from the installed PostgreSQL binaries (as the
/// `postgres` OS user when run as root) and stopped and removed when dropped.
struct Standby {
    dir: TempDir,
    bin: std::path::PathBuf,
    url: String,
}

impl Standby {
    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let mut cmd = if unsafe { libc::geteuid() } == 0 {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            std::process::Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("pg_basebackup").exists())
            .max()
            .expect("initdb, pg_ctl and pg_basebackup in /usr/lib/postgresql/*/bin");
        let dir = tempfile::Builder::new()
            .prefix("ferry-standby")
            .tempdir_in("/tmp")
            .unwrap();
        if unsafe { libc::geteuid() } == 0 {
            let status = std::process::Command::new("chown")
                .args(["postgres:", &path_str(dir.path())])
                .status()
                .unwrap();
            assert!(status.success(), "chown the standby folder to postgres");
        }
        let mut me = Self {
            dir,
            bin,
            url: String::new(),
        };
        let d = path_str(me.dir.path());
        let (primary, standby) = (format!("{d}/primary"), format!("{d}/standby"));
        me.run(
            "initdb",
            &[
                "-D",
                &primary,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        let options =
            |port: u16| format!("-c listen_addresses=127.0.0.1 -p {port} -k {d} -c fsync=off");
        let p1 = ferry_testkit::free_port();
        me.run(
            "pg_ctl",
            &[
                "start",
                "-D",
                &primary,
                "-w",
                "-t",
                "60",
                "-l",
                &format!("{d}/primary.log"),
                "-o",
                &options(p1),
            ],
        );
        me.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &p1.to_string(),
                "-U",
                "postgres",
                "-D",
                &standby,
                "-R",
            ],
        );
        let p2 = ferry_testkit::free_port();
        me.run(
            "pg_ctl",
            &[
                "start",
                "-D",
                &standby,
                "-w",
                "-t",
                "60",
                "-l",
                &format!("{d}/standby.log"),
                "-o",
                &options(p2),
            ],
        );
        me.url = format!("postgres://postgres@127.0.0.1:{p2}/postgres");
        me
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let d = path_str(self.dir.path());
        for data in ["standby", "primary"] {
            let data = format!("{d}/{data}");
            if Path::new(&data).join("postmaster.pid").exists() {
                self.run("pg_ctl", &["stop", "-D", &data, "-m", "immediate"]);
            }
        }
    }
}

#[test]
fn a_postgres_standby_target_is_refused_as_read_only() {
    let standby = Standby::start();
    assert_eq!(
        common::pg_try_query(&standby.url, "SELECT pg_is_in_recovery()").unwrap(),
        [[s("t")]]
    );
    let (dir, source) = app_source();
    for extra in [&[][..], &["--force", "--yes"][..], &["--dry-run"][..]] {
        let mut args = vec!["copy", "--source", &source, "--target", &standby.url];
        args.extend_from_slice(extra);
        let run = ferry(dir.path(), &args);
        run.expect_code(2);
        let line = assert_one_error_line(&run);
        assert!(line.contains("standby (a read-only replica"), "{line}");
    }
}
