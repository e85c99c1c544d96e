//! Strangers: a face that matches no enrolled person is matched against the strangers seen before, and either
//! continues one (`stranger-…`, the same id across tracks, cameras and restarts) or, once its track has shown
//! enough good faces, starts one. What a person later does with them (name, merge, forget) is the gallery's
//! ([`crate::gallery::strangers`]).
//!
//! A step of the track stage ([`StrangerWatch`], one per camera, all sharing one [`StrangerBook`]), and a writer on
//! a thread of its own ([`StrangerWriter`]) that keeps each stranger's best faces in the gallery database: the
//! embedding, the aligned crop, the face with its scene, when and where; a slow disk costs stored faces, never
//! frames.
//!
//! Only good faces take part, so that a stranger is one person (purity matters more than finding everyone again):
//! large enough (`min_face_px`), of enough quality (detector score × size × frontality, `min_quality`), sharp
//! (variance of the aligned crop's Laplacian, `min_sharpness`) and whole (not cut by the frame's edge,
//! `edge_margin_px`). A face continues a stranger when its cosine to one of their faces reaches the stranger
//! threshold, stricter than the naming threshold (the recognizer's `stranger_min`: above every impostor pair of its
//! calibration set).

mod config;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use opencv::core::{Mat, MatTraitConst, Rect};
use parking_lot::Mutex;

use crate::base::{Detection, Embedding, Frame, TrackId};
use crate::gallery::strangers::NewStrangerFace;
use crate::gallery::GalleryStore;
pub use crate::matcher::strangers::{Place, StrangerBook};
use crate::stage::{Context, Output, Sent, Stage};
pub use config::StrangerConfig;

/// The settings a camera's watch runs by, resolved (the threshold found).
#[derive(Debug, Clone)]
pub struct StrangerSettings {
    /// Cosine to a stranger's face that makes a face theirs.
    pub threshold: f32,
    /// Good faces a track shows before it starts a stranger.
    pub min_faces: usize,
    /// Faces kept per stranger.
    pub keep_faces: usize,
    /// Smallest face side, frame pixels.
    pub min_face_px: f32,
    /// Least face quality.
    pub min_quality: f32,
    /// Least sharpness (variance of the aligned crop's Laplacian).
    pub min_sharpness: f64,
    /// Least distance of the face box from the frame's edge, frame pixels.
    pub edge_margin_px: f32,
}

impl StrangerSettings {
    /// From `[strangers]`, with `threshold` found (configured or the recognizer's).
    pub fn new(cfg: &StrangerConfig, threshold: f32) -> Self {
        Self {
            threshold,
            min_faces: cfg.min_faces.get(),
            keep_faces: cfg.keep_faces.get(),
            min_face_px: cfg.min_face_px as f32,
            min_quality: cfg.min_quality.get(),
            min_sharpness: f64::from(cfg.min_sharpness),
            edge_margin_px: cfg.edge_margin_px as f32,
        }
    }
}

/// A face to keep, as the track stage saw it (encoded by the writer).
pub struct FaceShot {
    embedding: Embedding,
    quality: f32,
    aligned: Mat,
    context: Option<Mat>,
    camera: String,
    at: i64,
}

/// What the writer does.
pub enum StrangerWrite {
    /// A new stranger and their first faces.
    New {
        /// `stranger-…`.
        label: String,
        /// Best first.
        faces: Vec<FaceShot>,
    },
    /// One more (better) face of a stranger.
    Face {
        /// Whose.
        label: String,
        /// The face.
        face: FaceShot,
    },
    /// A stranger seen again on a new track.
    Seen {
        /// Who.
        label: String,
        /// Where.
        camera: String,
        /// When, seconds since the epoch.
        at: i64,
    },
}

/// Why a face does not take part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Smaller than `min_face_px`.
    Small,
    /// Below `min_quality`.
    Poor,
    /// Below `min_sharpness`.
    Blurred,
    /// Cut by the frame's edge.
    Cut,
}

