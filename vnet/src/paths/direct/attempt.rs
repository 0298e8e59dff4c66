//! One attempt at a link, from an introduction. The dialing vnet tries
//! every address of the other at once and keeps the first link that
//! authenticates; the other sends punches towards the dialer's addresses
//! meanwhile, so that its NAT (if it maps endpoint-independently) lets
//! the dialer's packets in, and takes the link in the accept loop.
use proto::direct::lane::LinkHello;
use proto::direct::Introduction;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::hello;
use super::identity::{Identity, SERVER_NAME};
use super::socket::DirectSocket;

/// How long one attempt may take, introduction to link.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a link may be silent before it counts as dead; each end
/// sends a keep-alive at a third of it, so a link that carries nothing
/// still notices a dead path within this.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(6);

/// Stream and link windows: room for a round trip of bytes on a fast
/// path (200 Mbit/s over 50 ms is 1.25 MB), per stream and in all. They
/// bound what a link holds in memory at each end, as a reader slower than
/// its sender leaves that much waiting.
const STREAM_WINDOW: u32 = 2 << 20;
const LINK_WINDOW: u32 = 8 << 20;

/// Streams open at once on one link, each way; a stream beyond them goes
/// through the route. quinn keeps an entry for each from the start, so
/// this is memory every link holds: 8,192 cost 1.4 MiB per vnet.
pub(crate) const MAX_STREAMS: u32 = 1024;

/// The largest datagram taken in: an Ethernet frame's payload. quinn sizes
/// its receive buffers by it (a batch of coalesced datagrams each), and
/// the 64 KiB default would let them grow past 100 MiB under load.
const MAX_DATAGRAM: u16 = 1500;

/// The endpoint's settings.
pub(crate) fn endpoint_config() -> quinn::EndpointConfig {
    let mut config = quinn::EndpointConfig::default();
    config
        .max_udp_payload_size(MAX_DATAGRAM)
        .expect("within QUIC's bounds");
    config
}

/// The transport settings of every link.
pub(crate) fn transport() -> Arc<quinn::TransportConfig> {
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(MAX_STREAMS.into())
        .max_concurrent_uni_streams(0u32.into())
        .stream_receive_window(STREAM_WINDOW.into())
        .receive_window(LINK_WINDOW.into())
        .send_window(u64::from(LINK_WINDOW))
        .keep_alive_interval(Some(IDLE_TIMEOUT / 3))
        .max_idle_timeout(Some(
            IDLE_TIMEOUT
                .try_into()
                .expect("a few seconds fit an idle timeout"),
        ));
    Arc::new(transport)
}

/// What an attempt needs of the direct path.
pub(crate) struct Ends<'a> {
    pub endpoint: &'a quinn::Endpoint,
    pub socket: &'a DirectSocket,
    pub identity: &'a Identity,
    /// What our end says first on the link.
    pub hello: &'a LinkHello,
}

/// How an attempt ended.
pub(crate) enum Outcome {
    /// The dialed link is up; the other end said this.
    Dialed(quinn::Connection, LinkHello),
    /// Ended by `done` (the link came in, or a newer attempt) or shutdown.
    Ended,
    /// No link: why.
    Failed(String),
}

/// Runs the attempt for `intro` until a link is up, it fails, or `done`.
pub(crate) async fn run(ends: Ends<'_>, intro: &Introduction, done: &CancellationToken) -> Outcome {
    let attempt = tokio::time::timeout(ATTEMPT_TIMEOUT, attempt(&ends, intro, done));
    match tokio::select! {
        _ = done.cancelled() => return Outcome::Ended,
        outcome = attempt => outcome,
    } {
        Ok(Ok((link, theirs))) => Outcome::Dialed(link, theirs),
        Ok(Err(why)) => Outcome::Failed(why),
        Err(_) if done.is_cancelled() => Outcome::Ended,
        Err(_) if intro.dial => {
            Outcome::Failed(format!("no address of it answered in {ATTEMPT_TIMEOUT:?}"))
        }
        Err(_) => Outcome::Failed(format!("it did not reach this vnet in {ATTEMPT_TIMEOUT:?}")),
    }
}

/// Dials, or punches until the link comes in (then `done` is cancelled
/// by whoever takes it).
async fn attempt(
    ends: &Ends<'_>,
    intro: &Introduction,
    done: &CancellationToken,
) -> Result<(quinn::Connection, LinkHello), String> {
    let socket = ends.socket;
    if !intro.dial {
        socket.punch(&intro.addrs, done).await;
        return Err("given up".into());
    }
    let addrs: Vec<_> = intro
        .addrs
        .iter()
        .filter_map(|a| socket.reaches(*a))
        .collect();
    if addrs.is_empty() {
        return Err("it has no address this vnet can reach".into());
    }
    let client =
        quinn::crypto::rustls::QuicClientConfig::try_from(ends.identity.client(intro.cert))
            .map_err(|err| err.to_string())?;
    let mut config = quinn::ClientConfig::new(Arc::new(client));
    config.transport_config(transport());
    // The other end may not have taken its own introduction yet when our
    // first handshake reaches it, and refuses a certificate it does not
    // expect. In TLS 1.3 that comes after our side of the handshake is
    // done, so the link is lost before its hello: a round that fails
    // either way is tried again, within the attempt.
    let retry_until = tokio::time::Instant::now() + ATTEMPT_TIMEOUT / 2;
    loop {
        let round = async {
            let link = dial_all(ends, &config, &addrs).await?;
            let theirs = hello::dial(&link, ends.hello).await?;
            Ok((link, theirs))
        };
        match round.await {
            Ok(dialed) => return Ok(dialed),
            Err(why) if tokio::time::Instant::now() >= retry_until => return Err(why),
            Err(_) => tokio::time::sleep(DIAL_AGAIN).await,
        }
    }
}

/// The wait before a failed round of handshakes is tried again.
const DIAL_AGAIN: Duration = Duration::from_millis(300);

/// Dials every address at once; the first link whose handshake completes.
async fn dial_all(
    ends: &Ends<'_>,
    config: &quinn::ClientConfig,
    addrs: &[std::net::SocketAddr],
) -> Result<quinn::Connection, String> {
    let mut tries = JoinSet::new();
    for &addr in addrs {
        let connecting = ends
            .endpoint
            .connect_with(config.clone(), addr, SERVER_NAME);
        tries.spawn(async move {
            match connecting {
                Ok(connecting) => connecting.await.map_err(|e| format!("{addr}: {e}")),
                Err(err) => Err(format!("{addr}: {err}")),
            }
        });
    }
    let mut errors = Vec::new();
    while let Some(tried) = tries.join_next().await {
        match tried {
            // The rest are dropped with the set: their handshakes stop,
            // and the other end takes only the link our hello comes on.
            Ok(Ok(link)) => return Ok(link),
            Ok(Err(err)) => errors.push(err),
            Err(err) => errors.push(err.to_string()),
        }
    }
    Err(errors.join("; "))
}

/// Completes the handshake of a link someone opened to us; the
/// certificate check already made sure it is a vnet introduced.
pub(crate) async fn accepted(incoming: quinn::Incoming) -> Result<quinn::Connection, String> {
    let connecting = incoming.accept().map_err(|e| e.to_string())?;
    match tokio::time::timeout(ATTEMPT_TIMEOUT, connecting).await {
        Ok(Ok(link)) => Ok(link),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no handshake in {ATTEMPT_TIMEOUT:?}")),
    }
}
