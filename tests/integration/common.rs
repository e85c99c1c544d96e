//! Shared helpers: the real models, the real faces, a temporary gallery. Missing data fails loudly with the
//! command that installs it; nothing here skips.

use std::path::{Path, PathBuf};

use facewatch::config::{Config, Sources};
use facewatch::Engine;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The real test photos: `$FACEWATCH_FACES`, else `../shared/faces` beside the checkout.
pub fn faces() -> PathBuf {
    let dir = std::env::var_os("FACEWATCH_FACES").map(PathBuf::from).unwrap_or_else(|| root().join("../shared/faces"));
    assert!(
        dir.join("people").is_dir(),
        "test faces not found at {}: put the project's shared/ folder beside the checkout or set FACEWATCH_FACES",
        dir.display()
    );
    dir
}

/// A photo under the faces folder.
pub fn face(rel: &str) -> PathBuf {
    faces().join(rel)
}

/// Configuration pointing at this checkout's installed models, with extra `key=value` overrides.
pub fn config_with(overrides: &[(&str, &str)]) -> Config {
    let r = root();
    let mut o: Vec<(String, String)> = vec![
        ("models.dir".into(), r.join("models").display().to_string()),
        ("models.manifest".into(), r.join("models/manifest.toml").display().to_string()),
        ("runtime.ort_library".into(), r.join("lib/libonnxruntime.so.1.32.0").display().to_string()),
        ("runtime.intra_threads".into(), "2".into()),
    ];
    o.extend(overrides.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())));
    Config::load(&Sources { overrides: o, ..Sources::default() }).expect("test configuration loads")
}

/// The default configuration for tests.
pub fn config() -> Config {
    config_with(&[])
}

/// Builds the engine or fails with how to install the models.
pub fn engine_for(cfg: &Config) -> Engine {
    Engine::build(cfg).unwrap_or_else(|e| panic!("{e}\n(models or ONNX Runtime missing: run scripts/setup.sh)"))
}

/// The engine with the default models.
pub fn engine() -> Engine {
    engine_for(&config())
}

/// Number of faces the engine finds in a photo.
pub fn count_faces(engine: &mut Engine, path: &Path) -> usize {
    let frame = engine.load(path).unwrap_or_else(|e| panic!("{e}"));
    engine.detect(&frame).unwrap_or_else(|e| panic!("{e}")).len()
}

/// `groups/*_N.jpg` with their annotated face counts N.
pub fn annotated_groups() -> Vec<(PathBuf, usize)> {
    let mut out: Vec<(PathBuf, usize)> = std::fs::read_dir(faces().join("groups"))
        .expect("groups folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter_map(|p| {
            let n = p.file_stem()?.to_str()?.rsplit('_').next()?.parse().ok()?;
            Some((p, n))
        })
        .collect();
    out.sort();
    assert!(out.len() >= 8, "expected the annotated group photos, found {}", out.len());
    out
}

/// Runs the `facewatch` binary from the repository root with `--json` and `args`.
pub fn run_json(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(root())
        .arg("--json")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run facewatch")
}

/// A path as `&str` for command lines.
pub fn arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The sample clip, from the shared faces.
pub fn clip() -> PathBuf {
    let p = face("video/short_hamilton_clip.mp4");
    assert!(p.is_file(), "sample video missing at {}: run scripts/setup.sh (it installs the shared faces)", p.display());
    p
}

/// A gallery in `dir` enrolled from `people` (name, photos) through `facewatch enroll`, with extra global flags.
pub fn gallery_with(dir: &Path, people: &[(&str, &[PathBuf])], flags: &[&str]) -> PathBuf {
    let src = dir.join("people");
    for (name, photos) in people {
        std::fs::create_dir_all(src.join(name)).expect("mkdir");
        for p in *photos {
            std::fs::copy(p, src.join(name).join(p.file_name().expect("file name"))).expect("copy photo");
        }
    }
    let db = dir.join("gallery.db");
    let mut args = vec!["--gallery", arg(&db)];
    args.extend_from_slice(flags);
    args.extend(["enroll", arg(&src)]);
    let out = run_json(&args);
    assert!(out.status.success(), "enroll failed: {}", String::from_utf8_lossy(&out.stderr));
    db
}

