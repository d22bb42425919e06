//! Copying a frame out of ring memory into a caller's buffer: the copying receives of both rings.

/// Replaces the contents of `buf` with `frame`. A frame of 8 to 32 bytes is copied as two
/// overlapping words (8 or 16 bytes each) instead of through a call to `memcpy`: for small
/// frames that call and its size dispatch cost more than the rest of a receive (docs/PERFORMANCE.md,
/// "Copying small frames out").
#[inline(always)]
pub(crate) fn copy_frame(frame: &[u8], buf: &mut Vec<u8>) {
    /// Copies `len` bytes, `size_of::<W>() <= len <= 2 * size_of::<W>()`, as a first and a
    /// last word that overlap.
    ///
    /// # Safety
    /// `src` is readable and `dst` writable for `len` bytes, and `len` is in the range above.
    #[inline(always)]
    unsafe fn two_words<W: Copy>(src: *const u8, dst: *mut u8, len: usize) {
        let last = len - std::mem::size_of::<W>();
        // SAFETY: both words lie inside the `len` bytes the caller vouches for; unaligned
        // reads and writes of plain bytes.
        unsafe {
            let (first, tail) = (
                src.cast::<W>().read_unaligned(),
                src.add(last).cast::<W>().read_unaligned(),
            );
            dst.cast::<W>().write_unaligned(first);
            dst.add(last).cast::<W>().write_unaligned(tail);
        }
    }
    let len = frame.len();
    if !(8..=32).contains(&len) {
        buf.clear();
        buf.extend_from_slice(frame);
        return;
    }
    if buf.capacity() < len {
        buf.clear();
        buf.reserve(len);
    }
    // SAFETY: `buf` has room for `len` bytes (checked, or reserved); `frame` has `len` bytes;
    // the copy initializes all of them before `set_len` exposes them (and drops nothing: u8).
    unsafe {
        if len <= 16 {
            two_words::<u64>(frame.as_ptr(), buf.as_mut_ptr(), len);
        } else {
            two_words::<u128>(frame.as_ptr(), buf.as_mut_ptr(), len);
        }
        buf.set_len(len);
    }
}
