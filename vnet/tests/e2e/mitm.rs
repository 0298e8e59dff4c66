//! A route in the middle of a direct link: it introduces each vnet to
//! mallory (mallory's certificate and address in place of the other's),
//! and mallory takes the dialer's link and dials the other itself,
//! forwarding every QUIC stream between the two links. Without a secret
//! that works (the route is trusted, as the README says): the link comes
//! up through mallory. With `secret=` each end's proof is over its own
//! TLS session, which mallory cannot make or forward: both refuse the
//! link, say why, and streams stay on the sealed relay, where mallory
//! sees none of their bytes.
use super::*;
use futures::{SinkExt, StreamExt};
use proto::direct::{Fingerprint, Introduction};
use proto::message::RouteMsg;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;
use vnet::DirectState;

const AUTO: &str = "direct=auto\n";
const ALPN: &[u8] = b"vnet-direct/1";

/// Mallory: a QUIC endpoint that presents its own certificate.
struct Mallory {
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    cert: Fingerprint,
    client: quinn::ClientConfig,
    /// The accepting vnet's real addresses, from the dialer's
    /// introduction before it was altered.
    acceptor: watch::Sender<Vec<SocketAddr>>,
    /// Every byte forwarded on a stream, both ways.
    seen: Arc<Mutex<Vec<u8>>>,
    /// Links through mallory that the acceptor took (it answered).
    bridged: Arc<watch::Sender<usize>>,
    /// Links through mallory that the acceptor refused.
    refused: watch::Sender<usize>,
}

impl Mallory {
    fn start() -> Arc<Self> {
        let made = rcgen::generate_simple_self_signed(vec!["vnet".into()]).unwrap();
        let cert = made.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key.clone_key().into())
            .unwrap();
        server.alpn_protocols = vec![ALPN.to_vec()];
        let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(TakesAny(provider)))
            .with_client_auth_cert(vec![cert.clone()], key.into())
            .unwrap();
        client.alpn_protocols = vec![ALPN.to_vec()];
        let server = quinn::crypto::rustls::QuicServerConfig::try_from(server).unwrap();
        let client = quinn::crypto::rustls::QuicClientConfig::try_from(client).unwrap();
        let endpoint = quinn::Endpoint::server(
            quinn::ServerConfig::with_crypto(Arc::new(server)),
            "0.0.0.0:0".parse().unwrap(),
        )
        .unwrap();
        let port = endpoint.local_addr().unwrap().port();
        let mallory = Arc::new(Self {
            endpoint,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            cert: Fingerprint::of(&cert),
            client: quinn::ClientConfig::new(Arc::new(client)),
            acceptor: watch::channel(Vec::new()).0,
            seen: Arc::default(),
            bridged: Arc::new(watch::channel(0).0),
            refused: watch::channel(0).0,
        });
        tokio::spawn(mallory.clone().take_links());
        mallory
    }

    /// Takes each dialer's link and dials the acceptor for it; when
    /// either link ends, so does the other.
    async fn take_links(self: Arc<Self>) {
        while let Some(incoming) = self.endpoint.accept().await {
            let Ok(dialer) = incoming.await else { continue };
            let mallory = self.clone();
            tokio::spawn(async move {
                if !mallory.bridge(&dialer).await {
                    mallory.refused.send_modify(|n| *n += 1);
                }
                dialer.close(0u32.into(), b"");
            });
        }
    }

    /// Dials the acceptor for `dialer`'s link and forwards between the
    /// two until either ends; whether the acceptor took the link (it
    /// said anything, which counts it in `bridged`).
    async fn bridge(&self, dialer: &quinn::Connection) -> bool {
        let Some(acceptor) = self.dial_acceptor().await else {
            return false;
        };
        let answered = Arc::new(AtomicBool::new(false));
        tokio::select! {
            _ = self.forward((dialer, None), (&acceptor, Some(&answered))) => {}
            _ = self.forward((&acceptor, Some(&answered)), (dialer, None)) => {}
            _ = dialer.closed() => {}
            _ = acceptor.closed() => {}
        }
        acceptor.close(0u32.into(), b"");
        answered.load(Ordering::Relaxed)
    }

    /// A link to the accepting vnet, as the vnet it expects.
    async fn dial_acceptor(&self) -> Option<quinn::Connection> {
        let addrs = self
            .acceptor
            .subscribe()
            .wait_for(|a| !a.is_empty())
            .await
            .ok()?
            .clone();
        for addr in addrs {
            let connecting = self
                .endpoint
                .connect_with(self.client.clone(), addr, "vnet")
                .ok()?;
            if let Ok(conn) = connecting.await {
                return Some(conn);
            }
        }
        None
    }

    /// Every stream `from` opens, opened on `to` too, bytes copied both
    /// ways; each end's flag, if any, is set once bytes come from it
    /// (the first time, the link counts in `bridged`).
    async fn forward(&self, from: End<'_>, to: End<'_>) {
        let mut streams = tokio::task::JoinSet::new();
        while let Ok((from_send, from_recv)) = from.0.accept_bi().await {
            let Ok((to_send, to_recv)) = to.0.open_bi().await else {
                return;
            };
            let seen = &self.seen;
            let came = |end: End<'_>| end.1.map(|flag| (flag.clone(), self.bridged.clone()));
            streams.spawn(copy(from_recv, to_send, seen.clone(), came(from)));
            streams.spawn(copy(to_recv, from_send, seen.clone(), came(to)));
        }
    }
}

