//! The small stage kit: the shape every pipeline stage has ([`Stage`]), what it gets to run ([`Context`]), the
//! stop signal ([`Stop`]) and the edges between stages with an explicit, counted queue policy ([`Output`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::metrics::Stats;

/// The stop signal: raised once (Ctrl-C, SIGTERM, preview closed, a stage failed); capture polls it.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A stop that is not raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the pipeline to drain and finish.
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the stop was raised.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Sleeps up to `d`, waking early when the stop is raised; returns whether it was.
    pub fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while !self.is_raised() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
        true
    }
}

/// What an edge does when the next stage has not taken the previous items yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuePolicy {
    /// Evict the oldest queued item for the new one (a live camera: latency stays bounded, stale frames go).
    DropOldest,
    /// Wait for room (backpressure to the stage before).
    Block,
    /// Drop the new item (an observer that must never slow the pipeline: publish, preview).
    DropNewest,
}

/// What became of a sent item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued.
    Queued,
    /// Queued after evicting the oldest item (counted).
    Evicted,
    /// Dropped, the queue being full (counted).
    Dropped,
    /// The receiving stage has gone.
    Closed,
}

/// The sending end of an edge: a bounded channel with its [`QueuePolicy`]. What it loses is told by [`Sent`], for
/// the sending stage to count in its own statistics.
pub struct Output<T> {
    tx: Sender<T>,
    /// A receiver clone of the same channel, for [`QueuePolicy::DropOldest`].
    evict: Option<Receiver<T>>,
    policy: QueuePolicy,
}

impl<T> Clone for Output<T> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone(), evict: self.evict.clone(), policy: self.policy }
    }
}

/// A bounded edge of `capacity` (at least 1) with `policy`.
pub fn edge<T>(capacity: usize, policy: QueuePolicy) -> (Output<T>, Receiver<T>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    let evict = (policy == QueuePolicy::DropOldest).then(|| rx.clone());
    (Output { tx, evict, policy }, rx)
}

/// An unbounded edge (evaluation's record of every frame, which must lose nothing).
pub fn unbounded<T>() -> (Output<T>, Receiver<T>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (Output { tx, evict: None, policy: QueuePolicy::Block }, rx)
}

impl<T> Output<T> {
    /// Sends `item` by the edge's policy.
    pub fn send(&self, item: T) -> Sent {
        self.send_as(item, self.policy)
    }

    /// Sends `item` by `policy` (capture blocks for a file read as fast as the pipeline takes it, and evicts for a
    /// live source).
    pub fn send_as(&self, mut item: T, policy: QueuePolicy) -> Sent {
        match policy {
            QueuePolicy::Block => match self.tx.send(item) {
                Ok(()) => Sent::Queued,
                Err(_) => Sent::Closed,
            },
            QueuePolicy::DropNewest => match self.tx.try_send(item) {
                Ok(()) => Sent::Queued,
                Err(TrySendError::Disconnected(_)) => Sent::Closed,
                Err(TrySendError::Full(_)) => Sent::Dropped,
            },
            QueuePolicy::DropOldest => {
                let mut evicted = false;
                loop {
                    match self.tx.try_send(item) {
                        Ok(()) => return if evicted { Sent::Evicted } else { Sent::Queued },
                        Err(TrySendError::Disconnected(_)) => return Sent::Closed,
                        Err(TrySendError::Full(back)) => {
                            item = back;
                            match &self.evict {
                                Some(rx) => {
                                    evicted |= rx.try_recv().is_ok();
                                }
                                // An edge built without an eviction handle cannot evict: wait instead.
                                None => return self.send_as(item, QueuePolicy::Block),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Starts a named thread: every thread of the daemon starts here or in [`Stage`] runs, named for `top -H`,
/// `ps -L`, debuggers and the logs (a stage's own threads, and the sinks', the API's, the gallery watcher's).
pub fn thread<T: Send + 'static>(
    name: impl Into<String>,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new().name(name.into()).spawn(f)
}

/// What every stage gets besides its input and output: the stop signal and the pipeline's counters.
#[derive(Clone)]
pub struct Context {
    /// Raised to stop the pipeline (capture polls it; a stage may raise it, as the preview does when closed).
    pub stop: Stop,
    /// The pipeline's counters.
    pub stats: Arc<Stats>,
}

/// One stage of the pipeline: built (models loaded, devices opened) before any thread starts, then run on a
/// thread of its own from its input edge to its output edge until its input closes.
pub trait Stage: Send + 'static {
    /// The stage's name: its thread, its log span, its row in the statistics.
    const NAME: &'static str;
    /// What it takes.
    type In: Send + 'static;
    /// What it gives.
    type Out: Send + 'static;
    /// Its other edges, beside the main input and output, made by the topology (`()` for none): capture's status
    /// events, the track stage's pictures, snapshots and status input, publish's per-camera counters.
    type Ports: Send + 'static;
    /// Runs until the input closes (or, for capture, which has no input, the source ends or the stop is raised),
    /// then returns, dropping its outputs, which tells the next stages to finish.
    fn run(self, input: Receiver<Self::In>, output: Output<Self::Out>, ports: Self::Ports, cx: &Context);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_queue_policy_keeps_what_it_promises_and_says_what_it_lost() {
        let (out, rx) = edge(2, QueuePolicy::DropOldest);
        assert_eq!([out.send(1), out.send(2), out.send(3)], [Sent::Queued, Sent::Queued, Sent::Evicted]);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [2, 3], "the oldest went");
        let (out, rx) = edge(2, QueuePolicy::DropNewest);
        assert_eq!([out.send(1), out.send(2), out.send(3)], [Sent::Queued, Sent::Queued, Sent::Dropped]);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2], "the newest went");
        let (out, rx) = edge(1, QueuePolicy::Block);
        let sender = std::thread::spawn(move || [out.send(1), out.send(2)]);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(rx.recv().ok(), Some(1));
        assert_eq!(rx.recv().ok(), Some(2), "the second waited for room");
        assert_eq!(sender.join().ok(), Some([Sent::Queued, Sent::Queued]));
        let (out, rx) = edge::<u8>(1, QueuePolicy::DropNewest);
        drop(rx);
        assert_eq!(out.send(1), Sent::Closed);
    }
}
