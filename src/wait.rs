//! The wait protocol: spin briefly, then sleep on a shared futex, with no system call and no
//! hardware fence on the notifier's path while nobody sleeps.
//!
//! A [`Doorbell`] is an eventcount in shared memory: a futex word `seq` bumped by every wake, and
//! a count of announced sleepers. The two sides run a Dekker handshake:
//!
//! ```text
//! notifier (after publishing)         sleeper (condition false)
//!   publish (Release)                   waiters += 1; s = seq
//!   fence (light or full)               SeqCst fence (+ membarrier if the notifier is light)
//!   if waiters > 0:                     re-check the condition; if true: waiters -= 1, done
//!       seq += 1; FUTEX_WAKE            FUTEX_WAIT(seq, s)   (returns at once if seq != s)
//! ```
//!
//! Store-load ordering is needed on both sides, or each can miss the other's write and the
//! sleeper sleeps through a publish. A SeqCst fence on every publish costs about 5x in streaming
//! throughput on this machine kind; `membarrier(GLOBAL_EXPEDITED)` before every sleep (a full
//! barrier forced on every running thread of every registered process, so that the notifier
//! needs only a compiler fence) costs a few microseconds of inter-processor interrupts, which
//! doubles a blocking round trip. So the notifier of an SPSC bell adapts ([`Notifier`]): it
//! publishes without a fence while its peer stays awake, and fences every publish from the
//! moment it has to wake its peer until it has published [`QUIET_PUBLISHES`] times in a row
//! without finding a sleeper. The bell's `unfenced` word tells the sleeper which half it must
//! supply:
//!
//! ```text
//! stop fencing:   unfenced = 1; SeqCst fence; then publish with a compiler fence only
//! start fencing:  (on a wake) unfenced = 0 (Release); then a SeqCst fence after every publish
//! sleeper:        waiters += 1; SeqCst fence; if unfenced (Acquire) != 0: membarrier
//! ```
//!
//! A sleeper that reads 0 skips the membarrier safely: either it read the Release of a start,
//! which makes every publish before it visible to the re-check and fences every publish after
//! it; or it read a stale 0 from before a stop, and then its fence precedes the stop's fence in
//! the SeqCst order, so every unfenced read of the waiter count after the stop sees its
//! announcement. An MPMC bell has many notifiers and keeps the fixed form (no fence on publish,
//! `unfenced` stays 1, every sleeper calls membarrier). A process that cannot register for
//! membarrier makes its rings use symmetric fences (a flag in the header): every publish fenced,
//! no membarrier.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::layout::FLAG_SYMMETRIC_FENCES;
#[cfg(not(loom))]
use crate::sync::compiler_fence;
use crate::sync::{fence, spin_hint, AtomicU32, Ordering};

/// How the two halves of the wait handshake are fenced (fixed per ring at creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fences {
    /// Notifiers fence only while their peer sleeps often; sleepers supply the other half with
    /// `membarrier` when the bell's notifier publishes without a fence.
    Asymmetric,
    /// SeqCst fences on both sides.
    Symmetric,
}

/// Publishes in a row that find no sleeper before an adaptive notifier stops fencing. A fence
/// costs the notifier some ten nanoseconds a publish, the membarrier it spares a sleeper some
/// microseconds, and every wake costs a system call anyway: so the notifier fences for a while
/// after each wake. (Under loom, one, so that the models switch back and forth.)
#[cfg(not(loom))]
pub(crate) const QUIET_PUBLISHES: u32 = 64;
#[cfg(loom)]
pub(crate) const QUIET_PUBLISHES: u32 = 1;

/// The notifier's half of one doorbell's handshake, kept by the endpoint that rings the bell.
#[derive(Debug)]
pub(crate) struct Notifier {
    /// A SeqCst fence after every publish (else a compiler fence only).
    fencing: bool,
    /// Switches between the two forms: only the bell's sole notifier (SPSC, asymmetric) may,
    /// since clearing the bell's `unfenced` word speaks for every notifier of the bell.
    adaptive: bool,
    /// Fenced publishes in a row that found no sleeper.
    quiet: u32,
}

