//! The event socket: a Unix stream socket serving JSON lines to any number of subscribers, on its own tokio thread.
//!
//! The pipeline side ([`SocketServer::publish`]) only locks a short mutex and pushes into each subscriber's bounded
//! queue: when a queue is full its *oldest* event is dropped and counted, and the subscriber gets an
//! `events_dropped` line before its next events. A subscriber that stops reading therefore loses its own
//! events and nothing else; one that disconnects is removed. A new subscriber first gets `hello` and the latest
//! event of every live track, so it knows who is in front of the camera without waiting for a change.

use std::collections::{BTreeMap, VecDeque};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::{unix_seconds, Event, EventKind, EventSink, PublishError};

#[derive(Default)]
struct Queue {
    lines: VecDeque<Arc<str>>,
    dropped: u64,
    closing: bool,
    gone: bool,
}

struct Subscriber {
    queue: Mutex<Queue>,
    wake: Notify,
}

/// Shared between the pipeline's publish thread and the socket thread.
struct Hub {
    camera: String,
    capacity: usize,
    subscribers: Mutex<Vec<Arc<Subscriber>>>,
    /// Latest line of every live track, replayed to new subscribers.
    live: Mutex<BTreeMap<u64, Arc<str>>>,
    dropped_total: Arc<std::sync::atomic::AtomicU64>,
}

