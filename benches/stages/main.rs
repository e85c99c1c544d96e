//! Per-stage benchmarks on the real models: `cargo bench --bench stages` (see BENCHMARKS.md).
//!
//! Each inference stage is measured beside the bare ONNX Runtime call on the same model and input size, so the
//! cost of facewatch's own pre- and post-processing is visible as the difference.

mod common;
mod detect;
mod embed;
mod gallery;
mod track;

criterion::criterion_main!(detect::benches, embed::benches, gallery::benches, track::benches);
