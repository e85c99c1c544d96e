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
    /// No longer used: where an HNSW index was kept between runs. Large galleries are now scanned by sign codes
    /// made at start, and nothing is kept; still accepted so that configurations written for earlier versions
    /// (the Debian package's among them) start, with a warning.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub index_dir: String,
}

impl MatcherConfig {
    /// What is wrong with `[matcher]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        within(out, "matcher.top_k", self.top_k.get() as u64, 100, "candidates per face");
        within(out, "matcher.exact_search_max", self.exact_search_max as u64, 10_000_000, "embeddings");
    }

    /// Settings that are accepted but do nothing, for a warning.
    pub fn obsolete(&self) -> Option<&'static str> {
        (!self.index_dir.trim().is_empty()).then_some(
            "matcher.index_dir is no longer used: large galleries are scanned by sign codes made at start, nothing is kept; remove the setting, and the graph files earlier versions kept there",
        )
    }
}
