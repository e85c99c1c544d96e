//! Eval: how well scores separate same-person from different-person pairs — accuracy at a threshold, the
//! threshold that maximises accuracy, and the equal-error point. Used to justify each recognizer's default
//! threshold and by the tests; the `evaluate`/`calibrate` commands build on it.

pub mod pairs;
pub mod plot;
pub mod video;

use serde::Serialize;

pub use crate::base::face::ScoredPair;
pub use pairs::{read_pairs, EvalError, LabelledPair};

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

/// One point of a ROC curve: at `threshold`, the share of different pairs accepted (FAR) and of same pairs
/// accepted (TAR = 1 − FRR).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RocPoint {
    /// Accept when score ≥ this.
    pub threshold: f32,
    /// False-accept rate.
    pub far: f32,
    /// True-accept rate.
    pub tar: f32,
}

/// The ROC curve from the strictest threshold (nothing accepted) to the most lenient (everything accepted).
pub fn roc(pairs: &[ScoredPair]) -> Vec<RocPoint> {
    let mut c = candidates(pairs);
    c.reverse();
    c.into_iter()
        .map(|threshold| {
            let (far, frr) = error_rates(pairs, threshold);
            RocPoint { threshold, far, tar: 1.0 - frr }
        })
        .collect()
}

/// Area under the ROC curve (trapezoids): the chance that a random same pair outscores a random different one.
pub fn auc(curve: &[RocPoint]) -> f32 {
    curve.windows(2).map(|w| (w[1].far - w[0].far) * (w[0].tar + w[1].tar) / 2.0).sum()
}

/// The most lenient threshold whose false-accept rate is at most `far` (computed on the different pairs), and
/// the true-accept rate there. `None` when there are no different pairs to measure a rate on.
pub fn threshold_at_far(pairs: &[ScoredPair], far: f32) -> Option<(f32, f32)> {
    if !pairs.iter().any(|p| !p.same) {
        return None;
    }
    roc(pairs).into_iter().take_while(|p| p.far <= far).last().map(|p| (p.threshold, p.tar))
}

/// Accuracy under k-fold cross-validation (the LFW protocol): for each fold, the threshold that maximises
/// accuracy on the other folds is applied to it. Folds are contiguous blocks of the list, as in LFW's
/// `pairs.txt` (ten sets, each its same pairs then its different pairs). Returns the mean and standard
/// deviation over folds and each fold's threshold.
pub fn kfold_accuracy(pairs: &[ScoredPair], k: usize) -> (f32, f32, Vec<f32>) {
    let k = k.clamp(2, pairs.len().max(2));
    let mut accs = Vec::with_capacity(k);
    let mut thresholds = Vec::with_capacity(k);
    for fold in 0..k {
        let in_fold = |i: usize| i * k / pairs.len() == fold;
        let test: Vec<ScoredPair> = pairs.iter().enumerate().filter(|(i, _)| in_fold(*i)).map(|(_, p)| *p).collect();
        let train: Vec<ScoredPair> = pairs.iter().enumerate().filter(|(i, _)| !in_fold(*i)).map(|(_, p)| *p).collect();
        if test.is_empty() || train.is_empty() {
            continue;
        }
        let (t, _) = best_threshold(&train);
        accs.push(accuracy_at(&test, t));
        thresholds.push(t);
    }
    let n = accs.len().max(1) as f32;
    let mean = accs.iter().sum::<f32>() / n;
    let var = accs.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / n;
    (mean, var.sqrt(), thresholds)
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
    fn roc_auc_and_far_operating_points() {
        let pairs = [p(0.9, true), p(0.8, true), p(0.6, false), p(0.4, true), p(0.2, false), p(0.1, false)];
        let curve = roc(&pairs);
        assert_eq!((curve[0].far, curve[0].tar), (0.0, 0.0));
        let last = curve.last().expect("points");
        assert_eq!((last.far, last.tar), (1.0, 1.0));
        // Of the 3 × 3 same/different orderings, one is wrong (0.6 different above 0.4 same): AUC = 8/9.
        assert!((auc(&curve) - 8.0 / 9.0).abs() < 1e-6, "{}", auc(&curve));
        let (t, tar) = threshold_at_far(&pairs, 0.0).expect("different pairs exist");
        assert!(t > 0.6 && t <= 0.8, "{t}");
        assert!((tar - 2.0 / 3.0).abs() < 1e-6);
        assert!(threshold_at_far(&[p(0.5, true)], 0.01).is_none());
    }

    #[test]
    fn kfold_uses_held_out_thresholds() {
        // Ten blocks of two same then two different pairs, LFW style.
        let pairs: Vec<ScoredPair> = (0..40).map(|i| if i % 4 < 2 { p(0.7, true) } else { p(0.2, false) }).collect();
        let (mean, std, ts) = kfold_accuracy(&pairs, 10);
        assert_eq!((mean, std), (1.0, 0.0));
        assert_eq!(ts.len(), 10);
        assert!(ts.iter().all(|t| *t > 0.2 && *t < 0.7));
    }
}
