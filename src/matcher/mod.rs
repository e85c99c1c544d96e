//! Match: an embedding in, the enrolled people's top-k candidates out, from a [`SearchView`] of the gallery: an
//! exact scan, or HNSW beyond `[matcher] exact_search_max` ([`index`]). Each person scores their best photo; the
//! caller decides `unknown` below the threshold ([`crate::base::face::decide`]). A step of the track stage (and
//! of the still-image jobs), not a thread of its own; the daemon follows the gallery's changes with
//! [`crate::gallery::LiveGallery`], which builds each new view off the cameras' threads.

mod config;
pub mod graph;
pub mod index;
pub mod strangers;

use crate::base::{Candidate, Embedding};
pub use config::MatcherConfig;
use index::{Index, Neighbour};

/// A read-only view of a gallery for searching: the names, whose each embedding is, and the index over them
/// (exact, or HNSW beyond `matcher.exact_search_max`). Built once per change of the gallery, off the cameras'
/// threads, and shared by them.
pub struct SearchView {
    persons: Vec<String>,
    owners: Vec<usize>,
    index: Index,
}

impl SearchView {
    /// A view of `persons` and their embeddings (`owners[i]`: the person of `vectors[i]`), its index built now.
    pub fn new(persons: Vec<String>, owners: Vec<usize>, vectors: &[&[f32]], exact_search_max: usize) -> Self {
        Self { persons, owners, index: Index::build(vectors, exact_search_max) }
    }

    /// A view like [`SearchView::new`] of a gallery beyond `exact_search_max`, its HNSW index kept in `dir`
    /// between runs ([`Index::cached`]); `ids`: the store ids of `vectors`.
    pub fn cached(persons: Vec<String>, owners: Vec<usize>, ids: &[i64], vectors: &[&[f32]], dir: &std::path::Path) -> Self {
        let started = std::time::Instant::now();
        let (index, used) = Index::cached(ids, vectors, dir);
        tracing::info!(embeddings = vectors.len(), ?used, ms = started.elapsed().as_millis() as u64, "Gallery index ready.");
        Self { persons, owners, index }
    }

    /// The best `k` persons for `query`, best first; each person scores their best embedding among the nearest
    /// ones.
    pub fn search(&self, query: &Embedding, k: usize) -> Vec<Candidate> {
        let n = self.owners.len();
        if k == 0 || n == 0 {
            return Vec::new();
        }
        // Several embeddings may belong to one person: ask for more neighbours than persons wanted.
        let per_person = n / self.persons.len().max(1);
        let neighbours: Vec<Neighbour> = self.index.search(query.as_slice(), (k * per_person.clamp(1, 8)).max(k * 2));
        let mut best: Vec<Candidate> = Vec::with_capacity(k);
        for nb in neighbours {
            let name = &self.persons[self.owners[nb.id]];
            match best.iter_mut().find(|c| &c.name == name) {
                Some(c) => c.score = c.score.max(nb.score),
                None => best.push(Candidate { name: name.clone(), score: nb.score }),
            }
        }
        best.sort_by(|a, b| b.score.total_cmp(&a.score));
        best.truncate(k);
        best
    }

    /// Embeddings searched.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// Whether there is nothing to search.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Persons enrolled.
    pub fn persons(&self) -> usize {
        self.persons.len()
    }
}
