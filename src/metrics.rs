//! Counters and latency samples per stage, shared by the stage threads, the preview and `facewatch bench`.
//!
//! Per-frame numbers go here, never to the log: each stage records its own time per frame (an uncontended lock
//! and a ring of the last [`SAMPLES`] values), and drops and errors are atomic counters. The frame rate served as
//! `facewatch_fps` comes from the track stage's own samples of its frame count ([`FpsSamples`]), not from the
//! readers: any number of scrapers read it without moving it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

/// The `p`-quantile (0..1) of `sorted` samples by nearest rank; `None` when there are none.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize])
}

/// Samples kept per stage for percentiles.
pub const SAMPLES: usize = 16_384;

/// Upper bounds (seconds) of the latency histogram of every stage (Prometheus `le`), beside `+Inf`.
pub const BUCKETS_S: [f64; 12] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0];

/// The track stage samples its frame count at most this often ([`Stats::sample_fps`]).
pub const FPS_SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// [`Stats::recent_fps`] counts the frames of about this long.
pub const FPS_WINDOW: Duration = Duration::from_secs(5);

/// Frames done at a few recent instants: the pipeline's frame rate over the last [`FPS_WINDOW`], for readers that
/// come at any time (the metrics, several scrapers) and must not disturb one another. The pipeline adds a sample at
/// most every [`FPS_SAMPLE_EVERY`]; a reader computes, without changing anything, the rate from the newest sample
/// at least [`FPS_WINDOW`] old (or the start, while the pipeline is younger) up to the frame count it reads now.
#[derive(Debug, Clone)]
pub struct FpsSamples {
    /// Oldest first; the first is the start (no frames) until a sample ages out past the window.
    samples: VecDeque<(Instant, u64)>,
}

impl FpsSamples {
    /// A window of a pipeline that started at `start`.
    pub fn new(start: Instant) -> Self {
        let mut samples = VecDeque::with_capacity(16);
        samples.push_back((start, 0));
        Self { samples }
    }

    /// Records `frames` done by `now`, unless the newest sample is younger than [`FPS_SAMPLE_EVERY`]; forgets the
    /// samples the window no longer needs (it keeps the newest one at least [`FPS_WINDOW`] old). Returns whether
    /// it recorded.
    pub fn sample(&mut self, now: Instant, frames: u64) -> bool {
        if self.samples.back().is_some_and(|&(t, _)| now.saturating_duration_since(t) < FPS_SAMPLE_EVERY) {
            return false;
        }
        self.samples.push_back((now, frames));
        while self.samples.get(1).is_some_and(|&(t, _)| now.saturating_duration_since(t) >= FPS_WINDOW) {
            self.samples.pop_front();
        }
        true
    }

    /// Frames per second at `now`, when `frames` are done: since the newest sample at least [`FPS_WINDOW`] before
    /// `now` (else since the oldest kept, the start while the pipeline is younger than the window). A pipeline that
    /// stopped taking frames (its source lost) goes down to 0 within the window.
    pub fn fps(&self, now: Instant, frames: u64) -> f64 {
        let anchor = self.samples.iter().rev().find(|&&(t, _)| now.saturating_duration_since(t) >= FPS_WINDOW).or(self.samples.front());
        let Some(&(since, before)) = anchor else { return 0.0 };
        let secs = now.saturating_duration_since(since).as_secs_f64();
        if secs > 0.0 {
            frames.saturating_sub(before) as f64 / secs
        } else {
            0.0
        }
    }
}

/// One stage's counters.
#[derive(Debug)]
pub struct StageStats {
    /// Stage name (thread name, config table).
    pub name: &'static str,
    /// Items processed.
    pub frames: AtomicU64,
    /// Items dropped on this stage's input edge (capture: frames evicted from the capture → detect queue).
    pub dropped: AtomicU64,
    /// Items that failed (logged, skipped).
    pub errors: AtomicU64,
    /// Capture: a lost source is being retried (no frames, by design).
    pub retrying: std::sync::atomic::AtomicBool,
    samples: Mutex<Vec<u32>>,
    /// Items per [`BUCKETS_S`] bucket (not cumulative), and the sum of their times in microseconds.
    buckets: [AtomicU64; BUCKETS_S.len()],
    sum_us: AtomicU64,
}

