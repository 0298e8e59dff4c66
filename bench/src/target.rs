//! The target service every path leads to: three listeners on loopback,
//! one per behaviour, so no workload pays for choosing a mode.
//!
//! - echo: writes back whatever arrives (latency, connection rate, idle
//!   connections);
//! - sink: reads to EOF, then answers with the byte count as a big-endian
//!   u64 (upload throughput, measured end to end);
//! - source: writes as fast as the reader takes it (download throughput,
//!   and the stalled reader of the head-of-line test).
//!
//! Every connection task is bounded in time, so nothing outlives the run
//! even if a client forgets to close.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Buffer for bulk reads and writes; large so the bench side makes few
/// syscalls and is less likely to be the bottleneck.
pub const BULK_BUF: usize = 256 * 1024;

/// Longest any single target connection may live.
const CONN_LIFETIME: Duration = Duration::from_secs(600);

/// The addresses of a running target.
#[derive(Debug, Clone, Copy)]
pub struct TargetAddrs {
    pub echo: SocketAddr,
    pub sink: SocketAddr,
    pub source: SocketAddr,
}

/// A running in-process target.
pub struct Target {
    pub addrs: TargetAddrs,
    /// Bytes the source has handed to the kernel, over all connections.
    pub source_written: Arc<AtomicU64>,
}

async fn bind() -> std::io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", 0)).await
}

/// Starts the three listeners on the current runtime.
pub async fn start() -> std::io::Result<Target> {
    let echo = bind().await?;
    let sink = bind().await?;
    let source = bind().await?;
    let addrs = TargetAddrs {
        echo: echo.local_addr()?,
        sink: sink.local_addr()?,
        source: source.local_addr()?,
    };
    let source_written = Arc::new(AtomicU64::new(0));
    tokio::spawn(accept_loop(echo, |s| Box::pin(echo_conn(s))));
    tokio::spawn(accept_loop(sink, |s| Box::pin(sink_conn(s))));
    let written = source_written.clone();
    tokio::spawn(accept_loop(source, move |s| {
        Box::pin(source_conn(s, written.clone()))
    }));
    Ok(Target {
        addrs,
        source_written,
    })
}

type ConnFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Accepts forever (the runtime's end stops it), one task per connection.
pub async fn accept_loop<F>(listener: TcpListener, handler: F)
where
    F: Fn(TcpStream) -> ConnFuture,
{
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let conn = handler(stream);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(CONN_LIFETIME, conn).await;
                });
            }
            // Out of descriptors and the like: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Writes back what arrives until EOF.
pub async fn echo_conn(mut stream: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn sink_conn(mut stream: TcpStream) {
    let mut buf = vec![0u8; BULK_BUF];
    let mut total = 0u64;
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(_) => return,
        }
    }
    let _ = stream.write_all(&total.to_be_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn source_conn(mut stream: TcpStream, written: Arc<AtomicU64>) {
    let chunk = vec![0xa5u8; BULK_BUF];
    loop {
        match stream.write(&chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                written.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

/// `bench --serve-echo`: an echo target in its own process, for the idle
/// connection phase. Ten thousand connections cost this process one
/// descriptor each; kept apart from the clients' ten thousand it stays
/// under a 20,000 descriptor limit. Prints its port on stdout, then serves
/// until stdin closes (the bench went away) or an hour has passed.
pub fn serve_echo_process() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("bench --serve-echo: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        let listener = match bind().await {
            Ok(listener) => listener,
            Err(err) => {
                eprintln!("bench --serve-echo: cannot listen: {err}");
                return std::process::ExitCode::FAILURE;
            }
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        println!("{port}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        tokio::spawn(accept_loop(listener, |s| Box::pin(echo_conn(s))));
        let mut stdin = tokio::io::stdin();
        let mut scratch = [0u8; 64];
        let watch_stdin = async {
            while let Ok(n) = stdin.read(&mut scratch).await {
                if n == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(3600), watch_stdin).await;
        std::process::ExitCode::SUCCESS
    });
    // A stdin read may still be parked on a blocking thread: do not wait for it.
    runtime.shutdown_background();
    code
}
