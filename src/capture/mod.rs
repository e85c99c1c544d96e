//! Capture: frames from a camera, a file, a stream or an image sequence, behind one [`FrameSource`] trait.
//!
//! Out: [`Frame`]s onto the capture → detect queue. That edge drops the *oldest* frame when full for live sources
//! (a camera, a stream, a file paced in real time), so a slow detector sees the newest picture instead of a
//! growing backlog; every drop is counted. A file read as fast as possible blocks instead: every frame is
//! processed. A lost source is retried with exponential backoff while the daemon stays up, and the loss and the
//! recovery are published as events.

mod camera;
mod config;
pub mod secrets;
mod video;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use opencv::core::Mat;
use tracing::{info, warn};

pub use camera::{bgr_from_camera_buffer, CameraSource};
pub use video::{is_missing_file, is_stream, VideoSource};

use crate::base::{Event, Frame};
use crate::stage::{Context, Output, QueuePolicy, Sent, Stage, Stop};
pub use config::{CameraConfig, Cameras, CaptureConfig, PixelFormat, SourceKind, MAX_CAMERAS};

/// Errors of a frame source.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The source could not be opened (no such device or file, unsupported format, permission).
    #[error("failed to open {source_name}: {message}")]
    Open {
        /// Device, file or URL.
        source_name: String,
        /// Why.
        message: String,
    },
    /// The stream credentials could not be read.
    #[error(transparent)]
    Credentials(#[from] secrets::CredentialsError),
    /// A source that was running stopped delivering frames (camera unplugged, stream dropped, file gone).
    #[error("lost {source_name}: {message}")]
    Lost {
        /// Device, file or URL.
        source_name: String,
        /// Why.
        message: String,
    },
}

impl crate::exit::Exit for CaptureError {
    fn exit_code(&self) -> u8 {
        crate::exit::INPUT
    }
}

/// Something that delivers BGR frames: a camera, a video file or stream, or a fake in tests.
pub trait FrameSource: Send {
    /// What it reads (device, file, URL), for logs and errors.
    fn describe(&self) -> String;
    /// The next frame (8-bit BGR); `Ok(None)` at the end of a finite input.
    fn read(&mut self) -> Result<Option<Mat>, CaptureError>;
    /// Closes and opens the source again (after a loss, or to loop a file).
    fn reopen(&mut self) -> Result<(), CaptureError>;
    /// Whether frames arrive on their own clock (camera, stream, paced file): then stale frames are dropped.
    fn is_live(&self) -> bool;
    /// At the end of a finite input: why it ended short of what it promised, or lost frames on the way (a
    /// truncated file, unreadable images skipped), if it did.
    fn ended_early(&self) -> Option<String> {
        None
    }
    /// The frame rate the source declares, when it declares one (files, streams).
    fn frame_rate(&self) -> Option<f64> {
        None
    }
    /// Width and height of its frames, when it says before the first frame (an opened file, stream or camera):
    /// the detectors make their session for that size at start instead of on the first face.
    fn frame_size(&self) -> Option<(u32, u32)> {
        None
    }
}

/// The device file a camera source names: `/dev/video<N>` for an index, else the path as given.
pub fn camera_device(source: &str) -> std::path::PathBuf {
    source.parse::<u32>().map_or_else(|_| std::path::PathBuf::from(source), |i| std::path::PathBuf::from(format!("/dev/video{i}")))
}

/// Whether `source` names a V4L2 camera: a number or a `/dev/video*` path.
pub fn is_camera(source: &str) -> bool {
    source.parse::<u32>().is_ok() || source.starts_with("/dev/video") || source.starts_with("/dev/v4l/")
}

/// Whether `[capture]` selects a V4L2 camera (else OpenCV reads a file, stream or image sequence).
pub fn wants_camera(cfg: &CaptureConfig) -> bool {
    match cfg.kind {
        SourceKind::Camera => true,
        SourceKind::Video => false,
        SourceKind::Auto => is_camera(&cfg.source),
    }
}

/// Whether the configured source delivers frames on its own clock (a camera, a stream, a file paced at its frame
/// rate), as the opened source will say ([`FrameSource::is_live`]).
pub fn is_live(cfg: &CaptureConfig) -> bool {
    wants_camera(cfg) || is_stream(&cfg.source) || cfg.realtime
}

