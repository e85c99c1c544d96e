//! Snapshots (`[snapshots]`): the face (and, as an option, the whole frame) of each identity decision, known or
//! unknown, as a JPEG under the state directory, referenced from its event (`snapshot: {"path", "url"}`), so an
//! automation can send "who was at the door" with a picture.
//!
//! Files are `<dir>/<camera>/<YYYY-MM-DD>/<HHMMSS.mmm>_t<track>_<name>.jpg` (and `….frame.jpg`), 0600 in 0700
//! directories: biometric data. The track stage only copies the face's pixels and names the file; encoding,
//! writing and retention (`max_age_days`, `max_total_mb`: the oldest go first) run on a thread of their own behind
//! a bounded queue, so a slow disk costs snapshots (counted, and the event then has none), never frames.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use opencv::core::{Mat, MatTraitConst, Rect, Vector};
use serde::{Deserialize, Serialize};

use crate::base::face::BBox;
use crate::base::units::within;
use crate::base::{Frame, TrackId};
use crate::private::PrivateDir;
use crate::stage::{Context, Output, Stage};

/// `[snapshots]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Save snapshots.
    pub enabled: bool,
    /// Where (created 0700).
    pub dir: String,
    /// Also save the whole frame.
    pub frame: bool,
    /// Delete snapshots older than this many days; 0: keep.
    pub max_age_days: u32,
    /// Keep at most this many MiB of snapshots, the oldest deleted first; 0: no bound.
    pub max_total_mb: u64,
    /// JPEG quality, 1–100.
    pub quality: u8,
    /// The face's box is widened by this share of its size on each side (the head, not only the face).
    pub margin: f32,
}

impl SnapshotConfig {
    /// What is wrong with `[snapshots]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        if !self.enabled {
            return;
        }
        if self.dir.trim().is_empty() {
            out.push("snapshots.dir: empty; name a directory (it is created 0700)".into());
        }
        if !(1..=100).contains(&self.quality) {
            out.push(format!("snapshots.quality: {} is outside 1..=100", self.quality));
        }
        if !(0.0..=2.0).contains(&self.margin) {
            out.push(format!("snapshots.margin: {} is outside 0..=2 (a share of the face's size)", self.margin));
        }
        within(out, "snapshots.max_age_days", u64::from(self.max_age_days), 36_500, "a century");
    }
}

/// Why snapshots could not start.
#[derive(Debug, thiserror::Error)]
#[error("snapshots.dir {path}: {source}")]
pub struct SnapshotError {
    /// The directory.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

impl crate::exit::Exit for SnapshotError {
    fn exit_code(&self) -> u8 {
        crate::exit::CONFIG
    }
}

/// One snapshot to write: the face (and the whole frame, with `snapshots.frame`), and where, below the snapshot
/// folder.
pub struct SnapshotJob {
    rel: PathBuf,
    face: Mat,
    frame: Option<Mat>,
}

impl SnapshotJob {
    /// Its path relative to the snapshot folder.
    pub fn rel(&self) -> &Path {
        &self.rel
    }
}

/// What a camera's track stage needs to take snapshots: it copies the face's pixels (a cheap crop) and names the
/// file; encoding and writing are the writer's ([`SnapshotWriter`]), on its own thread.
#[derive(Debug, Clone)]
pub struct Taker {
    dir: PathBuf,
    camera: String,
    frame: bool,
    margin: f32,
}

impl Taker {
    /// For `camera`, by `[snapshots]`.
    pub fn new(cfg: &SnapshotConfig, camera: &str) -> Self {
        Self { dir: crate::paths::resolve_path(&cfg.dir), camera: camera.to_string(), frame: cfg.frame, margin: cfg.margin }
    }

