//! The jobs people start: each a library function that takes the configuration (and its inputs) and returns a
//! report struct. The command line ([`crate::cli`]) only parses flags, calls these, renders the report and maps
//! the error to an exit code.
//!
//! - [`check`]: the models installed.
//! - [`dedupe`]: copies of the same photo in a folder.
//! - [`enroll`]: a folder per person into the gallery.
//! - [`evaluate`]: accuracy on pairs and the threshold for a false-accept target; identification and open-set
//!   false accepts on the user's own folders ([`evaluate::identification`]); what the real-time pipeline says on
//!   every frame of a clip (`evaluate --video`, [`evaluate::video`](mod@evaluate::video)).
//! - [`install`]: the runtime, models and samples of the manifest, fetched and checked (`models install`).
//! - [`photos`]: `detect`, `verify` (pair or anchors) and `identify` on still photos.
//! - [`bench`](mod@bench): the whole pipeline on a video, beside the bare models on the same frames.

/// The version of every report document (`--json`, and the HTTP API's bodies): `v` in each, bumped on any
/// incompatible change of a report, as events carry theirs.
pub const REPORT_VERSION: u32 = 1;

/// A report as one JSON document: `{"v": 1, …the report's fields}`.
#[derive(Debug, serde::Serialize)]
pub struct Document<'a, T: serde::Serialize> {
    /// [`REPORT_VERSION`].
    pub v: u32,
    /// The report, its fields beside `v`.
    #[serde(flatten)]
    pub report: &'a T,
}

impl<'a, T: serde::Serialize> Document<'a, T> {
    /// `report` as a versioned document.
    pub fn new(report: &'a T) -> Self {
        Self { v: REPORT_VERSION, report }
    }
}

pub mod bench;
pub mod check;
pub mod dedupe;
pub mod enroll;
pub mod evaluate;
pub mod install;
pub mod photos;

use std::path::PathBuf;

use crate::capture::CaptureError;
use crate::config::ConfigError;
use crate::eval::plot::PlotError;
use crate::eval::EvalError;
use crate::exit::{self, Exit};
use crate::folders::FolderError;
use crate::gallery::GalleryError;
use crate::image::ImageError;
use crate::model::ModelError;
use crate::pipeline::{BuildError, PipelineError};
use crate::sinks::SocketError;
use crate::stills::EngineError;

/// What a long job tells its caller as it goes (a progress bar on a terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// How many items there are.
    Total(usize),
    /// One more item done.
    Done,
}

/// Why a job failed; every variant keeps its source and knows its exit code.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Models or a still photo.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The model manifest or runtime.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A photo.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A folder of photos.
    #[error(transparent)]
    Folder(#[from] FolderError),
    /// The gallery.
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    /// A pair list or an evaluation input.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// A plot.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// A video source.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The event socket.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// Building the pipeline.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Running the pipeline.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A file the job reads or writes.
    #[error("failed to {action} {}: {source}", .path.display())]
    File {
        /// `read`, `write`, `create`, …
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The job's own inputs do not make sense (wrong number of photos, a folder with no person in it, …).
    #[error("{0}")]
    Input(String),
    /// A model whose licence restricts its use was asked for without the user accepting that licence.
    #[error("{0}")]
    Licence(String),
    /// A helper thread of the job failed (a bug).
    #[error("{0}")]
    Internal(String),
}

impl JobError {
    /// A file error.
    pub fn file(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::File { action, path, source }
    }
}

impl Exit for JobError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Config(e) => e.exit_code(),
            Self::Engine(e) => e.exit_code(),
            Self::Model(e) => e.exit_code(),
            Self::Image(e) => e.exit_code(),
            Self::Folder(e) => e.exit_code(),
            Self::Gallery(e) => e.exit_code(),
            Self::Eval(e) => e.exit_code(),
            Self::Plot(e) => e.exit_code(),
            Self::Capture(e) => e.exit_code(),
            Self::Socket(e) => e.exit_code(),
            Self::Build(e) => e.exit_code(),
            Self::Pipeline(e) => e.exit_code(),
            Self::File { .. } | Self::Input(_) => exit::INPUT,
            Self::Licence(_) => exit::CONFIG,
            Self::Internal(_) => exit::INTERNAL,
        }
    }
}
