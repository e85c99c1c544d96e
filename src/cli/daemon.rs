//! `facewatch run` (the daemon), `facewatch subscribe` (print the event socket) and `facewatch bench` (throughput,
//! latency, CPU and memory of the whole pipeline on a video, beside the bare models on the same frames).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use tracing::{info, warn};

use super::photos::open_gallery;
use super::{emit, GlobalArgs, InputError, EXIT_OK};
use crate::capture::{self, CaptureSettings, FrameSource, VideoSource};
use crate::config::{resolve_path, Config};
use crate::engine::Engine;
use crate::pipeline::systemd::Notifier;
use crate::pipeline::{self, Parts, Report, Stop};
use crate::preview::Preview;
use crate::publish::{ChannelSink, Event, EventKind, EventSink, QueuedLineSink, SocketServer};

/// Lines waiting for stdout (`--print`) or the record file before the newest are dropped.
const PRINT_QUEUE: usize = 4096;

/// `facewatch run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Camera index or /dev/video path, video file, rtsp:// or http:// URL, or image pattern (capture.source).
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// This camera's name in events (capture.camera).
    #[arg(long, value_name = "NAME")]
    pub camera: Option<String>,
    /// Event socket (publish.socket); an empty string serves none.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<String>,
    /// Show the annotated preview window (preview.enabled).
    #[arg(long)]
    pub preview: bool,
    /// Start a file again at its end (capture.loop).
    #[arg(long = "loop")]
    pub looping: bool,
    /// Read a file as fast as the pipeline takes it instead of at its frame rate (capture.realtime = false).
    #[arg(long)]
    pub fast: bool,
    /// Also print every event as a JSON line on stdout.
    #[arg(long)]
    pub print: bool,
    /// Stop after this many frames.
    #[arg(long, value_name = "N")]
    pub max_frames: Option<u64>,
    /// Also record every event as a JSON line to this file (created 0600; appended to when it exists).
    #[arg(long, value_name = "FILE")]
    pub record: Option<std::path::PathBuf>,
}

impl RunArgs {
    fn overrides(&self) -> Vec<(String, String)> {
        let mut o = Vec::new();
        let mut set = |k: &str, v: Option<String>| o.extend(v.map(|v| (k.to_string(), v)));
        set("capture.source", self.source.clone());
        set("capture.camera", self.camera.clone());
        set("publish.socket", self.socket.clone());
        set("preview.enabled", self.preview.then(|| "true".into()));
        set("capture.loop", self.looping.then(|| "true".into()));
        set("capture.realtime", self.fast.then(|| "false".into()));
        o
    }
}

/// `facewatch subscribe`.
#[derive(Debug, Args)]
pub struct SubscribeArgs {
    /// Event socket (default: publish.socket of the configuration).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<String>,
    /// Exit after this many events (the `hello` line not counted).
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
}

/// `facewatch bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Video file (or image pattern) to run through the whole pipeline.
    pub video: String,
    /// Frames to process (default: the whole file).
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// Deliver frames at the file's frame rate, as a camera would (latency at camera rate) instead of as fast as
    /// the pipeline takes them (throughput).
    #[arg(long)]
    pub realtime: bool,
    /// Subscribers that connect to the event socket and never read (the slow-subscriber case).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub stalled_subscribers: usize,
    /// Skip the bare-model baseline on the same frames.
    #[arg(long)]
    pub no_baseline: bool,
}

