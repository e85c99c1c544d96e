//! `[preview]`: the annotated window.

use serde::{Deserialize, Serialize};

/// `[preview]`: the annotated window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewConfig {
    /// Show the window.
    pub enabled: bool,
    /// Closing the window stops the daemon.
    pub close_exits: bool,
}

impl PreviewConfig {
    /// What is wrong with `[preview]` (nothing can be: two switches).
    pub fn problems(&self, _out: &mut Vec<String>) {}
}
