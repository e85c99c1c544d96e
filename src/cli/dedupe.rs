//! `dedupe DIR`: the flags and the report of [`crate::jobs::dedupe`].

use std::path::PathBuf;

use clap::Args;

use super::photos::engine;
use super::{emit, progress, shown, GlobalArgs, Outcome, EXIT_INPUT, EXIT_OK};
use crate::config::Config;
use crate::dedupe::{Reason, Thresholds};
use crate::jobs::dedupe::{self, DedupeOptions};

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

/// Runs `dedupe`; `cfg` is present when faces are compared. Exit 3 when a move failed.
pub(super) fn dedupe(g: &GlobalArgs, cfg: Option<&Config>, args: DedupeArgs) -> Outcome<u8> {
    let mut engine = cfg.map(engine).transpose()?;
    let max_pixels = cfg.map_or(40_000_000, |c| c.detect.max_image_pixels.get());
    let thresholds =
        Thresholds { max_image_distance: args.max_image_distance, min_face_cosine: args.min_face_cosine, ..Thresholds::default() };
    let bar = progress(g, "hashing", 0);
    let options = DedupeOptions { engine: engine.as_mut(), max_pixels, thresholds, move_to: args.move_to.as_deref() };
    let out = dedupe::dedupe(&args.dir, options, &mut super::bar_progress(&bar))?;
    bar.finish_and_clear();
    for e in &out.move_errors {
        eprintln!("error: {e}");
    }
    emit(g, &out, |o| {
        println!(
            "{} photos, {} group(s) of copies, {} copies{}",
            o.photos,
            o.groups.len(),
            o.copies,
            if o.faces_compared { " (faces compared)" } else { "" }
        );
        for gr in &o.groups {
            println!("keep {}", shown(&gr.keep));
            for crate::dedupe::Copy { path: p, reason: r } in &gr.copies {
                let why = match r {
                    Reason::Identical => "identical bytes".to_string(),
                    Reason::SameImage { distance } => format!("same image, hash {distance} bits apart"),
                    Reason::SameFace { cosine, distance } => format!("same face crop, cosine {cosine:.3}, hash {distance} bits apart"),
                    Reason::ViaAnotherCopy => "copy of another copy".to_string(),
                };
                println!("  copy {} ({why})", shown(p));
            }
        }
        for u in &o.unreadable {
            println!("unreadable (compared by bytes only): {}: {}", shown(&u.path), u.reason);
        }
        match (&args.move_to, o.moved.len()) {
            (None, _) if o.copies > 0 => println!("dry run: nothing moved; add --move DEST to move the copies out"),
            (Some(d), n) => println!("moved {n} copies to {}", shown(d)),
            _ => {}
        }
    })?;
    Ok(if out.move_errors.is_empty() { EXIT_OK } else { EXIT_INPUT })
}
