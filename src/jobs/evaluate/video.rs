//! What the real-time pipeline says on every frame of a clip: the input of `facewatch evaluate --video`.

use tracing::info;

use crate::base::SaidFrame;
use crate::config::{Config, SourceKind};
use crate::jobs::JobError;
use crate::pipeline::{BuildOptions, Built, Pipeline};
use crate::stage::Stop;
use crate::stills::ModelInfo;

/// Every frame's faces and names, the clip's frame rate and the models that said them.
pub struct SaidOnVideo {
    /// One entry per frame, in order.
    pub frames: Vec<SaidFrame>,
    /// The clip's declared frame rate (25 when it declares none).
    pub fps: f64,
    /// The models in use.
    pub models: ModelInfo,
}

/// Runs the whole pipeline over `video` with `cfg`'s models, gallery and tracking, every frame processed (no
/// pacing, nothing dropped, no socket).
pub fn said_on_video(cfg: &Config, video: &str) -> Result<SaidOnVideo, JobError> {
    let mut cfg = cfg.clone();
    cfg.capture.source = video.to_string();
    cfg.cameras = Default::default();
    cfg.capture.kind = SourceKind::Video;
    cfg.capture.looping = false;
    cfg.capture.realtime = false;
    let Built { mut pipeline, models } = Pipeline::build(&cfg, BuildOptions::default())?;
    // Image sequences and some containers declare no rate: they are paced as 25 fps, and scored so too.
    let fps = pipeline.first().capture.source().frame_rate().unwrap_or(25.0);
    let said = pipeline.said();
    let running = pipeline.start(Stop::new())?;
    let report = running.wait(cfg.pipeline.shutdown_timeout)?;
    let frames: Vec<_> = said.try_iter().collect();
    info!(frames = report.frames, faces = report.faces, embedded = report.embedded, cuts = report.cuts, "Video evaluated.");
    Ok(SaidOnVideo { frames, fps, models })
}
