//! The API's event stream (`GET /api/events`, server-sent events): every event line to every connected client
//! through a broadcast channel; a client that falls behind loses its oldest lines and is told how many.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::EventSink;
use crate::base::Event;

/// The events, for the server-sent event stream: an [`EventSink`] of the pipeline.
#[derive(Clone)]
pub struct EventFeed {
    tx: tokio::sync::broadcast::Sender<Arc<str>>,
    /// Events the stream's slow clients lost, all together.
    dropped: Arc<AtomicU64>,
}

impl EventFeed {
    /// A feed keeping up to `capacity` events for a slow client (which then loses its oldest, and is told).
    pub fn new(capacity: usize) -> Self {
        Self { tx: tokio::sync::broadcast::channel(capacity.max(1)).0, dropped: Arc::default() }
    }

    /// A new client's end of the feed.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }

    /// The count of lines slow clients lost, for the stream to add to.
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }
}

impl EventSink for EventFeed {
    fn publish(&mut self, _event: &Event, line: &Arc<str>) {
        // No receiver is no error: nobody is listening.
        let _ = self.tx.send(line.clone());
    }

    fn observe(&self, outputs: &crate::metrics::OutputStats) {
        outputs.set("sse", Some(self.tx.receiver_count() as u64), self.dropped.load(std::sync::atomic::Ordering::Relaxed));
    }
}
