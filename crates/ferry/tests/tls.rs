//! TLS and passwords against private servers that demand them (TLS-only TCP, users with
//! passwords), started by each test and removed when it ends: libpq's sslmode/sslrootcert and
//! MySQL's ssl-mode/ssl-ca, PGPASSWORD/.pgpass and MYSQL_PWD, Unix sockets.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_mentions, context, options, pg_value, sqlite};
use ferry_testkit::certs::Certs;
use ferry_testkit::mysql::PrivateMariadb;
use ferry_testkit::pg::PrivatePg;

const PASSWORD: &str = "tls:Secret-1";
/// The password in a URL that carries one.
const PW: Option<&str> = Some(PASSWORD);

fn small_sqlite(dir: &Path) -> PathBuf {
    let path = dir.join("small.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO items (name) VALUES ('one'), ('two'), ('three');",
    )
    .unwrap();
    path
}

/// A private server made by `start` with fresh certificates (user `ferry_tls`, [`PASSWORD`]):
/// the temp dir holding them, the server, the CA that signed its certificate and another CA.
fn private_server<S>(start: fn(&Certs, &str, &str) -> S) -> (tempfile::TempDir, S, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::generate(dir.path());
    let server = start(&certs, "ferry_tls", PASSWORD);
    let (ca, other) = (certs.ca.display(), certs.other_ca.display());
    (dir, server, ca.to_string(), other.to_string())
}

/// Copies the three-row SQLite table into `url` with `ferry::copy` (a real run, over whatever
/// TLS the URL asks for) and checks every row arrived.
async fn copy_three_rows(dir: &Path, url: &str, what: &str) {
    let src = small_sqlite(dir);
    let report = ferry::copy(&sqlite(&src), &locator(url), &options(dir), &context(false))
        .await
        .unwrap_or_else(|e| panic!("copy over {what}: {e}"));
    assert_eq!(report.stats["items"].migrated, 3, "{report:?}");
}

fn locator(url: &str) -> ferry::Locator {
    ferry::parse_locator(url).unwrap()
}

/// `err` is the refusal of `server` at 127.0.0.1:`port` whose certificate the CA file `ca`,
/// given as `param` (libpq's sslrootcert, MySQL's ssl-ca), did not sign.
fn assert_wrong_ca(err: &str, server: &str, port: u16, param: &str, ca: &str) {
    assert!(
        err.starts_with(&format!(
            "TLS handshake with {server} at 127.0.0.1:{port} failed: certificate not signed by the CA in {param} {ca}"
        )),
        "{err}"
    );
}

/// Sets or clears an environment variable. Sound here: nextest runs each test in its own
/// process, and no other thread of this test reads the environment at the same time.
fn set_env(key: &str, value: Option<&str>) {
    unsafe {
        match value {
            Some(v) => std::env::set_var(key, v),
            None => std::env::remove_var(key),
        }
    }
}

async fn pg_open(url: &str) -> ferry::Result<tokio_postgres::Client> {
    let endpoint = ferry_postgres::connect::endpoint(&locator(url))?;
    ferry_postgres::connect::open(&endpoint).await
}

async fn pg_refused(url: &str) -> String {
    refused(pg_open(url).await, url)
}

