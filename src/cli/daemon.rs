//! `facewatch run` (the daemon), `facewatch subscribe` (print the event socket) and `facewatch bench` (throughput,
//! latency, CPU and memory of the whole pipeline on a video, beside the bare models on the same frames).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use clap::Args;
use tracing::{info, warn};

use super::{emit, Failure, GlobalArgs, InputError, Outcome, EXIT_OK};
use crate::config::{resolve_path, Config};
use crate::jobs::bench::{self, BenchOptions, BenchReport};
use crate::pipeline::systemd::Notifier;
use crate::pipeline::topology::Outputs;
use crate::pipeline::{BuildOptions, Built, Pipeline, Report, Stop};
use crate::sinks::preview::Preview;

/// `facewatch run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Camera index or /dev/video path, video file, rtsp:// or http:// URL, or image pattern (capture.source); watched
    /// instead of the configured `[[cameras]]`.
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
    /// Also print every event as a JSON line on stdout (`--json` does the same).
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
    /// The flags, over the configuration's fields.
    fn apply(&self, cfg: &mut Config) {
        if let Some(source) = &self.source {
            cfg.capture.source.clone_from(source);
            cfg.cameras = Default::default();
        }
        if let Some(camera) = &self.camera {
            cfg.capture.camera.clone_from(camera);
        }
        if let Some(socket) = &self.socket {
            cfg.publish.socket.clone_from(socket);
        }
        cfg.preview.enabled |= self.preview;
        cfg.capture.looping |= self.looping;
        cfg.capture.realtime &= !self.fast;
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
    /// Publish to the configured MQTT broker too ([mqtt] host), to measure its cost.
    #[arg(long)]
    pub mqtt: bool,
    /// Match unnamed faces against the strangers and keep new ones, as the daemon does ([strangers]), in a copy of
    /// the gallery, to measure its cost.
    #[arg(long)]
    pub strangers: bool,
}

/// Set by SIGQUIT, which `ctrlc` does not cover: a signal handler may only touch an atomic, so this flag is the
/// one piece of process-wide state the signal forces on us.
static QUIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_sigquit(_: libc::c_int) {
    QUIT.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Ctrl-C, SIGTERM, SIGHUP and SIGQUIT: the first drains (live tracks end, the socket is removed), a second exits
/// at once.
fn install_signal_handler(stop: Stop) -> Outcome<()> {
    let on_signal = move |stop: &Stop| {
        if stop.is_raised() {
            eprintln!("facewatch: second signal, exiting now");
            std::process::exit(130);
        }
        info!("Signal received; draining (a second one exits at once).");
        stop.raise();
    };
    let s = stop.clone();
    ctrlc::set_handler(move || on_signal(&s))
        .map_err(|e| Failure::internal(anyhow::Error::new(e).context("installing the Ctrl-C / SIGTERM handler")))?;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    if unsafe { libc::signal(libc::SIGQUIT, on_sigquit as *const () as libc::sighandler_t) } == libc::SIG_ERR {
        return Err(Failure::internal(anyhow::anyhow!("installing the SIGQUIT handler failed: {}", std::io::Error::last_os_error())));
    }
    crate::stage::thread("signals", move || loop {
        if QUIT.swap(false, std::sync::atomic::Ordering::SeqCst) {
            on_signal(&stop);
        }
        std::thread::sleep(Duration::from_millis(20));
    })
    .map_err(|e| Failure::internal(anyhow::Error::new(e).context("starting the signal thread")))?;
    Ok(())
}

fn log_report(camera: &str, r: &Report) {
    let ms = |name: &str| r.stages.iter().find(|s| s.stage == name).map_or(0.0, |s| s.p50_ms);
    info!(
        camera,
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

pub(super) fn run(g: &GlobalArgs, a: RunArgs) -> Outcome<u8> {
    let cfg = g.load_config_with(|cfg| a.apply(cfg))?;
    let fds = crate::config::fds::raise_and_check(&cfg)?;
    info!(needed = fds.needed, limit = fds.limit, "File descriptors budgeted.");
    let preview = if cfg.preview.enabled {
        match Preview::build(&cfg.preview) {
            Ok(p) => Some(p),
            Err(why) => {
                warn!(%why, "No display: running without the preview.");
                None
            }
        }
    } else {
        None
    };
    // The API binds its address and loads its models before anything starts, as the socket does.
    let (api, sse, live) = match cfg.api.enabled() {
        true => {
            let feed = crate::api::EventFeed::new(cfg.publish.subscriber_queue.get());
            let live = crate::sinks::live::LiveFrames::new();
            (Some(crate::api::Api::build(&cfg, feed.clone(), live.clone())?), Some(feed), Some(live))
        }
        false => (None, None, None),
    };
    let outputs = Outputs {
        socket: true,
        mqtt: true,
        print: a.print || g.json,
        record: a.record.clone(),
        sse,
        snapshots: true,
        strangers: true,
        preview,
        live,
        extra: Vec::new(),
    };
    let options = BuildOptions { outputs, max_frames: a.max_frames };
    let Built { pipeline, .. } = Pipeline::build(&cfg, options)?;
    let stop = Stop::new();
    install_signal_handler(stop.clone())?;
    let var = |k: &str| std::env::var(k).ok();
    let mut notifier = Notifier::from_vars(var("NOTIFY_SOCKET"), var("WATCHDOG_USEC"), var("WATCHDOG_PID"));
    let running = pipeline.start(stop)?;
    // Stopped when dropped, after the pipeline.
    let _api = api.map(|api| api.serve(running.cameras())).transpose()?;
    notifier.ready();
    let every = (!cfg.pipeline.stats_interval.is_zero()).then_some(cfg.pipeline.stats_interval);
    for (camera, report) in running.wait_logging(cfg.pipeline.shutdown_timeout, every, &mut notifier)? {
        log_report(&camera, &report);
    }
    Ok(EXIT_OK)
}

pub(super) fn subscribe(g: &GlobalArgs, a: SubscribeArgs) -> Outcome<u8> {
    let path = match a.socket {
        Some(p) => resolve_path(&p),
        None => resolve_path(&g.load_config()?.publish.socket),
    };
    let stream = UnixStream::connect(&path)
        .map_err(|e| InputError(format!("no facewatch is serving events at {} ({e}); is the daemon running?", path.display())))?;
    // Read nothing from a server another user slipped in.
    crate::sinks::socket::check_server(&path, &stream)
        .map_err(|source| crate::sinks::SocketError::Untrusted { path: path.clone(), source })?;
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

pub(super) fn bench(g: &GlobalArgs, a: BenchArgs) -> Outcome<u8> {
    let cfg = g.load_config()?;
    let options = BenchOptions {
        video: a.video,
        frames: a.frames,
        realtime: a.realtime,
        stalled_subscribers: a.stalled_subscribers,
        baseline: !a.no_baseline,
        mqtt: a.mqtt,
        strangers: a.strangers,
    };
    let out = bench::bench(&cfg, &options)?;
    // The pipeline and its socket are gone: a closed stdout may now end the process quietly, as for every report.
    // SAFETY: restoring a signal's default disposition; no thread relies on SIGPIPE being ignored any more.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
    for s in p.stages.iter().chain(&p.strangers) {
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
