//! A TCP relay in front of the route, standing in for the network between
//! a vnet and the route, so that a test can cut one connection (with a
//! reset on both sides) while every process stays up.
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a relay thread looks at its link's `cut` flag while it waits.
const TICK: Duration = Duration::from_millis(20);

/// One relayed connection: `near` from the vnet, `far` to the route.
struct Link {
    near: TcpStream,
    far: TcpStream,
    /// Bytes relayed, both ways.
    bytes: AtomicU64,
    cut: AtomicBool,
}

impl Link {
    /// Marks the link cut and makes both sockets reset when closed; the
    /// relay threads notice within a tick, drop their handles, and the
    /// last close sends the RSTs.
    fn reset(&self) {
        for socket in [&self.near, &self.far] {
            let _ = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO));
        }
        self.cut.store(true, Ordering::SeqCst);
    }
}

/// Listens on 127.0.0.1 (port picked by the system) and relays every
/// connection to `target`. Dropping it stops accepting and resets what is
/// still open.
pub struct Relay {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<Weak<Link>>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts relaying to `target`.
    pub fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay listener");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("relay address");
        let links = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (links, stop) = (links.clone(), stop.clone());
            std::thread::spawn(move || accept_loop(listener, target, links, stop))
        };
        Relay {
            addr,
            links,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// Where vnets should dial instead of the route.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resets, on both sides, the open connection that has carried the
    /// most bytes (the data connection of a running transfer); returns
    /// that count, or `None` if nothing is open.
    pub fn reset_busiest(&self) -> Option<u64> {
        let links = self.links.lock().unwrap();
        let busiest = links
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|link| !link.cut.load(Ordering::SeqCst))
            .max_by_key(|link| link.bytes.load(Ordering::SeqCst))?;
        busiest.reset();
        Some(busiest.bytes.load(Ordering::SeqCst))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().iter().filter_map(Weak::upgrade) {
            link.reset();
        }
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    links: Arc<Mutex<Vec<Weak<Link>>>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((near, _)) => {
                let Ok(far) = TcpStream::connect(target) else {
                    continue;
                };
                let (Ok(near2), Ok(far2)) = (near.try_clone(), far.try_clone()) else {
                    continue;
                };
                let _ = near.set_nonblocking(false);
                for socket in [&near, &far] {
                    let _ = socket.set_nodelay(true);
                    let _ = socket.set_read_timeout(Some(TICK));
                    let _ = socket.set_write_timeout(Some(TICK));
                }
                let link = Arc::new(Link {
                    near,
                    far,
                    bytes: AtomicU64::new(0),
                    cut: AtomicBool::new(false),
                });
                let mut all = links.lock().unwrap();
                all.retain(|l| l.strong_count() > 0);
                all.push(Arc::downgrade(&link));
                drop(all);
                let up = link.clone();
                std::thread::spawn(move || pump(&up, near2, &up.far));
                std::thread::spawn(move || pump(&link, far2, &link.near));
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                // std has no accept with a timeout; poll with a short pause.
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Copies `from` into `to` until an end: a clean EOF is passed on as a
/// half-close; an error or a cut resets both sides.
fn pump(link: &Link, mut from: TcpStream, mut to: &TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if link.cut.load(Ordering::SeqCst) {
            return;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => n,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(_) => return link.reset(),
        };
        let mut sent = 0;
        while sent < n {
            if link.cut.load(Ordering::SeqCst) {
                return;
            }
            match to.write(&buf[sent..n]) {
                Ok(m) => {
                    sent += m;
                    link.bytes.fetch_add(m as u64, Ordering::SeqCst);
                }
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return link.reset(),
            }
        }
    }
}
