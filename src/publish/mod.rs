//! Publish: identity events as JSON lines, to every sink (the Unix socket, stdout, a test channel).
//!
//! In: [`Event`]s from the track stage and from capture (source lost / restored), through a bounded queue that the
//! pipeline fills with `try_send`: nothing here can slow a camera. The publish stage stamps `emit_ts`, serialises
//! each event once and hands the line to every [`EventSink`]. The socket sink ([`socket::SocketServer`]) gives each
//! subscriber its own bounded queue, so a slow subscriber only loses its own oldest events, and is told how many.
//!
//! Schema version [`SCHEMA_VERSION`]; the fields are documented in the README ("Events").

mod config;
pub mod mqtt;
pub mod socket;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError};

pub use crate::base::event::{unix_seconds, Event, EventBody, EventKind, TrackFace, SCHEMA_VERSION};
use crate::stage::{Context, Output, Stage};
pub use config::PublishConfig;
pub use socket::SocketServer;

/// Errors of the publish stage.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
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
        source: socket::Refusal,
    },
    /// `subscribe`: the server answering on the socket is not one to believe.
    #[error("refusing the events served on {path}: {source}")]
    Untrusted {
        /// Socket path.
        path: std::path::PathBuf,
        /// Why.
        source: socket::Refusal,
    },
}

impl crate::exit::Exit for PublishError {
    fn exit_code(&self) -> u8 {
        crate::exit::SOCKET
    }
}

/// Somewhere events go. Each call must return quickly: sinks buffer, they never wait on a reader.
pub trait EventSink: Send {
    /// One event and its JSON line.
    fn publish(&mut self, event: &Event, line: &Arc<str>);
    /// The input is over: flush what can be flushed quickly.
    fn close(&mut self) {}
    /// Puts this sink's counters into `outputs` (metrics); called after each event and every 50 ms.
    fn observe(&self, _outputs: &crate::metrics::OutputStats) {}
}

/// JSON lines to a writer on a thread of its own, through a bounded queue: a writer that blocks (a stdout that
/// nobody reads) loses its own lines, counted, and never holds up the socket or the pipeline.
pub struct QueuedLineSink {
    tx: Option<crossbeam_channel::Sender<Arc<str>>>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
    name: &'static str,
}

impl QueuedLineSink {
    /// Starts the writer thread `name` with room for `capacity` lines.
    pub fn spawn<W: Write + Send + 'static>(name: &'static str, mut writer: W, capacity: usize) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::bounded::<Arc<str>>(capacity.max(1));
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || {
            for line in rx {
                // A closed stdout (`| head`) ends the writing, not the daemon.
                if writeln!(writer, "{line}").and_then(|()| writer.flush()).is_err() {
                    return;
                }
            }
        })?;
        Ok(Self { tx: Some(tx), dropped: Arc::default(), thread: Some(thread), name })
    }
}

/// How long closing waits for a queued writer to write what it holds.
const WRITER_DRAIN: Duration = Duration::from_secs(1);

impl EventSink for QueuedLineSink {
    fn observe(&self, outputs: &crate::metrics::OutputStats) {
        outputs.set(self.name, None, self.dropped.load(std::sync::atomic::Ordering::Relaxed));
    }

