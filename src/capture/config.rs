//! `[capture]`: where frames come from.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::base::units::{millis, within};

/// Which capture backend reads `capture.source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A number or `/dev/video*` path is a camera, anything else a video.
    Auto,
    /// A V4L2 camera through nokhwa.
    Camera,
    /// A file, URL or image sequence through OpenCV.
    Video,
}

/// A V4L2 pixel format to request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// Motion JPEG.
    Mjpeg,
    /// Packed YUV 4:2:2.
    Yuyv,
    /// Planar Y + interleaved UV 4:2:0.
    Nv12,
    /// 8-bit grey.
    Gray,
    /// Packed 8-bit RGB.
    Rgb,
}

/// `[capture]`: where frames come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureConfig {
    /// Camera index or path, file, URL or image-sequence pattern.
    pub source: String,
    /// Camera name in events.
    pub camera: String,
    /// Backend choice.
    pub kind: SourceKind,
    /// Requested width (cameras).
    pub width: u32,
    /// Requested height (cameras).
    pub height: u32,
    /// Requested frame rate (cameras).
    pub fps: u32,
    /// Requested pixel format (cameras).
    pub pixel_format: PixelFormat,
    /// Restart files at their end.
    #[serde(rename = "loop")]
    pub looping: bool,
    /// Pace files at their native frame rate.
    pub realtime: bool,
    /// First reconnect delay (`reconnect_initial_ms`).
    #[serde(rename = "reconnect_initial_ms", with = "millis")]
    pub reconnect_initial: Duration,
    /// Longest reconnect delay (`reconnect_max_ms`).
    #[serde(rename = "reconnect_max_ms", with = "millis")]
    pub reconnect_max: Duration,
    /// File holding the stream's `user:password` (readable by its owner only); empty: none. The environment
    /// variable `FACEWATCH_CAPTURE_CREDENTIALS` wins over it.
    #[serde(default)]
    pub credentials_file: String,
}

impl CaptureConfig {
    /// What is wrong with `[capture]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        if self.source.trim().is_empty() {
            out.push("capture.source: empty; give a camera index or path, a file, a URL or an image pattern".into());
        }
        if self.camera.trim().is_empty() || self.camera.chars().any(char::is_control) {
            out.push("capture.camera: must be a printable, non-empty name".into());
        }
        if self.reconnect_initial.is_zero() || self.reconnect_initial > self.reconnect_max {
            out.push(format!(
                "capture.reconnect_initial_ms: {} must be at least 1 and at most capture.reconnect_max_ms ({})",
                self.reconnect_initial.as_millis(),
                self.reconnect_max.as_millis()
            ));
        }
        within(out, "capture.width", u64::from(self.width), 7680, "8K");
        within(out, "capture.height", u64::from(self.height), 4320, "8K");
        within(out, "capture.fps", u64::from(self.fps), 1000, "frames per second");
        within(out, "capture.reconnect_max_ms", self.reconnect_max.as_millis() as u64, 3_600_000, "one hour");
    }
}
