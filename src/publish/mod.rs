//! Publish: identity events as JSON lines, to every sink (the Unix socket, stdout, a test channel).
//!
//! In: [`Event`]s from the track stage and from capture (source lost / restored), through a bounded queue that the
//! pipeline fills with `try_send`: nothing here can slow a camera. The publish stage stamps `emit_ts`, serialises
//! each event once and hands the line to every [`EventSink`]. The socket sink ([`socket::SocketServer`]) gives each
//! subscriber its own bounded queue, so a slow subscriber only loses its own oldest events, and is told how many.
//!
//! Schema version [`SCHEMA_VERSION`]; the fields are documented in the README ("Events").

pub mod socket;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::gallery::Candidate;

pub use socket::SocketServer;

/// Version of the event schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The name published for a face that matches nobody in the gallery.
pub const UNKNOWN: &str = "unknown";

/// Errors of the publish stage.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The socket could not be created.
    #[error("failed to serve events on {path}: {message}")]
    Socket {
        /// Socket path.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// First line to a new subscriber.
    Hello,
    /// A face was seen and identified (or found unknown) for the first time.
    TrackStarted,
    /// The track's voted identity changed.
    IdentityChanged,
    /// Periodic position and score of a live track (`publish.update_interval_ms`).
    TrackUpdated,
    /// The face has not been seen for `track.max_absence_s`, or the input ended.
    TrackEnded,
    /// The camera or stream stopped delivering frames; capture is retrying.
    SourceLost,
    /// Frames flow again.
    SourceRestored,
    /// A file or image sequence ended early or lost frames (truncated file, unreadable images skipped).
    InputTruncated,
    /// This subscriber fell behind and lost this many of its oldest events.
    EventsDropped,
}

/// One event. Fields that do not apply to a kind are absent from its JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Event {
    /// Schema version.
    pub v: u32,
    /// Event type.
    #[serde(rename = "type")]
    pub kind: Option<EventKind>,
    /// Camera name (`capture.camera`).
    pub camera: String,
    /// Track id, unique within one daemon run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_id: Option<u64>,
    /// Person name, or `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether `name` is an enrolled person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known: Option<bool>,
    /// `identity_changed`: the name before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Mean cosine of the window's votes for the name (for `unknown`: of those votes' best candidates, below the threshold).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// Threshold in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// Face box `[x, y, w, h]` in source pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f32; 4]>,
    /// Face quality 0..1 (detector score × size × frontality).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<f32>,
    /// Top-k gallery candidates of the latest embedded face, best first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<Candidate>>,
    /// Best candidate's score minus the second's (how clear-cut the match is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin: Option<f32>,
    /// Identity votes in the track's window for `name`, and in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub votes: Option<[usize; 2]>,
    /// `track_ended`: seconds from first to last sighting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// `track_ended`: frames the face was seen in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<u64>,
    /// `source_lost`: why; `track_ended`: `absent` or `input_ended`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `source_lost`: seconds until the first retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_s: Option<f64>,
    /// `source_restored`: seconds without frames, and retries it took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_s: Option<f64>,
    /// `source_restored`: retries it took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// `events_dropped`: how many events this subscriber lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
    /// `hello`: facewatch version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Sequence number of the frame the event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_seq: Option<u64>,
    /// When that frame was captured, seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_ts: Option<f64>,
    /// When the event was published, seconds since the Unix epoch (`emit_ts − frame_ts` is the latency).
    pub emit_ts: f64,
}

/// Seconds since the Unix epoch.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl Event {
    /// An event of `kind` for `camera`, other fields empty.
    pub fn new(kind: EventKind, camera: &str) -> Self {
        Self { v: SCHEMA_VERSION, kind: Some(kind), camera: camera.to_string(), ..Self::default() }
    }

    /// `source_lost`.
    pub fn source_lost(camera: &str, reason: &str, retry_in: Duration) -> Self {
        let mut e = Self::new(EventKind::SourceLost, camera);
        e.reason = Some(reason.to_string());
        e.retry_in_s = Some(retry_in.as_secs_f64());
        e.frame_ts = Some(unix_seconds(SystemTime::now()));
        e
    }

    /// `input_truncated`: why, and the frames read.
    pub fn input_truncated(camera: &str, reason: &str, frames: u64) -> Self {
        let mut e = Self::new(EventKind::InputTruncated, camera);
        e.reason = Some(reason.to_string());
        e.frames = Some(frames);
        e.frame_ts = Some(unix_seconds(SystemTime::now()));
        e
    }

    /// `source_restored`.
    pub fn source_restored(camera: &str, down: Duration, attempts: u32) -> Self {
        let mut e = Self::new(EventKind::SourceRestored, camera);
        e.down_s = Some(down.as_secs_f64());
        e.attempts = Some(attempts);
        e.frame_ts = Some(unix_seconds(SystemTime::now()));
        e
    }

    /// The event as one JSON line (no trailing newline).
    pub fn to_line(&self) -> String {
        // Serialising plain data to a String cannot fail; keep the daemon up if it ever did.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"v\":{SCHEMA_VERSION},\"type\":\"error\",\"message\":\"{e}\"}}"))
    }
}

/// Somewhere events go. Each call must return quickly: sinks buffer, they never wait on a reader.
pub trait EventSink: Send {
    /// One event and its JSON line.
    fn publish(&mut self, event: &Event, line: &Arc<str>);
    /// The input is over: flush what can be flushed quickly.
    fn close(&mut self) {}
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

/// Runs the publish stage: stamps, serialises and fans out every event until all senders are gone, or until
/// `upstream_done` says the track stage has finished and nothing more is queued (a capture stuck in a stalled
/// stream still holds a sender: its status events must not keep the sinks, and the socket file, open).
pub fn run(
    rx: crossbeam_channel::Receiver<Event>,
    mut sinks: Vec<Box<dyn EventSink>>,
    stats: &crate::pipeline::StageStats,
    upstream_done: &dyn Fn() -> bool,
) {
    loop {
        let mut event = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(e) => e,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            // The flag is set after the track stage's last events were queued: drain those first.
            Err(crossbeam_channel::RecvTimeoutError::Timeout) if upstream_done() && rx.is_empty() => break,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
        };
        let started = std::time::Instant::now();
        event.emit_ts = unix_seconds(SystemTime::now());
        let line: Arc<str> = event.to_line().into();
        for sink in &mut sinks {
            sink.publish(&event, &line);
        }
        stats.record(started.elapsed());
    }
    for sink in &mut sinks {
        sink.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_only_their_fields() {
        let e = Event::source_lost("door", "lost /dev/video0: unplugged", Duration::from_millis(500));
        let v: serde_json::Value = serde_json::from_str(&e.to_line()).expect("json");
        assert_eq!(v["v"], 1);
        assert_eq!(v["type"], "source_lost");
        assert_eq!(v["camera"], "door");
        assert_eq!(v["retry_in_s"], 0.5);
        assert!(v.get("track_id").is_none() && v.get("name").is_none());
        let back: Event = serde_json::from_value(v).expect("round trip");
        assert_eq!(back.kind, Some(EventKind::SourceLost));
    }
}
