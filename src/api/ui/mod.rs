//! The web page (`/ui/…`), served by the daemon's HTTP server when `[api]` is on: Live (each camera's annotated
//! picture and who is in view), Events (the latest identity decisions with their faces), People (the gallery: photos,
//! adding, renaming, removing, "this face was not X"), Strangers (their best faces, when and where seen; name, merge,
//! forget) and Check a photo.
//!
//! Log in with an API key; the page then keeps an HttpOnly, `SameSite=Strict` session cookie (12 hours idle at
//! most), and every form carries the session's CSRF token, checked in constant time (a form posted without it, or
//! from another origin, is refused). Every answer is `Cache-Control: no-store` with a Content-Security-Policy that
//! allows this server's own stylesheet, script and pictures only: no inline script, no third party, nothing framed.
//! Everything the page needs is compiled into the binary.

mod html;
mod pages;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use parking_lot::Mutex;

use super::Shared;

/// A session lives this long without a request.
const IDLE: Duration = Duration::from_secs(12 * 3600);
/// The session cookie's name.
const COOKIE: &str = "facewatch_session";
/// A wrong key waits this long before its answer (guessing is slow).
const WRONG_KEY_DELAY: Duration = Duration::from_millis(800);
/// Logins in progress at once; more are answered 429 at once, so that clients without a key cannot hold the
/// server's connections with slow login forms.
const MAX_LOGINS: usize = 8;
/// A login form is a key: this many bytes at most, arriving within [`LOGIN_TIMEOUT`].
const LOGIN_MAX_BYTES: usize = 4 << 10;
/// See [`LOGIN_MAX_BYTES`].
const LOGIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Live streams one session may keep open at once (a page shows one per camera).
const MAX_STREAMS: usize = 16;

/// One logged-in browser.
struct Session {
    csrf: String,
    last: Instant,
    /// Live streams open now.
    streams: Arc<std::sync::atomic::AtomicUsize>,
}

/// The logged-in browsers, by session token.
#[derive(Default)]
pub(super) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    /// Logins in progress.
    logins: Arc<std::sync::atomic::AtomicUsize>,
}

/// A place taken among a bounded number (logins in progress, a session's streams), given back when dropped.
pub(super) struct Slot(Arc<std::sync::atomic::AtomicUsize>);

