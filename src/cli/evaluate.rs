//! `pairs`, `evaluate` and `calibrate`: how good is recognition on the user's own photos (pairs, identification
//! with an open set, a video against its truth), and which threshold to use; the jobs are
//! [`crate::jobs::evaluate`], the measures [`crate::eval`].

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::bar_progress;
use super::photos::{engine, open_configured_gallery};
use super::{emit, progress, shown, GlobalArgs, InputError, Outcome, EXIT_OK};
use crate::config::Config;
use crate::eval::{self, pairs, LabelledPair};
use crate::jobs::evaluate as measure;
use crate::jobs::evaluate::identification::{self, OpenSet};

/// `facewatch pairs`.
#[derive(Debug, Args)]
pub struct PairsArgs {
    /// Folder with one sub-folder of photos per person.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Number of sets (folds); LFW uses 10.
    #[arg(long, default_value_t = 10)]
    pub sets: usize,
    /// Same-person pairs per set (and as many different-person pairs).
    #[arg(long, default_value_t = 3)]
    pub per_set: usize,
    /// Random seed: the same seed gives the same pairs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write LFW `pairs.txt` format here.
    #[arg(long, value_name = "FILE")]
    pub lfw: Option<PathBuf>,
    /// Write CSV (`photo_a,photo_b,same`, paths relative to DIR) here.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

/// Where scored pairs come from: a pair file, or (calibrate) the gallery itself.
#[derive(Debug, Args)]
pub struct PairSource {
    /// Pair list, LFW `pairs.txt` or CSV (`file_a,file_b,yes|no`).
    #[arg(long, value_name = "FILE")]
    pub pairs: Option<PathBuf>,
    /// Folder the pair list's photos are in (default: the pair file's folder).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `facewatch evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The pairs to evaluate.
    #[command(flatten)]
    pub source: PairSource,
    /// Identification instead: a folder per person; each person's last --holdout photos are identified
    /// against a gallery of the others (top-1, top-5, confusion matrix).
    #[arg(long, value_name = "DIR", conflicts_with = "pairs")]
    pub people: Option<PathBuf>,
    /// Photos held out per person (persons need at least one more).
    #[arg(long, default_value_t = 1)]
    pub holdout: usize,
    /// Every face in these photos is a stranger: reports the open-set false-accept rate against a gallery of
    /// all --people photos, or without --people against the configured gallery.
    #[arg(long, value_name = "DIR", conflicts_with = "pairs")]
    pub strangers: Option<PathBuf>,
    /// Folds for cross-validated accuracy (LFW: 10).
    #[arg(long, default_value_t = 10)]
    pub folds: usize,
    /// Write the ROC curve (threshold, far, tar) as CSV here.
    #[arg(long, value_name = "FILE")]
    pub roc_csv: Option<PathBuf>,
    /// Write plots as PNG into this folder: roc.png and scores.png for pairs, confusion.png for --people,
    /// timeline.png for --video.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Video instead: run the real pipeline over this clip (every frame, gallery as configured) and score what it
    /// says against --truth.
    #[arg(long, value_name = "CLIP", conflicts_with_all = ["pairs", "people", "strangers"], requires = "truth")]
    pub video: Option<String>,
    /// Ground truth of the clip: CSV `first,last,name[,x,y,w,h]` (see README, "Naming people on video").
    #[arg(long, value_name = "FILE", requires = "video")]
    pub truth: Option<PathBuf>,
    /// Seconds after a person appears before their frames count for the named share.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.5, requires = "video")]
    pub grace: f64,
    /// A previous `evaluate --video --json` report: print which segments got better or worse.
    #[arg(long, value_name = "REPORT", requires = "video")]
    pub baseline: Option<PathBuf>,
}

/// `facewatch calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// The pairs to calibrate on.
    #[command(flatten)]
    pub source: PairSource,
    /// Calibrate on the enrolled gallery instead: photos of one person are genuine pairs, of two persons impostor.
    #[arg(long, conflicts_with = "pairs")]
    pub from_gallery: bool,
    /// Target false-accept rate: the share of strangers you can live with being accepted.
    #[arg(long, default_value_t = 0.001)]
    pub far: f32,
    /// Write `[matcher] threshold` into this TOML configuration file (other keys kept; comments are not).
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
}

#[derive(Serialize)]
struct PairsOut {
    dir: PathBuf,
    sets: usize,
    per_set: usize,
    seed: u64,
    same: usize,
    different: usize,
    written: Vec<PathBuf>,
}

