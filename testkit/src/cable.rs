//! A cable that can be pulled: a TCP relay to an address, which while
//! paused passes nothing (no bytes, no end), as on a dead link.
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP relay that can be made to go silent, like a pulled cable: while
/// paused it forwards nothing and drops new connections.
pub async fn relay(to: SocketAddr, paused: watch::Receiver<bool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            if *paused.borrow() {
                continue;
            }
            let Ok(outbound) = TcpStream::connect(to).await else {
                continue;
            };
            let (a_read, a_write) = inbound.into_split();
            let (b_read, b_write) = outbound.into_split();
            tokio::spawn(pump(a_read, b_write, paused.clone()));
            tokio::spawn(pump(b_read, a_write, paused.clone()));
        }
    });
    addr
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut paused: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = from.read(&mut buf).await;
        // Nothing passes while paused, as on a dead link: not bytes, not
        // an end.
        if paused.wait_for(|p| !p).await.is_err() {
            return;
        }
        match read {
            Ok(0) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            // A reset is not turned into a clean end on the other side.
            Err(_) => return to.forget(),
        }
    }
}
