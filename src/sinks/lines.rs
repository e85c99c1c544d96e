//! Events as JSON lines to a writer: `run --print` (stdout) and `run --record FILE` (appended, 0600, never through a
//! link), each on a thread of its own behind a bounded queue ([`QueuedLineSink`]).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use super::EventSink;
use crate::base::Event;

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
        let thread = crate::stage::thread(name, move || {
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
