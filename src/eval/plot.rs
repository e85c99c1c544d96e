//! Plots of an evaluation as PNG files: the ROC curve, the score histograms of same- and different-person pairs
//! with the threshold, and the identification confusion matrix.
//!
//! Drawn with `plotters` into an RGB buffer and written with OpenCV (already linked), so no image crate is
//! needed. Text uses the DejaVu Sans font from Debian's `fonts-dejavu-core` (installed by `scripts/setup.sh`);
//! `plotters` keeps registered fonts process-wide, so it is registered once.

use std::path::Path;
use std::sync::OnceLock;

use opencv::core::{Mat, MatTraitConst};
use plotters::prelude::*;

use super::{RocPoint, ScoredPair};
use crate::image::{write_png, ImageError};

/// Where the font is looked for.
pub const FONT_PATHS: [&str; 2] = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf"];

/// Errors drawing plots.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No usable font.
    #[error("failed to load a font for plots (looked for {}); install Debian's fonts-dejavu-core", FONT_PATHS.join(", "))]
    Font,
    /// Drawing failed.
    #[error("failed to draw {what}: {message}")]
    Draw {
        /// The plot.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// Converting or writing the image failed.
    #[error(transparent)]
    Write(#[from] ImageError),
}

impl crate::exit::Exit for PlotError {
    fn exit_code(&self) -> u8 {
        crate::exit::INTERNAL
    }
}

fn register_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        FONT_PATHS.iter().find_map(|p| std::fs::read(p).ok()).is_some_and(|bytes| {
            // plotters wants the font for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        })
    });
    if ok {
        Ok(())
    } else {
        Err(PlotError::Font)
    }
}

/// Draws with `draw` on a `w`×`h` white canvas and writes it as a PNG.
fn render(
    path: &Path,
    what: &'static str,
    (w, h): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<(), PlotError> {
    register_font()?;
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw(&root).map_err(|message| PlotError::Draw { what, message })?;
        root.present().map_err(|e| PlotError::Draw { what, message: e.to_string() })?;
    }
    let convert = |e: opencv::Error| PlotError::Write(ImageError::Encode { path: path.into(), source: Some(e) });
    let flat = Mat::from_slice(&rgb).map_err(convert)?;
    let pixels = flat.reshape(3, h as i32).map_err(convert)?;
    let mut bgr = Mat::default();
    opencv::imgproc::cvt_color_def(&pixels, &mut bgr, opencv::imgproc::COLOR_RGB2BGR).map_err(convert)?;
    Ok(write_png(path, &bgr)?)
}

/// plotters' errors are generic over its backends and borrow from them: a drawing error is kept as its message.
fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The ROC curve (true- vs false-accept rate), with the operating point `(far, tar)` of `threshold` marked
/// (measured at the threshold itself: the curve's points sit between observed scores).
pub fn roc_png(path: &Path, curve: &[RocPoint], auc: f32, threshold: f32, (far, tar): (f32, f32)) -> Result<(), PlotError> {
    render(path, "the ROC curve", (640, 560), |root| {
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(format!("ROC (AUC {auc:.4})"), ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0f32..1f32, 0f32..1.02f32)
            .map_err(err)?;
        chart.configure_mesh().x_desc("false-accept rate").y_desc("true-accept rate").draw().map_err(err)?;
        chart.draw_series(LineSeries::new(curve.iter().map(|p| (p.far, p.tar)), BLUE.stroke_width(2))).map_err(err)?;
        chart
            .draw_series([Circle::new((far, tar), 5, RED.filled())])
            .map_err(err)?
            .label(format!("threshold {threshold:.3}: FAR {far:.3}, TAR {tar:.3}"))
            .legend(|(x, y)| Circle::new((x, y), 5, RED.filled()));
        chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).border_style(BLACK).draw().map_err(err)?;
        Ok(())
    })
}

/// Histograms of same-person and different-person scores (share of each class per bin), threshold marked.
pub fn scores_png(path: &Path, pairs: &[ScoredPair], threshold: f32) -> Result<(), PlotError> {
    const BINS: usize = 50;
    let (lo, hi) = (-0.25f32, 1.0f32);
    let width = (hi - lo) / BINS as f32;
    let share = |same: bool| -> Vec<f32> {
        let class: Vec<f32> = pairs.iter().filter(|p| p.same == same).map(|p| p.score).collect();
        let mut bins = [0f32; BINS];
        for s in &class {
            bins[(((s - lo) / width) as usize).min(BINS - 1)] += 1.0;
        }
        bins.iter().map(|c| c / class.len().max(1) as f32).collect()
    };
    let (same, diff) = (share(true), share(false));
    let top = same.iter().chain(&diff).copied().fold(0.0f32, f32::max).max(0.01) * 1.1;
    render(path, "the score histograms", (720, 480), |root| {
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(root)
            .caption("Scores: same person vs different persons", ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(lo..hi, 0f32..top)
            .map_err(err)?;
        chart.configure_mesh().x_desc("cosine similarity").y_desc("share of pairs").draw().map_err(err)?;
        for (bins, color, label) in [(&diff, RED, "different persons"), (&same, GREEN, "same person")] {
            chart
                .draw_series(bins.iter().enumerate().map(|(i, &v)| {
                    let x = lo + i as f32 * width;
                    Rectangle::new([(x, 0.0), (x + width, v)], color.mix(0.5).filled())
                }))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.mix(0.5).filled()));
        }
        chart
            .draw_series(LineSeries::new([(threshold, 0.0), (threshold, top)], BLACK.stroke_width(2)))
            .map_err(err)?
            .label(format!("threshold {threshold:.3}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], BLACK.stroke_width(2)));
        chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).border_style(BLACK).draw().map_err(err)?;
        Ok(())
    })
}

