//! The first exchange on a new link, on its first stream: each end says
//! it takes this link, and offers its TCP lane if it has one (see
//! `proto::direct::lane`). The dialer may have reached the other by
//! several addresses at once; the link that carries its hello is the one
//! it kept, and only that one counts as up at the accepting end.
use proto::direct::lane::LinkHello;
use quinn::Connection;
use std::time::Duration;

/// How long the other end's hello may take.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// The dialer's side: sends `ours`, then reads the other's.
///
/// # Errors
/// The link failed, or the other end's answer was not a hello.
pub(crate) async fn dial(link: &Connection, ours: &LinkHello) -> Result<LinkHello, String> {
    let exchange = async {
        let (mut send, mut recv) = link.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(&ours.encode())
            .await
            .map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        read(&mut recv).await
    };
    bounded(exchange).await
}

/// The accepting side: reads the dialer's hello, then answers with `ours`.
///
/// # Errors
/// As [`dial`].
pub(crate) async fn accept(link: &Connection, ours: &LinkHello) -> Result<LinkHello, String> {
    let exchange = async {
        let (mut send, mut recv) = link.accept_bi().await.map_err(|e| e.to_string())?;
        let theirs = read(&mut recv).await?;
        send.write_all(&ours.encode())
            .await
            .map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        Ok(theirs)
    };
    bounded(exchange).await
}

async fn read(recv: &mut quinn::RecvStream) -> Result<LinkHello, String> {
    let hello = recv
        .read_to_end(LinkHello::LEN)
        .await
        .map_err(|e| format!("no hello: {e}"))?;
    LinkHello::decode(&hello).ok_or_else(|| "not a vnet's hello".into())
}

async fn bounded(
    exchange: impl std::future::Future<Output = Result<LinkHello, String>>,
) -> Result<LinkHello, String> {
    tokio::time::timeout(HELLO_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no hello in {HELLO_TIMEOUT:?}")))
}