/// Set by SIGQUIT, which `ctrlc` does not cover: a signal handler may only touch an atomic, so this flag is the
/// one piece of process-wide state the signal forces on us.
static QUIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_sigquit(_: libc::c_int) {
    QUIT.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Ctrl-C, SIGTERM, SIGHUP and SIGQUIT: the first drains (live tracks end, the socket is removed), a second exits
/// at once.
fn install_signal_handler(stop: Stop) -> anyhow::Result<()> {
    let on_signal = move |stop: &Stop| {
        if stop.is_raised() {
            eprintln!("facewatch: second signal, exiting now");
            std::process::exit(130);
        }
        info!("Signal received; draining (a second one exits at once).");
        stop.raise();
    };
    let s = stop.clone();
    ctrlc::set_handler(move || on_signal(&s)).context("installing the Ctrl-C / SIGTERM handler")?;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    if unsafe { libc::signal(libc::SIGQUIT, on_sigquit as *const () as libc::sighandler_t) } == libc::SIG_ERR {
        anyhow::bail!("installing the SIGQUIT handler failed: {}", std::io::Error::last_os_error());
    }
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            if QUIT.swap(false, std::sync::atomic::Ordering::SeqCst) {
                on_signal(&stop);
            }
            std::thread::sleep(Duration::from_millis(20));
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// The daemon runs two inference sessions at once (detect and embed): with `runtime.intra_threads = 0` each gets
/// half the cores, not all of them. Letting both take every core oversubscribes the CPU: on 2 cores the sample
/// clip ran at 57–65 fps that way and 75–77 fps with one thread each (BENCHMARKS.md).
fn daemon_runtime(cfg: &Config) -> Config {
    let mut cfg = cfg.clone();
    if cfg.runtime.intra_threads == 0 {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        cfg.runtime.intra_threads = (cores / 2).max(1);
    }
    cfg
}

/// Builds every part of the pipeline: models, gallery, source; fails before any thread starts.
fn build_parts(
    cfg: &Config,
    sinks: Vec<Box<dyn EventSink>>,
    preview: Option<Preview>,
    max_frames: Option<u64>,
) -> anyhow::Result<(Parts, crate::engine::ModelInfo)> {
    let engine = Engine::build(&daemon_runtime(cfg))?;
    let (detector, embedder, info) = engine.into_parts();
    let gallery = open_gallery(cfg, info.dim)?;
    if gallery.is_empty() {
        warn!(gallery = %gallery.path().display(), "The gallery is empty: every face will be unknown. Enroll people with `facewatch enroll`.");
    }
    let source = capture::open(&cfg.capture)?;
    let (same_face_min, reid_min) = info.face_levels;
    let levels = crate::track::FaceThresholds::resolve(&cfg.track, same_face_min, reid_min);
    let mut settings = CaptureSettings::from_config(&cfg.capture);
    settings.max_frames = max_frames;
    info!(
        camera = %cfg.capture.camera, source = %source.describe(), persons = gallery.persons()?.len(), threshold = info.threshold,
        detector = %info.detector, recognizer = %info.recognizer, "Pipeline built."
    );
    let parts = Parts {
        source,
        capture: settings,
        detector,
        embedder: Box::new(embedder),
        gallery,
        threshold: info.threshold,
        top_k: cfg.matcher.top_k.get(),
        track: cfg.track.clone(),
        levels,
        said: None,
        update_interval: (cfg.publish.update_interval_ms > 0).then(|| Duration::from_millis(cfg.publish.update_interval_ms)),
        sinks,
        preview,
        frame_queue: cfg.pipeline.frame_queue.get(),
        stage_queue: cfg.pipeline.stage_queue.get(),
    };
    Ok((parts, info))
}

/// The event record of `run --record`: appended, private (events name people).
fn open_record(path: &std::path::Path) -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| InputError(format!("cannot record events to {}: {e}", path.display())))?;
    Ok(std::io::BufWriter::new(file))
}

/// Runs the whole pipeline over `video`, every frame processed (no pacing, nothing dropped), and returns what it
/// said on each frame, the clip's frame rate and the models in use: the input of `evaluate --video`.
pub(super) fn said_on_video(
    g: &GlobalArgs,
    video: &str,
) -> anyhow::Result<(Vec<crate::eval::video::SaidFrame>, f64, crate::engine::ModelInfo)> {
    let overrides = vec![
        ("capture.source".to_string(), video.to_string()),
        ("capture.kind".into(), "video".into()),
        ("capture.loop".into(), "false".into()),
        ("capture.realtime".into(), "false".into()),
        ("publish.socket".into(), String::new()),
    ];
    let cfg = g.load_config_with(overrides)?;
    let (mut parts, info) = build_parts(&cfg, Vec::new(), None, None)?;
    // Image sequences and some containers declare no rate: they are paced as 25 fps, and scored so too.
    let fps = parts.source.frame_rate().unwrap_or(25.0);
    let (tx, rx) = crossbeam_channel::unbounded();
    parts.said = Some(tx);
    let running = pipeline::start(parts, Stop::new())?;
    let report = running.wait(Duration::from_secs_f64(cfg.pipeline.shutdown_timeout_s))?;
    let said: Vec<_> = rx.try_iter().collect();
    info!(frames = report.frames, faces = report.faces, embedded = report.embedded, cuts = report.cuts, "Video evaluated.");
    Ok((said, fps, info))
}

fn bind_socket(cfg: &Config) -> anyhow::Result<Option<SocketServer>> {
    if cfg.publish.socket.trim().is_empty() {
        return Ok(None);
    }
    let p = &cfg.publish;
    Ok(Some(SocketServer::bind_capped(&resolve_path(&p.socket), &cfg.capture.camera, p.subscriber_queue.get(), p.max_subscribers.get())?))
}

