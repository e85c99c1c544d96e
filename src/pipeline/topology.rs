//! The daemon's topology, declared in one place: its sources, stages and sinks with their roles ([`NODES`]), every
//! edge between them with what it carries, its capacity and what it does when full ([`EDGES`]), and the event
//! outputs a command gets ([`Outputs`], made by [`event_sinks`]). [`super::Pipeline::start`] makes every edge from
//! this table ([`edge`]); nothing else picks a queue's size or policy.
//!
//! ```text
//!              per camera                                                shared
//! capture ─frames──▶ detect ─detections──▶ track ─events──────────────▶ publish ─▶ socket, mqtt, sse, print, record
//!    └─────────────status──────────────────▶ │ ─pictures──▶ preview (the first camera's)
//!                                            │ ─live──────▶ live (the web page's view, every camera's)
//!                                            │ ─snapshots─▶ snapshots (the writer)
//!                                            │ ─strangers─▶ strangers (the writer)
//!                                            └ ─said──────▶ evaluate --video
//! ```
//!
//! The end of the stream travels with the channels: capture's end closes `frames` and `status`, detect's closes
//! `detections`, and the publish stage and the snapshot writer finish when every camera's track stage has closed
//! its edges to them.

use std::path::PathBuf;

use crossbeam_channel::Receiver;

use super::{BuildError, Queues};
use crate::config::Config;
use crate::sinks::mqtt::MqttSink;
use crate::sinks::preview::Preview;
use crate::sinks::sse::EventFeed;
use crate::sinks::{EventSink, QueuedLineSink, SocketServer};
use crate::stage::{edge as bounded, unbounded, Output, QueuePolicy};

/// What a node does (vector's model: sources read the world, transforms change what flows, sinks let it out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads frames from outside.
    Source,
    /// Turns what it takes into what it gives.
    Transform,
    /// Lets things out of the daemon.
    Sink,
}

/// A node of the graph.
#[derive(Debug, serde::Serialize)]
pub struct Node {
    /// Its name: the module, thread, span and metric label.
    pub name: &'static str,
    /// Its role.
    pub role: Role,
    /// One per camera, or one for all.
    pub per_camera: bool,
    /// What it is.
    pub what: &'static str,
}

/// Every node.
pub const NODES: &[Node] = &[
    Node { name: "capture", role: Role::Source, per_camera: true, what: "reads the camera, file or stream (capture)" },
    Node { name: "detect", role: Role::Transform, per_camera: true, what: "finds faces, on one or more worker threads (detect)" },
    Node {
        name: "track",
        role: Role::Transform,
        per_camera: true,
        what: "follows faces as tracks, embeds, matches against the gallery, votes names into events (track)",
    },
    Node { name: "publish", role: Role::Transform, per_camera: false, what: "stamps and serialises each event once (publish)" },
    Node { name: "socket", role: Role::Sink, per_camera: false, what: "[publish] socket: JSON lines to subscribers (sinks::socket)" },
    Node { name: "mqtt", role: Role::Sink, per_camera: false, what: "[mqtt]: the broker, Home Assistant discovery (sinks::mqtt)" },
    Node { name: "sse", role: Role::Sink, per_camera: false, what: "[api]: GET /api/events (sinks::sse)" },
    Node { name: "print", role: Role::Sink, per_camera: false, what: "run --print: JSON lines on stdout (sinks::lines)" },
    Node { name: "record", role: Role::Sink, per_camera: false, what: "run --record FILE (sinks::lines)" },
    Node { name: "preview", role: Role::Sink, per_camera: false, what: "[preview]: the first camera's annotated window (sinks::preview)" },
    Node {
        name: "snapshots",
        role: Role::Sink,
        per_camera: false,
        what: "[snapshots]: a JPEG of each identity decision (sinks::snapshots)",
    },
    Node { name: "said", role: Role::Sink, per_camera: false, what: "evaluate --video: what was said on every frame (jobs)" },
    Node {
        name: "strangers",
        role: Role::Sink,
        per_camera: false,
        what: "[strangers]: each stranger's best faces kept in the gallery (strangers)",
    },
    Node {
        name: "live",
        role: Role::Sink,
        per_camera: false,
        what: "[api]: each camera's latest annotated picture for the web page, made while it is open (sinks::live)",
    },
];

/// The edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    /// capture → detect.
    Frames,
    /// capture → track: `source_lost`, `source_restored`, `input_truncated`.
    Status,
    /// detect → track.
    Detections,
    /// track → publish (every camera's).
    Events,
    /// track → preview.
    Pictures,
    /// track → the web page's live view (each camera's).
    Live,
    /// track → the snapshot writer (every camera's).
    Snapshots,
    /// track → `evaluate --video`.
    Said,
    /// track → the strangers' writer (every camera's).
    Strangers,
}

