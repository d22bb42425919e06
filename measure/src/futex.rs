//! The raw shared futex of the baselines: FUTEX_WAIT and FUTEX_WAKE on a word in a shared
//! mapping, without `FUTEX_PRIVATE_FLAG` (so two processes meet on it), and nothing else.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout` (None: no limit). Returns when woken,
/// when the word no longer holds `expected`, on a signal, on timeout or spuriously: the caller
/// re-checks its condition.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
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
pub fn wake(word: &AtomicU32, count: i32) {
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
