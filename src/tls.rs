//! TLS to the servers facewatch talks to (the MQTT broker, a PostgreSQL gallery): rustls on the ring provider,
//! trusting the system's roots or one configured CA file. Certificates are always verified.

use std::path::PathBuf;
use std::sync::Arc;

/// Why a TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read.
    #[error("CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate, or rustls refused the set-up.
    #[error("TLS: {0}")]
    Setup(String),
}

/// A rustls client configuration trusting `ca_file` (PEM; empty: the system's roots).
pub fn client_config(ca_file: &str) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    if ca_file.is_empty() {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
    } else {
        let path = crate::paths::resolve_path(ca_file);
        let pem = std::fs::read(&path).map_err(|source| TlsError::CaFile { path: path.clone(), source })?;
        use rustls::pki_types::pem::PemObject;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.map_err(|e| TlsError::Setup(e.to_string()))?).map_err(|e| TlsError::Setup(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(TlsError::Setup(format!("{} holds no PEM certificate", path.display())));
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
