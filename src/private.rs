//! Private files: where facewatch writes biometric data (face crops, snapshots, event records) and reads secrets,
//! so that no other user can read them and no link planted by another user is ever followed.
//!
//! A [`PrivateDir`] is an open directory (`O_DIRECTORY | O_NOFOLLOW`) checked to belong to this process's user
//! (root may write into any user's directory) and narrowed to 0700. Everything below it is reached from that
//! descriptor with `openat`/`mkdirat`/`renameat`, one plain name at a time, each opened with `O_NOFOLLOW`: a
//! symbolic link swapped in after a check cannot redirect a write. A file is written under a fresh temporary name
//! (`O_CREAT | O_EXCL | O_NOFOLLOW`, 0600) and renamed over its name, so a link planted there is replaced, never
//! written through. [`open_beneath`] reads a file below a root the same way and refuses a path with any link in
//! it; [`append_file`] opens one file of a user-given path without following a link at its name.

use std::ffi::CString;
use std::fs::File;
use std::io::{Error, ErrorKind, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A directory that belongs to this user, mode 0700, held open ([module docs](self)).
#[derive(Debug)]
pub struct PrivateDir {
    fd: OwnedFd,
    path: PathBuf,
}

fn c_string(bytes: &[u8]) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|_| Error::new(ErrorKind::InvalidInput, "a path with a NUL byte"))
}

/// Whether `name` is one plain path component: not empty, not `.` or `..`, no `/` and no NUL.
pub fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

fn fstat(fd: &OwnedFd) -> std::io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: a valid open descriptor and a buffer of the right type, filled on success.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: fstat succeeded, so the buffer is initialised.
    Ok(unsafe { st.assume_init() })
}

/// `openat(dir, name, flags)`, or `open(name, flags)` without a directory.
fn open_at(dir: Option<&OwnedFd>, name: &[u8], flags: libc::c_int, mode: libc::mode_t) -> std::io::Result<OwnedFd> {
    let c = c_string(name)?;
    let at = dir.map_or(libc::AT_FDCWD, AsRawFd::as_raw_fd);
    // SAFETY: a NUL-terminated name and a valid directory descriptor (or AT_FDCWD); the result is checked.
    let fd = unsafe { libc::openat(at, c.as_ptr(), flags | libc::O_CLOEXEC, libc::c_uint::from(mode)) };
    if fd < 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: a descriptor just opened, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Explains `ELOOP`/`ENOTDIR` from an `O_NOFOLLOW` open: a link (or a file) where a directory or file must be.
fn explain(e: Error, path: &Path) -> Error {
    let link = || std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    match e.raw_os_error() {
        // `O_DIRECTORY | O_NOFOLLOW` on a link to a directory says ENOTDIR.
        Some(libc::ELOOP | libc::ENOTDIR) if link() => {
            Error::new(ErrorKind::PermissionDenied, format!("{} is a symbolic link: refusing to follow it", path.display()))
        }
        Some(libc::ENOTDIR) => Error::new(e.kind(), format!("{} is not a directory", path.display())),
        _ => Error::new(e.kind(), format!("{}: {e}", path.display())),
    }
}

/// This process's effective user.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

impl PrivateDir {
    /// `path` as a private directory: created 0700 with its missing parents, refused when it is a symbolic link or
    /// belongs to another user, narrowed to 0700 when others may enter it.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(|e| explain(e, path))?;
            }
            Err(e) => return Err(explain(e, path)),
        }
        let fd = open_at(None, path.as_os_str().as_bytes(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
            .map_err(|e| explain(e, path))?;
        Self::checked(fd, path.to_path_buf())
    }

    /// Checks the owner of an opened directory and narrows it.
    fn checked(fd: OwnedFd, path: PathBuf) -> std::io::Result<Self> {
        let st = fstat(&fd)?;
        let me = euid();
        if st.st_uid != me && me != 0 {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("{} belongs to uid {}, not to this user (uid {me}): refusing to keep faces there", path.display(), st.st_uid),
            ));
        }
        if st.st_uid == me && st.st_mode & 0o077 != 0 {
            // SAFETY: a valid descriptor; fchmod only changes the mode.
            if unsafe { libc::fchmod(fd.as_raw_fd(), 0o700) } != 0 {
                return Err(explain(Error::last_os_error(), &path));
            }
            tracing::warn!(dir = %path.display(), was = format!("{:o}", st.st_mode & 0o777), "A private folder others could enter was narrowed to 0700.");
        }
        Ok(Self { fd, path })
    }

    /// The directory's path (for messages and for callers that report where files went).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sub-directory `name` (one plain name), created 0700 when absent, held open like this one.
    pub fn subdir(&self, name: &str) -> std::io::Result<PrivateDir> {
        let path = self.path.join(name);
        if !plain_name(name) {
            return Err(Error::new(ErrorKind::InvalidInput, format!("{}: not a plain folder name", path.display())));
        }
        let c = c_string(name.as_bytes())?;
        // SAFETY: a NUL-terminated name and a valid directory descriptor.
        if unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), 0o700) } != 0 {
            let e = Error::last_os_error();
            if e.kind() != ErrorKind::AlreadyExists {
                return Err(explain(e, &path));
            }
        }
        let fd = open_at(Some(&self.fd), name.as_bytes(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
            .map_err(|e| explain(e, &path))?;
        Self::checked(fd, path)
    }

    /// Writes `bytes` as the file `name` (one plain name), 0600, replacing what was there (a link included, never
    /// followed); returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        let path = self.path.join(name);
        if !plain_name(name) {
            return Err(Error::new(ErrorKind::InvalidInput, format!("{}: not a plain file name", path.display())));
        }
        let (tmp, fd) = self.fresh()?;
        let written = File::from(fd).write_all(bytes).and_then(|()| self.rename(&tmp, name));
        if let Err(e) = written {
            self.unlink(&tmp);
            return Err(e);
        }
        Ok(path)
    }

    /// A new temporary file in this folder, created exclusively (never an existing file or link).
    fn fresh(&self) -> std::io::Result<(String, OwnedFd)> {
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        for attempt in 0..16u32 {
            let tmp = format!(".facewatch.{}.{:08x}.tmp", std::process::id(), seed.wrapping_add(attempt.wrapping_mul(0x9e37_79b9)));
            match open_at(Some(&self.fd), tmp.as_bytes(), flags, 0o600) {
                Ok(fd) => return Ok((tmp, fd)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::new(ErrorKind::AlreadyExists, "no free temporary name"))
    }

    fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        let (f, t) = (c_string(from.as_bytes())?, c_string(to.as_bytes())?);
        let fd = self.fd.as_raw_fd();
        // SAFETY: NUL-terminated names relative to one valid directory descriptor.
        if unsafe { libc::renameat(fd, f.as_ptr(), fd, t.as_ptr()) } != 0 {
            return Err(Error::last_os_error());
        }
        Ok(())
    }

    fn unlink(&self, name: &str) {
        if let Ok(c) = c_string(name.as_bytes()) {
            // SAFETY: a NUL-terminated name relative to a valid directory descriptor; failure only leaves a file.
            unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) };
        }
    }
}

