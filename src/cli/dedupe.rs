//! `dedupe DIR`: list groups of copies (dry run), or move all but the best copy of each group out with `--move`.
//! Nothing is ever deleted or overwritten.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::photos::engine;
use super::{emit, progress, GlobalArgs, EXIT_INPUT, EXIT_OK};
use crate::config::Config;
use crate::dedupe::{self, Group, PhotoInfo, Reason, Thresholds};
use crate::model::hex;

/// `facewatch dedupe`.
#[derive(Debug, Args)]
pub struct DedupeArgs {
    /// Folder of photos (searched recursively).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Also compare faces: finds the same photo cropped or reframed (loads the models).
    #[arg(long)]
    pub faces: bool,
    /// Move every copy but the best of each group here, keeping paths relative to DIR.
    #[arg(long = "move", value_name = "DEST")]
    pub move_to: Option<PathBuf>,
    /// Largest whole-image dHash distance for "same image" (bits of 64).
    #[arg(long, default_value_t = Thresholds::default().max_image_distance)]
    pub max_image_distance: u32,
    /// Smallest face cosine for "same face" (with --faces).
    #[arg(long, default_value_t = Thresholds::default().min_face_cosine)]
    pub min_face_cosine: f32,
}

#[derive(Serialize)]
struct Unreadable {
    path: PathBuf,
    reason: String,
}

#[derive(Serialize)]
struct Moved {
    from: PathBuf,
    to: PathBuf,
}

#[derive(Serialize)]
struct DedupeOut {
    dir: PathBuf,
    photos: usize,
    faces_compared: bool,
    thresholds: Thresholds,
    groups: Vec<Group>,
    copies: usize,
    /// Photos that could not be decoded: compared by their bytes only.
    unreadable: Vec<Unreadable>,
    moved: Vec<Moved>,
    dry_run: bool,
}

/// Runs `dedupe`; `cfg` is present when faces are compared. Exit 3 when a move failed.
pub(super) fn dedupe(g: &GlobalArgs, cfg: Option<&Config>, args: DedupeArgs) -> anyhow::Result<u8> {
    let files = crate::folders::photos_under(&args.dir).with_context(|| format!("failed to list photos under {}", args.dir.display()))?;
    let mut engine = cfg.map(engine).transpose()?;
    let max_pixels = cfg.map_or(40_000_000, |c| c.detect.max_image_pixels.get());
    let bar = progress(g, "hashing", files.len());
    let mut photos = Vec::with_capacity(files.len());
    let mut unreadable = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
        let mut info = PhotoInfo {
            path: path.clone(),
            sha256: hex(&Sha256::digest(&bytes)),
            file_size: bytes.len() as u64,
            pixels: 0,
            dhash: None,
            face: None,
        };
        match crate::image::decode(&bytes, path, max_pixels) {
            Ok(frame) => {
                info.pixels = u64::from(frame.original_width) * u64::from(frame.original_height);
                info.dhash = Some(dedupe::dhash(&frame.bgr)?);
                if let Some(engine) = engine.as_mut() {
                    // Photos without a face are still compared by bytes and image hash.
                    if let Ok(dets) = engine.detect(&frame) {
                        if let Some(largest) = dets.iter().max_by(|a, b| a.bbox.area().total_cmp(&b.bbox.area())) {
                            let face = engine.face(&frame, largest)?;
                            info.face = Some((face.embedding, dedupe::phash(&face.aligned.bgr)?));
                        }
                    }
                }
            }
            Err(e) => unreadable.push(Unreadable { path: path.clone(), reason: e.to_string() }),
        }
        photos.push(info);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let thresholds =
        Thresholds { max_image_distance: args.max_image_distance, min_face_cosine: args.min_face_cosine, ..Thresholds::default() };
    let groups = dedupe::groups(&photos, &thresholds);
    let mut moved = Vec::new();
    let mut failed = false;
    if let Some(dest) = &args.move_to {
        for (from, _) in groups.iter().flat_map(|gr| &gr.copies) {
            match move_out(from, &args.dir, dest) {
                Ok(to) => moved.push(Moved { from: from.clone(), to }),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    failed = true;
                }
            }
        }
    }
    let out = DedupeOut {
        dir: args.dir.clone(),
        photos: photos.len(),
        faces_compared: engine.is_some(),
        thresholds,
        copies: groups.iter().map(|gr| gr.copies.len()).sum(),
        groups,
        unreadable,
        moved,
        dry_run: args.move_to.is_none(),
    };
    emit(g, &out, |o| {
        println!(
            "{} photos, {} group(s) of copies, {} copies{}",
            o.photos,
            o.groups.len(),
            o.copies,
            if o.faces_compared { " (faces compared)" } else { "" }
        );
        for gr in &o.groups {
            println!("keep {}", gr.keep.display());
            for (p, r) in &gr.copies {
                let why = match r {
                    Reason::Identical => "identical bytes".to_string(),
                    Reason::SameImage { distance } => format!("same image, hash {distance} bits apart"),
                    Reason::SameFace { cosine, distance } => format!("same face crop, cosine {cosine:.3}, hash {distance} bits apart"),
                    Reason::ViaAnotherCopy => "copy of another copy".to_string(),
                };
                println!("  copy {} ({why})", p.display());
            }
        }
        for u in &o.unreadable {
            println!("unreadable (compared by bytes only): {}: {}", u.path.display(), u.reason);
        }
        match (&args.move_to, o.moved.len()) {
            (None, _) if o.copies > 0 => println!("dry run: nothing moved; add --move DEST to move the copies out"),
            (Some(d), n) => println!("moved {n} copies to {}", d.display()),
            _ => {}
        }
    })?;
    Ok(if failed { EXIT_INPUT } else { EXIT_OK })
}

/// Moves `from` (under `root`) to the same relative path under `dest`; refuses to overwrite.
fn move_out(from: &Path, root: &Path, dest: &Path) -> anyhow::Result<PathBuf> {
    let rel = from.strip_prefix(root).unwrap_or(from);
    let to = dest.join(rel);
    if to.exists() {
        anyhow::bail!("not moving {}: {} already exists", from.display(), to.display());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
    }
    if std::fs::rename(from, &to).is_err() {
        // Another filesystem: copy, make sure the copy is on disk, then remove the original.
        std::fs::copy(from, &to).with_context(|| format!("failed to copy {} to {}", from.display(), to.display()))?;
        std::fs::File::open(&to).and_then(|f| f.sync_all()).with_context(|| format!("failed to sync {}", to.display()))?;
        std::fs::remove_file(from).with_context(|| format!("failed to remove {} after copying it", from.display()))?;
    }
    Ok(to)
}
