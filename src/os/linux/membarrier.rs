//! `membarrier(2)`: the heavy half of an asymmetric fence.
//!
//! The wait protocol needs store-load ordering on both sides (publish, then read the sleeper
//! count; announce a sleeper, then re-check). With `MEMBARRIER_CMD_GLOBAL_EXPEDITED` the rare
//! side (a thread about to sleep) forces a full barrier on every running thread of the registered
//! processes, and the frequent side (every publish) needs only a compiler fence (docs/DESIGN.md,
//! "Waiting").

use std::sync::OnceLock;
use std::time::Duration;

use crate::sync::{AtomicU32, Ordering};

const CMD_QUERY: libc::c_int = 0;
const CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
const CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

static REGISTERED: OnceLock<bool> = OnceLock::new();

/// Set if a membarrier ever failed after registration: futex sleeps are then capped at 1 ms.
static DEGRADED: AtomicU32 = AtomicU32::new(0);

fn membarrier(cmd: libc::c_int) -> libc::c_long {
    // SAFETY: membarrier takes no pointers; any command value is safe to pass.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0u32, 0i32) }
}

/// Registers this process for expedited global barriers; true when that worked (once per process).
pub(super) fn register() -> bool {
    *REGISTERED.get_or_init(|| {
        let supported = membarrier(CMD_QUERY);
        let wanted = libc::c_long::from(CMD_GLOBAL_EXPEDITED | CMD_REGISTER_GLOBAL_EXPEDITED);
        supported >= 0
            && supported & wanted == wanted
            && membarrier(CMD_REGISTER_GLOBAL_EXPEDITED) == 0
    })
}

/// A full memory barrier on every running thread of every registered process. Registration
/// succeeded before any ring could ask for this, so the kernel cannot refuse it; if it ever does,
/// the sleeps of this process are kept short from then on ([`cap_sleep`]), since a sleeper
/// could otherwise sleep through a publish.
pub(super) fn global_barrier() {
    if membarrier(CMD_GLOBAL_EXPEDITED) != 0 {
        // Relaxed: a flag that only shortens sleeps; no data is published through it.
        DEGRADED.store(1, Ordering::Relaxed);
    }
}

/// A futex sleep's timeout (None: until woken): as asked, or at most 1 ms once a barrier has
/// failed.
pub(super) fn cap_sleep(timeout: Option<Duration>) -> Option<Duration> {
    if DEGRADED.load(Ordering::Relaxed) != 0 {
        let cap = Duration::from_millis(1);
        Some(timeout.map_or(cap, |t| t.min(cap)))
    } else {
        timeout
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn registers_and_runs_a_global_barrier() {
        assert!(
            super::register(),
            "MEMBARRIER_CMD_GLOBAL_EXPEDITED unavailable"
        );
        super::global_barrier();
        assert_eq!(super::DEGRADED.load(super::Ordering::Relaxed), 0);
    }
}
