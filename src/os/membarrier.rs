//! `membarrier(2)`: the heavy half of an asymmetric fence.
//!
//! The wait protocol needs store-load ordering on both sides (publish, then read the waiter count;
//! announce a waiter, then re-check). A SeqCst fence on every publish costs the producer about 5x
//! in streaming throughput on this machine kind. With `MEMBARRIER_CMD_GLOBAL_EXPEDITED` the rare
//! side (a thread about to sleep) forces a full barrier on every running thread of the registered
//! processes, and the frequent side (every publish) needs only a compiler fence.

use std::sync::OnceLock;

const CMD_QUERY: libc::c_int = 0;
const CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
const CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

static REGISTERED: OnceLock<bool> = OnceLock::new();

fn membarrier(cmd: libc::c_int) -> libc::c_long {
    // SAFETY: membarrier takes no pointers; any command value is safe to pass.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0u32, 0i32) }
}

/// Registers this process for expedited global barriers; true when that worked (once per process).
pub(crate) fn register() -> bool {
    *REGISTERED.get_or_init(|| {
        let supported = membarrier(CMD_QUERY);
        let wanted = libc::c_long::from(CMD_GLOBAL_EXPEDITED | CMD_REGISTER_GLOBAL_EXPEDITED);
        supported >= 0
            && supported & wanted == wanted
            && membarrier(CMD_REGISTER_GLOBAL_EXPEDITED) == 0
    })
}

/// A full memory barrier on every running thread of every registered process.
///
/// Returns false if the kernel refused, in which case the caller must not rely on it.
pub(crate) fn global_barrier() -> bool {
    membarrier(CMD_GLOBAL_EXPEDITED) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn registers_and_runs_a_global_barrier() {
        assert!(
            super::register(),
            "MEMBARRIER_CMD_GLOBAL_EXPEDITED unavailable"
        );
        assert!(super::global_barrier());
    }
}
