//! Taking turns between a stream's two directions.
use std::io;
use std::task::Poll;

/// Which direction goes first, alternating on every poll: each poll spends
/// the task's budget, so a direction that always went first could starve
/// the other.
#[derive(Default)]
pub(crate) struct Turns {
    forward_first: bool,
}

impl Turns {
    /// Polls both directions once, in this poll's order (`true` is a to b).
    /// A direction answers `Ready(Ok)` once it has passed its EOF on, and
    /// again whenever polled after that. Ready when both have; the first
    /// error of either ends both.
    pub(crate) fn poll_both(
        &mut self,
        mut direction: impl FnMut(bool) -> Poll<io::Result<()>>,
    ) -> Poll<io::Result<()>> {
        self.forward_first = !self.forward_first;
        let mut finished = 0;
        for forward in [self.forward_first, !self.forward_first] {
            match direction(forward) {
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Ready(Ok(())) => finished += 1,
                Poll::Pending => {}
            }
        }
        if finished == 2 {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
}
