//! `gallery list|remove|rename`, `models` and `check-config`: jobs that inspect state without running a model.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;

use super::photos::open_configured_gallery;
use super::{emit, GlobalArgs, EXIT_CONFIG, EXIT_OK};
use crate::config::{resolve_path, Config};
use crate::gallery::PersonSummary;
use crate::model::{checked_model_path, Manifest, ModelError};

/// `facewatch gallery …`.
#[derive(Debug, Subcommand)]
pub enum GalleryCommand {
    /// List enrolled people and how many photos each has.
    List,
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
    /// Rename a person.
    Rename {
        /// Current name.
        old: String,
        /// New name.
        new: String,
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
pub(super) fn gallery(g: &GlobalArgs, cfg: &Config, cmd: GalleryCommand) -> anyhow::Result<u8> {
    let mut gallery = open_configured_gallery(cfg)?;
    match cmd {
        GalleryCommand::List => {
            let out = ListOut {
                gallery: gallery.path().into(),
                recognizer: gallery.model().into(),
                embeddings: gallery.len(),
                search: gallery.search_kind(),
                persons: gallery.persons()?,
            };
            emit(g, &out, |o| {
                println!("{} ({}, {} embeddings, {} search)", o.gallery.display(), o.recognizer, o.embeddings, o.search);
                for p in &o.persons {
                    println!("  {:<24} {} photo(s)", p.name, p.embeddings);
                }
            })?;
        }
        GalleryCommand::Check { close } => {
            let threshold = crate::engine::configured_threshold(cfg)?;
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

#[derive(Serialize)]
struct ModelOut {
    kind: &'static str,
    name: String,
    file: String,
    selected: bool,
    installed: bool,
    status: String,
    licence: String,
    what: String,
}

/// `models`: every manifest entry, whether it is selected, and whether its file is there and intact.
pub(super) fn models(g: &GlobalArgs) -> anyhow::Result<u8> {
    let cfg = g.load_config()?;
    let manifest = Manifest::load(&resolve_path(&cfg.models.manifest))?;
    let dir = resolve_path(&cfg.models.dir);
    let status = |file: &str, sha: &str| match checked_model_path(&dir, file, sha) {
        Ok(_) => (true, "ok (sha256 verified)".to_string()),
        Err(e @ ModelError::Missing { .. }) => (false, format!("missing: {e}")),
        Err(e) => (false, e.to_string()),
    };
    let mut out = Vec::new();
    for (name, d) in &manifest.detector {
        let (installed, status) = status(&d.file, &d.sha256);
        let selected = *name == cfg.models.detector;
        out.push(ModelOut {
            kind: "detector",
            name: name.clone(),
            file: d.file.clone(),
            selected,
            installed,
            status,
            licence: d.licence.clone(),
            what: d.what.clone(),
        });
    }
    for (name, r) in &manifest.recognizer {
        let (installed, status) = status(&r.file, &r.sha256);
        let selected = *name == cfg.models.recognizer;
        out.push(ModelOut {
            kind: "recognizer",
            name: name.clone(),
            file: r.file.clone(),
            selected,
            installed,
            status,
            licence: r.licence.clone(),
            what: r.what.clone(),
        });
    }
    for p in crate::config::PACKS {
        // A pack is its two models: their rows above say whether they are installed and under which licence.
        let part = |kind: &str, name: &str| out.iter().find(|m| m.kind == kind && m.name == name);
        let parts = [part("detector", p.detector), part("recognizer", p.recognizer)];
        let installed = parts.iter().all(|m| m.is_some_and(|m| m.installed));
        let licence = [(p.detector, parts[0]), (p.recognizer, parts[1])]
            .map(|(name, m)| format!("{name}: {}", m.map_or("not in the manifest", |m| m.licence.as_str())))
            .join("; ");
        out.push(ModelOut {
            kind: "pack",
            name: p.name.to_string(),
            file: format!("{} + {}", p.detector, p.recognizer),
            selected: p.name == cfg.models.pack,
            installed,
            status: p.what.to_string(),
            licence,
            what: p.what.to_string(),
        });
    }
    emit(g, &out, |models| {
        for m in models {
            let mark = if m.selected { "*" } else { " " };
            let state = if m.installed { "installed" } else { "not installed" };
            println!("{mark} {:<10} {:<11} {:<38} {state}; {}", m.kind, m.name, m.file, m.licence);
        }
        println!("(* = selected by the configuration (models.pack, models.detector, models.recognizer); install more with scripts/fetch_models.py --model NAME)");
    })?;
    Ok(EXIT_OK)
}

/// `check-config`: every problem at once — configuration values, manifest names, model files, runtime library.
/// What the daemon would find missing right now (a camera not plugged in yet is not a configuration error: the
/// daemon exits and systemd retries).
fn daemon_warnings(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let src = &cfg.capture.source;
    if crate::capture::wants_camera(&cfg.capture) {
        let dev = src.parse::<u32>().map_or_else(|_| PathBuf::from(src), |i| PathBuf::from(format!("/dev/video{i}")));
        if !dev.exists() {
            out.push(format!("capture.source: camera {} is not present", dev.display()));
        }
    } else if crate::capture::is_missing_file(src) {
        out.push(format!("capture.source: {src} does not exist"));
    }
    let gallery = resolve_path(&cfg.gallery.path);
    if !gallery.is_file() {
        out.push(format!(
            "gallery.path: no gallery at {}; every face will be unknown until people are enrolled (`facewatch enroll DIR`)",
            gallery.display()
        ));
    } else if crate::gallery::count_embeddings(&gallery) == Some(0) {
        out.push(format!("gallery.path: the gallery {} is empty; every face will be unknown until people are enrolled", gallery.display()));
    }
    if !cfg.publish.socket.trim().is_empty() {
        let sock = resolve_path(&cfg.publish.socket);
        let ancestor = sock.ancestors().skip(1).find(|a| a.exists());
        if let Some(a) = ancestor.filter(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().readonly())) {
            out.push(format!("publish.socket: {} is read-only, the socket cannot be created", a.display()));
        }
    }
    out
}

pub(super) fn check_config(g: &GlobalArgs) -> anyhow::Result<u8> {
    let mut problems = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let cfg = match Config::load(&g.sources()) {
        Ok(c) => Some(c),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    if let Some(cfg) = &cfg {
        problems.extend(cfg.problems());
        match Manifest::load(&resolve_path(&cfg.models.manifest)) {
            Err(e) => problems.push(e.to_string()),
            Ok(m) => {
                let dir = resolve_path(&cfg.models.dir);
                match m.detector(&cfg.models.detector) {
                    Ok(d) => problems.extend(checked_model_path(&dir, &d.file, &d.sha256).err().map(|e| format!("models.detector: {e}"))),
                    Err(e) => problems.push(format!("models.detector: {e}")),
                }
                match m.recognizer(&cfg.models.recognizer) {
                    Ok(r) => problems.extend(checked_model_path(&dir, &r.file, &r.sha256).err().map(|e| format!("models.recognizer: {e}"))),
                    Err(e) => problems.push(format!("models.recognizer: {e}")),
                }
            }
        }
        let lib = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).unwrap_or_else(|| resolve_path(&cfg.runtime.ort_library));
        if !lib.is_file() {
            problems.push(format!("runtime.ort_library: {} does not exist; run scripts/setup.sh", lib.display()));
        }
        warnings.extend(daemon_warnings(cfg));
    }
    // The merged configuration is shown with stream passwords redacted, and so is every message.
    let mut config = serde_json::to_value(&cfg)?;
    if let Some(src) = config.pointer_mut("/capture/source") {
        *src = serde_json::Value::from(crate::capture::secrets::redact(src.as_str().unwrap_or_default()));
    }
    let problems: Vec<String> = problems.iter().map(|p| crate::capture::secrets::redact(p)).collect();
    let warnings: Vec<String> = warnings.iter().map(|w| crate::capture::secrets::redact(w)).collect();
    let out = serde_json::json!({ "ok": problems.is_empty(), "problems": problems, "warnings": warnings, "config": config });
    emit(g, &out, |_| {
        for w in &warnings {
            println!("warning: {w}");
        }
        if problems.is_empty() {
            println!("configuration OK");
        } else {
            println!("{} problem(s):", problems.len());
            for p in &problems {
                println!("  - {p}");
            }
        }
    })?;
    Ok(if problems.is_empty() { EXIT_OK } else { EXIT_CONFIG })
}
