//! Scenario tests of the pipeline with fake stages (vector's topology tests): backpressure, a lossless file, a
//! panicking stage, a lost and restored source, a stop mid-stream. No models: the fakes make each case exact.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use facewatch::capture::{CaptureError, CaptureStage, FrameSource};
use facewatch::detect::{BBox, DetectError, DetectStage, Detection, Detector};
use facewatch::embed::{EmbedError, Embedder, Embedding, FaceEmbedder};
use facewatch::gallery::LiveGallery;
use facewatch::gallery::{Gallery, NewEmbedding};
use facewatch::pipeline::{Pipeline, PipelineError, Queues, Stop};
use facewatch::publish::{ChannelSink, Event, EventBody, EventKind, PublishStage};
use facewatch::track::{FaceThresholds, TrackPlan, TrackStage};
use opencv::core::{Mat, Scalar, CV_8UC3};

/// Synthetic frames; optionally live, slow, or lost at one frame until `fail_reopens` reopen attempts failed.
struct FakeSource {
    total: Option<usize>,
    read: usize,
    live: bool,
    every: Duration,
    lose_at: Option<usize>,
    fail_reopens: usize,
    reopens: Arc<AtomicUsize>,
    /// Read blocks for a minute at this frame: a stream that accepted the connection and went silent.
    stall_at: Option<usize>,
}

impl FakeSource {
    fn new(total: Option<usize>, live: bool) -> Self {
        Self { total, read: 0, live, every: Duration::ZERO, lose_at: None, fail_reopens: 0, reopens: Arc::default(), stall_at: None }
    }
}

impl FrameSource for FakeSource {
    fn describe(&self) -> String {
        "fake".into()
    }
    fn read(&mut self) -> Result<Option<Mat>, CaptureError> {
        if self.total.is_some_and(|t| self.read >= t) {
            return Ok(None);
        }
        if self.stall_at == Some(self.read) {
            std::thread::sleep(Duration::from_secs(60));
        }
        if self.lose_at == Some(self.read) {
            self.lose_at = None;
            return Err(CaptureError::Lost { source_name: "fake".into(), message: "unplugged".into() });
        }
        std::thread::sleep(self.every);
        self.read += 1;
        Ok(Some(Mat::new_rows_cols_with_default(120, 160, CV_8UC3, Scalar::all(90.0)).expect("mat")))
    }
    fn reopen(&mut self) -> Result<(), CaptureError> {
        self.reopens.fetch_add(1, Ordering::SeqCst);
        if self.fail_reopens > 0 {
            self.fail_reopens -= 1;
            return Err(CaptureError::Open { source_name: "fake".into(), message: "not there yet".into() });
        }
        Ok(())
    }
    fn is_live(&self) -> bool {
        self.live
    }
}

/// One face in the middle of every frame; optionally slow, or panicking at one call.
struct FakeDetector {
    delay: Duration,
    panic_at: Option<usize>,
    calls: Arc<AtomicUsize>,
}

impl Detector for FakeDetector {
    fn detect(&mut self, _bgr: &Mat) -> Result<Vec<Detection>, DetectError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        assert!(self.panic_at != Some(n), "fake detector failure at call {n}");
        std::thread::sleep(self.delay);
        let (x, y) = (50.0, 30.0);
        Ok(vec![Detection {
            bbox: BBox { x, y, w: 60.0, h: 70.0 },
            landmarks: [[x + 18.0, y + 28.0], [x + 42.0, y + 28.0], [x + 30.0, y + 42.0], [x + 20.0, y + 56.0], [x + 40.0, y + 56.0]],
            score: 0.95,
        }])
    }
}

/// Always the same face.
struct FakeEmbedder;

fn ann() -> Embedding {
    Embedding::from_raw(vec![1.0, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0, 0.1]).expect("non-zero")
}

impl Embedder for FakeEmbedder {
    fn dim(&self) -> usize {
        8
    }
    fn embed(&mut self, _aligned: &Mat) -> Result<Embedding, EmbedError> {
        Ok(ann())
    }
}

struct Run {
    pipeline: Pipeline,
    events: crossbeam_channel::Receiver<Event>,
    calls: Arc<AtomicUsize>,
}

fn parts(source: FakeSource, detect_delay: Duration, panic_at: Option<usize>) -> Run {
    build(source, detect_delay, panic_at, false)
}

/// Every stage built by hand, with the fakes.
fn build(source: FakeSource, detect_delay: Duration, panic_at: Option<usize>, looping: bool) -> Run {
    let mut gallery = Gallery::in_memory("fake", 8, 1000).expect("gallery");
    gallery.enroll("ann", &[new_embedding(ann(), "ann.jpg")]).expect("enroll");
    build_with(source, detect_delay, panic_at, looping, gallery)
}

fn new_embedding(embedding: Embedding, name: &str) -> NewEmbedding {
    NewEmbedding { embedding, source_path: name.into(), file_sha256: name.into(), det_score: 0.9, crop: None }
}

