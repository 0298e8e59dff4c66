//! Socket options for connections between vnets and the route.
//!
//! Spare data connections sit idle for long stretches, and so do mapped
//! connections such as an idle ssh session. A NAT or firewall between the
//! vnet and the route may forget an idle connection after a few minutes
//! and then drop its packets silently, so the next stream would hang until
//! a timeout. TCP keepalive probes keep such mappings alive and reveal a
//! dead idle peer within about a minute (30 s idle, then 3 probes 10 s
//! apart; where the probe count cannot be set, the system's default).
use socket2::{SockRef, TcpKeepalive};
use std::time::Duration;
use tokio::net::TcpStream;

/// Idle time before the first probe.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// Time between unanswered probes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes before the connection counts as dead.
#[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
const KEEPALIVE_PROBES: u32 = 3;

/// Sets up a connection between a vnet and the route: no Nagle delay
/// (small frames and interactive bytes go out at once) and keepalive.
/// Failures are ignored: the connection works without them.
pub fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL);
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
    let keepalive = keepalive.with_retries(KEEPALIVE_PROBES);
    let _ = SockRef::from(stream).set_tcp_keepalive(&keepalive);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tuned_sockets_have_keepalive_and_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        tune(&stream);
        let sock = SockRef::from(&stream);
        assert!(sock.keepalive().unwrap());
        assert!(stream.nodelay().unwrap());
        #[cfg(target_os = "linux")]
        {
            assert_eq!(sock.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
            assert_eq!(sock.tcp_keepalive_retries().unwrap(), KEEPALIVE_PROBES);
        }
    }
}
