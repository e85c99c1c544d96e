//! `GET /api/metrics`: the pipeline's counters in the Prometheus text format (version 0.0.4). Every family is
//! described once (`# HELP`, `# TYPE`), with a sample per camera where it has a `camera` label; nothing here changes
//! when it is read, so several scrapers see the same figures.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `facewatch_up` | gauge | |
//! | `facewatch_build_info` | gauge (1) | `version`, `commit`, `profile`, `features` |
//! | `facewatch_frames_total` | counter | `camera` |
//! | `facewatch_fps` | gauge | `camera` (frames per second over the last 5 s, sampled by the track stage; since start when younger) |
//! | `facewatch_frames_dropped_total` | counter | `camera`, `stage` |
//! | `facewatch_stage_errors_total` | counter | `camera`, `stage` |
//! | `facewatch_stage_seconds` | histogram | `camera`, `stage` (time per item: frame, or event for `publish`) |
//! | `facewatch_frame_to_result_seconds` | histogram | `camera` (capture → track stage done) |
//! | `facewatch_faces_total`, `facewatch_faces_embedded_total`, `facewatch_shot_cuts_total` | counter | `camera` |
//! | `facewatch_events_total` | counter | `camera` |
//! | `facewatch_source_up` | gauge | `camera` (0 while a lost source is retried) |
//! | `facewatch_gallery_persons`, `facewatch_gallery_embeddings`, `facewatch_strangers` | gauge | (the gallery the cameras search, in memory) |
//! | `facewatch_mqtt_connected` | gauge | (with `[mqtt]`) |
//! | `facewatch_output_subscribers`, `facewatch_output_events_dropped_total` | gauge, counter | `output` (`socket`, `sse`, `mqtt`, `print`, `record`) |
//! | `process_cpu_seconds_total` | counter | (user and system time) |
//! | `process_resident_memory_bytes`, `process_virtual_memory_bytes` | gauge | |
//! | `process_open_fds`, `process_max_fds`, `process_threads`, `process_start_time_seconds` | gauge | |
//!
//! The `process_*` families are those of the Prometheus client libraries, read from `/proc/self` at each scrape.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::metrics::{StageStats, Stats, BUCKETS_S};

/// A label value with `\`, `"` and newlines escaped, as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn histogram(out: &mut String, name: &str, labels: &str, s: &StageStats) {
    let h = s.histogram();
    for (bound, count) in BUCKETS_S.iter().zip(&h.cumulative) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum_s);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

/// One family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// `facewatch_build_info`: what this binary is, as labels of a constant 1.
fn build_info(out: &mut String) {
    use crate::base::build::{COMMIT, FEATURES, PROFILE, VERSION};
    family(out, "facewatch_build_info", "gauge", "The version, commit, Cargo profile and compiled-in features of this binary (always 1).");
    let _ = writeln!(
        out,
        "facewatch_build_info{{version=\"{}\",commit=\"{}\",profile=\"{}\",features=\"{}\"}} 1",
        label(VERSION),
        label(COMMIT),
        label(PROFILE),
        label(FEATURES)
    );
}

/// The process's own figures, as the Prometheus client libraries name them, from `/proc/self` (Linux).
#[derive(Debug, Clone, PartialEq)]
struct Process {
    /// User and system time, seconds.
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    threads: u64,
    /// Since the Unix epoch; `None` where `/proc/stat` is hidden (the unit's `ProcSubset=pid`).
    start_time_seconds: Option<f64>,
    /// `None` where `/proc/self/fd` cannot be listed.
    open_fds: Option<u64>,
    /// The soft limit on open files; `None` when unlimited or unknown.
    max_fds: Option<u64>,
}

