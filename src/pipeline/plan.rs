//! The plan: the configuration resolved once for this machine, each value with where it came from. Every "0 = auto"
//! is decided here and nowhere else (detect workers, embedding sessions, the per-frame embedding budget, inference
//! threads), every threshold is found (the recognizer's from its manifest, `matcher.threshold`, each camera's own),
//! and every path the daemon will use is named as found. [`Pipeline::build`](super::Pipeline::build) builds by it;
//! `facewatch check-config --plan` prints it (text or `--json`), so what the daemon decided can be seen before it
//! runs.

use serde::Serialize;

use super::topology::{self, Capacity, Edge, EDGES};
use crate::config::fds::FdBudget;
use crate::config::{resolve_path, Config};
use crate::model::{Manifest, ModelError};

/// A value and where it came from: `default`, `configured (key)`, `auto: the rule`, `manifest: …`, `found: …`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Resolved<T> {
    /// The value in force.
    pub value: T,
    /// Where it came from.
    pub from: String,
}

impl<T> Resolved<T> {
    fn new(value: T, from: impl Into<String>) -> Self {
        Self { value, from: from.into() }
    }
}

/// One camera's share of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct CameraPlan {
    /// Its name.
    pub name: String,
    /// Its source, passwords redacted.
    pub source: String,
    /// Whether it delivers frames on its own clock (a camera, a stream, a file at its frame rate).
    pub live: bool,
    /// Detector threads.
    pub detect_workers: Resolved<usize>,
    /// Recognizer sessions that embed a frame's faces side by side.
    pub embed_sessions: Resolved<usize>,
    /// Faces embedded per frame at most.
    pub embed_budget: Resolved<usize>,
    /// The cosine threshold it names people at.
    pub threshold: Resolved<f32>,
    /// What its frames edge does when full (`drop_oldest` live, `block` for a file read as fast as possible).
    pub frames_when_full: &'static str,
}

/// An edge as planned: its declaration with its capacity resolved.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedEdge {
    /// Which.
    pub edge: Edge,
    /// From.
    pub from: &'static str,
    /// To.
    pub to: &'static str,
    /// Items it holds (`None`: unbounded).
    pub capacity: Option<usize>,
    /// What a full one does (`by_liveness`: see each camera).
    pub when_full: String,
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Cores this process may use.
    pub cores: usize,
    /// Detector and recognizer (manifest names).
    pub detector: String,
    /// The recognizer.
    pub recognizer: String,
    /// The threshold in force where a camera sets none.
    pub threshold: Resolved<f32>,
    /// Below this cosine a face continuing a track by position is not the same face.
    pub same_face_min: Resolved<f32>,
    /// A face re-joins a lost track at this cosine.
    pub reid_min: Resolved<f32>,
    /// A face continues a stranger at this cosine (`None`: `[strangers]` off).
    pub strangers_threshold: Option<Resolved<f32>>,
    /// Inference threads per session.
    pub intra_threads: Resolved<usize>,
    /// Inference sessions in all (every camera's detectors and recognizers).
    pub sessions: usize,
    /// The cameras.
    pub cameras: Vec<CameraPlan>,
    /// Files and folders, as found, by key.
    pub paths: std::collections::BTreeMap<String, Resolved<String>>,
    /// The edges.
    pub edges: Vec<PlannedEdge>,
    /// File descriptors the configuration may need, and the limit.
    pub fds: FdBudget,
}

/// `default` when `value` is what the embedded defaults say for `key`, else `configured (key)`.
fn origin(defaults: &Config, key: &str, same_as_default: impl Fn(&Config) -> bool) -> String {
    match same_as_default(defaults) {
        true => "default".into(),
        false => format!("configured ({key})"),
    }
}

/// Detector threads for a camera: `detect.workers`, or when 0, one for full scans and regions (they follow faces
/// from frame to frame), one per four cores for a live source (it gives a frame per frame interval, which one
/// detector keeps up with on small machines), one per core for a file read as fast as possible (detection bounds
/// it); one to four either way.
pub fn detect_workers(cfg: &Config, cores: usize, live: bool) -> Resolved<usize> {
    match (cfg.detect.workers, cfg.detect.full_scan_every, live) {
        (n, _, _) if n > 0 => Resolved::new(n, "configured (detect.workers)"),
        (0, f, _) if f > 0 => {
            Resolved::new(1, "auto: full scans and regions follow faces frame to frame, so one detector sees every frame")
        }
        (_, _, true) => Resolved::new((cores / 4).clamp(1, 4), format!("auto: live source, one per four cores of {cores} (1 to 4)")),
        (_, _, false) => Resolved::new(cores.clamp(1, 4), format!("auto: file as fast as possible, one per core of {cores} (1 to 4)")),
    }
}

