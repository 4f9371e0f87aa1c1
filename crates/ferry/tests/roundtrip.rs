//! Round-trip property tests of the type mapping through a real PostgreSQL: random values of
//! every SQLite storage class, copied and read back through verification, must match exactly;
//! and copied back into SQLite, every column keeps its declared type and every value its
//! storage class (`typeof`) and bytes.

mod common;

use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Row {
    int: i64,
    real: f64,
    text: String,
    blob: Vec<u8>,
    flag: bool,
    at: i64,
    /// Cents of a `NUMERIC(10,2)` amount (integral amounts are stored as INTEGER by SQLite).
    cents: i64,
}

fn rows() -> impl Strategy<Value = Vec<Row>> {
    let row = (
        any::<i64>(),
        any::<f64>().prop_filter("SQLite stores NaN as NULL", |f| !f.is_nan()),
        "\\PC{0,40}".prop_filter("PostgreSQL text cannot hold NUL", |s: &String| {
            !s.contains('\0')
        }),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
        -30_000_000_000i64..250_000_000_000i64,
        -9_999_999_999i64..=9_999_999_999i64,
    )
        .prop_map(|(int, real, text, blob, flag, at, cents)| Row {
            int,
            real,
            text,
            blob,
            flag,
            at,
            cents,
        });
    proptest::collection::vec(row, 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn sqlite_values_survive_postgres(rows in rows()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.db");
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(TABLE).unwrap();
            for (id, r) in rows.iter().enumerate() {
                let at = chrono::DateTime::from_timestamp(r.at, 0).unwrap().naive_utc();
                conn.execute(
                    "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    rusqlite::params![
                        id as i64, r.int, r.real, r.text, r.blob, r.flag as i64,
                        at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        r.cents as f64 / 100.0,
                        at.format("%Y-%m-%d").to_string()
                    ],
                ).unwrap();
            }
            drop(conn);
            let (db, report) = copied_to_new::<TestDb>(&sqlite(&path), dir.path()).await;
            assert!(report.lossy.is_empty(), "{:?}", report.lossy);
            let pg = db.client().await;
            let back = pg_query(&pg, "SELECT i, r, s, b, f FROM t ORDER BY id").await;
            for (row, r) in back.iter().zip(&rows) {
                assert_eq!(row.get::<_, i64>(0), r.int);
                // SQLite itself stores -0.0 as 0 (an integral real is kept as an integer).
                let expected = if r.real == 0.0 { 0.0f64 } else { r.real };
                assert_eq!(row.get::<_, f64>(1).to_bits(), expected.to_bits());
                assert_eq!(row.get::<_, String>(2), r.text);
                assert_eq!(row.get::<_, Vec<u8>>(3), r.blob);
                assert_eq!(row.get::<_, bool>(4), r.flag);
            }

            // And back into SQLite: the declared types and storage classes the source had.
            let back = dir.path().join("back.db");
            let report = copied(&db.locator(), &sqlite(&back), dir.path()).await;
            assert!(report.lossy.is_empty(), "{:?}", report.lossy);
            assert_eq!(declared_types(&back), declared_types(&path));
            assert_eq!(classes_and_values(&back), classes_and_values(&path));
        });
    }
}

const TABLE: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, f BOOLEAN, \
    at DATETIME, amount NUMERIC(10,2), day DATE)";

fn declared_types(path: &std::path::Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, type FROM pragma_table_info('t')")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every value as `typeof:quote`, row by row.
fn classes_and_values(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let cols: Vec<String> = declared_types(path).into_iter().map(|(n, _)| n).collect();
    let exprs: Vec<String> = cols
        .iter()
        .map(|c| format!("typeof({c}) || ':' || quote({c})"))
        .collect();
    sqlite_column(
        &conn,
        &format!("SELECT {} FROM t ORDER BY id", exprs.join(" || ' ' || ")),
        0,
    )
}
