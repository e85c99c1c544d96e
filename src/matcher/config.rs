//! `[matcher]`: gallery matching.

use std::num::NonZeroUsize;

use serde::{Deserialize, Serialize};

use crate::base::units::{within, Threshold};

/// `[matcher]`: gallery matching.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatcherConfig {
    /// Similarity threshold; `None` uses the recognizer's manifest threshold.
    #[serde(default)]
    pub threshold: Option<Threshold>,
    /// Candidates per face.
    pub top_k: NonZeroUsize,
    /// Largest gallery searched exactly.
    pub exact_search_max: usize,
    /// Where a larger gallery's HNSW index is kept between runs (loaded at start instead of built); empty: beside
    /// a SQLite gallery (`gallery.db.index`), or under `~/.local/state/facewatch/index` for a PostgreSQL one.
    #[serde(default)]
    pub index_dir: String,
}

impl MatcherConfig {
    /// What is wrong with `[matcher]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        within(out, "matcher.top_k", self.top_k.get() as u64, 100, "candidates per face");
        within(out, "matcher.exact_search_max", self.exact_search_max as u64, 10_000_000, "embeddings");
    }
}