/// Opens the regular file `rel` below `root` for reading, refusing `..`, absolute paths and any symbolic link on
/// the way (the root itself may be one: the user named it).
pub fn open_beneath(root: &Path, rel: &Path) -> std::io::Result<File> {
    let parts: Vec<&std::ffi::OsStr> = rel
        .components()
        .map(|c| match c {
            std::path::Component::Normal(n) => Ok(n),
            _ => Err(Error::new(ErrorKind::InvalidInput, format!("{}: not a plain relative path", rel.display()))),
        })
        .collect::<Result<_, _>>()?;
    let Some((file, dirs)) = parts.split_last() else {
        return Err(Error::new(ErrorKind::InvalidInput, "an empty path"));
    };
    let mut dir = open_at(None, root.as_os_str().as_bytes(), libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    for d in dirs {
        dir = open_at(Some(&dir), d.as_bytes(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)?;
    }
    let fd = open_at(Some(&dir), file.as_bytes(), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK, 0)?;
    if fstat(&fd)?.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::new(ErrorKind::InvalidInput, format!("{}: not a regular file", rel.display())));
    }
    Ok(File::from(fd))
}

/// Opens (creating it 0600 when absent) the file `path` for appending, without following a link at its name:
/// for a file the user named, such as `run --record`.
pub fn append_file(path: &Path) -> std::io::Result<File> {
    let flags = libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_NOFOLLOW;
    let fd = open_at(None, path.as_os_str().as_bytes(), flags, 0o600).map_err(|e| explain(e, path))?;
    let st = fstat(&fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::new(ErrorKind::InvalidInput, format!("{} is not a regular file", path.display())));
    }
    Ok(File::from(fd))
}