impl Process {
    /// Reads them now; `None` without `/proc` (not Linux).
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Hidden under the unit's ProcSubset=pid: everything but the start time is still known.
        let boot = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        // SAFETY: sysconf only reads a system constant.
        let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
        let mut p = Self::parse(&stat, &boot, u64::try_from(ticks).ok()?, u64::try_from(page).ok()?)?;
        // Counting the entries opens one more descriptor (the listing's own), as the client libraries count.
        p.open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes the limit into the struct it is given, which lives through the call.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 && limit.rlim_cur != libc::RLIM_INFINITY {
            p.max_fds = Some(limit.rlim_cur);
        }
        Some(p)
    }

    /// From `/proc/self/stat` and `/proc/stat` (`btime`), with the clock's ticks per second and the page size.
    fn parse(stat: &str, proc_stat: &str, ticks: u64, page: u64) -> Option<Self> {
        // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // fields[0] is field 3 (state): field n is fields[n - 3].
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        let ticks = ticks.max(1) as f64;
        let btime: Option<u64> = proc_stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|b| b.trim().parse().ok());
        Some(Self {
            cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
            threads: field(20)?,
            start_time_seconds: btime.and_then(|b| Some(b as f64 + field(22)? as f64 / ticks)),
            virtual_bytes: field(23)?,
            resident_bytes: field(24)? * page,
            open_fds: None,
            max_fds: None,
        })
    }

    fn write(&self, out: &mut String) {
        let mut gauge = |name: &str, kind: &str, help: &str, value: String| {
            family(out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        };
        gauge(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            format!("{:.2}", self.cpu_seconds),
        );
        gauge("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", self.resident_bytes.to_string());
        gauge("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", self.virtual_bytes.to_string());
        if let Some(start) = self.start_time_seconds {
            gauge("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", format!("{start:.2}"));
        }
        gauge("process_threads", "gauge", "Number of OS threads in the process.", self.threads.to_string());
        if let Some(n) = self.open_fds {
            gauge("process_open_fds", "gauge", "Number of open file descriptors.", n.to_string());
        }
        if let Some(n) = self.max_fds {
            gauge("process_max_fds", "gauge", "Maximum number of open file descriptors.", n.to_string());
        }
    }
}