/// The confusion matrix: rows are true persons, columns predicted persons and `unknown`; darker is more.
pub fn confusion_png(path: &Path, labels: &[String], matrix: &[Vec<usize>]) -> Result<(), PlotError> {
    let (rows, cols) = (matrix.len(), labels.len());
    let cell = (560 / cols.max(1)).clamp(14, 48) as i32;
    let (left, topm) = (120i32, 120i32);
    let (w, h) = ((left + cell * cols as i32 + 24) as u32, (topm + cell * rows as i32 + 24) as u32);
    let max = matrix.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    render(path, "the confusion matrix", (w.max(320), h.max(240)), |root| {
        root.fill(&WHITE).map_err(err)?;
        let font = ("sans-serif", 13).into_font();
        root.draw(&Text::new("true person ↓ / predicted →", (8, 8), ("sans-serif", 15))).map_err(err)?;
        for (j, label) in labels.iter().enumerate() {
            let x = left + j as i32 * cell + cell / 2;
            root.draw(&Text::new(label.clone(), (x, topm - 8), font.clone().transform(FontTransform::Rotate270))).map_err(err)?;
        }
        for (i, row) in matrix.iter().enumerate() {
            let y = topm + i as i32 * cell;
            root.draw(&Text::new(labels[i].clone(), (8, y + cell / 3), font.clone())).map_err(err)?;
            for (j, &count) in row.iter().enumerate() {
                let x = left + j as i32 * cell;
                let shade = 1.0 - f64::from(count as u32) / max;
                let fill = RGBColor((255.0 * shade) as u8, (255.0 * shade) as u8, 255);
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], fill.filled())).map_err(err)?;
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], BLACK.mix(0.2))).map_err(err)?;
                if count > 0 {
                    let color = if shade < 0.5 { WHITE } else { BLACK };
                    root.draw(&Text::new(count.to_string(), (x + cell / 3, y + cell / 4), font.clone().color(&color))).map_err(err)?;
                }
            }
        }
        Ok(())
    })
}

/// The video timeline: per truth row, a lane of what was said on each frame of the clip — green: that person
/// named (on the face in their box), red: a known name on someone else (as `evaluate --video` counts it), grey:
/// faces but not that name, white: no face — under a bar of the row's own frames.
pub fn timeline_png(path: &Path, truth: &[super::video::TruthRow], said: &[super::video::SaidFrame], frames: u64) -> Result<(), PlotError> {
    use super::video::{named, wrong_name, SaidFrame};
    use std::collections::HashMap;
    let frames = frames.max(1);
    let (left, lane, top) = (200i32, 34i32, 40i32);
    let width = 1200i32;
    let h = (top + lane * truth.len() as i32 + 50) as u32;
    let by_seq: HashMap<u64, &SaidFrame> = said.iter().map(|f| (f.seq, f)).collect();
    let x_of = |seq: u64| left + ((seq as f64 / frames as f64) * f64::from(width - left - 16)) as i32;
    render(path, "the video timeline", (width as u32, h.max(140)), |root| {
        root.fill(&WHITE).map_err(err)?;
        let font = ("sans-serif", 13).into_font();
        root.draw(&Text::new(
            "truth (bar) vs said per frame: green named, red wrong name, grey other/unknown, white no face",
            (8, 10),
            ("sans-serif", 15),
        ))
        .map_err(err)?;
        for (i, row) in truth.iter().enumerate() {
            let y = top + i as i32 * lane;
            let label = format!("{}-{} {}", row.first, row.last, row.name.as_deref().unwrap_or("(strangers)"));
            root.draw(&Text::new(label, (8, y + 8), font.clone())).map_err(err)?;
            root.draw(&Rectangle::new([(x_of(row.first), y), (x_of(row.last + 1), y + 6)], BLUE.mix(0.6).filled())).map_err(err)?;
            for seq in 0..frames {
                let frame = by_seq.get(&seq).filter(|_| (row.first..=row.last).contains(&seq));
                let color = if frame.is_some_and(|f| wrong_name(truth, f)) {
                    RED
                } else if frame.is_some_and(|f| named(row, f)) {
                    GREEN
                } else if frame.is_some_and(|f| !f.faces.is_empty()) {
                    RGBColor(170, 170, 170)
                } else {
                    WHITE
                };
                let (x0, x1) = (x_of(seq), x_of(seq + 1).max(x_of(seq) + 1));
                root.draw(&Rectangle::new([(x0, y + 9), (x1, y + lane - 8)], color.filled())).map_err(err)?;
            }
            root.draw(&Rectangle::new([(left, y + 9), (x_of(frames), y + lane - 8)], BLACK.mix(0.3))).map_err(err)?;
        }
        let y = top + lane * truth.len() as i32 + 6;
        for seq in (0..=frames).step_by(25) {
            root.draw(&Text::new(seq.to_string(), (x_of(seq), y), font.clone())).map_err(err)?;
        }
        Ok(())
    })
}
