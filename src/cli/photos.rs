//! `detect`, `verify` and `identify`: the photo jobs.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::{emit, GlobalArgs, InputError, EXIT_DIFFERENT, EXIT_INPUT, EXIT_OK};
use crate::config::{resolve_path, Config};
use crate::detect::{BBox, Detection};
use crate::engine::{Engine, Face, ModelInfo};
use crate::gallery::{Candidate, Gallery};

/// `facewatch detect`.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Photos to scan.
    #[arg(required = true, value_name = "IMG")]
    pub images: Vec<PathBuf>,
    /// Write each face's aligned 112×112 crop as DIR/<photo>_face<N>.png.
    #[arg(long, value_name = "DIR")]
    pub crop: Option<PathBuf>,
}

/// `facewatch verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Two photos (A B), or with --anchor the one photo to check.
    #[arg(value_name = "PHOTO", num_args = 1..=2, required = true)]
    pub photos: Vec<PathBuf>,
    /// A photo of the claimed person (repeatable); the anchors vote on INPUT.
    #[arg(long = "anchor", value_name = "PHOTO")]
    pub anchors: Vec<PathBuf>,
}

/// `facewatch identify`.
#[derive(Debug, Args)]
pub struct IdentifyArgs {
    /// Photos to identify every face in.
    #[arg(required = true, value_name = "IMG")]
    pub images: Vec<PathBuf>,
    /// Candidates per face (matcher.top_k).
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,
}

/// Builds the engine, with the configuration in the error context.
pub(super) fn engine(cfg: &Config) -> anyhow::Result<Engine> {
    Engine::build(cfg).context("failed to load the models")
}

/// Opens the configured gallery for the configured recognizer, reading its dimension from the manifest (for jobs
/// that run no model).
pub(super) fn open_configured_gallery(cfg: &Config) -> anyhow::Result<Gallery> {
    let manifest = crate::model::Manifest::load(&resolve_path(&cfg.models.manifest))?;
    open_existing_gallery(cfg, manifest.recognizer(&cfg.models.recognizer)?.dim)
}

/// Opens the configured gallery for the configured recognizer producing `dim`-d embeddings, creating it when absent
/// (enroll; the daemon, which owns its state directory).
pub(super) fn open_gallery(cfg: &Config, dim: usize) -> anyhow::Result<Gallery> {
    let path = resolve_path(&cfg.gallery.path);
    Ok(Gallery::open(&path, &cfg.models.recognizer, dim, cfg.matcher.exact_search_max)?)
}

/// Opens the configured gallery for reading: a missing one is an error naming the path (nothing is created).
pub(super) fn open_existing_gallery(cfg: &Config, dim: usize) -> anyhow::Result<Gallery> {
    let path = resolve_path(&cfg.gallery.path);
    Ok(Gallery::open_existing(&path, &cfg.models.recognizer, dim, cfg.matcher.exact_search_max)?)
}

#[derive(Serialize)]
struct FaceOut {
    bbox: BBox,
    landmarks: [[f32; 2]; 5],
    score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    crop: Option<PathBuf>,
}