impl Slot {
    fn take(count: &Arc<std::sync::atomic::AtomicUsize>, max: usize) -> Option<Self> {
        use std::sync::atomic::Ordering;
        match count.fetch_add(1, Ordering::AcqRel) < max {
            true => Some(Self(count.clone())),
            false => {
                count.fetch_sub(1, Ordering::AcqRel);
                None
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// 32 random bytes as hex (the kernel's generator).
fn random_token() -> String {
    let mut buf = [0u8; 32];
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: getrandom writes at most the given length into the buffer.
        let n = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        }
    }
    crate::model::hex(&buf)
}

impl Sessions {
    /// A new session; its (token, csrf).
    fn open(&self) -> (String, String) {
        let (token, csrf) = (random_token(), random_token());
        let mut map = self.map.lock();
        map.retain(|_, s| s.last.elapsed() < IDLE);
        map.insert(token.clone(), Session { csrf: csrf.clone(), last: Instant::now(), streams: Arc::default() });
        (token, csrf)
    }

    /// The count of logins in progress.
    fn login_count(&self) -> Arc<std::sync::atomic::AtomicUsize> {
        self.logins.clone()
    }

    /// Whether `token` is a live session (without counting as its use: a stream checks this while it runs).
    pub(super) fn alive(&self, token: &str) -> bool {
        self.map.lock().get(token).is_some_and(|s| s.last.elapsed() < IDLE)
    }

    /// A place for one more live stream of session `token`, if it has one left ([`MAX_STREAMS`]).
    pub(super) fn stream_slot(&self, token: &str) -> Option<Slot> {
        let streams = self.map.lock().get(token)?.streams.clone();
        Slot::take(&streams, MAX_STREAMS)
    }

    /// The CSRF token of a live session, refreshing it.
    fn check(&self, token: &str) -> Option<String> {
        let mut map = self.map.lock();
        let s = map.get_mut(token).filter(|s| s.last.elapsed() < IDLE)?;
        s.last = Instant::now();
        Some(s.csrf.clone())
    }

    fn close(&self, token: &str) {
        self.map.lock().remove(token);
    }
}

/// The session of a request, once checked: what handlers put in their forms.
#[derive(Clone)]
pub(super) struct UiSession {
    pub(super) token: String,
    csrf: String,
}

fn cookie_token(request: &Request) -> Option<String> {
    let cookies = request.headers().get_all(header::COOKIE);
    cookies
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The headers of every page answer ([module docs](self)).
async fn page_headers(request: Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(request).await;
    let h = r.headers_mut();
    let csp = "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; \
               form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // `same-origin`: nothing leaves for another site, and a form's Origin stays its own (with `no-referrer` the
    // browser sends `Origin: null` on every POST).
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// Lets a logged-in browser through (its session handed to the handler); anything else is sent to the login page
/// (a page) or refused (a picture, a form, the live stream). A form from another origin is refused whatever its
/// cookie: the browser says where it comes from.
async fn guard(State(shared): State<Arc<Shared>>, mut request: Request, next: axum::middleware::Next) -> Response {
    let session = cookie_token(&request).and_then(|token| shared.sessions.check(&token).map(|csrf| UiSession { token, csrf }));
    let Some(session) = session else {
        let wants_page = request.method() == axum::http::Method::GET && !request.uri().path().starts_with("/ui/img/");
        return match wants_page {
            true => Redirect::to("/ui/login").into_response(),
            false => (StatusCode::UNAUTHORIZED, "log in first").into_response(),
        };
    };
    if request.method() != axum::http::Method::GET && cross_origin(&request) {
        return (StatusCode::FORBIDDEN, "a form from another origin").into_response();
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// Whether the browser says the request comes from another origin (`Sec-Fetch-Site`, `Origin`).
fn cross_origin(request: &Request) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()), host) {
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, h)| h) != Some(host),
        _ => false,
    }
}

/// A form's fields, once its CSRF token is checked; a form without the session's token is refused (403).
pub(super) async fn form(shared: &Shared, session: &UiSession, request: Request) -> Result<HashMap<String, String>, Response> {
    let (_, bytes) = super::read_body(request, shared.max_upload, shared.body_timeout).await.map_err(IntoResponse::into_response)?;
    let fields: HashMap<String, String> = form_urlencoded::parse(&bytes).into_owned().collect();
    csrf_ok(session, fields.get("csrf").map(String::as_str)).map_err(|r| *r)?;
    Ok(fields)
}

/// A multipart form's fields (text) and files (each with its field name and file name), its token checked.
pub(super) async fn upload_form(
    shared: &Shared,
    session: &UiSession,
    request: Request,
) -> Result<(HashMap<String, String>, Vec<(String, String, Bytes)>), Response> {
    use axum::extract::FromRequest;
    let (parts, bytes) = super::read_body(request, shared.max_upload, shared.body_timeout).await.map_err(IntoResponse::into_response)?;
    let request = Request::from_parts(parts, Body::from(bytes));
    let bad = |m: String| (StatusCode::BAD_REQUEST, m).into_response();
    let mut multipart = axum::extract::Multipart::from_request(request, &()).await.map_err(|e| bad(e.body_text()))?;
    let (mut fields, mut files) = (HashMap::new(), Vec::new());
    while let Some(f) = multipart.next_field().await.map_err(|e| bad(e.body_text()))? {
        let name = f.name().unwrap_or_default().to_string();
        match f.file_name().map(str::to_string) {
            Some(file) => {
                let data = f.bytes().await.map_err(|e| bad(e.body_text()))?;
                if !data.is_empty() {
                    files.push((name, file, data));
                }
            }
            None => {
                let text = f.text().await.map_err(|e| bad(e.body_text()))?;
                fields.insert(name, text);
            }
        }
    }
    csrf_ok(session, fields.get("csrf").map(String::as_str)).map_err(|r| *r)?;
    Ok((fields, files))
}

/// Whether a form carries the session's CSRF token; `Err` is the 403 to answer when it does not.
fn csrf_ok(session: &UiSession, given: Option<&str>) -> Result<(), Box<Response>> {
    match given.is_some_and(|g| super::same(g, &session.csrf)) {
        true => Ok(()),
        false => {
            Err(Box::new((StatusCode::FORBIDDEN, "the form's token is missing or wrong: reload the page and try again").into_response()))
        }
    }
}

async fn login_page() -> Response {
    pages::html(StatusCode::OK, pages::login(None))
}

async fn login(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if cross_origin(&request) {
        return (StatusCode::FORBIDDEN, "a form from another origin").into_response();
    }
    let Some(_slot) = Slot::take(&shared.sessions.login_count(), MAX_LOGINS) else {
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")], "too many logins at once: try again").into_response();
    };
    let bytes = match super::read_body(request, LOGIN_MAX_BYTES, LOGIN_TIMEOUT.min(shared.body_timeout)).await {
        Ok((_, b)) => b,
        Err(e) => return e.into_response(),
    };
    let key = form_urlencoded::parse(&bytes).find(|(k, _)| k == "key").map(|(_, v)| v.into_owned()).unwrap_or_default();
    if !shared.keys.iter().any(|k| super::same(k, key.trim())) {
        tokio::time::sleep(WRONG_KEY_DELAY).await;
        return pages::html(StatusCode::UNAUTHORIZED, pages::login(Some("That key is not one of this daemon's API keys.")));
    }
    let (token, _) = shared.sessions.open();
    let mut r = Redirect::to("/ui/live").into_response();
    let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/ui");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(shared): State<Arc<Shared>>, axum::Extension(session): axum::Extension<UiSession>, request: Request) -> Response {
    if let Err(r) = form(&shared, &session, request).await {
        return r;
    }
    shared.sessions.close(&session.token);
    let mut r = Redirect::to("/ui/login").into_response();
    let gone = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&gone) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("static/ui.css")).into_response()
}