/// A gallery in `dir` enrolled from `people` (name, photos) with the default models.
pub fn gallery(dir: &Path, people: &[(&str, &[PathBuf])]) -> PathBuf {
    gallery_with(dir, people, &[])
}

/// Writes the sample clip's frames `ranges` (inclusive) one after the other into `dir` as `f_000.EXT`,
/// `f_001.EXT`…: an image sequence (with hard cuts where the ranges jump). Returns its `%03d` pattern and how many
/// frames it has.
pub fn clip_frames(dir: &Path, ext: &str, ranges: &[(i32, i32)]) -> (PathBuf, u64) {
    use opencv::prelude::{MatTraitConst, VideoCaptureTrait, VideoCaptureTraitConst};
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut cap = opencv::videoio::VideoCapture::from_file(arg(&clip()), opencv::videoio::CAP_ANY).expect("open the clip");
    assert!(cap.is_opened().expect("opened"), "the clip opens");
    let mut n = 0u64;
    for &(first, last) in ranges {
        cap.set(opencv::videoio::CAP_PROP_POS_FRAMES, f64::from(first)).expect("seek");
        for _ in first..=last {
            let mut frame = opencv::core::Mat::default();
            assert!(cap.read(&mut frame).expect("read") && !frame.empty(), "frame of the clip");
            let path = dir.join(format!("f_{n:03}.{ext}"));
            opencv::imgcodecs::imwrite(arg(&path), &frame, &opencv::core::Vector::new()).expect("write frame");
            n += 1;
        }
    }
    (dir.join(format!("f_%03d.{ext}")), n)
}

/// `mp4` with its `moov` box moved before `mdat` ("fast start", as streaming encoders write it), the chunk
/// offsets (`stco`/`co64`) shifted to match: a copy cut short still opens, as a half-downloaded file does.
pub fn faststart(mp4: &[u8]) -> Vec<u8> {
    /// (start, size, header length, type) of each box in `data`.
    fn boxes(data: &[u8]) -> Vec<(usize, usize, usize, [u8; 4])> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 8 <= data.len() {
            let size = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
            let (size, header) = match size {
                0 => (data.len() - at, 8),
                1 => (u64::from_be_bytes(data[at + 8..at + 16].try_into().expect("8 bytes")) as usize, 16),
                n => (n, 8),
            };
            out.push((at, size, header, data[at + 4..at + 8].try_into().expect("type")));
            at += size.max(8);
        }
        out
    }
    fn shift(data: &mut [u8], by: u64) {
        for (at, size, header, kind) in boxes(data) {
            let body = at + header..at + size;
            match &kind {
                b"trak" | b"mdia" | b"minf" | b"stbl" => shift(&mut data[body], by),
                b"stco" | b"co64" => {
                    let b = &mut data[body];
                    let n = u32::from_be_bytes(b[4..8].try_into().expect("count")) as usize;
                    let width = if &kind == b"stco" { 4 } else { 8 };
                    for e in b[8..8 + n * width].chunks_exact_mut(width) {
                        if width == 4 {
                            let v = u32::from_be_bytes(e.try_into().expect("offset")) + by as u32;
                            e.copy_from_slice(&v.to_be_bytes());
                        } else {
                            let v = u64::from_be_bytes(e.try_into().expect("offset")) + by;
                            e.copy_from_slice(&v.to_be_bytes());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let top = boxes(mp4);
    let (moov_at, moov_len, moov_header, _) = *top.iter().find(|b| &b.3 == b"moov").expect("a moov box");
    let mdat_at = top.iter().find(|b| &b.3 == b"mdat").expect("an mdat box").0;
    assert!(moov_at > mdat_at, "already fast-start");
    let mut moov = mp4[moov_at..moov_at + moov_len].to_vec();
    shift(&mut moov[moov_header..], moov_len as u64);
    let mut out = Vec::with_capacity(mp4.len());
    out.extend_from_slice(&mp4[..mdat_at]);
    out.extend_from_slice(&moov);
    out.extend_from_slice(&mp4[mdat_at..moov_at]);
    out.extend_from_slice(&mp4[moov_at + moov_len..]);
    out
}