/// Connects and proves the session is encrypted (or not, over the Unix socket).
async fn pg_ssl(url: &str) -> bool {
    let client = pg_open(url)
        .await
        .unwrap_or_else(|e| panic!("{url} should connect: {e}"));
    pg_value(
        &client,
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .await
}

/// The one-line error of a connection to `url` that must fail.
fn refused<T>(opened: ferry::Result<T>, url: &str) -> String {
    let err = opened
        .err()
        .unwrap_or_else(|| panic!("{url} should be refused"))
        .to_string();
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(!err.contains(PASSWORD), "never the password: {err}");
    err
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_tls_modes_and_passwords() {
    let (dir, pg, ca, other) = private_server(PrivatePg::start);
    let port = pg.port;
    set_env("PGPASSWORD", None);
    set_env(
        "PGPASSFILE",
        Some(&dir.path().join("none").display().to_string()),
    );

    // verify-full with the right CA: a real copy into the server.
    let verify_full = format!("sslmode=verify-full&sslrootcert={ca}");
    let full = pg.url("127.0.0.1", PW, &verify_full);
    copy_three_rows(dir.path(), &full, "verify-full TLS").await;
    let client = pg_open(&full).await.unwrap();
    let n: i64 = pg_value(&client, "SELECT count(*) FROM items").await;
    assert_eq!(n, 3);
    assert!(pg_ssl(&full).await);
    assert!(pg_ssl(&pg.url("localhost", PW, &verify_full)).await);

    // The wrong CA is refused, naming TLS and the file; so is require with a CA (libpq checks
    // the chain then).
    let err = pg_refused(&pg.url(
        "127.0.0.1",
        PW,
        &format!("sslmode=verify-full&sslrootcert={other}"),
    ))
    .await;
    assert_wrong_ca(&err, "PostgreSQL", port, "sslrootcert", &other);
    let err = pg_refused(&pg.url(
        "127.0.0.1",
        PW,
        &format!("sslmode=require&sslrootcert={other}"),
    ))
    .await;
    assert!(err.starts_with("TLS handshake"), "{err}");

    // A name the certificate does not list: verify-full refuses, verify-ca accepts.
    let elsewhere = |mode: &str| {
        pg.url(
            "not-in-the-cert.test",
            PW,
            &format!("sslmode={mode}&sslrootcert={ca}&hostaddr=127.0.0.1"),
        )
    };
    let err = pg_refused(&elsewhere("verify-full")).await;
    assert_mentions(
        &err,
        &["TLS handshake", "not valid for \"not-in-the-cert.test\""],
    );
    assert!(pg_ssl(&elsewhere("verify-ca")).await);

    // require without a CA encrypts without checking; prefer (the default) encrypts too.
    assert!(pg_ssl(&pg.url("127.0.0.1", PW, "sslmode=require")).await);
    assert!(pg_ssl(&pg.url("127.0.0.1", PW, "")).await);
    // verify-full without a CA is an input error before any connection.
    let err = pg_refused(&pg.url("127.0.0.1", PW, "sslmode=verify-full")).await;
    assert_mentions(&err, &["add sslrootcert="]);

    // The server takes TCP only over TLS.
    let err = pg_refused(&pg.url("127.0.0.1", PW, "sslmode=disable")).await;
    assert_mentions(
        &err,
        &[&format!(
            "PostgreSQL at 127.0.0.1:{port} accepts only TLS connections"
        )],
    );

    // Passwords from the environment: PGPASSWORD, then the password file (0600 only).
    let no_pw = pg.url("127.0.0.1", None, &verify_full);
    let err = pg_refused(&no_pw).await;
    assert_mentions(&err, &["asks for a password"]);
    set_env("PGPASSWORD", Some(PASSWORD));
    assert!(pg_ssl(&no_pw).await);
    set_env("PGPASSWORD", Some("wrong"));
    let err = pg_refused(&no_pw).await;
    assert_mentions(&err, &["refused user \"ferry_tls\""]);
    set_env("PGPASSWORD", None);
    let pgpass = dir.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!("# ferry test\nother:*:*:*:nope\n127.0.0.1:{port}:*:ferry_tls:tls\\:Secret-1\n"),
    )
    .unwrap();
    set_env("PGPASSFILE", Some(&pgpass.display().to_string()));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(pg_ssl(&no_pw).await);
    // Readable by others: ignored, as libpq does.
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = pg_refused(&no_pw).await;
    assert_mentions(&err, &["asks for a password"]);

    // The Unix socket (no TLS there, whatever sslmode says), password required too: as an
    // encoded host with the password in the URL, or as ?host= with PGPASSWORD.
    let socket_dir = pg.socket_dir.display().to_string();
    let socket = format!(
        "postgres://ferry_tls:tls%3ASecret-1@{}:{port}/ferry_tls?sslmode=verify-full&sslrootcert={ca}",
        socket_dir.replace('/', "%2F")
    );
    assert!(!pg_ssl(&socket).await);
    let socket = format!("postgres:///ferry_tls?host={socket_dir}&port={port}&user=ferry_tls");
    let err = pg_refused(&socket).await;
    assert_mentions(&err, &["asks for a password"]);
    set_env("PGPASSWORD", Some(PASSWORD));
    assert!(!pg_ssl(&socket).await);
}

async fn my_open(url: &str) -> ferry::Result<mysql_async::Conn> {
    ferry_mysql::connect::open(url).await
}

async fn my_refused(url: &str) -> String {
    refused(my_open(url).await, url)
}

/// Connects and returns the session's TLS cipher ("" when not encrypted).
async fn my_cipher(url: &str) -> String {
    use mysql_async::prelude::Queryable;
    let mut conn = my_open(url)
        .await
        .unwrap_or_else(|e| panic!("{url} should connect: {e}"));
    let row: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .unwrap();
    let _ = conn.disconnect().await;
    row.map(|r| r.1).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_tls_modes_and_passwords() {
    let (dir, my, ca, other) = private_server(PrivateMariadb::start);
    let port = my.port;
    set_env("MYSQL_PWD", None);

    // VERIFY_IDENTITY with the right CA: a real copy into the server.
    let verify_identity = format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}");
    let full = my.url("127.0.0.1", PW, &verify_identity);
    copy_three_rows(dir.path(), &full, "VERIFY_IDENTITY TLS").await;
    assert!(!my_cipher(&full).await.is_empty());
    assert!(
        !my_cipher(&my.url(
            "localhost",
            PW,
            &format!("ssl-mode=verify_identity&ssl-ca={ca}")
        ))
        .await
        .is_empty()
    );

    // The wrong CA is refused, naming TLS and the file.
    let err = my_refused(&my.url(
        "127.0.0.1",
        PW,
        &format!("ssl-mode=VERIFY_CA&ssl-ca={other}"),
    ))
    .await;
    assert_wrong_ca(&err, "MySQL", port, "ssl-ca", &other);
    // REQUIRED encrypts without checking; PREFERRED (the default) encrypts when it can.
    assert!(
        !my_cipher(&my.url("127.0.0.1", PW, "ssl-mode=REQUIRED"))
            .await
            .is_empty()
    );
    assert!(!my_cipher(&my.url("127.0.0.1", PW, "")).await.is_empty());

    // The server takes TCP only over TLS (MariaDB says "access denied" then).
    let err = my_refused(&my.url("127.0.0.1", PW, "ssl-mode=DISABLED")).await;
    assert_mentions(
        &err,
        &[
            &format!("MySQL at 127.0.0.1:{port} refused user"),
            "remove ssl-mode=DISABLED if the server accepts only TLS",
        ],
    );

    // MYSQL_PWD when the URL has no password.
    let no_pw = my.url("127.0.0.1", None, &verify_identity);
    let err = my_refused(&no_pw).await;
    assert_mentions(&err, &["refused user \"ferry_tls\""]);
    set_env("MYSQL_PWD", Some(PASSWORD));
    assert!(!my_cipher(&no_pw).await.is_empty());
    set_env("MYSQL_PWD", Some("wrong"));
    let err = my_refused(&no_pw).await;
    assert_mentions(&err, &["refused user \"ferry_tls\""]);
    set_env("MYSQL_PWD", None);

    // The Unix socket.
    let socket = my.url("localhost", PW, &format!("socket={}", my.socket.display()));
    my_cipher(&socket).await;
    let err = my_refused(&my.url(
        "localhost",
        Some("wrong"),
        &format!("socket={}", my.socket.display()),
    ))
    .await;
    assert_mentions(&err, &[&format!("MySQL at {}", my.socket.display())]);
}
