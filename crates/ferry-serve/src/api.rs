//! The HTTP API (axum): routes, the `{"success": …}` envelope, bearer authentication, and
//! strict request parsing (a body not declared `application/json`, malformed JSON, wrong types,
//! unknown fields and oversized bodies are 4xx with a message, never a crash).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{self, Attempt, SlowDown};
use crate::jobs::{self, JobError, Jobs};
use crate::kinds::Kind;
use crate::store::{Role, Store, User, unix_now};

/// What every handler shares.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub jobs: Arc<Jobs>,
    pub slow_down: SlowDown,
    pub token_ttl_s: u64,
}

type Shared = Arc<AppState>;

/// An error answer: `{"success": false, "error": "…"}` with its status.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    fn bad(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, message.into())
    }
    fn unauthorized(message: impl Into<String>) -> Self {
        Self(StatusCode::UNAUTHORIZED, message.into())
    }
    fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!("Internal error: {message}");
        Self(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.0, Json(json!({"success": false, "error": self.1}))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::BadRequest(m) => ApiError::bad(m),
            JobError::NotFound(m) => ApiError::not_found(m),
            JobError::Conflict(m) => ApiError(StatusCode::CONFLICT, m),
            JobError::Internal(m) => ApiError::internal(m),
        }
    }
}

impl From<crate::error::Error> for ApiError {
    fn from(e: crate::error::Error) -> Self {
        ApiError::internal(e.0)
    }
}

fn ok(status: StatusCode, data: Value) -> Response {
    (status, Json(json!({"success": true, "data": data}))).into_response()
}

/// The caller of an admin route: a valid bearer token of an admin.
pub struct Admin(pub User);

impl FromRequestParts<Shared> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token> header: log in at POST /api/v1/auth/login"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be Bearer <token>")
            })?;
        let user = state
            .store
            .token_user(&auth::token_hash(token), unix_now())
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized("the token is invalid, expired or revoked: log in again")
            })?;
        if user.role != Role::Admin {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "this route needs an admin account".into(),
            ));
        }
        Ok(Admin(user))
    }
}

/// The body as a JSON object, or a 4xx saying what is wrong with it. The body must be declared
/// `application/json` (parameters such as `charset` allowed): a form or text body is refused
/// with 415 rather than parsed as JSON anyway.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !declared.is_some_and(|t| t.eq_ignore_ascii_case("application/json")) {
        return Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the request body must be JSON sent with Content-Type: application/json".into(),
        ));
    }
    let bytes = body.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(status, "the request body is too large".into())
        } else {
            ApiError(status, format!("cannot read the request body: {e}"))
        }
    })?;
    if bytes.is_empty() {
        return Err(ApiError::bad(
            "the request body is empty: send a JSON object",
        ));
    }
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad("the request body must be a JSON object"));
    }
    Ok(value)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

async fn login(
    State(state): State<Shared>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_body(&headers, body)?;
    let login: Login = crate::kinds::parse_body(&value).map_err(|e| {
        // Never echo what was sent as a password.
        if e.0.starts_with("password") {
            ApiError::bad("password: must be a string")
        } else {
            ApiError::bad(e.0)
        }
    })?;
    let user = match auth::attempt(
        state.store.as_ref(),
        &state.slow_down,
        client.ip(),
        &login.username,
        &login.password,
    )
    .await?
    {
        Attempt::Success(user) => user,
        Attempt::Failure => return Err(ApiError::unauthorized("wrong user name or password")),
        Attempt::Busy(retry) => {
            let secs = retry.as_secs() + u64::from(retry.subsec_nanos() > 0);
            let mut response = ApiError(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed logins from this address: try again in {secs} s"),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            return Ok(response);
        }
    };
    let (token, hash) = auth::new_token()?;
    state
        .store
        .insert_token(&hash, user.id, unix_now() + state.token_ttl_s as i64)
        .await?;
    Ok(ok(
        StatusCode::OK,
        json!({"access_token": token, "token_type": "Bearer", "expires_in": state.token_ttl_s}),
    ))
}

fn kind_of(segment: &str) -> Result<Kind, ApiError> {
    Kind::parse(segment).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown migration kind '{}': use copy, blobs, peertube or migrate",
            segment.chars().take(40).collect::<String>()
        ))
    })
}

/// What the routes that start a job take, extracted in the order they always were (the admin's
/// token first): the path's one segment (a kind or a cutover step), and the headers and body
/// read as JSON only once the segment is known to name something.
struct JobPost {
    state: Shared,
    admin: User,
    segment: String,
    body: (HeaderMap, Result<Bytes, BytesRejection>),
}

impl FromRequest<Shared> for JobPost {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Shared) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let Admin(admin) = Admin::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Path(segment) = Path::<String>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), state).await;
        Ok(Self {
            state: state.clone(),
            admin,
            segment,
            body: (headers, body),
        })
    }
}