impl Notifier {
    /// A notifier that never switches: it fences every publish on a symmetric ring and none on
    /// an asymmetric one (whose sleepers then always call membarrier). For bells with many
    /// notifiers.
    pub(crate) fn fixed(fences: Fences) -> Notifier {
        Notifier {
            fencing: fences == Fences::Symmetric,
            adaptive: false,
            quiet: 0,
        }
    }

    /// The sole notifier of `bell`. On an asymmetric ring it starts without fences (and says so
    /// in the bell before its first publish) and adapts from there.
    pub(crate) fn sole(bell: &Doorbell, fences: Fences) -> Notifier {
        let mut notifier = Notifier::fixed(fences);
        if fences == Fences::Asymmetric {
            notifier.adaptive = true;
            // A previous holder of the role may have left the bell saying "fenced".
            bell.stop_fencing(&mut notifier);
        }
        notifier
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
    /// registered for `membarrier`, or its unfenced publishes would not be safe.
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
    /// Nonzero while a notifier may publish without a fence: a sleeper must then call
    /// membarrier. Only a sole, adaptive notifier clears it.
    unfenced: AtomicU32,
    /// Under loom, a model of the futex that can only wake a thread that is really waiting.
    #[cfg(loom)]
    model: (loom::sync::Mutex<()>, loom::sync::Condvar),
}

/// What a sleeper needs once it has announced itself.
#[derive(Debug, Clone, Copy)]
struct Announced {
    /// The futex value to sleep on.
    seq: u32,
    /// The announcement took a membarrier (which loom cannot model).
    barrier: bool,
}

impl Doorbell {
    pub(crate) fn new() -> Doorbell {
        Doorbell {
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            unfenced: AtomicU32::new(1),
            #[cfg(loom)]
            model: (loom::sync::Mutex::new(()), loom::sync::Condvar::new()),
        }
    }

    /// Notifier side: call after publishing. No syscall unless a sleeper is announced, and no
    /// hardware fence unless the notifier is fencing (see the module documentation). Only the
    /// unfenced, nobody-asleep path is inline: the streaming path, kept small so that the
    /// caller's publish stays inline too.
    #[inline]
    pub(crate) fn ring(&self, notifier: &mut Notifier) {
        if notifier.fencing {
            self.ring_fenced(notifier);
            return;
        }
        // Between threads a compiler fence orders nothing by itself; its partner is the
        // sleeper's membarrier, which loom cannot model: so loom sees no fence here, and a loom
        // sleeper never really sleeps on a membarrier (see `sleep`).
        #[cfg(not(loom))]
        compiler_fence(Ordering::SeqCst);
        // Relaxed: the fence pair (ours above, the sleeper's in `announce`) orders this load
        // after the caller's publish; no data is read through the count.
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.wake_and_start_fencing(notifier);
        }
    }