fn log_report(r: &Report) {
    let ms = |name: &str| r.stages.iter().find(|s| s.stage == name).map_or(0.0, |s| s.p50_ms);
    info!(
        frames = r.frames,
        seconds = format!("{:.1}", r.seconds),
        fps = format!("{:.1}", r.fps),
        dropped = r.frames_dropped,
        faces = r.faces,
        embedded = r.embedded,
        events = r.events,
        detect_ms = ms("detect"),
        embed_ms = ms("embed"),
        latency_p50_ms = r.latency.p50_ms,
        latency_p99_ms = r.latency.p99_ms,
        "Stopped."
    );
}

pub(super) fn run(g: &GlobalArgs, a: RunArgs) -> anyhow::Result<u8> {
    let cfg = g.load_config_with(a.overrides())?;
    let preview = if cfg.preview.enabled {
        match Preview::new(cfg.preview.close_exits) {
            Ok(p) => Some(p),
            Err(why) => {
                warn!(%why, "No display: running without the preview.");
                None
            }
        }
    } else {
        None
    };
    let mut sinks: Vec<Box<dyn EventSink>> = Vec::new();
    // Each line output writes on its own thread: a stdout nobody reads never starves the socket.
    if a.print {
        sinks.push(Box::new(QueuedLineSink::spawn("print", std::io::stdout(), PRINT_QUEUE)?));
    }
    if let Some(path) = &a.record {
        sinks.push(Box::new(QueuedLineSink::spawn("record", open_record(path)?, PRINT_QUEUE)?));
    }
    // The socket is bound last, after the models and the source: nothing is served by a daemon that cannot run.
    let (mut parts, _) = build_parts(&cfg, sinks, preview, a.max_frames)?;
    if let Some(server) = bind_socket(&cfg)? {
        parts.sinks.push(Box::new(server));
    }
    let stop = Stop::new();
    install_signal_handler(stop.clone())?;
    let var = |k: &str| std::env::var(k).ok();
    let mut notifier = Notifier::from_vars(var("NOTIFY_SOCKET"), var("WATCHDOG_USEC"), var("WATCHDOG_PID"));
    let running = pipeline::start(parts, stop)?;
    notifier.ready();
    let every = (cfg.pipeline.stats_interval_s > 0).then(|| Duration::from_secs(cfg.pipeline.stats_interval_s));
    let report = running.wait_logging(Duration::from_secs_f64(cfg.pipeline.shutdown_timeout_s), every, &mut notifier)?;
    log_report(&report);
    Ok(EXIT_OK)
}

pub(super) fn subscribe(g: &GlobalArgs, a: SubscribeArgs) -> anyhow::Result<u8> {
    let path = match a.socket {
        Some(p) => resolve_path(&p),
        None => resolve_path(&g.load_config()?.publish.socket),
    };
    let stream = UnixStream::connect(&path)
        .map_err(|e| InputError(format!("no facewatch is serving events at {} ({e}); is the daemon running?", path.display())))?;
    let mut out = std::io::stdout().lock();
    let mut seen = 0usize;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        writeln!(out, "{line}")?;
        out.flush()?;
        if !line.contains("\"type\":\"hello\"") {
            seen += 1;
        }
        if a.count.is_some_and(|c| seen >= c) {
            break;
        }
    }
    Ok(EXIT_OK)
}

