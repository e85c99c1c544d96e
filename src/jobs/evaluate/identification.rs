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

use crate::base::{face, Embedding, UNKNOWN};
use crate::folders::{person_dirs, photos_in, photos_under};
use crate::gallery::{Gallery, NewEmbedding};
use crate::jobs::{JobError, Progress};
use crate::stills::Engine;

/// A held-out photo not identified as its person.
#[derive(Debug, Serialize)]
pub struct Miss {
    /// The photo.
    #[serde(rename = "path")]
    pub photo: PathBuf,
    /// The true person.
    pub person: String,
    /// What was said.
    pub predicted: String,
    /// Cosine similarity (for a detection: detector confidence).
    pub score: f32,
}

/// A stranger's face accepted as someone.
#[derive(Debug, Serialize)]
pub struct FalseAccept {
    /// The photo.
    #[serde(rename = "path")]
    pub photo: PathBuf,
    /// The person it was taken for.
    pub matched: String,
    /// Cosine similarity (for a detection: detector confidence).
    pub score: f32,
}

/// Strangers against a gallery: how many were accepted as someone.
#[derive(Debug, Serialize)]
pub struct OpenSet {
    /// The strangers' folder.
    pub strangers_dir: PathBuf,
    /// Its faces.
    pub faces: usize,
    /// Faces accepted as someone.
    pub false_accepts: usize,
    /// `false_accepts / faces`.
    pub false_accept_rate: f32,
    /// Each accepted face.
    pub accepted: Vec<FalseAccept>,
}

/// Identification on the user's own folders (closed set, and the open set with strangers).
#[derive(Debug, Serialize)]
pub struct IdentificationOut {
    /// Recognizer in use.
    pub recognizer: String,
    /// Threshold in force.
    pub threshold: f32,
    /// Persons with held-out photos.
    pub persons: usize,
    /// Held-out photos identified.
    pub probes: usize,
    /// Share whose best candidate is the person (any score).
    pub top1: f32,
    /// Share with the person among the best five.
    pub top5: f32,
    /// Share named right at the threshold.
    pub identified_at_threshold: f32,
    /// Rows: true person; columns: `labels` (predicted person, then "unknown").
    pub labels: Vec<String>,
    /// Counts per true person (row) and predicted label (column).
    pub confusion: Vec<Vec<usize>>,
    /// Held-out photos not named right.
    pub misses: Vec<Miss>,
    /// Photos without exactly one face.
    pub skipped_photos: usize,
    /// Strangers, when given.
    pub open_set: Option<OpenSet>,
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
        NewEmbedding {
            embedding: self.embedding.clone(),
            source_path: path.clone(),
            file_sha256: path,
            det_score: self.det_score,
            crop: None,
        }
    }
}

/// Identification on `people` (one folder per person): each person's last `holdout` photos against the others,
/// and with `strangers` the open set; with `plots`, `confusion.png` there. `progress` is told how many photos
/// there are, then each one done.
pub fn identification(
    engine: &mut Engine,
    exact_search_max: usize,
    people: &Path,
    holdout: usize,
    strangers: Option<&Path>,
    plots: Option<&Path>,
    progress: &mut dyn FnMut(Progress),
) -> Result<IdentificationOut, JobError> {
    let info = engine.info().clone();
    let mut closed = Gallery::in_memory(&info.recognizer, info.dim, exact_search_max)?;
    let mut everyone = Gallery::in_memory(&info.recognizer, info.dim, exact_search_max)?;
    let listed = person_dirs(people)?
        .iter()
        .map(|d| Ok((crate::folders::person_name(d), photos_in(d)?)))
        .collect::<Result<Vec<_>, crate::folders::FolderError>>()?;
    progress(Progress::Total(listed.iter().map(|(_, photos)| photos.len()).sum()));
    let mut probes: Vec<(String, Sample)> = Vec::new();
    let mut skipped = 0;
    for (name, photos) in listed {
        let mut faces = Vec::new();
        for p in photos {
            // One face per photo, as enrolment requires.
            match engine.single_face(&p) {
                Ok(f) => faces.push(Sample { photo: p, embedding: f.embedding, det_score: f.detection.score }),
                Err(_) => skipped += 1,
            }
            progress(Progress::Done);
        }
        everyone.enroll(&name, &faces.iter().map(Sample::new_embedding).collect::<Vec<_>>())?;
        if faces.len() <= holdout {
            continue;
        }
        let held = faces.split_off(faces.len() - holdout);
        closed.enroll(&name, &faces.iter().map(Sample::new_embedding).collect::<Vec<_>>())?;
        probes.extend(held.into_iter().map(|s| (name.clone(), s)));
    }
    if probes.is_empty() {
        return Err(JobError::Input(format!("no person under {} has more than {holdout} photo(s) with one face", people.display())));
    }
    let labels: Vec<String> = closed.persons()?.into_iter().map(|p| p.name).chain(std::iter::once(UNKNOWN.to_string())).collect();
    let col: BTreeMap<&str, usize> = labels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
    let mut confusion = vec![vec![0usize; labels.len()]; labels.len() - 1];
    let (mut top1, mut top5, mut identified) = (0usize, 0usize, 0usize);
    let mut misses = Vec::new();
    for (person, sample) in &probes {
        let cands = closed.search(&sample.embedding, 5);
        let best = &cands[0];
        top1 += usize::from(&best.name == person);
        top5 += usize::from(cands.iter().any(|c| &c.name == person));
        let predicted = face::decide(&cands, info.threshold).map_or(UNKNOWN, |c| c.name.as_str());
        identified += usize::from(predicted == person);
        if let (Some(&r), Some(&c)) = (col.get(person.as_str()), col.get(predicted)) {
            confusion[r][c] += 1;
        }
        if predicted != person {
            misses.push(Miss { photo: sample.photo.clone(), person: person.clone(), predicted: predicted.into(), score: best.score });
        }
    }
    if let Some(dir) = plots {
        std::fs::create_dir_all(dir).map_err(JobError::file("create", dir))?;
        crate::eval::plot::confusion_png(&dir.join("confusion.png"), &labels, &confusion)?;
    }
    let open_set = strangers.map(|dir| open_set(engine, &everyone, dir, info.threshold)).transpose()?;
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
    Ok(out)
}

/// Every face in the photos under `dir` against `gallery`: a face reaching `threshold` is a false accept.
pub fn open_set(engine: &mut Engine, gallery: &Gallery, dir: &Path, threshold: f32) -> Result<OpenSet, JobError> {
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
