//! Outputs: everything that leaves the pipeline, each built from its own configuration section.
//!
//! Event sinks ([`EventSink`]) get every event, stamped and serialised once by the publish stage
//! ([`crate::publish`]); each buffers and never waits on its reader:
//! - [`socket`]: the Unix socket (`[publish]`), JSON lines to any number of subscribers;
//! - [`mqtt`]: the broker (`[mqtt]`), with Home Assistant discovery;
//! - [`sse`]: the API's event stream (`[api]`);
//! - [`lines`]: `run --print` and `run --record FILE`;
//! - [`ChannelSink`]: a channel (tests, `facewatch bench`).
//!
//! Frame sinks get what each camera's track stage hands them on edges of their own
//! ([`crate::pipeline::topology`] declares them): [`preview`] (`[preview]`, the annotated window), [`live`] (the
//! web page's live view, with `[api]`) and [`snapshots`] (`[snapshots]`, a JPEG of each identity decision). Which outputs a daemon has is decided in one
//! place, [`crate::pipeline::topology::event_sinks`]: adding an output touches that and its own file.

mod config;
pub mod lines;
pub mod live;
pub mod mqtt;
pub mod preview;
pub mod snapshots;
pub mod socket;
pub mod sse;

use std::sync::Arc;

use crate::base::Event;
pub use config::PublishConfig;
pub use lines::QueuedLineSink;
pub use socket::{SocketError, SocketServer};

/// Somewhere events go. Each call must return quickly: sinks buffer, they never wait on a reader.
pub trait EventSink: Send {
    /// One event and its JSON line.
    fn publish(&mut self, event: &Event, line: &Arc<str>);
    /// The input is over: flush what can be flushed quickly.
    fn close(&mut self) {}
    /// Puts this sink's counters into `outputs` (metrics); called after each event and every 50 ms.
    fn observe(&self, _outputs: &crate::metrics::OutputStats) {}
}

/// Events into a channel (tests, `facewatch bench`); events are dropped if the channel is full.
pub struct ChannelSink(pub crossbeam_channel::Sender<Event>);

impl EventSink for ChannelSink {
    fn publish(&mut self, event: &Event, _line: &Arc<str>) {
        let _ = self.0.try_send(event.clone());
    }
}