/// A stage's latency histogram since start, as Prometheus serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Items at or below each bound of [`BUCKETS_S`] (cumulative).
    pub cumulative: Vec<u64>,
    /// Items in all.
    pub count: u64,
    /// Their summed time, seconds.
    pub sum_s: f64,
}

impl StageStats {
    /// Empty counters for `name`.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            frames: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            retrying: std::sync::atomic::AtomicBool::new(false),
            samples: Mutex::new(Vec::new()),
            buckets: Default::default(),
            sum_us: AtomicU64::new(0),
        }
    }

    /// The latency histogram since start.
    pub fn histogram(&self) -> Histogram {
        let mut total = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect();
        Histogram { cumulative, count: self.frames.load(Ordering::Relaxed), sum_s: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6 }
    }

    /// Counts one item that took `d`.
    pub fn record(&self, d: Duration) {
        let n = self.frames.fetch_add(1, Ordering::Relaxed) as usize;
        let us = d.as_micros().min(u128::from(u32::MAX)) as u32;
        self.sum_us.fetch_add(u64::from(us), Ordering::Relaxed);
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS_S.iter().position(|&b| secs <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let mut s = self.samples.lock();
        if s.len() < SAMPLES {
            s.push(us);
        } else {
            s[n % SAMPLES] = us;
        }
    }

    /// Counts one failure; true for the first and every 100th, so callers can log those without flooding.
    pub fn error(&self) -> bool {
        self.errors.fetch_add(1, Ordering::Relaxed) % 100 == 0
    }

    /// Median, 99th percentile and mean of the kept samples, in milliseconds.
    pub fn percentiles(&self) -> (f64, f64, f64) {
        let mut s = self.samples.lock().clone();
        if s.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        s.sort_unstable();
        let at = |p: f64| percentile(&s, p).map_or(0.0, |us| f64::from(us) / 1000.0);
        let mean = s.iter().map(|&v| f64::from(v)).sum::<f64>() / s.len() as f64 / 1000.0;
        (at(0.5), at(0.99), mean)
    }

    fn report(&self) -> StageReport {
        let (p50_ms, p99_ms, mean_ms) = self.percentiles();
        StageReport {
            stage: self.name,
            items: self.frames.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            p50_ms,
            p99_ms,
            mean_ms,
        }
    }
}

/// Every stage's counters, plus end-to-end figures.
#[derive(Debug)]
pub struct Stats {
    /// Frame reads.
    pub capture: StageStats,
    /// Detection per frame.
    pub detect: StageStats,
    /// Association, alignment and embedding per frame.
    pub embed: StageStats,
    /// Gallery search per frame.
    pub matcher: StageStats,
    /// Identity voting per frame.
    pub track: StageStats,
    /// Stranger matching per frame (its gates, the search among strangers, the faces kept).
    pub strangers: StageStats,
    /// Serialisation and fan-out per event; `dropped` counts events the full publish queue refused.
    pub publish: StageStats,
    /// Capture → track stage done, per frame.
    pub latency: StageStats,
    /// Alignment and embedding of one face (the embed stage's time is per frame, mostly without embedding).
    pub embed_face: StageStats,
    /// Faces detected.
    pub faces: AtomicU64,
    /// Faces embedded (the rest reused their track's identity).
    pub embedded: AtomicU64,
    /// Shot cuts detected.
    pub cuts: AtomicU64,
    /// When the pipeline started.
    pub started: Instant,
    /// When the track stage finished its last frame: throughput is measured up to here, without the shutdown
    /// (which may spend up to 0.5 s letting subscribers receive their last lines).
    pub frames_done: Mutex<Option<Instant>>,
    /// What the event outputs report (the publish stage asks its sinks); shared by every camera of a pipeline.
    pub outputs: Arc<OutputStats>,
    /// The track stage's frame count, sampled as it goes, for [`Stats::recent_fps`].
    fps: Mutex<FpsSamples>,
}

