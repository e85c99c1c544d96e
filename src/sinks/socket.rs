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
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::EventSink;
use crate::base::{Event, EventKind};

/// Why the event socket cannot be served, or (`subscribe`) believed.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The socket could not be created.
    #[error("failed to serve events on {path}: {source}")]
    Socket {
        /// Socket path.
        path: std::path::PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The socket path is not safe to serve on, or is served already.
    #[error("failed to serve events on {path}: {source}")]
    Refused {
        /// Socket path.
        path: std::path::PathBuf,
        /// Why.
        source: Refusal,
    },
    /// `subscribe`: the server answering on the socket is not one to believe.
    #[error("refusing the events served on {path}: {source}")]
    Untrusted {
        /// Socket path.
        path: std::path::PathBuf,
        /// Why.
        source: Refusal,
    },
}

impl crate::exit::Exit for SocketError {
    fn exit_code(&self) -> u8 {
        crate::exit::SOCKET
    }
}

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
    /// Subscribers served at once (`publish.max_subscribers`).
    max_subscribers: usize,
}

impl Hub {
    /// Subscribers still connected.
    fn connected(&self) -> usize {
        self.subscribers.lock().iter().filter(|s| !s.queue.lock().gone).count()
    }
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
        let hello = Event::hello(&self.camera);
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
    /// The socket file this server bound, (device, inode): only that file is ever removed.
    bound: Option<(u64, u64)>,
    hub: Arc<Hub>,
    shutdown: Arc<Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Why a socket path is not served.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A file that is not a socket is there.
    #[error("it exists and is not a socket")]
    NotASocket,
    /// A daemon answers there.
    #[error("another facewatch is already serving events there")]
    InUse,
    /// A socket is there and a connection failed for another reason than "refused".
    #[error("a socket is there and cannot be proven stale; remove it by hand if no facewatch serves it")]
    NotProvenStale(#[source] std::io::Error),
    /// The stale socket could not be removed.
    #[error("the stale socket cannot be removed")]
    StaleNotRemoved(#[source] std::io::Error),
    /// The directory could not be read.
    #[error("its directory {} cannot be read", .0.display())]
    DirectoryUnreadable(PathBuf, #[source] std::io::Error),
    /// Users other than its owner may write to the directory, and it has no sticky bit.
    #[error(
        "its directory {} is writable by {} (mode {mode:o}, no sticky bit), so another user could replace the socket; use a private directory",
        .dir.display(), if .mode & 0o002 != 0 { "every user" } else { "its group" }
    )]
    UnsafeDirectory {
        /// The directory.
        dir: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The directory belongs to another user, who could replace the socket.
    #[error("its directory {} belongs to uid {owner}, neither this user (uid {me}) nor root, who could replace the socket; use a directory of your own", .dir.display())]
    ForeignDirectory {
        /// The directory.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's user.
        me: u32,
    },
    /// `subscribe`: the server's user is not the socket file's owner.
    #[error("the socket file belongs to uid {file} but the process answering on it runs as uid {peer}")]
    NotTheOwner {
        /// The socket file's owner.
        file: u32,
        /// The server's user (`SO_PEERCRED`).
        peer: u32,
    },
    /// `subscribe`: the server runs as a user who is neither root, this user nor the service user.
    #[error("the process answering on it runs as uid {peer} (pid {pid}), neither root, you (uid {me}) nor the `{SERVICE_USER}` service user; a facewatch daemon serves events as one of them")]
    Stranger {
        /// The server's user.
        peer: u32,
        /// The server's process.
        pid: i32,
        /// The subscriber's user.
        me: u32,
    },
    /// `subscribe`: the server's credentials could not be read.
    #[error("the server's credentials cannot be read")]
    NoCredentials(#[source] std::io::Error),
}

/// The system user the packaged service runs as (`systemd/facewatch.service`).
pub const SERVICE_USER: &str = "facewatch";

/// Removes a stale socket left by a daemon that died; refuses to take over a live one or a non-socket file.
fn clear_stale(path: &Path) -> Result<(), Refusal> {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    if !meta.file_type().is_socket() {
        return Err(Refusal::NotASocket);
    }
    stale_verdict(std::os::unix::net::UnixStream::connect(path).map(drop))?;
    std::fs::remove_file(path).map_err(Refusal::StaleNotRemoved)
}

/// Whether a connect attempt proves a socket stale: only "connection refused" (nobody listens) does. Permission
/// denied, or any other failure, says nothing about whether a daemon still serves there, so the socket is kept:
/// replacing it would let one user take over another's subscribers.
fn stale_verdict(connect: std::io::Result<()>) -> Result<(), Refusal> {
    match connect {
        Ok(()) => Err(Refusal::InUse),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => Err(Refusal::NotProvenStale(e)),
    }
}

/// Refuses a directory that another user could change: one that belongs to somebody else than `owner` (the
/// daemon's user) or root, or that its group or every user may write to without the sticky bit. Either could
/// delete the socket and serve forged events in its place.
fn check_directory(dir: &Path, owner: u32) -> Result<(), Refusal> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| Refusal::DirectoryUnreadable(dir.to_path_buf(), e))?;
    if meta.uid() != owner && meta.uid() != 0 {
        return Err(Refusal::ForeignDirectory { dir: dir.to_path_buf(), owner: meta.uid(), me: owner });
    }
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(Refusal::UnsafeDirectory { dir: dir.to_path_buf(), mode: mode & 0o7777 });
    }
    Ok(())
}

