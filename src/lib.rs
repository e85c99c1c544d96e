//! facewatch: real-time face recognition beside a camera.
//!
//! Stages, each in its own module and named the same everywhere (config table, thread, log span):
//! [`detect`] (boxes + 5 landmarks) → [`align`] (similarity warp to the ArcFace 112×112 template) → [`embed`]
//! (unit-length vector) → match against the [`gallery`]. One [`frame::Frame`] type carries pixels between them.
//! [`engine::Engine`] runs the stages on still photos. The daemon adds [`capture`] (camera, file, stream),
//! [`track`] (one id and one voted identity per face), [`publish`] (JSON-line events on a Unix socket) and
//! [`preview`], run as named threads by [`pipeline`]. [`cli`] holds the command-line jobs behind the binary.

#![deny(missing_docs)]

pub mod align;
pub mod base;
pub mod capture;
pub mod cli;
pub mod config;
pub mod dedupe;
pub mod detect;
pub mod embed;
pub mod engine;
pub mod eval;
pub mod folders;
pub mod gallery;
pub mod image;
pub mod jobs;
pub mod matcher;
pub mod model;
pub mod pipeline;
pub mod preview;
pub mod publish;
pub mod track;

pub use base::Frame;
pub use config::Config;
pub use engine::{Engine, EngineError, Face};
