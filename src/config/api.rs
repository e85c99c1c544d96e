//! `[api]`: the HTTP API of the daemon ([`crate::api`]).

use std::net::SocketAddr;
use std::num::NonZeroUsize;

use serde::{Deserialize, Serialize};

/// `[api]`: the HTTP API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on (`127.0.0.1:8099`); empty: no API.
    pub listen: String,
    /// API keys (prefer `keys_file`: a configuration file is often readable). Shown as `***`.
    pub keys: Vec<crate::publish::mqtt::Secret>,
    /// A file of API keys, one per line (owner-only), read at start-up.
    pub keys_file: String,
    /// Largest photo accepted, bytes.
    pub max_upload_bytes: NonZeroUsize,
}

impl ApiConfig {
    /// Whether the API is on.
    pub fn enabled(&self) -> bool {
        !self.listen.trim().is_empty()
    }

    /// What is wrong with `[api]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        if !self.enabled() {
            return;
        }
        if self.listen.trim().parse::<SocketAddr>().is_err() {
            out.push(format!("api.listen: `{}` is not an address:port (e.g. 127.0.0.1:8099)", self.listen));
        }
        if self.keys.is_empty() && self.keys_file.trim().is_empty() {
            out.push("api: set api.keys_file (or api.keys): the API edits the gallery and answers only to a key".into());
        }
        crate::base::units::within(out, "api.max_upload_bytes", self.max_upload_bytes.get() as u64, 1 << 30, "1 GiB");
    }
}
