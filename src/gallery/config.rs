//! `[gallery]`: the enrolled-person store.

use serde::{Deserialize, Serialize};

/// `[gallery]`: the enrolled-person store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GalleryConfig {
    /// SQLite file.
    pub path: String,
}

impl GalleryConfig {
    /// What is wrong with `[gallery]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        if self.path.trim().is_empty() {
            out.push("gallery.path: empty".into());
        }
    }
}