/// Variance of the Laplacian of `bgr` (grey): how sharp a face crop is.
pub fn sharpness(bgr: &Mat) -> f64 {
    let mut grey = Mat::default();
    let mut lap = Mat::default();
    let (mut mean, mut std) = (opencv::core::Scalar::default(), opencv::core::Scalar::default());
    let ok = opencv::imgproc::cvt_color_def(bgr, &mut grey, opencv::imgproc::COLOR_BGR2GRAY)
        .and_then(|()| opencv::imgproc::laplacian_def(&grey, &mut lap, opencv::core::CV_64F))
        .and_then(|()| {
            let mut m = opencv::core::Vector::<f64>::new();
            let mut s = opencv::core::Vector::<f64>::new();
            opencv::core::mean_std_dev(&lap, &mut m, &mut s, &opencv::core::no_array())?;
            mean[0] = m.get(0).unwrap_or(0.0);
            std[0] = s.get(0).unwrap_or(0.0);
            Ok(())
        });
    if ok.is_err() {
        return 0.0;
    }
    std[0] * std[0]
}

/// Per track: the stranger it is, or the good faces it showed so far.
#[derive(Default)]
struct TrackState {
    label: Option<String>,
    pending: Vec<FaceShot>,
}

/// One camera's stranger matching, a step of its track stage ([module docs](self)).
pub struct StrangerWatch {
    settings: StrangerSettings,
    book: Arc<Mutex<StrangerBook>>,
    camera: String,
    tracks: HashMap<TrackId, TrackState>,
}

impl StrangerWatch {
    /// For `camera`, over the daemon's shared `book`.
    pub fn new(settings: StrangerSettings, book: Arc<Mutex<StrangerBook>>, camera: &str) -> Self {
        Self { settings, book, camera: camera.to_string(), tracks: HashMap::new() }
    }

    /// Whether `det` (frame pixels) in `frame` passes the cheap gates: size, quality, not cut by the frame's edge.
    fn gate(&self, frame: &Frame, det: &Detection, quality: f32) -> Result<(), Refused> {
        let s = &self.settings;
        let b = det.bbox;
        if b.w.min(b.h) < s.min_face_px {
            return Err(Refused::Small);
        }
        if quality < s.min_quality {
            return Err(Refused::Poor);
        }
        let (w, h) = (frame.bgr.cols() as f32, frame.bgr.rows() as f32);
        let m = s.edge_margin_px;
        if b.x < m || b.y < m || b.x + b.w > w - m || b.y + b.h > h - m {
            return Err(Refused::Cut);
        }
        Ok(())
    }

    /// The face's aligned crop, when it is sharp enough (the last gate, the costly one: only for a face that
    /// would be kept or matched).
    fn sharp_crop(min_sharpness: f64, frame: &Frame, det: &Detection) -> Result<Mat, Refused> {
        let aligned = crate::align::align(&frame.bgr, &det.landmarks).map_err(|_| Refused::Poor)?;
        let sharp = sharpness(&aligned.bgr);
        if sharp < min_sharpness {
            tracing::trace!(sharpness = sharp, "Blurred face.");
            return Err(Refused::Blurred);
        }
        Ok(aligned.bgr)
    }

    /// The face with the scene around it: the box grown by its own size on each side, at most 240 px wide.
    fn context(frame: &Frame, det: &Detection) -> Option<Mat> {
        let b = det.bbox;
        let (w, h) = (frame.bgr.cols(), frame.bgr.rows());
        let x0 = ((b.x - b.w).floor().max(0.0)) as i32;
        let y0 = ((b.y - b.h).floor().max(0.0)) as i32;
        let x1 = ((b.x + 2.0 * b.w).ceil() as i32).min(w);
        let y1 = ((b.y + 2.0 * b.h).ceil() as i32).min(h);
        if x1 - x0 < 2 || y1 - y0 < 2 {
            return None;
        }
        let roi = Mat::roi(&frame.bgr, Rect::new(x0, y0, x1 - x0, y1 - y0)).ok()?;
        let scale = (240.0 / f64::from(x1 - x0)).min(1.0);
        let mut out = Mat::default();
        opencv::imgproc::resize(&roi, &mut out, opencv::core::Size::new(0, 0), scale, scale, opencv::imgproc::INTER_AREA).ok()?;
        Some(out)
    }

