//! Preview: an OpenCV highgui window with boxes, names, scores, track ids, fps and per-stage latency.
//!
//! In: [`PreviewFrame`]s from the track stage through a one-slot queue filled with `try_send`, so a slow window
//! skips pictures instead of slowing the pipeline. Needs a display: [`display_available`] is checked at start-up,
//! because a `DISPLAY` pointing at no X server aborts the process inside Qt, where no error can be caught.
//! Closing the window (or Esc / `q`) stops the preview only, unless `preview.close_exits` is set.

mod config;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use opencv::core::{Mat, Point, Rect, Scalar};
use opencv::{highgui, imgproc};
use tracing::{info, warn};

pub use crate::base::face::PreviewFrame;
use crate::base::face::TrackLabel;
use crate::metrics::Stats;
use crate::stage::{Context, Output, Stage};
pub use config::PreviewConfig;

/// Why no window can be opened.
#[derive(Debug, thiserror::Error)]
pub enum NoDisplay {
    /// Neither `DISPLAY` nor a Wayland socket.
    #[error("no DISPLAY is set")]
    Unset,
    /// `DISPLAY` does not parse.
    #[error("DISPLAY={0} is not host:number")]
    Malformed(String),
    /// Nothing answers at `DISPLAY`.
    #[error("DISPLAY={0} but no X server answers there")]
    Unreachable(String),
}

/// Whether a window can be opened: Qt's offscreen platform, a reachable X server, or a Wayland socket.
pub fn display_available() -> Result<(), NoDisplay> {
    if std::env::var("QT_QPA_PLATFORM").is_ok_and(|p| p == "offscreen") {
        return Ok(());
    }
    if let (Ok(wayland), Ok(dir)) = (std::env::var("WAYLAND_DISPLAY"), std::env::var("XDG_RUNTIME_DIR")) {
        if std::path::Path::new(&dir).join(wayland).exists() {
            return Ok(());
        }
    }
    let display = std::env::var("DISPLAY").map_err(|_| NoDisplay::Unset)?;
    let (host, rest) = display.split_once(':').ok_or_else(|| NoDisplay::Malformed(display.clone()))?;
    let number: u16 = rest.split('.').next().and_then(|n| n.parse().ok()).ok_or_else(|| NoDisplay::Malformed(display.clone()))?;
    let reachable = if host.is_empty() || host == "unix" {
        std::os::unix::net::UnixStream::connect(format!("/tmp/.X11-unix/X{number}")).is_ok()
    } else {
        use std::net::ToSocketAddrs;
        (host, 6000 + number)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
    };
    if reachable {
        Ok(())
    } else {
        Err(NoDisplay::Unreachable(display))
    }
}

/// The preview window's settings.
#[derive(Debug, Clone)]
pub struct Preview {
    title: String,
    close_exits: bool,
}

fn colour(label: &TrackLabel) -> Scalar {
    match (&label.name, label.known) {
        (None, _) => Scalar::new(160.0, 160.0, 160.0, 0.0),
        (Some(_), true) => Scalar::new(60.0, 200.0, 60.0, 0.0),
        (Some(_), false) => Scalar::new(40.0, 40.0, 230.0, 0.0),
    }
}

fn text(img: &mut Mat, s: &str, at: Point, c: Scalar) -> opencv::Result<()> {
    // Dark outline under the text keeps it readable on any background.
    imgproc::put_text(img, s, at, imgproc::FONT_HERSHEY_SIMPLEX, 0.5, Scalar::all(0.0), 3, imgproc::LINE_AA, false)?;
    imgproc::put_text(img, s, at, imgproc::FONT_HERSHEY_SIMPLEX, 0.5, c, 1, imgproc::LINE_AA, false)
}

/// Draws boxes, labels and the status line onto `img`.
pub fn annotate(img: &mut Mat, labels: &[TrackLabel], status: &str) -> opencv::Result<()> {
    for l in labels {
        let c = colour(l);
        let r = Rect::new(l.bbox.x.round() as i32, l.bbox.y.round() as i32, l.bbox.w.round() as i32, l.bbox.h.round() as i32);
        imgproc::rectangle(img, r, c, 2, imgproc::LINE_8, 0)?;
        let caption = match &l.name {
            Some(n) => format!("#{} {n} {:.2}", l.track, l.score),
            None => format!("#{} ...", l.track),
        };
        text(img, &caption, Point::new(r.x, (r.y - 6).max(12)), c)?;
    }
    text(img, status, Point::new(8, 18), Scalar::new(255.0, 255.0, 255.0, 0.0))
}

