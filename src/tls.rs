//! PEM files for TLS, both ways: the CA certificates a client trusts, the
//! certificate and key a client (mTLS) or the reference server presents,
//! and the CA the reference verifies client certificates with.

use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use tokio_rustls::rustls;

/// A PEM file that cannot be used, or a configuration rustls refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read or parsed as PEM.
    #[error("cannot read {flag} {path}: {source}")]
    Read {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// rustls-pki-types' reason.
        source: rustls_pki_types::pem::Error,
    },
    /// The file holds no certificate.
    #[error("no certificate in {flag} {path}")]
    NoCertificate {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A certificate was refused as a trust anchor.
    #[error("bad certificate in {flag} {path}: {source}")]
    BadCertificate {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// rustls refused the configuration (a key not matching its certificate ...).
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The reference server's TLS: its certificate chain and key, ALPN h2, and
/// when `client_ca` is given, client certificates required and verified
/// against it (mTLS).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<std::sync::Arc<rustls::ServerConfig>, TlsError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = std::sync::Arc::new(roots("--tls-client-ca", ca)?);
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| {
                        TlsError::Config(format!("--tls-client-ca {}: {e}", ca.display()))
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(
            certificates("--tls-cert", cert)?,
            private_key("--tls-key", key)?,
        )
        .map_err(|e| {
            TlsError::Config(format!(
                "--tls-cert {} with --tls-key {}: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(std::sync::Arc::new(config))
}

/// Every certificate of a PEM file (at least one), named by `flag` in errors.
pub fn certificates(
    flag: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Read {
            flag,
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            flag,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(flag: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| TlsError::Read {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

/// The certificates of a PEM file as a root store.
pub fn roots(flag: &'static str, path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(flag, path)? {
        roots.add(cert).map_err(|source| TlsError::BadCertificate {
            flag,
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(roots)
}
