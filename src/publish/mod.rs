//! Publish: identity events as JSON lines, to every sink (the Unix socket, stdout, a test channel).
//!
//! In: [`Event`]s from every camera's track stage (its own, and capture's status events it hands on), through a
//! bounded queue that they fill with `try_send`: nothing here can slow a camera. The publish stage stamps `emit_ts`, serialises
//! each event once and hands the line to every [`EventSink`]. The socket sink ([`crate::sinks::SocketServer`]) gives each
//! subscriber its own bounded queue, so a slow subscriber only loses its own oldest events, and is told how many.
//!
//! Schema version [`SCHEMA_VERSION`]; the fields are documented in the README ("Events").

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError};

pub use crate::base::event::{unix_seconds, Event, EventBody, EventKind, TrackFace, SCHEMA_VERSION};
pub use crate::sinks::{ChannelSink, EventSink};
use crate::stage::{Context, Output, Stage};

/// The publish stage: stamps, serialises and fans out every event.
pub struct PublishStage {
    sinks: Vec<Box<dyn EventSink>>,
}

impl PublishStage {
    /// Publishing to `sinks` (the socket, the broker, the API's stream, stdout, the record file, a channel).
    pub fn new(sinks: Vec<Box<dyn EventSink>>) -> Self {
        Self { sinks }
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

/// Each camera's counters, where its events are counted (empty: in the stage's own context).
pub type CameraCounters = Vec<(String, Arc<crate::metrics::Stats>)>;

impl Stage for PublishStage {
    const NAME: &'static str = "publish";
    type In = Event;
    type Out = ();
    type Ports = CameraCounters;

    /// Runs until every camera's track stage has finished (its input closes: the end of the stream travels with
    /// the channel), then closes the sinks.
    fn run(mut self, rx: Receiver<Event>, _output: Output<()>, cameras: CameraCounters, cx: &Context) {
        loop {
            let mut event = match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(e) => e,
                Err(RecvTimeoutError::Disconnected) => break,
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
            let camera = cameras.iter().find(|(name, _)| *name == event.camera);
            let camera = camera.or_else(|| cameras.first().filter(|_| cameras.len() == 1));
            let stats = camera.map_or(&cx.stats, |(_, s)| s);
            stats.publish.record(started.elapsed());
            self.observe(cx);
        }
        for sink in &mut self.sinks {
            sink.close();
        }
    }
}
