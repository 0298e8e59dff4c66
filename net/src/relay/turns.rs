//! Taking turns between a stream's two directions.

/// Which direction goes first, alternating on every poll: each poll spends
/// the task's budget, so a direction that always went first could starve
/// the other.
#[derive(Default)]
pub(crate) struct Turns {
    forward_first: bool,
}

impl Turns {
    /// The order for this poll: `true` is a to b.
    pub(crate) fn next(&mut self) -> [bool; 2] {
        self.forward_first = !self.forward_first;
        [self.forward_first, !self.forward_first]
    }
}
