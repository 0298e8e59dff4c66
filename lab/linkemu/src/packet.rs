//! Raw Ethernet frames in and out of one network interface: an AF_PACKET
//! socket bound to the interface, with the few calls the pumps need
//! (receive without blocking, wait with a sub-millisecond deadline, send).
//!
//! This is the only file with `unsafe`: neither rustix nor socket2 wraps
//! `sockaddr_ll`, so the socket is driven through libc directly.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// `PACKET_IGNORE_OUTGOING` (Linux 4.20): do not hand back our own sends.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// `sll_pkttype` of a frame this host sent, for kernels without the above.
const PACKET_OUTGOING: u8 = 4;
/// Socket buffers big enough for a few hundred full frames in a burst.
const SOCKET_BUFFER: libc::c_int = 8 << 20;

/// An AF_PACKET socket that sees every frame arriving on one interface and
/// sends whole frames out of it.
pub struct PacketSocket {
    fd: OwnedFd,
    name: String,
}

/// What one non-blocking receive found.
pub enum Received {
    /// A frame of this many bytes is in the buffer.
    Frame(usize),
    /// Nothing is waiting.
    Empty,
}

impl PacketSocket {
    /// Opens a socket on the interface `name` (in this network namespace).
    pub fn open(name: &str) -> io::Result<Self> {
        let cname = CString::new(name).map_err(|_| invalid("interface name has a NUL byte"))?;
        // SAFETY: a plain C string lookup; 0 means "no such interface".
        let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if index == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface {name}"),
            ));
        }
        // Protocol 0 receives nothing until bind names the interface, so no
        // frame of another interface slips in between the two calls.
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = PacketSocket {
            fd,
            name: name.to_string(),
        };
        // Best effort: older kernels lack it, and recv filters anyway.
        let _ = sock.set_int(libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
        // FORCE lifts the rmem_max cap (we run as root); plain as fallback.
        if sock
            .set_int(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, SOCKET_BUFFER)
            .is_err()
        {
            sock.set_int(libc::SOL_SOCKET, libc::SO_RCVBUF, SOCKET_BUFFER)?;
        }
        if sock
            .set_int(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, SOCKET_BUFFER)
            .is_err()
        {
            sock.set_int(libc::SOL_SOCKET, libc::SO_SNDBUF, SOCKET_BUFFER)?;
        }
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = index as i32;
        // SAFETY: `addr` is a valid sockaddr_ll and the length matches it.
        let rc = unsafe {
            libc::bind(
                sock.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sock)
    }

    /// The interface name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes one waiting frame into `buf` without blocking. Frames this
    /// host sent out of the interface (our own forwards) are skipped.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        loop {
            // SAFETY: as in `open`; zero is a valid sockaddr_ll.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: `buf` and `from` are valid for the lengths passed.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                return match err.kind() {
                    io::ErrorKind::WouldBlock => Ok(Received::Empty),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(err),
                };
            }
            if from.sll_pkttype == PACKET_OUTGOING {
                continue;
            }
            return Ok(Received::Frame(n as usize));
        }
    }

    /// Waits until a frame is waiting or `timeout` passes (None: forever).
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<()> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs() as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: one valid pollfd; `ts_ptr` is null or points at `ts`.
        let rc = unsafe { libc::ppoll(&mut pfd, 1, ts_ptr, std::ptr::null()) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
            return Err(io::Error::other(format!("{}: socket error", self.name)));
        }
        Ok(())
    }

    /// Sends one whole frame out of the interface. A full queue below us
    /// (a rate limit's qdisc) drops the frame, as a router would; that is
    /// reported as `Ok(false)`.
    pub fn send(&self, frame: &[u8]) -> io::Result<bool> {
        loop {
            // SAFETY: `frame` is valid for its length; the socket is bound,
            // so no destination address is needed.
            let n =
                unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            if n >= 0 {
                return Ok(true);
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ENOBUFS) | Some(libc::EAGAIN) => return Ok(false),
                // A frame the interface cannot take (too big): drop it.
                Some(libc::EMSGSIZE) => return Ok(false),
                _ => return Err(err),
            }
        }
    }

    fn set_int(&self, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
        // SAFETY: `value` is a c_int and the length says so.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}
