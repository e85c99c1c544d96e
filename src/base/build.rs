//! What this binary is: its version, the commit it was built from and what was compiled in (`facewatch
//! --version`, the API's `/api/health`, the `facewatch_build_info` metric).

/// The compiled-in features, space-separated: the execution providers `ort` was built with (CPU always), how ONNX
/// Runtime is found (loaded at run time), the sources, outputs and galleries.
macro_rules! features {
    () => {
        "cpu cuda tensorrt onnxruntime-load-dynamic v4l2 rtsp mqtt http-api sqlite postgres"
    };
}

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the binary was built from (12 hex digits), or `unknown` for a build outside git without
/// `FACEWATCH_COMMIT`.
pub const COMMIT: &str = env!("FACEWATCH_COMMIT");

/// The Cargo profile (`release`, `debug`).
pub const PROFILE: &str = env!("FACEWATCH_PROFILE");

/// The compiled-in features, space-separated.
pub const FEATURES: &str = features!();

/// `facewatch --version --verbose`-style text for `--version`: version, commit, profile and features.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("FACEWATCH_COMMIT"),
    ", ",
    env!("FACEWATCH_PROFILE"),
    ")\nfeatures: ",
    features!()
);
