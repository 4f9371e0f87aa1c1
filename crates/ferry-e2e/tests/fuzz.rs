//! A schemathesis fuzz pass over ferry serve's OpenAPI document, as an admin: no request may
//! get a 5xx. Needs schemathesis (`pip install schemathesis`) and the ferry binary.
//! Jobs it starts only ever see generated URLs, which fail validation or fail as jobs.

use std::path::PathBuf;
use std::process::Command;

use ferry_e2e::serve::Serve;

/// Test cases per API operation; the whole pass takes a minute or two at this size.
/// `FERRY_E2E_FUZZ_EXAMPLES` raises it for a longer hunt.
const EXAMPLES: u32 = 25;

fn schemathesis() -> PathBuf {
    for name in ["st", "schemathesis"] {
        if let Ok(out) = Command::new(name).arg("--version").output()
            && out.status.success()
        {
            return PathBuf::from(name);
        }
    }
    panic!(
        "schemathesis is needed for the fuzz test and is not installed: pip install schemathesis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_fuzz_finds_no_server_error() {
    let st = schemathesis();
    let serve = Serve::start().await;
    let api = serve.admin().await;
    let token = api.token.clone().expect("logged in");
    let examples = std::env::var("FERRY_E2E_FUZZ_EXAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(EXAMPLES);
    let report = ferry_e2e::paths::artifacts_dir().join("schemathesis");

    let schema = format!("{}/api/v1/openapi.json", serve.base);
    let mut command = tokio::process::Command::new(&st);
    command
        .arg("run")
        .arg(&schema)
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "not_a_server_error"])
        .args(["--max-examples", &examples.to_string()])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--workers", "2"])
        .args(["--request-timeout", "30"])
        .args(["--seed", "5"])
        .arg("--no-color")
        .args(["--report", "ndjson"])
        .arg("--report-dir")
        .arg(&report)
        .current_dir(serve.dir.path())
        .kill_on_drop(true);
    let run = tokio::time::timeout(std::time::Duration::from_secs(600), command.output())
        .await
        .expect("schemathesis ran longer than 10 minutes")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", st.display()));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    println!("{stdout}");
    let output = serve.output();
    assert!(
        run.status.success(),
        "schemathesis found problems (exit {:?}); report in {}:\n{stdout}\n{stderr}\n--- ferry serve output ---\n{output}",
        run.status.code(),
        report.display()
    );
    // The fuzzing logged in as admin: the password must appear nowhere it printed.
    assert!(
        !output.contains(&serve.admin_password),
        "ferry serve printed the admin password"
    );
    serve.stop().await;
}
