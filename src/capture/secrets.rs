//! Stream credentials: kept out of every log line, error and event, and readable from the environment or a file
//! instead of the configuration.
//!
//! `rtsp://admin:secret@cam.lan/stream1` is shown as `rtsp://admin:***@cam.lan/stream1` everywhere facewatch
//! prints or publishes it ([`redact`]). The password can stay out of the configuration altogether:
//! `capture.credentials_file` (a file holding `user:password`, readable by its owner only) or the environment
//! variable [`CREDENTIALS_ENV`] supplies the user-info that [`with_credentials`] puts into the URL at open time.

use std::path::Path;

/// Environment variable holding `user:password` for the stream (wins over `capture.credentials_file`).
pub const CREDENTIALS_ENV: &str = "FACEWATCH_CAPTURE_CREDENTIALS";

/// The environment variable holding `user:password` for one camera of several: `FACEWATCH_CAMERA_<NAME>_CREDENTIALS`,
/// the name upper-cased with each run of other characters than letters and digits as one `_` (camera `front-door`:
/// `FACEWATCH_CAMERA_FRONT_DOOR_CREDENTIALS`). It wins over the camera's `credentials_file`; [`CREDENTIALS_ENV`]
/// serves only the one camera of `[capture]`.
pub fn camera_env(camera: &str) -> String {
    let mut name = String::new();
    for c in camera.chars() {
        let c = if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' };
        // Never `__`: the configuration reads FACEWATCH_SECTION__KEY variables as settings.
        if !(c == '_' && name.ends_with('_')) {
            name.push(c);
        }
    }
    format!("FACEWATCH_CAMERA_{}_CREDENTIALS", name.trim_matches('_'))
}

/// Errors reading stream credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file could not be read.
    #[error("failed to read the stream credentials {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Other users may read the file.
    #[error("the stream credentials {path} are readable by other users (mode {mode:o}); chmod 600 it")]
    Exposed {
        /// The file.
        path: std::path::PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The file or variable is not `user:password` on one line.
    #[error("{what} must hold `user:password` on one line")]
    Malformed {
        /// The file or variable.
        what: String,
    },
}

/// Every `scheme://user:password@` in `text` with the password replaced by `***` (user-info without a password
/// is kept: a user name alone is no secret).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote; user-info ends at its last '@'.
        let end = tail.find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'').unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `url` with its user-info replaced by `credentials` (`user:password`), when given; URLs without a scheme are
/// returned as they are.
pub fn with_credentials(url: &str, credentials: Option<&str>) -> String {
    let (Some(creds), Some(i)) = (credentials, url.find("://")) else { return url.to_string() };
    let (head, tail) = url.split_at(i + 3);
    let end = tail.find('/').unwrap_or(tail.len());
    let host = tail[..end].rsplit_once('@').map_or(&tail[..end], |(_, h)| h);
    format!("{head}{creds}@{host}{}", &tail[end..])
}

fn checked(value: &str, what: &str) -> Result<String, CredentialsError> {
    let v = value.trim_end_matches(['\n', '\r']);
    if v.contains('\n') || !v.contains(':') || v.starts_with(':') {
        return Err(CredentialsError::Malformed { what: what.to_string() });
    }
    Ok(v.to_string())
}

/// The stream credentials: [`CREDENTIALS_ENV`] from `env`, else the file, else none. A file that other users may
/// read is refused.
pub fn load(file: Option<&Path>, env: Option<String>) -> Result<Option<String>, CredentialsError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(v) = env.filter(|v| !v.is_empty()) {
        return checked(&v, CREDENTIALS_ENV).map(Some);
    }
    let Some(path) = file else { return Ok(None) };
    let meta = std::fs::metadata(path).map_err(|source| CredentialsError::Read { path: path.into(), source })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(CredentialsError::Exposed { path: path.into(), mode });
    }
    let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Read { path: path.into(), source })?;
    checked(&text, &path.display().to_string()).map(Some)
}

/// A log writer that redacts stream passwords from every line before it reaches stderr: the last line of defence
/// for log lines that quote an error from a library (FFmpeg, OpenCV) which names the URL.
#[derive(Debug, Default, Clone, Copy)]
pub struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The fmt layer writes each event with one call, so a URL is never split across calls.
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_camera_has_its_own_credentials_variable_never_with_a_double_underscore() {
        assert_eq!(camera_env("front-door"), "FACEWATCH_CAMERA_FRONT_DOOR_CREDENTIALS");
        assert_eq!(camera_env("a--b"), "FACEWATCH_CAMERA_A_B_CREDENTIALS");
        assert_eq!(camera_env("garage"), "FACEWATCH_CAMERA_GARAGE_CREDENTIALS");
        assert!(!camera_env("x._y/").contains("__"), "{}", camera_env("x._y/"));
    }

    #[test]
    fn passwords_in_urls_are_redacted_wherever_they_appear() {
        assert_eq!(redact("rtsp://admin:s3cret@cam.lan:554/stream1"), "rtsp://admin:***@cam.lan:554/stream1");
        assert_eq!(
            redact("failed to open rtsp://a:b@x/1 and http://u:p%40ss@y:8080/mjpg"),
            "failed to open rtsp://a:***@x/1 and http://u:***@y:8080/mjpg"
        );
        assert_eq!(redact("rtsp://cam.lan/stream1"), "rtsp://cam.lan/stream1");
        assert_eq!(redact("rtsp://viewer@cam.lan/s"), "rtsp://viewer@cam.lan/s");
        assert_eq!(redact("/dev/video0"), "/dev/video0");
        assert_eq!(redact("rtsp://a:p@ss@host/x"), "rtsp://a:***@host/x", "an '@' in the password");
    }

    #[test]
    fn credentials_go_into_the_url_and_come_from_env_or_a_private_file() {
        assert_eq!(with_credentials("rtsp://cam.lan/s", Some("u:p")), "rtsp://u:p@cam.lan/s");
        assert_eq!(with_credentials("rtsp://old:x@cam.lan/s", Some("u:p")), "rtsp://u:p@cam.lan/s");
        assert_eq!(with_credentials("clip.mp4", Some("u:p")), "clip.mp4");
        assert_eq!(load(None, Some("u:p".into())).expect("env"), Some("u:p".into()));
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("creds");
        std::fs::write(&f, "cam:pa:ss\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(load(Some(&f), None), Err(CredentialsError::Exposed { .. })));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert_eq!(load(Some(&f), None).expect("file"), Some("cam:pa:ss".into()));
        assert!(matches!(load(None, Some("nocolon".into())), Err(CredentialsError::Malformed { .. })));
    }
}
