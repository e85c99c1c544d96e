//! The API's event stream (`GET /api/events`, server-sent events): every event line to every connected client
//! through a broadcast channel; a client that falls behind loses its oldest lines and is told how many. It also
//! keeps the latest identity decisions with their faces' pictures, for the web page's timeline ([`Recent`]).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::EventSink;
use crate::base::Event;

/// Identity decisions kept for the web page's timeline.
pub const RECENT: usize = 500;

/// One identity decision (`track_started`, `identity_changed`) with its face's picture.
#[derive(Clone)]
pub struct Recent {
    /// Counts the decisions kept since the start (a picture's id on the page).
    pub n: u64,
    /// The event.
    pub event: Event,
}

/// The events, for the server-sent event stream: an [`EventSink`] of the pipeline.
#[derive(Clone)]
pub struct EventFeed {
    tx: tokio::sync::broadcast::Sender<Arc<str>>,
    /// Events the stream's slow clients lost, all together.
    dropped: Arc<AtomicU64>,
    /// The latest decisions, oldest first.
    recent: Arc<parking_lot::Mutex<std::collections::VecDeque<Recent>>>,
}

impl EventFeed {
    /// A feed keeping up to `capacity` events for a slow client (which then loses its oldest, and is told).
    pub fn new(capacity: usize) -> Self {
        Self { tx: tokio::sync::broadcast::channel(capacity.max(1)).0, dropped: Arc::default(), recent: Arc::default() }
    }

    /// The latest identity decisions, newest first.
    pub fn recent(&self) -> Vec<Recent> {
        self.recent.lock().iter().rev().cloned().collect()
    }

    /// Decision `n`'s picture, while it is kept.
    pub fn picture(&self, n: u64) -> Option<Arc<[u8]>> {
        self.recent.lock().iter().find(|r| r.n == n).and_then(|r| r.event.picture.clone())
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
    fn publish(&mut self, event: &Event, line: &Arc<str>) {
        // No receiver is no error: nobody is listening.
        let _ = self.tx.send(line.clone());
        if matches!(event.kind(), crate::base::EventKind::TrackStarted | crate::base::EventKind::IdentityChanged) {
            let mut recent = self.recent.lock();
            let n = recent.back().map_or(1, |r| r.n + 1);
            if recent.len() >= RECENT {
                recent.pop_front();
            }
            recent.push_back(Recent { n, event: event.clone() });
        }
    }

    fn observe(&self, outputs: &crate::metrics::OutputStats) {
        outputs.set("sse", Some(self.tx.receiver_count() as u64), self.dropped.load(std::sync::atomic::Ordering::Relaxed));
    }
}
