//! The serving side of a link: every stream the other vnet opens asks for
//! one of our serves in its header. It is admitted and its local service
//! reached as on the relay path (`serving`); a refusal resets the stream
//! with a code saying why, so the visitor's client is reset at once.
use net::Unframed;
use proto::direct::{reset, StreamHeader};
use proto::{Refusal, RefusalCode, VnetId};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::stream::QuicStream;
use crate::serving::{self, Path, Serving};

/// How long a stream's header may take to come.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Takes the streams `peer` opens on `link` until the link closes; their
/// streams are reset when it does.
pub(crate) async fn run(serving: Serving, link: quinn::Connection, peer: VnetId) {
    let closed = CancellationToken::new();
    let _close = closed.clone().drop_guard();
    loop {
        let (send, recv) = match link.accept_bi().await {
            Ok(stream) => stream,
            Err(err) => {
                let err = proto::text::Escaped(&err.to_string()).to_string();
                return debug!(%err, "direct link closed");
            }
        };
        let stream = QuicStream::new(send, recv);
        let (serving, closed) = (serving.clone(), closed.clone());
        serving
            .tracker
            .clone()
            .spawn(start(serving, stream, peer, closed));
    }
}

/// Reads one stream's header and hands it to the serving side.
async fn start(serving: Serving, mut stream: QuicStream, peer: VnetId, closed: CancellationToken) {
    let mut header = [0u8; StreamHeader::LEN];
    let read = tokio::time::timeout(HEADER_TIMEOUT, stream.recv().read_exact(&mut header)).await;
    let header = match read {
        Ok(Ok(())) => StreamHeader::decode(&header),
        _ => None,
    };
    let Some(header) = header else {
        debug!(vnet = %peer, "direct stream without a header refused");
        return stream.refuse(reset::MALFORMED);
    };
    let reply = move |result: Result<(), Refusal>| async move {
        match result {
            Ok(()) => Some(Unframed {
                stream,
                leftover: Default::default(),
            }),
            Err(refusal) => {
                stream.refuse(code_of(&refusal));
                None
            }
        }
    };
    serving::spawn(
        &serving,
        (header.serve_id, Some(peer)),
        closed,
        Path::Direct,
        reply,
    );
}

/// The reset code that tells the visitor why.
fn code_of(refusal: &Refusal) -> u32 {
    match refusal.code {
        RefusalCode::Unreachable => reset::UNREACHABLE,
        _ => reset::REFUSED,
    }
}
