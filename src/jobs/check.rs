//! `facewatch models`: the models of the manifest, and whether each is installed intact. (`check-config` is
//! [`crate::config::check`].)

use serde::Serialize;

use super::JobError;
use crate::config::{resolve_path, Config};
use crate::model::{checked_model_path, Manifest, ModelError};

/// One model or pack of the manifest.
#[derive(Debug, Serialize)]
pub struct ModelOut {
    /// `detector`, `recognizer` or `pack`.
    pub kind: &'static str,
    /// Its manifest name.
    pub name: String,
    /// Its file under `models.dir` (for a pack: its two models).
    pub file: String,
    /// Whether the configuration selects it.
    pub selected: bool,
    /// Whether its file is there with the right sha256.
    pub installed: bool,
    /// What was found.
    pub status: String,
    /// Its licence (manifest).
    pub licence: String,
    /// What it is.
    pub what: String,
}

/// One file or directory of the installation and where it was found.
#[derive(Debug, Serialize)]
pub struct FoundPath {
    /// The path used.
    pub path: String,
    /// Where it was found: `the configured path`, `beside the binary`, `/var/lib/facewatch`, `compiled into the
    /// binary`, `not found`, … (README "Where facewatch finds its models").
    pub found_in: String,
}

/// Where the models, the manifest and the ONNX Runtime library are taken from (`facewatch models`, `check-config`).
#[derive(Debug, Serialize)]
pub struct Found {
    /// `models.dir`.
    pub models_dir: FoundPath,
    /// `models.manifest` (the compiled-in manifest when the default one is on no disk).
    pub manifest: FoundPath,
    /// `runtime.ort_library`.
    pub runtime: FoundPath,
}

impl Found {
    /// Where the configuration's paths were found when it was loaded.
    pub fn of(cfg: &Config) -> Self {
        let said = |o: Option<crate::paths::Origin>| o.map_or_else(|| "as configured".to_string(), |o| o.to_string());
        let builtin_manifest = matches!(Manifest::configured_text(&cfg.models.manifest), Ok(None));
        Self {
            models_dir: FoundPath { path: cfg.models.dir.clone(), found_in: said(cfg.models.dir_found) },
            manifest: FoundPath {
                path: cfg.models.manifest.clone(),
                found_in: if builtin_manifest { crate::model::COMPILED_IN.to_string() } else { said(cfg.models.manifest_found) },
            },
            runtime: FoundPath { path: cfg.runtime.ort_library.clone(), found_in: said(cfg.runtime.library_found) },
        }
    }

    /// Text lines: `models:   PATH (found in …)`.
    pub fn lines(&self) -> Vec<String> {
        [("models", &self.models_dir), ("manifest", &self.manifest), ("runtime", &self.runtime)]
            .iter()
            .map(|(what, f)| format!("{:<9} {} ({})", format!("{what}:"), f.path, f.found_in.trim_start_matches('(').trim_end_matches(')')))
            .collect()
    }
}

/// Every manifest entry and pack, whether the configuration selects it, and whether its file is there and intact.
pub fn models(cfg: &Config) -> Result<Vec<ModelOut>, JobError> {
    let manifest = Manifest::configured(&cfg.models.manifest)?;
    let dir = resolve_path(&cfg.models.dir);
    let status = |file: &str, sha: &str| match checked_model_path(&dir, file, sha) {
        Ok(p) if p.starts_with(crate::model::COMPILED_IN) => (true, "compiled into the binary (sha256 verified)".to_string()),
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
    Ok(out)
}
