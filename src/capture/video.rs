//! Video files, RTSP/HTTP streams and image sequences through OpenCV's `VideoCapture` (FFmpeg backend).

use std::time::{Duration, Instant};

use opencv::core::{Mat, MatTraitConst};
use opencv::imgproc;
use opencv::prelude::{VideoCaptureTrait, VideoCaptureTraitConst};
use opencv::videoio::{self, VideoCapture};

use super::config::CaptureConfig;
use super::secrets::redact;
use super::{CaptureError, FrameSource};

/// A file, URL or image-sequence pattern read by OpenCV.
pub struct VideoSource {
    /// What OpenCV opens: the URL with its credentials.
    location: String,
    /// What logs, errors and events show: the URL with its password redacted.
    shown: String,
    capture: VideoCapture,
    /// Streams (`scheme://…`) are live and never "end"; files end and may loop.
    stream: bool,
    /// Pace at the file's frame rate.
    realtime: bool,
    fps: f64,
    opened_at: Instant,
    frames_since_open: u64,
    raw: Mat,
    /// Frames a file declares (`None` for streams, image sequences and files that do not say).
    declared: Option<u64>,
    /// An image sequence, read here file by file so that one bad file is skipped, not taken for the end.
    sequence: Option<Sequence>,
    /// Frame width and height, when OpenCV reports them at open.
    size: Option<(u32, u32)>,
    /// Frames of a file skipped because they could not be decoded (a damaged region).
    damaged: u64,
}

/// Frames a damaged region may span before the rest of the file is given up.
const MAX_DAMAGED_RUN: u32 = 64;

/// An image sequence `dir/img_%04d.png`: the files, by index.
struct Sequence {
    pattern: String,
    first: u64,
    next: u64,
    skipped: u64,
}

impl Sequence {
    /// `pattern` holds one `%d` or `%0Nd`; the sequence starts at index 0 or 1, whichever exists.
    fn open(pattern: &str) -> Option<Self> {
        let s = Self { pattern: pattern.to_string(), first: 0, next: 0, skipped: 0 };
        s.path(0)?;
        let first = (0..=1).find(|&i| s.path(i).is_some_and(|p| std::path::Path::new(&p).exists()))?;
        Some(Self { first, next: first, ..s })
    }

    /// The file of index `i`, or `None` when the pattern is not a `%d` pattern.
    fn path(&self, i: u64) -> Option<String> {
        let start = self.pattern.find('%')?;
        let rest = &self.pattern[start + 1..];
        let end = rest.find('d')?;
        let spec = &rest[..end];
        if !spec.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let width: usize = spec.trim_start_matches('0').parse().unwrap_or(0);
        let number = if spec.starts_with('0') { format!("{i:0width$}") } else { format!("{i:width$}") };
        Some(format!("{}{number}{}", &self.pattern[..start], &rest[end + 1..]))
    }
}

/// How long opening a stream may take.
const STREAM_OPEN_TIMEOUT_MS: i32 = 10_000;
/// How long a stream may go without a frame before the read fails and the stream counts as lost.
const STREAM_READ_TIMEOUT_MS: i32 = 5_000;

/// Whether `location` is a network stream (`scheme://…`): live, never ending, opened with timeouts.
pub fn is_stream(location: &str) -> bool {
    location.contains("://")
}

/// Whether `location` names a plain file that is not there (streams and `%d` image patterns are not checked).
pub fn is_missing_file(location: &str) -> bool {
    !is_stream(location) && !location.contains('%') && !std::path::Path::new(location).exists()
}

fn open_capture(location: &str) -> Result<(VideoCapture, f64), CaptureError> {
    let err = |message: String| CaptureError::Open { source_name: redact(location), message: redact(&message) };
    if is_missing_file(location) {
        return Err(err("no such file".into()));
    }
    let capture = if is_stream(location) {
        // A stream that stops answering must fail a read (then it is reconnected), not block capture forever.
        let params = opencv::core::Vector::<i32>::from_slice(&[
            videoio::CAP_PROP_OPEN_TIMEOUT_MSEC,
            STREAM_OPEN_TIMEOUT_MS,
            videoio::CAP_PROP_READ_TIMEOUT_MSEC,
            STREAM_READ_TIMEOUT_MS,
        ]);
        VideoCapture::from_file_with_params(location, videoio::CAP_FFMPEG, &params)
    } else {
        VideoCapture::from_file(location, videoio::CAP_ANY)
    }
    .map_err(|e| err(e.to_string()))?;
    if !capture.is_opened().map_err(|e| err(e.to_string()))? {
        return Err(err("OpenCV could not open it (unsupported format, unreachable URL or no matching images)".into()));
    }
    let fps = capture.get(videoio::CAP_PROP_FPS).unwrap_or(0.0);
    Ok((capture, fps))
}

