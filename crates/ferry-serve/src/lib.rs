//! `ferry serve`: migrations as background jobs behind an authenticated admin HTTP API, with a
//! job store (SQLite or PostgreSQL), source credentials sealed under a master key, Prometheus
//! metrics, an OpenAPI document and the web dashboard. Entry points: [`serve`] and the
//! `ferry admin` helpers [`create_user`] and [`revoke_tokens`].

pub mod api;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod dashboard;
pub mod error;
pub mod helpers;
pub mod jobs;
pub mod kinds;
pub mod lease;
pub mod metrics;
pub mod openapi;
pub mod store;

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

pub use auth::SlowDown;
pub use config::{ServeConfig, Targets};
pub use error::{Error, Result};
pub use store::Role;

use crypto::{KeySource, MasterKey};

/// The marker sealed under the master key when a store is first used, to tell a wrong key at
/// start-up instead of at the first job.
const KEY_CHECK: &str = "master_key_check";
const KEY_CHECK_TEXT: &[u8] = b"ferry serve master key check";

/// How long running jobs get to stop when the server shuts down.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// A store URL fit to print.
fn shown(store_url: &str) -> String {
    if store_url.starts_with("sqlite:") {
        store_url.to_string()
    } else {
        ferry::parse_locator(store_url)
            .map(|l| l.redacted())
            .unwrap_or_else(|_| "the --store URL".into())
    }
}

/// Runs the server until `shutdown` resolves, then cancels the running jobs (they end
/// `cancelled`) and returns.
///
/// # Errors
/// A malformed or different master key, a store that cannot be opened, an address in use.
pub async fn serve(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (key, source) = MasterKey::load(config.master_key_file.as_deref())?;
    match &source {
        KeySource::Created(path) => tracing::warn!(
            "Created a new master key at {} (mode 0600): keep it, jobs stored under it cannot be read with another",
            path.display()
        ),
        other => tracing::info!("Master key loaded from {other}"),
    }
    let store = store::open(&config.store).await?;
    tracing::info!("Job store: {}", shown(&config.store));
    match store.meta(KEY_CHECK).await? {
        Some(sealed) => {
            key.open(&sealed).map_err(|_| {
                Error::new(format!(
                    "the master key ({source}) differs from the one the job store {} was created with: start with the original key file or FERRY_MASTER_KEY",
                    shown(&config.store)
                ))
            })?;
        }
        None => {
            store
                .set_meta(KEY_CHECK, &key.seal(KEY_CHECK_TEXT)?)
                .await?
        }
    }
    first_admin(store.as_ref()).await?;
    metrics::handle();
    auth::spawn_pruning(store.clone(), config.login_slow_down);

    // Jobs another live server runs are left alone; those whose lease expired (their server
    // died) are taken over, now and whenever one expires later.
    let server = lease::Server::new(config.job_lease);
    tracing::info!(
        "Server id {} (job leases of {} s)",
        server.id,
        server.lease.as_secs()
    );
    let jobs = Arc::new(jobs::Jobs::new(
        store.clone(),
        key,
        config.targets.clone(),
        server,
    ));
    let stop_reclaim = tokio_util::sync::CancellationToken::new();
    let reclaim = {
        let taker = jobs.clone();
        lease::spawn_reclaim(
            store.clone(),
            jobs.server().clone(),
            stop_reclaim.clone(),
            move |job| {
                let taker = taker.clone();
                tokio::spawn(async move { taker.take_over(job).await });
            },
        )
    };
    // With a shared store, a server joins the copies other live servers run.
    let helping = store
        .shared()
        .then(|| helpers::spawn(jobs.clone(), stop_reclaim.clone()));
    let state = Arc::new(api::AppState {
        store: store.clone(),
        jobs: jobs.clone(),
        slow_down: config.login_slow_down,
        token_ttl_s: config.token_ttl_s,
    });
    let app = api::router(state, config.body_limit);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::new(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::new(format!("cannot read the listening address: {e}")))?;
    // Scripts and tests read the real port (with --listen …:0) from this line.
    println!("ferry serve: listening on http://{addr}");
    let _ = std::io::stdout().flush();
    tracing::info!("Listening on http://{addr} (dashboard at /, API under /api/v1)");
    // The client address keys the login slow-down.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| Error::new(format!("the server failed: {e}")))?;
    tracing::info!("Shutting down: cancelling running jobs");
    stop_reclaim.cancel();
    let _ = reclaim.await;
    if let Some(helping) = helping {
        let _ = helping.await;
    }
    jobs.shutdown(SHUTDOWN_GRACE).await;
    Ok(())
}

/// The first admin, from `FERRY_ADMIN_USER` / `FERRY_ADMIN_PASSWORD`, when the store has no
/// users yet.
async fn first_admin(store: &dyn store::Store) -> Result<()> {
    if store.user_count().await? > 0 {
        return Ok(());
    }
    match (
        std::env::var("FERRY_ADMIN_USER"),
        std::env::var("FERRY_ADMIN_PASSWORD"),
    ) {
        (Ok(user), Ok(password)) => {
            auth::create_user(store, &user, &password, Role::Admin).await?;
            tracing::info!("Created the admin user {user:?} from FERRY_ADMIN_USER");
        }
        _ => tracing::warn!(
            "No users yet: set FERRY_ADMIN_USER and FERRY_ADMIN_PASSWORD, or run `ferry admin create-user`"
        ),
    }
    Ok(())
}

/// `ferry admin create-user`.
///
/// # Errors
/// A name taken, a password too short, a store that cannot be opened.
pub async fn create_user(
    store_url: &str,
    username: &str,
    password: &str,
    role: Role,
) -> Result<i64> {
    let store = store::open(store_url).await?;
    auth::create_user(store.as_ref(), username, password, role).await
}

/// `ferry admin revoke-tokens`: every token of one user, or of everyone.
///
/// # Errors
/// A store that cannot be opened.
pub async fn revoke_tokens(store_url: &str, username: Option<&str>) -> Result<u64> {
    let store = store::open(store_url).await?;
    store.revoke_tokens(username).await
}
