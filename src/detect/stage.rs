//! The detect stage: one detector session on its own thread, frame in, frame and its faces out.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use tracing::warn;

use super::Detector;
use crate::base::stage::{Context, Output, Sent, Stage, Stop};
use crate::base::{Detection, Frame};

/// Detect → track payload: a frame and the faces found in it (frame pixels).
pub struct Detections {
    /// The frame.
    pub frame: Frame,
    /// Its faces, best score first.
    pub faces: Vec<Detection>,
}

/// After a stop, how long detect waits for capture to close its queue before it stops on its own: a capture stuck
/// in a stalled stream's read or reconnect must not keep the live tracks from ending or the socket from closing.
const CAPTURE_GRACE: Duration = Duration::from_secs(1);

/// The detect stage: owns its detector session and buffers.
pub struct DetectStage {
    detector: Box<dyn Detector>,
}

impl DetectStage {
    /// A stage around a loaded detector ([`super::OnnxDetector::build`] loads one from `[detect]` and the model
    /// manifest).
    pub fn new(detector: Box<dyn Detector>) -> Self {
        Self { detector }
    }
}

/// Receives the next frame; `None` when capture closed the queue, or did not within [`CAPTURE_GRACE`] of a stop.
fn next_frame(rx: &Receiver<Frame>, stop: &Stop, stopped: &mut Option<Instant>) -> Option<Frame> {
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(frame) => return Some(frame),
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) if stop.is_raised() => {
                if stopped.get_or_insert_with(Instant::now).elapsed() >= CAPTURE_GRACE {
                    warn!("Capture did not stop in time (a stalled stream?); ending the pipeline without it.");
                    return None;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

impl Stage for DetectStage {
    const NAME: &'static str = "detect";
    type In = Frame;
    type Out = Detections;

    /// Detects faces in every frame; a frame the detector fails on goes on with no faces (logged, counted).
    fn run(mut self, input: Receiver<Frame>, output: Output<Detections>, cx: &Context) {
        let stats = &cx.stats;
        let mut stopped = None;
        while let Some(frame) = next_frame(&input, &cx.stop, &mut stopped) {
            let started = Instant::now();
            let faces = match self.detector.detect(&frame.bgr) {
                Ok(f) => f,
                Err(e) => {
                    if stats.detect.error() {
                        warn!(seq = frame.seq, error = %e, "Detection failed; frame skipped.");
                    }
                    Vec::new()
                }
            };
            stats.detect.record(started.elapsed());
            stats.faces.fetch_add(faces.len() as u64, std::sync::atomic::Ordering::Relaxed);
            if output.send(Detections { frame, faces }) == Sent::Closed {
                return;
            }
        }
    }
}
