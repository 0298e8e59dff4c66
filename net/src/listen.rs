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

/// Sets up `listener` for connections that are relayed: each starts with
/// no Nagle delay, armed to reset on close (see
/// [`crate::socket::reset_on_close`]), and with `keepalive` if given.
/// Linux hands a listener's options to every connection it accepts, so
/// those need no system call of their own (a few per connection, on the
/// path of every new one); elsewhere [`ready`] sets them.
///
/// # Errors
/// An option cannot be set.
pub fn for_relaying(
    listener: &TcpListener,
    keepalive: Option<&socket2::TcpKeepalive>,
) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    set_relaying(&socket2::SockRef::from(listener), keepalive)?;
    #[cfg(not(target_os = "linux"))]
    let _ = (listener, keepalive);
    Ok(())
}

/// Readies a connection accepted from a listener set up by
/// [`for_relaying`] with the same `keepalive`: nothing to do on Linux,
/// where it inherited them. Failures are ignored: the socket still works.
pub fn ready(stream: &tokio::net::TcpStream, keepalive: Option<&socket2::TcpKeepalive>) {
    #[cfg(not(target_os = "linux"))]
    let _ = set_relaying(&socket2::SockRef::from(stream), keepalive);
    #[cfg(target_os = "linux")]
    let _ = (stream, keepalive);
}

fn set_relaying(
    socket: &socket2::SockRef<'_>,
    keepalive: Option<&socket2::TcpKeepalive>,
) -> std::io::Result<()> {
    socket.set_tcp_nodelay(true)?;
    socket.set_linger(Some(std::time::Duration::ZERO))?;
    if let Some(keepalive) = keepalive {
        socket.set_tcp_keepalive(keepalive)?;
    }
    Ok(())
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

/// Whether something listens on `addr`, found without connecting to it
/// (a connection would be a visit to the service: logged, and taken by a
/// service that accepts just one). `None` when this cannot tell: `addr`
/// is not one of this host's addresses, or the system does not say.
pub fn listening(addr: SocketAddr) -> Option<bool> {
    let ip = addr.ip();
    // Binding to the address succeeds only if this host has it.
    if !ip.is_unspecified() && std::net::UdpSocket::bind((ip, 0)).is_err() {
        return None;
    }
    #[cfg(target_os = "linux")]
    {
        let serves = |l: &Listener| {
            l.port == addr.port()
                && (l.ip == ip || l.ip.is_unspecified() || l.ip.to_canonical() == ip)
        };
        let mut tables = [false, true].into_iter().map(listeners);
        Some(tables.any(|table| table.iter().any(serves)))
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// A listening socket, as /proc/net/tcp(6) lists it.
#[cfg(target_os = "linux")]
struct Listener {
    ip: std::net::IpAddr,
    port: u16,
    inode: u64,
}

/// The listening sockets of this network namespace, IPv4 or IPv6.
#[cfg(target_os = "linux")]
fn listeners(v6: bool) -> Vec<Listener> {
    const LISTEN: &str = "0A";
    let table = if v6 {
        "/proc/net/tcp6"
    } else {
        "/proc/net/tcp"
    };
    let text = std::fs::read_to_string(table).unwrap_or_default();
    let parse = |line: &str| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
        if *state != LISTEN {
            return None;
        }
        let (ip, port) = local.split_once(':')?;
        Some(Listener {
            ip: proc_ip(ip)?,
            port: u16::from_str_radix(port, 16).ok()?,
            inode: inode.parse().ok()?,
        })
    };
    text.lines().skip(1).filter_map(parse).collect()
}

/// An address as /proc/net/tcp(6) prints it: each 32-bit word in hex, in
/// the host's byte order.
#[cfg(target_os = "linux")]
fn proc_ip(hex: &str) -> Option<std::net::IpAddr> {
    let words: Option<Vec<[u8; 4]>> = (0..hex.len() / 8)
        .map(|i| {
            let word = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
            Some(word.to_ne_bytes())
        })
        .collect();
    match words?.concat().as_slice() {
        &[a, b, c, d] if hex.len() == 8 => Some(std::net::Ipv4Addr::new(a, b, c, d).into()),
        bytes if hex.len() == 32 => {
            let bytes: [u8; 16] = bytes.try_into().ok()?;
            Some(std::net::Ipv6Addr::from(bytes).into())
        }
        _ => None,
    }
}

/// The inode of the socket listening on `addr`'s port, from
/// /proc/net/tcp(6). Any address on the port counts: a wildcard listener
/// holds it for every address.
#[cfg(target_os = "linux")]
fn listening_inode(addr: SocketAddr) -> Option<u64> {
    let table = listeners(addr.is_ipv6());
    table
        .iter()
        .find(|l| l.port == addr.port())
        .map(|l| l.inode)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listener_is_seen_without_a_connection_to_it() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(listening(addr), Some(true));
        let wildcard = bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let on_loopback = SocketAddr::from(([127, 0, 0, 1], wildcard.local_addr().unwrap().port()));
        assert_eq!(
            listening(on_loopback),
            Some(true),
            "a wildcard listener serves loopback"
        );
        if let Ok(v6) = bind("[::1]:0".parse().unwrap()) {
            assert_eq!(listening(v6.local_addr().unwrap()), Some(true));
        }
        // Another loopback address on the same port has no listener.
        let elsewhere = SocketAddr::from(([127, 0, 0, 2], addr.port()));
        assert_eq!(listening(elsewhere), Some(false));
        drop(listener);
        assert_eq!(listening(addr), Some(false));
        // Not an address of this host (TEST-NET-3): cannot tell.
        assert_eq!(listening("203.0.113.7:80".parse().unwrap()), None);
    }

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

    #[tokio::test]
    async fn accepted_connections_are_ready_for_relaying() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let keepalive = socket2::TcpKeepalive::new().with_time(std::time::Duration::from_secs(15));
        for_relaying(&listener, Some(&keepalive)).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        ready(&accepted, Some(&keepalive));
        let socket = socket2::SockRef::from(&accepted);
        assert!(socket.tcp_nodelay().unwrap());
        assert_eq!(socket.linger().unwrap(), Some(std::time::Duration::ZERO));
        assert!(socket.keepalive().unwrap());
        #[cfg(target_os = "linux")]
        assert_eq!(
            socket.tcp_keepalive_time().unwrap(),
            std::time::Duration::from_secs(15)
        );
    }
}