    /// Where snapshots are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The snapshot of the face at `bbox` (source pixels) of `frame`, of `track` named `name` at `at`; `None` when
    /// the box holds no picture.
    pub fn job(&self, frame: &Frame, bbox: BBox, track: TrackId, name: &str, at: SystemTime) -> Option<SnapshotJob> {
        let s = frame.scale;
        let (w, h) = (frame.bgr.cols(), frame.bgr.rows());
        let grow = self.margin;
        let x0 = ((bbox.x - bbox.w * grow) * s).floor().max(0.0) as i32;
        let y0 = ((bbox.y - bbox.h * grow) * s).floor().max(0.0) as i32;
        let x1 = ((bbox.x + bbox.w * (1.0 + grow)) * s).ceil().min(w as f32) as i32;
        let y1 = ((bbox.y + bbox.h * (1.0 + grow)) * s).ceil().min(h as f32) as i32;
        if x1 - x0 < 2 || y1 - y0 < 2 {
            return None;
        }
        let face = Mat::roi(&frame.bgr, Rect::new(x0, y0, x1 - x0, y1 - y0)).and_then(|r| r.try_clone()).ok()?;
        let whole = if self.frame { frame.bgr.try_clone().ok() } else { None };
        Some(SnapshotJob { rel: file_name(&self.camera, track, name, at), face, frame: whole })
    }
}

/// The snapshot writer: one thread for every camera, behind a bounded edge from each camera's track stage (a slow
/// disk costs snapshots, counted by the sender, never frames); retention applied at start, every 50 snapshots and
/// at the end.
pub struct SnapshotWriter {
    root: PrivateDir,
    quality: i32,
    retention: Retention,
}

impl SnapshotWriter {
    /// Creates (or checks and narrows) the snapshot folder, 0700.
    pub fn build(cfg: &SnapshotConfig) -> Result<Self, SnapshotError> {
        let dir = crate::paths::resolve_path(&cfg.dir);
        let root = PrivateDir::create(&dir).map_err(|source| SnapshotError { path: dir.clone(), source })?;
        let retention = Retention {
            max_age: (cfg.max_age_days > 0).then(|| Duration::from_secs(u64::from(cfg.max_age_days) * 86_400)),
            max_bytes: (cfg.max_total_mb > 0).then(|| cfg.max_total_mb.saturating_mul(1 << 20)),
        };
        Ok(Self { root, quality: i32::from(cfg.quality), retention })
    }
}

impl Stage for SnapshotWriter {
    const NAME: &'static str = "snapshots";
    type In = SnapshotJob;
    type Out = ();
    type Ports = ();

    fn run(self, jobs: Receiver<SnapshotJob>, _output: Output<()>, (): (), _cx: &Context) {
        let Self { root, quality, retention } = self;
        retention.apply(root.path());
        let mut written = 0u64;
        for job in jobs {
            if let Err(e) = write(&root, &job, quality) {
                tracing::warn!(file = %job.rel.display(), error = %e, "Snapshot not written.");
                continue;
            }
            written += 1;
            if written % 50 == 0 {
                retention.apply(root.path());
            }
        }
        retention.apply(root.path());
    }
}

/// A name as part of a file name: letters, digits, `-` and `_`; the rest `_`.
fn safe(name: &str) -> String {
    name.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).take(64).collect()
}

/// `<camera>/<YYYY-MM-DD>/<HHMMSS.mmm>_t<track>_<name>.jpg`, in UTC.
fn file_name(camera: &str, track: TrackId, name: &str, at: SystemTime) -> PathBuf {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (y, m, d) = crate::base::event::civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    PathBuf::from(safe(camera)).join(format!("{y:04}-{m:02}-{d:02}")).join(format!(
        "{:02}{:02}{:02}.{:03}_t{track}_{}.jpg",
        t / 3600,
        t / 60 % 60,
        t % 60,
        since.subsec_millis(),
        safe(name)
    ))
}

/// The whole frame's file beside the face's.
fn frame_name(rel: &Path) -> PathBuf {
    let name = rel.to_string_lossy();
    PathBuf::from(format!("{}.frame.jpg", name.strip_suffix(".jpg").unwrap_or(&name)))
}

