//! `facewatch bench`: throughput, latency, CPU and memory of the whole pipeline on a video, beside the bare models
//! on the same frames, with a reading and any number of stalled subscribers on the event socket.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::JobError;
use crate::base::{Event, EventKind};
use crate::capture::{FrameSource, VideoSource};
use crate::config::{Config, SourceKind};
use crate::gallery::copy_gallery;
use crate::metrics::percentile;
use crate::pipeline::topology::Outputs;
use crate::pipeline::{BuildOptions, Built, Pipeline, Report};
use crate::sinks::{ChannelSink, SocketServer};
use crate::stage::Stop;
use crate::stills::Engine;

/// Median and 99th percentile of `v` (sorted in place).
fn p50_p99(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |p: f64| percentile(v, p).unwrap_or(0.0);
    (at(0.5), at(0.99))
}

/// CPU seconds (user + system) and peak resident memory (MiB) of this process so far.
fn process_usage() -> (f64, f64) {
    // SAFETY: getrusage only writes into the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return (0.0, 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(u.ru_utime) + secs(u.ru_stime), u.ru_maxrss as f64 / 1024.0)
}

/// Frame → event latency of the track events.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// events.
    pub events: usize,
    /// p50 ms.
    pub p50_ms: f64,
    /// p99 ms.
    pub p99_ms: f64,
}

/// What the event socket did for its subscribers.
#[derive(Debug, Serialize)]
pub struct Subscribers {
    /// stalled.
    pub stalled: usize,
    /// reader lines.
    pub reader_lines: usize,
    /// reader told dropped.
    pub reader_told_dropped: u64,
    /// dropped for stalled.
    pub dropped_for_stalled: u64,
}

/// The bare models on the same frames, one after the other on one thread.
#[derive(Debug, Serialize)]
pub struct Baseline {
    /// frames.
    pub frames: usize,
    /// faces embedded.
    pub faces_embedded: usize,
    /// p50 ms per frame.
    pub p50_ms_per_frame: f64,
    /// p99 ms per frame.
    pub p99_ms_per_frame: f64,
    /// fps.
    pub fps: f64,
}

/// The figures of one bench run.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// video.
    pub video: String,
    /// realtime.
    pub realtime: bool,
    /// pipeline.
    pub pipeline: Report,
    /// event latency.
    pub event_latency: Latency,
    /// cpu seconds.
    pub cpu_seconds: f64,
    /// cpu cores busy.
    pub cpu_cores_busy: f64,
    /// peak rss mib.
    pub peak_rss_mib: f64,
    /// subscribers.
    pub subscribers: Subscribers,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// baseline.
    pub baseline: Option<Baseline>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// speedup over baseline.
    pub speedup_over_baseline: Option<f64>,
}

/// Detect every frame and embed every face, one after the other on one thread: the bare models' cost.
fn baseline(cfg: &Config, frames: Option<u64>) -> Result<Baseline, JobError> {
    // The threads each of the pipeline's sessions had, as planned (a file is live when paced at its frame rate).
    let plan = crate::pipeline::Plan::for_this_machine(cfg).map_err(crate::stills::EngineError::from)?;
    let mut engine = Engine::for_video(&plan.runtime_config(cfg))?;
    let mut cfg_fast = cfg.capture.clone();
    cfg_fast.realtime = false;
    let mut source = VideoSource::open(&cfg_fast)?;
    let mut times = Vec::new();
    let mut embedded = 0usize;
    while let Some(bgr) = source.read()? {
        if frames.is_some_and(|n| times.len() as u64 >= n) {
            break;
        }
        let frame = crate::base::Frame::from_bgr(bgr, "baseline", times.len() as u64);
        let t = Instant::now();
        embedded += engine.faces(&frame)?.len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    let n = times.len();
    let (p50, p99) = p50_p99(&mut times);
    Ok(Baseline {
        frames: n,
        faces_embedded: embedded,
        p50_ms_per_frame: p50,
        p99_ms_per_frame: p99,
        fps: if mean > 0.0 { 1000.0 / mean } else { 0.0 },
    })
}

/// A directory removed with everything in it when dropped.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What to bench.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Video file (or image pattern).
    pub video: String,
    /// Frames to process (`None`: the whole file).
    pub frames: Option<u64>,
    /// Deliver frames at the file's frame rate (latency at camera rate) instead of as fast as possible.
    pub realtime: bool,
    /// Subscribers that connect to the event socket and never read.
    pub stalled_subscribers: usize,
    /// Also run the bare models on the same frames.
    pub baseline: bool,
    /// Publish to the broker of `[mqtt]` too (its cost on the pipeline).
    pub mqtt: bool,
    /// Match unnamed faces against the strangers and keep new ones (`[strangers]`), in a copy of the gallery.
    pub strangers: bool,
}

