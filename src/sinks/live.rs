//! The live view of the web page: each camera's annotated picture (the preview's drawing) as a JPEG, and who is in
//! view, made only while someone watches (a page asked in the last [`WATCH_FOR`]) and at most [`MAX_FPS`] a second.
//! One [`LiveSink`] per camera, behind an edge that drops pictures rather than wait; the pictures wait in
//! [`LiveFrames`] for the HTTP server, which streams them (MJPEG) to the page.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use parking_lot::Mutex;
use serde::Serialize;

use crate::base::face::PreviewFrame;
use crate::stage::{Context, Output, Stage};

/// A picture is made only when a page asked for one within this long.
pub const WATCH_FOR: Duration = Duration::from_secs(10);
/// At most this many pictures a second per camera.
pub const MAX_FPS: f64 = 5.0;
/// Pictures are scaled down to at most this width.
const MAX_WIDTH: i32 = 960;

/// Someone in view, as the page lists them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InView {
    /// The track.
    pub track: u64,
    /// The name, a stranger's label, `unknown`, or `None` before the first vote.
    pub name: Option<String>,
    /// Whether the name is an enrolled person's.
    pub known: bool,
    /// The score behind it.
    pub score: f32,
}

/// One camera's latest picture.
#[derive(Default, Clone)]
pub struct Picture {
    /// Counts the pictures made: a stream sends each once.
    pub seq: u64,
    /// The JPEG.
    pub jpeg: Option<Arc<[u8]>>,
    /// Who is in it.
    pub in_view: Vec<InView>,
}

/// The latest picture of every camera, for the HTTP server ([module docs](self)).
pub struct LiveFrames {
    started: Instant,
    /// When a page last asked, in ms since `started`.
    asked_ms: AtomicU64,
    cameras: Mutex<HashMap<String, Picture>>,
    /// Bumped with every new picture, for the streams to wake on.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for LiveFrames {
    fn default() -> Self {
        Self { started: Instant::now(), asked_ms: AtomicU64::new(0), cameras: Mutex::default(), changed: tokio::sync::watch::channel(0).0 }
    }
}

impl LiveFrames {
    /// Nobody watching yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A page wants pictures: they are made for the next [`WATCH_FOR`].
    pub fn asked(&self) {
        self.asked_ms.store(self.started.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
    }

    /// Whether someone watches now.
    pub fn watched(&self) -> bool {
        let asked = self.asked_ms.load(Ordering::Relaxed);
        asked > 0 && self.started.elapsed().as_millis() as u64 <= asked + WATCH_FOR.as_millis() as u64
    }

    /// Camera `camera`'s latest picture.
    pub fn latest(&self, camera: &str) -> Option<Picture> {
        self.asked();
        self.cameras.lock().get(camera).cloned()
    }

    /// Every camera with a picture, by name.
    pub fn cameras(&self) -> Vec<String> {
        let mut names: Vec<String> = self.cameras.lock().keys().cloned().collect();
        names.sort();
        names
    }

    /// Wakes on every new picture (of any camera).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn store(&self, camera: &str, jpeg: Option<Arc<[u8]>>, in_view: Vec<InView>) {
        let mut cameras = self.cameras.lock();
        let p = cameras.entry(camera.to_string()).or_default();
        p.seq += 1;
        if jpeg.is_some() {
            p.jpeg = jpeg;
        }
        p.in_view = in_view;
        drop(cameras);
        self.changed.send_modify(|n| *n += 1);
    }
}

/// One camera's live view: draws and encodes its frames while someone watches.
pub struct LiveSink {
    camera: String,
    frames: Arc<LiveFrames>,
}

impl LiveSink {
    /// For `camera`, into `frames`.
    pub fn new(camera: &str, frames: Arc<LiveFrames>) -> Self {
        Self { camera: camera.to_string(), frames }
    }
}

/// The JPEG of `frame` with its labels drawn, at most [`MAX_WIDTH`] wide.
fn picture(p: &mut PreviewFrame) -> Option<Arc<[u8]>> {
    use opencv::core::{MatTraitConst, Size};
    super::preview::annotate(&mut p.frame.bgr, &p.labels, "").ok()?;
    let width = p.frame.bgr.cols();
    let jpeg = if width > MAX_WIDTH {
        let scale = f64::from(MAX_WIDTH) / f64::from(width);
        let mut small = opencv::core::Mat::default();
        opencv::imgproc::resize(&p.frame.bgr, &mut small, Size::new(0, 0), scale, scale, opencv::imgproc::INTER_AREA).ok()?;
        crate::image::encode_jpeg(&small, 75)
    } else {
        crate::image::encode_jpeg(&p.frame.bgr, 75)
    };
    jpeg.ok().map(Arc::from)
}

impl Stage for LiveSink {
    const NAME: &'static str = "live";
    type In = PreviewFrame;
    type Out = ();
    type Ports = ();

    fn run(self, rx: Receiver<PreviewFrame>, _output: Output<()>, (): (), _cx: &Context) {
        let every = Duration::from_secs_f64(1.0 / MAX_FPS);
        let mut last: Option<Instant> = None;
        for mut p in rx {
            if !self.frames.watched() || last.is_some_and(|l| l.elapsed() < every) {
                continue;
            }
            last = Some(Instant::now());
            let in_view = p
                .labels
                .iter()
                .map(|l| InView { track: l.track, name: l.name.clone(), known: l.known, score: (l.score * 1000.0).round() / 1000.0 })
                .collect();
            let jpeg = picture(&mut p);
            self.frames.store(&self.camera, jpeg, in_view);
        }
    }
}
