//! `detect`, `verify` and `identify`: the photo jobs.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{emit, printable, shown, Context, GlobalArgs, Outcome, UsageError, EXIT_DIFFERENT, EXIT_INPUT, EXIT_OK};
use crate::config::Config;
use crate::gallery::Gallery;
use crate::jobs::photos;
use crate::stills::Engine;

/// `facewatch detect`.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Photos to scan.
    #[arg(required = true, value_name = "IMG")]
    pub images: Vec<PathBuf>,
    /// Write each face's aligned 112×112 crop as DIR/<photo>_face<N>.png.
    #[arg(long, value_name = "DIR")]
    pub crop: Option<PathBuf>,
    /// Also estimate each face's age and gender (dlib's CC0 models: `facewatch models install age gender`;
    /// figures and limits in BENCHMARKS.md). No ethnicity, on purpose.
    #[arg(long)]
    pub attributes: bool,
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
pub(super) fn engine(cfg: &Config) -> Outcome<Engine> {
    Engine::build(cfg).context("failed to load the models")
}

/// Opens the configured gallery for the configured recognizer, reading its dimension from the manifest (for jobs
/// that run no model).
pub(super) fn open_configured_gallery(cfg: &Config) -> Outcome<Gallery> {
    let manifest = crate::model::Manifest::configured(&cfg.models.manifest)?;
    open_existing_gallery(cfg, manifest.recognizer(&cfg.models.recognizer)?.dim)
}

/// Opens the configured gallery for the configured recognizer producing `dim`-d embeddings, creating it when absent
/// (enroll; the daemon, which owns its state directory).
pub(super) fn open_gallery(cfg: &Config, dim: usize) -> Outcome<Gallery> {
    Ok(cfg.open_gallery(dim, true)?)
}

/// Opens the configured gallery for reading: a missing one is an error naming the path (nothing is created).
pub(super) fn open_existing_gallery(cfg: &Config, dim: usize) -> Outcome<Gallery> {
    Ok(cfg.open_gallery(dim, false)?)
}

/// The report of a command over several photos: one entry per photo, in the order given.
#[derive(serde::Serialize)]
struct Photos<T> {
    photos: Vec<T>,
}

/// `detect IMG… [--crop DIR]`: exit 3 when any photo could not be read.
pub(super) fn detect(g: &GlobalArgs, cfg: &Config, args: DetectArgs) -> Outcome<u8> {
    let mut engine = engine(cfg)?;
    let out = photos::detect(&mut engine, &args.images, args.crop.as_deref(), args.attributes)?;
    let failed = out.iter().any(|p| p.error.is_some());
    emit(g, &Photos { photos: out }, |out| {
        for p in &out.photos {
            match &p.error {
                Some(e) => eprintln!("{}: error: {}", shown(&p.path), printable(&e.to_string())),
                None => println!("{}: {} face(s)", shown(&p.path), p.faces.len()),
            }
            for (i, f) in p.faces.iter().enumerate() {
                let b = f.bbox;
                println!("  face {i}: box x={:.0} y={:.0} w={:.0} h={:.0}, score {:.3}", b.x, b.y, b.w, b.h, f.det_score);
                if let Some(c) = &f.crop {
                    println!("    crop {}", shown(c));
                }
                if let Some(a) = &f.attributes {
                    println!(
                        "    age {:.0} ({}-{}, p {:.2}), {} (p {:.2})",
                        a.age.value, a.age.low, a.age.high, a.age.probability, a.gender.value, a.gender.probability
                    );
                    if let Some(e) = &a.expression {
                        println!("    expression {} (p {:.2})", e.value, e.probability);
                    }
                }
            }
        }
    })?;
    Ok(if failed { EXIT_INPUT } else { EXIT_OK })
}

/// `verify A B` or `verify --anchor A1 --anchor A2 … INPUT`: exit 0 same person, 1 different.
///
/// Each photo contributes its largest face (the count found is reported). With anchors, each anchor votes
/// "same" when its score reaches the threshold; the majority decides and a tie goes to the mean score.
pub(super) fn verify(g: &GlobalArgs, cfg: &Config, args: VerifyArgs) -> Outcome<u8> {
    let (input, anchors): (&Path, Vec<&Path>) = match (args.anchors.is_empty(), args.photos.as_slice()) {
        (true, [a, b]) => (b, vec![a]),
        (false, [input]) => (input, args.anchors.iter().map(PathBuf::as_path).collect()),
        (true, _) => return Err(UsageError("verify takes two photos, or --anchor photos and one INPUT".into()).into()),
        (false, _) => return Err(UsageError("with --anchor, verify takes exactly one INPUT photo".into()).into()),
    };
    let mut engine = engine(cfg)?;
    let out = photos::verify(&mut engine, input, &anchors)?;
    emit(g, &out, |o| {
        let verdict = if o.same { "SAME person" } else { "DIFFERENT persons" };
        println!("{verdict}: score {:.3} (threshold {:.3}, {})", o.score, o.threshold, o.decision);
        for a in &o.anchors {
            println!("  {} vs {}: {:.3}{}", shown(&a.side.path), shown(&o.input.path), a.score, if a.same { " ✓" } else { "" });
        }
        for s in std::iter::once(&o.input).chain(o.anchors.iter().map(|a| &a.side)) {
            if s.faces_found > 1 {
                println!("  note: {} has {} faces; the largest was used", shown(&s.path), s.faces_found);
            }
        }
    })?;
    Ok(if out.same { EXIT_OK } else { EXIT_DIFFERENT })
}

/// `identify IMG…`: exit 3 when any photo could not be read (photos with no face are reported, not errors).
pub(super) fn identify(g: &GlobalArgs, cfg: &Config, args: IdentifyArgs) -> Outcome<u8> {
    let mut engine = engine(cfg)?;
    let gallery = open_existing_gallery(cfg, engine.info().dim)?;
    let k = args.top_k.unwrap_or(cfg.matcher.top_k.get());
    let out = photos::identify(&mut engine, &gallery, &args.images, k);
    let failed = out.iter().any(|p| p.error.is_some());
    emit(g, &Photos { photos: out }, |out| {
        for p in &out.photos {
            match (&p.error, p.faces.len()) {
                (Some(e), _) => eprintln!("{}: error: {}", shown(&p.path), printable(&e.to_string())),
                (None, 0) => println!("{}: no face found", shown(&p.path)),
                (None, n) => println!("{}: {n} face(s)", shown(&p.path)),
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
