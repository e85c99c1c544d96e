//! `evaluate --people DIR [--strangers DIR]`: identification on the user's own folders.
//!
//! Closed set: each person's last `holdout` photos (name order) are identified against an in-memory gallery of
//! their other photos; top-1 and top-5 count the true person among the best candidates regardless of the
//! threshold, and "identified" requires the top-1 to reach it. The confusion matrix has one row per person and
//! one column per predicted person plus `unknown`. Open set: every face in the strangers' photos is matched
//! against a gallery of all the people's photos; a face reaching the threshold is a false accept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::photos::engine;
use super::{emit, progress, GlobalArgs, InputError, EXIT_OK};
use crate::base::Embedding;
use crate::config::Config;
use crate::folders::{person_dirs, photos_in, photos_under};
use crate::gallery::{Gallery, NewEmbedding};

#[derive(Serialize)]
struct Miss {
    photo: PathBuf,
    person: String,
    predicted: String,
    score: f32,
}

#[derive(Serialize)]
struct FalseAccept {
    photo: PathBuf,
    matched: String,
    score: f32,
}

#[derive(Serialize)]
struct OpenSet {
    strangers_dir: PathBuf,
    faces: usize,
    false_accepts: usize,
    false_accept_rate: f32,
    accepted: Vec<FalseAccept>,
}

impl OpenSet {
    /// The human summary: how many strangers were accepted, and as whom.
    fn print(&self, against: &str) {
        println!(
            "open set: {} stranger faces against {against}, {} accepted as someone ({:.2} %)",
            self.faces,
            self.false_accepts,
            100.0 * self.false_accept_rate
        );
        for a in &self.accepted {
            println!("  {} → {} ({:.3})", a.photo.display(), a.matched, a.score);
        }
    }
}

#[derive(Serialize)]
struct IdentificationOut {
    recognizer: String,
    threshold: f32,
    persons: usize,
    probes: usize,
    top1: f32,
    top5: f32,
    identified_at_threshold: f32,
    /// Rows: true person; columns: `labels` (predicted person, then "unknown").
    labels: Vec<String>,
    confusion: Vec<Vec<usize>>,
    misses: Vec<Miss>,
    skipped_photos: usize,
    open_set: Option<OpenSet>,
}

/// A photo's one face, as much of it as enrolment needs.
struct Sample {
    photo: PathBuf,
    embedding: Embedding,
    det_score: f32,
}

impl Sample {
    fn new_embedding(&self) -> NewEmbedding {
        // In this throw-away in-memory gallery the path is a good enough de-duplication key; hashing every
        // photo again would only cost time.
        let path = self.photo.display().to_string();
        NewEmbedding { embedding: self.embedding.clone(), source_path: path.clone(), file_sha256: path, det_score: self.det_score }
    }
}

