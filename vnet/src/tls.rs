//! TLS for the vnet: how it checks the route's certificate.
//!
//! Either against a CA (`ca=`, the usual path checks including the route's
//! name), or against a pinned SHA-256 fingerprint (`fingerprint=`), which
//! suits the self-signed certificate a route makes for itself. Pinning
//! still checks the handshake's signature: only the holder of the pinned
//! certificate's key gets through.
use proto::ini::{ConfigError, RouteBasics, Section};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsConnector;

/// How the route's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// Certificates (DER) of the CAs that may sign it.
    Ca(Vec<Vec<u8>>),
    /// Its SHA-256, 64 lowercase hex digits.
    Fingerprint(String),
}

/// What the vnet needs for TLS, read and checked with the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// How to check the route.
    pub verify: Verify,
    /// The route's name as the certificate must show it (CA checks only).
    pub server_name: String,
}

impl ClientTls {
    /// Reads `[route]`'s TLS keys; `None` when `tls` is off. Relative paths
    /// are taken from `base`; `file` names the config in errors.
    ///
    /// # Errors
    /// `tls=true` without exactly one of `ca` and `fingerprint`, or a CA
    /// file that cannot be read or holds no usable certificate.
    pub fn from_section(
        basics: &RouteBasics,
        section: &Section<'_>,
        base: &Path,
    ) -> Result<Option<Self>, ConfigError> {
        if !basics.tls {
            return Ok(None);
        }
        let fingerprint = match section.get("fingerprint") {
            None => None,
            Some(text) => Some(proto::hex::normalize_fingerprint(text).ok_or_else(|| {
                section.error(
                    "fingerprint",
                    "is not a SHA-256 fingerprint (64 hex digits, colons allowed)",
                )
            })?),
        };
        let error = |key: &str, message: String| section.error(key, message);
        let verify = match (section.get("ca"), fingerprint) {
            (Some(_), Some(_)) => {
                let both = "give either ca or fingerprint, not both";
                return Err(error("fingerprint", both.into()));
            }
            (None, None) => {
                let neither = "needs ca= or fingerprint= to check the route's certificate \
                               (the route logs its fingerprint)";
                return Err(error("tls", neither.into()));
            }
            (None, Some(pin)) => Verify::Fingerprint(pin),
            (Some(ca), None) => {
                let path = base.join(ca);
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
                    .and_then(|certs| certs.collect())
                    .map_err(|e| {
                        let path = path.display();
                        error("ca", format!("cannot read certificates from {path}: {e}"))
                    })?;
                let mut roots = RootCertStore::empty();
                let (added, _) = roots.add_parsable_certificates(certs.iter().cloned());
                if added == 0 {
                    let path = path.display();
                    return Err(error(
                        "ca",
                        format!("{path} holds no usable CA certificate"),
                    ));
                }
                Verify::Ca(certs.iter().map(|c| c.to_vec()).collect())
            }
        };
        ServerName::try_from(basics.ip.clone())
            .map_err(|e| error("ip", format!("not usable as a TLS server name: {e}")))?;
        Ok(Some(Self {
            verify,
            server_name: basics.ip.clone(),
        }))
    }

    /// A connector and the name to ask for.
    pub fn connector(&self) -> (TlsConnector, ServerName<'static>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("ring supports TLS 1.3");
        let config = match &self.verify {
            Verify::Ca(certs) => {
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(
                    certs.iter().map(|der| CertificateDer::from(der.clone())),
                );
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Verify::Fingerprint(pin) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    pin: pin.clone(),
                    provider,
                }))
                .with_no_client_auth(),
        };
        let name = ServerName::try_from(self.server_name.clone())
            .expect("checked when the config was read");
        (TlsConnector::from(Arc::new(config)), name)
    }
}

/// Accepts exactly the certificate with the pinned fingerprint.
#[derive(Debug)]
struct Pinned {
    pin: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = proto::hex::fingerprint(end_entity);
        if seen == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "route certificate fingerprint {seen} does not match the pinned {}",
                self.pin
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Signatures::tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Signatures(&self.provider).tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Signatures(&self.provider).schemes()
    }
}

/// The handshake signature checks of the verifiers that pin a
/// certificate (here and for direct links): TLS 1.3 only, with the
/// provider's algorithms, so only the holder of the certificate's key
/// gets through.
pub(crate) struct Signatures<'a>(pub &'a CryptoProvider);

impl Signatures<'_> {
    /// TLS 1.2 is never negotiated.
    pub(crate) fn tls12() -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not used".into()))
    }

    /// Checks a TLS 1.3 handshake signature.
    pub(crate) fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    /// The signature schemes it checks.
    pub(crate) fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
