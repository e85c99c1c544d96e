//! `enroll DIR`: the flags and the report of [`crate::jobs::enroll`].

use std::path::PathBuf;

use clap::Args;

use super::photos::{engine, open_gallery};
use super::{emit, shown, GlobalArgs, Outcome, EXIT_INPUT, EXIT_OK};
use crate::config::Config;
use crate::jobs::enroll;

/// `facewatch enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// A folder with one sub-folder of photos per person (the sub-folder's name is the person's name); with
    /// `--name`, photos of that one person.
    #[arg(value_name = "DIR | PHOTO", required = true)]
    pub paths: Vec<PathBuf>,
    /// Enroll the PHOTOs given under this name (added to the person when they exist).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// Runs `enroll`; exit 3 when the folder holds no person folders or nothing at all could be enrolled.
pub(super) fn enroll(g: &GlobalArgs, cfg: &Config, args: EnrollArgs) -> Outcome<u8> {
    let people = match (&args.name, args.paths.as_slice()) {
        (Some(name), photos) => enroll::one_person(name, photos)?,
        (None, [dir]) => enroll::people(dir)?,
        (None, _) => return Err(super::UsageError("enroll takes one folder of person folders, or photos with --name NAME".into()).into()),
    };
    let mut engine = engine(cfg)?;
    let mut gallery = open_gallery(cfg, engine.info().dim)?;
    let bar = super::progress(g, "enrolling", people.iter().map(|(_, p)| p.len()).sum());
    let out = enroll::enroll(&mut engine, &mut gallery, people, &mut |name| {
        bar.set_message(name.to_string());
        bar.inc(1);
    })?;
    bar.finish_and_clear();
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
                println!("  skipped {}: {}", shown(&s.file), s.reason);
            }
        }
        println!("{} embedding(s) added; gallery {} now holds {} ({})", o.added, shown(&o.gallery), o.gallery_embeddings, o.recognizer);
    })?;
    let nothing = out.gallery_embeddings == 0;
    Ok(if nothing { EXIT_INPUT } else { EXIT_OK })
}
