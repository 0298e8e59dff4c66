//! Listening sockets: the route's port and each use's local port.
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpSocket};

/// Pending connections the kernel may queue for `accept`. tokio's default
/// of 1024 overflows under a burst, and an overflowing queue drops
/// handshakes into the client's SYN-retry backoff (seconds); the kernel
/// caps this at `net.core.somaxconn`.
pub const BACKLOG: u32 = 4096;

/// Binds `addr` with [`BACKLOG`] and `SO_REUSEADDR` (a restarted process
/// gets its port back at once).
///
/// # Errors
/// The address cannot be bound.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Binds the first address `addr` (IP or host name with port) resolves to
/// that can be bound; see [`bind`].
///
/// # Errors
/// The name does not resolve, or no address can be bound.
pub async fn bind_host(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "address resolved to nothing");
    for addr in tokio::net::lookup_host(addr).await? {
        match bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(err) => last = err,
        }
    }
    Err(last)
}
