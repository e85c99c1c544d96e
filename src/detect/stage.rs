//! The detect stage: one or more detector sessions, each on its own thread, frames in, each frame and its faces
//! out in the order the frames came.
//!
//! With several workers a frame goes to whichever is free, and the stage puts the results back in order before
//! they leave (a frame is never overtaken by a later one): detection, the pipeline's heaviest step per frame, then
//! uses as many cores as there are workers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use tracing::warn;

use super::Detector;
use crate::base::{Detection, Frame};
use crate::stage::{Context, Output, Sent, Stage, Stop};

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

/// The detect stage: owns its detector sessions and buffers.
pub struct DetectStage {
    detectors: Vec<Box<dyn Detector>>,
}

impl DetectStage {
    /// A stage around one loaded detector ([`super::OnnxDetector::build`] loads one from `[detect]` and the model
    /// manifest).
    pub fn new(detector: Box<dyn Detector>) -> Self {
        Self { detectors: vec![detector] }
    }

    /// A stage whose frames are shared among `detectors` (one thread each; at least one).
    pub fn with_workers(detectors: Vec<Box<dyn Detector>>) -> Self {
        assert!(!detectors.is_empty(), "a detect stage needs a detector");
        Self { detectors }
    }

    /// Number of detector threads.
    pub fn workers(&self) -> usize {
        self.detectors.len()
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

/// Detects the faces of one frame, timed and counted; a frame the detector fails on goes on with no faces.
fn detect_one(detector: &mut dyn Detector, frame: Frame, cx: &Context) -> Detections {
    let stats = &cx.stats;
    let started = Instant::now();
    let faces = match detector.detect(&frame.bgr) {
        Ok(f) => f,
        Err(e) => {
            if stats.detect.error() {
                warn!(seq = frame.seq, error = %e, "Detection failed; frame skipped.");
            }
            Vec::new()
        }
    };
    stats.detect.record(started.elapsed());
    stats.faces.fetch_add(faces.len() as u64, Ordering::Relaxed);
    Detections { frame, faces }
}

impl Stage for DetectStage {
    const NAME: &'static str = "detect";
    type In = Frame;
    type Out = Detections;
    type Ports = ();

    /// Detects faces in every frame; a frame the detector fails on goes on with no faces (logged, counted).
    fn run(mut self, input: Receiver<Frame>, output: Output<Detections>, (): (), cx: &Context) {
        let mut stopped = None;
        if self.detectors.len() == 1 {
            let detector = self.detectors[0].as_mut();
            while let Some(frame) = next_frame(&input, &cx.stop, &mut stopped) {
                if output.send(detect_one(detector, frame, cx)) == Sent::Closed {
                    return;
                }
            }
            return;
        }
        // Several workers: this thread numbers the frames and hands them out, the workers detect, and a reorder
        // buffer releases results in number order. At most two frames per worker are in flight, between handing out
        // and release: one credit per frame, taken before a frame is handed out and given back once its result is
        // released, so a slow stage downstream holds this one back (and capture behind it) instead of letting
        // finished detections pile up.
        let n = self.detectors.len();
        let (credit_tx, credit_rx) = crossbeam_channel::bounded::<()>(2 * n);
        let (work_tx, work_rx) = crossbeam_channel::bounded::<(u64, Frame)>(n);
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<(u64, Detections)>();
        let closed = AtomicBool::new(false);
        let failed = AtomicBool::new(false);
        let failed = &failed;
        std::thread::scope(|s| {
            for (i, detector) in self.detectors.iter_mut().enumerate() {
                let (work_rx, done_tx) = (work_rx.clone(), done_tx.clone());
                let span = tracing::Span::current();
                std::thread::Builder::new()
                    .name(format!("detect-{i}"))
                    .spawn_scoped(s, move || {
                        let _span = span.enter();
                        let work = std::panic::AssertUnwindSafe(|| {
                            for (ticket, frame) in work_rx {
                                if done_tx.send((ticket, detect_one(detector.as_mut(), frame, cx))).is_err() {
                                    return;
                                }
                            }
                        });
                        // A worker that panics leaves a frame that will never be released: stop the pipeline (the
                        // dispatcher stops waiting for credits), then let the stage report the panic.
                        if let Err(panic) = std::panic::catch_unwind(work) {
                            failed.store(true, Ordering::SeqCst);
                            cx.stop.raise();
                            std::panic::resume_unwind(panic);
                        }
                    })
                    .expect("spawn a detect worker thread");
            }
            drop((work_rx, done_tx));
            let (closed, output, credits) = (&closed, &output, &credit_rx);
            let releaser = std::thread::Builder::new()
                .name("detect-order".into())
                .spawn_scoped(s, move || {
                    let mut next = 0u64;
                    let mut waiting = BTreeMap::new();
                    for (ticket, detections) in done_rx {
                        waiting.insert(ticket, detections);
                        while let Some(d) = waiting.remove(&next) {
                            next += 1;
                            if output.send(d) == Sent::Closed {
                                closed.store(true, Ordering::SeqCst);
                                // Unblock a dispatcher waiting for a credit.
                                while credits.try_recv().is_ok() {}
                                return;
                            }
                            let _ = credits.try_recv();
                        }
                    }
                })
                .expect("spawn the detect reorder thread");
            let mut ticket = 0u64;
            // A credit, waiting while frames are in flight, unless the output closed or a worker failed.
            let credit = || loop {
                match credit_tx.send_timeout((), Duration::from_millis(50)) {
                    Ok(()) => return true,
                    Err(crossbeam_channel::SendTimeoutError::Timeout(()))
                        if !closed.load(Ordering::SeqCst) && !failed.load(Ordering::SeqCst) => {}
                    Err(_) => return false,
                }
            };
            while let Some(frame) = next_frame(&input, &cx.stop, &mut stopped) {
                if closed.load(Ordering::SeqCst) || !credit() || work_tx.send((ticket, frame)).is_err() {
                    break;
                }
                ticket += 1;
            }
            drop(work_tx);
            let _ = releaser.join();
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use opencv::core::{Mat, MatTraitConst, Scalar, Vec3b, CV_8UC3};

    use super::*;
    use crate::metrics::Stats;
    use crate::stage::unbounded;

    /// A detector that takes longer on even frames (their number is in the blue of the first pixel), so that with
    /// several workers odd frames finish first; it reports one face whose score is the frame's number.
    struct Uneven;

    impl Detector for Uneven {
        fn detect(&mut self, bgr: &Mat) -> Result<Vec<Detection>, super::super::DetectError> {
            let seq = bgr.at_2d::<Vec3b>(0, 0)?[0];
            std::thread::sleep(Duration::from_millis(if seq % 2 == 0 { 8 } else { 1 }));
            let bbox = crate::base::face::BBox { x: 0.0, y: 0.0, w: 1.0, h: 1.0 };
            Ok(vec![Detection { bbox, landmarks: [[0.0; 2]; 5], score: f32::from(seq) }])
        }
    }

    #[test]
    fn several_workers_keep_the_frames_in_order_and_each_frame_with_its_own_faces() {
        for workers in [1, 3] {
            let (tx, rx) = crossbeam_channel::unbounded();
            for seq in 0..40u64 {
                let bgr = Mat::new_rows_cols_with_default(2, 2, CV_8UC3, Scalar::all(seq as f64)).expect("mat");
                tx.send(Frame::from_bgr(bgr, "test", seq)).expect("send");
            }
            drop(tx);
            let (out, results) = unbounded();
            let cx = Context { stop: Stop::new(), stats: Arc::new(Stats::default()) };
            let detectors: Vec<Box<dyn Detector>> = (0..workers).map(|_| Box::new(Uneven) as Box<dyn Detector>).collect();
            let stage = DetectStage::with_workers(detectors);
            assert_eq!(stage.workers(), workers);
            stage.run(rx, out, (), &cx);
            let got: Vec<(u64, f32)> = results.try_iter().map(|d| (d.frame.seq, d.faces[0].score)).collect();
            let want: Vec<(u64, f32)> = (0..40u64).map(|s| (s, s as f32)).collect();
            assert_eq!(got, want, "{workers} workers");
            assert_eq!(cx.stats.faces.load(Ordering::Relaxed), 40);
        }
    }

    #[test]
    fn a_slow_stage_downstream_holds_the_workers_back() {
        let (tx, rx) = crossbeam_channel::unbounded();
        for seq in 0..100u64 {
            let bgr = Mat::new_rows_cols_with_default(2, 2, CV_8UC3, Scalar::all((seq % 200) as f64)).expect("mat");
            tx.send(Frame::from_bgr(bgr, "test", seq)).expect("send");
        }
        drop(tx);
        // The next stage takes one result and then nothing for a while.
        let (out, results) = crate::stage::edge(1, crate::stage::QueuePolicy::Block);
        let cx = Context { stop: Stop::new(), stats: Arc::new(Stats::default()) };
        let detectors: Vec<Box<dyn Detector>> = (0..3).map(|_| Box::new(Uneven) as Box<dyn Detector>).collect();
        let input = rx.clone();
        let running = std::thread::spawn(move || DetectStage::with_workers(detectors).run(rx, out, (), &cx));
        std::thread::sleep(Duration::from_millis(300));
        let taken = 100 - input.len();
        assert!(taken <= 2 * 3 + 2, "{taken} frames taken while the next stage read none: detections pile up");
        let got: Vec<u64> = results.iter().map(|d| d.frame.seq).collect();
        running.join().expect("stage");
        assert_eq!(got, (0..100).collect::<Vec<_>>(), "then every frame, in order");
    }

    /// Panics on its third frame.
    struct Breaks(usize);

    impl Detector for Breaks {
        fn detect(&mut self, _bgr: &Mat) -> Result<Vec<Detection>, super::super::DetectError> {
            self.0 += 1;
            assert!(self.0 < 3, "a bug in a detector");
            Ok(Vec::new())
        }
    }

    #[test]
    fn a_worker_that_panics_stops_the_stage_instead_of_hanging_it() {
        let (tx, rx) = crossbeam_channel::unbounded();
        for seq in 0..50u64 {
            tx.send(Frame::from_bgr(Mat::new_rows_cols_with_default(2, 2, CV_8UC3, Scalar::all(0.0)).expect("mat"), "test", seq))
                .expect("send");
        }
        drop(tx);
        let (out, results) = unbounded();
        let stop = Stop::new();
        let cx = Context { stop: stop.clone(), stats: Arc::new(Stats::default()) };
        let detectors: Vec<Box<dyn Detector>> = vec![Box::new(Breaks(0)), Box::new(Breaks(10))];
        let running = std::thread::spawn(move || DetectStage::with_workers(detectors).run(rx, out, (), &cx));
        let started = Instant::now();
        while !running.is_finished() {
            assert!(started.elapsed() < Duration::from_secs(10), "the stage hung after a worker panicked");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(running.join().is_err(), "the panic reaches the stage's thread, which reports it");
        assert!(stop.is_raised(), "and the pipeline is told to stop");
        drop(results);
    }
}
