//! Black-box: the final report of a real `ferry copy` (not only `--dry-run`) names every change
//! it made, on the terminal, as JSON log events (`--log-format json`) and in the summary.

mod common;

use common::*;

const INVENTORY: &str = "
    CREATE TABLE products (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, qty INTEGER, price NUMERIC(8,2));
    CREATE VIEW in_stock AS SELECT * FROM products WHERE qty > 0;
    INSERT INTO products (name, qty, price) VALUES ('bolt', 120, 0.25), ('nut', 'lots', 0.1), ('gear', 7, 12);
";

const QTY_NOTE: &str =
    "products.qty: declared INTEGER but holds 2 integers, 1 texts: copied as text";

#[test]
fn a_real_copy_prints_its_changes_in_text_json_logs_and_the_summary() {
    let (dir, source) = temp_sqlite("inventory.db", INVENTORY);
    let pg = PgDb::new();
    let summary = dir.path().join("summary.json");
    let run = ferry(
        dir.path(),
        &[
            "copy",
            "--source",
            &sqlite_url(&source),
            "--target",
            &pg.url,
            "--summary",
            &summary.display().to_string(),
        ],
    );
    run.expect_code(0);
    assert!(
        run.stderr.contains(&format!("lossy: {QTY_NOTE}"))
            && run.stderr.contains("not copied: view in_stock:"),
        "{}",
        run.show()
    );
    let j = read_summary(&summary);
    assert_eq!(j["lossy"][0], QTY_NOTE);
    assert_eq!(j["not_copied"][0]["name"], "in_stock");

    // Each change is a structured event of the JSON log.
    let pg2 = PgDb::new();
    let run = ferry(
        dir.path(),
        &[
            "--log-format",
            "json",
            "copy",
            "--source",
            &sqlite_url(&source),
            "--target",
            &pg2.url,
        ],
    );
    run.expect_code(0);
    let events: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let change = |kind: &str| {
        events
            .iter()
            .filter(|e| e["fields"]["change"] == kind)
            .map(|e| {
                e["fields"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(change("lossy"), [QTY_NOTE], "{}", run.show());
    assert_eq!(change("not_copied").len(), 1, "{}", run.show());
}

/// `--strict` refuses the same copy into PostgreSQL before writing: exit 2, every change
/// named, the target left without a single table. Between two SQLite files nothing changes
/// (values pass through, the view is recreated), so strict mode lets it run.
#[test]
fn strict_refuses_a_copy_with_changes_before_writing() {
    let (dir, source) = temp_sqlite("inventory.db", INVENTORY);
    let pg = PgDb::new();
    let strict = |to: &str| {
        ferry(
            dir.path(),
            &[
                "copy",
                "--strict",
                "--source",
                &sqlite_url(&source),
                "--target",
                to,
            ],
        )
    };
    let run = strict(&pg.url);
    run.expect_code(2);
    assert!(
        run.stderr.contains("strict mode refuses")
            && run.stderr.contains(QTY_NOTE)
            && run.stderr.contains("view in_stock"),
        "{}",
        run.show()
    );
    assert!(pg.tables().is_empty(), "nothing written: {:?}", pg.tables());

    let run = strict(&sqlite_url(&dir.path().join("copy.db")));
    run.expect_code(0);
    run.expect_stderr("recreated: view in_stock");
}
