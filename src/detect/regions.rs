//! Small faces in large frames without full-resolution detection on every frame: a full scan at the frame's own
//! resolution every `detect.full_scan_every` frames, and in between the usual scan at `detect.input_size` plus, for
//! each small face of the previous frame that this scan missed, a `detect.region_size` square around it detected at
//! full resolution.
//!
//! A 1080p frame detected at 640 loses faces below about 30 px (10 px once scaled); detecting it whole at 1920×1088
//! costs about 9× the pixels of 640×384. The regions cost a few 256×256 inferences per frame, for the faces that
//! need them only; a face that appears small between full scans waits for the next one.

use opencv::core::{Mat, MatTraitConst, Rect};

use super::{nms, DetectError, Detection, Detector, OnnxDetector};

/// Faces whose short side is below this many input pixels at the global scan's scale are looked for in a region.
const GLOBAL_MIN_PX: f32 = 24.0;

/// A region's detection this close to an edge inside the frame is a face cut by the region.
const EDGE_PX: f32 = 2.0;

/// [`OnnxDetector`] with full scans and regions around small faces (see the module docs).
pub struct RegionDetector {
    inner: OnnxDetector,
    full_scan_every: u64,
    region: u32,
    frames: u64,
    /// The previous frame's faces, in frame pixels.
    last: Vec<Detection>,
}

impl RegionDetector {
    /// Around `inner`: a full-resolution scan every `full_scan_every` frames (≥ 1), regions of `region` px (a
    /// multiple of 32) in between.
    pub fn new(inner: OnnxDetector, full_scan_every: u32, region: u32) -> Self {
        Self { inner, full_scan_every: u64::from(full_scan_every.max(1)), region, frames: 0, last: Vec::new() }
    }

    /// The square of `region` px around `d`'s centre, inside a `w`×`h` frame (smaller when the frame is).
    fn region_around(&self, d: &Detection, w: i32, h: i32) -> Rect {
        let side = (self.region as i32).min(w).min(h);
        let (cx, cy) = ((d.bbox.x + d.bbox.w / 2.0) as i32, (d.bbox.y + d.bbox.h / 2.0) as i32);
        let x = (cx - side / 2).clamp(0, w - side);
        let y = (cy - side / 2).clamp(0, h - side);
        Rect::new(x, y, side, side)
    }
}

impl Detector for RegionDetector {
    /// The three input sizes this mode uses: the full scan's, the global scan's and a region's, each run twice
    /// (the first run after a session is made still pays its allocations).
    fn prepare(&mut self, width: u32, height: u32) -> Result<(), DetectError> {
        let frame = super::blank(width, height)?;
        let side = self.region.min(width).min(height);
        let region = super::blank(side, side)?;
        for _ in 0..2 {
            self.inner.detect_at(&frame, 0)?;
            self.inner.detect_at(&region, 0)?;
            self.inner.detect(&frame)?;
        }
        Ok(())
    }

    fn detect(&mut self, bgr: &Mat) -> Result<Vec<Detection>, DetectError> {
        let full = self.frames % self.full_scan_every == 0;
        self.frames += 1;
        let (w, h) = (bgr.cols(), bgr.rows());
        let found = if full {
            self.inner.detect_at(bgr, 0)?
        } else {
            let mut all = self.inner.detect(bgr)?;
            // The first `global` are the scan's own; regions' faces are added after them.
            let global = all.len();
            let scale = self.inner.scale_for(w as f32, h as f32);
            let mut covered: Vec<Rect> = Vec::new();
            for d in &self.last {
                let small = d.bbox.w.min(d.bbox.h) * scale < GLOBAL_MIN_PX;
                let seen = all[..global].iter().any(|g| g.bbox.iou(&d.bbox) > 0.3);
                let inside = |r: &Rect| {
                    d.bbox.x >= r.x as f32
                        && d.bbox.y >= r.y as f32
                        && d.bbox.x + d.bbox.w <= (r.x + r.width) as f32
                        && d.bbox.y + d.bbox.h <= (r.y + r.height) as f32
                };
                if !small || seen || d.bbox.w.max(d.bbox.h) > self.region as f32 / 2.0 || covered.iter().any(inside) {
                    continue;
                }
                let r = self.region_around(d, w, h);
                // A copy: the detector reads the pixels as one continuous block.
                let crop = Mat::roi(bgr, r)?.try_clone()?;
                // A face cut by the region's edge (where the edge is not the frame's) is a part of someone whose own
                // region or the global scan sees them whole.
                let (rw, rh) = (r.width as f32, r.height as f32);
                let (open_left, open_top) = (r.x > 0, r.y > 0);
                let (open_right, open_bottom) = (r.x + r.width < w, r.y + r.height < h);
                let whole = |f: &Detection| {
                    !(open_left && f.bbox.x <= EDGE_PX
                        || open_top && f.bbox.y <= EDGE_PX
                        || open_right && f.bbox.x + f.bbox.w >= rw - EDGE_PX
                        || open_bottom && f.bbox.y + f.bbox.h >= rh - EDGE_PX)
                };
                let faces: Vec<Detection> = self.inner.detect_at(&crop, 0)?.into_iter().filter(whole).collect();
                all.extend(faces.into_iter().map(|mut f| {
                    f.bbox.x += r.x as f32;
                    f.bbox.y += r.y as f32;
                    for l in &mut f.landmarks {
                        l[0] += r.x as f32;
                        l[1] += r.y as f32;
                    }
                    f
                }));
                covered.push(r);
            }
            nms(all, self.inner.nms_threshold)
        };
        self.last.clone_from(&found);
        Ok(found)
    }
}
