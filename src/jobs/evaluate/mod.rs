//! The measuring jobs: accuracy on a pair list (`evaluate --pairs`), the threshold for a false-accept target
//! (`calibrate`) and naming people on a video against its truth (`evaluate --video`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub mod identification;
pub mod video;

use super::{JobError, Progress};
use crate::base::Embedding;
use crate::config::Config;
use crate::eval::{self, video as truth_video, LabelledPair, RocPoint, ScoredPair};
use crate::stills::Engine;
use video::{said_on_video, SaidOnVideo};

/// A photo left out of the scoring, and why.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// Photo.
    #[serde(rename = "path")]
    pub photo: PathBuf,
    /// Why the face is unknown.
    pub reason: String,
}

/// The threshold and true-accept rate at a target false-accept rate.
#[derive(Debug, Serialize)]
pub struct OperatingPoint {
    /// Far target.
    pub far_target: f32,
    /// Threshold in force.
    pub threshold: Option<f32>,
    /// Tar.
    pub tar: Option<f32>,
    /// False when there are fewer than 1/far_target different pairs: the rate cannot be told from zero.
    pub measurable: bool,
}

/// Accuracy on a pair list.
#[derive(Debug, Serialize)]
pub struct EvaluateOut {
    /// Recognizer.
    pub recognizer: String,
    /// Pairs.
    pub pairs: usize,
    /// Whether the score reaches the threshold (for the verdict: the decision).
    pub same: usize,
    /// Different.
    pub different: usize,
    /// Failed photos.
    pub failed_photos: Vec<Failure>,
    /// Threshold in force.
    pub threshold: f32,
    /// Accuracy at threshold.
    pub accuracy_at_threshold: f32,
    /// Far at threshold.
    pub far_at_threshold: f32,
    /// Frr at threshold.
    pub frr_at_threshold: f32,
    /// Folds.
    pub folds: usize,
    /// Kfold accuracy mean.
    pub kfold_accuracy_mean: f32,
    /// Kfold accuracy std.
    pub kfold_accuracy_std: f32,
    /// Kfold thresholds.
    pub kfold_thresholds: Vec<f32>,
    /// Auc.
    pub auc: f32,
    /// Eer.
    pub eer: f32,
    /// Eer threshold.
    pub eer_threshold: f32,
    /// Tar at far.
    pub tar_at_far: Vec<OperatingPoint>,
}

/// The threshold chosen for a false-accept target, and what it means.
#[derive(Debug, Serialize)]
pub struct CalibrateOut {
    /// Source.
    pub source: String,
    /// Recognizer.
    pub recognizer: String,
    /// Far target.
    pub far_target: f32,
    /// Threshold in force.
    pub threshold: f32,
    /// Far measured.
    pub far_measured: f32,
    /// Frr measured.
    pub frr_measured: f32,
    /// Genuine pairs.
    pub genuine_pairs: usize,
    /// Impostor pairs.
    pub impostor_pairs: usize,
    /// Smallest measurable far.
    pub smallest_measurable_far: f32,
    /// In words.
    pub in_words: String,
    /// Written.
    pub written: Option<PathBuf>,
}

/// `evaluate --video`: the report, and its comparison with a baseline.
#[derive(Debug, Serialize)]
pub struct VideoOut {
    /// Report.
    #[serde(flatten)]
    pub report: truth_video::VideoReport,
    /// The bare models on the same frames.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Vec<truth_video::SegmentDiff>>,
}

/// Named shares closer than this count as unchanged in a comparison (one frame in 100).
const SHARE_TOLERANCE: f64 = 0.01;

/// Scores every pair by the cosine of each photo's largest face; photos that fail are reported, and their
/// pairs left out.
pub fn score_pairs(engine: &mut Engine, list: &[LabelledPair], progress: &mut dyn FnMut(Progress)) -> (Vec<ScoredPair>, Vec<Failure>) {
    progress(Progress::Total(list.len()));
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
        progress(Progress::Done);
    }
    let scored = list
        .iter()
        .filter_map(|p| match (&cache[p.a.as_path()], &cache[p.b.as_path()]) {
            (Some(a), Some(b)) => Some(ScoredPair { score: a.cosine(b), same: p.same }),
            _ => None,
        })
        .collect();
    (scored, failures)
}

/// What `evaluate --pairs` writes besides its report.
#[derive(Debug, Default)]
pub struct PairOutputs<'a> {
    /// Folds of the cross-validated accuracy.
    pub folds: usize,
    /// The ROC curve as CSV.
    pub roc_csv: Option<&'a Path>,
    /// `roc.png` and `scores.png` here.
    pub plots: Option<&'a Path>,
}