/// How big an edge is.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capacity {
    /// `pipeline.frame_queue`.
    FrameQueue,
    /// `pipeline.stage_queue`.
    StageQueue,
    /// A fixed number of items.
    Fixed(usize),
    /// No bound (it must lose nothing, and its reader keeps up).
    Unbounded,
}

/// What an edge does when full.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Always this policy.
    Always(#[serde(with = "policy_name")] QueuePolicy),
    /// Drop the oldest for a live source (a camera, a stream, a file at its frame rate: latency stays bounded),
    /// wait for a file read as fast as possible (nothing lost).
    ByLiveness,
}

mod policy_name {
    use crate::stage::QueuePolicy;

    pub fn serialize<S: serde::Serializer>(p: &QueuePolicy, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(super::policy_text(*p))
    }
}

/// A policy as the plan prints it.
pub fn policy_text(p: QueuePolicy) -> &'static str {
    match p {
        QueuePolicy::DropOldest => "drop_oldest",
        QueuePolicy::Block => "block",
        QueuePolicy::DropNewest => "drop_newest",
    }
}

/// One edge's declaration.
#[derive(Debug, serde::Serialize)]
pub struct EdgeSpec {
    /// Which.
    pub edge: Edge,
    /// From that node.
    pub from: &'static str,
    /// To that one.
    pub to: &'static str,
    /// What travels.
    pub carries: &'static str,
    /// How many it holds.
    pub capacity: Capacity,
    /// What a full one does.
    pub when_full: WhenFull,
    /// Why so.
    pub why: &'static str,
}

/// Every edge, declared once.
pub const EDGES: &[EdgeSpec] = &[
    EdgeSpec {
        edge: Edge::Frames,
        from: "capture",
        to: "detect",
        carries: "Frame",
        capacity: Capacity::FrameQueue,
        when_full: WhenFull::ByLiveness,
        why: "a slow detector works on the newest picture; every drop is counted",
    },
    EdgeSpec {
        edge: Edge::Status,
        from: "capture",
        to: "track",
        carries: "Event (source_lost, source_restored, input_truncated)",
        capacity: Capacity::Fixed(64),
        when_full: WhenFull::Always(QueuePolicy::DropNewest),
        why: "capture never waits on the rest; the track stage hands them on with its own events",
    },
    EdgeSpec {
        edge: Edge::Detections,
        from: "detect",
        to: "track",
        carries: "Detections",
        capacity: Capacity::StageQueue,
        when_full: WhenFull::Always(QueuePolicy::Block),
        why: "backpressure to the one dropping edge, frames",
    },
    EdgeSpec {
        edge: Edge::Events,
        from: "track",
        to: "publish",
        carries: "Event",
        capacity: Capacity::Fixed(1024),
        when_full: WhenFull::Always(QueuePolicy::DropNewest),
        why: "a camera never waits on an output; a burst (many tracks ending) fits",
    },
    EdgeSpec {
        edge: Edge::Pictures,
        from: "track",
        to: "preview",
        carries: "PreviewFrame",
        capacity: Capacity::Fixed(1),
        when_full: WhenFull::Always(QueuePolicy::DropNewest),
        why: "a slow window skips pictures",
    },
    EdgeSpec {
        edge: Edge::Live,
        from: "track",
        to: "live",
        carries: "PreviewFrame",
        capacity: Capacity::Fixed(1),
        when_full: WhenFull::Always(QueuePolicy::DropNewest),
        why: "the page shows the newest picture; sent only while someone watches",
    },
    EdgeSpec {
        edge: Edge::Snapshots,
        from: "track",
        to: "snapshots",
        carries: "SnapshotJob",
        capacity: Capacity::Fixed(16),
        when_full: WhenFull::Always(QueuePolicy::DropNewest),
        why: "a slow disk costs snapshots (counted; the event then has none), never frames",
    },
    EdgeSpec {
        edge: Edge::Strangers,
        from: "track",
        to: "strangers",
        carries: "StrangerWrite",
        capacity: Capacity::Fixed(64),
        when_full: WhenFull::Always(QueuePolicy::DropNewest),
        why: "a slow disk costs kept faces (counted), never frames; the matching itself is in memory",
    },
    EdgeSpec {
        edge: Edge::Said,
        from: "track",
        to: "said",
        carries: "SaidFrame",
        capacity: Capacity::Unbounded,
        when_full: WhenFull::Always(QueuePolicy::Block),
        why: "the video evaluation scores every frame",
    },
];

/// The declaration of `e`.
pub fn spec(e: Edge) -> &'static EdgeSpec {
    EDGES.iter().find(|s| s.edge == e).expect("every edge is declared in EDGES")
}

