//! Opening one connection with a bound, and the shape of error text that
//! every workload reports in. The other workload modules build on these.
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How long one connect plus first echo may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

pub(super) async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connect to {addr}: timed out"))?
        .map_err(|e| err(&format!("connect to {addr}"), e))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
