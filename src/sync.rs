//! The one place that picks the atomics.
//!
//! Every atomic and every shared cell in ringport comes from here, so that `--cfg loom` swaps the
//! whole crate onto loom's model checker at once. Under loom the ring algorithms run over heap
//! memory: loom's atomics are handles into its runtime and cannot live in a mapping.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    compiler_fence, fence, AtomicU32, AtomicU64, AtomicU8, Ordering,
};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Under loom a compiler fence orders nothing that the model sees (its partner in the wait
/// protocol is a membarrier, which the OS model turns into a spurious wake-up): a no-op.
#[cfg(loom)]
pub(crate) fn compiler_fence(_: Ordering) {}

/// Under loom, a cell per 8 bytes of ring data through which payload accesses are registered
/// with loom's race detector (the bytes themselves are plain memory).
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell as TrackedCell;

/// A hint inside spin loops; under loom a yield, so that spinning explores other threads.
#[inline(always)]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// `n`, or none under loom: for a bounded spin that only saves time, where each spin the model
/// explored would multiply its interleavings and check nothing new.
pub(crate) const fn spins_unless_modelled(n: u32) -> u32 {
    if cfg!(loom) {
        0
    } else {
        n
    }
}