/// Why a secret file (a password, API keys) could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// It could not be read.
    #[error("{0}")]
    Unreadable(#[from] std::io::Error),
    /// Other users may read it.
    #[error("readable by other users (mode {0:o}); chmod 600 it")]
    Exposed(u32),
}

/// The secret in force for a setting that takes one from the environment or a file: the environment variable `env`
/// when set, else the contents of `file` without its trailing line ending (refused when others may read it), else
/// `None` (the caller's own fallback). An error names the file.
pub fn secret_from(env: &str, file: Option<&Path>) -> Result<Option<String>, (PathBuf, SecretFileError)> {
    if let Ok(v) = std::env::var(env) {
        return Ok(Some(v));
    }
    let Some(path) = file else { return Ok(None) };
    match read_secret_file(path) {
        Ok(text) => Ok(Some(text.trim_end_matches(['\n', '\r']).to_string())),
        Err(e) => Err((path.to_path_buf(), e)),
    }
}

/// The text of a file holding a secret, refused when other users may read or write it.
pub fn read_secret_file(path: &Path) -> Result<String, SecretFileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(SecretFileError::Exposed(mode & 0o777));
    }
    Ok(std::fs::read_to_string(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn a_private_dir_is_made_0700_and_an_open_one_is_narrowed() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = PrivateDir::create(&t.path().join("a/b")).expect("create");
        assert_eq!(mode(d.path()), 0o700);
        let open = t.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        PrivateDir::create(&open).expect("create");
        assert_eq!(mode(&open), 0o700);
    }

    #[test]
    fn a_planted_link_is_replaced_not_written_through() {
        let t = tempfile::tempdir().expect("tempdir");
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"precious").expect("write");
        let d = PrivateDir::create(&t.path().join("out")).expect("create");
        std::os::unix::fs::symlink(&victim, d.path().join("face.png")).expect("symlink");
        d.write("face.png", b"PNG").expect("write");
        assert_eq!(std::fs::read(&victim).expect("read"), b"precious", "the link's target is untouched");
        assert_eq!(std::fs::read(d.path().join("face.png")).expect("read"), b"PNG");
        assert_eq!(mode(&d.path().join("face.png")), 0o600);
        assert_eq!(std::fs::read_dir(d.path()).expect("ls").count(), 1, "no temporary file left");
    }

    #[test]
    fn a_linked_folder_is_refused_at_every_level() {
        let t = tempfile::tempdir().expect("tempdir");
        let elsewhere = t.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("mkdir");
        let root = PrivateDir::create(&t.path().join("snaps")).expect("create");
        std::os::unix::fs::symlink(&elsewhere, root.path().join("stage")).expect("symlink");
        let err = root.subdir("stage").expect_err("a link is no folder");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        std::os::unix::fs::symlink(&elsewhere, t.path().join("crops")).expect("symlink");
        assert!(PrivateDir::create(&t.path().join("crops")).is_err());
        for bad in ["", ".", "..", "a/b"] {
            assert!(root.subdir(bad).is_err() && root.write(bad, b"x").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reading_beneath_a_root_refuses_links_and_escapes() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("snaps");
        std::fs::create_dir_all(root.join("cam/day")).expect("mkdir");
        std::fs::write(root.join("cam/day/a.jpg"), b"jpg").expect("write");
        std::fs::write(t.path().join("secret"), b"shadow").expect("write");
        let mut s = String::new();
        std::io::Read::read_to_string(&mut open_beneath(&root, Path::new("cam/day/a.jpg")).expect("open"), &mut s).expect("read");
        assert_eq!(s, "jpg");
        std::os::unix::fs::symlink(t.path().join("secret"), root.join("cam/day/evil.jpg")).expect("symlink");
        std::os::unix::fs::symlink(t.path(), root.join("cam/up")).expect("symlink");
        for bad in ["cam/day/evil.jpg", "cam/up/secret", "../secret", "/etc/passwd", "cam/day"] {
            assert!(open_beneath(&root, Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn appending_never_follows_a_link() {
        let t = tempfile::tempdir().expect("tempdir");
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"x").expect("write");
        std::os::unix::fs::symlink(&victim, t.path().join("events.jsonl")).expect("symlink");
        let err = append_file(&t.path().join("events.jsonl")).expect_err("link");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let f = append_file(&t.path().join("ok.jsonl")).expect("create");
        drop(f);
        assert_eq!(mode(&t.path().join("ok.jsonl")), 0o600);
    }
}
