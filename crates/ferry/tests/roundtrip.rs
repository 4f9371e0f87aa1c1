//! Round-trip property tests of the type mapping through a real PostgreSQL: random values of
//! every SQLite storage class, copied and read back through verification, must match exactly.

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
    )
        .prop_map(|(int, real, text, blob, flag, at)| Row {
            int,
            real,
            text,
            blob,
            flag,
            at,
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
            conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, f BOOLEAN, at DATETIME)").unwrap();
            for (id, r) in rows.iter().enumerate() {
                let at = chrono::DateTime::from_timestamp(r.at, 0).unwrap().naive_utc().format("%Y-%m-%d %H:%M:%S").to_string();
                conn.execute(
                    "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    rusqlite::params![id as i64, r.int, r.real, r.text, r.blob, r.flag as i64, at],
                ).unwrap();
            }
            drop(conn);
            let db = TestDb::new().await;
            let report = ferry::copy(&sqlite(&path), &db.locator(), &options(dir.path()), &context(false)).await.unwrap();
            assert_eq!(report.exit_code(), 0, "{}", report.render());
            assert!(report.lossy.is_empty(), "{:?}", report.lossy);
            let pg = db.client().await;
            let back = pg.query("SELECT i, r, s, b, f FROM t ORDER BY id", &[]).await.unwrap();
            for (row, r) in back.iter().zip(&rows) {
                assert_eq!(row.get::<_, i64>(0), r.int);
                // SQLite itself stores -0.0 as 0 (an integral real is kept as an integer).
                let expected = if r.real == 0.0 { 0.0f64 } else { r.real };
                assert_eq!(row.get::<_, f64>(1).to_bits(), expected.to_bits());
                assert_eq!(row.get::<_, String>(2), r.text);
                assert_eq!(row.get::<_, Vec<u8>>(3), r.blob);
                assert_eq!(row.get::<_, bool>(4), r.flag);
            }
        });
    }
}
