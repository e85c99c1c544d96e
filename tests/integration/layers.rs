//! The crate's layering, checked on its source: every top-level module of `src/` uses only modules below it in
//! [`LAYERS`], which makes the module graph acyclic. A new module must be placed in the list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The modules from the bottom up. Each may use only those before it.
#[rustfmt::skip]
const LAYERS: &[&str] = &[
    // The vocabulary (frames, faces, the event schema, typed settings); exit codes; counters; the stage kit.
    "base",
    "exit",
    "metrics",
    "stage",
    // Plumbing: private files (no link followed), folders of photos, image files, model loading (with `[models]`
    // and `[runtime]`).
    "private",
    "paths",
    "tls",
    "folders",
    "image",
    "model",
    // The outputs (event sinks and frame sinks), each with its own config section: they know nothing of the stages.
    "sinks",
    // The stages and the steps they use, in the order a frame meets them; each defines its own config section.
    "capture",
    "align",
    "detect",
    "embed",
    // Age and gender on request (the API, `detect --attributes`): a step beside embedding.
    "attributes",
    "matcher",
    "gallery",
    "strangers",
    "track",
    "publish",
    // The configuration: the sections above composed, loaded, layered and checked (with the environment).
    "config",
    // What runs the stages: the model sessions, on photos (stills), on a camera (pipeline).
    "sessions",
    "stills",
    "pipeline",
    // The measures and the jobs.
    "eval",
    "dedupe",
    "jobs",
    // The daemon's HTTP API (the jobs over HTTP, the pipeline's counters).
    "api",
    // The command line.
    "cli",
];

/// The top-level module a file belongs to (`src/track/stage.rs` → `track`), `None` for lib.rs and main.rs.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.strip_suffix(".rs").map_or(first.clone(), str::to_string);
    (name != "lib" && name != "main").then_some(name)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate modules a source text names: `crate::x` paths and `use crate::{x, y::…}` groups; comments and the
/// unit tests at the end of a file (`#[cfg(test)] mod tests`, which may build fixtures from any layer) skipped.
fn used_modules(text: &str) -> BTreeSet<String> {
    let text = text.find("#[cfg(test)]\nmod tests").map_or(text, |i| &text[..i]);
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut used = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::{c, d}, e}`: the first segment of each top-level item.
            let (mut depth, mut start) = (0usize, true);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && (c.is_ascii_alphanumeric() || c == '_') => {
                        used.insert(ident(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            used.insert(ident(rest));
        }
    }
    used
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let rank: BTreeMap<&str, usize> = LAYERS.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let mut unplaced = BTreeSet::new();
    let mut upward = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else { continue };
        let Some(&own) = rank.get(module.as_str()) else {
            unplaced.insert(module);
            continue;
        };
        let text = std::fs::read_to_string(file).expect("readable source");
        for used in used_modules(&text) {
            // Items of lib.rs re-exported at the crate root (`crate::Config`) are not modules.
            if used == module || used.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                continue;
            }
            match rank.get(used.as_str()) {
                Some(&r) if r < own => {}
                Some(_) => upward.push(format!("{} uses `{used}`, which is not below `{module}`", file.display())),
                None => {
                    unplaced.insert(used);
                }
            };
        }
    }
    assert!(unplaced.is_empty(), "modules missing from LAYERS in tests/integration/layers.rs: {unplaced:?}");
    assert!(upward.is_empty(), "dependencies that point up (or sideways, closing a cycle):\n  {}", upward.join("\n  "));
}

#[test]
fn the_layer_check_sees_paths_and_groups_and_skips_comments() {
    let text = "use crate::base::{Frame, Stop};\nuse crate::{config::Config, detect};\n// crate::cli in a comment\nlet x = crate::track::TrackId::default();";
    let used: Vec<String> = used_modules(text).into_iter().collect();
    assert_eq!(used, ["base", "config", "detect", "track"]);
}
