//! `pairs`, `evaluate` and `calibrate`: how good is recognition on the user's own photos, and which threshold
//! to use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::photos::{engine, open_configured_gallery};
use super::{emit, GlobalArgs, InputError, EXIT_OK};
use crate::base::Embedding;
use crate::config::Config;
use crate::engine::ModelInfo;
use crate::eval::{self, pairs, video, LabelledPair, RocPoint, ScoredPair};

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
pub(super) fn pairs(g: &GlobalArgs, args: PairsArgs) -> anyhow::Result<u8> {
    let generated = pairs::generate(&args.dir, args.sets, args.per_set, args.seed)?;
    let mut written = Vec::new();
    if let Some(f) = &args.lfw {
        std::fs::write(f, generated.to_lfw()).with_context(|| format!("failed to write {}", f.display()))?;
        written.push(f.clone());
    }
    if let Some(f) = &args.csv {
        std::fs::write(f, generated.to_csv(&args.dir)).with_context(|| format!("failed to write {}", f.display()))?;
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

#[derive(Serialize)]
struct Failure {
    photo: PathBuf,
    reason: String,
}

/// Scores every pair by the cosine of each photo's largest face; photos that fail are reported, and their
/// pairs left out. Also returns the models and threshold that scored them.
fn score_pairs(g: &GlobalArgs, cfg: &Config, list: &[LabelledPair]) -> anyhow::Result<(Vec<ScoredPair>, Vec<Failure>, ModelInfo)> {
    let mut engine = engine(cfg)?;
    let bar = super::progress(g, "scoring", list.len());
    let mut cache: HashMap<&Path, Option<Embedding>> = HashMap::new();
    let mut failures = Vec::new();
    for p in list {
        for photo in [&p.a, &p.b] {
            if !cache.contains_key(photo.as_path()) {
                let e = match engine.largest_face(photo) {
                    Ok((face, _)) => Some(face.embedding),
                    Err(e) => {
                        failures.push(Failure { photo: photo.clone(), reason: e.to_string() });
                        None
                    }
                };
                cache.insert(photo, e);
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let scored = list
        .iter()
        .filter_map(|p| match (&cache[p.a.as_path()], &cache[p.b.as_path()]) {
            (Some(a), Some(b)) => Some(ScoredPair { score: a.cosine(b), same: p.same }),
            _ => None,
        })
        .collect();
    Ok((scored, failures, engine.info().clone()))
}

fn load_pairs(source: &PairSource) -> anyhow::Result<Vec<LabelledPair>> {
    let file = source.pairs.as_ref().ok_or_else(|| InputError("give --pairs FILE".into()))?;
    let dir = source.dir.clone().unwrap_or_else(|| file.parent().map(Path::to_path_buf).unwrap_or_default());
    Ok(eval::read_pairs(file, &dir)?)
}

#[derive(Serialize)]
struct OperatingPoint {
    far_target: f32,
    threshold: Option<f32>,
    tar: Option<f32>,
    /// False when there are fewer than 1/far_target different pairs: the rate cannot be told from zero.
    measurable: bool,
}

#[derive(Serialize)]
struct EvaluateOut {
    recognizer: String,
    pairs: usize,
    same: usize,
    different: usize,
    failed_photos: Vec<Failure>,
    threshold: f32,
    accuracy_at_threshold: f32,
    far_at_threshold: f32,
    frr_at_threshold: f32,
    folds: usize,
    kfold_accuracy_mean: f32,
    kfold_accuracy_std: f32,
    kfold_thresholds: Vec<f32>,
    auc: f32,
    eer: f32,
    eer_threshold: f32,
    tar_at_far: Vec<OperatingPoint>,
}

/// `evaluate`: pair metrics, or identification with `--people`.
pub(super) fn evaluate(g: &GlobalArgs, cfg: &Config, args: EvaluateArgs) -> anyhow::Result<u8> {
    if let (Some(video), Some(truth)) = (&args.video, &args.truth) {
        return evaluate_video(g, video, truth, args.grace, args.baseline.as_deref(), args.plots.as_deref());
    }
    match (&args.people, &args.strangers) {
        (Some(people), _) => {
            super::identification::evaluate(g, cfg, people, args.holdout, args.strangers.as_deref(), args.plots.as_deref())
        }
        (None, Some(strangers)) => super::identification::strangers_vs_gallery(g, cfg, strangers),
        (None, None) => evaluate_pairs(g, cfg, args),
    }
}

/// `evaluate --pairs FILE`: accuracy (at the threshold and 10-fold), ROC/AUC, EER, TAR at FAR 1e-2 and 1e-3.
fn evaluate_pairs(g: &GlobalArgs, cfg: &Config, args: EvaluateArgs) -> anyhow::Result<u8> {
    let list = load_pairs(&args.source)?;
    let (scored, failed_photos, models) = score_pairs(g, cfg, &list)?;
    if !scored.iter().any(|p| p.same) || !scored.iter().any(|p| !p.same) {
        return Err(InputError("evaluation needs both same-person and different-person pairs with faces".into()).into());
    }
    let threshold = models.threshold;
    let (far, frr) = eval::error_rates(&scored, threshold);
    let (mean, std, kfold_thresholds) = eval::kfold_accuracy(&scored, args.folds);
    let curve: Vec<RocPoint> = eval::roc(&scored);
    let (eer_threshold, eer) = eval::equal_error(&scored);
    if let Some(f) = &args.roc_csv {
        let mut csv = String::from("threshold,far,tar\n");
        for p in &curve {
            csv.push_str(&format!("{:.6},{:.6},{:.6}\n", p.threshold, p.far, p.tar));
        }
        std::fs::write(f, csv).with_context(|| format!("failed to write {}", f.display()))?;
    }
    let different = scored.iter().filter(|p| !p.same).count();
    let auc = eval::auc(&curve);
    if let Some(dir) = &args.plots {
        std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
        eval::plot::roc_png(&dir.join("roc.png"), &curve, auc, threshold, (far, 1.0 - frr))?;
        eval::plot::scores_png(&dir.join("scores.png"), &scored, threshold)?;
    }
    let tar_at_far = [1e-2f32, 1e-3]
        .into_iter()
        .map(|t| {
            let point = eval::threshold_at_far(&scored, t);
            let measurable = different as f32 * t >= 1.0;
            OperatingPoint { far_target: t, threshold: point.map(|p| p.0), tar: point.map(|p| p.1), measurable }
        })
        .collect();
    let out = EvaluateOut {
        recognizer: models.recognizer,
        pairs: scored.len(),
        same: scored.iter().filter(|p| p.same).count(),
        different,
        failed_photos,
        threshold,
        accuracy_at_threshold: eval::accuracy_at(&scored, threshold),
        far_at_threshold: far,
        frr_at_threshold: frr,
        folds: kfold_thresholds.len(),
        kfold_accuracy_mean: mean,
        kfold_accuracy_std: std,
        kfold_thresholds,
        auc,
        eer,
        eer_threshold,
        tar_at_far,
    };
    emit(g, &out, |o| {
        println!("{} pairs ({} same, {} different), recognizer {}", o.pairs, o.same, o.different, o.recognizer);
        for f in &o.failed_photos {
            println!("  left out {}: {}", f.photo.display(), f.reason);
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

#[derive(Serialize)]
struct CalibrateOut {
    source: String,
    recognizer: String,
    far_target: f32,
    threshold: f32,
    far_measured: f32,
    frr_measured: f32,
    genuine_pairs: usize,
    impostor_pairs: usize,
    smallest_measurable_far: f32,
    in_words: String,
    written: Option<PathBuf>,
}

/// "1 in 1,000"-style wording of a rate.
fn one_in(rate: f32) -> String {
    if rate <= 0.0 {
        return "none".into();
    }
    let n = (1.0 / rate).round() as u64;
    let grouped = n.to_string().as_bytes().rchunks(3).rev().map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(",");
    format!("1 in {grouped}")
}

/// `calibrate`: the most lenient threshold whose measured false-accept rate is within the target.
pub(super) fn calibrate(g: &GlobalArgs, cfg: &Config, args: CalibrateArgs) -> anyhow::Result<u8> {
    if !(0.0..1.0).contains(&args.far) {
        return Err(InputError(format!("--far {} must be in 0..1", args.far)).into());
    }
    let (scored, source, recognizer) = if args.from_gallery {
        let gallery = open_configured_gallery(cfg)?;
        (gallery.scored_pairs(), format!("gallery {}", gallery.path().display()), gallery.model().to_string())
    } else {
        let list = load_pairs(&args.source)?;
        let (scored, failures, models) = score_pairs(g, cfg, &list)?;
        for f in failures {
            tracing::warn!(photo = %f.photo.display(), reason = %f.reason, "Photo left out of calibration.");
        }
        let file = args.source.pairs.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        (scored, format!("pairs {file}"), models.recognizer)
    };
    let impostors = scored.iter().filter(|p| !p.same).count();
    let genuine = scored.len() - impostors;
    if impostors == 0 || genuine == 0 {
        return Err(InputError(format!("calibration needs genuine and impostor pairs; {source} has {genuine} and {impostors}")).into());
    }
    let (threshold, _) = eval::threshold_at_far(&scored, args.far).ok_or_else(|| InputError("no impostor pairs".into()))?;
    let (far, frr) = eval::error_rates(&scored, threshold);
    let smallest = 1.0 / impostors as f32;
    let accepted = (far * impostors as f32).round() as u64;
    let strangers = if accepted == 0 {
        format!("no stranger accepted of {impostors} impostor pairs")
    } else {
        format!("{} strangers accepted ({accepted} of {impostors} impostor pairs)", one_in(far))
    };
    let mut in_words = format!(
        "At threshold {threshold:.3}: {strangers}, target at most {}; {:.1} % of your own photos rejected ({} of {genuine} genuine pairs).",
        one_in(args.far),
        100.0 * frr,
        (frr * genuine as f32).round() as u64,
    );
    if args.far < smallest {
        in_words.push_str(&format!(
            " With {impostors} impostor pairs the smallest measurable rate is {}: the target is below what these photos can show, so the threshold is only as strict as the data.",
            one_in(smallest)
        ));
    }
    let written = match &args.write {
        Some(path) => {
            write_threshold(path, threshold)?;
            Some(path.clone())
        }
        None => None,
    };
    let out = CalibrateOut {
        source,
        recognizer,
        far_target: args.far,
        threshold,
        far_measured: far,
        frr_measured: frr,
        genuine_pairs: genuine,
        impostor_pairs: impostors,
        smallest_measurable_far: smallest,
        in_words,
        written,
    };
    emit(g, &out, |o| {
        println!("{}", o.in_words);
        match &o.written {
            Some(p) => println!("written: [matcher] threshold = {:.3} in {}", o.threshold, p.display()),
            None => println!("to use it: --threshold {:.3}, or calibrate again with --write /etc/facewatch/config.toml", o.threshold),
        }
    })?;
    Ok(EXIT_OK)
}

/// Sets `[matcher] threshold` in a TOML file, keeping everything else as it was: other keys, comments and layout
/// (`toml_edit`), the file's mode and owner (a service's `0640 root:facewatch` stays readable by the service). The
/// new text goes to a temporary file in the same directory, synced, then renamed over the old one: a crash leaves
/// the old file or the new one, never half of one.
fn write_threshold(path: &Path, threshold: f32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let (text, meta) = match std::fs::read_to_string(path) {
        Ok(text) => (text, std::fs::metadata(path).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), None),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
    };
    let mut doc: toml_edit::DocumentMut = text.parse().with_context(|| format!("failed to parse {}", path.display()))?;
    if !doc.contains_key("matcher") {
        doc["matcher"] = toml_edit::table();
    }
    let table = doc["matcher"].as_table_like_mut().ok_or_else(|| InputError(format!("{}: `matcher` is not a table", path.display())))?;
    // Round to 4 decimals so the file reads as written, not as an f32 expansion.
    table.insert("threshold", toml_edit::value((f64::from(threshold) * 1e4).round() / 1e4));
    let name = path.file_name().map_or_else(|| "config.toml".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.partial"));
    let _ = std::fs::remove_file(&tmp);
    let mode = meta.as_ref().map_or(0o600, |m| m.mode() & 0o7777);
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(doc.to_string().as_bytes())?;
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        if let Some(m) = &meta {
            if (m.uid(), m.gid()) != (f.metadata()?.uid(), f.metadata()?.gid()) {
                std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()))?;
            }
        }
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("failed to write {} (mode and owner kept from {})", tmp.display(), path.display()));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("failed to replace {}", path.display()))?;
    Ok(())
}

/// `evaluate --video CLIP --truth FILE`, with its comparison against a baseline report.
#[derive(Serialize)]
struct VideoOut {
    #[serde(flatten)]
    report: video::VideoReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<Vec<video::SegmentDiff>>,
}

/// Named shares closer than this count as unchanged in a comparison (one frame in 100).
const SHARE_TOLERANCE: f64 = 0.01;

fn evaluate_video(
    g: &GlobalArgs,
    clip: &str,
    truth_path: &Path,
    grace: f64,
    baseline: Option<&Path>,
    plots: Option<&Path>,
) -> anyhow::Result<u8> {
    if !(0.0..=60.0).contains(&grace) {
        return Err(InputError(format!("--grace {grace}: give 0 to 60 seconds")).into());
    }
    let truth = video::read_truth(truth_path)?;
    // Read the baseline first: a bad file should not cost a whole run.
    let base: Option<video::VideoReport> = match baseline {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| InputError(format!("cannot read baseline {}: {e}", p.display())))?;
            Some(
                serde_json::from_str(&text)
                    .map_err(|e| InputError(format!("{} is not an `evaluate --video --json` report: {e}", p.display())))?,
            )
        }
        None => None,
    };
    let crate::jobs::video::SaidOnVideo { frames: said, fps, models } = crate::jobs::video::said_on_video(&g.load_config()?, clip)?;
    let (segments, overall) = video::score(&truth, &said, fps, grace);
    let report = video::VideoReport {
        v: 1,
        video: clip.to_string(),
        truth: truth_path.display().to_string(),
        models: format!("{} + {} at threshold {:.3}", models.detector, models.recognizer, models.threshold),
        frames: said.len() as u64,
        fps,
        grace_s: grace,
        segments,
        overall,
    };
    if let Some(dir) = plots {
        std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
        eval::plot::timeline_png(&dir.join("timeline.png"), &truth, &said, report.frames)?;
    }
    let out = VideoOut { baseline: base.as_ref().map(|b| video::diff(b, &report, SHARE_TOLERANCE)), report };
    emit(g, &out, print_video)?;
    Ok(EXIT_OK)
}

fn share(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{:.1} %", v * 100.0))
}

fn print_video(o: &VideoOut) {
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
