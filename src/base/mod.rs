//! The bottom layer: the vocabulary every other module speaks, and nothing else. It depends on no other module of
//! the crate.
//!
//! - [`frame`]: a captured picture ([`Frame`]).
//! - [`face`]: a detected face ([`Detection`], [`BBox`]), its [`Embedding`], a gallery [`Candidate`], a
//!   [`TrackId`], the name policy ([`UNKNOWN`], [`face::decide`], [`face::margin`]) and what the pipeline said
//!   about a frame ([`SaidFrame`]).
//! - [`event`]: the event schema ([`Event`], one [`EventBody`] variant per event type).
//! - [`stage`]: the stage kit: the [`Stage`] shape, its [`Context`], the [`Stop`] signal and the edges with their
//!   [`QueuePolicy`].
//! - [`units`]: the typed values of the configuration (ranges, durations).
//! - [`stats`]: counters and latency samples per stage ([`Stats`], [`Report`]) and [`stats::percentile`].

pub mod event;
pub mod exit;
pub mod face;
pub mod frame;
pub mod stage;
pub mod stats;
pub mod units;

pub use event::{Event, EventBody, EventKind, TrackFace};
pub use face::{BBox, Candidate, Detection, Embedding, SaidFace, SaidFrame, TrackId, UNKNOWN};
pub use frame::Frame;
pub use stage::{Context, Output, QueuePolicy, Stage, Stop};
pub use stats::{Report, StageReport, StageStats, Stats};