/// Opens the configured source (fails at start-up when it cannot be opened).
pub fn open(cfg: &CaptureConfig) -> Result<Box<dyn FrameSource>, CaptureError> {
    Ok(if wants_camera(cfg) { Box::new(CameraSource::open(cfg)?) } else { Box::new(VideoSource::open(cfg)?) })
}

/// A source that could not be opened at start-up, in a daemon that has other cameras to watch meanwhile: its first
/// read reports the failure as a loss, and it is then opened with the backoff of any lost source.
struct Deferred {
    cfg: CaptureConfig,
    inner: Option<Box<dyn FrameSource>>,
    first: Option<CaptureError>,
    /// An open still under way when the daemon started: the first read waits for it, on this camera's thread.
    pending: Option<crossbeam_channel::Receiver<Result<Box<dyn FrameSource>, CaptureError>>>,
}

impl FrameSource for Deferred {
    fn describe(&self) -> String {
        self.inner.as_ref().map_or_else(|| secrets::redact(&self.cfg.source), |s| s.describe())
    }

    fn read(&mut self) -> Result<Option<Mat>, CaptureError> {
        if let Some(pending) = self.pending.take() {
            match pending.recv() {
                Ok(Ok(source)) => self.inner = Some(source),
                Ok(Err(e)) => self.first = Some(e),
                Err(_) => {}
            }
        }
        match &mut self.inner {
            Some(s) => s.read(),
            None => Err(self
                .first
                .take()
                .unwrap_or_else(|| CaptureError::Lost { source_name: self.describe(), message: "not opened yet".into() })),
        }
    }

    fn reopen(&mut self) -> Result<(), CaptureError> {
        match &mut self.inner {
            Some(s) => s.reopen(),
            None => {
                self.inner = Some(open(&self.cfg)?);
                Ok(())
            }
        }
    }

    fn is_live(&self) -> bool {
        self.inner.as_ref().map_or_else(|| is_live(&self.cfg), |s| s.is_live())
    }

    fn ended_early(&self) -> Option<String> {
        self.inner.as_ref().and_then(|s| s.ended_early())
    }

    fn frame_rate(&self) -> Option<f64> {
        self.inner.as_ref().and_then(|s| s.frame_rate())
    }

    fn frame_size(&self) -> Option<(u32, u32)> {
        self.inner.as_ref().and_then(|s| s.frame_size())
    }
}

/// A loss in progress: since when, and how many reopen attempts so far.
struct Outage {
    since: Instant,
    attempts: u32,
}

/// The capture stage: reads the source on its own thread and hands frames to detect.
///
/// Live sources (camera, stream, paced file) evict the oldest queued frame when detect is behind, so latency stays
/// bounded ([`QueuePolicy::DropOldest`], counted in the capture statistics); a file read as fast as the pipeline
/// takes it waits instead ([`QueuePolicy::Block`]), so no frame is lost.
pub struct CaptureStage {
    source: Box<dyn FrameSource>,
    cfg: CaptureConfig,
    max_frames: Option<u64>,
}

impl CaptureStage {
    /// Opens the configured source (fails at start-up when it cannot be opened).
    pub fn build(cfg: &CaptureConfig) -> Result<Self, CaptureError> {
        Ok(Self::new(open(cfg)?, cfg.clone()))
    }

    /// Like [`CaptureStage::build`], but a source that cannot be opened now (camera unplugged, stream down) is
    /// reported as lost once the pipeline runs and retried like a lost source, instead of failing the start: for
    /// a daemon with several cameras, whose other cameras should not wait for this one. Errors that retrying cannot
    /// mend (unreadable credentials, a missing file that does not loop) still fail.
    pub fn build_or_retry(cfg: &CaptureConfig) -> Result<Self, CaptureError> {
        Self::retried(cfg, open(cfg))
    }

    /// The stage for `opened`, the result of opening `cfg`'s source: a failure retrying may mend becomes a source
    /// retried once the pipeline runs ([`CaptureStage::build_or_retry`]).
    fn retried(cfg: &CaptureConfig, opened: Result<Box<dyn FrameSource>, CaptureError>) -> Result<Self, CaptureError> {
        match opened {
            Ok(source) => Ok(Self::new(source, cfg.clone())),
            // A camera or stream may come back; so may a looping file. A plain file that is not there will not.
            Err(e @ CaptureError::Open { .. }) if wants_camera(cfg) || is_stream(&cfg.source) || cfg.looping => {
                warn!(camera = %cfg.camera, error = %e, "Cannot open this camera now; the others start, and it is retried.");
                Ok(Self::new(Box::new(Deferred { cfg: cfg.clone(), inner: None, first: Some(e), pending: None }), cfg.clone()))
            }
            Err(e) => Err(e),
        }
    }

