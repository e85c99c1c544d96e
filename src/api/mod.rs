//! The HTTP API of the daemon (`[api]`): recognize and verify uploaded photos, edit the gallery, health,
//! Prometheus metrics and the event stream (server-sent events), described by an OpenAPI document it serves.
//!
//! Every route but `GET /api/health` wants a key of `api.keys` / `api.keys_file` in `X-Api-Key` or
//! `Authorization: Bearer`; keys are compared in constant time and never logged. Bodies are the photo's bytes
//! (`Content-Type: image/*` or `application/octet-stream`) or a `multipart/form-data` field (`file`; `a` and `b`
//! for verify), at most `api.max_upload_bytes`. Errors are `{"v": 1, "error": "…"}` with the status that fits:
//! 400 a bad photo (the CLI's message), 401 no or a wrong key, 404 no such person or photo, 413 too large, 422 no
//! face where one is needed.
//!
//! The server runs on a thread of its own with its own models (the pipeline's are busy with the camera) and its
//! own connection to the gallery; a change made here reaches the daemon's matcher through the gallery watcher.

mod compreface;
mod metrics;
mod server;
mod strangers;
mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::json;

use crate::base::Frame;
pub use crate::config::ApiConfig;
use crate::config::Config;
use crate::gallery::{Gallery, GalleryError};
use crate::image::ImageError;
use crate::jobs::photos::{self, Photo};
use crate::jobs::{JobError, REPORT_VERSION};
use crate::pipeline::CameraStats;
pub use crate::sinks::sse::EventFeed;
use crate::stills::{Engine, EngineError};
pub use compreface::ROUTES as COMPREFACE_ROUTES;

/// The OpenAPI 3 description of the routes, served at `/api/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The keys file is unreadable, empty or readable by others.
    #[error("api.keys_file {path}: {message}")]
    Keys {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The address could not be bound.
    #[error("failed to listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// Models or the gallery.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The gallery.
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    /// The thread could not start.
    #[error("failed to start the API thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl crate::exit::Exit for ApiError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Keys { .. } => crate::exit::CONFIG,
            Self::Bind { .. } => crate::exit::SOCKET,
            Self::Engine(e) => e.exit_code(),
            Self::Gallery(e) => e.exit_code(),
            Self::Thread(_) => crate::exit::INTERNAL,
        }
    }
}

/// What the handlers share.
struct Shared {
    keys: Vec<String>,
    /// Models and gallery, one request at a time (inference holds the session).
    work: Mutex<(Engine, Gallery)>,
    /// Each running camera's counters (metrics and health), once the pipeline runs.
    cameras: Mutex<Vec<CameraStats>>,
    started: Instant,
    feed: EventFeed,
    top_k: usize,
    max_upload: usize,
    /// Where `[snapshots]` are, when on.
    snapshots: Option<PathBuf>,
    /// A request body must arrive within this long.
    body_timeout: std::time::Duration,
    /// Each camera's annotated picture, for the web page.
    live: Arc<crate::sinks::live::LiveFrames>,
    /// The web page's logged-in browsers.
    sessions: ui::Sessions,
    /// The accept loop's bounds.
    limits: server::Limits,
    /// The detector's own score floor (`detect.score_threshold`): a client cannot ask for less certain faces.
    det_floor: f32,
}

/// A bound, ready API: models loaded, gallery open, address bound ([`Api::build`]); [`Api::serve`] starts it.
pub struct Api {
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
}

/// A running API; dropping it stops the server.
pub struct ApiHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The address it listens on.
    pub address: SocketAddr,
}

impl Drop for ApiHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_keys(cfg: &ApiConfig) -> Result<Vec<String>, ApiError> {
    let mut keys: Vec<String> = cfg.keys.iter().map(|k| k.expose().to_string()).filter(|k| !k.is_empty()).collect();
    if !cfg.keys_file.trim().is_empty() {
        let path = crate::paths::resolve_path(&cfg.keys_file);
        let text = crate::private::read_secret_file(&path).map_err(|e| ApiError::Keys { path, message: e.to_string() })?;
        keys.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from));
    }
    if keys.is_empty() {
        return Err(ApiError::Keys { path: PathBuf::from(&cfg.keys_file), message: "no API key configured".into() });
    }
    Ok(keys)
}