/// The policy `e` has for a source that is (not) `live`.
pub fn policy(e: Edge, live: bool) -> QueuePolicy {
    match spec(e).when_full {
        WhenFull::Always(p) => p,
        WhenFull::ByLiveness if live => QueuePolicy::DropOldest,
        WhenFull::ByLiveness => QueuePolicy::Block,
    }
}

/// Makes the edge `e` as declared, sized by `queues`, for a source that is (not) `live`.
pub fn edge<T>(e: Edge, queues: &Queues, live: bool) -> (Output<T>, Receiver<T>) {
    let capacity = match spec(e).capacity {
        Capacity::FrameQueue => queues.frames,
        Capacity::StageQueue => queues.detections,
        Capacity::Fixed(n) => n,
        Capacity::Unbounded => return unbounded(),
    };
    bounded(capacity, policy(e, live))
}

/// The outputs a command asks for, beside what the configuration turns on.
#[derive(Default)]
pub struct Outputs {
    /// Serve `[publish] socket` (the daemon).
    pub socket: bool,
    /// Publish to `[mqtt]`, when a broker is configured (the daemon; `bench --mqtt`).
    pub mqtt: bool,
    /// `run --print`: every event on stdout.
    pub print: bool,
    /// `run --record FILE`: every event appended to FILE (0600, never through a link).
    pub record: Option<PathBuf>,
    /// The API's event stream.
    pub sse: Option<EventFeed>,
    /// Save `[snapshots]`, when enabled (the daemon).
    pub snapshots: bool,
    /// Keep `[strangers]`, when enabled (the daemon; evaluations and benchmarks leave the gallery alone).
    pub strangers: bool,
    /// The window (`[preview]`, when a display is there).
    pub preview: Option<Preview>,
    /// The web page's live view (`[api]`).
    pub live: Option<std::sync::Arc<crate::sinks::live::LiveFrames>>,
    /// Others: a channel (tests, `facewatch bench`).
    pub extra: Vec<Box<dyn EventSink>>,
}

/// Lines waiting for stdout (`--print`) or the record file before the newest are dropped.
const LINE_QUEUE: usize = 4096;

/// Every event sink `outputs` asks for, each built from its own section: the only place a daemon's event outputs
/// are made. `cameras` name the cameras (the socket's `hello` names the first; MQTT announces each), `people` the
/// enrolled persons (MQTT discovery).
pub fn event_sinks(
    cfg: &Config,
    outputs: &mut Outputs,
    cameras: &[String],
    people: &[String],
) -> Result<Vec<Box<dyn EventSink>>, BuildError> {
    let mut sinks: Vec<Box<dyn EventSink>> = Vec::new();
    // Each line output writes on its own thread: a stdout nobody reads never starves the socket.
    if outputs.print {
        sinks.push(Box::new(QueuedLineSink::spawn("print", std::io::stdout(), LINE_QUEUE).map_err(BuildError::Output)?));
    }
    if let Some(path) = &outputs.record {
        let file = crate::private::append_file(path).map_err(|source| BuildError::Record { path: path.clone(), source })?;
        sinks.push(Box::new(QueuedLineSink::spawn("record", std::io::BufWriter::new(file), LINE_QUEUE).map_err(BuildError::Output)?));
    }
    if let Some(feed) = outputs.sse.take() {
        sinks.push(Box::new(feed));
    }
    sinks.append(&mut outputs.extra);
    let p = &cfg.publish;
    if outputs.socket && !p.socket.trim().is_empty() {
        let path = crate::paths::resolve_path(&p.socket);
        let first = cameras.first().map_or("camera", String::as_str);
        sinks.push(Box::new(SocketServer::bind_capped(&path, first, p.subscriber_queue.get(), p.max_subscribers.get())?));
    }
    if outputs.mqtt && cfg.mqtt.enabled() {
        sinks.push(Box::new(MqttSink::start(&cfg.mqtt, cameras, people)?));
    }
    Ok(sinks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_edge_is_declared_once_between_declared_nodes() {
        for (i, e) in EDGES.iter().enumerate() {
            assert!(EDGES[i + 1..].iter().all(|o| o.edge != e.edge), "{:?} declared twice", e.edge);
            for end in [e.from, e.to] {
                assert!(NODES.iter().any(|n| n.name == end), "{:?}: no node {end}", e.edge);
            }
        }
        let queues = Queues { frames: 2, detections: 4 };
        let (frames, _rx) = edge::<u8>(Edge::Frames, &queues, true);
        assert_eq!(
            [frames.send(1), frames.send(2), frames.send(3)],
            [crate::stage::Sent::Queued, crate::stage::Sent::Queued, crate::stage::Sent::Evicted]
        );
        assert_eq!(policy(Edge::Frames, false), QueuePolicy::Block, "a file read as fast as possible loses nothing");
        assert_eq!(policy(Edge::Events, true), QueuePolicy::DropNewest);
    }
}