/// Writes the job's face (and frame) below `root`, through its camera and day folders, each checked and opened
/// without following a link ([`PrivateDir`]).
fn write(root: &PrivateDir, job: &SnapshotJob, quality: i32) -> std::io::Result<()> {
    let encode = |mat: &Mat| -> std::io::Result<Vec<u8>> {
        let mut buf = Vector::<u8>::new();
        let params = Vector::from_slice(&[opencv::imgcodecs::IMWRITE_JPEG_QUALITY, quality]);
        match opencv::imgcodecs::imencode(".jpg", mat, &mut buf, &params) {
            Ok(true) => Ok(buf.as_slice().to_vec()),
            Ok(false) => Err(std::io::Error::other("the JPEG encoder refused the image")),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    };
    let names: Vec<&str> = job.rel.iter().filter_map(|c| c.to_str()).collect();
    let &[camera, day, file] = names.as_slice() else {
        return Err(std::io::Error::other(format!("{}: not camera/day/file", job.rel.display())));
    };
    let dir = root.subdir(camera)?.subdir(day)?;
    dir.write(file, &encode(&job.face)?)?;
    if let Some(frame) = &job.frame {
        let whole = frame_name(&job.rel);
        let name = whole.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        dir.write(name, &encode(frame)?)?;
    }
    Ok(())
}

/// How long snapshots are kept.
#[derive(Debug, Clone, Copy)]
struct Retention {
    max_age: Option<Duration>,
    max_bytes: Option<u64>,
}

impl Retention {
    /// Deletes snapshots older than `max_age`, then the oldest until the rest fit in `max_bytes`; empty day
    /// directories go too.
    fn apply(&self, root: &Path) {
        if self.max_age.is_none() && self.max_bytes.is_none() {
            return;
        }
        let mut files = Vec::new();
        collect(root, 0, &mut files);
        files.sort_by_key(|(_, modified, _)| *modified);
        let now = SystemTime::now();
        let mut total: u64 = files.iter().map(|(_, _, len)| len).sum();
        let mut removed = 0usize;
        for (path, modified, len) in &files {
            let old = self.max_age.is_some_and(|age| now.duration_since(*modified).unwrap_or_default() > age);
            let over = self.max_bytes.is_some_and(|max| total > max);
            if !(old || over) {
                break;
            }
            match std::fs::remove_file(path) {
                Ok(()) => {
                    total = total.saturating_sub(*len);
                    removed += 1;
                    if let Some(day) = path.parent() {
                        // Only when empty; an error here means it is not.
                        let _ = std::fs::remove_dir(day);
                    }
                }
                // Another camera's writer (they share the directory) deleted it first: it is gone all the same.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => total = total.saturating_sub(*len),
                Err(_) => {}
            }
        }
        if removed > 0 {
            tracing::debug!(removed, kept_bytes = total, "Old snapshots deleted.");
        }
    }
}

/// Every `.jpg` under `dir` (camera / day / file) with its modification time and size.
fn collect(dir: &Path, depth: usize, out: &mut Vec<(PathBuf, SystemTime, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        let path = e.path();
        if meta.is_dir() && depth < 2 {
            collect(&path, depth + 1, out);
        } else if meta.is_file() && path.extension().is_some_and(|x| x == "jpg") {
            out.push((path, meta.modified().unwrap_or(UNIX_EPOCH), meta.len()));
        }
    }
}

/// Opens the snapshot `rel` below `root` for serving it: a `.jpg` reached by plain names only (no `..`, not
/// absolute) and through no symbolic link, even one planted inside the tree.
pub fn open(root: &Path, rel: &str) -> std::io::Result<std::fs::File> {
    let rel = Path::new(rel);
    if rel.extension().is_none_or(|x| x != "jpg") {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a snapshot"));
    }
    crate::private::open_beneath(root, rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_dated_in_utc_and_safe() {
        // 2026-11-30T08:30:15.250Z
        let at = UNIX_EPOCH + Duration::from_millis(1_796_027_415_250);
        let rel = file_name("front door", 7, "Ann/../x", at);
        assert_eq!(rel, PathBuf::from("front_door/2026-11-30/083015.250_t7_Ann____x.jpg"));
        assert_eq!(frame_name(&rel), PathBuf::from("front_door/2026-11-30/083015.250_t7_Ann____x.frame.jpg"));
        assert_eq!(crate::base::event::civil_from_days(0), (1970, 1, 1));
        assert_eq!(crate::base::event::civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn only_plain_relative_jpg_paths_without_links_are_served() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("s");
        std::fs::create_dir_all(root.join("cam/2026-11-30")).expect("mkdir");
        std::fs::write(root.join("cam/2026-11-30/a.jpg"), b"jpg").expect("write");
        std::fs::write(root.join("cam/a.db"), b"db").expect("write");
        std::fs::write(t.path().join("x.jpg"), b"outside").expect("write");
        std::os::unix::fs::symlink(t.path().join("x.jpg"), root.join("cam/2026-11-30/evil.jpg")).expect("symlink");
        assert!(open(&root, "cam/2026-11-30/a.jpg").is_ok());
        for bad in ["../x.jpg", "/etc/x.jpg", "cam/../../x.jpg", "cam/a.db", "./a.jpg", "cam/2026-11-30/evil.jpg"] {
            assert!(open(&root, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retention_deletes_the_oldest_beyond_the_size_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let day = dir.path().join("cam/2026-11-30");
        std::fs::create_dir_all(&day).expect("mkdir");
        for i in 0..5 {
            let f = day.join(format!("{i}.jpg"));
            std::fs::write(&f, vec![0u8; 1000]).expect("write");
            let t = std::fs::FileTimes::new().set_modified(SystemTime::now() - Duration::from_secs(100 - i * 10));
            std::fs::File::options().write(true).open(&f).expect("open").set_times(t).expect("times");
        }
        Retention { max_age: None, max_bytes: Some(2500) }.apply(dir.path());
        let mut left: Vec<String> =
            std::fs::read_dir(&day).expect("ls").map(|e| e.expect("e").file_name().to_string_lossy().into()).collect();
        left.sort();
        assert_eq!(left, ["3.jpg", "4.jpg"], "the oldest went first");
        Retention { max_age: Some(Duration::from_secs(65)), max_bytes: None }.apply(dir.path());
        assert_eq!(std::fs::read_dir(&day).expect("ls").count(), 1, "older than 65 s: gone");
    }
}