/// Binds `api.listen` (a host name is resolved; the first address that binds wins), warning when the API is
/// reachable from beyond this machine: keys travel in the clear without TLS in front.
fn bind(cfg: &ApiConfig) -> Result<std::net::TcpListener, ApiError> {
    use std::net::ToSocketAddrs;
    let address = cfg.listen.trim().to_string();
    let fail = |source| ApiError::Bind { address: address.clone(), source };
    let (host, port) = cfg.host_port().ok_or_else(|| fail(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not host:port")))?;
    let candidates: Vec<SocketAddr> = (host, port).to_socket_addrs().map_err(fail)?.collect();
    let mut last = std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, format!("{host} resolves to no address"));
    for candidate in candidates {
        match std::net::TcpListener::bind(candidate) {
            Ok(listener) => {
                listener.set_nonblocking(true).map_err(fail)?;
                if !candidate.ip().is_loopback() {
                    tracing::warn!(
                        address = %candidate,
                        "The HTTP API listens beyond this machine without TLS: API keys and faces cross the network in the clear. \
                         Put a reverse proxy with TLS in front, or listen on 127.0.0.1."
                    );
                }
                return Ok(listener);
            }
            Err(e) => last = e,
        }
    }
    Err(fail(last))
}

impl Api {
    /// Loads the API's models, opens the gallery and binds `api.listen`, before the daemon starts anything.
    pub fn build(cfg: &Config, feed: EventFeed, live: Arc<crate::sinks::live::LiveFrames>) -> Result<Self, ApiError> {
        let keys = read_keys(&cfg.api)?;
        let mut runtime = cfg.clone();
        // One inference thread: the pipeline's sessions have the cores.
        runtime.runtime.intra_threads = 1;
        let engine = Engine::build(&runtime)?;
        let gallery = cfg.open_gallery(engine.info().dim, true)?;
        let listener = bind(&cfg.api)?;
        // Large buffers (uploads) come from and go back to the system at once, instead of raising glibc's mmap
        // threshold and staying in its heap after a burst of uploads.
        #[cfg(target_env = "gnu")]
        // SAFETY: mallopt only changes the allocator's tuning; it is called before the server's threads start.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
        }
        let shared = Shared {
            keys,
            work: Mutex::new((engine, gallery)),
            cameras: Mutex::new(Vec::new()),
            started: Instant::now(),
            feed,
            top_k: cfg.matcher.top_k.get(),
            max_upload: cfg.api.max_upload_bytes.get(),
            snapshots: cfg.snapshots.enabled.then(|| crate::paths::resolve_path(&cfg.snapshots.dir)),
            body_timeout: cfg.api.body_timeout,
            live,
            sessions: ui::Sessions::default(),
            limits: server::Limits { max_connections: cfg.api.max_connections.get(), idle_timeout: cfg.api.idle_timeout },
            det_floor: cfg.detect.score_threshold.get(),
        };
        Ok(Self { shared: Arc::new(shared), listener })
    }

    /// The address bound.
    pub fn address(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves on a thread of its own; `cameras` are the running pipeline's counters (metrics and health).
    pub fn serve(self, cameras: Vec<CameraStats>) -> Result<ApiHandle, ApiError> {
        *self.shared.cameras.lock() = cameras;
        let address = self.listener.local_addr().map_err(|source| ApiError::Bind { address: "?".into(), source })?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let router = router(self.shared.clone());
        let limits = self.shared.limits;
        let listener = self.listener;
        let thread = crate::stage::thread("api", move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return tracing::error!(error = %e, "The API could not start its runtime."),
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => return tracing::error!(error = %e, "The API could not listen."),
                };
                tracing::info!(address = %address, max_connections = limits.max_connections, "HTTP API listening.");
                server::serve(listener, router, limits, stop_rx).await;
            });
        })
        .map_err(ApiError::Thread)?;
        Ok(ApiHandle { stop: Some(stop_tx), thread: Some(thread), address })
    }
}

