//! `check-config`: every problem of the configuration and of its environment at once: values, manifest names,
//! model files and their hashes, the ONNX Runtime library; and, as warnings, what the daemon would find missing
//! right now (a camera not plugged in yet, no gallery yet).

use serde::Serialize;

use super::{resolve_path, Config, ConfigError};
use crate::model::Manifest;

/// The result of `check-config`.
#[derive(Debug, Serialize)]
pub struct ConfigCheck {
    /// No problem found.
    pub ok: bool,
    /// What keeps the configuration from working (the command exits 2).
    pub problems: Vec<String>,
    /// What the daemon would find missing right now (a camera not plugged in yet, no gallery yet).
    pub warnings: Vec<String>,
    /// The merged configuration, stream passwords redacted.
    pub config: serde_json::Value,
}

/// What the daemon would find missing right now (a camera not plugged in yet is not a configuration error: the
/// daemon exits and systemd retries).
fn daemon_warnings(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let several = !cfg.cameras.0.is_empty();
    for (i, (capture, _)) in cfg.cameras().iter().enumerate() {
        let key = if several { format!("cameras[{i}].source") } else { "capture.source".into() };
        let src = &capture.source;
        if crate::capture::wants_camera(capture) {
            let dev = crate::capture::camera_device(src);
            if !dev.exists() {
                out.push(format!("{key}: camera {} is not present", dev.display()));
            }
        } else if crate::capture::is_missing_file(src) {
            out.push(format!("{key}: {src} does not exist"));
        }
    }
    if cfg.gallery.url.is_set() {
        gallery_server(cfg, &mut out);
    } else {
        gallery_file(cfg, &mut out);
    }
    if !cfg.publish.socket.trim().is_empty() {
        let sock = resolve_path(&cfg.publish.socket);
        let ancestor = sock.ancestors().skip(1).find(|a| a.exists());
        if let Some(a) = ancestor.filter(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().readonly())) {
            out.push(format!("publish.socket: {} is read-only, the socket cannot be created", a.display()));
        }
        if let Some(why) = sock.parent().and_then(crate::sinks::socket::directory_problem) {
            out.push(format!("publish.socket: the daemon will refuse to serve {}: {why}", sock.display()));
        }
    }
    if let Some((host, port)) = cfg.api.host_port() {
        use std::net::ToSocketAddrs;
        match (host, port).to_socket_addrs() {
            Ok(addrs) => {
                if let Some(a) = addrs.into_iter().find(|a| !a.ip().is_loopback()) {
                    out.push(format!(
                        "api.listen: {a} is reachable from beyond this machine and the API has no TLS: keys and faces would cross the network in the clear; put a reverse proxy with TLS in front, or listen on 127.0.0.1"
                    ));
                }
            }
            Err(e) => out.push(format!("api.listen: {host} cannot be resolved now ({e})")),
        }
    }
    out
}

/// Every problem at once: configuration values, manifest names, model files, the runtime library; and what the
/// daemon would find missing right now (warnings), for a configuration as loaded (not yet validated). Stream passwords are redacted everywhere in the result.
pub fn check(loaded: Result<Config, ConfigError>) -> ConfigCheck {
    let mut problems = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let cfg = match loaded {
        Ok(c) => Some(c),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    if let Some(cfg) = &cfg {
        problems.extend(cfg.problems());
        match Manifest::configured(&cfg.models.manifest) {
            Err(e) => problems.push(e.to_string()),
            Ok(m) => {
                let dir = resolve_path(&cfg.models.dir);
                if let Err(e) = m.installed_detector(&cfg.models.detector, &dir) {
                    problems.push(format!("models.detector: {e}"));
                }
                if let Err(e) = m.installed_recognizer(&cfg.models.recognizer, &dir) {
                    problems.push(format!("models.recognizer: {e}"));
                }
            }
        }
        let lib = crate::model::runtime::library_path(&cfg.runtime);
        if !lib.is_file() {
            problems.push(format!("runtime.ort_library: {} does not exist; {}", lib.display(), crate::model::install_hint()));
        }
        warnings.extend(daemon_warnings(cfg));
        // The limits `run` would start under (the unit runs check-config as ExecStartPre, under its own).
        if let Err(e) = super::fds::raise_and_check(cfg) {
            problems.push(e.to_string());
        }
    }
    // The merged configuration is shown with stream passwords redacted, and so is every message.
    let mut config = serde_json::to_value(&cfg).unwrap_or_default();
    let redact = |v: &mut serde_json::Value| *v = serde_json::Value::from(crate::capture::secrets::redact(v.as_str().unwrap_or_default()));
    if let Some(src) = config.pointer_mut("/capture/source") {
        redact(src);
    }
    if let Some(cameras) = config.pointer_mut("/cameras").and_then(serde_json::Value::as_array_mut) {
        cameras.iter_mut().filter_map(|c| c.get_mut("source")).for_each(redact);
    }
    let problems: Vec<String> = problems.iter().map(|p| crate::capture::secrets::redact(p)).collect();
    let warnings: Vec<String> = warnings.iter().map(|w| crate::capture::secrets::redact(w)).collect();
    ConfigCheck { ok: problems.is_empty(), problems, warnings, config }
}
/// What is wrong with a SQLite gallery file (`gallery.path`).
fn gallery_file(cfg: &Config, out: &mut Vec<String>) {
    let gallery = resolve_path(&cfg.gallery.path);
    // A gallery others may read is narrowed before SQLite opens it: the companions it creates (-wal, -shm) take
    // the gallery's mode. One this user may not narrow is reported and not opened.
    let exposed = gallery.is_file() && {
        match crate::gallery::make_private(&gallery) {
            Ok(narrowed) => {
                out.extend(
                    narrowed
                        .iter()
                        .map(|(f, was)| format!("gallery.path: {} was readable by others (mode {was:o}); narrowed to 0600", f.display())),
                );
                false
            }
            Err(e) => {
                out.push(format!("gallery.path: {} is readable by others and cannot be narrowed ({e}); chmod 600 it", gallery.display()));
                true
            }
        }
    };
    if !gallery.is_file() {
        out.push(format!(
            "gallery.path: no gallery at {}; every face will be unknown until people are enrolled (`facewatch enroll DIR`)",
            gallery.display()
        ));
    } else if !exposed && crate::gallery::count_embeddings(&gallery) == Some(0) {
        out.push(format!("gallery.path: the gallery {} is empty; every face will be unknown until people are enrolled", gallery.display()));
    }
}

/// Whether the PostgreSQL gallery (`gallery.url`) can be reached, and what it holds (read without changing it).
fn gallery_server(cfg: &Config, out: &mut Vec<String>) {
    let shown = cfg.gallery.url.redacted();
    match crate::gallery::PgTarget::from_config(&cfg.gallery).and_then(|t| crate::gallery::PgStore::probe(&t)) {
        Err(e) => out.push(format!("gallery.url: {e}")),
        Ok((Some(model), _)) if model != cfg.models.recognizer => {
            out.push(format!("gallery.url: {shown} holds embeddings of recognizer `{model}`, not `{}`", cfg.models.recognizer))
        }
        Ok((_, 0)) => out.push(format!("gallery.url: the gallery {shown} is empty; every face will be unknown until people are enrolled")),
        Ok(_) => {}
    }
}
