//! The wait protocol: spin briefly, then sleep on a shared futex, with no system call and no
//! hardware fence on the notifier's path while nobody sleeps.
//!
//! A [`Doorbell`] is an eventcount in shared memory: a futex word `seq` bumped by every wake, and
//! a count of announced sleepers. The two sides run a Dekker handshake:
//!
//! ```text
//! notifier (after publishing)         sleeper (condition false)
//!   publish (Release)                   waiters += 1; s = seq
//!   LIGHT fence                         HEAVY fence
//!   if waiters > 0:                     re-check the condition; if true: waiters -= 1, done
//!       seq += 1; FUTEX_WAKE            FUTEX_WAIT(seq, s)   (returns at once if seq != s)
//! ```
//!
//! Store-load ordering is needed on both sides, or each can miss the other's write and the
//! sleeper sleeps through a publish. With symmetric fences both are SeqCst fences; but a fence per
//! publish costs about 5x in streaming throughput on this machine kind. So by default the fences
//! are asymmetric: the sleeper, already on its slow path, calls `membarrier(GLOBAL_EXPEDITED)`,
//! which runs a full barrier on every running thread of every registered process, and the
//! notifier needs only a compiler fence. A process that cannot register makes its rings use
//! symmetric fences (a flag in the header).

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::layout::FLAG_SYMMETRIC_FENCES;
#[cfg(not(loom))]
use crate::sync::compiler_fence;
use crate::sync::{fence, spin_hint, AtomicU32, Ordering};

/// How the two halves of the wait handshake are fenced (fixed per ring at creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fences {
    /// Compiler fence on publish, `membarrier` before sleeping.
    Asymmetric,
    /// SeqCst fences on both sides.
    Symmetric,
}

impl Fences {
    /// The notifier's half: orders its publish before its read of the waiter count.
    #[inline(always)]
    pub(crate) fn light(self) {
        match self {
            // Between threads a compiler fence orders nothing by itself; its partner is the
            // sleeper's membarrier, which loom cannot model. So loom sees no fence here: the data
            // protocol must stand on its own Release/Acquire pairs, and the wait-protocol models
            // run with symmetric fences, which is what membarrier makes this pair equivalent to.
            Fences::Asymmetric => {
                #[cfg(not(loom))]
                compiler_fence(Ordering::SeqCst);
            }
            Fences::Symmetric => fence(Ordering::SeqCst),
        }
    }

    /// The sleeper's half: orders its announcement before its re-check, and (asymmetric) forces
    /// the notifier's pending publish to be visible, or its next read of the count to see us.
    pub(crate) fn heavy(self) {
        fence(Ordering::SeqCst);
        #[cfg(not(loom))]
        if self == Fences::Asymmetric && !crate::os::membarrier::global_barrier() {
            // Registration succeeded at attach, so the kernel cannot refuse now; if it ever does,
            // we must not sleep unboundedly on a handshake that has lost its guarantee.
            DEGRADED.store(1, Ordering::Relaxed);
        }
    }
}

impl Fences {
    /// The header flags of a new ring: symmetric fences if asked for, or if this process cannot
    /// register for `membarrier`.
    pub(crate) fn creation_flags(symmetric: bool) -> u32 {
        #[cfg(not(loom))]
        let symmetric = symmetric || !crate::os::membarrier::register();
        if symmetric {
            FLAG_SYMMETRIC_FENCES
        } else {
            0
        }
    }

    /// The fences a ring's header flags call for. Asymmetric fences need this process
    /// registered for `membarrier`, or its sleeps would not be safe.
    ///
    /// # Errors
    /// [`Error::Unsupported`] if the ring is asymmetric and this process cannot register.
    pub(crate) fn for_ring(flags: u32) -> Result<Fences> {
        if flags & FLAG_SYMMETRIC_FENCES != 0 {
            return Ok(Fences::Symmetric);
        }
        #[cfg(not(loom))]
        if !crate::os::membarrier::register() {
            return Err(Error::Unsupported(
                "the ring uses membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which this \
                 process cannot register for",
            ));
        }
        Ok(Fences::Asymmetric)
    }
}