    /// `ring` for a notifier that fences. Out of line: the fence costs more than the call.
    #[inline(never)]
    fn ring_fenced(&self, notifier: &mut Notifier) {
        fence(Ordering::SeqCst);
        // Relaxed: as in `ring`.
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.wake_all();
            notifier.quiet = 0;
        } else if notifier.adaptive {
            notifier.quiet += 1;
            if notifier.quiet >= QUIET_PUBLISHES {
                self.stop_fencing(notifier);
            }
        }
    }

    /// The peer sleeps: wake it, and (adaptive) fence every publish from now on, so that its
    /// next sleep needs no membarrier.
    #[cold]
    fn wake_and_start_fencing(&self, notifier: &mut Notifier) {
        self.wake_all();
        if notifier.adaptive {
            notifier.fencing = true;
            notifier.quiet = 0;
            // Release: a sleeper that reads 0 (Acquire) skips its membarrier and so should see
            // every unfenced publish before this store; every publish after it is fenced. (It
            // spares a spurious wake-up rather than a lost one: those publishes precede the seq
            // bump in `wake_all`, so a sleeper that missed them would sleep on a stale seq and
            // return at once. The loom model cannot tell the two apart.)
            self.unfenced.store(0, Ordering::Release);
        }
    }

    /// The peer stays awake: publish without fences from now on. The fence here makes the
    /// switch safe (module documentation): a sleeper that still reads 0 afterwards fenced
    /// before we did, so our later, unfenced reads of the waiter count see its announcement.
    #[cold]
    fn stop_fencing(&self, notifier: &mut Notifier) {
        // Relaxed: the SeqCst fence after it does the ordering.
        self.unfenced.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        notifier.fencing = false;
        notifier.quiet = 0;
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

    /// Sleeper side, step 1: announce, then fence (and membarrier if the notifier publishes
    /// without fences). The caller must re-check its condition, then either
    /// [`cancel`](Self::cancel) or [`sleep`](Self::sleep) and `cancel`.
    fn announce(&self, fences: Fences) -> Announced {
        // Relaxed: the SeqCst fence after it orders the announcement before our re-check.
        self.waiters.fetch_add(1, Ordering::Relaxed);
        // Acquire: pairs with `wake_all`'s Release; a seq that moved on means its publish is
        // visible to the re-check.
        let seq = self.seq.load(Ordering::Acquire);
        fence(Ordering::SeqCst);
        // Acquire: pairs with `wake_and_start_fencing`'s Release. After our fence, so that a
        // stale 0 can only come from before a stop whose fence follows ours.
        let barrier = fences == Fences::Asymmetric && self.unfenced.load(Ordering::Acquire) != 0;
        #[cfg(not(loom))]
        if barrier && !crate::os::membarrier::global_barrier() {
            // Registration succeeded at attach, so the kernel cannot refuse now; if it ever
            // does, we must not sleep unboundedly on a handshake that has lost its guarantee.
            DEGRADED.store(1, Ordering::Relaxed);
        }
        Announced { seq, barrier }
    }

    fn cancel(&self) {
        // Relaxed: a stale count only costs the notifier a spurious wake.
        self.waiters.fetch_sub(1, Ordering::Relaxed);
    }

    #[cfg(feature = "testing")]
    /// Overwrites both words with garbage, as a hostile peer could (for the fuzz bodies).
    #[cfg(not(loom))]
    pub(crate) fn scribble(&self, value: u64) {
        // Relaxed: garbage orders nothing; the point is that any value may be seen.
        self.seq.store(value as u32, Ordering::Relaxed);
        self.waiters.store((value >> 32) as u32, Ordering::Relaxed);
        self.unfenced
            .store((value >> 31) as u32 & 1, Ordering::Relaxed);
    }

    /// Forgets sleepers of a previous holder of the role (who may have died asleep).
    pub(crate) fn reset_waiters(&self) {
        // Relaxed: as in `cancel`.
        self.waiters.store(0, Ordering::Relaxed);
    }

    #[cfg(not(loom))]
    fn sleep(&self, announced: Announced, timeout: Duration) {
        let timeout = if DEGRADED.load(Ordering::Relaxed) != 0 {
            timeout.min(Duration::from_millis(1))
        } else {
            timeout
        };
        crate::os::futex::wait(&self.seq, announced.seq, Some(timeout));
    }

    /// The model ignores the timeout: a sleep ends only by a wake, so a lost one deadlocks. A
    /// sleep that rests on a membarrier (which loom cannot model) is a spurious wake-up instead:
    /// the models check the fenced handshake and the switches between the two forms.
    #[cfg(loom)]
    fn sleep(&self, announced: Announced, _timeout: Duration) {
        if announced.barrier {
            loom::thread::yield_now();
            return;
        }
        let guard = self.model.0.lock().unwrap();
        if self.seq.load(Ordering::SeqCst) == announced.seq {
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
    /// Times the way to sleep took a `membarrier` (a few microseconds), because the peer was
    /// publishing without fences. A peer that finds this endpoint asleep fences its publishes for
    /// a while, so in a steady blocking exchange this stays near zero.
    pub barriers: u64,
    /// Waits of an SPSC consumer that followed the draining of a stream, and so began with a
    /// pause, cut short by the call's deadline if need be (see
    /// [`SpscOptions::stream_pause`](crate::SpscOptions::stream_pause)).
    pub stream_pauses: u64,
}

/// How an endpoint waits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaitPolicy {
    /// How long to spin before sleeping.
    #[cfg_attr(loom, allow(dead_code))]
    pub spin: std::time::Duration,
    /// How often a sleeper wakes to check that its peer is alive.
    pub liveness_interval: std::time::Duration,
    /// How long this wait waits before its first look, without looking: part of the spin, so
    /// bounded by it and by the deadline. Zero in every endpoint's policy; an SPSC consumer that
    /// has just drained a stream waits with a copy that sets it (see `SpscOptions::stream_pause`).
    #[cfg_attr(loom, allow(dead_code))]
    pub pause: std::time::Duration,
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
        let announced = bell.announce(fences);
        stats.barriers += u64::from(announced.barrier);
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
        bell.sleep(announced, slice);
        bell.cancel();
        // Woken, timed out or spurious: look before announcing again, since a wake-up usually
        // means the data is there, and announcing costs a fence (and a membarrier).
        if let Some(v) = attempt()? {
            return Ok(v);
        }
    }
}