/// The event outputs' counters, as their sinks last reported them.
#[derive(Debug, Default)]
pub struct OutputStats {
    /// Whether an MQTT broker is configured.
    pub mqtt: std::sync::atomic::AtomicBool,
    /// Whether the MQTT broker is connected now.
    pub mqtt_connected: std::sync::atomic::AtomicBool,
    /// Each output by name (`socket`, `mqtt`, `sse`, `print`, `record`): its subscribers, where it has them, and
    /// the events (lines, messages) it lost; for the socket, all its subscribers together (each loses only its own
    /// oldest).
    pub by_output: Mutex<std::collections::BTreeMap<&'static str, OutputCounts>>,
}

/// One output's counters in [`OutputStats::by_output`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OutputCounts {
    /// Readers connected now (the socket's subscribers, the API's event-stream clients); `None` for an output
    /// that has no readers of its own (a broker, a file).
    pub subscribers: Option<u64>,
    /// Events (or lines, or messages) it lost, all readers together.
    pub dropped: u64,
}

impl OutputStats {
    /// Records what output `name` reports now.
    pub fn set(&self, name: &'static str, subscribers: Option<u64>, dropped: u64) {
        self.by_output.lock().insert(name, OutputCounts { subscribers, dropped });
    }
}

impl Default for Stats {
    fn default() -> Self {
        let started = Instant::now();
        Self {
            capture: StageStats::new("capture"),
            detect: StageStats::new("detect"),
            embed: StageStats::new("embed"),
            matcher: StageStats::new("matcher"),
            track: StageStats::new("track"),
            strangers: StageStats::new("strangers"),
            publish: StageStats::new("publish"),
            latency: StageStats::new("latency"),
            embed_face: StageStats::new("embed_face"),
            faces: AtomicU64::new(0),
            embedded: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
            started,
            frames_done: Mutex::new(None),
            outputs: Arc::default(),
            fps: Mutex::new(FpsSamples::new(started)),
        }
    }
}

impl Stats {
    /// Fresh counters of one camera whose outputs are `outputs` (those of the daemon's other cameras too).
    pub fn sharing(outputs: Arc<OutputStats>) -> Self {
        Self { outputs, ..Self::default() }
    }

    /// Samples the track stage's frame count for [`Stats::recent_fps`]; the track stage calls it after each frame
    /// (it keeps a sample at most every [`FPS_SAMPLE_EVERY`]).
    pub fn sample_fps(&self) {
        let frames = self.track.frames.load(Ordering::Relaxed);
        self.fps.lock().sample(Instant::now(), frames);
    }

    /// Frames through the track stage per second over about the last [`FPS_WINDOW`] (since start while younger):
    /// the same figure for every reader, whenever and however often it asks.
    pub fn recent_fps(&self) -> f64 {
        let frames = self.track.frames.load(Ordering::Relaxed);
        self.fps.lock().fps(Instant::now(), frames)
    }
}

/// One stage in a [`Report`].
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// Stage name.
    pub stage: &'static str,
    /// Items processed.
    pub items: u64,
    /// Items dropped at its input.
    pub dropped: u64,
    /// Items that failed.
    pub errors: u64,
    /// Median time per item, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
}

