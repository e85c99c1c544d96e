//! The API's connections: HTTP/1.1 served by hyper on the API's own accept loop, so that no client, keyed or not,
//! can hold more than its share of the daemon.
//!
//! - At most `api.max_connections` are open. At the limit a new connection closes the one that has been idle the
//!   longest (no request in flight: it never sent one, is still trickling its headers, or waits between
//!   requests), so a flood of idle connections only ever displaces itself; when every connection is busy, the new
//!   one gets a 503 and is closed at once.
//! - A connection idle for `api.idle_timeout_s` is closed (hyper's header-read timeout says the same for a request
//!   head that arrives too slowly).
//! - Out of file descriptors (`EMFILE`), the loop closes the idlest connection and pauses instead of spinning; the
//!   daemon's descriptor budget keeps the connections within the limit, so capture never starves.
//! - On stop, busy connections get a second to finish, then everything is closed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

/// How the accept loop bounds its connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// A connection with no request in flight is closed after this long.
    pub idle_timeout: Duration,
}

/// One open connection, as the loop sees it.
struct Conn {
    /// Requests in flight (a response whose body is still streaming counts).
    busy: AtomicUsize,
    /// When it last became idle, in ms since the server started.
    idle_since_ms: AtomicU64,
    /// Told to close at once.
    close: Notify,
}

/// The open connections.
struct Registry {
    started: Instant,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn len(&self) -> usize {
        self.conns.lock().len()
    }

    fn add(&self, id: u64) -> Arc<Conn> {
        let conn = Arc::new(Conn { busy: AtomicUsize::new(0), idle_since_ms: AtomicU64::new(self.now_ms()), close: Notify::new() });
        self.conns.lock().insert(id, conn.clone());
        conn
    }

    fn remove(&self, id: u64) {
        self.conns.lock().remove(&id);
    }