/// Every route; [`OPENAPI`] describes each (`api::tests` checks both lists are the same).
fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.max_upload;
    Router::new()
        .route("/api/health", get(health))
        .route("/api/openapi.json", get(openapi))
        .route("/api/metrics", get(metrics::serve))
        .route("/api/events", get(events))
        .route("/api/recognize", post(recognize))
        .route("/api/verify", post(verify))
        .route("/api/faces", get(list_faces))
        .route("/api/faces/{name}", get(person_photos).post(add_photo).delete(remove_person))
        .route("/api/faces/{name}/photos/{id}", delete(remove_photo))
        .route("/api/faces/{name}/photos/{id}/crop", get(strangers::photo_crop))
        .route("/api/faces/{name}/photos/{id}/move", post(strangers::move_photo))
        .route("/api/strangers", get(strangers::list))
        .route("/api/strangers/{label}", get(strangers::show).delete(strangers::forget))
        .route("/api/strangers/{label}/faces/{id}", get(strangers::face))
        .route("/api/strangers/{label}/name", post(strangers::name))
        .route("/api/strangers/{label}/merge", post(strangers::merge))
        .route(&format!("{}/{{*path}}", crate::base::event::SNAPSHOT_ROUTE), get(snapshot))
        .merge(ui::router(shared.clone()))
        .merge(compreface::router())
        .fallback(|| async { Failure(StatusCode::NOT_FOUND, "no such route (GET /api/openapi.json lists them)".into()) })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(known_parameters))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), authorize))
        // Outermost: whatever answered an error on a CompreFace path (the key check too), in CompreFace's shape.
        .layer(axum::middleware::from_fn(compreface::errors_in_its_shape))
        .with_state(shared)
}

/// The routes served, as the OpenAPI document must list them: (method, path); with [`compreface::ROUTES`].
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/health"),
    ("get", "/api/openapi.json"),
    ("get", "/api/metrics"),
    ("get", "/api/events"),
    ("post", "/api/recognize"),
    ("post", "/api/verify"),
    ("get", "/api/faces"),
    ("get", "/api/faces/{name}"),
    ("post", "/api/faces/{name}"),
    ("delete", "/api/faces/{name}"),
    ("delete", "/api/faces/{name}/photos/{id}"),
    ("get", "/api/faces/{name}/photos/{id}/crop"),
    ("post", "/api/faces/{name}/photos/{id}/move"),
    ("get", "/api/strangers"),
    ("get", "/api/strangers/{label}"),
    ("delete", "/api/strangers/{label}"),
    ("get", "/api/strangers/{label}/faces/{id}"),
    ("post", "/api/strangers/{label}/name"),
    ("post", "/api/strangers/{label}/merge"),
    ("get", "/api/snapshots/{path}"),
];

/// A report as an answer body: `{"v": 1, …its fields}`, serialized as the CLI's `--json` is (no binary noise in
/// its numbers).
#[derive(serde::Serialize)]
pub struct Doc<T: serde::Serialize> {
    v: u32,
    #[serde(flatten)]
    body: T,
}

impl<T: serde::Serialize> Doc<T> {
    pub(crate) fn new(body: T) -> Self {
        Self { v: REPORT_VERSION, body }
    }
}

/// An error answer: `{"v": 1, "error": message}`.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"v": REPORT_VERSION, "error": self.1}))).into_response()
    }
}

