//! `[publish]`: the event socket.

use std::num::NonZeroUsize;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::base::units::{millis, within};

/// `[publish]`: the event socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// Socket path; empty for none.
    pub socket: String,
    /// Queue per subscriber.
    pub subscriber_queue: NonZeroUsize,
    /// Subscribers served at once; connections beyond are closed.
    pub max_subscribers: NonZeroUsize,
    /// `track_updated` interval (`update_interval_ms`; 0: none).
    #[serde(rename = "update_interval_ms", with = "millis")]
    pub update_interval: Duration,
}

impl PublishConfig {
    /// What is wrong with `[publish]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        if self.socket.len() > 100 {
            out.push(format!("publish.socket: {} bytes; Unix socket paths must be under 108", self.socket.len()));
        }
        within(out, "publish.subscriber_queue", self.subscriber_queue.get() as u64, 65_536, "events per subscriber");
        within(out, "publish.max_subscribers", self.max_subscribers.get() as u64, 4096, "file descriptors");
        within(out, "publish.update_interval_ms", self.update_interval.as_millis() as u64, 86_400_000, "one day");
    }
}