/// One of mallory's links, and the flag set when bytes come from it.
type End<'a> = (&'a quinn::Connection, Option<&'a Arc<AtomicBool>>);

async fn copy(
    mut from: quinn::RecvStream,
    mut to: quinn::SendStream,
    seen: Arc<Mutex<Vec<u8>>>,
    came: Option<(Arc<AtomicBool>, Arc<watch::Sender<usize>>)>,
) {
    while let Ok(Some(chunk)) = from.read_chunk(65536, true).await {
        if let Some((flag, bridged)) = &came {
            if !flag.swap(true, Ordering::Relaxed) {
                bridged.send_modify(|n| *n += 1);
            }
        }
        seen.lock().unwrap().extend_from_slice(&chunk.bytes);
        if to.write_all(&chunk.bytes).await.is_err() {
            return;
        }
    }
    let _ = to.finish();
}

/// Takes whatever certificate a vnet shows: mallory only needs the link.
#[derive(Debug)]
struct TakesAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for TakesAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Relays a vnet's connections to `route`; on the control connection
/// (the first), every introduction names mallory in place of the other
/// vnet.
async fn introducing_mallory(route: SocketAddr, mallory: Arc<Mallory>) -> SocketAddr {
    let control = move |from, to| alter_introductions(from, to, mallory);
    splitting_relay(route, control, pass).await
}

async fn alter_introductions(from: OwnedReadHalf, to: OwnedWriteHalf, mallory: Arc<Mallory>) {
    let Some((mut frames, mut out)) = control_messages(from, to).await else {
        return;
    };
    while let Some(Ok(mut msg)) = frames.next().await {
        if let RouteMsg::Introduce(Introduction {
            dial, addrs, cert, ..
        }) = &mut msg
        {
            if *dial {
                mallory.acceptor.send_replace(addrs.clone());
            } else {
                // The acceptor takes its introduction only after it has
                // refused mallory once, as it would a dialer that outran
                // it: the dialer must try again within its attempt.
                let mut refused = mallory.refused.subscribe();
                if refused.wait_for(|n| *n >= 1).await.is_err() {
                    break;
                }
            }
            *addrs = vec![mallory.addr];
            *cert = mallory.cert;
        }
        if out.send(msg).await.is_err() {
            break;
        }
    }
}

/// Home serving the marked echo and office using it, both through routes
/// that introduce mallory, with `secret`; and the use's address.
async fn pair_through_mallory(
    route: &Route,
    mallory: &Arc<Mallory>,
    secret: Option<&str>,
) -> (Vnet, Vnet, SocketAddr) {
    let home_route = introducing_mallory(route.addr, mallory.clone()).await;
    let office_route = introducing_mallory(route.addr, mallory.clone()).await;
    let service = marked_echo().await;
    let home = serving_home(home_route, "echo", service, secret, AUTO).await;
    let (office, used) = using_office(office_route, "echo", secret, AUTO).await;
    (home, office, used)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_the_route_can_sit_in_the_middle() {
    let route = Route::start().await;
    let mallory = Mallory::start();
    let (home, office, used) = pair_through_mallory(&route, &mallory, None).await;
    let home_id = direct_link_up(&home, &office, || exchange(used)).await;
    let office_id = office.handle.status().vnet_id.unwrap();
    for (vnet, peer) in [(&office, home_id), (&home, office_id)] {
        let status = vnet
            .wait("the link up", |s| {
                s.direct.get(&peer).is_some_and(|d| d.is_up())
            })
            .await;
        let direct = status.direct;
        assert!(
            matches!(direct.get(&peer), Some(DirectState::Up { addr, .. }) if addr.port() == mallory.addr.port()),
            "the link is to mallory ({}): {direct:?}",
            mallory.addr
        );
    }
    assert!(*mallory.bridged.borrow() >= 1);
    assert!(*mallory.refused.borrow() >= 1);
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_secret_a_route_in_the_middle_gets_no_link() {
    let route = Route::start().await;
    let mallory = Mallory::start();
    let (home, office, used) = pair_through_mallory(&route, &mallory, Some(SECRET)).await;
    let home_id = home.handle.status().vnet_id.unwrap();
    let office_id = office.handle.status().vnet_id.unwrap();
    // The first stream asks for a link, and goes on the sealed relay.
    exchange(used).await;
    let mut bridged = mallory.bridged.subscribe();
    within("mallory bridges the two", bridged.wait_for(|n| *n >= 1))
        .await
        .unwrap();
    for (vnet, peer) in [(&office, home_id), (&home, office_id)] {
        let status = vnet
            .wait("the link refused", |s| {
                matches!(s.direct.get(&peer), Some(DirectState::Relay(_)))
            })
            .await;
        let why = format!("{:?}", status.direct.get(&peer));
        assert!(why.contains("proof"), "{why}");
    }
    for _ in 0..3 {
        exchange(used).await;
    }
    assert_eq!(office.handle.status().direct_streams, 0);
    assert_eq!(home.handle.status().direct_streams, 0);
    let seen = &mallory.seen;
    assert!(!saw(seen, MARKER_UP) && !saw(seen, MARKER_DOWN.as_bytes()));
    stop_all(route, [office, home]).await;
}
