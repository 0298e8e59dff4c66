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

/// Who listens on `addr` already, as "pid N (name)", if the system says
/// (Linux: from /proc, for processes this user may look at).
pub fn holder(addr: SocketAddr) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let inode = listening_inode(addr)?;
        let wanted = format!("socket:[{inode}]");
        for proc in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = proc.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(proc.path().join("fd")) else {
                continue;
            };
            let holds = fds.flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == wanted.as_str())
            });
            if holds {
                let name = std::fs::read_to_string(proc.path().join("comm")).unwrap_or_default();
                return Some(format!("pid {pid} ({})", name.trim()));
            }
        }
        None
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = addr;
        None
    }
}

/// The inode of the socket listening on `addr`, from /proc/net/tcp(6).
#[cfg(target_os = "linux")]
fn listening_inode(addr: SocketAddr) -> Option<u64> {
    const LISTEN: &str = "0A";
    let table = if addr.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    let text = std::fs::read_to_string(table).ok()?;
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
        let (_, port) = local.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        // Any address on the port counts: a wildcard listener holds it for
        // every address.
        (port == addr.port() && *state == LISTEN).then(|| inode.parse().ok())?
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_holder_of_a_port_is_named() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let held = holder(addr).expect("our own listener is found");
        assert!(
            held.starts_with(&format!("pid {} (", std::process::id())),
            "{held}"
        );
    }
}