/// Median and 99th percentile of `v` (sorted in place).
fn p50_p99(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
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

#[derive(Serialize)]
struct Latency {
    events: usize,
    p50_ms: f64,
    p99_ms: f64,
}

#[derive(Serialize)]
struct Subscribers {
    stalled: usize,
    reader_lines: usize,
    reader_told_dropped: u64,
    dropped_for_stalled: u64,
}

#[derive(Serialize)]
struct Baseline {
    frames: usize,
    faces_embedded: usize,
    p50_ms_per_frame: f64,
    p99_ms_per_frame: f64,
    fps: f64,
}

#[derive(Serialize)]
struct BenchReport {
    video: String,
    realtime: bool,
    pipeline: Report,
    event_latency: Latency,
    cpu_seconds: f64,
    cpu_cores_busy: f64,
    peak_rss_mib: f64,
    subscribers: Subscribers,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<Baseline>,
    #[serde(skip_serializing_if = "Option::is_none")]
    speedup_over_baseline: Option<f64>,
}

/// Detect every frame and embed every face, one after the other on one thread: the bare models' cost.
fn baseline(cfg: &Config, frames: Option<u64>) -> anyhow::Result<Baseline> {
    let mut engine = Engine::build(&daemon_runtime(cfg))?;
    let mut cfg_fast = cfg.capture.clone();
    cfg_fast.realtime = false;
    let mut source = VideoSource::open(&cfg_fast)?;
    let mut times = Vec::new();
    let mut embedded = 0usize;
    while let Some(bgr) = source.read()? {
        if frames.is_some_and(|n| times.len() as u64 >= n) {
            break;
        }
        let frame = crate::frame::Frame::from_bgr(bgr, "baseline", times.len() as u64);
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

pub(super) fn bench(g: &GlobalArgs, a: BenchArgs) -> anyhow::Result<u8> {
    let socket = std::env::temp_dir().join(format!("facewatch-bench-{}.sock", std::process::id()));
    let overrides = vec![
        ("capture.source".to_string(), a.video.clone()),
        ("capture.kind".into(), "video".into()),
        ("capture.loop".into(), "false".into()),
        ("capture.realtime".into(), a.realtime.to_string()),
        ("publish.socket".into(), socket.display().to_string()),
    ];
    let cfg = g.load_config_with(overrides)?;
    let (events_tx, events_rx) = crossbeam_channel::unbounded();
    let (mut parts, _) = build_parts(&cfg, vec![Box::new(ChannelSink(events_tx))], None, a.frames)?;
    let server = SocketServer::bind(&socket, &cfg.capture.camera, cfg.publish.subscriber_queue.get())?;
    let stalled: Vec<UnixStream> = (0..a.stalled_subscribers).map(|_| UnixStream::connect(&socket)).collect::<Result<_, _>>()?;
    let reader = UnixStream::connect(&socket)?;
    let reader = std::thread::Builder::new().name("bench-reader".into()).spawn(move || {
        let (mut lines, mut told) = (0usize, 0u64);
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            lines += 1;
            if let Ok(e) = serde_json::from_str::<Event>(&line) {
                told += e.dropped.unwrap_or(0);
            }
        }
        (lines, told)
    })?;
    let registered = Instant::now();
    while server.subscribers() < a.stalled_subscribers + 1 && registered.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The drop counter stays readable after the server moves into the pipeline.
    let dropped_handle = server.dropped_counter();
    parts.sinks.push(Box::new(server));
    let (cpu0, _) = process_usage();
    let running = pipeline::start(parts, Stop::new())?;
    let report = running.wait(Duration::from_secs_f64(cfg.pipeline.shutdown_timeout_s))?;
    let (cpu1, peak) = process_usage();
    let (reader_lines, reader_told_dropped) = reader.join().map_err(|_| anyhow::anyhow!("bench reader thread failed"))?;
    drop(stalled);
    let mut latencies: Vec<f64> = events_rx
        .try_iter()
        .filter(|e| matches!(e.kind, Some(EventKind::TrackStarted | EventKind::IdentityChanged | EventKind::TrackUpdated)))
        .filter_map(|e| e.frame_ts.map(|f| (e.emit_ts - f) * 1000.0))
        .collect();
    let (p50, p99) = p50_p99(&mut latencies);
    let base = if a.no_baseline { None } else { Some(baseline(&cfg, a.frames)?) };
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
    emit(g, &out, print_bench)?;
    Ok(EXIT_OK)
}

fn print_bench(r: &BenchReport) {
    let p = &r.pipeline;
    println!(
        "{}: {} frames in {:.2} s = {:.1} fps ({})",
        r.video,
        p.frames,
        p.seconds,
        p.fps,
        if r.realtime { "real time" } else { "as fast as possible" }
    );
    println!("  dropped {} frames; {} faces, {} embedded; {} events", p.frames_dropped, p.faces, p.embedded, p.events);
    println!("  {:<9} {:>8} {:>9} {:>9}", "stage", "items", "p50 ms", "p99 ms");
    for s in &p.stages {
        println!("  {:<9} {:>8} {:>9.2} {:>9.2}", s.stage, s.items, s.p50_ms, s.p99_ms);
    }
    println!("  align + embed per embedded face: p50 {:.2} ms, p99 {:.2} ms", p.embed_face.p50_ms, p.embed_face.p99_ms);
    println!("  frame → identity latency: p50 {:.1} ms, p99 {:.1} ms", p.latency.p50_ms, p.latency.p99_ms);
    println!(
        "  frame → event latency ({} events): p50 {:.1} ms, p99 {:.1} ms",
        r.event_latency.events, r.event_latency.p50_ms, r.event_latency.p99_ms
    );
    println!("  CPU {:.1} s ({:.2} cores busy), peak RSS {:.0} MiB", r.cpu_seconds, r.cpu_cores_busy, r.peak_rss_mib);
    let s = &r.subscribers;
    println!(
        "  subscribers: {} stalled ({} events dropped for them), reader got {} lines (told of {} dropped)",
        s.stalled, s.dropped_for_stalled, s.reader_lines, s.reader_told_dropped
    );
    if let Some(b) = &r.baseline {
        println!(
            "  bare models, same frames, every face embedded: p50 {:.1} ms/frame, {:.1} fps; pipeline ×{:.2}",
            b.p50_ms_per_frame,
            b.fps,
            r.speedup_over_baseline.unwrap_or(0.0)
        );
    }
}
