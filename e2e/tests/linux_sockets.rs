//! What Linux does with resets, pinned down for the stream-end work (see
//! `stream_end.rs`): how a reader learns of an RST, what `splice(2)`
//! returns on a reset socket, and why a killed process's connections look
//! like clean ends. Plain sockets on 127.0.0.1, no route or vnet.
#![cfg(target_os = "linux")]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use e2e::stream::reset;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::pipe::{pipe, splice, SpliceFlags};

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    (a, b)
}

/// Waits (bounded) until `poll` reports any of `want` on `socket`.
fn wait_for(socket: &TcpStream, want: PollFlags) -> PollFlags {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut fds = [PollFd::new(socket, PollFlags::IN | PollFlags::RDHUP)];
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        poll(&mut fds, Some(&tick)).unwrap();
        let got = fds[0].revents();
        if got.intersects(want) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "poll never reported {want:?}, last {got:?}"
        );
    }
}

/// Until the RST has arrived at `socket`.
fn wait_reset(socket: &TcpStream) {
    wait_for(socket, PollFlags::ERR | PollFlags::HUP);
}

fn kind(result: std::io::Result<usize>) -> Result<usize, ErrorKind> {
    result.map_err(|err| err.kind())
}

/// A peer's RST does not make already-received data unreadable: `read`
/// returns it, then reports `ConnectionReset` exactly once, and from then
/// on returns 0 as if the stream had ended cleanly. A relay must act on
/// the first error; a second read cannot tell a reset from a FIN.
#[test]
fn a_reset_is_reported_once_after_the_data_then_reads_look_like_eof() {
    let (a, mut b) = pair();
    (&a).write_all(&[7; 1000]).unwrap();
    reset(a);
    wait_reset(&b);
    let mut buf = [0; 4096];
    assert_eq!(kind(b.read(&mut buf)), Ok(1000));
    assert_eq!(kind(b.read(&mut buf)), Err(ErrorKind::ConnectionReset));
    assert_eq!(kind(b.read(&mut buf)), Ok(0));
}

/// `splice(2)` from a reset socket behaves like `read`: the queued bytes,
/// then `ECONNRESET` once, then 0.
#[test]
fn splice_reports_a_reset_like_read() {
    let (a, b) = pair();
    (&a).write_all(&[7; 1000]).unwrap();
    reset(a);
    wait_reset(&b);
    let (_pipe_r, pipe_w) = pipe().unwrap();
    let step = || {
        splice(
            b.as_fd(),
            None,
            pipe_w.as_fd(),
            None,
            65536,
            SpliceFlags::NONBLOCK,
        )
        .map_err(|err| std::io::Error::from(err).kind())
    };
    assert_eq!(step(), Ok(1000));
    assert_eq!(step(), Err(ErrorKind::ConnectionReset));
    assert_eq!(step(), Ok(0));
}

/// An RST that follows a FIN never reaches the reader: it reads the data
/// and then 0, over and over. So a relay that wants the far end to see a
/// reset must not half-close that socket first.
#[test]
fn a_reset_after_a_fin_is_not_seen_by_the_reader() {
    let (a, mut b) = pair();
    (&a).write_all(&[7; 1000]).unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    wait_for(&b, PollFlags::RDHUP);
    reset(a);
    wait_reset(&b);
    let mut buf = [0; 4096];
    assert_eq!(kind(b.read(&mut buf)), Ok(1000));
    assert_eq!(kind(b.read(&mut buf)), Ok(0));
    assert_eq!(kind(b.read(&mut buf)), Ok(0));
}

/// Closing a socket (or dying) with received data still unread sends RST:
/// the peer's next read fails. This is how a killed process's connection
/// can end in a reset.
#[test]
fn closing_with_unread_data_resets_the_peer() {
    let (mut a, b) = pair();
    a.write_all(&[1; 10]).unwrap();
    wait_for(&b, PollFlags::IN);
    drop(b);
    wait_reset(&a);
    let mut buf = [0; 64];
    assert_eq!(kind(a.read(&mut buf)), Err(ErrorKind::ConnectionReset));
}

/// Closing a socket (or dying: the kernel closes a killed process's
/// sockets the same way) with nothing unread sends a plain FIN: the peer
/// reads a clean EOF. Nothing on the wire tells it from an orderly end,
/// which is why a SIGKILLed vnet looks like a clean end to the next hop.
#[test]
fn closing_with_nothing_unread_is_a_clean_fin() {
    let (mut a, b) = pair();
    drop(b);
    wait_for(&a, PollFlags::RDHUP);
    let mut buf = [0; 64];
    assert_eq!(kind(a.read(&mut buf)), Ok(0));
}

/// Writing to a peer that has closed succeeds once (the bytes go out and
/// draw an RST), then fails with `BrokenPipe` (EPIPE): a writer learns of
/// the end only on its second write after it.
#[test]
fn writing_to_a_closed_peer_succeeds_once_then_fails() {
    let (mut a, b) = pair();
    drop(b);
    wait_for(&a, PollFlags::RDHUP);
    assert_eq!(kind(a.write(&[1; 10])), Ok(10));
    wait_reset(&a);
    assert_eq!(kind(a.write(&[1; 10])), Err(ErrorKind::BrokenPipe));
}

/// A reset (SO_LINGER 0) drops whatever the sender still had queued; the
/// receiver gets what had already reached it, then the error.
#[test]
fn a_reset_drops_the_senders_queue_but_not_the_receivers() {
    let (a, mut b) = pair();
    a.set_nonblocking(true).unwrap();
    let block = vec![9u8; 1 << 20];
    let mut sent = 0;
    while let Ok(n) = (&a).write(&block) {
        sent += n;
    }
    reset(a);
    wait_reset(&b);
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 20];
    let end = loop {
        match b.read(&mut buf) {
            Ok(0) => break Ok(0),
            Ok(n) => got += n,
            Err(err) => break Err(err.kind()),
        }
    };
    assert_eq!(end, Err(ErrorKind::ConnectionReset));
    assert!(got > 0 && got < sent, "got {got} of {sent}");
}
