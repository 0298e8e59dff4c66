//! Carrying bytes both ways between two connections once a stream has
//! started: [`bridge`] picks the engine, [`splice`] (Linux, two plain TCP
//! sockets: the kernel moves the bytes) or [`copy`] (anything else:
//! buffers that exist only while data moves). Both pass a half-close on and
//! take turns between the two directions.
use tokio::io::AsyncWriteExt;

use crate::handshake::Unframed;

pub mod copy;
mod pool;
mod relayable;
pub mod sealing;
#[cfg(target_os = "linux")]
pub mod splice;
mod tallied;
mod turns;

pub use relayable::Relayable;
pub use tallied::{Tallied, Tally};

/// Carries bytes both ways between `a` and `b` until both directions are
/// done, passing on a half-close (EOF one way shuts down writing the other
/// way), then closes both. Each side's leftover goes to the other side
/// first.
///
/// Nothing is lost unnoticed: both sockets close gracefully only when both
/// directions ended cleanly. On an error, and when this future is dropped
/// before the end (a stream cut, a shutdown), both are reset, and so are
/// they if the process dies meanwhile (see [`crate::socket::reset_on_close`]).
///
/// Two plain TCP sockets on Linux are relayed in the kernel with splice(2);
/// anything else is copied through user-space buffers.
///
/// Returns bytes carried a→b and b→a (leftovers included).
///
/// # Errors
/// Either socket failed; both have been reset.
pub async fn bridge<A, B>(a: Unframed<A>, b: Unframed<B>) -> std::io::Result<(u64, u64)>
where
    A: Relayable,
    B: Relayable,
{
    reset_on_close(&a.stream, &b.stream, true);
    bridge_armed(a, b).await
}

/// [`bridge`] for sockets already armed to reset on close (each when it
/// was accepted or connected), saving the system calls on the path of
/// every new stream.
///
/// # Errors
/// As [`bridge`].
pub async fn bridge_armed<A, B>(a: Unframed<A>, b: Unframed<B>) -> std::io::Result<(u64, u64)>
where
    A: Relayable,
    B: Relayable,
{
    let (mut a, a_left) = (a.stream, a.leftover);
    let (mut b, b_left) = (b.stream, b.leftover);
    let carried = async {
        if !a_left.is_empty() {
            b.write_all(&a_left).await?;
        }
        if !b_left.is_empty() {
            a.write_all(&b_left).await?;
        }
        copy_both(&mut a, &mut b).await
    }
    .await;
    let (ab, ba) = carried?;
    reset_on_close(&a, &b, false);
    Ok((ab + a_left.len() as u64, ba + b_left.len() as u64))
}

fn reset_on_close(a: &impl Relayable, b: &impl Relayable, on: bool) {
    for socket in [a.socket(), b.socket()].into_iter().flatten() {
        crate::socket::reset_on_close(socket, on);
    }
}

/// The kernel path when both sides allow it, else the portable copy.
async fn copy_both<A: Relayable, B: Relayable>(
    a: &mut A,
    b: &mut B,
) -> std::io::Result<(u64, u64)> {
    #[cfg(target_os = "linux")]
    if let Some(relay) = splice::copy_both(&*a, &*b) {
        return relay.await;
    }
    copy::copy_both(a, b, pool::BUFFER_SIZE).await
}

#[cfg(test)]
mod tests;
