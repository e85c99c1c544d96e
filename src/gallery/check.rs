//! Gallery hygiene: photos that look like someone else (likely mislabels), photos unlike the rest of their own
//! person (outliers: another person in the folder, a bad detection, a very different age), and pairs of people
//! whose faces the model finds close (likely confusions), each with the scores that justify it.
//!
//! Every photo is compared with each person's centroid (the normalised mean of their embeddings); its own
//! person's centroid leaves the photo out, so one photo cannot vouch for itself.

use serde::Serialize;

use super::Gallery;
use crate::base::face::{dot, Embedding};

/// A photo that matches another person better than its own.
#[derive(Debug, Clone, Serialize)]
pub struct Mislabel {
    /// The photo.
    #[serde(rename = "path")]
    pub photo: String,
    /// The person it is enrolled under.
    pub enrolled_as: String,
    /// Similarity to its own person's other photos (centroid); `None` when it is their only photo.
    pub own_score: Option<f32>,
    /// The person it looks like.
    pub looks_like: String,
    /// Similarity to that person's centroid.
    pub score: f32,
}

/// A photo that does not match its own person's other photos.
#[derive(Debug, Clone, Serialize)]
pub struct Outlier {
    /// The photo.
    #[serde(rename = "path")]
    pub photo: String,
    /// Its person.
    pub person: String,
    /// Similarity to the person's other photos (centroid).
    pub own_score: f32,
}

/// Two people the model finds close.
#[derive(Debug, Clone, Serialize)]
pub struct ClosePair {
    /// One person.
    pub a: String,
    /// The other.
    pub b: String,
    /// Cosine similarity of their centroids.
    pub score: f32,
}

/// The findings of a check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The threshold the findings are judged against.
    pub threshold: f32,
    /// Photos scoring at least the threshold against another person, and more than against their own.
    pub mislabels: Vec<Mislabel>,
    /// Photos scoring below the threshold against their own person (and not mislabels).
    pub outliers: Vec<Outlier>,
    /// Person pairs whose centroids score at least `close_pair_score`.
    pub close_pairs: Vec<ClosePair>,
    /// The level for close pairs.
    pub close_pair_score: f32,
}

/// Normalised mean of `vectors` (the sum alone has the same direction).
fn centroid<'a>(vectors: impl Iterator<Item = &'a [f32]>, dim: usize) -> Option<Embedding> {
    let mut sum = vec![0.0f32; dim];
    for v in vectors {
        sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
    }
    Embedding::from_raw(sum)
}

impl Gallery {
    /// Checks every enrolled photo against every person; `threshold` is the matcher's, and person pairs are
    /// reported when their centroids reach `close_pair_score`.
    pub fn check(&self, threshold: f32, close_pair_score: f32) -> CheckReport {
        let n_persons = self.persons.len();
        let mut sums = vec![vec![0.0f32; self.store.dim()]; n_persons];
        let mut counts = vec![0usize; n_persons];
        for e in &self.entries {
            sums[e.person].iter_mut().zip(e.embedding.as_slice()).for_each(|(s, x)| *s += x);
            counts[e.person] += 1;
        }
        let centroids: Vec<Option<Embedding>> = sums.iter().map(|s| Embedding::from_raw(s.clone())).collect();
        let (mut mislabels, mut outliers) = (Vec::new(), Vec::new());
        for e in &self.entries {
            // Own centroid without this photo: the sum minus it, when the person has other photos.
            let own = (counts[e.person] > 1)
                .then(|| {
                    let rest: Vec<f32> = sums[e.person].iter().zip(e.embedding.as_slice()).map(|(s, x)| s - x).collect();
                    centroid(std::iter::once(rest.as_slice()), self.store.dim())
                })
                .flatten()
                .map(|c| c.cosine(&e.embedding));
            let best_other = centroids
                .iter()
                .enumerate()
                .filter(|(p, _)| *p != e.person)
                .filter_map(|(p, c)| c.as_ref().map(|c| (p, dot(c.as_slice(), e.embedding.as_slice()))))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let person = self.persons[e.person].clone();
            match best_other {
                Some((p, score)) if score >= threshold && own.is_none_or(|o| score > o) => mislabels.push(Mislabel {
                    photo: e.source_path.clone(),
                    enrolled_as: person,
                    own_score: own,
                    looks_like: self.persons[p].clone(),
                    score,
                }),
                _ => {
                    if let Some(own_score) = own.filter(|o| *o < threshold) {
                        outliers.push(Outlier { photo: e.source_path.clone(), person, own_score });
                    }
                }
            }
        }
        let mut close_pairs = Vec::new();
        for (i, a) in centroids.iter().enumerate() {
            for (j, b) in centroids.iter().enumerate().skip(i + 1) {
                if let (Some(a), Some(b)) = (a, b) {
                    let score = a.cosine(b);
                    if score >= close_pair_score {
                        close_pairs.push(ClosePair { a: self.persons[i].clone(), b: self.persons[j].clone(), score });
                    }
                }
            }
        }
        mislabels.sort_by(|a, b| b.score.total_cmp(&a.score));
        outliers.sort_by(|a, b| a.own_score.total_cmp(&b.own_score));
        close_pairs.sort_by(|a, b| b.score.total_cmp(&a.score));
        CheckReport { threshold, mislabels, outliers, close_pairs, close_pair_score }
    }
}

#[cfg(test)]
mod tests {
    use crate::base::Embedding;
    use crate::gallery::{Gallery, NewEmbedding};

    fn item(v: Vec<f32>, file: &str) -> NewEmbedding {
        NewEmbedding {
            embedding: Embedding::from_raw(v).expect("non-zero"),
            source_path: file.into(),
            file_sha256: file.into(),
            det_score: 0.9,
            crop: None,
        }
    }

    #[test]
    fn a_photo_of_bob_filed_under_alice_is_a_mislabel_and_a_stray_is_an_outlier() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut g = Gallery::open(&dir.path().join("g.db"), "m", 3, 100).expect("open");
        g.enroll("alice", &[item(vec![1.0, 0.1, 0.0], "a1"), item(vec![1.0, 0.0, 0.1], "a2"), item(vec![0.05, 1.0, 0.0], "bob-in-alice")])
            .expect("enroll");
        g.enroll("bob", &[item(vec![0.0, 1.0, 0.1], "b1"), item(vec![0.1, 1.0, 0.0], "b2"), item(vec![0.0, 0.1, 1.0], "stray")])
            .expect("enroll");
        let r = g.check(0.5, 0.9);
        assert_eq!(r.mislabels.len(), 1, "{r:?}");
        assert_eq!((r.mislabels[0].photo.as_str(), r.mislabels[0].looks_like.as_str()), ("bob-in-alice", "bob"));
        // Bob's centroid includes his stray photo: cos((0.05, 1, 0), (0.1, 2.1, 1.1)) ≈ 0.886.
        assert!((r.mislabels[0].score - 0.886).abs() < 0.01, "{}", r.mislabels[0].score);
        assert_eq!(r.outliers.iter().map(|o| o.photo.as_str()).collect::<Vec<_>>(), ["stray"]);
        assert!(r.close_pairs.is_empty());
    }
}
