//! ferry-blobs against real storage: the local file system and a real S3-compatible server
//! (SeaweedFS, see crates/ferry-testkit/src/s3.rs). Each test owns its temp folders and S3 prefix.

mod common;

use std::sync::Arc;

use common::{
    assert_any_line, assert_mentions, bytes, read_tree, s3, temp_tree, unique, write_tree,
};
use ferry_blobs::{Context, CopyOptions, Manifest, Status, Store, VerifyOptions, copy, verify};

fn store(text: &str) -> Store {
    Store::parse(text).unwrap()
}

fn local(dir: &std::path::Path) -> Store {
    store(&format!("file://{}", dir.display()))
}

/// Awkward names: spaces, unicode, nested folders, a zero-byte file, one multipart-sized file.
fn awkward_tree() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("a.txt", bytes(1, 10)),
        ("with space/file name.bin", bytes(2, 5000)),
        ("ünïcödé/日本語 ファイル.dat", bytes(3, 70_000)),
        ("deep/er/and/deeper/x.json", bytes(4, 3)),
        ("empty", Vec::new()),
        ("plus+and&amp;percent%20.txt", bytes(5, 123)),
        ("large/multipart.bin", bytes(6, 20 * 1024 * 1024 + 7)),
    ]
}

fn stats(r: &ferry_blobs::Report) -> &ferry_core::report::TableStats {
    r.stats.get("media").expect("media stats")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_to_s3_to_local_round_trip_is_byte_identical_and_rerun_copies_nothing() {
    let s3 = s3();
    let src = tempfile::tempdir().unwrap();
    let back = tempfile::tempdir().unwrap();
    let files = awkward_tree();
    write_tree(src.path(), &files);
    let remote = store(&s3.locator(&unique("roundtrip")));
    let ctx = Context::default();
    let opts = CopyOptions::default();

    let r = copy_all(&local(src.path()), &remote, &opts, &ctx)
        .await
        .unwrap();
    assert_eq!(r.exit_code(), 0, "{}", r.to_json());
    let s = stats(&r);
    assert_eq!((s.total, s.migrated, s.skipped, s.failed), (7, 7, 0, 0));
    let total: u64 = files.iter().map(|(_, c)| c.len() as u64).sum();
    assert_eq!(s.bytes, total, "bytes moved, not metadata");

    let r = copy_all(&remote, &local(back.path()), &opts, &ctx)
        .await
        .unwrap();
    assert_eq!(r.exit_code(), 0, "{}", r.to_json());
    let mut expected: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(k, c)| (k.to_string(), c.clone()))
        .collect();
    expected.sort();
    assert!(read_tree(back.path()) == expected, "every byte comes back");

    // A re-run copies nothing and says so.
    let r = copy_all(&local(src.path()), &remote, &opts, &ctx)
        .await
        .unwrap();
    let s = stats(&r);
    assert_eq!(
        (s.migrated, s.skipped, s.bytes),
        (0, 7, 0),
        "{}",
        r.to_json()
    );

    let v = verify_listed(&local(src.path()), &remote, &ctx).await;
    assert_eq!(v.exit_code(), 0, "{}", v.to_json());
    assert!(v.verify["media"].checksum_match);
    assert!(
        !r.to_json().contains(&s3.secret_key),
        "no credential in the summary"
    );
}

