//! Copy buffers kept per thread between uses, shared by the copy engine
//! and the splice engine's fallback: a connection going from idle to busy
//! and back (every request/response) then takes a warm buffer instead of
//! allocating and zeroing a fresh one.
use std::cell::RefCell;

/// Size of a copy buffer: larger than tokio's 8 KiB default so bulk
/// transfers take fewer syscalls.
pub(crate) const BUFFER_SIZE: usize = 64 * 1024;

/// Spare buffers kept per thread; bounded, so idle connections cost none.
const SPARE_BUFFERS: usize = 8;

thread_local! {
    static SPARE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `size` bytes: a spare one if this thread has it.
pub(crate) fn take_buffer(size: usize) -> Box<[u8]> {
    SPARE
        .with(|spare| {
            let mut spare = spare.borrow_mut();
            let at = spare.iter().position(|b| b.len() == size)?;
            Some(spare.swap_remove(at))
        })
        .unwrap_or_else(|| vec![0u8; size].into_boxed_slice())
}

/// Keeps `buf` for reuse on this thread, or frees it.
pub(crate) fn give_buffer(buf: Box<[u8]>) {
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < SPARE_BUFFERS {
            spare.push(buf);
        }
    });
}
