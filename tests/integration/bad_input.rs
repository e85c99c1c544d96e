//! Bad input gets a clear error that names the file, and odd-but-valid images still work. Fixtures are made at
//! test time from a real photo (truncated, re-encoded as grey / 16-bit / alpha, pasted into a huge canvas).

use std::path::{Path, PathBuf};

use facewatch::gallery::{Gallery, GalleryError};
use facewatch::image::ImageError;
use facewatch::model::ModelError;
use facewatch::stills::EngineError;
use facewatch::Engine;
use opencv::core::{Mat, MatTrait, MatTraitConst, Rect, Scalar, Size, Vector, CV_16UC3, CV_8UC3};
use opencv::{imgcodecs, imgproc};

use crate::common::{config, config_with, count_faces, engine, face};

fn obama() -> PathBuf {
    face("people/obama/obama.jpg")
}

fn read_bgr(path: &Path) -> Mat {
    imgcodecs::imread(path.to_str().expect("utf-8 path"), imgcodecs::IMREAD_COLOR).expect("imread")
}

fn write(path: &Path, mat: &Mat) {
    assert!(imgcodecs::imwrite(path.to_str().expect("utf-8 path"), mat, &Vector::new()).expect("imwrite"));
}

fn load_err(engine: &Engine, path: &Path) -> ImageError {
    engine.load(path).err().unwrap_or_else(|| panic!("{} loaded, expected an error", path.display()))
}

#[test]
fn missing_empty_non_image_and_truncated_files_are_named_in_clear_errors() {
    let engine = engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.jpg");
    let e = load_err(&engine, &missing);
    assert!(matches!(e, ImageError::NotFound(_)) && e.to_string().contains("nope.jpg"), "{e}");

    let empty = dir.path().join("empty.jpg");
    std::fs::write(&empty, b"").expect("write");
    let e = load_err(&engine, &empty);
    assert!(matches!(e, ImageError::Empty(_)) && e.to_string().contains("0 bytes"), "{e}");

    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, b"shopping list: eggs, milk\n").expect("write");
    let e = load_err(&engine, &text);
    assert!(matches!(e, ImageError::NotAnImage(_)) && e.to_string().contains("notes.jpg"), "{e}");

    let bytes = std::fs::read(obama()).expect("read");
    let cut = dir.path().join("cut.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let e = load_err(&engine, &cut);
    assert!(matches!(e, ImageError::Truncated(_, "JPEG")) && e.to_string().contains("cut.jpg"), "{e}");

    let png = dir.path().join("whole.png");
    write(&png, &read_bgr(&obama()));
    let png_bytes = std::fs::read(&png).expect("read");
    let cut_png = dir.path().join("cut.png");
    std::fs::write(&cut_png, &png_bytes[..png_bytes.len() * 2 / 3]).expect("write");
    assert!(matches!(load_err(&engine, &cut_png), ImageError::Truncated(_, "PNG")));
}

/// Each kind of damage is named for what it is: a file cut in its header is truncated (not "not an image"), a
/// broken marker in a complete file is damage (not truncation), a header declaring more image than the data holds
/// is refused (libjpeg would fill the rest with grey and report success).
#[test]
fn cut_damaged_and_lying_jpegs_are_told_apart() {
    let engine = engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(obama()).expect("read");
    for percent in [1, 5, 10, 50, 90] {
        let cut = dir.path().join(format!("cut{percent}.jpg"));
        std::fs::write(&cut, &bytes[..bytes.len() * percent / 100]).expect("write");
        let e = load_err(&engine, &cut);
        assert!(matches!(e, ImageError::Truncated(_, "JPEG")), "cut at {percent} %: {e}");
    }

    // The second marker's FF overwritten: the file still ends with its EOI.
    let second = 4 + usize::from(u16::from_be_bytes([bytes[4], bytes[5]]));
    assert_eq!(bytes[second], 0xFF, "a marker at {second}");
    let mut damaged = bytes.clone();
    damaged[second] = 0x00;
    let path = dir.path().join("damaged.jpg");
    std::fs::write(&path, &damaged).expect("write");
    match engine.load(&path) {
        Err(e) => assert!(!matches!(e, ImageError::Truncated(..)), "a complete file called truncated: {e}"),
        Ok(frame) => assert_eq!(frame.width() as i32, read_bgr(&obama()).cols(), "recovered, at its size"),
    }

    // The frame header (SOF0..SOF2, found by walking the segments: an EXIF thumbnail has its own) says twice the
    // height the data holds.
    let mut sof = 2;
    while !matches!(bytes[sof + 1], 0xC0..=0xC2) {
        sof += 2 + usize::from(u16::from_be_bytes([bytes[sof + 2], bytes[sof + 3]]));
    }
    let mut lying = bytes.clone();
    let height = u16::from_be_bytes([lying[sof + 5], lying[sof + 6]]);
    lying[sof + 5..sof + 7].copy_from_slice(&(height * 2).to_be_bytes());
    let path = dir.path().join("lying.jpg");
    std::fs::write(&path, &lying).expect("write");
    let e = load_err(&engine, &path);
    assert!(matches!(e, ImageError::ShortOfItsHeader { .. }), "{e}");
    assert!(e.to_string().contains(&format!("x{}", height * 2)), "{e}");
}