/// Accuracy on a pair list (at the threshold and `folds`-fold), ROC/AUC, EER, TAR at FAR 1e-2 and 1e-3.
pub fn pairs(
    engine: &mut Engine,
    list: &[LabelledPair],
    outputs: &PairOutputs<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<EvaluateOut, JobError> {
    let (scored, failed_photos) = score_pairs(engine, list, progress);
    let models = engine.info().clone();
    if !scored.iter().any(|p| p.same) || !scored.iter().any(|p| !p.same) {
        return Err(JobError::Input("evaluation needs both same-person and different-person pairs with faces".into()));
    }
    let threshold = models.threshold;
    let (far, frr) = eval::error_rates(&scored, threshold);
    let (mean, std, kfold_thresholds) = eval::kfold_accuracy(&scored, outputs.folds);
    let curve: Vec<RocPoint> = eval::roc(&scored);
    let (eer_threshold, eer) = eval::equal_error(&scored);
    if let Some(f) = outputs.roc_csv {
        let mut csv = String::from("threshold,far,tar\n");
        for p in &curve {
            csv.push_str(&format!("{:.6},{:.6},{:.6}\n", p.threshold, p.far, p.tar));
        }
        std::fs::write(f, csv).map_err(JobError::file("write", f))?;
    }
    let different = scored.iter().filter(|p| !p.same).count();
    let auc = eval::auc(&curve);
    if let Some(dir) = outputs.plots {
        std::fs::create_dir_all(dir).map_err(JobError::file("create", dir))?;
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
    Ok(out)
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

/// The most lenient threshold whose measured false-accept rate on `from` (scored pairs, where they come from,
/// the recognizer) is within `far_target`, said in words; with `write`, set as `[matcher] threshold` there.
pub fn calibrate(from: (Vec<ScoredPair>, String, String), far_target: f32, write: Option<&Path>) -> Result<CalibrateOut, JobError> {
    if !(0.0..1.0).contains(&far_target) {
        return Err(JobError::Input(format!("--far {far_target} must be in 0..1")));
    }
    let (scored, source, recognizer) = from;
    let impostors = scored.iter().filter(|p| !p.same).count();
    let genuine = scored.len() - impostors;
    if impostors == 0 || genuine == 0 {
        return Err(JobError::Input(format!("calibration needs genuine and impostor pairs; {source} has {genuine} and {impostors}")));
    }
    let (threshold, _) = eval::threshold_at_far(&scored, far_target).ok_or_else(|| JobError::Input("no impostor pairs".into()))?;
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
        one_in(far_target),
        100.0 * frr,
        (frr * genuine as f32).round() as u64,
    );
    if far_target < smallest {
        in_words.push_str(&format!(
            " With {impostors} impostor pairs the smallest measurable rate is {}: the target is below what these photos can show, so the threshold is only as strict as the data.",
            one_in(smallest)
        ));
    }
    let written = match write {
        Some(path) => {
            write_threshold(path, threshold)?;
            Some(path.to_path_buf())
        }
        None => None,
    };
    let out = CalibrateOut {
        source,
        recognizer,
        far_target,
        threshold,
        far_measured: far,
        frr_measured: frr,
        genuine_pairs: genuine,
        impostor_pairs: impostors,
        smallest_measurable_far: smallest,
        in_words,
        written,
    };
    Ok(out)
}

/// Sets `[matcher] threshold` in a TOML file, keeping everything else as it was: other keys, comments and layout
/// (`toml_edit`), the file's mode and owner (a service's `0640 root:facewatch` stays readable by the service). The
/// new text goes to a temporary file in the same directory, synced, then renamed over the old one: a crash leaves
/// the old file or the new one, never half of one.
pub fn write_threshold(path: &Path, threshold: f32) -> Result<(), JobError> {
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let (text, meta) = match std::fs::read_to_string(path) {
        Ok(text) => (text, std::fs::metadata(path).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), None),
        Err(e) => return Err(JobError::file("read", path)(e)),
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| JobError::Input(format!("failed to parse {}: {e}", path.display())))?;
    if !doc.contains_key("matcher") {
        doc["matcher"] = toml_edit::table();
    }
    let table =
        doc["matcher"].as_table_like_mut().ok_or_else(|| JobError::Input(format!("{}: `matcher` is not a table", path.display())))?;
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
        return Err(JobError::file("write (mode and owner kept from the old file)", &tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(JobError::file("replace", path))?;
    Ok(())
}

/// `evaluate --video CLIP --truth FILE`: what the pipeline says on every frame, scored against the truth (after
/// `grace` seconds of each appearance), compared with a `baseline` report; with `plots`, `timeline.png` there.
pub fn video(
    cfg: &Config,
    clip: &str,
    truth_path: &Path,
    grace: f64,
    baseline: Option<&Path>,
    plots: Option<&Path>,
) -> Result<VideoOut, JobError> {
    if !(0.0..=60.0).contains(&grace) {
        return Err(JobError::Input(format!("--grace {grace}: give 0 to 60 seconds")));
    }
    let truth = truth_video::read_truth(truth_path)?;
    // Read the baseline first: a bad file should not cost a whole run.
    let base: Option<truth_video::VideoReport> = match baseline {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| JobError::Input(format!("cannot read baseline {}: {e}", p.display())))?;
            Some(
                serde_json::from_str(&text)
                    .map_err(|e| JobError::Input(format!("{} is not an `evaluate --video --json` report: {e}", p.display())))?,
            )
        }
        None => None,
    };
    let SaidOnVideo { frames: said, fps, models } = said_on_video(cfg, clip)?;
    let (segments, overall) = truth_video::score(&truth, &said, fps, grace);
    let report = truth_video::VideoReport {
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
        std::fs::create_dir_all(dir).map_err(JobError::file("create", dir))?;
        eval::plot::timeline_png(&dir.join("timeline.png"), &truth, &said, report.frames)?;
    }
    Ok(VideoOut { baseline: base.as_ref().map(|b| truth_video::diff(b, &report, SHARE_TOLERANCE)), report })
}