/// `pairs DIR`: balanced, seeded pair lists.
pub(super) fn pairs(g: &GlobalArgs, args: PairsArgs) -> Outcome<u8> {
    let generated = pairs::generate(&args.dir, args.sets, args.per_set, args.seed)?;
    let mut written = Vec::new();
    if let Some(f) = &args.lfw {
        std::fs::write(f, generated.to_lfw()).map_err(crate::jobs::JobError::file("write", f))?;
        written.push(f.clone());
    }
    if let Some(f) = &args.csv {
        std::fs::write(f, generated.to_csv(&args.dir)).map_err(crate::jobs::JobError::file("write", f))?;
        written.push(f.clone());
    }
    if written.is_empty() && !g.json {
        print!("{}", generated.to_lfw());
        return Ok(EXIT_OK);
    }
    let n = generated.pairs.len();
    let out = PairsOut { dir: args.dir, sets: args.sets, per_set: args.per_set, seed: args.seed, same: n / 2, different: n / 2, written };
    emit(g, &out, |o| println!("{} same and {} different pairs (seed {}) written to {:?}", o.same, o.different, o.seed, o.written))?;
    Ok(EXIT_OK)
}

fn load_pairs(source: &PairSource) -> Outcome<Vec<LabelledPair>> {
    let file = source.pairs.as_ref().ok_or_else(|| InputError("give --pairs FILE".into()))?;
    let dir = source.dir.clone().unwrap_or_else(|| file.parent().map(Path::to_path_buf).unwrap_or_default());
    Ok(eval::read_pairs(file, &dir)?)
}

/// `evaluate`: pair metrics, or identification with `--people`.
pub(super) fn evaluate(g: &GlobalArgs, cfg: &Config, args: EvaluateArgs) -> Outcome<u8> {
    if let (Some(video), Some(truth)) = (&args.video, &args.truth) {
        return evaluate_video(g, video, truth, args.grace, args.baseline.as_deref(), args.plots.as_deref());
    }
    match (&args.people, &args.strangers) {
        (Some(people), _) => evaluate_people(g, cfg, people, args.holdout, args.strangers.as_deref(), args.plots.as_deref()),
        (None, Some(strangers)) => strangers_vs_gallery(g, cfg, strangers),
        (None, None) => evaluate_pairs(g, cfg, args),
    }
}

/// `evaluate --pairs FILE`.
fn evaluate_pairs(g: &GlobalArgs, cfg: &Config, args: EvaluateArgs) -> Outcome<u8> {
    let list = load_pairs(&args.source)?;
    let mut engine = engine(cfg)?;
    let bar = super::progress(g, "scoring", list.len());
    let outputs = measure::PairOutputs { folds: args.folds, roc_csv: args.roc_csv.as_deref(), plots: args.plots.as_deref() };
    let out = measure::pairs(&mut engine, &list, &outputs, &mut bar_progress(&bar))?;
    bar.finish_and_clear();
    emit(g, &out, |o| {
        println!("{} pairs ({} same, {} different), recognizer {}", o.pairs, o.same, o.different, o.recognizer);
        for f in &o.failed_photos {
            println!("  left out {}: {}", shown(&f.photo), f.reason);
        }
        println!(
            "accuracy at threshold {:.3}: {:.2} % (FAR {:.4}, FRR {:.4})",
            o.threshold,
            100.0 * o.accuracy_at_threshold,
            o.far_at_threshold,
            o.frr_at_threshold
        );
        println!("{}-fold accuracy: {:.2} % ± {:.2}", o.folds, 100.0 * o.kfold_accuracy_mean, 100.0 * o.kfold_accuracy_std);
        println!("AUC {:.4}, EER {:.2} % at threshold {:.3}", o.auc, 100.0 * o.eer, o.eer_threshold);
        for p in &o.tar_at_far {
            match (p.threshold, p.tar, p.measurable) {
                (Some(t), Some(tar), true) => println!("TAR at FAR {}: {:.2} % (threshold {t:.3})", p.far_target, 100.0 * tar),
                (Some(t), Some(tar), false) => println!(
                    "TAR at FAR {}: {:.2} % at threshold {t:.3}, but {} different pairs cannot measure a rate that small",
                    p.far_target,
                    100.0 * tar,
                    o.different
                ),
                _ => println!("TAR at FAR {}: not measurable", p.far_target),
            }
        }
    })?;
    Ok(EXIT_OK)
}

/// `calibrate`: the most lenient threshold whose measured false-accept rate is within the target.
pub(super) fn calibrate(g: &GlobalArgs, cfg: &Config, args: CalibrateArgs) -> Outcome<u8> {
    let from = if args.from_gallery {
        let gallery = open_configured_gallery(cfg)?;
        (gallery.scored_pairs(), format!("gallery {}", gallery.path().display()), gallery.model().to_string())
    } else {
        let list = load_pairs(&args.source)?;
        let mut engine = engine(cfg)?;
        let bar = super::progress(g, "scoring", list.len());
        let (scored, failures) = measure::score_pairs(&mut engine, &list, &mut bar_progress(&bar));
        bar.finish_and_clear();
        for f in failures {
            tracing::warn!(photo = %f.photo.display(), reason = %f.reason, "Photo left out of calibration.");
        }
        let file = args.source.pairs.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        (scored, format!("pairs {file}"), engine.info().recognizer.clone())
    };
    let out = measure::calibrate(from, args.far, args.write.as_deref())?;
    emit(g, &out, |o| {
        println!("{}", o.in_words);
        match &o.written {
            Some(p) => println!("written: [matcher] threshold = {:.3} in {}", o.threshold, shown(p)),
            None => println!("to use it: --threshold {:.3}, or calibrate again with --write /etc/facewatch/config.toml", o.threshold),
        }
    })?;
    Ok(EXIT_OK)
}