impl VideoSource {
    /// Opens `capture.source` with OpenCV.
    pub fn open(cfg: &CaptureConfig) -> Result<Self, CaptureError> {
        let file = (!cfg.credentials_file.trim().is_empty()).then(|| crate::paths::resolve_path(&cfg.credentials_file));
        // Order: this camera's variable, its file, then (for the [capture] camera only) FACEWATCH_CAPTURE_CREDENTIALS.
        let own = std::env::var(super::secrets::camera_env(&cfg.camera)).ok().filter(|v| !v.is_empty());
        let shared = (!cfg.credentials_own_only && file.is_none()).then(|| std::env::var(super::secrets::CREDENTIALS_ENV).ok()).flatten();
        let credentials = super::secrets::load(file.as_deref(), own.or(shared))?;
        let location = super::secrets::with_credentials(&cfg.source, credentials.as_deref());
        let (capture, fps) = open_capture(&location)?;
        let stream = is_stream(&cfg.source);
        let sequence = if stream { None } else { Sequence::open(&location) };
        let declared = (!stream && sequence.is_none())
            .then(|| capture.get(videoio::CAP_PROP_FRAME_COUNT).ok())
            .flatten()
            .filter(|n| n.is_finite() && *n >= 1.0)
            .map(|n| n as u64);
        let side = |prop| capture.get(prop).ok().filter(|v| v.is_finite() && *v >= 1.0 && *v <= 16_384.0).map(|v| v as u32);
        let size = side(videoio::CAP_PROP_FRAME_WIDTH).zip(side(videoio::CAP_PROP_FRAME_HEIGHT));
        Ok(Self {
            declared,
            sequence,
            size,
            shown: redact(&location),
            location,
            capture,
            stream,
            realtime: cfg.realtime && !stream,
            // Image sequences and some containers report no rate: pace them as a 25 fps camera.
            fps: if fps.is_finite() && fps > 0.5 && fps < 1000.0 { fps } else { 25.0 },
            opened_at: Instant::now(),
            frames_since_open: 0,
            raw: Mat::default(),
            damaged: 0,
        })
    }

    /// After a failed read of a file that declares more frames: steps over the frames that cannot be decoded (a
    /// damaged region) and reads the next good one into `raw`. False at the real end, or past
    /// [`MAX_DAMAGED_RUN`] bad frames in a row.
    fn skip_damage(&mut self) -> bool {
        let Some(declared) = self.declared.filter(|_| !self.stream) else { return false };
        let before = self.damaged;
        for _ in 0..MAX_DAMAGED_RUN {
            let pos = self.capture.get(videoio::CAP_PROP_POS_FRAMES).unwrap_or(f64::NAN);
            if !pos.is_finite()
                || pos + 1.0 >= declared as f64
                || !self.capture.set(videoio::CAP_PROP_POS_FRAMES, pos + 1.0).unwrap_or(false)
            {
                break;
            }
            self.damaged += 1;
            if self.capture.read(&mut self.raw).unwrap_or(false) && !self.raw.empty() {
                tracing::warn!(source = %self.shown, at_frame = pos as u64, skipped = self.damaged - before, "Damaged frames skipped; reading on.");
                return true;
            }
        }
        self.raw = Mat::default();
        false
    }

    /// The frame rate the file declares (25 when it declares none).
    pub fn fps(&self) -> f64 {
        self.fps
    }