#[derive(Serialize)]
struct PhotoOut {
    path: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    faces: Vec<FaceOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn face_out(d: &Detection, crop: Option<PathBuf>) -> FaceOut {
    FaceOut { bbox: d.bbox, landmarks: d.landmarks, score: d.score, crop }
}

/// `detect IMG… [--crop DIR]`: exit 3 when any photo could not be read.
pub(super) fn detect(g: &GlobalArgs, cfg: &Config, args: DetectArgs) -> anyhow::Result<u8> {
    let mut engine = engine(cfg)?;
    if let Some(dir) = &args.crop {
        // Crops are faces: a new folder is private (0700), each crop 0600.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)
            .with_context(|| format!("failed to create crop directory {}", dir.display()))?;
    }
    let mut out = Vec::new();
    for path in &args.images {
        out.push(match detect_one(&mut engine, path, args.crop.as_deref()) {
            Ok(p) => p,
            Err(e) => PhotoOut { path: path.clone(), width: None, height: None, faces: vec![], error: Some(format!("{e:#}")) },
        });
    }
    let failed = out.iter().any(|p| p.error.is_some());
    emit(g, &out, |photos| {
        for p in photos {
            match &p.error {
                Some(e) => println!("{}: error: {e}", p.path.display()),
                None => println!("{}: {} face(s)", p.path.display(), p.faces.len()),
            }
            for (i, f) in p.faces.iter().enumerate() {
                let b = f.bbox;
                println!("  face {i}: box x={:.0} y={:.0} w={:.0} h={:.0}, score {:.3}", b.x, b.y, b.w, b.h, f.score);
                if let Some(c) = &f.crop {
                    println!("    crop {}", c.display());
                }
            }
        }
    })?;
    Ok(if failed { EXIT_INPUT } else { EXIT_OK })
}

fn detect_one(engine: &mut Engine, path: &Path, crop: Option<&Path>) -> anyhow::Result<PhotoOut> {
    let frame = engine.load(path)?;
    let dets = engine.detect(&frame)?;
    let mut faces = Vec::with_capacity(dets.len());
    for (i, d) in dets.iter().enumerate() {
        let original = d.map_coords(|v| frame.to_original(v));
        let crop_path = match crop {
            Some(dir) => {
                let aligned = crate::align::align(&frame.bgr, &d.landmarks)?;
                let stem = path.file_stem().map_or_else(|| "photo".into(), |s| s.to_string_lossy().into_owned());
                let file = dir.join(format!("{stem}_face{i}.png"));
                crate::image::write_png_private(&file, &aligned.bgr)?;
                Some(file)
            }
            None => None,
        };
        faces.push(face_out(&original, crop_path));
    }
    Ok(PhotoOut { path: path.into(), width: Some(frame.original_width), height: Some(frame.original_height), faces, error: None })
}

#[derive(Serialize)]
struct VerifySide {
    path: PathBuf,
    faces_found: usize,
    bbox: BBox,
}

#[derive(Serialize)]
struct AnchorScore {
    #[serde(flatten)]
    side: VerifySide,
    score: f32,
    same: bool,
}

#[derive(Serialize)]
struct VerifyOut {
    same: bool,
    score: f32,
    threshold: f32,
    decision: &'static str,
    input: VerifySide,
    anchors: Vec<AnchorScore>,
    models: ModelInfo,
}

fn side(engine: &mut Engine, path: &Path) -> anyhow::Result<(Face, VerifySide)> {
    let (face, n) = engine.largest_face(path)?;
    let s = VerifySide { path: path.into(), faces_found: n, bbox: face.detection.bbox };
    Ok((face, s))
}

/// `verify A B` or `verify --anchor A1 --anchor A2 … INPUT`: exit 0 same person, 1 different.
///
/// Each photo contributes its largest face (the count found is reported). With anchors, each anchor votes
/// "same" when its score reaches the threshold; the majority decides and a tie goes to the mean score.
pub(super) fn verify(g: &GlobalArgs, cfg: &Config, args: VerifyArgs) -> anyhow::Result<u8> {
    let (input, anchors): (&Path, Vec<&Path>) = match (args.anchors.is_empty(), args.photos.as_slice()) {
        (true, [a, b]) => (b, vec![a]),
        (false, [input]) => (input, args.anchors.iter().map(PathBuf::as_path).collect()),
        (true, _) => return Err(InputError("verify takes two photos, or --anchor photos and one INPUT".into()).into()),
        (false, _) => return Err(InputError("with --anchor, verify takes exactly one INPUT photo".into()).into()),
    };
    let mut engine = engine(cfg)?;
    let threshold = engine.info().threshold;
    let (probe, input_side) = side(&mut engine, input)?;
    let mut scores = Vec::with_capacity(anchors.len());
    for a in anchors {
        let (face, s) = side(&mut engine, a)?;
        let score = face.embedding.cosine(&probe.embedding);
        scores.push(AnchorScore { side: s, score, same: score >= threshold });
    }
    let votes = scores.iter().filter(|s| s.same).count();
    let mean = scores.iter().map(|s| s.score).sum::<f32>() / scores.len() as f32;
    let (same, decision) = match (votes * 2).cmp(&scores.len()) {
        std::cmp::Ordering::Greater => (true, "majority of anchors"),
        std::cmp::Ordering::Less => (false, "majority of anchors"),
        std::cmp::Ordering::Equal => (mean >= threshold, "tie broken by mean score"),
    };
    let decision = if scores.len() == 1 { "score vs threshold" } else { decision };
    let out = VerifyOut { same, score: mean, threshold, decision, input: input_side, anchors: scores, models: engine.info().clone() };
    emit(g, &out, |o| {
        let verdict = if o.same { "SAME person" } else { "DIFFERENT persons" };
        println!("{verdict}: score {:.3} (threshold {:.3}, {})", o.score, o.threshold, o.decision);
        for a in &o.anchors {
            println!("  {} vs {}: {:.3}{}", a.side.path.display(), o.input.path.display(), a.score, if a.same { " ✓" } else { "" });
        }
        for s in std::iter::once(&o.input).chain(o.anchors.iter().map(|a| &a.side)) {
            if s.faces_found > 1 {
                println!("  note: {} has {} faces; the largest was used", s.path.display(), s.faces_found);
            }
        }
    })?;
    Ok(if same { EXIT_OK } else { EXIT_DIFFERENT })
}

#[derive(Serialize)]
struct IdentifiedFace {
    bbox: BBox,
    det_score: f32,
    /// The person, or "unknown".
    name: String,
    known: bool,
    score: Option<f32>,
    /// Top-1 minus top-2 score: how clearly the best candidate wins.
    margin: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    candidates: Vec<Candidate>,
}

#[derive(Serialize)]
struct IdentifyOut {
    path: PathBuf,
    faces: Vec<IdentifiedFace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Names a face from its candidates: the best one when it reaches the threshold, else "unknown" and why.
fn decide(face: &Face, candidates: Vec<Candidate>, threshold: f32, gallery_empty: bool) -> IdentifiedFace {
    let best = candidates.first().cloned();
    let margin = match candidates.as_slice() {
        [a, b, ..] => Some(a.score - b.score),
        _ => None,
    };
    let (name, known, reason) = match &best {
        Some(c) if c.score >= threshold => (c.name.clone(), true, None),
        Some(c) => {
            ("unknown".into(), false, Some(format!("best match {} scored {:.3}, below the threshold {threshold:.3}", c.name, c.score)))
        }
        None if gallery_empty => ("unknown".into(), false, Some("the gallery is empty: enroll people first".into())),
        None => ("unknown".into(), false, Some("no candidates".into())),
    };
    IdentifiedFace {
        bbox: face.detection.bbox,
        det_score: face.detection.score,
        name,
        known,
        score: best.map(|c| c.score),
        margin,
        reason,
        candidates,
    }
}

/// `identify IMG…`: exit 3 when any photo could not be read (photos with no face are reported, not errors).
pub(super) fn identify(g: &GlobalArgs, cfg: &Config, args: IdentifyArgs) -> anyhow::Result<u8> {
    let mut engine = engine(cfg)?;
    let gallery = open_existing_gallery(cfg, engine.info().dim)?;
    let threshold = engine.info().threshold;
    let k = args.top_k.unwrap_or(cfg.matcher.top_k.get()).max(1);
    let mut out = Vec::new();
    for path in &args.images {
        let result = engine.load(path).map_err(anyhow::Error::from).and_then(|f| Ok(engine.faces(&f)?));
        out.push(match result {
            Ok(faces) => IdentifyOut {
                path: path.clone(),
                faces: faces.iter().map(|f| decide(f, gallery.search(&f.embedding, k), threshold, gallery.is_empty())).collect(),
                error: None,
            },
            Err(e) => IdentifyOut { path: path.clone(), faces: vec![], error: Some(format!("{e:#}")) },
        });
    }
    let failed = out.iter().any(|p| p.error.is_some());
    emit(g, &out, |photos| {
        for p in photos {
            match (&p.error, p.faces.len()) {
                (Some(e), _) => println!("{}: error: {e}", p.path.display()),
                (None, 0) => println!("{}: no face found", p.path.display()),
                (None, n) => println!("{}: {n} face(s)", p.path.display()),
            }
            for f in &p.faces {
                let b = f.bbox;
                let score = f.score.map_or("-".into(), |s| format!("{s:.3}"));
                let margin = f.margin.map_or(String::new(), |m| format!(", margin {m:.3}"));
                println!("  [{:.0},{:.0} {:.0}x{:.0}] {} (score {score}{margin})", b.x, b.y, b.w, b.h, f.name);
                if let Some(r) = &f.reason {
                    println!("    {r}");
                }
            }
        }
    })?;
    Ok(if failed { EXIT_INPUT } else { EXIT_OK })
}
