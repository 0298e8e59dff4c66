//! The first exchange on a new link, on its first stream: each end says
//! it takes this link. The dialer may have reached the other by several
//! addresses at once; the link that carries its hello is the one it kept,
//! and only that one counts as up at the accepting end.
use quinn::Connection;
use std::time::Duration;

/// Opens every hello.
const MAGIC: &[u8; 8] = b"VNLINK1\0";

/// How long the other end's hello may take.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// The dialer's side: sends its hello, then reads the other's.
///
/// # Errors
/// The link failed, or the other end's answer was not a hello.
pub(crate) async fn dial(link: &Connection) -> Result<(), String> {
    let exchange = async {
        let (mut send, mut recv) = link.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(MAGIC).await.map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        read(&mut recv).await
    };
    bounded(exchange).await
}

/// The accepting side: reads the dialer's hello, then answers it.
///
/// # Errors
/// As [`dial`].
pub(crate) async fn accept(link: &Connection) -> Result<(), String> {
    let exchange = async {
        let (mut send, mut recv) = link.accept_bi().await.map_err(|e| e.to_string())?;
        read(&mut recv).await?;
        send.write_all(MAGIC).await.map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())
    };
    bounded(exchange).await
}

async fn read(recv: &mut quinn::RecvStream) -> Result<(), String> {
    let hello = recv
        .read_to_end(MAGIC.len())
        .await
        .map_err(|e| format!("no hello: {e}"))?;
    if hello != MAGIC {
        return Err("not a vnet's hello".into());
    }
    Ok(())
}

async fn bounded(
    exchange: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    tokio::time::timeout(HELLO_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no hello in {HELLO_TIMEOUT:?}")))
}
