//! The daemon's file-descriptor budget: at start its soft `RLIMIT_NOFILE` is raised to the hard limit, and a
//! configuration whose cameras, subscribers and API connections could together need more descriptors than that is
//! refused, naming what takes them. Within the budget a flood of clients meets its own limit (`publish.
//! max_subscribers`, `api.max_connections`) long before capture could fail to open a camera or a file.

use super::Config;

/// What the daemon itself holds whatever its load: standard streams, the gallery's SQLite files (two
/// connections), the runtimes' epoll and event descriptors, the listeners, with room to spare (15 measured with
/// one camera and the API on, 19 with the event socket too).
pub const BASE: u64 = 32;
/// Per camera: its device or file, a stream's sockets (RTSP over UDP: three), and a reopen overlapping the old
/// handle.
pub const PER_CAMERA: u64 = 8;
/// The MQTT connection and a snapshot being written.
pub const OUTPUTS: u64 = 4;

/// The descriptors a configuration may need, and the limit it runs under.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct FdBudget {
    /// Descriptors the configuration may need at once.
    pub needed: u64,
    /// What takes them, for messages: `(what, how many)`.
    pub parts: Vec<(String, u64)>,
    /// The soft limit (after raising it).
    pub limit: u64,
    /// The hard limit.
    pub hard: u64,
}

/// The configuration does not fit the descriptor limit.
#[derive(Debug, thiserror::Error)]
#[error(
    "the configuration may need {} file descriptors ({}) but the limit is {} (hard {}): raise LimitNOFILE (systemd) or \
     `ulimit -n`, or lower publish.max_subscribers or api.max_connections",
    .0.needed,
    .0.parts.iter().map(|(what, n)| format!("{n} {what}")).collect::<Vec<_>>().join(", "),
    .0.limit,
    .0.hard
)]
pub struct FdError(pub FdBudget);

impl crate::exit::Exit for FdError {
    fn exit_code(&self) -> u8 {
        crate::exit::CONFIG
    }
}

/// What `cfg` may need at once ([module docs](self)), under `limit` (soft) and `hard`.
pub fn budget(cfg: &Config, limit: u64, hard: u64) -> FdBudget {
    let cameras = cfg.cameras().len() as u64;
    let mut parts = vec![("for the daemon".to_string(), BASE), (format!("for {cameras} camera(s)"), PER_CAMERA * cameras)];
    if !cfg.publish.socket.trim().is_empty() {
        parts.push(("socket subscribers (publish.max_subscribers)".into(), cfg.publish.max_subscribers.get() as u64));
    }
    if cfg.api.enabled() {
        parts.push(("API connections (api.max_connections)".into(), cfg.api.max_connections.get() as u64));
    }
    parts.push(("for MQTT and snapshots".into(), OUTPUTS));
    FdBudget { needed: parts.iter().map(|(_, n)| n).sum(), parts, limit, hard }
}

/// The soft and hard `RLIMIT_NOFILE`.
pub fn limits() -> std::io::Result<(u64, u64)> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit fills the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((r.rlim_cur, r.rlim_max))
}

/// Raises the soft limit to the hard one, then checks `cfg` fits ([module docs](self)).
pub fn raise_and_check(cfg: &Config) -> Result<FdBudget, FdError> {
    let (mut soft, hard) = limits().unwrap_or((1024, 1024));
    if soft < hard {
        let r = libc::rlimit { rlim_cur: hard, rlim_max: hard };
        // SAFETY: setrlimit reads the struct; raising the soft limit up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } == 0 {
            soft = hard;
        } else {
            tracing::warn!(error = %std::io::Error::last_os_error(), soft, hard, "Could not raise the file-descriptor limit.");
        }
    }
    check(budget(cfg, soft, hard))
}

/// A budget that fits, or why not.
pub fn check(b: FdBudget) -> Result<FdBudget, FdError> {
    match b.needed <= b.limit {
        true => Ok(b),
        false => Err(FdError(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(overrides: &[(&str, &str)]) -> Config {
        let sources =
            crate::config::Sources { overrides: overrides.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(), ..Default::default() };
        Config::load(&sources).expect("config")
    }

    #[test]
    fn the_budget_counts_cameras_subscribers_and_connections_and_refuses_what_cannot_fit() {
        let cfg = config(&[("api.listen", "127.0.0.1:8099"), ("api.keys_file", "/k")]);
        let b = budget(&cfg, 1024, 1024);
        assert_eq!(b.needed, BASE + PER_CAMERA + 64 + 256 + OUTPUTS);
        assert!(check(b).is_ok(), "the defaults fit the usual 1024");
        let err = check(budget(&cfg, 32, 32)).expect_err("32 cannot hold it").to_string();
        for want in ["364 file descriptors", "64 socket subscribers", "256 API connections", "limit is 32", "LimitNOFILE"] {
            assert!(err.contains(want), "{want} missing: {err}");
        }
        let quiet = config(&[("publish.socket", "")]);
        assert_eq!(budget(&quiet, 1024, 1024).needed, BASE + PER_CAMERA + OUTPUTS, "no socket, no API: neither counted");
    }
}