/// `evaluate --video CLIP --truth FILE`, with its comparison against a baseline report.
fn evaluate_video(g: &GlobalArgs, clip: &str, truth_path: &Path, grace: f64, baseline: Option<&Path>, plots: Option<&Path>) -> Outcome<u8> {
    let out = measure::video(&g.load_config()?, clip, truth_path, grace, baseline, plots)?;
    emit(g, &out, print_video)?;
    Ok(EXIT_OK)
}

fn share(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{:.1} %", v * 100.0))
}

fn print_video(o: &measure::VideoOut) {
    let r = &o.report;
    println!("{}: {} frames at {:.2} fps, {}; grace {:.1} s", r.video, r.frames, r.fps, r.models, r.grace_s);
    println!(
        "  {:<9} {:<20} {:>9} {:>11} {:>8} {:>9} {:>11} {:>7} {:>8}",
        "frames", "person", "named", "named/of", "wrong", "unknown", "first name", "tracks", "changes"
    );
    for s in &r.segments {
        let who = if s.name.is_empty() { "(strangers)" } else { s.name.as_str() };
        let first = s.first_named_s.map_or_else(|| if s.name.is_empty() { "".into() } else { "never".into() }, |t| format!("{t:.2} s"));
        println!(
            "  {:<9} {:<20} {:>9} {:>11} {:>8} {:>9} {:>11} {:>7} {:>8}",
            format!("{}-{}", s.first, s.last),
            who,
            share(s.named_share),
            if s.name.is_empty() { String::new() } else { format!("{}/{}", s.named_frames, s.scored_frames) },
            s.wrong_name_frames,
            share(s.unknown_share),
            first,
            s.tracks,
            s.identity_changes
        );
    }
    let a = &r.overall;
    println!(
        "  overall: named {}, wrong-name frames {}, unknown {}, {} tracks with {} identity changes ({:.2} per track)",
        share(a.named_share),
        a.wrong_name_frames,
        share(a.unknown_share),
        a.tracks,
        a.identity_changes,
        a.changes_per_track
    );
    if let Some(diff) = &o.baseline {
        println!("  against the baseline:");
        for d in diff {
            println!(
                "    {:<8} {:<32} named {} → {}, wrong {} → {}",
                d.verdict,
                d.segment,
                share(d.named_share.0),
                share(d.named_share.1),
                d.wrong_name_frames.0,
                d.wrong_name_frames.1
            );
        }
    }
}

fn print_open_set(s: &OpenSet, against: &str) {
    println!(
        "open set: {} stranger faces against {against}, {} accepted as someone ({:.2} %)",
        s.faces,
        s.false_accepts,
        100.0 * s.false_accept_rate
    );
    for a in &s.accepted {
        println!("  {} → {} ({:.3})", shown(&a.photo), a.matched, a.score);
    }
}

/// Runs identification (and the open set when `strangers` is given).
fn evaluate_people(
    g: &GlobalArgs,
    cfg: &Config,
    people: &Path,
    holdout: usize,
    strangers: Option<&Path>,
    plots: Option<&Path>,
) -> Outcome<u8> {
    let mut engine = engine(cfg)?;
    let bar = progress(g, "embedding", 0);
    let mut on_progress = super::bar_progress(&bar);
    let out =
        identification::identification(&mut engine, cfg.matcher.exact_search_max, people, holdout, strangers, plots, &mut on_progress)?;
    bar.finish_and_clear();
    emit(g, &out, |o| {
        println!("{} held-out photos of {} persons ({} photos without exactly one face skipped)", o.probes, o.persons, o.skipped_photos);
        println!(
            "top-1 {:.1} %, top-5 {:.1} %, identified at threshold {:.3}: {:.1} %",
            100.0 * o.top1,
            100.0 * o.top5,
            o.threshold,
            100.0 * o.identified_at_threshold
        );
        for m in &o.misses {
            println!("  {} ({}) → {} ({:.3})", shown(&m.photo), m.person, m.predicted, m.score);
        }
        if let Some(s) = &o.open_set {
            print_open_set(s, "a gallery of the people above");
        }
    })?;
    Ok(EXIT_OK)
}

/// `evaluate --strangers DIR` alone: the open-set false-accept rate against the configured gallery.
fn strangers_vs_gallery(g: &GlobalArgs, cfg: &Config, strangers: &Path) -> Outcome<u8> {
    let mut engine = engine(cfg)?;
    let gallery = super::photos::open_existing_gallery(cfg, engine.info().dim)?;
    if gallery.is_empty() {
        return Err(InputError(format!("the gallery {} is empty: enroll people first", gallery.path().display())).into());
    }
    let threshold = engine.info().threshold;
    let out = identification::open_set(&mut engine, &gallery, strangers, threshold)?;
    emit(g, &out, |s| print_open_set(s, &shown(gallery.path())))?;
    Ok(EXIT_OK)
}
