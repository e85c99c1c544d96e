//! `GET /api/metrics`: the pipeline's counters in the Prometheus text format (version 0.0.4).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `facewatch_up` | gauge | |
//! | `facewatch_frames_total` | counter | `camera` |
//! | `facewatch_fps` | gauge | `camera` (frames per second since the previous scrape, or since start) |
//! | `facewatch_frames_dropped_total` | counter | `camera`, `stage` |
//! | `facewatch_stage_errors_total` | counter | `camera`, `stage` |
//! | `facewatch_stage_seconds` | histogram | `camera`, `stage` (time per item: frame, or event for `publish`) |
//! | `facewatch_frame_to_result_seconds` | histogram | `camera` (capture → track stage done) |
//! | `facewatch_faces_total`, `facewatch_faces_embedded_total`, `facewatch_shot_cuts_total` | counter | `camera` |
//! | `facewatch_events_total` | counter | `camera` |
//! | `facewatch_source_up` | gauge | `camera` (0 while a lost source is retried) |
//! | `facewatch_subscribers`, `facewatch_subscriber_events_dropped_total` | gauge, counter | (the daemon's, shared by its cameras) |
//! | `facewatch_mqtt_connected`, `facewatch_mqtt_messages_dropped_total` | gauge, counter | (with `[mqtt]`) |
//! | `facewatch_output_subscribers`, `facewatch_output_events_dropped_total` | gauge, counter | `output` (`socket`, `sse`, `mqtt`, `print`, `record`) |

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::metrics::{StageStats, Stats, BUCKETS_S};

/// The frame count at the previous scrape, for `facewatch_fps`.
#[derive(Debug, Default)]
pub(super) struct FpsWindow {
    last: Option<(Instant, u64)>,
}

impl FpsWindow {
    /// Frames per second since the previous call (at least 1 s ago; else since the one before), or since `start`.
    fn fps(&mut self, frames: u64, start: Instant) -> f64 {
        let now = Instant::now();
        let (since, before) = self.last.unwrap_or((start, 0));
        let secs = now.duration_since(since).as_secs_f64();
        let fps = if secs > 0.0 { frames.saturating_sub(before) as f64 / secs } else { 0.0 };
        if secs >= 1.0 || self.last.is_none() {
            self.last = Some((now, frames));
        }
        fps
    }
}

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

pub(super) async fn serve(State(shared): State<Arc<Shared>>) -> Response {
    let mut out = String::new();
    family(&mut out, "facewatch_up", "gauge", "Whether the daemon is running.");
    let _ = writeln!(out, "facewatch_up 1");
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
    {
        let mut windows = shared.fps.lock();
        family(&mut out, "facewatch_fps", "gauge", "Frames processed per second, since the previous scrape.");
        for (c, (cam, stats)) in cameras.iter().zip(&cams) {
            let fps = windows.entry(c.name.clone()).or_default().fps(stats.track.frames.load(Ordering::Relaxed), stats.started);
            let _ = writeln!(out, "facewatch_fps{{{cam}}} {fps:.2}");
        }
    }
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
        let of = |name: &str| outputs.get(name).copied().unwrap_or_default();
        family(&mut out, "facewatch_subscribers", "gauge", "Subscribers on the event socket.");
        let _ = writeln!(out, "facewatch_subscribers {}", of("socket").subscribers.unwrap_or(0));
        family(
            &mut out,
            "facewatch_subscriber_events_dropped_total",
            "counter",
            "Events the socket's slow subscribers lost (each its own oldest).",
        );
        let _ = writeln!(out, "facewatch_subscriber_events_dropped_total {}", of("socket").dropped);
        if o.mqtt.load(Ordering::Relaxed) {
            family(&mut out, "facewatch_mqtt_connected", "gauge", "Whether the MQTT broker is connected.");
            let _ = writeln!(out, "facewatch_mqtt_connected {}", u8::from(o.mqtt_connected.load(Ordering::Relaxed)));
            family(&mut out, "facewatch_mqtt_messages_dropped_total", "counter", "MQTT messages dropped (queue full or broker away).");
            let _ = writeln!(out, "facewatch_mqtt_messages_dropped_total {}", of("mqtt").dropped);
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
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}
