//! Where things are: `~/` paths expanded ([`resolve_path`]), and the files of an installation (models, the ONNX
//! Runtime library) found from any working directory ([`locate`], [`Origin`]).
//!
//! An installation root mirrors a checkout: `models/` (the manifest and the model files) and `lib/` (the ONNX
//! Runtime library). A relative path of the configuration (`models`, `lib/libonnxruntime.so.1.32.0`) is looked for,
//! in this order, and the first that exists wins:
//!
//! 1. the working directory (a checkout; the service's `/var/lib/facewatch`);
//! 2. beside the binary: its directory and the two above it (a checkout's `target/release/facewatch`);
//! 3. `../lib/facewatch` from the binary's directory (`/usr/lib/facewatch` for `/usr/bin/facewatch`,
//!    `/usr/local/lib/facewatch` for `systemd/install.sh`'s `/usr/local/bin`);
//! 4. the user's data directory, where `facewatch models install` puts them for a user: models in
//!    `$XDG_DATA_HOME/facewatch/models` (`~/.local/share/facewatch/models`), the runtime in `~/.local/lib/facewatch`;
//! 5. `/usr/local/lib/facewatch` (where `sudo facewatch models install` puts them);
//! 6. `/usr/lib/facewatch` (the `facewatch-models` package);
//! 7. `/var/lib/facewatch` (where `facewatch models install` puts them when run as the service's user).
//!
//! An absolute path or a `~/` path is the configured path itself; a path found nowhere is returned as it is (the
//! error then names it). Run as root, a candidate counts only where root alone could have put it ([`trusted`]):
//! a library or model planted by another user (the service's own state directory, a shared working directory) is
//! never loaded into a root process.

use std::path::{Path, PathBuf};

/// Expands a leading `~/` with `$HOME`; other paths are returned as they are.
pub fn resolve_path(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// The system-wide installation roots, after the binary's and the user's: root's own installs, the package's,
/// the service user's.
pub const SYSTEM_ROOTS: [&str; 3] = ["/usr/local/lib/facewatch", "/usr/lib/facewatch", "/var/lib/facewatch"];

/// Whether `path` and every folder above it belong to root and no one else may change them (a sticky folder such
/// as `/tmp` may be shared): what a root process may load code or models from. True for everyone else.
pub fn trusted(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return true;
    }
    let Ok(full) = std::path::absolute(path) else { return false };
    full.ancestors().all(|p| match std::fs::metadata(p) {
        Ok(m) => {
            let shared = m.mode() & 0o002 != 0 || (m.mode() & 0o020 != 0 && m.gid() != 0);
            m.uid() == 0 && (!shared || (m.is_dir() && m.mode() & 0o1000 != 0 && p != full))
        }
        // Not there (yet): nothing of it can have been planted.
        Err(_) => true,
    })
}

/// Where a located path was found: what `facewatch models` and `check-config` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// An absolute or `~/` path, as configured.
    Configured,
    /// Relative to the working directory.
    WorkingDirectory,
    /// Beside the binary (or the checkout it was built in).
    BesideBinary,
    /// `../lib/facewatch` from the binary's directory.
    BinaryLib,
    /// The user's data directory (`$XDG_DATA_HOME/facewatch`, `~/.local/lib/facewatch`).
    UserData,
    /// `/usr/local/lib/facewatch`.
    UsrLocalLib,
    /// `/usr/lib/facewatch`.
    UsrLib,
    /// `/var/lib/facewatch`.
    VarLib,
    /// Found nowhere: returned as it is.
    Missing,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Configured => "the configured path",
            Self::WorkingDirectory => "the working directory",
            Self::BesideBinary => "beside the binary",
            Self::BinaryLib => "../lib/facewatch beside the binary",
            Self::UserData => "the user's data directory",
            Self::UsrLocalLib => "/usr/local/lib/facewatch",
            Self::UsrLib => "/usr/lib/facewatch",
            Self::VarLib => "/var/lib/facewatch",
            Self::Missing => "not found",
        })
    }
}

