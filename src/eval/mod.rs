//! Eval: how well scores separate same-person from different-person pairs — accuracy at a threshold, the
//! threshold that maximises accuracy, and the equal-error point. Used to justify each recognizer's default
//! threshold and by the tests; the `evaluate`/`calibrate` commands build on it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A scored pair and whether it is truly the same person.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoredPair {
    /// Cosine similarity.
    pub score: f32,
    /// Ground truth.
    pub same: bool,
}

/// Errors reading pair lists.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The pair file could not be read.
    #[error("failed to read pairs {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not `file_a,file_b,Yes|No`.
    #[error("{path}:{line}: expected `file_a,file_b,Yes|No`, got `{text}`")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A pair names a photo that is not under the photo folder.
    #[error("{path}:{line}: photo `{name}` not found under {root}")]
    MissingPhoto {
        /// The pair file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The photo's name.
        name: String,
        /// Where it was looked for.
        root: PathBuf,
    },
}

/// A labelled pair of photo paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledPair {
    /// First photo.
    pub a: PathBuf,
    /// Second photo.
    pub b: PathBuf,
    /// Same person?
    pub same: bool,
}

/// Reads a deepface-style CSV (`file_x,file_y,Decision` with Yes/No); photo names are looked up by file name
/// anywhere under `photos` (one folder per person).
pub fn read_csv_pairs(path: &Path, photos: &Path) -> Result<Vec<LabelledPair>, EvalError> {
    let io = |source| EvalError::Io { path: path.into(), source };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut by_name: HashMap<String, PathBuf> = HashMap::new();
    for dir in std::fs::read_dir(photos).map_err(io)?.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()) {
        for f in std::fs::read_dir(&dir).map_err(io)?.filter_map(Result::ok).map(|e| e.path()) {
            if let Some(name) = f.file_name().and_then(|n| n.to_str()) {
                by_name.insert(name.to_string(), f.clone());
            }
        }
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let same = match fields.as_slice() {
            [_, _, d] if d.eq_ignore_ascii_case("yes") => true,
            [_, _, d] if d.eq_ignore_ascii_case("no") => false,
            _ => return Err(EvalError::Format { path: path.into(), line: i + 1, text: line.into() }),
        };
        let find = |name: &str| {
            by_name.get(name).cloned().ok_or_else(|| EvalError::MissingPhoto {
                path: path.into(),
                line: i + 1,
                name: name.into(),
                root: photos.into(),
            })
        };
        out.push(LabelledPair { a: find(fields[0])?, b: find(fields[1])?, same });
    }
    Ok(out)
}

/// Fraction of pairs classified right when "same" means `score >= threshold`.
pub fn accuracy_at(pairs: &[ScoredPair], threshold: f32) -> f32 {
    if pairs.is_empty() {
        return 0.0;
    }
    pairs.iter().filter(|p| (p.score >= threshold) == p.same).count() as f32 / pairs.len() as f32
}

/// False-accept rate (different pairs accepted) and false-reject rate (same pairs rejected) at a threshold.
pub fn error_rates(pairs: &[ScoredPair], threshold: f32) -> (f32, f32) {
    let (mut fa, mut diff, mut fr, mut same) = (0usize, 0usize, 0usize, 0usize);
    for p in pairs {
        if p.same {
            same += 1;
            fr += usize::from(p.score < threshold);
        } else {
            diff += 1;
            fa += usize::from(p.score >= threshold);
        }
    }
    (fa as f32 / diff.max(1) as f32, fr as f32 / same.max(1) as f32)
}

/// Candidate thresholds: midpoints between consecutive distinct scores, plus both ends.
fn candidates(pairs: &[ScoredPair]) -> Vec<f32> {
    let mut s: Vec<f32> = pairs.iter().map(|p| p.score).collect();
    s.sort_by(f32::total_cmp);
    s.dedup();
    let mut c = Vec::with_capacity(s.len() + 1);
    c.push(s.first().map_or(0.0, |v| v - 1e-3));
    c.extend(s.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    c.push(s.last().map_or(0.0, |v| v + 1e-3));
    c
}

/// The threshold with the highest accuracy (the middle of the best plateau) and that accuracy.
pub fn best_threshold(pairs: &[ScoredPair]) -> (f32, f32) {
    let c = candidates(pairs);
    let acc: Vec<f32> = c.iter().map(|&t| accuracy_at(pairs, t)).collect();
    let best = acc.iter().copied().fold(0.0f32, f32::max);
    let plateau: Vec<f32> = c.iter().zip(&acc).filter(|(_, &a)| a == best).map(|(&t, _)| t).collect();
    (plateau[plateau.len() / 2], best)
}

/// The equal-error point: the threshold where false-accept and false-reject rates are closest, and that rate.
pub fn equal_error(pairs: &[ScoredPair]) -> (f32, f32) {
    candidates(pairs)
        .into_iter()
        .map(|t| {
            let (fa, fr) = error_rates(pairs, t);
            (t, (fa - fr).abs(), (fa + fr) / 2.0)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.2.total_cmp(&b.2)))
        .map_or((0.0, 0.0), |(t, _, eer)| (t, eer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(score: f32, same: bool) -> ScoredPair {
        ScoredPair { score, same }
    }

    #[test]
    fn separable_scores_give_full_accuracy_between_the_classes() {
        let pairs = [p(0.9, true), p(0.7, true), p(0.3, false), p(0.1, false)];
        let (t, acc) = best_threshold(&pairs);
        assert_eq!(acc, 1.0);
        assert!(t > 0.3 && t < 0.7, "{t}");
        let (_, eer) = equal_error(&pairs);
        assert_eq!(eer, 0.0);
    }

    #[test]
    fn overlap_is_counted() {
        let pairs = [p(0.9, true), p(0.2, true), p(0.5, false), p(0.1, false)];
        assert_eq!(accuracy_at(&pairs, 0.4), 0.5);
        assert_eq!(error_rates(&pairs, 0.4), (0.5, 0.5));
        assert_eq!(best_threshold(&pairs).1, 0.75);
    }

    #[test]
    fn csv_pairs_resolve_names_and_reject_bad_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("p1")).expect("dir");
        std::fs::write(dir.path().join("p1/a.jpg"), b"x").expect("write");
        std::fs::write(dir.path().join("p1/b.jpg"), b"x").expect("write");
        let csv = dir.path().join("pairs.csv");
        std::fs::write(&csv, "file_x,file_y,Decision\na.jpg,b.jpg,Yes\r\nb.jpg,a.jpg,No \n").expect("write");
        let pairs = read_csv_pairs(&csv, dir.path()).expect("pairs");
        assert_eq!(pairs.len(), 2);
        assert!(pairs[0].same && !pairs[1].same);
        std::fs::write(&csv, "h\na.jpg,zz.jpg,Yes\n").expect("write");
        assert!(matches!(read_csv_pairs(&csv, dir.path()), Err(EvalError::MissingPhoto { .. })));
        std::fs::write(&csv, "h\na.jpg,b.jpg,Maybe\n").expect("write");
        assert!(matches!(read_csv_pairs(&csv, dir.path()), Err(EvalError::Format { line: 2, .. })));
    }
}