/// The status line: throughput and per-stage medians.
fn status_line(stats: &Stats, fps: f64) -> String {
    let ms = |s: &crate::metrics::StageStats| s.percentiles().0;
    format!(
        "{fps:.1} fps | detect {:.1} | embed {:.1} | match {:.2} | latency {:.0} ms | dropped {}",
        ms(&stats.detect),
        ms(&stats.embed),
        ms(&stats.matcher),
        ms(&stats.latency),
        stats.capture.dropped.load(Ordering::Relaxed)
    )
}

impl Preview {
    /// From `[preview]`: the window, if a display is available.
    pub fn build(cfg: &PreviewConfig) -> Result<Self, NoDisplay> {
        display_available()?;
        Ok(Self { title: "facewatch".into(), close_exits: cfg.close_exits })
    }
}

impl Stage for Preview {
    const NAME: &'static str = "preview";
    type In = PreviewFrame;
    type Out = ();
    type Ports = ();

    /// Shows frames until the input ends or the window is closed.
    fn run(self, rx: Receiver<PreviewFrame>, _output: Output<()>, (): (), cx: &Context) {
        let (stop, stats): (_, &Stats) = (&cx.stop, &cx.stats);
        if let Err(e) = highgui::named_window(&self.title, highgui::WINDOW_AUTOSIZE) {
            warn!(error = %e, "Preview window could not be opened; running without it.");
            return;
        }
        info!("Preview window open (Esc or q closes it).");
        let (mut shown, mut status) = (false, String::new());
        let (mut window_start, mut window_frames) = (Instant::now(), stats.track.frames.load(Ordering::Relaxed));
        loop {
            match rx.recv_timeout(Duration::from_millis(30)) {
                Ok(PreviewFrame { mut frame, labels }) => {
                    if window_start.elapsed() >= Duration::from_secs(1) || status.is_empty() {
                        let now = stats.track.frames.load(Ordering::Relaxed);
                        let fps = (now - window_frames) as f64 / window_start.elapsed().as_secs_f64().max(1e-3);
                        status = status_line(stats, fps);
                        (window_start, window_frames) = (Instant::now(), now);
                    }
                    let drawn = annotate(&mut frame.bgr, &labels, &status).and_then(|()| highgui::imshow(&self.title, &frame.bgr));
                    if let Err(e) = drawn {
                        warn!(error = %e, "Preview failed; running without it.");
                        break;
                    }
                    shown = true;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let key = highgui::wait_key(1).unwrap_or(-1);
            let closed = shown && highgui::get_window_property(&self.title, highgui::WND_PROP_VISIBLE).unwrap_or(0.0) < 1.0;
            if key == 27 || key == i32::from(b'q') || closed {
                if self.close_exits {
                    info!("Preview closed; stopping (preview.close_exits).");
                    stop.raise();
                } else {
                    info!("Preview closed; the daemon keeps running.");
                }
                break;
            }
        }
        let _ = highgui::destroy_window(&self.title);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::BBox;
    use opencv::core::{MatTraitConst, Vec3b, CV_8UC3};

    #[test]
    fn boxes_are_drawn_in_the_colour_of_their_identity() {
        let mut img = Mat::new_rows_cols_with_default(120, 160, CV_8UC3, Scalar::all(0.0)).expect("mat");
        let known =
            TrackLabel { track: 1, bbox: BBox { x: 20.0, y: 40.0, w: 40.0, h: 50.0 }, name: Some("ann".into()), known: true, score: 0.8 };
        let stranger = TrackLabel {
            track: 2,
            bbox: BBox { x: 100.0, y: 40.0, w: 40.0, h: 50.0 },
            name: Some("unknown".into()),
            known: false,
            score: 0.1,
        };
        annotate(&mut img, &[known, stranger], "30.0 fps").expect("draw");
        let at = |x: i32, y: i32| *img.at_2d::<Vec3b>(y, x).expect("pixel");
        assert_eq!(at(20, 70), Vec3b::from([60, 200, 60]), "known: green box edge");
        assert_eq!(at(100, 70), Vec3b::from([40, 40, 230]), "unknown: red box edge");
        assert_eq!(at(40, 70), Vec3b::from([0, 0, 0]), "inside the box untouched");
    }
}
