//! Small real TCP services and clients for tests, and deterministic data
//! with a streaming checksum.
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::wait::within;

/// A TCP service that greets each connection with `tag\n`, then echoes
/// until the client half-closes, then closes its side.
pub async fn tagged_echo(tag: &'static str) -> SocketAddr {
    tagged_echo_on([127, 0, 0, 1].into(), tag).await
}

/// Like [`tagged_echo`], listening on `ip`.
pub async fn tagged_echo_on(ip: std::net::IpAddr, tag: &'static str) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                stream.write_all(format!("{tag}\n").as_bytes()).await?;
                let (mut r, mut w) = stream.split();
                tokio::io::copy(&mut r, &mut w).await?;
                w.shutdown().await
            });
        }
    });
    addr
}

/// Connects to a use and reads the service's greeting line.
pub async fn connect_tagged(addr: SocketAddr) -> (TcpStream, String) {
    let mut stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let mut tag = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        within("read greeting", stream.read_exact(&mut byte))
            .await
            .expect("greeting");
        if byte[0] == b'\n' {
            break;
        }
        tag.push(byte[0]);
    }
    (stream, String::from_utf8(tag).unwrap())
}

/// Asserts that a connection to `addr` is closed promptly without data.
pub async fn assert_refused(addr: SocketAddr) {
    match TcpStream::connect(addr).await {
        Err(_) => {}
        Ok(mut stream) => {
            let mut buf = [0u8; 16];
            let read = within("refused connection closes", stream.read(&mut buf)).await;
            assert!(
                matches!(read, Ok(0) | Err(_)),
                "expected a closed connection, got {read:?}"
            );
        }
    }
}

/// A port nothing listens on (bound, then released).
pub async fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// FNV-1a, streaming: the same for any chunking of the same bytes.
#[derive(Clone, Copy)]
pub struct Checksum(pub u64);

impl Default for Checksum {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Checksum {
    pub fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift), so data is not trivially
/// compressible or periodic.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A service that reads to EOF and answers with the byte count.
pub async fn sink() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                let mut total = 0u64;
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => total += n as u64,
                    }
                }
                let _ = stream.write_all(&total.to_be_bytes()).await;
            });
        }
    });
    addr
}

/// Sends `len` bytes to a sink and returns the count it answers with.
pub async fn send_to_sink(addr: SocketAddr, len: u64) -> u64 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let chunk = vec![0xa5; 256 * 1024];
    let mut sent = 0;
    while sent < len {
        stream.write_all(&chunk).await.unwrap();
        sent += chunk.len() as u64;
    }
    stream.shutdown().await.unwrap();
    let mut count = [0u8; 8];
    stream.read_exact(&mut count).await.unwrap();
    u64::from_be_bytes(count)
}
