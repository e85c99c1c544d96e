//! `enroll DIR`: one sub-folder per person, every photo with exactly one face becomes an embedding.
//!
//! Photos with no face, several faces (which one would be the person?) or unreadable data are skipped and
//! reported with the reason. Each person is written in one transaction after all their photos are processed, so
//! an interrupted run leaves every person either fully enrolled or untouched; re-running skips photos already
//! enrolled (by content hash).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::photos::{engine, open_gallery};
use super::{emit, GlobalArgs, InputError, EXIT_INPUT, EXIT_OK};
use crate::config::Config;
use crate::folders::{person_dirs, photos_in};
use crate::gallery::NewEmbedding;
use crate::model::hex;

/// `facewatch enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Folder with one sub-folder of photos per person; the sub-folder's name is the person's name.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Serialize)]
struct Skipped {
    file: PathBuf,
    reason: String,
}

#[derive(Serialize)]
struct PersonOut {
    name: String,
    photos: usize,
    added: usize,
    already_enrolled: usize,
    skipped: Vec<Skipped>,
}

#[derive(Serialize)]
struct EnrollOut {
    gallery: PathBuf,
    recognizer: String,
    persons: Vec<PersonOut>,
    added: usize,
    skipped: usize,
    gallery_embeddings: usize,
}

/// Runs `enroll`; exit 3 when the folder holds no person folders or nothing at all could be enrolled.
pub(super) fn enroll(g: &GlobalArgs, cfg: &Config, args: EnrollArgs) -> anyhow::Result<u8> {
    let people = person_dirs(&args.dir).with_context(|| format!("failed to read folder {}", args.dir.display()))?;
    if people.is_empty() {
        return Err(InputError(format!(
            "{} has no sub-folders: put each person's photos in a folder named after them",
            args.dir.display()
        ))
        .into());
    }
    let mut engine = engine(cfg)?;
    let mut gallery = open_gallery(cfg, engine.info().dim)?;
    let listed: Vec<(String, Vec<PathBuf>)> = people
        .iter()
        .map(|d| Ok((d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), photos_in(d)?)))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("failed to list photos in {}", args.dir.display()))?;
    let bar = super::progress(g, "enrolling", listed.iter().map(|(_, p)| p.len()).sum());
    let mut persons = Vec::new();
    for (name, photos) in listed {
        bar.set_message(name.clone());
        let mut items = Vec::new();
        let mut skipped = Vec::new();
        for path in &photos {
            match embed_photo(&mut engine, path) {
                Ok(item) => items.push(item),
                Err(e) => skipped.push(Skipped { file: path.clone(), reason: format!("{e:#}") }),
            }
            bar.inc(1);
        }
        let added = if items.is_empty() { 0 } else { gallery.enroll(&name, &items)? };
        persons.push(PersonOut { name, photos: photos.len(), added, already_enrolled: items.len() - added, skipped });
    }
    bar.finish_and_clear();
    let out = EnrollOut {
        gallery: gallery.path().to_path_buf(),
        recognizer: gallery.model().to_string(),
        added: persons.iter().map(|p| p.added).sum(),
        skipped: persons.iter().map(|p| p.skipped.len()).sum(),
        gallery_embeddings: gallery.len(),
        persons,
    };
    emit(g, &out, |o| {
        for p in &o.persons {
            println!(
                "{}: {} photo(s), {} added, {} already enrolled, {} skipped",
                p.name,
                p.photos,
                p.added,
                p.already_enrolled,
                p.skipped.len()
            );
            for s in &p.skipped {
                println!("  skipped {}: {}", s.file.display(), s.reason);
            }
        }
        println!("{} embedding(s) added; gallery {} now holds {} ({})", o.added, o.gallery.display(), o.gallery_embeddings, o.recognizer);
    })?;
    let nothing = out.gallery_embeddings == 0;
    Ok(if nothing { EXIT_INPUT } else { EXIT_OK })
}

fn embed_photo(engine: &mut crate::Engine, path: &Path) -> anyhow::Result<NewEmbedding> {
    let bytes = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    let file_sha256 = hex(&Sha256::digest(&bytes));
    let frame = engine.decode(&bytes, path)?;
    let face = engine.one_face(&frame, path)?;
    Ok(NewEmbedding {
        embedding: face.embedding,
        source_path: path.to_string_lossy().into_owned(),
        file_sha256,
        det_score: face.detection.score,
    })
}