    /// Every camera's stage, their sources opened side by side. One camera is opened as [`CaptureStage::build`]
    /// does. With several, each failure is treated as [`CaptureStage::build_or_retry`] does, and a source still
    /// opening after `wait` (a stream that does not answer: up to its 10 s open timeout) no longer holds the start
    /// back: its camera starts once its open ends, on its own thread, while the others run. Local sources (devices,
    /// files) are opened before streams: OpenCV opens one source at a time, so a stream hanging in its open would
    /// otherwise hold a file's open behind it.
    pub fn build_all(cfgs: &[CaptureConfig], wait: Duration) -> Result<Vec<Self>, CaptureError> {
        if let [cfg] = cfgs {
            return Ok(vec![Self::build(cfg)?]);
        }
        type Opening = crossbeam_channel::Receiver<Result<Box<dyn FrameSource>, CaptureError>>;
        let start = |cfg: &CaptureConfig| -> Opening {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let c = cfg.clone();
            let spawned = crate::stage::thread("open", move || {
                let _ = tx.send(open(&c));
            });
            if spawned.is_err() {
                // No thread: open it here.
                let (tx, rx) = crossbeam_channel::bounded(1);
                let _ = tx.send(open(cfg));
                return rx;
            }
            rx
        };
        let settle = |cfg: &CaptureConfig, rx: Opening, deadline: Instant| match rx.recv_deadline(deadline) {
            Ok(opened) => Self::retried(cfg, opened),
            Err(_) => {
                warn!(camera = %cfg.camera, waited_ms = wait.as_millis() as u64, "This camera's source is still opening; the others start, and it joins when it opens.");
                let deferred = Deferred { cfg: cfg.clone(), inner: None, first: None, pending: Some(rx) };
                Ok(Self::new(Box::new(deferred), cfg.clone()))
            }
        };
        let mut out: Vec<Option<Result<Self, CaptureError>>> = cfgs.iter().map(|_| None).collect();
        for streams in [false, true] {
            let group: Vec<(usize, Opening)> =
                cfgs.iter().enumerate().filter(|(_, c)| is_stream(&c.source) == streams).map(|(i, c)| (i, start(c))).collect();
            let deadline = Instant::now() + wait;
            for (i, rx) in group {
                out[i] = Some(settle(&cfgs[i], rx, deadline));
            }
        }
        out.into_iter().map(|o| o.expect("every camera is in one group")).collect()
    }

    /// Capture from an opened source, by `[capture]` (camera name, looping, reconnect delays).
    pub fn new(source: Box<dyn FrameSource>, cfg: CaptureConfig) -> Self {
        Self { source, cfg, max_frames: None }
    }

    /// The camera's name (`capture.camera`).
    pub fn camera(&self) -> &str {
        &self.cfg.camera
    }

    /// The source.
    pub fn source(&self) -> &dyn FrameSource {
        self.source.as_ref()
    }

    /// Stops after `n` frames (benchmarks, tests).
    pub fn max_frames(mut self, n: Option<u64>) -> Self {
        self.max_frames = n;
        self
    }
}

impl Stage for CaptureStage {
    const NAME: &'static str = "capture";
    type In = ();
    type Out = Frame;
    /// `source_lost`, `source_restored` and `input_truncated`, to the camera's track stage, which hands them on in
    /// the order it meets them (never waited on).
    type Ports = Output<Event>;