pub(super) async fn serve(State(shared): State<Arc<Shared>>) -> Response {
    let mut out = String::new();
    family(&mut out, "facewatch_up", "gauge", "Whether the daemon is running.");
    let _ = writeln!(out, "facewatch_up 1");
    build_info(&mut out);
    let cameras = shared.cameras.lock().clone();
    // Each family once, with a sample per camera.
    let cams: Vec<(String, &Stats)> = cameras.iter().map(|c| (format!("camera=\"{}\"", label(&c.name)), c.stats.as_ref())).collect();
    let per_camera = |out: &mut String, name: &str, kind: &str, help: &str, get: &dyn Fn(&Stats) -> String| {
        family(out, name, kind, help);
        for (cam, stats) in &cams {
            let _ = writeln!(out, "{name}{{{cam}}} {}", get(stats));
        }
    };
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string();
    per_camera(&mut out, "facewatch_frames_total", "counter", "Frames read from the source.", &|s| count(&s.capture.frames));
    per_camera(
        &mut out,
        "facewatch_fps",
        "gauge",
        "Frames through the pipeline per second over the last 5 s (since start when younger).",
        &|s| format!("{:.2}", s.recent_fps()),
    );
    per_camera(&mut out, "facewatch_source_up", "gauge", "0 while a lost source is being retried.", &|s| {
        u8::from(!s.capture.retrying.load(Ordering::Relaxed)).to_string()
    });
    per_camera(&mut out, "facewatch_faces_total", "counter", "Faces detected.", &|s| count(&s.faces));
    per_camera(
        &mut out,
        "facewatch_faces_embedded_total",
        "counter",
        "Faces aligned and embedded (the rest kept their track's identity).",
        &|s| count(&s.embedded),
    );
    per_camera(&mut out, "facewatch_shot_cuts_total", "counter", "Shot cuts detected.", &|s| count(&s.cuts));
    per_camera(&mut out, "facewatch_events_total", "counter", "Events published.", &|s| count(&s.publish.frames));
    for (name, help, errors) in [
        (
            "facewatch_frames_dropped_total",
            "Items dropped on the stage's input (capture: frames evicted for newer ones; publish: events refused).",
            false,
        ),
        ("facewatch_stage_errors_total", "Items that failed in the stage (logged, skipped).", true),
    ] {
        family(&mut out, name, "counter", help);
        for (cam, stats) in &cams {
            for s in stats.stages() {
                let v = if errors { &s.errors } else { &s.dropped };
                let _ = writeln!(out, "{name}{{{cam},stage=\"{}\"}} {}", s.name, count(v));
            }
        }
    }
    // The outputs are the daemon's, shared by every camera.
    if let Some((_, stats)) = cams.first() {
        let o = &stats.outputs;
        let outputs = o.by_output.lock().clone();
        // The socket's and MQTT's losses are samples of facewatch_output_events_dropped_total, not families of
        // their own.
        if o.mqtt.load(Ordering::Relaxed) {
            family(&mut out, "facewatch_mqtt_connected", "gauge", "Whether the MQTT broker is connected.");
            let _ = writeln!(out, "facewatch_mqtt_connected {}", u8::from(o.mqtt_connected.load(Ordering::Relaxed)));
        }
        family(&mut out, "facewatch_output_subscribers", "gauge", "Readers of each output now (socket subscribers, event-stream clients).");
        for (name, c) in &outputs {
            if let Some(n) = c.subscribers {
                let _ = writeln!(out, "facewatch_output_subscribers{{output=\"{name}\"}} {n}");
            }
        }
        family(
            &mut out,
            "facewatch_output_events_dropped_total",
            "counter",
            "Events each output lost (slow readers, a full queue, the broker away).",
        );
        for (name, c) in &outputs {
            let _ = writeln!(out, "facewatch_output_events_dropped_total{{output=\"{name}\"}} {}", c.dropped);
        }
    }
    // One gallery in memory for every camera: the first one's view says it.
    if let Some(g) = cameras.first().and_then(|c| c.gallery.now()) {
        for (name, help, value) in [
            ("facewatch_gallery_persons", "Persons enrolled in the gallery the cameras search.", g.persons),
            ("facewatch_gallery_embeddings", "Embeddings (photos) of the gallery the cameras search.", g.embeddings),
            ("facewatch_strangers", "Strangers known, those met by every camera.", g.strangers),
        ] {
            family(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {value}");
        }
    }
    family(&mut out, "facewatch_stage_seconds", "histogram", "Time per item in each stage.");
    for (cam, stats) in &cams {
        for s in stats.stages().into_iter().chain([&stats.embed_face]) {
            histogram(&mut out, "facewatch_stage_seconds", &format!("{cam},stage=\"{}\"", s.name), s);
        }
    }
    family(&mut out, "facewatch_frame_to_result_seconds", "histogram", "Capture to the track stage's result, per frame.");
    for (cam, stats) in &cams {
        histogram(&mut out, "facewatch_frame_to_result_seconds", cam, &stats.latency);
    }
    if let Some(p) = Process::read() {
        p.write(&mut out);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_figures_from_proc_text() {
        // A command name with a space and a parenthesis: fields are counted after the last `)`.
        let stat = "4242 (face watch) x) S 1 4242 4242 0 -1 4194560 9000 0 3 0 250 50 0 0 20 0 17 0 123400 \
                    2147483648 30000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        let proc_stat = "cpu  1 2 3 4\nintr 5\nctxt 6\nbtime 1700000000\nprocesses 7\n";
        let p = Process::parse(stat, proc_stat, 100, 4096).expect("parsed");
        assert_eq!(p.cpu_seconds, 3.0, "250 + 50 ticks at 100 a second");
        assert_eq!(p.threads, 17);
        assert_eq!(p.start_time_seconds, Some(1_700_001_234.0), "btime + 123400 ticks");
        assert_eq!(p.virtual_bytes, 2_147_483_648);
        assert_eq!(p.resident_bytes, 30_000 * 4096);
        assert_eq!(Process::parse("1 (x) S 1", proc_stat, 100, 4096), None, "a short line is no figures");
        let hidden = Process::parse(stat, "", 100, 4096).expect("the rest without /proc/stat (ProcSubset=pid)");
        assert_eq!((hidden.start_time_seconds, hidden.resident_bytes), (None, p.resident_bytes));
    }

    #[test]
    fn this_process_reads_itself() {
        let p = Process::read().expect("/proc");
        assert!(p.resident_bytes > 0 && p.virtual_bytes >= p.resident_bytes, "{p:?}");
        assert!(p.threads >= 1 && p.open_fds.is_some_and(|n| n >= 3), "{p:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs_f64();
        let start = p.start_time_seconds.expect("btime");
        assert!(start <= now + 1.0 && start > now - 86_400.0 * 365.0, "{p:?}");
        let mut out = String::new();
        p.write(&mut out);
        assert!(out.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total "), "{out}");
    }
}
