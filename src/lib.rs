//! facewatch: real-time face recognition beside a camera.
//!
//! Layers, each using only those before it (checked by `tests/integration/layers.rs`):
//! - [`base`]: the vocabulary (frames, faces, embeddings, candidates, track ids, the name policy, the event
//!   schema, typed settings); beside it [`exit`] (exit codes), [`metrics`] (counters) and [`stage`] (the stage
//!   kit: the `Stage` shape, edges with their queue policy, the stop signal).
//! - Plumbing: [`private`] (files of faces and secrets: owner-only, no link followed), [`paths`], [`tls`], [`folders`],
//!   [`image`], [`model`].
//! - [`sinks`]: the outputs, each from its own configuration section (the socket, MQTT, the API's event stream,
//!   printed and recorded lines, the window, snapshots); they know nothing of the stages.
//! - The stages and their steps, in the order a frame meets them: [`capture`] → [`detect`] → [`track`] (which
//!   calls [`align`], [`embed`] and [`matcher`] over the [`gallery`]) → [`publish`]; each defines its own
//!   configuration section. Beside them, [`attributes`] (age and gender, on request only).
//! - [`config`]: the sections composed, loaded, layered and checked, and resolved into a plan.
//! - [`sessions`] (the models checked once, their sessions made from that), then [`stills`] (the stages on one
//!   photo) and [`pipeline`] (the stages on cameras, one thread each, wired as its topology declares).
//! - [`eval`] and [`dedupe`] (measures), then [`jobs`]: every job as a library function returning a report.
//! - [`api`] (the jobs over HTTP), then [`cli`]: flags, rendering and exit codes around the jobs.

#![deny(missing_docs)]

pub mod align;
pub mod api;
pub mod attributes;
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
pub mod private;
pub mod publish;
pub mod sessions;
pub mod sinks;
pub mod stage;
pub mod stills;
pub mod strangers;
pub mod tls;
pub mod track;

pub use base::Frame;
pub use config::Config;
pub use stills::{Engine, EngineError, Face};