/// Why the daemon would refuse to serve its socket in `dir` (for `check-config`), if it would.
pub fn directory_problem(dir: &Path) -> Option<Refusal> {
    dir.exists().then(|| check_directory(dir, crate::private::euid()).err()).flatten()
}

/// The file at `path` as (device, inode), without following a link.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The user and process at the other end of a Unix socket (`SO_PEERCRED`).
pub fn peer_credentials(stream: &impl std::os::fd::AsRawFd) -> std::io::Result<(u32, i32)> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a ucred as SO_PEERCRED wants.
    let rc =
        unsafe { libc::getsockopt(stream.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, std::ptr::addr_of_mut!(cred).cast(), &mut len) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((cred.uid, cred.pid))
}

/// The uid of the user `name`, when there is one.
pub fn uid_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut pw = std::mem::MaybeUninit::<libc::passwd>::uninit();
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwnam_r fills `pw` (with strings in `buf`) and sets `found` to it, or to null when there is none.
    let rc = unsafe { libc::getpwnam_r(c.as_ptr(), pw.as_mut_ptr(), buf.as_mut_ptr(), buf.len(), &mut found) };
    // SAFETY: on success with a non-null result, `pw` was filled.
    (rc == 0 && !found.is_null()).then(|| unsafe { pw.assume_init() }.pw_uid)
}

/// For `subscribe`: whether the process serving `stream` (connected to `path`) is a facewatch to believe. Its user
/// must own the socket file, its directory must pass the daemon's own check for that user, and it must run as root,
/// as this user or as the service user: a socket another user slipped in is refused, never read.
pub fn check_server(path: &Path, stream: &impl std::os::fd::AsRawFd) -> Result<u32, Refusal> {
    use std::os::unix::fs::MetadataExt;
    let (peer, pid) = peer_credentials(stream).map_err(Refusal::NoCredentials)?;
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() };
    if peer != 0 && peer != me && peer != crate::private::euid() && Some(peer) != uid_of(SERVICE_USER) {
        return Err(Refusal::Stranger { peer, pid, me });
    }
    let file = std::fs::symlink_metadata(path).map_err(|e| Refusal::DirectoryUnreadable(path.to_path_buf(), e))?;
    if file.uid() != peer {
        return Err(Refusal::NotTheOwner { file: file.uid(), peer });
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        check_directory(dir, peer)?;
    }
    Ok(peer)
}

/// At most one warning per this interval from the accept loop (a flood of connections or a lack of file
/// descriptors must not flood the journal).
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. no file descriptor left), so the loop does not spin on one core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A warning that is logged at most once per [`WARN_EVERY`], with how many were held back.
#[derive(Default)]
struct RateLimited {
    last: Option<std::time::Instant>,
    held: u64,
}

