//! `[api]`: the HTTP API of the daemon ([`crate::api`]).

use std::num::NonZeroUsize;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::base::units::{seconds, within};

/// `[api]`: the HTTP API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on, `host:port` (`127.0.0.1:8099`, `localhost:8099`, `[::1]:8099`); empty: no API.
    pub listen: String,
    /// API keys (prefer `keys_file`: a configuration file is often readable). Shown as `***`.
    pub keys: Vec<crate::sinks::mqtt::Secret>,
    /// A file of API keys, one per line (owner-only), read at start-up.
    pub keys_file: String,
    /// Largest photo accepted, bytes.
    pub max_upload_bytes: NonZeroUsize,
    /// Connections open at once (the idlest is closed to make room; all busy: 503).
    pub max_connections: NonZeroUsize,
    /// A connection with no request in flight is closed after this long (`idle_timeout_s`).
    #[serde(rename = "idle_timeout_s", with = "seconds")]
    pub idle_timeout: Duration,
    /// A request body must arrive within this long (`body_timeout_s`).
    #[serde(rename = "body_timeout_s", with = "seconds")]
    pub body_timeout: Duration,
}

/// `listen`'s host and port, when it has the shape `host:port` (`[v6]:port` for an IPv6 address).
pub fn host_port(listen: &str) -> Option<(&str, u16)> {
    let (host, port) = listen.trim().rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let plain = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c));
    // A bare IPv6 address must be bracketed, or its last group would read as the port.
    (plain && (!host.contains(':') || listen.trim().starts_with('['))).then_some((host, port))
}

impl ApiConfig {
    /// Whether the API is on.
    pub fn enabled(&self) -> bool {
        !self.listen.trim().is_empty()
    }

    /// `listen` as host and port, when it has that shape (`host:port`, `[v6]:port`).
    pub fn host_port(&self) -> Option<(&str, u16)> {
        host_port(&self.listen)
    }

    /// What is wrong with `[api]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        if !self.enabled() {
            return;
        }
        if host_port(&self.listen).is_none() {
            out.push(format!("api.listen: `{}` is not host:port (e.g. 127.0.0.1:8099, localhost:8099, [::1]:8099)", self.listen));
        }
        if self.keys.is_empty() && self.keys_file.trim().is_empty() {
            out.push("api: set api.keys_file (or api.keys): the API edits the gallery and answers only to a key".into());
        }
        within(out, "api.max_upload_bytes", self.max_upload_bytes.get() as u64, 1 << 30, "1 GiB");
        within(out, "api.max_connections", self.max_connections.get() as u64, 65_536, "connections");
        for (key, d) in [("api.idle_timeout_s", self.idle_timeout), ("api.body_timeout_s", self.body_timeout)] {
            if d.is_zero() {
                out.push(format!("{key}: 0 would close every connection at once; at least 1"));
            }
            within(out, key, d.as_secs(), 3_600, "one hour");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn listen_takes_addresses_and_host_names() {
        assert_eq!(host_port("127.0.0.1:8099"), Some(("127.0.0.1", 8099)));
        assert_eq!(host_port("localhost:8099"), Some(("localhost", 8099)));
        assert_eq!(host_port("[::1]:8099"), Some(("::1", 8099)));
        assert_eq!(host_port("cam-box.lan:80"), Some(("cam-box.lan", 80)));
        for bad in ["8099", "localhost", ":8099", "localhost:99999", "::1:8099", "a b:1", "localhost:port"] {
            assert_eq!(host_port(bad), None, "{bad}");
        }
    }
}