    /// Sleeps until the next frame is due at the file's own rate, counted from the first read (not from the
    /// open: the time the pipeline takes to start would otherwise come out as a burst of frames at once).
    fn pace(&mut self) {
        if self.frames_since_open == 0 {
            self.opened_at = Instant::now();
        }
        let due = self.opened_at + Duration::from_secs_f64(self.frames_since_open as f64 / self.fps);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

impl FrameSource for VideoSource {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn read(&mut self) -> Result<Option<Mat>, CaptureError> {
        if self.realtime {
            self.pace();
        }
        if let Some(seq) = &mut self.sequence {
            loop {
                let Some(path) = seq.path(seq.next).filter(|p| std::path::Path::new(p).exists()) else { return Ok(None) };
                seq.next += 1;
                match opencv::imgcodecs::imread(&path, opencv::imgcodecs::IMREAD_COLOR) {
                    Ok(m) if !m.empty() => {
                        self.raw = m;
                        break;
                    }
                    _ => {
                        seq.skipped += 1;
                        tracing::warn!(file = %path, skipped = seq.skipped, "Not a readable image; skipped.");
                    }
                }
            }
        } else {
            let shown = &self.shown;
            let got = self
                .capture
                .read(&mut self.raw)
                .map_err(|e| CaptureError::Lost { source_name: shown.clone(), message: redact(&e.to_string()) })?;
            if !got && !self.skip_damage() {
                self.raw = Mat::default();
            }
        }
        let lost = |message: String| CaptureError::Lost { source_name: self.shown.clone(), message: redact(&message) };
        if self.raw.empty() {
            return if self.stream { Err(lost("the stream stopped delivering frames".into())) } else { Ok(None) };
        }
        self.frames_since_open += 1;
        let mut bgr = Mat::default();
        match self.raw.channels() {
            3 => std::mem::swap(&mut bgr, &mut self.raw),
            1 => imgproc::cvt_color_def(&self.raw, &mut bgr, imgproc::COLOR_GRAY2BGR).map_err(|e| lost(e.to_string()))?,
            4 => imgproc::cvt_color_def(&self.raw, &mut bgr, imgproc::COLOR_BGRA2BGR).map_err(|e| lost(e.to_string()))?,
            n => return Err(lost(format!("frames have {n} channels"))),
        };
        Ok(Some(bgr))
    }

    fn reopen(&mut self) -> Result<(), CaptureError> {
        if let Some(seq) = &mut self.sequence {
            seq.next = seq.first;
        }
        // A file that plays again is rewound rather than opened again: OpenCV opens one source at a time, so an
        // open could wait behind another camera's stream that hangs in its own.
        let rewound = !self.stream
            && self.sequence.is_none()
            && self.capture.is_opened().unwrap_or(false)
            && std::path::Path::new(&self.location).is_file()
            && self.capture.set(videoio::CAP_PROP_POS_FRAMES, 0.0).unwrap_or(false);
        if !rewound {
            let (capture, _) = open_capture(&self.location)?;
            self.capture = capture;
        }
        self.opened_at = Instant::now();
        self.frames_since_open = 0;
        self.damaged = 0;
        Ok(())
    }

    fn is_live(&self) -> bool {
        self.stream || self.realtime
    }

    fn frame_rate(&self) -> Option<f64> {
        Some(self.fps)
    }

    fn frame_size(&self) -> Option<(u32, u32)> {
        self.size
    }

    fn ended_early(&self) -> Option<String> {
        if let Some(seq) = self.sequence.as_ref().filter(|s| s.skipped > 0) {
            return Some(format!("{} of the image sequence's files were not readable images and were skipped", seq.skipped));
        }
        // Containers may miscount by a frame or two; a truncated file ends far earlier.
        let declared = self.declared?;
        let read = self.frames_since_open;
        match (read + self.damaged + 2 < declared, self.damaged) {
            (true, _) => Some(format!(
                "the file ended after {read} of the {declared} frames it declares (truncated or damaged; {} damaged frames skipped before)",
                self.damaged
            )),
            (false, 0) => None,
            (false, n) => {
                // A seek can land a frame late: never more skipped than the file lacks.
                let n = n.min(declared.saturating_sub(read)).max(1);
                Some(format!("{n} damaged frame(s) of the file could not be decoded and were skipped; the other {read} were read"))
            }
        }
    }
}