/// `POST /api/v1/admin/migrations/{kind}` and `…/{kind}/dry-run`.
async fn create(post: JobPost, dry_run: bool) -> Result<Response, ApiError> {
    // Existing scripts start a PeerTube dry run as `/migrations/dry-run/dry-run`.
    let kind = match post.segment.as_str() {
        "dry-run" if dry_run => "peertube",
        kind => kind,
    };
    let kind = kind_of(kind)?;
    start_job(post, kind, dry_run).await
}

async fn start_job(post: JobPost, kind: Kind, dry_run: bool) -> Result<Response, ApiError> {
    let (headers, body) = post.body;
    let value = json_body(&headers, body)?;
    let job = post
        .state
        .jobs
        .create(kind, value, dry_run, &post.admin)
        .await?;
    Ok(ok(StatusCode::CREATED, jobs::to_json(&job)))
}

/// `POST /api/v1/admin/cutover/{check,sync}`: a cutover job, polled as migrations are.
async fn start_cutover(post: JobPost) -> Result<Response, ApiError> {
    let kind = Kind::cutover(&post.segment).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown cutover step '{}': use check or sync",
            post.segment.chars().take(40).collect::<String>()
        ))
    })?;
    start_job(post, kind, false).await
}

/// The job a request's path names. Job ids are UUIDs; anything else cannot name a job.
struct JobId(String);

impl FromRequestParts<Shared> for JobId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match uuid::Uuid::parse_str(&text) {
            Ok(id) => Ok(Self(id.to_string())),
            Err(_) => Err(
                ApiError::not_found("no migration with that id (ids are UUIDs)").into_response(),
            ),
        }
    }
}

async fn get_job(
    State(state): State<Shared>,
    Admin(_): Admin,
    JobId(id): JobId,
) -> Result<Response, ApiError> {
    let job = state
        .store
        .job(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no migration with id {id}")))?;
    Ok(ok(StatusCode::OK, jobs::to_json(&job)))
}

async fn cancel_job(
    State(state): State<Shared>,
    Admin(_): Admin,
    JobId(id): JobId,
) -> Result<Response, ApiError> {
    state.jobs.cancel(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct Page {
    count: Option<u64>,
    start: Option<u64>,
}

pub const MAX_PAGE: u64 = 100;

async fn list_jobs(
    State(state): State<Shared>,
    Admin(_): Admin,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(page) = page.map_err(|e| ApiError::bad(e.body_text()))?;
    let count = page.count.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&count) {
        return Err(ApiError::bad(format!(
            "count: must be between 1 and {MAX_PAGE}"
        )));
    }
    let start = page.start.unwrap_or(0);
    if start > i64::MAX as u64 {
        return Err(ApiError::bad("start: too large"));
    }
    let (rows, total) = state.store.jobs(start, count).await?;
    Ok(ok(
        StatusCode::OK,
        json!({"total": total, "count": count, "start": start, "data": rows.iter().map(jobs::to_json).collect::<Vec<_>>()}),
    ))
}

async fn health() -> Response {
    ok(StatusCode::OK, json!({"status": "ok"}))
}

async fn ready(State(state): State<Shared>) -> Response {
    // The master key is loaded before the server listens; the store is what can go away.
    match state.store.ping().await {
        Ok(()) => ok(
            StatusCode::OK,
            json!({"status": "ready", "store": "ok", "master_key": "loaded"}),
        ),
        Err(e) => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the job store does not answer: {e}"),
        )
        .into_response(),
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(state.store.as_ref()).await,
    )
        .into_response()
}

async fn openapi() -> Response {
    Json(crate::openapi::document()).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route: see /api/v1/openapi.json")
}

/// axum answers a wrong method with an empty 405 and the `Allow` header; give it the
/// envelope too, keeping the headers.
async fn envelope_405(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(req).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = json!({"success": false, "error": "method not allowed on this route: see the Allow header and /api/v1/openapi.json"});
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}

/// The whole application: API, operational routes and the dashboard.
pub fn router(state: Arc<AppState>, body_limit: usize) -> Router {
    let api = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/admin/migrations", get(list_jobs))
        .route(
            "/api/v1/admin/migrations/{key}",
            post(|job: JobPost| create(job, false))
                .get(get_job)
                .delete(cancel_job),
        )
        .route(
            "/api/v1/admin/migrations/{kind}/dry-run",
            post(|job: JobPost| create(job, true)),
        )
        .route("/api/v1/admin/cutover/{step}", post(start_cutover))
        .fallback(not_found)
        .with_state(state);
    api.merge(crate::dashboard::routes())
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(envelope_405))
        .layer(axum::middleware::from_fn(crate::metrics::track))
}
