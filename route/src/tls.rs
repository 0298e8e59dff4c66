//! TLS for the route: its certificate and key, loaded from `cert=`/`key=`,
//! or made self-signed on first start and kept beside the config (so the
//! fingerprint vnets pin stays the same across restarts).
//!
//! Built once when the config is read; every accepted connection is then
//! wrapped with the same [`ServerTls::acceptor`].
use proto::ini::ConfigError;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// File names of a self-made certificate, beside the config.
pub const MADE_CERT: &str = "route-cert.pem";
/// See [`MADE_CERT`].
pub const MADE_KEY: &str = "route-key.pem";

/// The route's TLS side, ready to accept.
#[derive(Clone)]
pub struct ServerTls {
    /// Wraps accepted connections.
    pub acceptor: TlsAcceptor,
    /// SHA-256 of the certificate, 64 lowercase hex digits: what vnets pin.
    pub fingerprint: String,
    /// Where a self-made certificate was written, if it was made now.
    pub made: Option<PathBuf>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("fingerprint", &self.fingerprint)
            .field("made", &self.made)
            .finish_non_exhaustive()
    }
}

/// Where the route's certificate comes from, as `[route]` says.
#[derive(Debug, Clone, Copy)]
pub enum CertSource<'a> {
    /// `cert=` and `key=`: PEM files, relative to the config's folder.
    Files {
        /// The certificate chain.
        cert: &'a str,
        /// Its private key.
        key: &'a str,
    },
    /// Neither: a pair made on first start for `host` (the route's `ip=`)
    /// and `localhost`, kept as [`MADE_CERT`] and [`MADE_KEY`].
    SelfMade {
        /// Named in the certificate unless it is an unspecified address.
        host: &'a str,
    },
}

/// Builds the route's TLS side, with relative paths taken from `dir` (the
/// config's folder); `file` names the config in errors.
///
/// # Errors
/// Unreadable or invalid certificate or key, or a self-made one that
/// cannot be written. A mistake is blamed on `cert`/`key` when they were
/// given, else on `tls`.
pub fn server(source: CertSource<'_>, dir: &Path, file: &str) -> Result<ServerTls, ConfigError> {
    let error = |key: &str, message: String| ConfigError::at(file, "route", key, message);
    let (cert_path, key_path, made, cert_key, key_key) = match source {
        CertSource::Files { cert, key } => (dir.join(cert), dir.join(key), None, "cert", "key"),
        CertSource::SelfMade { host } => {
            let (cert, key) = (dir.join(MADE_CERT), dir.join(MADE_KEY));
            let made = self_made(host, &cert, &key).map_err(|e| error("tls", e))?;
            (cert, key, made, "tls", "tls")
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect())
        .map_err(|e| {
            let shown = cert_path.display();
            error(
                cert_key,
                format!("cannot read certificates from {shown}: {e}"),
            )
        })?;
    let Some(first) = certs.first() else {
        let shown = cert_path.display();
        return Err(error(cert_key, format!("{shown} holds no certificate")));
    };
    let fingerprint = proto::hex::fingerprint(first);
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        let shown = key_path.display();
        error(
            key_key,
            format!("cannot read a private key from {shown}: {e}"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| error("tls", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| error(cert_key, format!("certificate and key do not fit: {e}")))?;
    Ok(ServerTls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        fingerprint,
        made,
    })
}

/// Makes the self-signed pair unless it is there; where it was made, if
/// it was made now.
///
/// # Errors
/// Only the key is there (a new pair would change the fingerprint vnets
/// pin), or the pair cannot be written.
fn self_made(host: &str, cert: &Path, key: &Path) -> Result<Option<PathBuf>, String> {
    if cert.exists() {
        return Ok(None);
    }
    if key.exists() {
        return Err(format!(
            "{} is missing but its key {} is there: put the certificate back, or remove \
             the key to make a new pair (vnets then pin the new fingerprint)",
            cert.display(),
            key.display()
        ));
    }
    make_self_signed(host, cert, key)
        .map_err(|e| format!("cannot write a self-signed certificate beside the config: {e}"))?;
    Ok(Some(cert.to_path_buf()))
}

/// Writes a self-signed certificate for `host` and `localhost`; the key
/// file is readable by its owner only.
fn make_self_signed(host: &str, cert_path: &Path, key_path: &Path) -> std::io::Result<()> {
    let mut names = vec!["localhost".to_string(), "vnet-route".to_string()];
    let unspecified = host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    if !unspecified && host != "localhost" {
        names.push(host.to_string());
    }
    let made = rcgen::generate_simple_self_signed(names).map_err(std::io::Error::other)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(
        &mut options.open(key_path)?,
        made.signing_key.serialize_pem().as_bytes(),
    )?;
    std::fs::write(cert_path, made.cert.pem())
}