impl From<JobError> for Failure {
    fn from(e: JobError) -> Self {
        let status = match &e {
            JobError::Image(ImageError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            JobError::Image(_) | JobError::Input(_) => StatusCode::BAD_REQUEST,
            JobError::Engine(EngineError::Image(ImageError::TooLarge { .. })) => StatusCode::PAYLOAD_TOO_LARGE,
            JobError::Engine(EngineError::Image(_)) => StatusCode::BAD_REQUEST,
            JobError::Engine(EngineError::NoFace(_) | EngineError::SeveralFaces { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            JobError::Gallery(GalleryError::UnknownPerson(_) | GalleryError::UnknownPhoto(_) | GalleryError::UnknownStranger(_)) => {
                StatusCode::NOT_FOUND
            }
            JobError::Gallery(GalleryError::BadName(_) | GalleryError::NameTaken(_)) => StatusCode::BAD_REQUEST,
            JobError::Gallery(GalleryError::NoCrop(_) | GalleryError::SelfMerge(_)) => StatusCode::CONFLICT,
            // A shared gallery's server is away: nothing was changed; the client may try again.
            JobError::Gallery(GalleryError::Unavailable { .. } | GalleryError::ConnectionLost { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "API request failed.");
        }
        Failure(status, e.to_string())
    }
}

impl From<GalleryError> for Failure {
    fn from(e: GalleryError) -> Self {
        JobError::from(e).into()
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        JobError::from(e).into()
    }
}

/// Constant-time comparison: the time taken does not tell how much of a key was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The query parameters a native route takes (`/api/…`): any other is refused with 400, never ignored.
fn native_parameters(path: &str) -> &'static [&'static str] {
    match path {
        "/api/recognize" => &["top_k"],
        p if p.starts_with("/api/strangers/") && p.contains("/faces/") => &["scene"],
        _ => &[],
    }
}

/// Refuses a query parameter the native route does not take (CompreFace's routes check their own).
async fn known_parameters(request: Request, next: axum::middleware::Next) -> Response {
    let path = request.uri().path();
    if path.starts_with("/api/") && !path.starts_with("/api/v1/") {
        let takes = native_parameters(path);
        let query = request.uri().query().unwrap_or("");
        if let Some((unknown, _)) = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| !takes.contains(&k.as_ref())) {
            let takes = if takes.is_empty() { "no parameters".to_string() } else { takes.join(", ") };
            return Failure(StatusCode::BAD_REQUEST, format!("unknown parameter `{unknown}`: {path} takes {takes}")).into_response();
        }
    }
    next.run(request).await
}

async fn authorize(State(shared): State<Arc<Shared>>, request: Request, next: axum::middleware::Next) -> Response {
    // The web page logs in with a key once and then keeps a session of its own (`ui`).
    let path = request.uri().path();
    if path == "/api/health" || path == "/" || path == "/favicon.ico" || path == "/ui" || path.starts_with("/ui/") {
        return next.run(request).await;
    }
    let headers = request.headers();
    let given = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")));
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let refusal = match given {
        Some(key) if shared.keys.iter().any(|k| same(k, key.trim())) => {
            // Refused on the declared length, before the body is read (and before `100 Continue`).
            if declared.is_some_and(|n| n > shared.max_upload as u64) {
                let limit = shared.max_upload;
                return Failure(StatusCode::PAYLOAD_TOO_LARGE, format!("the upload is larger than api.max_upload_bytes ({limit} bytes)"))
                    .into_response();
            }
            return next.run(request).await;
        }
        Some(_) => "wrong API key",
        None => "an API key is required: X-Api-Key: KEY or Authorization: Bearer KEY",
    };
    // Refused on the headers alone: nothing of the body is kept. A client still sending its photo would see its
    // upload broken off instead of the 401, so what it sends next is read and thrown away for a moment (no
    // memory kept) while the answer goes out; one waiting for `100 Continue` is never invited to send.
    let expects = headers.get(header::EXPECT).is_some();
    if !expects && declared != Some(0) {
        tokio::spawn(discard(request.into_body(), shared.max_upload as u64));
    }
    let mut r = Failure(StatusCode::UNAUTHORIZED, refusal.into()).into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    r
}

/// How long a refused request's body is read and thrown away, so the client gets its answer.
const DISCARD_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads and drops up to `limit` bytes of `body` for at most [`DISCARD_FOR`]; keeps nothing.
async fn discard(body: axum::body::Body, limit: u64) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut seen = 0u64;
    let _ = tokio::time::timeout(DISCARD_FOR, async {
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len() as u64);
            if seen > limit {
                break;
            }
        }
    })
    .await;
}

/// Reads a request body of at most `limit` bytes within `timeout` into one buffer of its declared size: 413 past
/// the limit (declared or not), 408 when it does not arrive in time.
async fn read_body(request: Request, limit: usize, timeout: std::time::Duration) -> Result<(axum::http::request::Parts, Bytes), Failure> {
    use http_body_util::BodyExt;
    let too_large = || Failure(StatusCode::PAYLOAD_TOO_LARGE, format!("the upload is larger than api.max_upload_bytes ({limit} bytes)"));
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let (parts, mut body) = request.into_parts();
    let mut buf = Vec::with_capacity(declared.unwrap_or(0));
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Failure(StatusCode::BAD_REQUEST, format!("the upload broke off: {e}")))?;
            if let Some(data) = frame.data_ref() {
                if buf.len() + data.len() > limit {
                    return Err(too_large());
                }
                buf.extend_from_slice(data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(read) => read?,
        Err(_) => {
            let s = timeout.as_secs();
            return Err(Failure(StatusCode::REQUEST_TIMEOUT, format!("the upload did not arrive within api.body_timeout_s ({s} s)")));
        }
    }
    Ok((parts, Bytes::from(buf)))
}

