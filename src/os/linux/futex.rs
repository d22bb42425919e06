//! Shared (inter-process) futex wait and wake.
//!
//! Never `FUTEX_PRIVATE_FLAG`: the kernel then keys the futex on the physical page, so two
//! processes that map the same segment at different addresses meet on the same futex.

use std::time::Duration;

use crate::sync::AtomicU32;

/// Sleeps while `*word == expected`, for at most `timeout` (None: until woken; see
/// `Kernel::futex_wait`).
pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned 32-bit atomic for the duration of the call; FUTEX_WAIT
    // only reads it. The timeout pointer is null or points to a live timespec on this stack.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes up to `count` threads (of any process) sleeping on `word`.
pub(super) fn wake(word: &AtomicU32, count: i32) {
    // SAFETY: FUTEX_WAKE does not touch the word's memory; it only uses its address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            count,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}