/// Sets a file's modification time (keeping its content), as a tool that touches files would.
fn set_mtime(path: &std::path::Path, t: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Reruns into S3 decide from the record ferry stores on each object at upload (the source's
/// size and modification time, and the content's BLAKE3): the same size and time skip without
/// reading a byte of either side (as rclone's default check does); a touched file with the
/// same content is hashed on the source side only and skipped; new content is copied again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reruns_to_s3_decide_from_the_recorded_size_time_and_hash() {
    let s3 = s3();
    let src = tempfile::tempdir().unwrap();
    let back = tempfile::tempdir().unwrap();
    write_tree(
        src.path(),
        &[
            ("kept.bin", bytes(1, 9000)),
            ("touched.bin", bytes(2, 9000)),
            ("changed.bin", bytes(3, 9000)),
            ("big/multipart.bin", bytes(4, 9 * 1024 * 1024 + 3)),
        ],
    );
    let remote = store(&s3.locator(&unique("stamp")));
    let ctx = Context::default();
    let r = copy_listed(&local(src.path()), &remote, &ctx).await;
    assert_eq!(
        (stats(&r).migrated, stats(&r).failed),
        (4, 0),
        "{}",
        r.to_json()
    );

    // The same size and time as recorded: trusted without reading. Proven by rewriting the
    // content behind an unchanged time: the old object stays.
    let kept = src.path().join("kept.bin");
    let kept_time = std::fs::metadata(&kept).unwrap().modified().unwrap();
    std::fs::write(&kept, bytes(9, 9000)).unwrap();
    set_mtime(&kept, kept_time);
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    set_mtime(&src.path().join("touched.bin"), later);
    set_mtime(&src.path().join("big/multipart.bin"), later);
    let changed = src.path().join("changed.bin");
    std::fs::write(&changed, bytes(5, 9000)).unwrap();
    set_mtime(&changed, later);

    for round in 0..2 {
        let r = copy_listed(&local(src.path()), &remote, &ctx).await;
        let s = stats(&r);
        let copied = if round == 0 { 1 } else { 0 };
        assert_eq!(
            (s.migrated, s.skipped, s.failed, s.bytes),
            (copied, 4 - copied, 0, 9000 * copied),
            "round {round}: {}",
            r.to_json()
        );
    }
    // --read-back reads the new object back on top of the server's part checks.
    std::fs::write(src.path().join("new.bin"), bytes(6, 70_000)).unwrap();
    let read_back = CopyOptions {
        read_back: true,
        ..CopyOptions::default()
    };
    let r = copy_all(&local(src.path()), &remote, &read_back, &ctx)
        .await
        .unwrap();
    assert_eq!(
        (stats(&r).migrated, stats(&r).skipped, stats(&r).failed),
        (1, 4, 0),
        "{}",
        r.to_json()
    );
    let r = copy_listed(&remote, &local(back.path()), &ctx).await;
    assert_eq!(r.exit_code(), 0, "{}", r.to_json());
    let got: std::collections::BTreeMap<String, Vec<u8>> =
        read_tree(back.path()).into_iter().collect();
    assert!(
        got["kept.bin"] == bytes(1, 9000),
        "trusted by size and time"
    );
    assert!(got["changed.bin"] == bytes(5, 9000), "new content copied");
    assert!(got["touched.bin"] == bytes(2, 9000));
    assert!(got["big/multipart.bin"] == bytes(4, 9 * 1024 * 1024 + 3));
    assert!(got["new.bin"] == bytes(6, 70_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing() {
    let s3 = s3();
    let src = temp_tree(&[("x/1", bytes(7, 100)), ("2", bytes(8, 200))]);
    let ctx = Context::default();
    let opts = CopyOptions {
        dry_run: true,
        ..CopyOptions::default()
    };
    let absent = tempfile::tempdir().unwrap().path().join("not-yet");
    let r = copy_all(&local(src.path()), &local(&absent), &opts, &ctx)
        .await
        .unwrap();
    assert!(!absent.exists(), "a dry run creates no folder");
    assert_eq!(stats(&r).migrated, 0);
    assert_any_line(&r.warnings, |w| {
        w.contains("2 files (300 B) would be copied")
    });

    let prefix = unique("dry");
    let remote = store(&s3.locator(&prefix));
    copy_all(&local(src.path()), &remote, &opts, &ctx)
        .await
        .unwrap();
    // Listing the prefix through a real copy's manifest: nothing is there.
    let back = tempfile::tempdir().unwrap();
    let r = copy_listed(&remote, &local(back.path()), &ctx).await;
    assert_eq!(stats(&r).total, 0, "the dry run wrote nothing to S3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_manifest_copies_named_files_and_reports_a_missing_one() {
    let src = temp_tree(&[
        ("10/1", bytes(9, 50)),
        ("10/2", bytes(10, 60)),
        ("11/3", bytes(11, 70)),
    ]);
    let dst = tempfile::tempdir().unwrap();
    let db = src.path().join("app.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE files(id INTEGER PRIMARY KEY, upload_id INTEGER, status TEXT);
         INSERT INTO files VALUES (1, 10, 'uploaded'), (2, 10, 'removed'), (3, 11, 'pending'),
                                  (4, 12, 'uploaded');",
    )
    .unwrap();
    drop(conn);
    let manifest = Manifest::Sql {
        db: ferry::open_query_source(&format!("sqlite://{}", db.display()))
            .await
            .unwrap(),
        sql: "SELECT upload_id || '/' || id FROM files WHERE status IN ('uploaded','removed')"
            .into(),
    };
    let opts = CopyOptions {
        ignore_errors: true,
        workers: Some(2),
        ..CopyOptions::default()
    };
    let r = copy_between(src.path(), dst.path(), &manifest, &opts).await;
    let s = stats(&r);
    assert_eq!(
        (s.total, s.migrated, s.failed),
        (3, 2, 1),
        "{}",
        r.to_json()
    );
    assert!(
        s.errors[0].contains("12/4") && s.errors[0].contains("missing"),
        "{:?}",
        s.errors
    );
    assert_eq!(r.exit_code(), 1, "never exit 0 when a file failed");
    assert_eq!(r.status, Status::Completed);
    assert!(
        !dst.path().join("11/3").exists(),
        "only what the query names"
    );

    // Without --ignore-errors the failure stops the run, and the status says so.
    let opts = CopyOptions {
        workers: Some(1),
        ..CopyOptions::default()
    };
    let r = copy_between(src.path(), dst.path(), &manifest, &opts).await;
    assert_eq!(r.status, Status::Failed);
    assert!(r.error.as_deref().unwrap().contains("12/4"));
    assert_eq!(r.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_a_changed_missing_and_extra_file_and_deletes_extras_when_asked() {
    let s3 = s3();
    let src = temp_tree(&[
        ("a", bytes(12, 1000)),
        ("b/c", bytes(13, 2000)),
        ("d", bytes(14, 10)),
    ]);
    let remote = store(&s3.locator(&unique("verify")));
    let ctx = Context::default();
    copy_listed(&local(src.path()), &remote, &ctx).await;
    // Change the source side instead of reaching into S3 by hand: same size, other bytes.
    std::fs::write(src.path().join("a"), bytes(99, 1000)).unwrap();
    std::fs::write(src.path().join("new"), b"only at the source").unwrap();
    // An extra object at the target, written through a local → S3 copy of another tree.
    let other = temp_tree(&[("zz-extra", b"extra".to_vec())]);
    copy_listed(&local(other.path()), &remote, &ctx).await;

    let v = verify_listed(&local(src.path()), &remote, &ctx).await;
    let t = &v.verify["media"];
    assert!(!t.checksum_match);
    assert_eq!(t.different_keys.len(), 1, "{}", v.to_json());
    assert!(t.different_keys[0].starts_with("a "));
    assert_eq!(t.missing_keys, vec!["new".to_string()]);
    assert_eq!(t.extra_keys, vec!["zz-extra".to_string()]);
    assert_eq!(v.exit_code(), 1);

    // --delete-extra refuses without confirmation, and deletes with it.
    let del = VerifyOptions {
        delete_extra: true,
        ..VerifyOptions::default()
    };
    let e = verify_all(&local(src.path()), &remote, &del, &ctx)
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    let yes = Context {
        confirm: Arc::new(ferry_core::progress::Answer(true)),
        ..Context::default()
    };
    let v = verify_all(&local(src.path()), &remote, &del, &yes)
        .await
        .unwrap();
    assert!(v.verify["media"].extra_keys.is_empty(), "{}", v.to_json());

    // Copy repairs the rest; verify then passes.
    copy_listed(&local(src.path()), &remote, &ctx).await;
    let v = verify_listed(&local(src.path()), &remote, &ctx).await;
    assert_eq!(v.exit_code(), 0, "{}", v.to_json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_resumed_copies_only_the_rest() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let files: Vec<(String, Vec<u8>)> = (0..200)
        .map(|i| (format!("f/{i:03}"), bytes(i, 4096)))
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    write_tree(src.path(), &refs);

    // Cancel once 50 files are done (the observer sees each file as it finishes).
    struct CancelAfter(
        std::sync::atomic::AtomicU64,
        tokio_util::sync::CancellationToken,
    );
    impl ferry_blobs::BlobObserver for CancelAfter {
        fn event(&self, e: &ferry_blobs::BlobEvent) {
            if let ferry_blobs::BlobEvent::File { .. } = e
                && self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 50
            {
                self.1.cancel();
            }
        }
    }
    let cancel = tokio_util::sync::CancellationToken::new();
    let ctx = Context {
        observer: Arc::new(CancelAfter(0.into(), cancel.clone())),
        cancel,
        ..Context::default()
    };
    let opts = CopyOptions {
        workers: Some(2),
        ..CopyOptions::default()
    };
    let r = copy_all(&local(src.path()), &local(dst.path()), &opts, &ctx)
        .await
        .unwrap();
    assert_eq!(r.status, Status::Cancelled);
    let first = stats(&r).migrated;
    assert!((50..=52).contains(&first), "{first}");

    let r = copy_listed(&local(src.path()), &local(dst.path()), &Context::default()).await;
    let s = stats(&r);
    assert_eq!(
        (s.skipped, s.migrated),
        (first, 200 - first),
        "{}",
        r.to_json()
    );
    assert_eq!(read_tree(dst.path()), read_tree(src.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_file_goes_to_s3_and_back_in_bounded_memory() {
    let s3 = s3();
    let src = tempfile::tempdir().unwrap();
    let back = tempfile::tempdir().unwrap();
    let big = bytes(42, 100 * 1024 * 1024);
    write_tree(src.path(), &[("big/100mb.bin", big.clone())]);
    drop(big);
    let remote = store(&s3.locator(&unique("big")));
    let ctx = Context::default();
    let r = copy_listed(&local(src.path()), &remote, &ctx).await;
    assert_eq!(r.exit_code(), 0, "{}", r.to_json());
    assert_eq!(stats(&r).bytes, 100 * 1024 * 1024);
    let r = copy_listed(&remote, &local(back.path()), &ctx).await;
    assert_eq!(r.exit_code(), 0, "{}", r.to_json());
    assert!(read_tree(back.path()) == read_tree(src.path()));
}

#[tokio::test]
async fn unreachable_s3_is_one_line_input_error_without_the_secret() {
    let remote = store(
        "s3://nope/p?endpoint=http://127.0.0.1:9&region=us-east-1&access_key_id=AKIDX&secret_access_key=TOPSECRET123",
    );
    let src = tempfile::tempdir().unwrap();
    let e = copy_all(
        &local(src.path()),
        &remote,
        &CopyOptions::default(),
        &Context::default(),
    )
    .await
    .unwrap_err();
    let text = e.to_string();
    assert_eq!(e.exit_code(), 2, "{text}");
    assert!(!text.contains("TOPSECRET123"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

/// A manifest query against a real database: values of any type arrive as text, NULLs are left
/// out with a warning, the named files are copied; and the query runs read-only, so a manifest
/// cannot change the application's database.
async fn sql_manifest_round_trip(db: &str, sql: &str, write_sql: &str, refused: &str) {
    let src = temp_tree(&[("1/7", bytes(30, 10)), ("dir x/ü", bytes(31, 20))]);
    let dst = tempfile::tempdir().unwrap();
    let source = ferry::open_query_source(db)
        .await
        .unwrap_or_else(|e| panic!("manifest database {db} (is the test server reachable?): {e}"));
    let run = |sql: &str| {
        let manifest = Manifest::Sql {
            db: source.clone(),
            sql: sql.to_string(),
        };
        let (from, to) = (local(src.path()), local(dst.path()));
        async move {
            copy(
                &from,
                &to,
                &manifest,
                &CopyOptions::default(),
                &Context::default(),
            )
            .await
        }
    };
    let r = run(sql)
        .await
        .unwrap_or_else(|e| panic!("manifest query on {db} (is the test server reachable?): {e}"));
    assert_eq!(stats(&r).migrated, 2, "{}", r.to_json());
    assert_any_line(&r.warnings, |w| w.contains("1 NULL"));
    assert_eq!(read_tree(dst.path()), read_tree(src.path()));
    let e = run(write_sql).await.unwrap_err();
    assert!(e.to_string().contains(refused), "{e}");
}

// scripts/test exports FERRY_TEST_PG_URL / FERRY_TEST_MYSQL_URL; the local services are the
// fallback. No server: the tests fail, they never skip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_manifest_from_postgresql() {
    let pg = std::env::var("FERRY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    sql_manifest_round_trip(
        &pg,
        "SELECT k FROM (VALUES (1 || '/' || 7), ('dir x/ü'), (NULL)) AS t(k)",
        "CREATE TABLE ferry_manifest_must_not_exist (k text)",
        "read-only transaction",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_manifest_from_mysql() {
    let my = std::env::var("FERRY_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/".into());
    // A MySQL source names its database; the server's own `mysql` one is always there.
    let my = if my.ends_with('/') {
        format!("{my}mysql")
    } else {
        my
    };
    sql_manifest_round_trip(
        &my,
        "SELECT CONCAT(1, '/', 7) UNION ALL SELECT 'dir x/ü' UNION ALL SELECT NULL",
        "CREATE DATABASE ferry_manifest_must_not_exist",
        "READ ONLY",
    )
    .await;
}

/// What a copy or verify of a whole listing returns.
type Outcome = ferry_blobs::Result<ferry_blobs::Report>;

/// Copies every listed file with `opts`.
async fn copy_all(from: &Store, to: &Store, opts: &CopyOptions, ctx: &Context) -> Outcome {
    copy(from, to, &Manifest::Listing, opts, ctx).await
}

/// Verifies every listed file with `opts`.
async fn verify_all(from: &Store, to: &Store, opts: &VerifyOptions, ctx: &Context) -> Outcome {
    verify(from, to, &Manifest::Listing, opts, ctx).await
}

/// Copies every listed file with the default options.
async fn copy_listed(from: &Store, to: &Store, ctx: &Context) -> ferry_blobs::Report {
    copy_all(from, to, &CopyOptions::default(), ctx)
        .await
        .unwrap()
}

/// Verifies every listed file with the default options.
async fn verify_listed(from: &Store, to: &Store, ctx: &Context) -> ferry_blobs::Report {
    verify_all(from, to, &VerifyOptions::default(), ctx)
        .await
        .unwrap()
}

/// Copies from one folder to another with `manifest` and `opts`.
async fn copy_between(
    from: &std::path::Path,
    to: &std::path::Path,
    manifest: &Manifest,
    opts: &CopyOptions,
) -> ferry_blobs::Report {
    copy(
        &local(from),
        &local(to),
        manifest,
        opts,
        &Context::default(),
    )
    .await
    .unwrap()
}

/// Copies every file from one folder to another with the default options.
async fn copy_folder(from: &std::path::Path, to: &std::path::Path) -> ferry_blobs::Report {
    copy_listed(&local(from), &local(to), &Context::default()).await
}

/// Verifies one folder against another with the default options.
async fn verify_folder(from: &std::path::Path, to: &std::path::Path) -> ferry_blobs::Report {
    verify_listed(&local(from), &local(to), &Context::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_to_local_copies_every_byte_and_verify_catches_one_changed_byte() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let mut files = awkward_tree();
    // Many 128 KiB chunks and a short last one.
    files.push(("large/chunks.bin", bytes(21, 5 * 1024 * 1024 + 4097)));
    write_tree(src.path(), &files);
    let r = copy_folder(src.path(), dst.path()).await;
    assert_eq!(r.exit_code(), 0, "{}", r.to_json());
    let total: u64 = files.iter().map(|(_, c)| c.len() as u64).sum();
    let s = stats(&r);
    assert_eq!((s.migrated, s.bytes), (8, total), "{}", r.to_json());
    assert!(read_tree(dst.path()) == read_tree(src.path()), "every byte");

    // One byte changed in the middle of a chunk at the target: same size, caught.
    let changed = dst.path().join("large/chunks.bin");
    let mut content = std::fs::read(&changed).unwrap();
    content[3 * 128 * 1024 + 5] ^= 0xff;
    std::fs::write(&changed, &content).unwrap();
    let v = verify_folder(src.path(), dst.path()).await;
    let t = &v.verify["media"];
    assert_eq!(
        t.different_keys,
        vec!["large/chunks.bin (same size, content differs)".to_string()],
        "{}",
        v.to_json()
    );
    assert!(t.rule.contains("every byte"), "{}", t.rule);
    assert_eq!(v.exit_code(), 1);

    // A rerun copies that file again (and only that one); verify then passes.
    let r = copy_folder(src.path(), dst.path()).await;
    let s = stats(&r);
    assert_eq!((s.migrated, s.skipped), (1, 7), "{}", r.to_json());
    let v = verify_folder(src.path(), dst.path()).await;
    assert_eq!(v.exit_code(), 0, "{}", v.to_json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_source_and_target_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    write_tree(&files, &[("a", bytes(1, 10))]);
    let ctx = Context::default();
    for (from, to) in [
        (files.clone(), files.join("backup")),
        (files.clone(), files.clone()),
        (files.join("."), dir.path().to_path_buf()),
    ] {
        let e = copy_all(&local(&from), &local(&to), &CopyOptions::default(), &ctx)
            .await
            .unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        assert!(e.to_string().contains("overlap"), "{e}");
        let e = verify_all(&local(&from), &local(&to), &VerifyOptions::default(), &ctx)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("overlap"), "{e}");
    }
    assert!(!files.join("backup").exists(), "nothing created");
    assert_eq!(read_tree(&files).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_folder_copies_links_to_files_and_names_what_it_leaves_out() {
    use std::os::unix::fs::symlink;
    let src = temp_tree(&[("real.bin", bytes(5, 300)), ("sub/inner", bytes(6, 20))]);
    let dst = tempfile::tempdir().unwrap();
    symlink(src.path().join("real.bin"), src.path().join("link.bin")).unwrap();
    symlink(src.path().join("sub"), src.path().join("link-to-folder")).unwrap();
    symlink(src.path().join("nowhere"), src.path().join("broken")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(src.path().join("app.sock")).unwrap();
    let r = copy_folder(src.path(), dst.path()).await;
    assert_eq!(r.exit_code(), 0, "{}", r.to_json());
    assert_eq!(stats(&r).migrated, 3, "{}", r.to_json());
    assert_eq!(
        read_tree(dst.path()),
        vec![
            ("link.bin".to_string(), bytes(5, 300)),
            ("real.bin".to_string(), bytes(5, 300)),
            ("sub/inner".to_string(), bytes(6, 20)),
        ]
    );
    let warning = r
        .warnings
        .iter()
        .find(|w| w.contains("left out"))
        .unwrap_or_else(|| panic!("{:?}", r.warnings));
    assert_mentions(
        warning,
        &[
            "3 entries",
            "link-to-folder (a symbolic link to a folder, not followed)",
            "broken (a broken symbolic link)",
            "app.sock (not a regular file)",
        ],
    );
}