    /// Runs capture until the input ends, the stop is raised, or detect goes away.
    ///
    /// A loss is published once (`source_lost`) and the recovery once, when frames flow again
    /// (`source_restored`); in between, reopening is retried with doubling delays, which only reset once a frame
    /// arrives, so a source that opens but gives nothing backs off instead of spinning.
    fn run(self, _input: Receiver<()>, output: Output<Frame>, status: Output<Event>, cx: &Context) {
        let Self { mut source, cfg: settings, max_frames } = self;
        let (stop, stats) = (&cx.stop, &cx.stats.capture);
        let status = |e: Event| {
            // Never waited on: when the queue is full the event is dropped, and counted with the events refused.
            if status.send(e) == Sent::Dropped {
                cx.stats.publish.dropped.fetch_add(1, Ordering::Relaxed);
            }
        };
        let name: Arc<str> = source.describe().into();
        let live = source.is_live();
        let policy = if live { QueuePolicy::DropOldest } else { QueuePolicy::Block };
        info!(camera = %settings.camera, source = %name, live, "Capture started.");
        let mut seq = 0u64;
        // Frames since the source was last (re)opened: a file that ends without giving any is treated as lost.
        let mut since_open = 0u64;
        let mut outage: Option<Outage> = None;
        let mut delay = settings.reconnect_initial;
        while !stop.is_raised() {
            if max_frames.is_some_and(|m| seq >= m) {
                info!(camera = %settings.camera, frames = seq, "Frame limit reached.");
                break;
            }
            let started = Instant::now();
            let lost = match source.read() {
                Ok(Some(bgr)) => {
                    if let Some(o) = outage.take() {
                        stats.retrying.store(false, Ordering::Relaxed);
                        let down = o.since.elapsed();
                        info!(camera = %settings.camera, attempts = o.attempts, down_s = down.as_secs_f64(), "Source restored.");
                        status(Event::source_restored(&settings.camera, down, o.attempts));
                    }
                    delay = settings.reconnect_initial;
                    let frame = Frame::from_bgr(bgr, name.clone(), seq);
                    seq += 1;
                    since_open += 1;
                    stats.record(started.elapsed());
                    match output.send_as(frame, policy) {
                        Sent::Closed => break,
                        Sent::Evicted => {
                            stats.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        Sent::Queued | Sent::Dropped => {}
                    }
                    None
                }
                Ok(None) if settings.looping && since_open == 0 => {
                    Some(CaptureError::Lost { source_name: name.to_string(), message: "no frames since it was opened".into() })
                }
                Ok(None) if settings.looping => {
                    report_early_end(source.as_ref(), &settings, &status, seq);
                    since_open = 0;
                    source.reopen().err()
                }
                Ok(None) => {
                    report_early_end(source.as_ref(), &settings, &status, seq);
                    info!(camera = %settings.camera, frames = seq, "End of input.");
                    break;
                }
                Err(e) => Some(e),
            };
            if let Some(err) = lost {
                since_open = 0;
                let o = outage.get_or_insert_with(|| {
                    warn!(camera = %settings.camera, error = %err, retry_in_ms = delay.as_millis() as u64, "Source lost; retrying.");
                    status(Event::source_lost(&settings.camera, &err.to_string(), delay));
                    stats.retrying.store(true, Ordering::Relaxed);
                    Outage { since: Instant::now(), attempts: 0 }
                });
                retry(source.as_mut(), &settings, stop, o, &mut delay);
            }
        }
        info!(camera = %settings.camera, frames = seq, dropped = stats.dropped.load(Ordering::Relaxed), "Capture stopped.");
    }
}

/// Says so, in the log and as an `input_truncated` event, when a finite input ended early or lost frames.
fn report_early_end(source: &dyn FrameSource, settings: &CaptureConfig, status: &dyn Fn(Event), frames: u64) {
    if let Some(reason) = source.ended_early() {
        warn!(camera = %settings.camera, frames, %reason, "Input ended early.");
        status(Event::input_truncated(&settings.camera, &reason, frames));
    }
}

/// Reopens with doubling delays until it works or `stop` is raised.
fn retry(source: &mut dyn FrameSource, settings: &CaptureConfig, stop: &Stop, outage: &mut Outage, delay: &mut Duration) {
    loop {
        if stop.sleep(*delay) {
            return;
        }
        outage.attempts += 1;
        *delay = (*delay * 2).min(settings.reconnect_max);
        match source.reopen() {
            Ok(()) => return,
            Err(e) => {
                warn!(camera = %settings.camera, attempts = outage.attempts, error = %e, retry_in_ms = delay.as_millis() as u64, "Source still unavailable.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cameras_are_numbers_and_device_paths() {
        assert!(is_camera("0"));
        assert!(is_camera("/dev/video2"));
        assert!(is_camera("/dev/v4l/by-id/usb-cam-video-index0"));
        assert!(!is_camera("clip.mp4"));
        assert!(!is_camera("rtsp://cam.local/stream"));
        assert!(!is_camera("frames/img_%04d.jpg"));
    }
}