/// The deadline `timeout` from now; None (wait forever) if it is beyond what `Instant` holds.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// How long a blocking call may wait. It becomes a deadline only in [`block_on`], once a first
/// attempt has failed, so a `_timeout` call that finds the ring ready reads no clock.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limit {
    /// Wait until done (or the peer is gone).
    Forever,
    /// Give up this long after the call.
    After(Duration),
}

impl Limit {
    fn deadline(self) -> Option<Instant> {
        match self {
            Limit::Forever => None,
            Limit::After(timeout) => deadline_after(timeout),
        }
    }
}

/// Set if a membarrier ever failed after registration: sleeps are then capped at 1 ms.
#[cfg(not(loom))]
static DEGRADED: AtomicU32 = AtomicU32::new(0);

/// An eventcount in shared memory (see the module documentation).
#[repr(C)]
pub(crate) struct Doorbell {
    seq: AtomicU32,
    waiters: AtomicU32,
    /// Under loom, a model of the futex that can only wake a thread that is really waiting.
    #[cfg(loom)]
    model: (loom::sync::Mutex<()>, loom::sync::Condvar),
}

impl Doorbell {
    pub(crate) fn new() -> Doorbell {
        Doorbell {
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            #[cfg(loom)]
            model: (loom::sync::Mutex::new(()), loom::sync::Condvar::new()),
        }
    }

    /// Notifier side: call after publishing. No syscall unless a sleeper is announced.
    #[inline]
    pub(crate) fn ring(&self, fences: Fences) {
        fences.light();
        // Relaxed: the fence pair (light here, heavy in `announce`) orders this load after the
        // caller's publish; no data is read through the count.
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.wake_all();
        }
    }

    #[cold]
    fn wake_all(&self) {
        // Release: a sleeper that reads the new seq (and so does not sleep) sees the publish.
        self.seq.fetch_add(1, Ordering::Release);
        #[cfg(not(loom))]
        crate::os::futex::wake(&self.seq, i32::MAX);
        #[cfg(loom)]
        {
            let _guard = self.model.0.lock().unwrap();
            self.model.1.notify_all();
        }
    }

    /// Sleeper side, step 1: announce, then fence. Returns the futex value to sleep on; the
    /// caller must re-check its condition, then either [`cancel`](Self::cancel) or
    /// [`sleep`](Self::sleep) and `cancel`.
    fn announce(&self, fences: Fences) -> u32 {
        // Relaxed: the heavy fence after it orders the announcement before our re-check.
        self.waiters.fetch_add(1, Ordering::Relaxed);
        // Acquire: pairs with `wake_all`'s Release; a seq that moved on means its publish is
        // visible to the re-check.
        let seq = self.seq.load(Ordering::Acquire);
        fences.heavy();
        seq
    }

    fn cancel(&self) {
        // Relaxed: a stale count only costs the notifier a spurious wake.
        self.waiters.fetch_sub(1, Ordering::Relaxed);
    }

    /// Overwrites both words with garbage, as a hostile peer could (for the fuzz bodies).
    #[cfg(not(loom))]
    pub(crate) fn scribble(&self, value: u64) {
        // Relaxed: garbage orders nothing; the point is that any value may be seen.
        self.seq.store(value as u32, Ordering::Relaxed);
        self.waiters.store((value >> 32) as u32, Ordering::Relaxed);
    }

    /// Forgets sleepers of a previous holder of the role (who may have died asleep).
    pub(crate) fn reset_waiters(&self) {
        // Relaxed: as in `cancel`.
        self.waiters.store(0, Ordering::Relaxed);
    }

    #[cfg(not(loom))]
    fn sleep(&self, seq: u32, timeout: Duration) {
        let timeout = if DEGRADED.load(Ordering::Relaxed) != 0 {
            timeout.min(Duration::from_millis(1))
        } else {
            timeout
        };
        crate::os::futex::wait(&self.seq, seq, Some(timeout));
    }

    /// The model ignores the timeout: a sleep ends only by a wake, so a lost one deadlocks.
    #[cfg(loom)]
    fn sleep(&self, seq: u32, _timeout: Duration) {
        let guard = self.model.0.lock().unwrap();
        if self.seq.load(Ordering::SeqCst) == seq {
            drop(self.model.1.wait(guard).unwrap());
        }
    }
}