/// Recognizer sessions for a camera: `track.embed_sessions`, or when 0, for a live source one per core its detect
/// workers leave free (one or two: a live camera alone then runs no more inference threads than there are cores,
/// so its embeddings do not slow the next frame's detection; BENCHMARKS.md "Tail latency"), for a file read as
/// fast as possible two (one on a single core).
pub fn embed_sessions(cfg: &Config, cores: usize, workers: usize, live: bool) -> Resolved<usize> {
    match (cfg.track.embed_sessions, live) {
        (n, _) if n > 0 => Resolved::new(n, "configured (track.embed_sessions)"),
        (_, true) => Resolved::new(
            cores.saturating_sub(workers).clamp(1, 2),
            format!("auto: live source, the cores of {cores} its {workers} detect worker(s) leave (1 to 2)"),
        ),
        (_, false) => Resolved::new(cores.clamp(1, 2), format!("auto: file as fast as possible, two (one on a single core of {cores})")),
    }
}

/// Faces embedded per frame at most: `track.embed_budget`, or when 0 one per recognizer session (a frame costs one
/// embedding round at most; a group of new faces is spread over frames, not one frame held).
pub fn embed_budget(cfg: &Config, sessions: usize) -> Resolved<usize> {
    match cfg.track.embed_budget {
        0 => Resolved::new(sessions, "auto: one per recognizer session"),
        n => Resolved::new(n, "configured (track.embed_budget)"),
    }
}

/// Inference threads per session: `runtime.intra_threads`, or when 0 the cores shared among every session (each
/// taking every core oversubscribes the CPU: on 2 cores the sample clip ran at 57–65 fps that way and 75–77 fps
/// with one thread each, BENCHMARKS.md).
pub fn intra_threads(cfg: &Config, cores: usize, sessions: usize) -> Resolved<usize> {
    match cfg.runtime.intra_threads {
        0 => Resolved::new((cores / sessions.max(1)).max(1), format!("auto: {cores} cores shared by {sessions} session(s)")),
        n => Resolved::new(n, "configured (runtime.intra_threads)"),
    }
}

/// Cores this process may use.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

impl Plan {
    /// The plan for this machine ([`available_cores`], the descriptor limits of this process).
    pub fn for_this_machine(cfg: &Config) -> Result<Self, ModelError> {
        let (soft, hard) = crate::config::fds::limits().unwrap_or((1024, 1024));
        Self::resolve(cfg, available_cores(), (hard, hard.max(soft)))
    }

