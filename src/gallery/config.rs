//! `[gallery]`: where the enrolled people are kept: a SQLite file (one node, the default) or a PostgreSQL server
//! shared by several nodes.

use serde::{Deserialize, Serialize};

/// `[gallery]`: the enrolled-person store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GalleryConfig {
    /// SQLite file (used when `url` is empty).
    pub path: String,
    /// A PostgreSQL gallery shared by several nodes: `postgres://user@host:5432/facewatch?sslmode=require`;
    /// empty: the SQLite file at `path`. A password in it is accepted but shown as `***`; prefer
    /// `password_file` or `FACEWATCH_GALLERY_PASSWORD`.
    #[serde(default)]
    pub url: DbUrl,
    /// A file holding the PostgreSQL password (owner-only), read at start-up.
    #[serde(default)]
    pub password_file: String,
    /// CA certificate (PEM) of the PostgreSQL server for TLS; empty: the system's roots.
    #[serde(default)]
    pub ca_file: String,
}

/// A database URL: printed and logged with its password as `***`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DbUrl(String);

impl DbUrl {
    /// A URL.
    pub fn new(url: &str) -> Self {
        Self(url.to_string())
    }

    /// The URL itself, for the one place that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether a URL is set.
    pub fn is_set(&self) -> bool {
        !self.0.trim().is_empty()
    }

    /// The URL with a password in it replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

/// `url` with its password replaced by `***`, read as the PostgreSQL client reads it: the user-info is everything
/// between `://` and the first `@` (a password may hold `/` or `?`), and a `password` parameter (its name
/// percent-decoded) anywhere in the query. A string that is not a URL (a `key=value` connection string) is not
/// shown at all.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return "(a connection string, not shown)".into();
    };
    let rest_at = scheme_end + 3;
    let mut out = url.to_string();
    let mut query_from = rest_at;
    if let Some(at) = url[rest_at..].find('@').map(|i| rest_at + i) {
        if let Some(colon) = url[rest_at..at].find(':').map(|i| rest_at + i) {
            out = format!("{}***{}", &url[..colon + 1], &url[at..]);
            query_from = colon + 1 + 3;
        } else {
            query_from = at;
        }
    }
    if let Some(q) = out[query_from..].find('?').map(|i| query_from + i) {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if percent_decoded(k).eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// `s` with `%XX` escapes decoded (invalid ones kept as they are).
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl Serialize for DbUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

/// Whether `s` names a PostgreSQL server rather than a file.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

impl GalleryConfig {
    /// What is wrong with `[gallery]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        if self.url.is_set() {
            if !is_postgres_url(self.url.expose()) {
                out.push("gallery.url: not a PostgreSQL URL (postgres://user@host:5432/db)".into());
            } else if let Err(e) = self.url.expose().parse::<postgres::Config>() {
                out.push(format!("gallery.url: `{}`: {e}", self.url.redacted()));
            }
        } else if self.path.trim().is_empty() {
            out.push("gallery.path: empty".into());
        }
    }

    /// Where the gallery is, for messages: the file, or the server's URL without its password.
    pub fn shown(&self) -> String {
        match self.url.is_set() {
            true => self.url.redacted(),
            false => crate::paths::resolve_path(&self.path).display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_url_is_never_shown() {
        for (url, shown) in [
            ("postgres://fw:S3cret@db.lan:5432/facewatch", "postgres://fw:***@db.lan:5432/facewatch"),
            (
                "postgres://fw@db.lan/facewatch?sslmode=require&password=S3cret",
                "postgres://fw@db.lan/facewatch?sslmode=require&password=***",
            ),
            ("postgresql://db.lan/facewatch", "postgresql://db.lan/facewatch"),
            ("postgres://a:b:c@h/d", "postgres://a:***@h/d"),
            ("postgres://fw:pa/S3cret@db/facewatch", "postgres://fw:***@db/facewatch"),
            ("postgres://fw:pa?S3cret@db/facewatch?sslmode=require", "postgres://fw:***@db/facewatch?sslmode=require"),
            ("postgres://fw@db/facewatch?pass%77ord=S3cret", "postgres://fw@db/facewatch?pass%77ord=***"),
            ("host=db password=S3cret", "(a connection string, not shown)"),
        ] {
            let u = DbUrl::new(url);
            assert_eq!(u.redacted(), shown);
            assert!(!format!("{u:?}").contains("S3cret"));
            assert!(!serde_json::to_string(&u).expect("json").contains("S3cret"));
        }
    }
}
