//! facewatch: real-time face recognition beside a camera.
//!
//! Stages, each in its own module and named the same everywhere (config table, thread, log span):
//! [`detect`] (boxes + 5 landmarks) → [`align`] (similarity warp to the ArcFace 112×112 template) → [`embed`]
//! (unit-length vector) → match against the [`gallery`]. One [`frame::Frame`] type carries pixels between them.
//! [`engine::Engine`] runs the stages on still photos; [`cli`] holds the command-line jobs behind the binary.

#![deny(missing_docs)]

pub mod align;
pub mod cli;
pub mod config;
pub mod dedupe;
pub mod detect;
pub mod embed;
pub mod engine;
pub mod eval;
pub mod folders;
pub mod frame;
pub mod gallery;
pub mod image;
pub mod model;

pub use config::Config;
pub use engine::{Engine, EngineError, Face};
pub use frame::Frame;