    /// The plan for `cores` cores and descriptor limits `(soft, hard)` (the daemon raises soft to hard).
    pub fn resolve(cfg: &Config, cores: usize, fd_limits: (u64, u64)) -> Result<Self, ModelError> {
        let defaults = Config::default_embedded().unwrap_or_else(|_| cfg.clone());
        let manifest = Manifest::configured(&cfg.models.manifest)?;
        let rec = manifest.recognizer(&cfg.models.recognizer)?;
        let (value, from) = crate::sessions::threshold_for(cfg, rec);
        let threshold = Resolved::new(value, from);
        let same_face_min = match cfg.track.same_face_min {
            Some(t) => Resolved::new(t.get(), "configured (track.same_face_min)"),
            None => Resolved::new(rec.same_face_min, format!("manifest: {}", cfg.models.recognizer)),
        };
        let strangers_threshold = cfg.strangers.enabled.then(|| match (cfg.strangers.threshold, rec.stranger_min) {
            (Some(t), _) => Resolved::new(t.get(), "configured (strangers.threshold)"),
            (None, Some(t)) => Resolved::new(t, format!("manifest: {} stranger_min", cfg.models.recognizer)),
            (None, None) => Resolved::new(threshold.value + 0.1, "auto: the naming threshold + 0.1"),
        });
        let reid_min = match cfg.track.reid_min {
            Some(t) => Resolved::new(t.get(), "configured (track.reid_min)"),
            None => Resolved::new(rec.reid_min, format!("manifest: {}", cfg.models.recognizer)),
        };
        let cameras: Vec<CameraPlan> = cfg
            .cameras()
            .iter()
            .enumerate()
            .map(|(i, (capture, own))| {
                let live = crate::capture::is_live(capture);
                let workers = detect_workers(cfg, cores, live);
                let sessions = embed_sessions(cfg, cores, workers.value, live);
                let budget = embed_budget(cfg, sessions.value);
                let threshold = match own {
                    Some(t) => Resolved::new(t.get(), format!("configured (cameras[{i}].threshold)")),
                    None => threshold.clone(),
                };
                CameraPlan {
                    name: capture.camera.clone(),
                    source: crate::capture::secrets::redact(&capture.source),
                    live,
                    detect_workers: workers,
                    embed_sessions: sessions,
                    embed_budget: budget,
                    threshold,
                    frames_when_full: topology::policy_text(topology::policy(Edge::Frames, live)),
                }
            })
            .collect();
        let sessions: usize = cameras.iter().map(|c| c.detect_workers.value + c.embed_sessions.value).sum();
        let intra = intra_threads(cfg, cores, sessions);
        let mut paths: std::collections::BTreeMap<String, Resolved<String>> = [
            ("models.dir".to_string(), Resolved::new(cfg.models.dir.clone(), found(&defaults.models.dir, &cfg.models.dir))),
            (
                "models.manifest".to_string(),
                Resolved::new(cfg.models.manifest.clone(), found(&defaults.models.manifest, &cfg.models.manifest)),
            ),
            (
                "runtime.ort_library".to_string(),
                Resolved::new(cfg.runtime.ort_library.clone(), found(&defaults.runtime.ort_library, &cfg.runtime.ort_library)),
            ),
            (
                "gallery.path".to_string(),
                Resolved::new(
                    resolve_path(&cfg.gallery.path).display().to_string(),
                    origin(&defaults, "gallery.path", |d| d.gallery.path == cfg.gallery.path),
                ),
            ),
        ]
        .into_iter()
        .collect();
        if !cfg.publish.socket.trim().is_empty() {
            let from = origin(&defaults, "publish.socket", |d| d.publish.socket == cfg.publish.socket);
            paths.insert("publish.socket".into(), Resolved::new(resolve_path(&cfg.publish.socket).display().to_string(), from));
        }
        if cfg.snapshots.enabled {
            let from = origin(&defaults, "snapshots.dir", |d| d.snapshots.dir == cfg.snapshots.dir);
            paths.insert("snapshots.dir".into(), Resolved::new(resolve_path(&cfg.snapshots.dir).display().to_string(), from));
        }
        let queues = super::Queues { frames: cfg.pipeline.frame_queue.get(), detections: cfg.pipeline.stage_queue.get() };
        let edges = EDGES
            .iter()
            .map(|e| PlannedEdge {
                edge: e.edge,
                from: e.from,
                to: e.to,
                capacity: match e.capacity {
                    Capacity::FrameQueue => Some(queues.frames),
                    Capacity::StageQueue => Some(queues.detections),
                    Capacity::Fixed(n) => Some(n),
                    Capacity::Unbounded => None,
                },
                when_full: match e.when_full {
                    topology::WhenFull::Always(p) => topology::policy_text(p).to_string(),
                    topology::WhenFull::ByLiveness => "by_liveness".to_string(),
                },
            })
            .collect();
        Ok(Self {
            cores,
            detector: cfg.models.detector.clone(),
            recognizer: cfg.models.recognizer.clone(),
            threshold,
            same_face_min,
            reid_min,
            strangers_threshold,
            intra_threads: intra,
            sessions,
            cameras,
            paths,
            edges,
            fds: crate::config::fds::budget(cfg, fd_limits.0, fd_limits.1),
        })
    }

    /// The configuration to make the model sessions with: `runtime.intra_threads` as planned.
    pub fn runtime_config(&self, cfg: &Config) -> Config {
        let mut cfg = cfg.clone();
        cfg.runtime.intra_threads = self.intra_threads.value;
        cfg
    }

    /// The plan as text, one value a line with where it came from.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let line = |s: &mut String, key: &str, value: &dyn std::fmt::Display, from: &str| {
            let _ = writeln!(s, "  {key:<26} {value:<12} {from}");
        };
        let _ = writeln!(
            s,
            "models: {} + {} on {} core(s), {} inference session(s)",
            self.detector, self.recognizer, self.cores, self.sessions
        );
        line(&mut s, "threshold", &self.threshold.value, &self.threshold.from);
        line(&mut s, "same_face_min", &self.same_face_min.value, &self.same_face_min.from);
        line(&mut s, "reid_min", &self.reid_min.value, &self.reid_min.from);
        if let Some(t) = &self.strangers_threshold {
            line(&mut s, "strangers.threshold", &t.value, &t.from);
        }
        line(&mut s, "intra_threads", &self.intra_threads.value, &self.intra_threads.from);
        for c in &self.cameras {
            let _ = writeln!(
                s,
                "camera {} ({}, {}; frames when full: {})",
                c.name,
                c.source,
                if c.live { "live" } else { "as fast as possible" },
                c.frames_when_full
            );
            line(&mut s, "detect_workers", &c.detect_workers.value, &c.detect_workers.from);
            line(&mut s, "embed_sessions", &c.embed_sessions.value, &c.embed_sessions.from);
            line(&mut s, "embed_budget", &c.embed_budget.value, &c.embed_budget.from);
            line(&mut s, "threshold", &c.threshold.value, &c.threshold.from);
        }
        let _ = writeln!(s, "paths:");
        for (key, p) in &self.paths {
            line(&mut s, key, &p.value, &p.from);
        }
        let _ = writeln!(s, "edges:");
        for e in &self.edges {
            let capacity = e.capacity.map_or_else(|| "unbounded".to_string(), |n| n.to_string());
            let _ = writeln!(
                s,
                "  {:<10} {:>8} → {:<10} {:>9}  {}",
                format!("{:?}", e.edge).to_lowercase(),
                e.from,
                e.to,
                capacity,
                e.when_full
            );
        }
        let _ = writeln!(s, "file descriptors: {} needed of {} (hard {})", self.fds.needed, self.fds.limit, self.fds.hard);
        s
    }
}