    /// Closes the connection idle the longest; false when every one is busy.
    fn evict_idlest(&self) -> bool {
        let mut conns = self.conns.lock();
        let idlest = conns
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.idle_since_ms.load(Ordering::Acquire))
            .map(|(id, _)| *id);
        match idlest.and_then(|id| conns.remove(&id)) {
            Some(conn) => {
                conn.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Closes every connection idle for longer than `limit`; how many.
    fn reap(&self, limit: Duration) -> usize {
        let now = self.now_ms();
        let limit = limit.as_millis() as u64;
        let mut conns = self.conns.lock();
        let stale: Vec<u64> = conns
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0 && now.saturating_sub(c.idle_since_ms.load(Ordering::Acquire)) > limit)
            .map(|(id, _)| *id)
            .collect();
        for id in &stale {
            if let Some(c) = conns.remove(id) {
                c.close.notify_one();
            }
        }
        stale.len()
    }
}

/// Marks its connection busy while it lives: held by the request's handler and then by the response body, so a
/// streaming answer (the event stream) is never taken for idle.
struct Busy {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Busy {
    fn new(conn: Arc<Conn>, registry: Arc<Registry>) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Self { conn, registry }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn.idle_since_ms.store(self.registry.now_ms(), Ordering::Release);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection marked busy until it is sent or dropped.
struct Guarded {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for Guarded {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a connection beyond the limit when none can make room: written without waiting, then closed.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 72\r\n\
connection: close\r\nretry-after: 1\r\n\r\n{\"v\":1,\"error\":\"too many connections (api.max_connections); try again\"}\n";

/// At most one warning per this interval from the accept loop.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` within `limits` until `stop` fires.
pub async fn serve(listener: tokio::net::TcpListener, router: Router, limits: Limits, stop: tokio::sync::oneshot::Receiver<()>) {
    let registry = Arc::new(Registry { started: Instant::now(), conns: Mutex::new(HashMap::new()) });
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1).min(limits.idle_timeout));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut next_id, mut last_warning) = (0u64, None::<Instant>);
    let mut warn = |message: &str, error: Option<&std::io::Error>| {
        if last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            last_warning = Some(Instant::now());
            match error {
                Some(e) => tracing::warn!(error = %e, max_connections = limits.max_connections, "{message}"),
                None => tracing::warn!(max_connections = limits.max_connections, "{message}"),
            }
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                registry.reap(limits.idle_timeout);
                while tasks.try_join_next().is_some() {}
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if registry.len() >= limits.max_connections && !registry.evict_idlest() {
                        // Every connection is busy: answer without waiting (a full socket buffer loses only the
                        // courtesy) and close.
                        let _ = stream.try_write(BUSY_RESPONSE);
                        warn("API connection limit reached with every connection busy; new connections get 503.", None);
                        continue;
                    }
                    next_id += 1;
                    let conn = registry.add(next_id);
                    tasks.spawn(connection(stream, router.clone(), conn, registry.clone(), next_id, limits.idle_timeout, closing_rx.clone()));
                }
                Err(e) => {
                    // Out of descriptors the listener stays readable: make room, and pause instead of spinning.
                    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                        registry.evict_idlest();
                    }
                    warn("Accepting an API connection failed; pausing.", Some(&e));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = closing_tx.send(true);
    // Busy connections finish their answer (a second at most); idle ones close now.
    let _ = tokio::time::timeout(Duration::from_secs(2), async { while tasks.join_next().await.is_some() {} }).await;
}

/// Serves one connection until the client leaves, it is closed as idle or evicted, or the server stops.
async fn connection(
    stream: tokio::net::TcpStream,
    router: Router,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    id: u64,
    idle_timeout: Duration,
    mut closing: watch::Receiver<bool>,
) {
    let (c, r) = (conn.clone(), registry.clone());
    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let busy = Busy::new(c.clone(), r.clone());
        let mut router = router.clone();
        async move {
            // The router is always ready: `call` without `poll_ready` is its documented use.
            let response =
                tower_service::Service::call(&mut router, request.map(Body::new)).await.unwrap_or_else(|e: Infallible| match e {});
            Ok::<_, Infallible>(response.map(|inner| Body::new(Guarded { inner, _busy: busy })))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(idle_timeout).keep_alive(true);
    let served = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(served);
    tokio::select! {
        _ = served.as_mut() => {}
        () = conn.close.notified() => {}
        _ = async { let _ = closing.wait_for(|c| *c).await; } => {
            served.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), served.as_mut()).await;
        }
    }
    registry.remove(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry { started: Instant::now(), conns: Mutex::new(HashMap::new()) }
    }

    #[test]
    fn room_is_made_by_closing_the_idlest_connection_never_a_busy_one() {
        let r = Arc::new(registry());
        let (a, b, c) = (r.add(1), r.add(2), r.add(3));
        a.idle_since_ms.store(50, Ordering::Release);
        b.idle_since_ms.store(10, Ordering::Release);
        c.idle_since_ms.store(0, Ordering::Release);
        let _busy = Busy::new(c.clone(), r.clone());
        assert!(r.evict_idlest());
        assert_eq!(r.len(), 2);
        assert!(r.conns.lock().contains_key(&3), "the busy one stays although it was idle first");
        assert!(!r.conns.lock().contains_key(&2), "the idlest of the rest went");
        assert!(r.evict_idlest());
        assert!(!r.evict_idlest(), "only a busy connection is left");
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn connections_idle_past_the_limit_are_reaped() {
        let r = Arc::new(registry());
        let (old, fresh, busy) = (r.add(1), r.add(2), r.add(3));
        std::thread::sleep(Duration::from_millis(30));
        fresh.idle_since_ms.store(r.now_ms(), Ordering::Release);
        let _b = Busy::new(busy, r.clone());
        assert_eq!(r.reap(Duration::from_millis(20)), 1);
        drop(old);
        assert_eq!(r.len(), 2);
    }
}