    /// An unnamed face of `track` with its embedding: continues a stranger, starts one, or waits for more good
    /// faces. Returns the track's stranger when it has one now, and what to write.
    pub fn unnamed_face(
        &mut self,
        track: TrackId,
        embedding: &Embedding,
        quality: f32,
        frame: &Frame,
        det: &Detection,
        writes: &mut Vec<StrangerWrite>,
    ) -> Option<String> {
        if let Err(why) = self.gate(frame, det, quality) {
            tracing::trace!(track, ?why, quality, w = det.bbox.w, "Face kept out of stranger matching.");
            return self.tracks.get(&track).and_then(|t| t.label.clone());
        }
        let at = frame.captured_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let camera = &self.camera;
        let shot = |aligned: Mat| FaceShot {
            embedding: embedding.clone(),
            quality,
            aligned,
            context: Self::context(frame, det),
            camera: camera.clone(),
            at,
        };
        let settings = &self.settings;
        let state = self.tracks.entry(track).or_default();
        let mut book = self.book.lock();
        // A label the book no longer holds (named, merged or forgotten meanwhile) is let go.
        if state.label.as_deref().is_some_and(|l| !book.contains(l)) {
            state.label = None;
        }
        if let Some(label) = &state.label {
            // Most faces of a stranger's track are no better than the faces kept (of the same view, or all):
            // nothing more to do for them. A face is kept only when it is the stranger's at their own level: a
            // tracker that swapped two people (its levels are looser) never puts a second person's face among
            // the stranger's, where it would draw that person's next tracks to this id.
            if book.place(label, embedding, quality, settings.keep_faces) != Place::Skip
                && book.similarity(label, embedding).is_some_and(|s| s >= settings.threshold)
            {
                if let Ok(aligned) = Self::sharp_crop(settings.min_sharpness, frame, det) {
                    book.add_face(label, embedding.clone(), quality, settings.keep_faces);
                    writes.push(StrangerWrite::Face { label: label.clone(), face: shot(aligned) });
                }
            }
            return state.label.clone();
        }
        let aligned = match Self::sharp_crop(settings.min_sharpness, frame, det) {
            Ok(a) => a,
            Err(why) => {
                tracing::trace!(track, ?why, "Face kept out of stranger matching.");
                return None;
            }
        };
        if let Some((label, score)) = book.best(embedding) {
            if score >= settings.threshold {
                let label = label.to_string();
                writes.push(StrangerWrite::Seen { label: label.clone(), camera: camera.clone(), at });
                if book.place(&label, embedding, quality, settings.keep_faces) != Place::Skip {
                    book.add_face(&label, embedding.clone(), quality, settings.keep_faces);
                    writes.push(StrangerWrite::Face { label: label.clone(), face: shot(aligned) });
                }
                state.pending.clear();
                state.label = Some(label);
                return state.label.clone();
            }
        }
        state.pending.push(shot(aligned));
        if state.pending.len() < settings.min_faces {
            return None;
        }
        let mut faces = std::mem::take(&mut state.pending);
        faces.sort_by(|a, b| b.quality.total_cmp(&a.quality));
        let mut label = crate::gallery::strangers::new_label();
        while book.contains(&label) {
            label = crate::gallery::strangers::new_label();
        }
        book.add(&label, faces.iter().map(|f| (f.embedding.clone(), f.quality)).collect(), settings.keep_faces);
        writes.push(StrangerWrite::New { label: label.clone(), faces });
        state.label = Some(label);
        state.label.clone()
    }

