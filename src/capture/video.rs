//! Video files, RTSP/HTTP streams and image sequences through OpenCV's `VideoCapture` (FFmpeg backend).

use std::time::{Duration, Instant};

use opencv::core::{Mat, MatTraitConst};
use opencv::imgproc;
use opencv::prelude::{VideoCaptureTrait, VideoCaptureTraitConst};
use opencv::videoio::{self, VideoCapture};

use super::{CaptureError, FrameSource};
use crate::config::CaptureConfig;

/// A file, URL or image-sequence pattern read by OpenCV.
pub struct VideoSource {
    location: String,
    capture: VideoCapture,
    /// Streams (`scheme://…`) are live and never "end"; files end and may loop.
    stream: bool,
    /// Pace at the file's frame rate.
    realtime: bool,
    fps: f64,
    opened_at: Instant,
    frames_since_open: u64,
    raw: Mat,
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
    let err = |message: String| CaptureError::Open { source_name: location.to_string(), message };
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
        let (capture, fps) = open_capture(&cfg.source)?;
        let stream = is_stream(&cfg.source);
        Ok(Self {
            location: cfg.source.clone(),
            capture,
            stream,
            realtime: cfg.realtime && !stream,
            // Image sequences and some containers report no rate: pace them as a 25 fps camera.
            fps: if fps.is_finite() && fps > 0.5 && fps < 1000.0 { fps } else { 25.0 },
            opened_at: Instant::now(),
            frames_since_open: 0,
            raw: Mat::default(),
        })
    }

    /// The frame rate the file declares (25 when it declares none).
    pub fn fps(&self) -> f64 {
        self.fps
    }

    /// Sleeps until the next frame is due at the file's own rate.
    fn pace(&self) {
        let due = self.opened_at + Duration::from_secs_f64(self.frames_since_open as f64 / self.fps);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

impl FrameSource for VideoSource {
    fn describe(&self) -> String {
        self.location.clone()
    }

    fn read(&mut self) -> Result<Option<Mat>, CaptureError> {
        if self.realtime {
            self.pace();
        }
        let lost = |message: String| CaptureError::Lost { source_name: self.location.clone(), message };
        let ok = self.capture.read(&mut self.raw).map_err(|e| lost(e.to_string()))?;
        if !ok || self.raw.empty() {
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
        let (capture, _) = open_capture(&self.location)?;
        self.capture = capture;
        self.opened_at = Instant::now();
        self.frames_since_open = 0;
        Ok(())
    }

    fn is_live(&self) -> bool {
        self.stream || self.realtime
    }
}
