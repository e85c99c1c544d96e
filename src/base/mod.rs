//! The bottom layer: the vocabulary every other module speaks, and nothing else. It depends on no other module of
//! the crate.
//!
//! - [`frame`]: a captured picture ([`Frame`]).
//! - [`face`]: a detected face ([`Detection`], [`BBox`]), its [`Embedding`], a gallery [`Candidate`], a
//!   [`TrackId`], the name policy ([`UNKNOWN`], [`face::decide`], [`face::margin`]) and what the pipeline said
//!   about a frame ([`SaidFrame`]).
//! - [`event`]: the event schema ([`Event`], one [`EventBody`] variant per event type).
//! - [`units`]: the typed values of the configuration (ranges, durations).
//! - [`build`]: what this binary is (version, commit, compiled-in features).
//!
//! Beside it, as low: [`crate::exit`] (exit codes), [`crate::metrics`] (counters) and [`crate::stage`] (the stage
//! kit).

pub mod build;
pub mod event;
pub mod face;
pub mod frame;
pub mod units;

pub use event::{Event, EventBody, EventKind, TrackFace};
pub use face::{BBox, Candidate, Detection, Embedding, SaidFace, SaidFrame, TrackId, UNKNOWN};
pub use frame::Frame;