/// Runs the whole pipeline over the video with `cfg`'s models and gallery, a socket with one reading and
/// `stalled_subscribers` stalled subscribers, then (with `baseline`) the bare models on the same frames.
pub fn bench(cfg: &Config, a: &BenchOptions) -> Result<BenchReport, JobError> {
    let socket = std::env::temp_dir().join(format!("facewatch-bench-{}.sock", std::process::id()));
    let mut cfg = cfg.clone();
    cfg.capture.source = a.video.clone();
    cfg.cameras = Default::default();
    cfg.capture.kind = SourceKind::Video;
    cfg.capture.looping = false;
    cfg.capture.realtime = a.realtime;
    // Strangers are kept in the gallery: the bench keeps them in a copy, which goes with it.
    let _copy = match a.strangers {
        true => {
            let dir = std::env::temp_dir().join(format!("facewatch-bench-{}", std::process::id()));
            crate::private::PrivateDir::create(&dir).map_err(JobError::file("make", &dir))?;
            let path = dir.join("gallery.db");
            if cfg.gallery.url.is_set() {
                // A shared gallery: its content, into a file of the bench's own.
                let manifest = crate::model::Manifest::configured(&cfg.models.manifest)?;
                let dim = manifest.recognizer(&cfg.models.recognizer)?.dim;
                let from = crate::gallery::open_store(&cfg.gallery, &cfg.models.recognizer, dim, false)?;
                let mut into = crate::gallery::SqliteStore::open(&path, &cfg.models.recognizer, dim)?;
                crate::gallery::copy::copy_between(from.as_ref(), &mut into)?;
                cfg.gallery.url = crate::gallery::DbUrl::default();
            } else {
                copy_gallery(&crate::paths::resolve_path(&cfg.gallery.path), &path)?;
            }
            cfg.gallery.path = path.to_string_lossy().into_owned();
            cfg.strangers.enabled = true;
            Some(RemoveOnDrop(dir))
        }
        false => None,
    };
    let cfg = &cfg;
    let (events_tx, events_rx) = crossbeam_channel::unbounded();
    let options = BuildOptions {
        outputs: Outputs { extra: vec![Box::new(ChannelSink(events_tx))], mqtt: a.mqtt, strangers: a.strangers, ..Outputs::default() },
        max_frames: a.frames,
    };
    let Built { mut pipeline, .. } = Pipeline::build(cfg, options)?;
    let server = SocketServer::bind(&socket, &cfg.capture.camera, cfg.publish.subscriber_queue.get())?;
    let connect = || UnixStream::connect(&socket).map_err(JobError::file("connect to", &socket));
    let stalled: Vec<UnixStream> = (0..a.stalled_subscribers).map(|_| connect()).collect::<Result<_, _>>()?;
    let reader = connect()?;
    let reader = crate::stage::thread("bench-reader", move || {
        let (mut lines, mut told) = (0usize, 0u64);
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            lines += 1;
            if let Ok(e) = serde_json::from_str::<Event>(&line) {
                told += e.dropped().unwrap_or(0);
            }
        }
        (lines, told)
    });
    let reader = reader.map_err(|e| JobError::Internal(format!("starting the bench reader thread: {e}")))?;
    let registered = Instant::now();
    while server.subscribers() < a.stalled_subscribers + 1 && registered.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The drop counter stays readable after the server moves into the pipeline.
    let dropped_handle = server.dropped_counter();
    pipeline.publish.add(Box::new(server));
    let (cpu0, _) = process_usage();
    let running = pipeline.start(Stop::new())?;
    let report = running.wait(cfg.pipeline.shutdown_timeout)?;
    let (cpu1, peak) = process_usage();
    let (reader_lines, reader_told_dropped) = reader.join().map_err(|_| JobError::Internal("the bench reader thread failed".into()))?;
    drop(stalled);
    let mut latencies: Vec<f64> = events_rx
        .try_iter()
        .filter(|e| matches!(e.kind(), EventKind::TrackStarted | EventKind::IdentityChanged | EventKind::TrackUpdated))
        .filter_map(|e| e.frame_ts.map(|f| (e.emit_ts - f) * 1000.0))
        .collect();
    let (p50, p99) = p50_p99(&mut latencies);
    let base = if a.baseline { Some(baseline(cfg, a.frames)?) } else { None };
    let out = BenchReport {
        video: a.video.clone(),
        realtime: a.realtime,
        speedup_over_baseline: base.as_ref().filter(|b| b.fps > 0.0).map(|b| report.fps / b.fps),
        cpu_seconds: cpu1 - cpu0,
        cpu_cores_busy: (cpu1 - cpu0) / report.seconds.max(1e-9),
        peak_rss_mib: peak,
        event_latency: Latency { events: latencies.len(), p50_ms: p50, p99_ms: p99 },
        subscribers: Subscribers {
            stalled: a.stalled_subscribers,
            reader_lines,
            reader_told_dropped,
            dropped_for_stalled: dropped_handle.load(std::sync::atomic::Ordering::Relaxed),
        },
        pipeline: report,
        baseline: base,
    };
    Ok(out)
}