/// A snapshot of the pipeline's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Frames that went all the way through.
    pub frames: u64,
    /// Seconds from start to the last frame through (or to now, while running).
    pub seconds: f64,
    /// Frames per second through the whole pipeline.
    pub fps: f64,
    /// Frames dropped between capture and detect.
    pub frames_dropped: u64,
    /// Faces detected, and embedded.
    pub faces: u64,
    /// Faces embedded.
    pub embedded: u64,
    /// Shot cuts detected.
    pub cuts: u64,
    /// Events published, and refused by a full publish queue.
    pub events: u64,
    /// Events refused by a full publish queue.
    pub events_dropped: u64,
    /// Capture → identity decided, per frame.
    pub latency: StageReport,
    /// Align + embed, per embedded face.
    pub embed_face: StageReport,
    /// Per stage.
    pub stages: Vec<StageReport>,
    /// Stranger matching per frame, when it ran (`[strangers]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strangers: Option<StageReport>,
}

impl Stats {
    /// The stages in pipeline order.
    pub fn stages(&self) -> [&StageStats; 6] {
        [&self.capture, &self.detect, &self.embed, &self.matcher, &self.track, &self.publish]
    }

    /// A snapshot.
    pub fn report(&self) -> Report {
        let frames = self.track.frames.load(Ordering::Relaxed);
        let end = (*self.frames_done.lock()).unwrap_or_else(Instant::now);
        let seconds = end.duration_since(self.started).as_secs_f64();
        Report {
            frames,
            seconds,
            fps: if seconds > 0.0 { frames as f64 / seconds } else { 0.0 },
            frames_dropped: self.capture.dropped.load(Ordering::Relaxed),
            faces: self.faces.load(Ordering::Relaxed),
            embedded: self.embedded.load(Ordering::Relaxed),
            cuts: self.cuts.load(Ordering::Relaxed),
            events: self.publish.frames.load(Ordering::Relaxed),
            events_dropped: self.publish.dropped.load(Ordering::Relaxed),
            latency: self.latency.report(),
            embed_face: self.embed_face.report(),
            stages: self.stages().iter().map(|s| s.report()).collect(),
            strangers: Some(self.strangers.report()).filter(|r| r.items > 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_samples() {
        let s = StageStats::new("t");
        for ms in 1..=100u64 {
            s.record(Duration::from_millis(ms));
        }
        let (p50, p99, mean) = s.percentiles();
        assert!((p50 - 50.0).abs() <= 1.0, "{p50}");
        assert!((p99 - 99.0).abs() <= 1.0, "{p99}");
        assert!((mean - 50.5).abs() < 0.01, "{mean}");
        assert!(s.error());
        assert!(!s.error());
    }

    #[test]
    fn fps_window_counts_the_last_five_seconds_and_since_start_before() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut w = FpsSamples::new(start);
        // Younger than the window: since start. 10 frames a second for 2 s, sampled every 0.5 s.
        for i in 1..=4u64 {
            assert!(w.sample(at(i * 500), i * 5));
        }
        assert!(!w.sample(at(2_100), 21), "a sample at most every 0.5 s");
        assert_eq!(w.fps(at(2_000), 20), 10.0);
        assert_eq!(w.fps(at(2_500), 25), 10.0, "read between samples, with the frames done by then");
        // Then 30 frames a second from 2 s to 10 s: at 10 s the window starts at the sample of 5 s.
        let mut frames = 20;
        for i in 5..=20u64 {
            frames += 15;
            assert!(w.sample(at(i * 500), frames));
        }
        assert_eq!(frames, 260);
        assert_eq!(w.fps(at(10_000), frames), 30.0);
        assert!(w.samples.len() <= 12, "only what the window needs is kept: {}", w.samples.len());
        // Readers change nothing: any number of them, at any time, read the same figure.
        let copy = w.clone();
        for _ in 0..3 {
            assert_eq!(w.fps(at(10_000), frames), 30.0);
        }
        assert_eq!(copy.samples, w.samples);
        // Frames stop (a source lost): the rate falls, and is 0 once the window holds no frame.
        assert_eq!(w.fps(at(12_500), frames), 15.0, "since the sample of 7.5 s (185 frames)");
        assert_eq!(w.fps(at(15_000), frames), 0.0);
        assert_eq!(w.fps(start, 0), 0.0, "no time, no rate");
    }
}
