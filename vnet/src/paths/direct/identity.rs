//! Who a direct link's ends are: each vnet makes a certificate of its own
//! when it starts (never written anywhere), tells the route its
//! fingerprint in its card, and a link is accepted only between the two
//! certificates of an introduction. Both ends present one (mutual TLS
//! 1.3) and prove they hold its key in the handshake.
use proto::direct::Fingerprint;
use proto::VnetId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::tls::Signatures;

/// The protocol a direct link speaks, in its TLS ALPN.
pub(crate) const ALPN: &[u8] = b"vnet-direct/1";

/// The name a dialer asks for; the certificate is checked by its
/// fingerprint, never by name.
pub(crate) const SERVER_NAME: &str = "vnet";

/// This vnet's link certificate and key.
pub(crate) struct Identity {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    pub fingerprint: Fingerprint,
}

impl Identity {
    /// A fresh self-signed certificate.
    pub(crate) fn generate() -> Result<Self, rcgen::Error> {
        let made = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])?;
        let cert = made.cert.der().clone();
        let fingerprint = Fingerprint::of(&cert);
        let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
        Ok(Self {
            cert,
            key,
            fingerprint,
        })
    }

    fn chain(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (vec![self.cert.clone()], self.key.clone_key().into())
    }

    /// TLS for accepting links: only from a certificate in `expected`.
    pub(crate) fn server(&self, expected: Expected) -> rustls::ServerConfig {
        let provider = provider();
        let (chain, key) = self.chain();
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("ring supports TLS 1.3")
            .with_client_cert_verifier(Arc::new(Introduced { expected, provider }))
            .with_single_cert(chain, key)
            .expect("a key rcgen made fits its certificate");
        config.alpn_protocols = vec![ALPN.to_vec()];
        config
    }

    /// TLS for dialing the vnet whose certificate is `peer`.
    pub(crate) fn client(&self, peer: Fingerprint) -> rustls::ClientConfig {
        let provider = provider();
        let (chain, key) = self.chain();
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("ring supports TLS 1.3")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { peer, provider }))
            .with_client_auth_cert(chain, key)
            .expect("a key rcgen made fits its certificate");
        config.alpn_protocols = vec![ALPN.to_vec()];
        config
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Certificates of the vnets introduced to us and not yet done with,
/// and who each is. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Expected(Arc<Mutex<HashMap<Fingerprint, (VnetId, String)>>>);

impl Expected {
    /// Links from `cert` are accepted as vnet `peer`'s (named `name`),
    /// and from no other certificate of its: one entry per vnet.
    pub(crate) fn insert(&self, cert: Fingerprint, peer: VnetId, name: &str) {
        let mut expected = self.lock();
        expected.retain(|_, (id, _)| *id != peer);
        expected.insert(cert, (peer, name.to_string()));
    }

    /// Nobody is expected (a new session: ids may name others now).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Links from `cert` are refused again.
    pub(crate) fn remove(&self, cert: &Fingerprint) {
        self.lock().remove(cert);
    }

    /// The vnet whose certificate this is, and its name, if introduced.
    pub(crate) fn who(&self, cert: &Fingerprint) -> Option<(VnetId, String)> {
        self.lock().get(cert).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Fingerprint, (VnetId, String)>> {
        self.0.lock().expect("expected certificates poisoned")
    }
}

/// The fingerprint of the certificate a link's peer presented.
pub(crate) fn peer_fingerprint(conn: &quinn::Connection) -> Option<Fingerprint> {
    let identity = conn.peer_identity()?;
    let chain = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    chain.first().map(|cert| Fingerprint::of(cert))
}

/// A dialer's check: the accepting end is the vnet introduced.
#[derive(Debug)]
struct Pinned {
    peer: Fingerprint,
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
        if Fingerprint::of(end_entity) == self.peer {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the certificate of the vnet introduced".into(),
            ))
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

/// An accepting end's check: the dialer is a vnet introduced to us.
#[derive(Debug)]
struct Introduced {
    expected: Expected,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expected({})", self.lock().len())
    }
}

impl ClientCertVerifier for Introduced {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.expected.who(&Fingerprint::of(end_entity)) {
            Some(_) => Ok(ClientCertVerified::assertion()),
            None => Err(rustls::Error::General(
                "not the certificate of a vnet introduced".into(),
            )),
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