/// How often an endpoint had to wait: counted on the slow path only.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WaitStats {
    /// Blocking calls that found the ring not ready and had to wait.
    pub waits: u64,
    /// Times the endpoint went to sleep on the futex (after spinning in vain).
    pub sleeps: u64,
}

/// How an endpoint waits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaitPolicy {
    /// How long to spin before sleeping.
    #[cfg_attr(loom, allow(dead_code))]
    pub spin: std::time::Duration,
    /// How often a sleeper wakes to check that its peer is alive.
    pub liveness_interval: std::time::Duration,
}

/// Waits until `attempt` yields a value or an error. Callers make their first attempt inline
/// (a ready ring costs no call) and come here only once it has failed.
///
/// `attempt` is polled while spinning and after each wake-up; `peer_gone` is asked before each
/// sleep and returns the error to fail with if the peer is gone. Then `attempt` gets one last
/// chance (what was published before the peer left is still delivered), then the wait fails
/// with that error. `peer_gone(false)` must be cheap (a clean detach: one atomic load);
/// `peer_gone(true)` may also check the peer's process (a system call), and is asked once per
/// liveness interval, so that a sleep costs no more system calls than it must while a dead peer
/// is still noticed within the interval. `limit` becomes a deadline here, after the first
/// attempt.
///
/// Under loom, which does not model time, there is no spinning, every check is thorough and a
/// sleep lasts until a wake.
pub(crate) fn block_on<T>(
    bell: &Doorbell,
    fences: Fences,
    policy: &WaitPolicy,
    limit: Limit,
    mut attempt: impl FnMut() -> Result<Option<T>>,
    mut peer_gone: impl FnMut(bool) -> Option<Error>,
    stats: &mut WaitStats,
) -> Result<T> {
    let deadline = limit.deadline();
    stats.waits += 1;
    #[cfg(not(loom))]
    if let Some(v) = spin(policy, deadline, &mut attempt)? {
        return Ok(v);
    }
    let mut last_thorough = Instant::now();
    loop {
        let seq = bell.announce(fences);
        match attempt() {
            Ok(None) => {}
            Ok(Some(v)) => {
                bell.cancel();
                return Ok(v);
            }
            Err(e) => {
                bell.cancel();
                return Err(e);
            }
        }
        let now = Instant::now();
        let thorough = cfg!(loom) || now.duration_since(last_thorough) >= policy.liveness_interval;
        if thorough {
            last_thorough = now;
        }
        if let Some(gone) = peer_gone(thorough) {
            bell.cancel();
            return attempt()?.ok_or(gone);
        }
        let slice = match deadline {
            Some(d) if d <= now => {
                bell.cancel();
                return Err(Error::Timeout);
            }
            Some(d) => (d - now).min(policy.liveness_interval),
            None => policy.liveness_interval,
        };
        stats.sleeps += 1;
        bell.sleep(seq, slice);
        bell.cancel();
        // Woken, timed out or spurious: look before announcing again, since a wake-up usually
        // means the data is there, and announcing costs a fence (and a membarrier).
        if let Some(v) = attempt()? {
            return Ok(v);
        }
    }
}

/// Spins on `attempt` for the policy's spin budget (bounded by the deadline).
#[cfg(not(loom))]
fn spin<T>(
    policy: &WaitPolicy,
    deadline: Option<Instant>,
    attempt: &mut impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    if policy.spin.is_zero() {
        return Ok(None);
    }
    let mut spin_end = Instant::now() + policy.spin;
    if let Some(d) = deadline {
        spin_end = spin_end.min(d);
    }
    loop {
        for _ in 0..32 {
            spin_hint();
            if let Some(v) = attempt()? {
                return Ok(Some(v));
            }
        }
        if Instant::now() >= spin_end {
            return Ok(None);
        }
    }
}