impl Hub {
    /// Queues `line` for every subscriber. The live-track snapshot is updated under the same lock that
    /// [`Hub::subscribe`] takes, so a subscriber arriving meanwhile gets the event exactly once: in its snapshot
    /// or in its queue.
    fn push(&self, line: &Arc<str>, track: Option<(u64, bool)>) {
        let mut subs = self.subscribers.lock();
        if let Some((id, ended)) = track {
            let mut live = self.live.lock();
            if ended {
                live.remove(&id);
            } else {
                live.insert(id, line.clone());
            }
        }
        subs.retain(|s| !s.queue.lock().gone);
        for s in subs.iter() {
            let mut q = s.queue.lock();
            if q.lines.len() >= self.capacity {
                q.lines.pop_front();
                q.dropped += 1;
                self.dropped_total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            q.lines.push_back(line.clone());
            drop(q);
            s.wake.notify_one();
        }
    }

    fn subscribe(&self) -> Arc<Subscriber> {
        let mut hello = Event::new(EventKind::Hello, &self.camera);
        hello.version = Some(env!("CARGO_PKG_VERSION").to_string());
        hello.emit_ts = unix_seconds(SystemTime::now());
        let mut subs = self.subscribers.lock();
        let mut lines: VecDeque<Arc<str>> = VecDeque::from([Arc::from(hello.to_line())]);
        lines.extend(self.live.lock().values().cloned());
        let s = Arc::new(Subscriber { queue: Mutex::new(Queue { lines, ..Queue::default() }), wake: Notify::new() });
        s.wake.notify_one();
        subs.push(s.clone());
        s
    }
}

/// The event socket and the thread serving it.
pub struct SocketServer {
    path: PathBuf,
    hub: Arc<Hub>,
    shutdown: Arc<Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Removes a stale socket left by a daemon that died; refuses to take over a live one or a non-socket file.
fn clear_stale(path: &Path) -> Result<(), String> {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    if !meta.file_type().is_socket() {
        return Err("exists and is not a socket".into());
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err("another facewatch is already serving events there".into());
    }
    std::fs::remove_file(path).map_err(|e| format!("cannot remove the stale socket: {e}"))
}

impl SocketServer {
    /// Binds `path` (mode 0660; its directory is created 0750 when absent) and starts serving on a thread named
    /// `socket`. `queue` is each subscriber's capacity.
    pub fn bind(path: &Path, camera: &str, queue: usize) -> Result<Self, PublishError> {
        let err = |message: String| PublishError::Socket { path: path.to_path_buf(), message };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::DirBuilder::new().recursive(true).mode(0o750).create(dir).map_err(|e| err(e.to_string()))?;
        }
        clear_stale(path).map_err(err)?;
        let listener = std::os::unix::net::UnixListener::bind(path).map_err(|e| err(e.to_string()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(|e| err(e.to_string()))?;
        listener.set_nonblocking(true).map_err(|e| err(e.to_string()))?;
        let hub = Arc::new(Hub {
            camera: camera.to_string(),
            capacity: queue.max(1),
            subscribers: Mutex::new(Vec::new()),
            live: Mutex::new(BTreeMap::new()),
            dropped_total: Default::default(),
        });
        let shutdown = Arc::new(Notify::new());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build().map_err(|e| err(e.to_string()))?;
        let (h, s) = (hub.clone(), shutdown.clone());
        let thread = std::thread::Builder::new()
            .name("socket".into())
            .spawn(move || serve(runtime, listener, h, s))
            .map_err(|e| err(e.to_string()))?;
        info!(path = %path.display(), queue, "Serving events.");
        Ok(Self { path: path.to_path_buf(), hub, shutdown, thread: Some(thread) })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Connected subscribers.
    pub fn subscribers(&self) -> usize {
        self.hub.subscribers.lock().iter().filter(|s| !s.queue.lock().gone).count()
    }

    /// Events dropped so far across all subscribers.
    pub fn dropped(&self) -> u64 {
        self.hub.dropped_total.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The counter behind [`SocketServer::dropped`], to read after the server has been handed to the pipeline.
    pub fn dropped_counter(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.hub.dropped_total.clone()
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        for s in self.hub.subscribers.lock().iter() {
            s.queue.lock().closing = true;
            s.wake.notify_one();
        }
        self.shutdown.notify_one();
        let _ = thread.join();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl EventSink for SocketServer {
    fn publish(&mut self, event: &Event, line: &Arc<str>) {
        let track = event.track_id.zip(event.kind).map(|(id, kind)| (id, kind == EventKind::TrackEnded));
        self.hub.push(line, track);
    }

    fn close(&mut self) {
        self.stop();
    }
}

impl Drop for SocketServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The socket thread: accepts until shut down, then gives subscribers a moment to receive their last lines.
fn serve(runtime: tokio::runtime::Runtime, listener: std::os::unix::net::UnixListener, hub: Arc<Hub>, shutdown: Arc<Notify>) {
    runtime.block_on(async move {
        let listener = match tokio::net::UnixListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "Event socket unusable; events go to the other sinks only.");
                return;
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                () = shutdown.notified() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let sub = hub.subscribe();
                        debug!("Subscriber connected.");
                        tasks.spawn(subscriber(stream, sub, hub.camera.clone()));
                    }
                    Err(e) => warn!(error = %e, "Accepting a subscriber failed."),
                },
            }
        }
        // Subscribers that keep up get their last lines; a stalled one is not waited for.
        let _ = tokio::time::timeout(Duration::from_millis(500), async { while tasks.join_next().await.is_some() {} }).await;
    });
}

/// Serves one subscriber until it disconnects or the server closes.
async fn subscriber(stream: tokio::net::UnixStream, sub: Arc<Subscriber>, camera: String) {
    let (mut rd, mut wr) = stream.into_split();
    let mut ignored = [0u8; 256];
    let mut buf = Vec::with_capacity(4096);
    loop {
        tokio::select! {
            () = sub.wake.notified() => {
                let (lines, dropped, closing) = {
                    let mut q = sub.queue.lock();
                    (std::mem::take(&mut q.lines), std::mem::take(&mut q.dropped), q.closing)
                };
                buf.clear();
                if dropped > 0 {
                    let mut notice = Event::new(EventKind::EventsDropped, &camera);
                    notice.dropped = Some(dropped);
                    notice.emit_ts = unix_seconds(SystemTime::now());
                    buf.extend_from_slice(notice.to_line().as_bytes());
                    buf.push(b'\n');
                }
                for l in &lines {
                    buf.extend_from_slice(l.as_bytes());
                    buf.push(b'\n');
                }
                if wr.write_all(&buf).await.is_err() || closing {
                    break;
                }
            }
            n = rd.read(&mut ignored) => if !matches!(n, Ok(k) if k > 0) { break },
        }
    }
    sub.queue.lock().gone = true;
    debug!("Subscriber left.");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    #[test]
    fn a_subscriber_that_falls_behind_loses_its_oldest_events_is_told_and_keeps_the_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run/events.sock");
        let mut server = SocketServer::bind(&path, "cam", 8).expect("bind");
        assert_eq!(std::fs::metadata(&path).expect("socket").permissions().mode() & 0o777, 0o660);
        let client = std::os::unix::net::UnixStream::connect(&path).expect("connect");
        let started = std::time::Instant::now();
        while server.subscribers() < 1 {
            assert!(started.elapsed() < Duration::from_secs(5), "subscriber never registered");
            std::thread::sleep(Duration::from_millis(5));
        }
        // The subscriber reads, but far slower than events come: far more events than its queue holds are
        // published without waiting for it.
        let reader = std::thread::spawn(move || -> Vec<Event> {
            BufReader::new(client)
                .lines()
                .map_while(Result::ok)
                .map(|l| {
                    std::thread::sleep(Duration::from_micros(20));
                    serde_json::from_str(&l).expect("JSON line")
                })
                .collect()
        });
        let n = 20_000u64;
        for i in 0..n {
            let mut e = Event::new(EventKind::TrackUpdated, "cam");
            e.track_id = Some(1);
            e.frame_seq = Some(i);
            server.publish(&e, &Arc::from(e.to_line()));
        }
        assert!(server.dropped() > 0, "the queue of 8 overflowed");
        server.close();
        assert!(!path.exists(), "the socket file is removed when the server closes");
        let lines = reader.join().expect("reader");
        assert_eq!(lines[0].kind, Some(EventKind::Hello));
        let told: u64 = lines.iter().filter(|e| e.kind == Some(EventKind::EventsDropped)).filter_map(|e| e.dropped).sum();
        let received = lines.iter().filter(|e| e.kind == Some(EventKind::TrackUpdated)).count() as u64;
        assert!(told > 0, "the subscriber was told it lost events");
        assert_eq!(received + told, n, "every event was either delivered or counted as dropped");
        assert_eq!(lines.last().and_then(|e| e.frame_seq), Some(n - 1), "the newest event is kept");
    }
}
