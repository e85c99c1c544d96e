//! Strangers in memory, for matching ([`StrangerBook`]): every stranger's best few faces, searched exactly (a
//! thousand strangers of five faces are five thousand cosines, a fraction of a millisecond, and only faces that
//! matched no enrolled person are searched). One book serves every camera of a daemon; the daemon adds to it as
//! it sees strangers, and it is read again whole when a person names, merges or forgets one.

use crate::base::Embedding;

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

    /// A new stranger with `faces`.
    pub fn add(&mut self, label: &str, mut faces: Vec<(Embedding, f32)>) {
        faces.sort_by(|a, b| b.1.total_cmp(&a.1));
        self.entries.push(Entry { label: label.to_string(), faces });
    }

    /// Whether a face of `quality` would be kept among `label`'s `keep` best (and the stranger is known).
    pub fn would_keep(&self, label: &str, quality: f32, keep: usize) -> bool {
        self.entries
            .iter()
            .find(|e| e.label == label)
            .is_some_and(|e| e.faces.len() < keep || e.faces.last().is_some_and(|w| quality > w.1))
    }

    /// One more face of `label`, keeping their `keep` best; false when it was not kept (or the stranger is gone).
    pub fn add_face(&mut self, label: &str, face: Embedding, quality: f32, keep: usize) -> bool {
        let Some(e) = self.entries.iter_mut().find(|e| e.label == label) else { return false };
        let at = e.faces.partition_point(|(_, q)| *q >= quality);
        if at >= keep.max(1) {
            return false;
        }
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

    #[test]
    fn the_closest_stranger_is_found_and_only_the_best_faces_kept() {
        let mut book = StrangerBook::new();
        assert!(book.best(&unit(0.0)).is_none());
        book.add("stranger-a", vec![(unit(0.0), 0.5)]);
        book.add("stranger-b", vec![(unit(1.5), 0.5), (unit(1.4), 0.9)]);
        let (label, score) = book.best(&unit(1.45)).expect("someone");
        assert_eq!(label, "stranger-b");
        assert!(score > 0.99);
        assert!(book.would_keep("stranger-a", 0.1, 2), "room for a second face");
        assert!(book.add_face("stranger-a", unit(0.1), 0.7, 2));
        assert!(!book.would_keep("stranger-a", 0.3, 2), "worse than both kept");
        assert!(!book.add_face("stranger-a", unit(0.2), 0.3, 2));
        assert!(book.add_face("stranger-a", unit(0.2), 0.8, 2), "better than the worst");
        assert!(!book.add_face("stranger-gone", unit(0.2), 0.8, 2));
        assert_eq!(book.labels().collect::<Vec<_>>(), ["stranger-a", "stranger-b"]);
    }
}