    fn publish(&mut self, _event: &Event, line: &Arc<str>) {
        if let Some(tx) = &self.tx {
            if tx.try_send(line.clone()).is_err() {
                self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    fn close(&mut self) {
        self.tx = None;
        let Some(thread) = self.thread.take() else { return };
        let until = std::time::Instant::now() + WRITER_DRAIN;
        while !thread.is_finished() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        let dropped = self.dropped.load(std::sync::atomic::Ordering::Relaxed);
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            // A writer blocked for good (nobody reads the pipe) is left behind; process exit ends it.
            tracing::warn!(sink = self.name, "Event output still blocked at shutdown; its last lines are lost.");
        }
        if dropped > 0 {
            tracing::warn!(sink = self.name, dropped, "Event output could not keep up; lines were dropped.");
        }
    }
}

/// Events into a channel (tests, `facewatch bench`); events are dropped if the channel is full.
pub struct ChannelSink(pub crossbeam_channel::Sender<Event>);

impl EventSink for ChannelSink {
    fn publish(&mut self, event: &Event, _line: &Arc<str>) {
        let _ = self.0.try_send(event.clone());
    }
}

/// The publish stage: stamps, serialises and fans out every event.
pub struct PublishStage {
    sinks: Vec<Box<dyn EventSink>>,
    /// Each camera's counters: its events are counted there, and the stage ends once every camera's track stage
    /// has finished. Empty: counted in the stage's own context.
    cameras: Vec<(String, Arc<crate::metrics::Stats>)>,
}

impl PublishStage {
    /// From `[publish]` for `camera`: `sinks` plus, with `serve_socket` and a `publish.socket` path, the event
    /// socket (bound now: refused when another daemon serves it or its folder is unsafe).
    pub fn build(cfg: &PublishConfig, camera: &str, sinks: Vec<Box<dyn EventSink>>, serve_socket: bool) -> Result<Self, PublishError> {
        let mut stage = Self::new(sinks);
        if serve_socket && !cfg.socket.trim().is_empty() {
            let path = crate::paths::resolve_path(&cfg.socket);
            stage.add(Box::new(SocketServer::bind_capped(&path, camera, cfg.subscriber_queue.get(), cfg.max_subscribers.get())?));
        }
        Ok(stage)
    }

    /// Publishing to `sinks` (the socket, stdout, the record file, a channel).
    pub fn new(sinks: Vec<Box<dyn EventSink>>) -> Self {
        Self { sinks, cameras: Vec::new() }
    }

    /// Counts each event in the counters of its camera (`Pipeline::start`, which makes them).
    pub fn count_for(&mut self, cameras: Vec<(String, Arc<crate::metrics::Stats>)>) {
        self.cameras = cameras;
    }

    /// Whether every camera's track stage has finished, its last events queued.
    fn tracks_finished(&self, cx: &Context) -> bool {
        let done = |s: &crate::metrics::Stats| s.track_finished.load(std::sync::atomic::Ordering::SeqCst);
        match self.cameras.is_empty() {
            true => done(&cx.stats),
            false => self.cameras.iter().all(|(_, s)| done(s)),
        }
    }

    /// One more sink.
    pub fn add(&mut self, sink: Box<dyn EventSink>) {
        self.sinks.push(sink);
    }

    fn observe(&self, cx: &Context) {
        for sink in &self.sinks {
            sink.observe(&cx.stats.outputs);
        }
    }
}

impl Stage for PublishStage {
    const NAME: &'static str = "publish";
    type In = Event;
    type Out = ();

    /// Runs until every sender is gone, or until the track stage has finished and nothing more is queued (a
    /// capture stuck in a stalled stream still holds a sender: its status events must not keep the sinks, and the
    /// socket file, open). Then closes the sinks.
    fn run(mut self, rx: Receiver<Event>, _output: Output<()>, cx: &Context) {
        loop {
            let mut event = match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(e) => e,
                Err(RecvTimeoutError::Disconnected) => break,
                // The flag is set after the track stage's last events were queued: drain those first.
                Err(RecvTimeoutError::Timeout) if self.tracks_finished(cx) && rx.is_empty() => break,
                Err(RecvTimeoutError::Timeout) => {
                    self.observe(cx);
                    continue;
                }
            };
            let started = std::time::Instant::now();
            event.emit_ts = unix_seconds(SystemTime::now());
            let line: Arc<str> = event.to_line().into();
            for sink in &mut self.sinks {
                sink.publish(&event, &line);
            }
            // An event of no listed camera counts for the only one, when there is only one.
            let camera = self.cameras.iter().find(|(name, _)| *name == event.camera);
            let camera = camera.or_else(|| self.cameras.first().filter(|_| self.cameras.len() == 1));
            let stats = camera.map_or(&cx.stats, |(_, s)| s);
            stats.publish.record(started.elapsed());
            self.observe(cx);
        }
        for sink in &mut self.sinks {
            sink.close();
        }
    }
}