/// Runs identification (and the open set when `strangers` is given).
pub(super) fn evaluate(
    g: &GlobalArgs,
    cfg: &Config,
    people: &Path,
    holdout: usize,
    strangers: Option<&Path>,
    plots: Option<&Path>,
) -> anyhow::Result<u8> {
    let mut engine = engine(cfg)?;
    let info = engine.info().clone();
    let mut closed = Gallery::in_memory(&info.recognizer, info.dim, cfg.matcher.exact_search_max)?;
    let mut everyone = Gallery::in_memory(&info.recognizer, info.dim, cfg.matcher.exact_search_max)?;
    let dirs = person_dirs(people)?;
    let total: usize = dirs.iter().map(|d| photos_in(d).map_or(0, |p| p.len())).sum();
    let bar = progress(g, "embedding", total);
    let mut probes: Vec<(String, Sample)> = Vec::new();
    let mut skipped = 0;
    for dir in &dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut faces = Vec::new();
        for p in photos_in(dir)? {
            // One face per photo, as enrolment requires.
            match engine.single_face(&p) {
                Ok(f) => faces.push(Sample { photo: p, embedding: f.embedding, det_score: f.detection.score }),
                Err(_) => skipped += 1,
            }
            bar.inc(1);
        }
        everyone.enroll(&name, &faces.iter().map(Sample::new_embedding).collect::<Vec<_>>())?;
        if faces.len() <= holdout {
            continue;
        }
        let held = faces.split_off(faces.len() - holdout);
        closed.enroll(&name, &faces.iter().map(Sample::new_embedding).collect::<Vec<_>>())?;
        probes.extend(held.into_iter().map(|s| (name.clone(), s)));
    }
    bar.finish_and_clear();
    if probes.is_empty() {
        return Err(InputError(format!("no person under {} has more than {holdout} photo(s) with one face", people.display())).into());
    }
    let labels: Vec<String> = closed.persons()?.into_iter().map(|p| p.name).chain(std::iter::once("unknown".to_string())).collect();
    let col: BTreeMap<&str, usize> = labels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
    let mut confusion = vec![vec![0usize; labels.len()]; labels.len() - 1];
    let (mut top1, mut top5, mut identified) = (0usize, 0usize, 0usize);
    let mut misses = Vec::new();
    for (person, sample) in &probes {
        let cands = closed.search(&sample.embedding, 5);
        let best = &cands[0];
        top1 += usize::from(&best.name == person);
        top5 += usize::from(cands.iter().any(|c| &c.name == person));
        let predicted = if best.score >= info.threshold { best.name.as_str() } else { "unknown" };
        identified += usize::from(predicted == person);
        if let (Some(&r), Some(&c)) = (col.get(person.as_str()), col.get(predicted)) {
            confusion[r][c] += 1;
        }
        if predicted != person {
            misses.push(Miss { photo: sample.photo.clone(), person: person.clone(), predicted: predicted.into(), score: best.score });
        }
    }
    if let Some(dir) = plots {
        std::fs::create_dir_all(dir)?;
        crate::eval::plot::confusion_png(&dir.join("confusion.png"), &labels, &confusion)?;
    }
    let open_set = strangers.map(|dir| open_set(&mut engine, &everyone, dir, info.threshold)).transpose()?;
    let n = probes.len() as f32;
    let out = IdentificationOut {
        recognizer: info.recognizer,
        threshold: info.threshold,
        persons: labels.len() - 1,
        probes: probes.len(),
        top1: top1 as f32 / n,
        top5: top5 as f32 / n,
        identified_at_threshold: identified as f32 / n,
        labels,
        confusion,
        misses,
        skipped_photos: skipped,
        open_set,
    };
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
            println!("  {} ({}) → {} ({:.3})", m.photo.display(), m.person, m.predicted, m.score);
        }
        if let Some(s) = &o.open_set {
            s.print("a gallery of the people above");
        }
    })?;
    Ok(EXIT_OK)
}

/// `evaluate --strangers DIR` alone: the open-set false-accept rate against the configured gallery.
pub(super) fn strangers_vs_gallery(g: &GlobalArgs, cfg: &Config, strangers: &Path) -> anyhow::Result<u8> {
    let mut engine = engine(cfg)?;
    let gallery = super::photos::open_existing_gallery(cfg, engine.info().dim)?;
    if gallery.is_empty() {
        return Err(InputError(format!("the gallery {} is empty: enroll people first", gallery.path().display())).into());
    }
    let threshold = engine.info().threshold;
    let out = open_set(&mut engine, &gallery, strangers, threshold)?;
    emit(g, &out, |s| s.print(&gallery.path().display().to_string()))?;
    Ok(EXIT_OK)
}

fn open_set(engine: &mut crate::Engine, gallery: &Gallery, dir: &Path, threshold: f32) -> anyhow::Result<OpenSet> {
    let mut faces = 0;
    let mut accepted = Vec::new();
    for photo in photos_under(dir)? {
        let Ok(frame) = engine.load(&photo) else { continue };
        for face in engine.faces(&frame)? {
            faces += 1;
            if let Some(best) = gallery.search(&face.embedding, 1).into_iter().next().filter(|c| c.score >= threshold) {
                accepted.push(FalseAccept { photo: photo.clone(), matched: best.name, score: best.score });
            }
        }
    }
    Ok(OpenSet {
        strangers_dir: dir.into(),
        faces,
        false_accepts: accepted.len(),
        false_accept_rate: accepted.len() as f32 / faces.max(1) as f32,
        accepted,
    })
}