async fn health(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    use std::sync::atomic::Ordering::Relaxed;
    let cameras = shared.cameras.lock().clone();
    let retrying = |c: &CameraStats| c.stats.capture.retrying.load(Relaxed);
    let list: Vec<serde_json::Value> = cameras
        .iter()
        .map(|c| json!({"name": c.name, "frames": c.stats.capture.frames.load(Relaxed), "source": if retrying(c) { "lost" } else { "ok" }}))
        .collect();
    Json(json!({
        "v": REPORT_VERSION,
        "status": if cameras.iter().any(retrying) { "degraded" } else { "ok" },
        "version": crate::base::build::VERSION,
        "commit": crate::base::build::COMMIT,
        "uptime_s": (shared.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "cameras": list,
    }))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// The photo of a request: the raw body, or a multipart field `field`.
async fn upload(shared: &Shared, request: Request, field: &str) -> Result<Bytes, Failure> {
    let (parts, bytes) = read_body(request, shared.max_upload, shared.body_timeout).await?;
    let is_multipart =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("multipart/form-data"));
    if !is_multipart {
        return Ok(bytes);
    }
    let mut fields = multipart_fields(Request::from_parts(parts, axum::body::Body::from(bytes))).await?;
    fields.remove(field).ok_or_else(|| Failure(StatusCode::BAD_REQUEST, format!("the multipart body has no `{field}` field")))
}

/// The fields of a request's multipart body, read within the limits.
async fn fields_of(shared: &Shared, request: Request) -> Result<std::collections::HashMap<String, Bytes>, Failure> {
    let (parts, bytes) = read_body(request, shared.max_upload, shared.body_timeout).await?;
    multipart_fields(Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

/// The fields of a multipart body already in memory.
async fn multipart_fields(request: Request) -> Result<std::collections::HashMap<String, Bytes>, Failure> {
    let mut multipart = Multipart::from_request(request, &()).await.map_err(|e| Failure(StatusCode::BAD_REQUEST, e.body_text()))?;
    let mut out = std::collections::HashMap::new();
    while let Some(f) = multipart.next_field().await.map_err(|e| {
        let status = e.status();
        Failure(if status == StatusCode::PAYLOAD_TOO_LARGE { status } else { StatusCode::BAD_REQUEST }, e.body_text())
    })? {
        let name = f.name().unwrap_or_default().to_string();
        let bytes = f.bytes().await.map_err(|e| Failure(e.status(), e.body_text()))?;
        out.insert(name, bytes);
    }
    Ok(out)
}

/// Decodes an upload named `name` (for messages), as the CLI would a file.
fn decode(engine: &Engine, bytes: &[u8], name: &str) -> Result<Frame, Failure> {
    engine.decode(bytes, std::path::Path::new(name)).map_err(|e| JobError::from(e).into())
}

/// Runs `work` on the models and gallery, off the server's thread.
async fn with_work<T: Send + 'static>(
    shared: &Arc<Shared>,
    work: impl FnOnce(&mut Engine, &mut Gallery) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    on_models(shared, work).await
}

/// [`with_work`] for any answer's error shape `E` (the native one, CompreFace's).
async fn on_models<T: Send + 'static, E: From<Failure> + From<GalleryError> + Send + 'static>(
    shared: &Arc<Shared>,
    work: impl FnOnce(&mut Engine, &mut Gallery) -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = shared.work.lock();
        let (engine, gallery) = &mut *guard;
        // Changes made by the CLI or another process since the last request.
        gallery.reload_if_changed()?;
        work(engine, gallery)
    })
    .await
    .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, format!("the request's worker failed: {e}")))?
}

async fn recognize(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    request: Request,
) -> Result<Json<Doc<impl serde::Serialize>>, Failure> {
    let bytes = upload(&shared, request, "file").await?;
    let k = match q.get("top_k") {
        None => shared.top_k,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|k| (1..=100).contains(k))
            .ok_or_else(|| Failure(StatusCode::BAD_REQUEST, format!("top_k `{v}`: an integer from 1 to 100")))?,
    };
    let started = Instant::now();
    let faces = with_work(&shared, move |engine, gallery| {
        let frame = decode(engine, &bytes, "upload")?;
        let faces = photos::identify_frame(engine, gallery, &frame, k)?;
        Ok((faces, frame.original_width, frame.original_height))
    })
    .await?;
    #[derive(serde::Serialize)]
    struct Recognized {
        width: u32,
        height: u32,
        faces: Vec<photos::IdentifiedFace>,
        took_ms: f64,
    }
    let took_ms = (started.elapsed().as_secs_f64() * 1e4).round() / 10.0;
    Ok(Json(Doc::new(Recognized { width: faces.1, height: faces.2, faces: faces.0, took_ms })))
}

