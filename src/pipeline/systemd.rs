//! systemd service notifications (the `sd_notify` protocol): `READY=1` once every stage runs, `WATCHDOG=1` while
//! the pipeline makes progress, `STOPPING=1` at shutdown. Without `NOTIFY_SOCKET` (not under systemd) it does
//! nothing.
//!
//! The watchdog is fed only while frames come through, or while capture is retrying a lost source (a known,
//! reported state). A pipeline stuck anywhere else stops feeding it, and systemd restarts the service.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

/// Where and how often to notify systemd.
#[derive(Debug, Default)]
pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
    watchdog: Option<Duration>,
    last_ping: Option<Instant>,
    /// Each camera's frame count at the last feed.
    last_frames: Vec<u64>,
    stopping_sent: bool,
}

impl Notifier {
    /// Notifies nobody.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// From systemd's variables (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`), passed in by the caller.
    pub fn from_vars(notify_socket: Option<String>, watchdog_usec: Option<String>, watchdog_pid: Option<String>) -> Self {
        let Some(path) = notify_socket.filter(|p| !p.is_empty()) else { return Self::default() };
        // Non-blocking: a notification that cannot be queued is dropped (and logged), never waited for.
        let socket = match UnixDatagram::unbound().and_then(|s| s.set_nonblocking(true).map(|()| s)) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "Cannot notify systemd.");
                return Self::default();
            }
        };
        let for_us = watchdog_pid.is_none_or(|p| p.parse::<u32>().is_ok_and(|p| p == std::process::id()));
        let watchdog = watchdog_usec.and_then(|u| u.parse::<u64>().ok()).filter(|&u| u > 0 && for_us).map(Duration::from_micros);
        Self { socket: Some((socket, path)), watchdog, ..Self::default() }
    }

    /// The watchdog period systemd asked for, if any.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    fn send(&self, message: &str) {
        let Some((socket, path)) = &self.socket else { return };
        let sent = match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                    .and_then(|addr| socket.send_to_addr(message.as_bytes(), &addr))
            }
            None => socket.send_to(message.as_bytes(), path),
        };
        match sent {
            Ok(_) => debug!(message, "Notified systemd."),
            Err(e) => warn!(error = %e, message, "Notifying systemd failed."),
        }
    }

    /// Every stage is running.
    pub fn ready(&mut self) {
        self.send("READY=1");
        self.last_ping = Some(Instant::now());
    }

    /// Shutdown has begun (sent once).
    pub fn stopping(&mut self) {
        if !self.stopping_sent {
            self.stopping_sent = true;
            self.send("STOPPING=1");
        }
    }

    /// Called often with each camera's (frames processed, excused: retrying a lost source or its input over):
    /// feeds the watchdog every half period if every camera advanced since the last feed or is excused. One camera
    /// stuck (a read that never returns) starves the watchdog even while the others run, so systemd restarts it.
    pub fn tick(&mut self, cameras: &[(u64, bool)]) {
        let Some(period) = self.watchdog else { return };
        if self.last_ping.is_some_and(|t| t.elapsed() < period / 2) {
            return;
        }
        let before = |i: usize| self.last_frames.get(i).copied().unwrap_or(0);
        if cameras.iter().enumerate().all(|(i, &(frames, excused))| excused || frames > before(i)) {
            self.send("WATCHDOG=1");
        }
        self.last_frames = cameras.iter().map(|c| c.0).collect();
        self.last_ping = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_the_socket_and_the_watchdog_needs_progress() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let systemd = UnixDatagram::bind(&path).expect("bind");
        systemd.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        let mut n = Notifier::from_vars(Some(path.display().to_string()), Some("20000".into()), None);
        assert_eq!(n.watchdog(), Some(Duration::from_millis(20)));
        let recv = || {
            let mut buf = [0u8; 64];
            let k = systemd.recv(&mut buf).expect("datagram");
            String::from_utf8_lossy(&buf[..k]).to_string()
        };
        n.ready();
        assert_eq!(recv(), "READY=1");
        std::thread::sleep(Duration::from_millis(15));
        n.tick(&[(5, false)]);
        assert_eq!(recv(), "WATCHDOG=1", "frames advanced");
        std::thread::sleep(Duration::from_millis(15));
        n.tick(&[(5, false)]);
        std::thread::sleep(Duration::from_millis(15));
        n.tick(&[(5, true)]);
        assert_eq!(recv(), "WATCHDOG=1", "no progress: no feed; retrying a lost source: fed");
        // Two cameras: one stuck starves the watchdog however fast the other runs.
        std::thread::sleep(Duration::from_millis(15));
        n.tick(&[(5, false), (100, false)]);
        std::thread::sleep(Duration::from_millis(15));
        n.tick(&[(5, false), (200, false)]);
        std::thread::sleep(Duration::from_millis(15));
        n.tick(&[(6, false), (300, false)]);
        assert_eq!(recv(), "WATCHDOG=1", "fed again once both advanced, not before");
        n.stopping();
        n.stopping();
        assert_eq!(recv(), "STOPPING=1");
        systemd.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 64];
        assert!(systemd.recv(&mut buf).is_err(), "STOPPING is sent once, and the stalled tick sent nothing");
    }

    #[test]
    fn a_receiver_that_does_not_read_never_blocks_the_daemon() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let _systemd = UnixDatagram::bind(&path).expect("bind");
        let mut n = Notifier::from_vars(Some(path.display().to_string()), None, None);
        // Far more than the socket queues (max_dgram_qlen): the extra ones are dropped, not waited for.
        for _ in 0..5_000 {
            n.ready();
        }
    }

    #[test]
    fn a_watchdog_for_another_process_or_no_socket_is_ignored() {
        let n = Notifier::from_vars(Some("/run/x".into()), Some("1000000".into()), Some("1".into()));
        assert_eq!(n.watchdog(), None);
        let n = Notifier::from_vars(None, Some("1000000".into()), None);
        assert_eq!(n.watchdog(), None);
    }
}