/// Spins on `attempt` for the policy's spin budget (bounded by the deadline), after the
/// policy's pause.
#[cfg(not(loom))]
fn spin<T>(
    policy: &WaitPolicy,
    deadline: Option<Instant>,
    attempt: &mut impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    if policy.spin.is_zero() {
        return Ok(None);
    }
    let start = Instant::now();
    let mut spin_end = start + policy.spin;
    if let Some(d) = deadline {
        spin_end = spin_end.min(d);
    }
    if !policy.pause.is_zero() {
        // Not looking is the point: a look at the ring takes a line the peer is writing.
        let pause_end = (start + policy.pause).min(spin_end);
        while Instant::now() < pause_end {
            spin_hint();
        }
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A sleeper announces itself on `bell` and leaves at once; true if that took a membarrier.
    fn sleeper_needs_barrier(bell: &Doorbell) -> bool {
        let announced = bell.announce(Fences::Asymmetric);
        bell.cancel();
        announced.barrier
    }

    #[test]
    fn sole_notifier_fences_from_a_wake_until_it_has_been_quiet() {
        assert!(crate::os::membarrier::register());
        let bell = Doorbell::new();
        let mut notifier = Notifier::sole(&bell, Fences::Asymmetric);
        assert!(sleeper_needs_barrier(&bell), "starts without fences");
        // A publish that finds a sleeper switches the notifier to fencing.
        bell.announce(Fences::Asymmetric);
        bell.ring(&mut notifier);
        bell.cancel();
        assert!(notifier.fencing);
        assert!(!sleeper_needs_barrier(&bell));
        for _ in 1..QUIET_PUBLISHES {
            bell.ring(&mut notifier);
        }
        assert!(
            !sleeper_needs_barrier(&bell),
            "still fencing one publish short of the limit"
        );
        bell.ring(&mut notifier);
        assert!(!notifier.fencing);
        assert!(
            sleeper_needs_barrier(&bell),
            "stopped after QUIET_PUBLISHES quiet publishes"
        );
    }

    #[test]
    fn a_new_sole_notifier_starts_unfenced_whatever_the_last_one_left() {
        assert!(crate::os::membarrier::register());
        let bell = Doorbell::new();
        let mut first = Notifier::sole(&bell, Fences::Asymmetric);
        bell.announce(Fences::Asymmetric);
        bell.ring(&mut first);
        bell.cancel();
        assert!(!sleeper_needs_barrier(&bell));
        let second = Notifier::sole(&bell, Fences::Asymmetric);
        assert!(!second.fencing);
        assert!(sleeper_needs_barrier(&bell));
    }

    #[test]
    fn fixed_notifiers_never_switch() {
        let bell = Doorbell::new();
        let mut many = Notifier::fixed(Fences::Asymmetric);
        bell.announce(Fences::Asymmetric);
        bell.ring(&mut many);
        bell.cancel();
        assert!(
            !many.fencing,
            "a notifier of a shared bell must not claim to fence for all"
        );
        assert!(sleeper_needs_barrier(&bell));
        let mut symmetric = Notifier::sole(&bell, Fences::Symmetric);
        for _ in 0..=QUIET_PUBLISHES {
            bell.ring(&mut symmetric);
        }
        assert!(symmetric.fencing);
        // Symmetric sleepers never take a membarrier, whatever the bell says.
        assert!(!bell.announce(Fences::Symmetric).barrier);
        bell.cancel();
    }
}