async fn verify(State(shared): State<Arc<Shared>>, request: Request) -> Result<Json<Doc<photos::VerifyOut>>, Failure> {
    let mut fields = fields_of(&shared, request).await?;
    let (Some(a), Some(b)) = (fields.remove("a"), fields.remove("b")) else {
        return Err(Failure(StatusCode::BAD_REQUEST, "verify takes a multipart body with two photos, fields `a` and `b`".into()));
    };
    let out = with_work(&shared, move |engine, _| {
        let (fa, fb) = (decode(engine, &a, "a")?, decode(engine, &b, "b")?);
        let (pa, pb) = (std::path::Path::new("a"), std::path::Path::new("b"));
        Ok(photos::verify_photos(engine, &Photo::Decoded(pb, &fb), &[Photo::Decoded(pa, &fa)])?)
    })
    .await?;
    Ok(Json(Doc::new(out)))
}

async fn list_faces(State(shared): State<Arc<Shared>>) -> Result<Json<serde_json::Value>, Failure> {
    let persons = with_work(&shared, |_, gallery| Ok(gallery.persons()?)).await?;
    Ok(Json(json!({"v": REPORT_VERSION, "persons": persons})))
}

async fn person_photos(
    State(shared): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Doc<impl serde::Serialize>>, Failure> {
    #[derive(serde::Serialize)]
    struct Photos {
        name: String,
        photos: Vec<crate::gallery::PhotoSummary>,
    }
    let n = name.clone();
    let photos = with_work(&shared, move |_, gallery| Ok(gallery.photos(&n)?)).await?;
    Ok(Json(Doc::new(Photos { name, photos })))
}

async fn add_photo(
    State(shared): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    request: Request,
) -> Result<(StatusCode, Json<serde_json::Value>), Failure> {
    // The body first: answering before reading it would break the client's upload.
    let bytes = upload(&shared, request, "file").await?;
    crate::gallery::check_name(&name)?;
    let label = headers.get("x-file-name").and_then(|v| v.to_str().ok()).unwrap_or("upload").to_string();
    let n = name.clone();
    let added = with_work(&shared, move |engine, gallery| {
        use sha2::Digest;
        let hash = crate::model::hex(&sha2::Sha256::digest(&bytes));
        // The same photo under another name would make two people one face: refused, as `facewatch enroll` does.
        let owners: Vec<String> = gallery.owners_of(&hash)?.into_iter().filter(|o| *o != n).collect();
        if !owners.is_empty() {
            return Ok(Err(owners));
        }
        let item = crate::jobs::enroll::embed_photo(engine, std::path::Path::new(&format!("api:{label}")), &bytes, hash)?;
        Ok(Ok(gallery.enroll(&n, &[item])?))
    })
    .await?
    .map_err(|owners| Failure(StatusCode::CONFLICT, format!("the same photo is already enrolled as {}", owners.join(", "))))?;
    let status = if added > 0 { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({"v": REPORT_VERSION, "name": name, "added": added}))))
}

async fn remove_person(State(shared): State<Arc<Shared>>, UrlPath(name): UrlPath<String>) -> Result<Json<serde_json::Value>, Failure> {
    let n = name.clone();
    let removed = with_work(&shared, move |_, gallery| Ok(gallery.remove(&n)?)).await?;
    Ok(Json(json!({"v": REPORT_VERSION, "name": name, "embeddings": removed})))
}

async fn remove_photo(
    State(shared): State<Arc<Shared>>,
    UrlPath((name, id)): UrlPath<(String, String)>,
) -> Result<Json<Doc<crate::gallery::RemovedPhoto>>, Failure> {
    let id: i64 = id.parse().map_err(|_| Failure(StatusCode::BAD_REQUEST, format!("photo id `{id}` is not an integer id")))?;
    let removed = with_work(&shared, move |_, gallery| {
        // The photo must be this person's: a URL naming someone else's photo removes nothing.
        if !gallery.photos(&name)?.iter().any(|p| p.id == id) {
            return Err(GalleryError::UnknownPhoto(id).into());
        }
        Ok(gallery.remove_photo(id)?)
    })
    .await?;
    Ok(Json(Doc::new(removed)))
}

