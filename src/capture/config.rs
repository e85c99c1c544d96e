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
    /// Set for a `[[cameras]]` entry: only its own file or `FACEWATCH_CAMERA_<NAME>_CREDENTIALS` apply.
    #[serde(skip)]
    pub credentials_own_only: bool,
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

/// One `[[cameras]]` entry: a camera of a daemon that watches several. Keys left out come from `[capture]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// The camera's name in events, topics, metrics, snapshots and logs.
    pub name: String,
    /// Camera index or path, file, URL or image-sequence pattern.
    pub source: String,
    /// Backend choice.
    #[serde(default)]
    pub kind: Option<SourceKind>,
    /// Requested width (cameras).
    #[serde(default)]
    pub width: Option<u32>,
    /// Requested height (cameras).
    #[serde(default)]
    pub height: Option<u32>,
    /// Requested frame rate (cameras).
    #[serde(default)]
    pub fps: Option<u32>,
    /// Requested pixel format (cameras).
    #[serde(default)]
    pub pixel_format: Option<PixelFormat>,
    /// Restart files at their end.
    #[serde(default, rename = "loop")]
    pub looping: Option<bool>,
    /// Pace files at their native frame rate.
    #[serde(default)]
    pub realtime: Option<bool>,
    /// File holding this stream's `user:password`.
    #[serde(default)]
    pub credentials_file: Option<String>,
    /// This camera's cosine threshold (a camera with harder light may need its own); unset: `matcher.threshold`,
    /// else the recognizer's.
    #[serde(default)]
    pub threshold: Option<crate::base::units::Threshold>,
}

impl CameraConfig {
    /// `[capture]` with this camera's keys over it.
    pub fn capture(&self, base: &CaptureConfig) -> CaptureConfig {
        let mut c = base.clone();
        c.camera.clone_from(&self.name);
        c.source.clone_from(&self.source);
        c.kind = self.kind.unwrap_or(c.kind);
        c.width = self.width.unwrap_or(c.width);
        c.height = self.height.unwrap_or(c.height);
        c.fps = self.fps.unwrap_or(c.fps);
        c.pixel_format = self.pixel_format.unwrap_or(c.pixel_format);
        c.looping = self.looping.unwrap_or(c.looping);
        c.realtime = self.realtime.unwrap_or(c.realtime);
        // A stream's password belongs to its camera: an entry never takes [capture]'s file, nor the variable that
        // serves the one [capture] camera (CREDENTIALS_ENV), so one camera's password is never sent to another.
        c.credentials_file = self.credentials_file.clone().unwrap_or_default();
        c.credentials_own_only = true;
        c
    }
}

/// The most cameras one daemon takes: each has its own capture, detect and track threads and sessions.
pub const MAX_CAMERAS: usize = 16;

/// `[[cameras]]`: the cameras of the daemon; empty: the one camera of `[capture]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cameras(pub Vec<CameraConfig>);

impl Cameras {
    /// What is wrong with the list: each entry checked as the capture it becomes, names unique.
    pub fn problems(&self, out: &mut Vec<String>) {
        within(out, "cameras", self.0.len() as u64, MAX_CAMERAS as u64, "cameras in one daemon");
        let mut seen = std::collections::HashSet::new();
        for (i, cam) in self.0.iter().enumerate() {
            let mut own = Vec::new();
            // Checked over a neutral base so that each message names this entry's keys.
            let base = CaptureConfig {
                source: String::new(),
                camera: String::new(),
                kind: SourceKind::Auto,
                width: 0,
                height: 0,
                fps: 0,
                pixel_format: PixelFormat::Mjpeg,
                looping: false,
                realtime: true,
                reconnect_initial: Duration::from_millis(1),
                reconnect_max: Duration::from_millis(1),
                credentials_file: String::new(),
                credentials_own_only: true,
            };
            cam.capture(&base).problems(&mut own);
            out.extend(own.into_iter().map(|m| {
                let m = m.strip_prefix("capture.").unwrap_or(&m).to_string();
                format!("cameras[{i}].{}", m.replacen("camera:", "name:", 1))
            }));
            if !seen.insert(cam.name.trim()) {
                out.push(format!("cameras[{i}].name: \"{}\" is used by an earlier camera; names must be unique", cam.name));
            }
        }
    }
}
