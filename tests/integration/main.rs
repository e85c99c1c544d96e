//! Integration tests on real models and real photos (one test binary, so it links once).

mod api;
mod bad_input;
mod bench;
mod browser;
mod cli;
mod common;
mod compreface;
mod daemon;
mod evaluation;
mod fleet;
mod hostile;
mod layers;
mod mqtt;
mod pg;
mod pipeline;
mod preprocessing;
mod privacy;
mod recognition;
mod strangers;
mod video;