async fn snapshot(State(shared): State<Arc<Shared>>, UrlPath(path): UrlPath<String>) -> Result<Response, Failure> {
    let not_found = || Failure(StatusCode::NOT_FOUND, format!("no snapshot {path}"));
    let root = shared
        .snapshots
        .as_ref()
        .ok_or_else(|| Failure(StatusCode::NOT_FOUND, "snapshots are off ([snapshots] enabled = false)".into()))?;
    let (root, rel) = (root.clone(), path.clone());
    let read = move || -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut crate::sinks::snapshots::open(&root, &rel)?, &mut bytes)?;
        Ok(bytes)
    };
    let bytes = tokio::task::spawn_blocking(read).await.ok().and_then(Result::ok).ok_or_else(not_found)?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, max-age=86400")], bytes).into_response())
}

async fn events(State(shared): State<Arc<Shared>>) -> Sse<impl futures_core::Stream<Item = Result<SseEvent, std::convert::Infallible>>> {
    let mut rx = shared.feed.subscribe();
    let dropped = shared.feed.dropped_counter();
    let stream = async_stream(move |tx| async move {
        loop {
            let item = match rx.recv().await {
                Ok(line) => SseEvent::default().data(&*line),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    dropped.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    SseEvent::default().data(json!({"v": REPORT_VERSION, "type": "events_dropped", "dropped": n}).to_string())
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            if tx.send(Ok(item)).await.is_err() {
                return;
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A stream fed by an async task through a small channel (what `async-stream` would give, without the macro).
fn async_stream<T: Send + 'static, F, Fut>(f: F) -> impl futures_core::Stream<Item = T>
where
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    ReceiverStream(rx)
}

/// An mpsc receiver as a stream.
struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> futures_core::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

/// Parses `body` as the multipart body of a request with `content_type`, as the API's routes do: each field's name
/// and size, or the message of the 400 answer. For the fuzz target of the multipart parser (`fuzz/`): the body
/// is in memory, so the parse completes without a runtime.
pub fn parse_multipart(content_type: &str, body: Vec<u8>) -> Result<Vec<(String, usize)>, String> {
    let request = Request::builder()
        .method("POST")
        .header(header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body))
        .map_err(|e| e.to_string())?;
    let mut parse = std::pin::pin!(multipart_fields(request));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::future::Future::poll(parse.as_mut(), &mut cx) {
        std::task::Poll::Ready(Ok(fields)) => Ok(fields.into_iter().map(|(k, v)| (k, v.len())).collect()),
        std::task::Poll::Ready(Err(Failure(_, message))) => Err(message),
        std::task::Poll::Pending => Err("the parse waited on a body already in memory".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multipart_body_in_memory_parses_without_a_runtime() {
        let body = b"--XX\r\ncontent-disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--XX--\r\n".to_vec();
        assert_eq!(parse_multipart("multipart/form-data; boundary=XX", body), Ok(vec![("file".to_string(), 3)]));
        assert!(parse_multipart("multipart/form-data; boundary=XX", b"garbage".to_vec()).is_err());
        assert!(parse_multipart("multipart/form-data", Vec::new()).is_err(), "no boundary");
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_routes_served() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("OpenAPI JSON");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in
                item.as_object().expect("path item").keys().filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
            {
                documented.push((method.clone(), path.clone()));
            }
        }
        documented.sort();
        let mut served: Vec<(String, String)> =
            ROUTES.iter().chain(compreface::ROUTES).map(|(m, p)| (m.to_string(), p.to_string())).collect();
        served.sort();
        assert_eq!(documented, served);
    }

    #[test]
    fn the_snapshot_route_is_where_events_point() {
        let route = format!("{}/{{path}}", crate::base::event::SNAPSHOT_ROUTE);
        assert!(ROUTES.contains(&("get", route.as_str())), "{route}");
    }

    #[test]
    fn keys_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd") && !same("abc", "ab") && !same("", "a"));
    }
}
