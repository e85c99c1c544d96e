//! The search index over gallery embeddings: an exact scan for small galleries, HNSW (`hnsw_rs`, dot-product
//! distance on unit vectors = 1 − cosine) for large ones.
//!
//! A scan of a few thousand 512-d vectors takes well under a millisecond and is always right, so the graph is
//! only built past `exact_search_max` embeddings. `hnsw_rs` cannot delete: the gallery rebuilds the index after
//! a removal (removals are rare, interactive operations).

use hnsw_rs::prelude::{DistDot, Hnsw};

use crate::base::face::dot;

/// A neighbour of a query: entry position and cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// Position in the vectors the index was built from.
    pub id: usize,
    /// Cosine similarity.
    pub score: f32,
}

/// HNSW graph parameters (hnsw_rs naming).
const MAX_NB_CONNECTION: usize = 24;
const MAX_LAYER: usize = 16;
const EF_CONSTRUCTION: usize = 100;
/// Search breadth: at least this, or the number of neighbours asked for.
const EF_SEARCH: usize = 96;

/// How `n` vectors are searched: "exact" up to `exact_max`, "hnsw" beyond ([`Index::build`]'s rule).
pub fn kind_for(n: usize, exact_max: usize) -> &'static str {
    if n <= exact_max {
        "exact"
    } else {
        "hnsw"
    }
}

/// Exact or approximate nearest-neighbour search.
#[derive(Default)]
pub enum Index {
    /// Brute force over the vectors.
    #[default]
    Empty,
    /// Brute force over a copy of the vectors, row-major.
    Exact {
        /// Flattened vectors.
        data: Vec<f32>,
        /// Vector length.
        dim: usize,
    },
    /// Hierarchical navigable small world graph.
    Hnsw(Box<Hnsw<'static, f32, DistDot>>),
}

impl Index {
    /// Indexes `vectors` (unit length, equal dimension); HNSW when there are more than `exact_max`.
    pub fn build(vectors: &[&[f32]], exact_max: usize) -> Self {
        let Some(first) = vectors.first() else { return Self::Empty };
        if kind_for(vectors.len(), exact_max) == "exact" {
            return Self::Exact { data: vectors.concat(), dim: first.len() };
        }
        let hnsw = Hnsw::new(MAX_NB_CONNECTION, vectors.len(), MAX_LAYER, EF_CONSTRUCTION, DistDot {});
        let with_ids: Vec<(&[f32], usize)> = vectors.iter().enumerate().map(|(i, v)| (*v, i)).collect();
        hnsw.parallel_insert_slice(&with_ids);
        Self::Hnsw(Box::new(hnsw))
    }

    /// Up to `k` nearest vectors to `query`, most similar first.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<Neighbour> {
        match self {
            Self::Empty => Vec::new(),
            Self::Exact { data, dim } => {
                let mut all: Vec<Neighbour> =
                    data.chunks_exact(*dim).enumerate().map(|(id, v)| Neighbour { id, score: dot(v, query) }).collect();
                let k = k.min(all.len());
                if k == 0 {
                    return Vec::new();
                }
                all.select_nth_unstable_by(k - 1, |a, b| b.score.total_cmp(&a.score));
                all.truncate(k);
                all.sort_by(|a, b| b.score.total_cmp(&a.score));
                all
            }
            Self::Hnsw(h) => {
                h.search(query, k, EF_SEARCH.max(k)).into_iter().map(|n| Neighbour { id: n.d_id, score: 1.0 - n.distance }).collect()
            }
        }
    }
}
