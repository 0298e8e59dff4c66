//! TLS for the route: its certificate and key, loaded from `cert=`/`key=`,
//! or made self-signed on first start and kept beside the config (so the
//! fingerprint vnets pin stays the same across restarts).
use crate::RouteConfig;
use proto::ini::ConfigError;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
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

fn error(file: &str, key: &str, message: String) -> ConfigError {
    ConfigError::at(file, "route", key, message)
}

/// Builds the route's TLS side from `[route]`, with relative paths taken
/// from `base` (the config's folder); `file` names the config in errors.
///
/// # Errors
/// Unreadable or invalid certificate or key, or a self-made one that
/// cannot be written.
pub fn server(section: &RouteConfig, base: &Path, file: &str) -> Result<ServerTls, ConfigError> {
    let (cert_path, key_path, key_name) = match (&section.cert, &section.key) {
        (Some(cert), Some(key)) => (base.join(cert), base.join(key), "cert"),
        _ => (base.join(MADE_CERT), base.join(MADE_KEY), "tls"),
    };
    let mut made = None;
    if section.cert.is_none() && !cert_path.exists() && key_path.exists() {
        return Err(error(
            file,
            "tls",
            format!(
                "{} is missing but its key {} is there: put the certificate back, or remove the key to make a new pair (vnets then pin the new fingerprint)",
                cert_path.display(),
                key_path.display()
            ),
        ));
    }
    if section.cert.is_none() && !cert_path.exists() {
        make_self_signed(section, &cert_path, &key_path).map_err(|e| {
            error(
                file,
                "tls",
                format!("cannot write a self-signed certificate beside the config: {e}"),
            )
        })?;
        made = Some(cert_path.clone());
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect())
        .map_err(|e| {
            error(
                file,
                key_name,
                format!("cannot read certificates from {}: {e}", cert_path.display()),
            )
        })?;
    let Some(first) = certs.first() else {
        return Err(error(
            file,
            key_name,
            format!("{} holds no certificate", cert_path.display()),
        ));
    };
    let fingerprint = proto::hex::fingerprint(first);
    let key_key = if section.key.is_some() { "key" } else { "tls" };
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        error(
            file,
            key_key,
            format!("cannot read a private key from {}: {e}", key_path.display()),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| error(file, "tls", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            error(
                file,
                key_name,
                format!("certificate and key do not fit: {e}"),
            )
        })?;
    Ok(ServerTls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        fingerprint,
        made,
    })
}

/// Writes a self-signed certificate for the route's address and
/// `localhost`; the key file is readable by its owner only.
fn make_self_signed(
    section: &RouteConfig,
    cert_path: &Path,
    key_path: &Path,
) -> std::io::Result<()> {
    let mut names = vec!["localhost".to_string(), "vnet-route".to_string()];
    let ip = &section.basics.ip;
    let unspecified = ip
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    if !unspecified && ip != "localhost" {
        names.push(ip.clone());
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