fn build_with(source: FakeSource, detect_delay: Duration, panic_at: Option<usize>, looping: bool, gallery: Gallery) -> Run {
    let (tx, events) = crossbeam_channel::unbounded();
    let cfg = facewatch::Config::default_embedded().expect("defaults");
    let mut capture = cfg.capture.clone();
    capture.camera = "test".into();
    capture.reconnect_initial = Duration::from_millis(10);
    capture.reconnect_max = Duration::from_millis(40);
    capture.looping = looping;
    let calls = Arc::new(AtomicUsize::new(0));
    let levels = FaceThresholds { same_face_min: 0.0, reid_min: 0.5 };
    let pipeline = Pipeline::single(
        CaptureStage::new(Box::new(source), capture),
        DetectStage::new(Box::new(FakeDetector { delay: detect_delay, panic_at, calls: calls.clone() })),
        TrackStage::build(
            &cfg.track,
            "test",
            FaceEmbedder::new(Box::new(FakeEmbedder)),
            LiveGallery::new(gallery, 3),
            TrackPlan { levels, threshold: 0.4, update_interval: None, embed_budget: 1, pictures: false },
        ),
        PublishStage::new(vec![Box::new(ChannelSink(tx))]),
        None,
        Queues { frames: 2, detections: 2 },
    );
    Run { pipeline, events, calls }
}

fn kinds(rx: &crossbeam_channel::Receiver<Event>) -> Vec<(EventKind, Event)> {
    rx.try_iter().map(|e| (e.kind(), e)).collect()
}

#[test]
fn a_slow_detector_makes_a_live_source_drop_its_oldest_frames_and_every_frame_is_accounted_for() {
    let run = parts(FakeSource::new(Some(200), true), Duration::from_millis(4), None);
    let report = run.pipeline.start(Stop::new()).expect("start").wait(Duration::from_secs(5)).expect("clean finish");
    assert!(report.frames_dropped > 50, "capture outran a 4 ms detector: {report:?}");
    assert_eq!(report.frames + report.frames_dropped, 200, "each frame is processed or counted as dropped");
    let events = kinds(&run.events);
    assert_eq!(events.first().map(|e| e.0), Some(EventKind::TrackStarted));
    assert_eq!(events[0].1.name(), Some("ann"));
    assert_eq!(events.last().map(|e| e.0), Some(EventKind::TrackEnded), "the live track ends with the input");
}

#[test]
fn a_file_read_as_fast_as_possible_loses_no_frame() {
    let run = parts(FakeSource::new(Some(120), false), Duration::from_millis(2), None);
    let report = run.pipeline.start(Stop::new()).expect("start").wait(Duration::from_secs(5)).expect("clean finish");
    assert_eq!((report.frames, report.frames_dropped), (120, 0));
    assert_eq!(run.calls.load(Ordering::SeqCst), 120);
    // One face tracked over all frames: embedded a few times, not 120.
    assert!(report.embedded >= 3 && report.embedded < 30, "{report:?}");
}

#[test]
fn a_panicking_stage_shuts_the_pipeline_down_and_is_reported() {
    let run = parts(FakeSource::new(None, true), Duration::ZERO, Some(10));
    let running = run.pipeline.start(Stop::new()).expect("start");
    match running.wait(Duration::from_secs(5)) {
        Err(PipelineError::StagePanicked { stage, message }) => {
            assert_eq!(stage, "detect");
            assert!(message.contains("fake detector failure"), "{message}");
        }
        other => panic!("expected the detect stage's failure, got {other:?}"),
    }
}

#[test]
fn a_lost_source_is_reported_retried_and_restored() {
    let mut source = FakeSource::new(Some(40), true);
    (source.lose_at, source.fail_reopens, source.every) = (Some(10), 2, Duration::from_millis(2));
    let run = parts(source, Duration::ZERO, None);
    let report = run.pipeline.start(Stop::new()).expect("start").wait(Duration::from_secs(5)).expect("clean finish");
    assert!(report.frames > 20, "frames flow again after the loss: {report:?}");
    let events = kinds(&run.events);
    let lost = events.iter().position(|e| e.0 == EventKind::SourceLost).expect("source_lost published");
    let restored = events.iter().position(|e| e.0 == EventKind::SourceRestored).expect("source_restored published");
    assert!(lost < restored);
    assert!(matches!(events[restored].1.body, EventBody::SourceRestored { attempts: 3, .. }), "two failed reopens, then success");
    assert!(matches!(&events[lost].1.body, EventBody::SourceLost { reason, .. } if reason.contains("unplugged")));
}