async fn icon() -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml")], include_str!("static/icon.svg")).into_response()
}

async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("static/ui.js")).into_response()
}

/// The web page's routes, under `/ui`.
pub(super) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    let guarded = Router::new()
        .route("/ui/logout", post(logout))
        .route("/ui/live", get(pages::live))
        .route("/ui/live.json", get(pages::live_json))
        .route("/ui/live/{camera}", get(pages::live_stream))
        .route("/ui/events", get(pages::events))
        .route("/ui/img/event/{n}", get(pages::event_picture))
        .route("/ui/img/photo/{id}", get(pages::photo_picture))
        .route("/ui/img/stranger/{id}", get(pages::stranger_picture))
        .route("/ui/people", get(pages::people).post(pages::add_photos))
        .route("/ui/people/{name}", get(pages::person))
        .route("/ui/people/{name}/rename", post(pages::rename))
        .route("/ui/people/{name}/remove", post(pages::remove_person))
        .route("/ui/photos/{id}/remove", post(pages::remove_photo))
        .route("/ui/photos/{id}/move", post(pages::move_photo))
        .route("/ui/strangers", get(pages::strangers))
        .route("/ui/strangers/{label}", get(pages::stranger))
        .route("/ui/strangers/{label}/name", post(pages::name_stranger))
        .route("/ui/strangers/{label}/merge", post(pages::merge_stranger))
        .route("/ui/strangers/{label}/forget", post(pages::forget_stranger))
        .route("/ui/check", get(pages::check_page).post(pages::check))
        .layer(axum::middleware::from_fn_with_state(shared, guard));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/live") }))
        .route("/ui", get(|| async { Redirect::to("/ui/live") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/live") }))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/static/ui.css", get(stylesheet))
        .route("/ui/static/ui.js", get(script))
        .route("/ui/static/icon.svg", get(icon))
        .route("/favicon.ico", get(|| async { Redirect::to("/ui/static/icon.svg") }))
        .merge(guarded)
        .layer(axum::middleware::from_fn(page_headers))
}
