//! Where things are: `~/` paths expanded ([`resolve_path`]), and the files of an installation (models, the ONNX
//! Runtime library) found from any working directory ([`locate`]).

use std::path::{Path, PathBuf};

/// Expands a leading `~/` with `$HOME`; other paths are returned as they are.
pub fn resolve_path(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// Where a relative path of the installation (`models/…`, `lib/…`) is, so the binary runs from any directory:
/// the working directory first (a checkout), then the checkout the binary was built in (`target/*/facewatch`),
/// the user's data directory (`$XDG_DATA_HOME/facewatch`, or `~/.local/share/facewatch`), and the install prefix
/// of the binary, the user's (`~/.local`), `/usr/local` and `/usr` (`<prefix>/share/facewatch/models/…`,
/// `<prefix>/lib/facewatch/…`). The
/// first that exists wins; absolute paths, `~/` paths and paths found nowhere are returned as they are (the error
/// then names them).
pub fn locate(p: &str) -> String {
    let path = Path::new(p);
    if path.is_absolute() || p.starts_with("~/") || path.exists() {
        return p.to_string();
    }
    let exe = std::env::current_exe().ok();
    let mut roots: Vec<PathBuf> = exe.iter().flat_map(|e| e.ancestors().skip(1).take(3).map(Path::to_path_buf)).collect();
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    roots.extend(data.as_ref().map(|d| d.join("facewatch")));
    // The user's prefix (`~/.local`, the parent of `$XDG_DATA_HOME`'s `share`): `facewatch models install` puts the
    // runtime in its `lib/facewatch` wherever the binary is.
    let user_prefix = data.as_ref().and_then(|d| d.parent().map(Path::to_path_buf));
    let prefixes: Vec<PathBuf> = exe
        .iter()
        .filter_map(|e| e.ancestors().nth(2).map(Path::to_path_buf))
        .chain(user_prefix)
        .chain(["/usr/local".into(), "/usr".into()])
        .collect();
    for prefix in &prefixes {
        roots.push(match path.strip_prefix("lib") {
            Ok(_) => prefix.clone(),
            Err(_) => prefix.join("share/facewatch"),
        });
    }
    let candidates = roots.iter().map(|root| match (path.strip_prefix("lib"), prefixes.contains(root)) {
        (Ok(rest), true) => root.join("lib/facewatch").join(rest),
        _ => root.join(path),
    });
    candidates.into_iter().find(|c| c.exists()).map_or_else(|| p.to_string(), |c| c.display().to_string())
}