#[test]
fn a_stop_mid_stream_drains_every_stage() {
    let mut source = FakeSource::new(None, true);
    source.every = Duration::from_millis(2);
    let run = parts(source, Duration::from_millis(1), None);
    let running = run.pipeline.start(Stop::new()).expect("start");
    let stop = running.stop_handle();
    let stats = running.stats();
    while stats.track.frames.load(Ordering::Relaxed) < 20 {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.raise();
    let report = running.wait(Duration::from_secs(2)).expect("drains within the deadline");
    assert!(report.frames >= 20);
    assert_eq!(kinds(&run.events).last().map(|e| e.0), Some(EventKind::TrackEnded));
}

#[test]
fn a_stop_while_the_source_is_stalled_still_ends_the_tracks_within_the_deadline() {
    // Not live: no frame is dropped on a loaded machine, so exactly the 15 frames before the stall go through.
    let mut source = FakeSource::new(None, false);
    source.every = Duration::from_millis(2);
    source.stall_at = Some(15);
    let run = parts(source, Duration::from_millis(1), None);
    let running = run.pipeline.start(Stop::new()).expect("start");
    let (stop, stats) = (running.stop_handle(), running.stats());
    while stats.track.frames.load(Ordering::Relaxed) < 15 {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Capture is now blocked in a read that will not return for a minute.
    std::thread::sleep(Duration::from_millis(100));
    let stopped = std::time::Instant::now();
    stop.raise();
    let report = running.wait(Duration::from_secs(5)).expect("a stalled source does not fail the shutdown");
    assert!(stopped.elapsed() < Duration::from_secs(5), "took {:?}", stopped.elapsed());
    assert_eq!(report.frames, 15);
    assert_eq!(kinds(&run.events).last().map(|e| e.0), Some(EventKind::TrackEnded), "live tracks ended");
}

#[test]
fn a_looping_source_that_gives_no_more_frames_backs_off_instead_of_spinning() {
    // Five frames, then every read says "end" and reopening does not help: a file that went empty.
    let source = FakeSource::new(Some(5), false);
    let reopens = source.reopens.clone();
    let run = build(source, Duration::ZERO, None, true);
    let running = run.pipeline.start(Stop::new()).expect("start");
    let stop = running.stop_handle();
    std::thread::sleep(Duration::from_millis(400));
    stop.raise();
    let report = running.wait(Duration::from_secs(2)).expect("drains");
    assert_eq!(report.frames, 5);
    let events = kinds(&run.events);
    let count = |k: EventKind| events.iter().filter(|e| e.0 == k).count();
    assert_eq!((count(EventKind::SourceLost), count(EventKind::SourceRestored)), (1, 0), "lost once, never restored");
    // Delays 10, 20, 40, 40, … ms in 400 ms: about a dozen reopens, not thousands.
    let n = reopens.load(Ordering::SeqCst);
    assert!((3..=15).contains(&n), "{n} reopens");
}

#[test]
fn re_indexing_a_changed_gallery_never_stalls_the_pipeline() {
    // A gallery large enough that its search view takes a while to make: 250 persons × 4,000 random 8-d
    // embeddings (a million: their codes take about 0.45 s).
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("g.db");
    let mut gallery = Gallery::open(&path, "fake", 8, 100).expect("gallery");
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    for p in 0..250 {
        let items: Vec<NewEmbedding> = (0..4000)
            .map(|i| new_embedding(Embedding::from_raw((0..8).map(|_| next()).collect()).expect("non-zero"), &format!("p{p}/{i}.jpg")))
            .collect();
        gallery.enroll(&format!("p{p}"), &items).expect("enroll");
    }
    let started = std::time::Instant::now();
    drop(gallery.search_view());
    let rebuild = started.elapsed();
    assert!(rebuild > Duration::from_millis(300), "the index builds in {rebuild:?}: too fast to show a stall");

    eprintln!("index build: {rebuild:?}");
    // A live camera at 50 fps; "ann" is enrolled from another connection 0.5 s in. The test watches the track
    // stage's frame count: a rebuild on that thread would hold it still for about as long as the build takes.
    let mut source = FakeSource::new(None, true);
    source.every = Duration::from_millis(20);
    let run = build_with(source, Duration::ZERO, None, false, gallery);
    let running = run.pipeline.start(Stop::new()).expect("start");
    let (stop, stats) = (running.stop_handle(), running.stats());
    std::thread::sleep(Duration::from_millis(500));
    let mut writer = Gallery::open(&path, "fake", 8, 100).expect("second connection");
    writer.enroll("ann", &[new_embedding(ann(), "ann.jpg")]).expect("enroll while running");
    let (mut seen, mut longest_still, mut last) = (Vec::new(), Duration::ZERO, (std::time::Instant::now(), 0u64));
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !seen.iter().any(|e: &Event| e.name() == Some("ann")) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        let frames = stats.track.frames.load(Ordering::Relaxed);
        if frames != last.1 {
            last = (std::time::Instant::now(), frames);
        }
        longest_still = longest_still.max(last.0.elapsed());
        seen.extend(run.events.try_iter());
    }
    stop.raise();
    running.wait(Duration::from_secs(5)).expect("clean finish");
    assert!(seen.iter().any(|e| e.name() == Some("ann")), "the new person was recognised without a restart");
    // Frames arrive every 20 ms; a stall as long as the rebuild would hold the count still for about `rebuild`.
    assert!(longest_still < rebuild / 2, "the track stage stood still for {longest_still:?} while a {rebuild:?} rebuild ran beside it");
}