/// Where a located path came from: the default's place, or the configured one, and whether it was looked up.
fn found(default: &str, value: &str) -> String {
    let named = std::path::Path::new(value);
    let looked_up = named.is_absolute() && !std::path::Path::new(default).is_absolute();
    match looked_up {
        true => format!("found (default `{default}`, looked up from the binary's place)"),
        false if value == default => "default".into(),
        false => "configured".into(),
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

    /// Every "0 = auto" rule, as a table: (cores, live, settings) → (detect workers, embedding sessions, budget,
    /// inference threads per session).
    /// (cores, live, settings, (detect workers, embedding sessions, budget, inference threads)).
    type Case<'a> = (usize, bool, &'a [(&'a str, &'a str)], (usize, usize, usize, usize));

    #[test]
    fn the_auto_rules_decide_workers_sessions_budget_and_threads() {
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // A live camera: one detector per four cores, the cores it leaves for recognizers (1–2).
            (2, true, &[], (1, 1, 1, 1)),
            (4, true, &[], (1, 2, 2, 1)),
            (16, true, &[], (4, 2, 2, 2)),
            (1, true, &[], (1, 1, 1, 1)),
            // A file as fast as possible: a detector per core (1–4), two recognizers (one on one core).
            (2, false, &[], (2, 2, 2, 1)),
            (1, false, &[], (1, 1, 1, 1)),
            (8, false, &[], (4, 2, 2, 1)),
            // Full scans and regions: one detector whatever the cores.
            (8, false, &[("detect.full_scan_every", "10")], (1, 2, 2, 2)),
            // Set by hand: as set.
            (2, true, &[("track.embed_sessions", "3")], (1, 3, 3, 1)),
            (2, true, &[("detect.workers", "2"), ("track.embed_budget", "5"), ("runtime.intra_threads", "3")], (2, 1, 5, 3)),
        ];
        for (cores, live, settings, (workers, sessions, budget, threads)) in cases {
            let cfg = config(settings);
            let w = detect_workers(&cfg, *cores, *live);
            let e = embed_sessions(&cfg, *cores, w.value, *live);
            let b = embed_budget(&cfg, e.value);
            let t = intra_threads(&cfg, *cores, w.value + e.value);
            assert_eq!(
                (w.value, e.value, b.value, t.value),
                (*workers, *sessions, *budget, *threads),
                "{cores} cores, live {live}, {settings:?}"
            );
            for from in [&w.from, &e.from, &b.from, &t.from] {
                assert!(from.starts_with("auto: ") || from.starts_with("configured ("), "{from}");
            }
        }
    }

    #[test]
    fn a_live_camera_gets_the_embedding_sessions_its_detect_workers_leave_cores_for() {
        // Moved from track::config: the rule's own checks.
        let auto = config(&[]);
        // Live: the cores left beside the detect workers, at most two, at least one.
        assert_eq!(embed_sessions(&auto, 2, 1, true).value, 1);
        assert_eq!(embed_sessions(&auto, 4, 1, true).value, 2);
        assert_eq!(embed_sessions(&auto, 16, 4, true).value, 2);
        assert_eq!(embed_sessions(&auto, 1, 1, true).value, 1);
        // A file read as fast as possible: two (one on one core), whatever the detect workers.
        assert_eq!(embed_sessions(&auto, 2, 2, false).value, 2);
        assert_eq!(embed_sessions(&auto, 1, 1, false).value, 1);
        // Set by hand: as set.
        assert_eq!(embed_sessions(&config(&[("track.embed_sessions", "3")]), 2, 1, true).value, 3);
    }
}