#[test]
fn grey_16_bit_and_alpha_images_are_converted_and_still_show_the_face() {
    let mut engine = engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let bgr = read_bgr(&obama());

    let mut grey = Mat::default();
    imgproc::cvt_color_def(&bgr, &mut grey, imgproc::COLOR_BGR2GRAY).expect("grey");
    let grey_path = dir.path().join("grey.jpg");
    write(&grey_path, &grey);

    let mut deep = Mat::default();
    bgr.convert_to(&mut deep, CV_16UC3, 257.0, 0.0).expect("16-bit");
    let deep_path = dir.path().join("deep.png");
    write(&deep_path, &deep);

    let mut bgra = Mat::default();
    imgproc::cvt_color_def(&bgr, &mut bgra, imgproc::COLOR_BGR2BGRA).expect("alpha");
    let alpha_path = dir.path().join("alpha.png");
    write(&alpha_path, &bgra);

    for p in [&grey_path, &deep_path, &alpha_path] {
        let frame = engine.load(p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(frame.bgr.typ(), CV_8UC3, "{}", p.display());
        assert_eq!(count_faces(&mut engine, p), 1, "{}", p.display());
    }
    // The 16-bit copy must embed like the 8-bit original (same pixels after conversion).
    let a = engine.single_face(&obama()).expect("face");
    let b = engine.single_face(&deep_path).expect("face");
    assert!(a.embedding.cosine(&b.embedding) > 0.95);
}

/// Runs a command and returns its output with its own peak resident memory (VmHWM, KiB), polled from /proc.
///
/// getrusage(RUSAGE_CHILDREN) would not do: a posix_spawn child shares this process's address space until exec
/// and inherits its peak, which here includes the 400 MiB canvas the test painted.
fn output_with_peak_rss(mut cmd: std::process::Command) -> (std::process::Output, u64) {
    use std::process::Stdio;
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    // The child is not reaped until wait below, so its status file exists until then; it loses its VmHWM line
    // when it exits (zombie), which ends the loop.
    while let Ok(status) = std::fs::read_to_string(&status_path) {
        let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
        match hwm {
            Some(kib) => peak = peak.max(kib),
            None if status.contains("State:\tZ") => break,
            None => {}
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    (child.wait_with_output().expect("wait"), peak)
}

#[test]
fn a_12000_pixel_square_photo_is_decoded_reduced_within_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let huge_jpg = dir.path().join("huge.jpg");
    let huge_png = dir.path().join("huge.png");
    {
        // A real face, large, in the corner of a 12000×12000 canvas.
        let mut canvas = Mat::new_rows_cols_with_default(12_000, 12_000, CV_8UC3, Scalar::all(90.0)).expect("canvas");
        let mut big_face = Mat::default();
        imgproc::resize(&read_bgr(&obama()), &mut big_face, Size::new(4000, 4000), 0.0, 0.0, imgproc::INTER_LINEAR).expect("resize");
        let mut roi = canvas.roi_mut(Rect::new(500, 500, 4000, 4000)).expect("roi");
        big_face.copy_to(&mut roi).expect("paste");
        write(&huge_jpg, &canvas);
        write(&huge_png, &canvas);
    }
    // Run the real CLI in a child so its peak memory is measured on its own.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_facewatch"));
    cmd.current_dir(crate::common::root()).args(["--json", "detect"]).arg(&huge_jpg);
    let (out, peak_kib) = output_with_peak_rss(cmd);
    let peak_mib = peak_kib / 1024;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["photos"][0]["width"], 12_000);
    assert_eq!(report["photos"][0]["faces"].as_array().map(Vec::len), Some(1), "{stdout}");
    // Boxes are reported in the original image's pixels even though it was decoded at half size.
    let x = report["photos"][0]["faces"][0]["bbox"][0].as_f64().expect("x");
    assert!(x > 500.0 && x < 4500.0, "box x {x}");
    // A full decode alone needs 12000·12000·3 B = 412 MiB on top of the ~130 MiB the process needs for a small
    // photo; the half-scale decode keeps the whole process below the full image's size.
    eprintln!("peak RSS of `facewatch detect` on a 12000x12000 JPEG: {peak_mib} MiB");
    assert!(peak_mib < 400, "peak RSS {peak_mib} MiB");

    // A huge PNG cannot be decoded reduced: refused, with the numbers.
    let e = load_err(&engine(), &huge_png);
    assert!(matches!(e, ImageError::TooLarge { width: 12_000, height: 12_000, .. }), "{e}");
    assert!(e.to_string().contains("max_image_pixels"), "{e}");
}

#[test]
fn face_count_errors_say_what_was_found() {
    let mut engine = engine();
    let none = face("noface/pilatus800.jpg");
    let e = engine.single_face(&none).expect_err("no face");
    assert!(matches!(e, EngineError::NoFace(_)));
    assert_eq!(e.to_string(), format!("no face found in {}", none.display()));

    let group = face("groups/compreface_011_3.jpg");
    let e = engine.single_face(&group).expect_err("several faces");
    assert!(matches!(e, EngineError::SeveralFaces { n: 3, .. }), "{e}");
    // Where one face is enough (verify), the largest is used and the count reported.
    let (largest, n) = engine.largest_face(&group).expect("largest");
    assert_eq!(n, 3);
    let others = engine.load(&group).map(|f| engine.detect(&f).expect("detect")).expect("load");
    assert!(others.iter().all(|d| d.bbox.area() <= largest.detection.bbox.area() + 1.0));
}

#[test]
fn missing_or_wrong_model_files_name_the_path_and_the_expected_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_s = dir.path().display().to_string();
    let cfg = config_with(&[("models.dir", dir_s.as_str())]);
    let e = Engine::build(&cfg).err().expect("missing model");
    let msg = e.to_string();
    assert!(matches!(e, EngineError::Model(ModelError::Missing { .. })), "{msg}");
    // The detector (YuNet) is compiled into the binary: the first missing file is the recognizer's.
    assert!(msg.contains("w600k_mbf.onnx") && msg.contains("9cc6e4a75f0e2bf0"), "{msg}");
    assert!(msg.contains("scripts/setup.sh"), "{msg}");

    // The recognizer swapped for the detector file: same name, wrong bytes.
    let real = crate::common::root().join("models");
    std::fs::copy(real.join("face_detection_yunet_2023mar.onnx"), dir.path().join("face_detection_yunet_2023mar.onnx")).expect("copy");
    std::fs::copy(real.join("face_detection_yunet_2023mar.onnx"), dir.path().join("w600k_mbf.onnx")).expect("copy");
    let e = Engine::build(&cfg).err().expect("wrong model");
    let msg = e.to_string();
    assert!(matches!(e, EngineError::Model(ModelError::Corrupt { .. })), "{msg}");
    assert!(msg.contains("w600k_mbf.onnx") && msg.contains("9cc6e4a75f0e2bf0") && msg.contains("8f2383e4dd3cfbb4"), "{msg}");
}

#[test]
fn a_missing_runtime_library_is_named() {
    let cfg = config_with(&[("runtime.ort_library", "/nonexistent/libonnxruntime.so")]);
    // ORT_DYLIB_PATH would override the configuration; nextest gives each test its own process.
    std::env::remove_var("ORT_DYLIB_PATH");
    let e = Engine::build(&cfg).err().expect("no runtime");
    let msg = e.to_string();
    assert!(msg.contains("/nonexistent/libonnxruntime.so") && msg.contains("scripts/setup.sh"), "{msg}");
}

#[test]
fn a_gallery_from_another_model_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("g.db");
    drop(Gallery::open(&path, "sface", 128, 100).expect("create"));
    let cfg = config();
    let e = Gallery::open(&path, &cfg.models.recognizer, 512, 100).err().expect("mismatch");
    assert!(matches!(e, GalleryError::ModelMismatch { .. }), "{e}");
    assert!(e.to_string().contains("re-enroll"), "{e}");
}
