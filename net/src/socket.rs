//! Socket options: liveness of the connections between vnets and the
//! route, and how a relayed socket closes.
//!
//! # Liveness
//!
//! Spare data connections sit idle for long stretches, and so do mapped
//! connections such as an idle ssh session. A NAT or firewall between the
//! vnet and the route may forget an idle connection and then drop its
//! packets silently, and a host that loses power sends nothing at all. So
//! every connection between a vnet and the route gets TCP keepalive scaled
//! to the heartbeat: an idle peer that stopped answering is noticed within
//! one heartbeat (the first probe after half of it, then three probes a
//! sixth apart), and the stream on that connection ends in an error, which
//! its relay passes on as a reset. (No TCP user timeout: Linux applies it
//! to a zero window too, and a reader may pause a stream for as long as
//! it likes.) A dead peer with bytes in flight is the control link's to
//! notice, by its heartbeat.
use socket2::{SockRef, TcpKeepalive};
use std::time::Duration;
use tokio::net::TcpStream;

/// Unanswered probes before the connection counts as dead.
#[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
const KEEPALIVE_PROBES: u32 = 3;

/// The shortest interval any of these timers is set to.
const FLOOR: Duration = Duration::from_secs(1);

/// Makes closing `stream` reset it (SO_LINGER 0) while `on`, or close it
/// gracefully again when not.
///
/// A stream's sockets are armed while it runs, so that a socket closed for
/// any reason but a clean end of both directions (an error, a cut stream,
/// shutdown, or the process being killed, whose sockets the kernel closes)
/// sends a reset: the peer then sees an error instead of a clean end after
/// missing bytes. Only a stream that ended cleanly both ways is disarmed,
/// so its last bytes still drain from the send buffer after the close.
/// Failures are ignored: the socket still works.
pub fn reset_on_close(stream: &TcpStream, on: bool) {
    let linger = on.then_some(Duration::ZERO);
    let _ = SockRef::from(stream).set_linger(linger);
}

/// Sets up a connection between a vnet and the route: no Nagle delay
/// (small frames and interactive bytes go out at once), and keepalive that
/// notices a dead idle peer within `heartbeat` (see the module's doc).
/// Failures are ignored: the connection works without them.
pub fn tune(stream: &TcpStream, heartbeat: Duration) {
    let _ = stream.set_nodelay(true);
    let keepalive = TcpKeepalive::new()
        .with_time((heartbeat / 2).max(FLOOR))
        .with_interval((heartbeat / 6).max(FLOOR));
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
    let keepalive = keepalive.with_retries(KEEPALIVE_PROBES);
    let _ = SockRef::from(stream).set_tcp_keepalive(&keepalive);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tuned_sockets_notice_a_dead_peer_within_the_heartbeat() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        tune(&stream, Duration::from_secs(30));
        let sock = SockRef::from(&stream);
        assert!(sock.keepalive().unwrap());
        assert!(stream.nodelay().unwrap());
        #[cfg(target_os = "linux")]
        {
            assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(15));
            assert_eq!(
                sock.tcp_keepalive_interval().unwrap(),
                Duration::from_secs(5)
            );
            assert_eq!(sock.tcp_keepalive_retries().unwrap(), KEEPALIVE_PROBES);
            // A paused reader (a zero window) must not end the stream.
            assert_eq!(sock.tcp_user_timeout().unwrap(), None);
        }
    }
}
