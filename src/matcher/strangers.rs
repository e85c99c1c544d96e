//! Strangers in memory, for matching ([`StrangerBook`]): every stranger's best few faces, searched exactly (a
//! thousand strangers of five faces are five thousand cosines, a fraction of a millisecond, and only faces that
//! matched no enrolled person are searched). One book serves every camera of a daemon; the daemon adds to it as
//! it sees strangers, and it is read again whole when a person names, merges or forgets one.
//!
//! A stranger's kept faces are their best *different* views ([`place`]): a face nearly the same as one kept (the
//! next frames of one track, the same photo again) replaces it only when better, so that five frames of one
//! moment never push out the views that let the stranger be found again from another angle.

use crate::base::Embedding;

/// Cosine from which two faces of one stranger are the same view (consecutive frames, the same photo): only the
/// better of them is kept.
pub const SAME_VIEW: f32 = 0.85;
/// A face takes a kept face's place only when this much better (×): the faces of a stranger in view do not churn
/// frame after frame (a page showing them would show faces already gone).
pub const BETTER: f32 = 1.1;

/// Where a new face goes among a stranger's kept faces ([`place`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Not kept: no better than the kept face of the same view, or than the worst when all places are taken.
    Skip,
    /// In place of kept face `i`, the same view and worse.
    Replace(usize),
    /// Among them; the worst is let go when more than `keep` are then kept.
    Insert,
}

/// Where a face (`face`, of `quality`) goes among `kept` (best quality first), at most `keep` kept. The book and
/// the gallery's writer both decide with this, so memory and disk keep the same faces.
pub fn place<'a>(kept: impl IntoIterator<Item = (&'a Embedding, f32)>, face: &Embedding, quality: f32, keep: usize) -> Place {
    let mut count = 0;
    let mut worst = f32::INFINITY;
    let mut same: Option<(usize, f32, f32)> = None;
    for (i, (e, q)) in kept.into_iter().enumerate() {
        count += 1;
        worst = worst.min(q);
        let c = e.cosine(face);
        if c >= SAME_VIEW && same.is_none_or(|(_, best, _)| c > best) {
            same = Some((i, c, q));
        }
    }
    match same {
        Some((i, _, q)) if quality > q * BETTER => Place::Replace(i),
        Some(_) => Place::Skip,
        None if count < keep.max(1) || quality > worst * BETTER => Place::Insert,
        None => Place::Skip,
    }
}

/// One stranger in the book.
#[derive(Debug, Clone)]
struct Entry {
    label: String,
    /// (embedding, quality), best quality first.
    faces: Vec<(Embedding, f32)>,
}

/// The strangers a daemon knows ([module docs](self)).
#[derive(Debug, Clone, Default)]
pub struct StrangerBook {
    entries: Vec<Entry>,
}