    /// Track `track` was named (or ended): it is no stranger's any more.
    pub fn forget_track(&mut self, track: TrackId) {
        self.tracks.remove(&track);
    }
}

/// The writer of strangers' faces ([module docs](self)): one for every camera, behind a bounded edge.
pub struct StrangerWriter {
    store: Box<dyn GalleryStore>,
    keep_faces: usize,
    max_age: Option<Duration>,
    max_strangers: usize,
}

impl StrangerWriter {
    /// Writing to `store` (its own connection to the gallery), by `[strangers]`.
    pub fn new(store: Box<dyn GalleryStore>, cfg: &StrangerConfig) -> Self {
        Self {
            store,
            keep_faces: cfg.keep_faces.get(),
            max_age: (cfg.max_age_days > 0).then(|| Duration::from_secs(u64::from(cfg.max_age_days) * 86_400)),
            max_strangers: cfg.max_strangers.get(),
        }
    }

    /// Forgets strangers beyond the retention (age, count).
    fn prune(&mut self) {
        let before = self.max_age.map_or(i64::MIN, |age| {
            SystemTime::now().checked_sub(age).and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs() as i64)
        });
        match self.store.strangers_prune(before, self.max_strangers) {
            Ok(0) => {}
            Ok(n) => tracing::info!(forgotten = n, "Strangers beyond the retention forgotten."),
            Err(e) => tracing::warn!(error = %e, "Forgetting old strangers failed."),
        }
    }

    fn encode(face: &FaceShot) -> Option<NewStrangerFace> {
        let crop = crate::image::encode_jpeg(&face.aligned, 90).ok()?;
        let context = face.context.as_ref().and_then(|c| crate::image::encode_jpeg(c, 80).ok());
        Some(NewStrangerFace {
            embedding: face.embedding.clone(),
            quality: face.quality,
            crop,
            context,
            camera: face.camera.clone(),
            seen_at: face.at,
        })
    }

    fn write(&mut self, w: StrangerWrite) -> Result<(), crate::gallery::GalleryError> {
        match w {
            StrangerWrite::New { label, faces } => {
                let mut encoded = faces.iter().filter_map(Self::encode);
                if let Some(first) = encoded.next() {
                    self.store.stranger_add(&label, &first)?;
                    tracing::info!(stranger = %label, camera = %first.camera, "New stranger.");
                }
                for f in encoded {
                    self.store.stranger_add_face(&label, &f, self.keep_faces)?;
                }
            }
            StrangerWrite::Face { label, face } => {
                if let Some(f) = Self::encode(&face) {
                    self.store.stranger_add_face(&label, &f, self.keep_faces)?;
                }
            }
            StrangerWrite::Seen { label, camera, at } => self.store.stranger_seen(&label, &camera, at)?,
        }
        Ok(())
    }
}

/// How often the writer applies the retention while it runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl Stage for StrangerWriter {
    const NAME: &'static str = "strangers";
    type In = StrangerWrite;
    type Out = ();
    type Ports = ();

    fn run(mut self, writes: Receiver<StrangerWrite>, _output: Output<()>, (): (), _cx: &Context) {
        self.prune();
        let mut pruned = std::time::Instant::now();
        for w in writes {
            if let Err(e) = self.write(w) {
                tracing::warn!(error = %e, "A stranger's face was not kept.");
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                self.prune();
                pruned = std::time::Instant::now();
            }
        }
    }
}

/// Hands `writes` to the writer without waiting; how many the full queue refused.
pub fn hand_over(out: &Output<StrangerWrite>, writes: Vec<StrangerWrite>) -> u64 {
    writes.into_iter().map(|w| u64::from(out.send(w) == Sent::Dropped)).sum()
}