impl RateLimited {
    /// Whether to log now; `held` says how many were suppressed since the last one.
    fn due(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        if self.last.is_some_and(|l| now.duration_since(l) < WARN_EVERY) {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

impl SocketServer {
    /// Binds `path` (mode 0660; its directory is created 0750 when absent) and starts serving on a thread named
    /// `socket`. `queue` is each subscriber's capacity.
    pub fn bind(path: &Path, camera: &str, queue: usize) -> Result<Self, SocketError> {
        Self::bind_capped(path, camera, queue, usize::MAX)
    }

    /// [`SocketServer::bind`] serving at most `max_subscribers` at once: a connection beyond is closed at once
    /// (its file descriptor freed), and said so in the log at most every 10 s.
    pub fn bind_capped(path: &Path, camera: &str, queue: usize, max_subscribers: usize) -> Result<Self, SocketError> {
        let err = |source: std::io::Error| SocketError::Socket { path: path.to_path_buf(), source };
        let refused = |source: Refusal| SocketError::Refused { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new().recursive(true).mode(0o750).create(dir).map_err(err)?;
            }
            check_directory(dir, crate::private::euid()).map_err(refused)?;
        }
        clear_stale(path).map_err(refused)?;
        let listener = std::os::unix::net::UnixListener::bind(path).map_err(err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        let bound = identity(path);
        let hub = Arc::new(Hub {
            camera: camera.to_string(),
            capacity: queue.max(1),
            subscribers: Mutex::new(Vec::new()),
            live: Mutex::new(BTreeMap::new()),
            dropped_total: Default::default(),
            max_subscribers: max_subscribers.max(1),
        });
        let shutdown = Arc::new(Notify::new());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build().map_err(err)?;
        let (h, s) = (hub.clone(), shutdown.clone());
        let watch = Watch { path: path.to_path_buf(), bound };
        let thread = crate::stage::thread("socket", move || serve(runtime, listener, h, s, watch)).map_err(err)?;
        info!(path = %path.display(), queue, "Serving events.");
        Ok(Self { path: path.to_path_buf(), bound, hub, shutdown, thread: Some(thread) })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Connected subscribers.
    pub fn subscribers(&self) -> usize {
        self.hub.connected()
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
        // Only the file this server bound: a socket someone else put there is theirs (and was reported).
        if self.bound.is_some() && identity(&self.path) == self.bound {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl EventSink for SocketServer {
    fn publish(&mut self, event: &Event, line: &Arc<str>) {
        let track = event.track_id().map(|id| (id, event.kind() == EventKind::TrackEnded));
        self.hub.push(line, track);
    }

    fn close(&mut self) {
        self.stop();
    }

    fn observe(&self, outputs: &crate::metrics::OutputStats) {
        outputs.set("socket", Some(self.subscribers() as u64), self.dropped());
    }
}

impl Drop for SocketServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Watches that the socket file is still the one bound, and says so when it is not.
struct Watch {
    path: PathBuf,
    bound: Option<(u64, u64)>,
}

/// How often the socket file is checked.
const WATCH_EVERY: Duration = Duration::from_secs(2);

impl Watch {
    /// Logs a change of the socket file once per change: removed, or replaced (another process now answers there).
    fn check(&self, reported: &mut Option<Option<(u64, u64)>>) {
        let now = identity(&self.path);
        if now == self.bound || *reported == Some(now) {
            return;
        }
        *reported = Some(now);
        match now {
            None => {
                tracing::error!(path = %self.path.display(), "The event socket file was removed: subscribers can no longer connect. Restart the daemon to serve it again.")
            }
            Some(_) => {
                use std::os::unix::fs::MetadataExt;
                let owner = std::fs::symlink_metadata(&self.path).map(|m| m.uid()).ok();
                tracing::error!(path = %self.path.display(), owner, "The event socket file was replaced by another one: subscribers connecting there reach another process, not this daemon. Check who could write to its directory.");
            }
        }
    }
}

/// The socket thread: accepts until shut down, then gives subscribers a moment to receive their last lines.
fn serve(runtime: tokio::runtime::Runtime, listener: std::os::unix::net::UnixListener, hub: Arc<Hub>, shutdown: Arc<Notify>, watch: Watch) {
    runtime.block_on(async move {
        let listener = match tokio::net::UnixListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "Event socket unusable; events go to the other sinks only.");
                return;
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        let (mut refused, mut failed) = (RateLimited::default(), RateLimited::default());
        let mut tick = tokio::time::interval(WATCH_EVERY);
        let mut reported = None;
        loop {
            tokio::select! {
                () = shutdown.notified() => break,
                _ = tick.tick() => watch.check(&mut reported),
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) if hub.connected() >= hub.max_subscribers => {
                        drop(stream);
                        if let Some(held) = refused.due() {
                            warn!(max_subscribers = hub.max_subscribers, refused_since_last = held, "Subscriber limit reached; new connections are closed.");
                        }
                    }
                    Ok((stream, _)) => {
                        let sub = hub.subscribe();
                        debug!("Subscriber connected.");
                        tasks.spawn(subscriber(stream, sub, hub.camera.clone()));
                        // Reap finished subscriber tasks so a long run does not accumulate them.
                        while tasks.try_join_next().is_some() {}
                    }
                    Err(e) => {
                        if let Some(held) = failed.due() {
                            warn!(error = %e, failed_since_last = held, "Accepting a subscriber failed; retrying shortly.");
                        }
                        // Out of file descriptors the listener stays readable: pause instead of spinning.
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
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
                    let notice = Event::events_dropped(&camera, dropped);
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
            let face = crate::base::TrackFace {
                track_id: 1,
                name: "ann".into(),
                known: true,
                score: 0.5,
                threshold: 0.3,
                bbox: [0.0; 4],
                quality: 1.0,
                candidates: Vec::new(),
                margin: None,
                snapshot: None,
                votes: [1, 1],
                stranger: None,
            };
            let e = Event::about_frame("cam", crate::base::EventBody::TrackUpdated(face), i, std::time::SystemTime::now());
            server.publish(&e, &Arc::from(e.to_line()));
        }
        assert!(server.dropped() > 0, "the queue of 8 overflowed");
        server.close();
        assert!(!path.exists(), "the socket file is removed when the server closes");
        let lines = reader.join().expect("reader");
        assert_eq!(lines[0].kind(), EventKind::Hello);
        let told: u64 = lines.iter().filter(|e| e.kind() == EventKind::EventsDropped).filter_map(Event::dropped).sum();
        let received = lines.iter().filter(|e| e.kind() == EventKind::TrackUpdated).count() as u64;
        assert!(told > 0, "the subscriber was told it lost events");
        assert_eq!(received + told, n, "every event was either delivered or counted as dropped");
        assert_eq!(lines.last().and_then(|e| e.frame_seq), Some(n - 1), "the newest event is kept");
    }

    #[test]
    fn only_a_refused_connection_proves_a_socket_stale() {
        use std::io::{Error, ErrorKind};
        assert!(stale_verdict(Err(Error::from(ErrorKind::ConnectionRefused))).is_ok());
        let denied = stale_verdict(Err(Error::from(ErrorKind::PermissionDenied))).expect_err("kept").to_string();
        assert!(denied.contains("cannot be proven stale"), "{denied}");
        assert!(stale_verdict(Ok(())).expect_err("live").to_string().contains("already serving"));
    }

    #[test]
    fn a_directory_anyone_can_write_is_refused_unless_sticky() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = dir.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = SocketServer::bind(&open.join("events.sock"), "cam", 8).err().expect("refused");
        assert!(err.to_string().contains("writable by every user"), "{err}");
        assert!(!open.join("events.sock").exists());
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        let server = SocketServer::bind(&open.join("events.sock"), "cam", 8).expect("a sticky directory is fine");
        drop(server);
    }

    #[test]
    fn connections_beyond_the_subscriber_limit_are_closed_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.sock");
        let server = SocketServer::bind_capped(&path, "cam", 8, 2).expect("bind");
        let first: Vec<_> = (0..2).map(|_| std::os::unix::net::UnixStream::connect(&path).expect("connect")).collect();
        let started = std::time::Instant::now();
        while server.subscribers() < 2 {
            assert!(started.elapsed() < Duration::from_secs(5), "subscribers never registered");
            std::thread::sleep(Duration::from_millis(5));
        }
        let third = std::os::unix::net::UnixStream::connect(&path).expect("connect");
        third.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut line = String::new();
        assert_eq!(BufReader::new(third).read_line(&mut line).expect("closed, not timed out"), 0, "no hello: {line}");
        assert_eq!(server.subscribers(), 2);
        // One leaves: there is room again.
        drop(first);
        let started = std::time::Instant::now();
        loop {
            let fourth = std::os::unix::net::UnixStream::connect(&path).expect("connect");
            fourth.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            let mut line = String::new();
            if BufReader::new(fourth).read_line(&mut line).expect("read") > 0 {
                assert!(line.contains("hello"), "{line}");
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "room never freed");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