/// Where a relative path of the installation (`models/…`, `lib/…`) is, in the order of this module's
/// documentation; absolute paths, `~/` paths and paths found nowhere are returned as they are.
pub fn locate(p: &str) -> String {
    locate_with_origin(p).0
}

/// Every place a relative path of the installation exists, in [`locate`]'s order (the first is what
/// [`locate`] gives): for a file one root may lack (the optional age and gender models where the models package
/// holds the others).
pub fn every_place(p: &str) -> Vec<PathBuf> {
    match is_configured(p) {
        true => vec![resolve_path(p)],
        false => places(Path::new(p)).map(|(c, _)| c).collect(),
    }
}

/// Whether `p` names one place itself (absolute, or `~/`): it is not looked for.
fn is_configured(p: &str) -> bool {
    Path::new(p).is_absolute() || p.starts_with("~/")
}

/// The places a relative path exists, lazily, in order: the working directory, then [`candidates`]; for root only
/// the [`trusted`] ones.
fn places(path: &Path) -> impl Iterator<Item = (PathBuf, Origin)> {
    std::iter::once((path.to_path_buf(), Origin::WorkingDirectory)).chain(candidates(path)).filter(|(c, _)| c.exists() && trusted(c))
}

/// Where a relative path would be, beside the binary and in the installation roots, in order (not checked).
fn candidates(path: &Path) -> Vec<(PathBuf, Origin)> {
    let mut candidates: Vec<(PathBuf, Origin)> = Vec::new();
    let exe = std::env::current_exe().ok();
    let exe_dir = exe.as_deref().and_then(Path::parent);
    for root in exe_dir.iter().flat_map(|d| d.ancestors().take(3)) {
        candidates.push((root.join(path), Origin::BesideBinary));
    }
    if let Some(prefix) = exe_dir.and_then(Path::parent) {
        candidates.push((prefix.join("lib/facewatch").join(path), Origin::BinaryLib));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(data) = &data {
        // `facewatch models install` puts a user's runtime in the user's prefix (`~/.local`, the parent of
        // `$XDG_DATA_HOME`'s `share`): `~/.local/lib/facewatch`.
        let user = match (path.strip_prefix("lib"), data.parent()) {
            (Ok(rest), Some(prefix)) => prefix.join("lib/facewatch").join(rest),
            _ => data.join("facewatch").join(path),
        };
        candidates.push((user, Origin::UserData));
    }
    for (root, origin) in SYSTEM_ROOTS.iter().zip([Origin::UsrLocalLib, Origin::UsrLib, Origin::VarLib]) {
        candidates.push((Path::new(root).join(path), origin));
    }
    candidates
}

/// [`locate`], and where the path was found.
pub fn locate_with_origin(p: &str) -> (String, Origin) {
    if is_configured(p) {
        return (p.to_string(), Origin::Configured);
    }
    places(Path::new(p)).next().map_or_else(|| (p.to_string(), Origin::Missing), |(c, origin)| (c.display().to_string(), origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Run as root (as CI runs), a folder others may write, or another user's, is not a place to load from.
    #[test]
    fn root_loads_nothing_another_user_could_have_planted() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(trusted(Path::new("/tmp")), "for other users every place is their own business");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let own = dir.path().join("own");
        std::fs::create_dir(&own).expect("mkdir");
        std::fs::write(own.join("lib.so"), b"x").expect("write");
        assert!(trusted(&own.join("lib.so")), "root's own folder under the sticky /tmp");
        std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(!trusted(&own.join("lib.so")), "a world-writable folder");
        std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // SAFETY: chown of a path we made, to the `nobody` uid.
        let c = std::ffi::CString::new(own.as_os_str().as_encoded_bytes()).expect("path");
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        assert!(!trusted(&own.join("lib.so")), "another user's folder");
        assert!(trusted(&dir.path().join("not-there-yet")), "nothing planted where nothing is");
    }
}
