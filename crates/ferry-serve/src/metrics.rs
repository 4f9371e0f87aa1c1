//! Prometheus metrics: jobs by status (read from the store at scrape time, so every server
//! sharing a store reports the same), rows and bytes migrated, HTTP request durations.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::store::Store;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const DURATION: &str = "ferry_http_request_duration_seconds";

/// Installs the process-wide recorder once (later servers in the same process share it).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(DURATION.into()),
                &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
            )
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (tests embedding a server): the handle
        // then renders this recorder's (empty) view, which is still valid Prometheus text.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

pub fn rows_and_bytes(rows: u64, bytes: u64) {
    metrics::counter!("ferry_rows_migrated_total").increment(rows);
    metrics::counter!("ferry_bytes_migrated_total").increment(bytes);
}

/// The text for `GET /metrics`.
pub async fn render(store: &dyn Store) -> String {
    let counts = store.status_counts().await.unwrap_or_default();
    for status in [
        "pending",
        "validating",
        "running",
        "dry_run",
        "completed",
        "failed",
        "cancelled",
    ] {
        let n = counts
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("ferry_jobs", "status" => status).set(n as f64);
    }
    // Counters appear from the first increment; make them visible (at zero) from the start.
    metrics::counter!("ferry_rows_migrated_total").increment(0);
    metrics::counter!("ferry_bytes_migrated_total").increment(0);
    handle().render()
}

/// Middleware: one histogram sample per request, by method, route pattern and status.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    metrics::histogram!(DURATION, "method" => method, "path" => path, "status" => response.status().as_u16().to_string())
        .record(started.elapsed().as_secs_f64());
    response
}
