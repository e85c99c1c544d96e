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
//! | `facewatch_subscribers`, `facewatch_subscriber_events_dropped_total` | gauge, counter | `camera` |
//! | `facewatch_mqtt_connected`, `facewatch_mqtt_messages_dropped_total` | gauge, counter | (with `[mqtt]`) |

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::base::stats::{StageStats, BUCKETS_S};

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

pub(super) async fn serve(State(shared): State<Arc<Shared>>) -> Response {
    let mut out = String::new();
    let _ = writeln!(out, "# HELP facewatch_up Whether the daemon is running.\n# TYPE facewatch_up gauge\nfacewatch_up 1");
    let stats = shared.stats.lock().clone();
    if let Some(stats) = stats {
        let cam = format!("camera=\"{}\"", label(&shared.camera));
        let frames = stats.capture.frames.load(Ordering::Relaxed);
        let fps = shared.fps.lock().fps(stats.track.frames.load(Ordering::Relaxed), stats.started);
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{{cam}}} {v}");
        };
        counter(&mut out, "facewatch_frames_total", "Frames read from the source.", frames);
        let _ = writeln!(
            out,
            "# HELP facewatch_fps Frames processed per second, since the previous scrape.\n# TYPE facewatch_fps gauge\nfacewatch_fps{{{cam}}} {:.2}",
            fps
        );
        let source_up = u8::from(!stats.capture.retrying.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP facewatch_source_up 0 while a lost source is being retried.\n# TYPE facewatch_source_up gauge\nfacewatch_source_up{{{cam}}} {source_up}");
        counter(&mut out, "facewatch_faces_total", "Faces detected.", stats.faces.load(Ordering::Relaxed));
        counter(
            &mut out,
            "facewatch_faces_embedded_total",
            "Faces aligned and embedded (the rest kept their track's identity).",
            stats.embedded.load(Ordering::Relaxed),
        );
        counter(&mut out, "facewatch_shot_cuts_total", "Shot cuts detected.", stats.cuts.load(Ordering::Relaxed));
        counter(&mut out, "facewatch_events_total", "Events published.", stats.publish.frames.load(Ordering::Relaxed));
        for (name, help, get) in [
            (
                "facewatch_frames_dropped_total",
                "Items dropped on the stage's input (capture: frames evicted for newer ones; publish: events refused).",
                0,
            ),
            ("facewatch_stage_errors_total", "Items that failed in the stage (logged, skipped).", 1),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for s in stats.stages() {
                let v = if get == 0 { s.dropped.load(Ordering::Relaxed) } else { s.errors.load(Ordering::Relaxed) };
                let _ = writeln!(out, "{name}{{{cam},stage=\"{}\"}} {v}", s.name);
            }
        }
        let o = &stats.outputs;
        let _ = writeln!(out, "# HELP facewatch_subscribers Subscribers on the event socket.\n# TYPE facewatch_subscribers gauge\nfacewatch_subscribers{{{cam}}} {}", o.subscribers.load(Ordering::Relaxed));
        counter(
            &mut out,
            "facewatch_subscriber_events_dropped_total",
            "Events the socket's slow subscribers lost (each its own oldest).",
            o.subscriber_dropped.load(Ordering::Relaxed),
        );
        if o.mqtt.load(Ordering::Relaxed) {
            let up = u8::from(o.mqtt_connected.load(Ordering::Relaxed));
            let _ = writeln!(out, "# HELP facewatch_mqtt_connected Whether the MQTT broker is connected.\n# TYPE facewatch_mqtt_connected gauge\nfacewatch_mqtt_connected {up}");
            let dropped = o.mqtt_dropped.load(Ordering::Relaxed);
            let _ = writeln!(out, "# HELP facewatch_mqtt_messages_dropped_total MQTT messages dropped (queue full or broker away).\n# TYPE facewatch_mqtt_messages_dropped_total counter\nfacewatch_mqtt_messages_dropped_total {dropped}");
        }
        let _ = writeln!(out, "# HELP facewatch_stage_seconds Time per item in each stage.\n# TYPE facewatch_stage_seconds histogram");
        for s in stats.stages().into_iter().chain([&stats.embed_face]) {
            histogram(&mut out, "facewatch_stage_seconds", &format!("{cam},stage=\"{}\"", s.name), s);
        }
        let _ = writeln!(out, "# HELP facewatch_frame_to_result_seconds Capture to the track stage's result, per frame.\n# TYPE facewatch_frame_to_result_seconds histogram");
        histogram(&mut out, "facewatch_frame_to_result_seconds", &cam, &stats.latency);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}