impl StrangerBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// A book of `strangers`: (label, faces as (embedding, quality)).
    pub fn from_faces(strangers: impl IntoIterator<Item = (String, Vec<(Embedding, f32)>)>) -> Self {
        let mut book = Self::new();
        for (label, mut faces) in strangers {
            faces.sort_by(|a, b| b.1.total_cmp(&a.1));
            book.entries.push(Entry { label, faces });
        }
        book
    }

    /// Adds the strangers of `other` this book does not know yet (met by another node's cameras), leaving its own as
    /// they are (some may not be written yet); returns how many it took.
    pub fn take_new(&mut self, other: StrangerBook) -> usize {
        let before = self.entries.len();
        for e in other.entries {
            if !self.contains(&e.label) {
                self.entries.push(e);
            }
        }
        self.entries.len() - before
    }

    /// Strangers in the book.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nobody.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `label` is in the book.
    pub fn contains(&self, label: &str) -> bool {
        self.entries.iter().any(|e| e.label == label)
    }

    /// The stranger most like `query` and the cosine of their closest face, if the book holds anyone.
    pub fn best(&self, query: &Embedding) -> Option<(&str, f32)> {
        self.entries
            .iter()
            .filter_map(|e| e.faces.iter().map(|(f, _)| f.cosine(query)).max_by(f32::total_cmp).map(|s| (e.label.as_str(), s)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The cosine of `label`'s face closest to `query`, if the book holds them.
    pub fn similarity(&self, label: &str, query: &Embedding) -> Option<f32> {
        self.entries.iter().find(|e| e.label == label)?.faces.iter().map(|(f, _)| f.cosine(query)).max_by(f32::total_cmp)
    }

    /// A new stranger with `faces` (their `keep` best different views are kept, as [`Self::add_face`] would).
    pub fn add(&mut self, label: &str, faces: Vec<(Embedding, f32)>, keep: usize) {
        self.entries.push(Entry { label: label.to_string(), faces: Vec::new() });
        for (face, quality) in faces {
            self.add_face(label, face, quality, keep);
        }
    }

    /// Where a face of `quality` would go among `label`'s kept faces ([`place`]); `Skip` for a stranger not known.
    pub fn place(&self, label: &str, face: &Embedding, quality: f32, keep: usize) -> Place {
        self.entries
            .iter()
            .find(|e| e.label == label)
            .map_or(Place::Skip, |e| place(e.faces.iter().map(|(f, q)| (f, *q)), face, quality, keep))
    }

    /// One more face of `label`, keeping their `keep` best different views; false when it was not kept (or the
    /// stranger is gone).
    pub fn add_face(&mut self, label: &str, face: Embedding, quality: f32, keep: usize) -> bool {
        let Some(e) = self.entries.iter_mut().find(|e| e.label == label) else { return false };
        match place(e.faces.iter().map(|(f, q)| (f, *q)), &face, quality, keep) {
            Place::Skip => return false,
            Place::Replace(i) => {
                e.faces.remove(i);
            }
            Place::Insert => {}
        }
        let at = e.faces.partition_point(|(_, q)| *q >= quality);
        e.faces.insert(at, (face, quality));
        e.faces.truncate(keep.max(1));
        true
    }

    /// Every label, most recently added last.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.label.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(angle: f32) -> Embedding {
        Embedding::from_raw(vec![angle.cos(), angle.sin(), 0.0]).expect("non-zero")
    }

    // Angles 0.6 apart have cosine 0.83: different views; 0.1 apart, 0.995: the same view.
    #[test]
    fn the_closest_stranger_is_found_and_only_the_best_different_views_kept() {
        let mut book = StrangerBook::new();
        assert!(book.best(&unit(0.0)).is_none());
        book.add("stranger-a", vec![(unit(0.0), 0.5)], 2);
        book.add("stranger-b", vec![(unit(3.0), 0.5), (unit(2.4), 0.9)], 2);
        let (label, score) = book.best(&unit(2.45)).expect("someone");
        assert_eq!(label, "stranger-b");
        assert!(score > 0.99);
        assert_eq!(book.place("stranger-a", &unit(0.6), 0.1, 2), Place::Insert, "room for a second view");
        assert!(book.add_face("stranger-a", unit(0.6), 0.7, 2));
        assert_eq!(book.place("stranger-a", &unit(1.2), 0.3, 2), Place::Skip, "worse than both kept");
        assert!(!book.add_face("stranger-a", unit(1.2), 0.3, 2));
        assert!(book.add_face("stranger-a", unit(1.2), 0.8, 2), "better than the worst");
        assert!(!book.add_face("stranger-gone", unit(0.2), 0.8, 2));
        assert_eq!(book.labels().collect::<Vec<_>>(), ["stranger-a", "stranger-b"]);
    }

    #[test]
    fn frames_of_one_moment_never_push_out_the_other_views() {
        let mut book = StrangerBook::new();
        book.add("stranger-a", vec![(unit(0.0), 0.5), (unit(0.6), 0.4), (unit(1.2), 0.3)], 3);
        // The same view as the first, clearly better each time (×1.1): it takes the first's place, and nobody else's.
        for (i, q) in [0.6, 0.7, 0.8, 0.9].into_iter().enumerate() {
            assert!(book.add_face("stranger-a", unit(0.01 * i as f32), q, 3));
        }
        assert!(!book.add_face("stranger-a", unit(0.02), 0.5, 3), "the same view, worse: not kept");
        assert!(!book.add_face("stranger-a", unit(0.02), 0.95, 3), "the same view, hardly better: no churn");
        for view in [0.0, 0.6, 1.2] {
            assert!(book.best(&unit(view)).expect("a").1 > 0.99, "the view at {view} is still kept");
        }
        assert_eq!(book.place("stranger-a", &unit(0.04), 1.0, 3), Place::Replace(0));
        assert!(book.similarity("stranger-a", &unit(0.6)).expect("a") > 0.99);
        assert!(book.similarity("stranger-a", &unit(3.0)).expect("a") < 0.0);
        assert!(book.similarity("stranger-gone", &unit(0.0)).is_none());
        // A new stranger's own first faces are one moment too: one view is kept of them.
        book.add("stranger-b", vec![(unit(3.0), 0.5), (unit(3.01), 0.6), (unit(3.02), 0.55)], 3);
        assert_eq!(book.place("stranger-b", &unit(2.4), 0.1, 3), Place::Insert, "two places still free");
    }
}
