//! facewatch: real-time face recognition beside a camera.
//!
//! Layers, each using only those before it (checked by `tests/integration/layers.rs`):
//! - [`base`]: the vocabulary (frames, faces, embeddings, candidates, track ids, the name policy), the event
//!   schema, the stage kit and the exit codes.
//! - [`private`], [`folders`], [`image`], [`model`]: plumbing ([`private`]: files of faces and secrets, owner-only,
//!   no link followed).
//! - The stages and their steps, in the order a frame meets them: [`capture`] → [`detect`] → [`track`] (which
//!   calls [`align`], [`embed`] and [`matcher`] over the [`gallery`]) → [`publish`], and [`preview`]; each defines
//!   its own configuration section.
//! - [`config`]: the sections composed, loaded, layered and checked.
//! - [`sessions`] (the models checked once, their sessions made from that), then [`stills`] (the stages on one
//!   photo) and [`pipeline`] (the stages on a camera, one thread each).
//! - [`eval`] and [`dedupe`] (measures), then [`jobs`]: every job as a library function returning a report.
//! - [`cli`]: flags, rendering and exit codes around the jobs.

#![deny(missing_docs)]

pub mod align;
pub mod api;
pub mod base;
pub mod capture;
pub mod cli;
pub mod config;
pub mod dedupe;
pub mod detect;
pub mod embed;
pub mod eval;
pub mod exit;
pub mod folders;
pub mod gallery;
pub mod image;
pub mod jobs;
pub mod matcher;
pub mod metrics;
pub mod model;
pub mod paths;
pub mod pipeline;
pub mod preview;
pub mod private;
pub mod publish;
pub mod sessions;
pub mod snapshot;
pub mod stage;
pub mod stills;
pub mod track;

pub use base::Frame;
pub use config::Config;
pub use stills::{Engine, EngineError, Face};
