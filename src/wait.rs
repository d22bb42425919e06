//! The wait protocol: spin briefly, then sleep on a shared futex, with no system call and no
//! hardware fence on the notifier's path while nobody sleeps.
//!
//! A [`Doorbell`] is an eventcount in shared memory: a futex word `seq` bumped by every wake, and
//! a count of announced sleepers. The two sides run a Dekker handshake:
//!
//! ```text
//! notifier (after publishing)         sleeper (condition false)
//!   publish (Release)                   sleepers += 1; s = seq
//!   fence (light or full)               SeqCst fence (+ membarrier if the notifier is light)
//!   if sleepers > 0:                    re-check the condition; if true: sleepers -= 1, done
//!       seq += 1; FUTEX_WAKE            FUTEX_WAIT(seq, s)   (returns at once if seq != s)
//! ```
//!
//! Store-load ordering is needed on both sides, or each can miss the other's write and the
//! sleeper sleeps through a publish. A SeqCst fence on every publish costs a streaming producer
//! several times its throughput; `membarrier(GLOBAL_EXPEDITED)` before every sleep (a full
//! barrier forced on every running thread of every registered process, so that the notifier
//! needs only a compiler fence) costs microseconds of inter-processor interrupts, which doubles
//! a blocking round trip (docs/PERFORMANCE.md, "Fences"). So the notifier of an SPSC bell adapts
//! ([`Notifier`]): it publishes without a fence while its peer stays awake, and fences every
//! publish from the moment it has to wake its peer until it has published
//! [`Kernel::QUIET_PUBLISHES`] times in a row without finding a sleeper. The bell's `fenced`
//! word tells the sleeper which half it must supply:
//!
//! ```text
//! stop fencing:   fenced = 0; SeqCst fence; then publish with a compiler fence only
//! start fencing:  (on a wake) fenced = 1 (Release); then a SeqCst fence after every publish
//! sleeper:        sleepers += 1; SeqCst fence; if fenced (Acquire) == 0: membarrier
//! ```
//!
//! A sleeper that reads 1 skips the membarrier safely: either it read the Release of a start,
//! which makes every publish before it visible to the re-check and fences every publish after
//! it; or it read a stale 1 from before a stop, and then its fence precedes the stop's fence in
//! the SeqCst order, so every unfenced read of the sleeper count after the stop sees its
//! announcement. Zero, what a fresh segment holds, is the safe state: the sleeper takes the
//! membarrier. An MPMC bell has many notifiers and keeps the fixed form (no fence on publish,
//! `fenced` stays 0, every sleeper calls membarrier). A process that cannot register for
//! membarrier makes its rings use symmetric fences (a flag in the header): every publish fenced,
//! no membarrier.

use std::time::{Duration, Instant};

use crate::counters::Tally;
use crate::error::{Error, Result};
use crate::layout::{BellWords, SegmentHeader, DATA_BELL, SPACE_BELL};
use crate::os::Kernel;
use crate::sync::{compiler_fence, fence, spin_hint, Ordering};

/// Header flag: notifiers use full fences (the creator asked for them, or could not register
/// for `membarrier`).
pub(crate) const FLAG_SYMMETRIC_FENCES: u32 = 1;

/// How the two halves of the wait handshake are fenced (fixed per ring at creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fences {
    /// Notifiers fence only while their peer sleeps often; sleepers supply the other half with
    /// `membarrier` when the bell's notifier publishes without a fence.
    Asymmetric,
    /// SeqCst fences on both sides.
    Symmetric,
}

impl Fences {
    /// The header flags of a new ring: symmetric fences if asked for, or if this process cannot
    /// use `membarrier`.
    pub(crate) fn creation_flags(symmetric: bool, kernel: impl Kernel) -> u32 {
        if symmetric || !kernel.barrier_available() {
            FLAG_SYMMETRIC_FENCES
        } else {
            0
        }
    }

    /// The fences a ring's header flags call for. Asymmetric fences need this process able to
    /// use `membarrier`, or its unfenced publishes would not be safe.
    ///
    /// # Errors
    /// [`Error::Unsupported`] if the ring is asymmetric and this process cannot use membarrier.
    pub(crate) fn for_ring(flags: u32, kernel: impl Kernel) -> Result<Fences> {
        if flags & FLAG_SYMMETRIC_FENCES != 0 {
            return Ok(Fences::Symmetric);
        }
        if !kernel.barrier_available() {
            return Err(Error::Unsupported(
                "the ring uses membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which this \
                 process cannot register for",
            ));
        }
        Ok(Fences::Asymmetric)
    }
}

/// The notifier's half of one doorbell's handshake, kept by the endpoint that rings the bell.
#[derive(Debug)]
pub(crate) struct Notifier<K: Kernel> {
    /// A SeqCst fence after every publish (else a compiler fence only).
    fencing: bool,
    /// Switches between the two forms: only the bell's sole notifier (SPSC, asymmetric) may,
    /// since setting the bell's `fenced` word speaks for every notifier of the bell.
    adaptive: bool,
    /// Fenced publishes in a row that found no sleeper.
    quiet: u32,
    kernel: K,
}

impl<K: Kernel> Notifier<K> {
    /// A notifier that never switches: it fences every publish on a symmetric ring and none on
    /// an asymmetric one (whose sleepers then always call membarrier). For bells with many
    /// notifiers.
    pub(crate) fn fixed(fences: Fences, kernel: K) -> Notifier<K> {
        Notifier {
            fencing: fences == Fences::Symmetric,
            adaptive: false,
            quiet: 0,
            kernel,
        }
    }

    /// The sole notifier of `bell`. On an asymmetric ring it starts without fences (and says so
    /// in the bell before its first publish) and adapts from there.
    pub(crate) fn sole(bell: Doorbell<'_>, fences: Fences, kernel: K) -> Notifier<K> {
        let mut notifier = Notifier::fixed(fences, kernel);
        if fences == Fences::Asymmetric {
            notifier.adaptive = true;
            // A previous holder of the role may have left the bell saying "fenced".
            bell.stop_fencing(&mut notifier);
        }
        notifier
    }
}

/// How long a blocking call may wait. It becomes a deadline only in [`Waiter::wait`], once a
/// first attempt has failed, so a `_timeout` call that finds the ring ready reads no clock.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limit {
    /// Wait until done (or the peer is gone).
    Forever,
    /// Give up this long after the call.
    After(Duration),
}

/// A doorbell: an eventcount over three words of a segment header (see the module
/// documentation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Doorbell<'a> {
    words: &'a BellWords,
}

/// What a sleeper needs once it has announced itself.
#[derive(Debug, Clone, Copy)]
struct Announced {
    /// The futex value to sleep on.
    seq: u32,
    /// The announcement took a membarrier.
    barrier: bool,
}

impl Doorbell<'_> {
    /// The bell that consumers sleep on: the producing side rings it after a commit.
    #[inline(always)]
    pub(crate) fn data(header: &SegmentHeader) -> Doorbell<'_> {
        Doorbell {
            words: &header.bells[DATA_BELL],
        }
    }

    /// The bell that producers sleep on: the consuming side rings it after a release.
    #[inline(always)]
    pub(crate) fn space(header: &SegmentHeader) -> Doorbell<'_> {
        Doorbell {
            words: &header.bells[SPACE_BELL],
        }
    }

    /// Notifier side: call after publishing. No syscall unless a sleeper is announced, and no
    /// hardware fence unless the notifier is fencing (see the module documentation). Only the
    /// unfenced, nobody-asleep path is inline: the streaming path, kept small so that the
    /// caller's publish stays inline too.
    #[inline(always)]
    pub(crate) fn ring<K: Kernel>(self, notifier: &mut Notifier<K>) {
        if notifier.fencing {
            self.ring_fenced(notifier);
            return;
        }
        // Between threads a compiler fence orders nothing by itself; its partner is the
        // sleeper's membarrier, which loom cannot model (its sleeps after one are spurious
        // wake-ups: see the OS model).
        compiler_fence(Ordering::SeqCst);
        // Relaxed: the fence pair (ours above, the sleeper's in `announce`) orders this load
        // after the caller's publish; no data is read through the count.
        if self.words.sleepers.load(Ordering::Relaxed) != 0 {
            self.wake_and_start_fencing(notifier);
        }
    }

    /// `ring` for a bell with many notifiers ([`Notifier::fixed`]: fencing as `fences` says,
    /// never switching), with no notifier state to keep: nothing of it is built on the
    /// streaming path.
    #[inline(always)]
    pub(crate) fn ring_fixed<K: Kernel>(self, fences: Fences, kernel: K) {
        if fences == Fences::Symmetric {
            self.ring_fenced(&mut Notifier::fixed(fences, kernel));
            return;
        }
        // As in `ring`: the compiler fence's partner is the sleeper's membarrier.
        compiler_fence(Ordering::SeqCst);
        // Relaxed: as in `ring`.
        if self.words.sleepers.load(Ordering::Relaxed) != 0 {
            self.wake_all(kernel);
        }
    }

    /// `ring` for a notifier that fences. Out of line: the fence costs more than the call.
    #[inline(never)]
    fn ring_fenced<K: Kernel>(self, notifier: &mut Notifier<K>) {
        fence(Ordering::SeqCst);
        // Relaxed: as in `ring`.
        if self.words.sleepers.load(Ordering::Relaxed) != 0 {
            self.wake_all(notifier.kernel);
            notifier.quiet = 0;
        } else if notifier.adaptive {
            notifier.quiet += 1;
            if notifier.quiet >= K::QUIET_PUBLISHES {
                self.stop_fencing(notifier);
            }
        }
    }

    /// The peer sleeps: wake it, and (adaptive) fence every publish from now on, so that its
    /// next sleep needs no membarrier.
    #[cold]
    #[inline(never)]
    fn wake_and_start_fencing<K: Kernel>(self, notifier: &mut Notifier<K>) {
        self.wake_all(notifier.kernel);
        if notifier.adaptive {
            notifier.fencing = true;
            notifier.quiet = 0;
            // Release: a sleeper that reads 1 (Acquire) skips its membarrier and so should see
            // every unfenced publish before this store; every publish after it is fenced. (It
            // spares a spurious wake-up rather than a lost one: those publishes precede the seq
            // bump in `wake_all`, so a sleeper that missed them would sleep on a stale seq and
            // return at once. The loom model cannot tell the two apart.)
            self.words.fenced.store(1, Ordering::Release);
        }
    }

    /// The peer stays awake: publish without fences from now on. The fence here makes the
    /// switch safe (module documentation): a sleeper that still reads 1 afterwards fenced
    /// before we did, so our later, unfenced reads of the sleeper count see its announcement.
    #[cold]
    #[inline(never)]
    fn stop_fencing<K: Kernel>(self, notifier: &mut Notifier<K>) {
        // Relaxed: the SeqCst fence after it does the ordering.
        self.words.fenced.store(0, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        notifier.fencing = false;
        notifier.quiet = 0;
    }

    #[cold]
    #[inline(never)]
    fn wake_all(self, kernel: impl Kernel) {
        // Release: a sleeper that reads the new seq (and so does not sleep) sees the publish.
        self.words.seq.fetch_add(1, Ordering::Release);
        kernel.futex_wake_all(&self.words.seq);
    }

    /// Sleeper side, step 1: announce, then fence (and membarrier if the notifier publishes
    /// without fences). The caller must re-check its condition, then either
    /// [`cancel`](Self::cancel) or [`sleep`](Self::sleep) and `cancel`.
    fn announce(self, fences: Fences, kernel: impl Kernel) -> Announced {
        // Relaxed: the SeqCst fence after it orders the announcement before our re-check.
        self.words.sleepers.fetch_add(1, Ordering::Relaxed);
        // Acquire: pairs with `wake_all`'s Release; a seq that moved on means its publish is
        // visible to the re-check.
        let seq = self.words.seq.load(Ordering::Acquire);
        fence(Ordering::SeqCst);
        // Acquire: pairs with `wake_and_start_fencing`'s Release. After our fence, so that a
        // stale 1 can only come from before a stop whose fence follows ours.
        let barrier =
            fences == Fences::Asymmetric && self.words.fenced.load(Ordering::Acquire) == 0;
        if barrier {
            kernel.global_barrier();
        }
        Announced { seq, barrier }
    }

    fn cancel(self) {
        // Relaxed: a stale count only costs the notifier a spurious wake.
        self.words.sleepers.fetch_sub(1, Ordering::Relaxed);
    }

    /// Sleeper side, step 2: sleep on the futex until woken, for at most `timeout` (None: no
    /// limit).
    fn sleep(self, announced: Announced, timeout: Option<Duration>, kernel: impl Kernel) {
        kernel.futex_wait(&self.words.seq, announced.seq, timeout, announced.barrier);
    }

    /// Forgets sleepers of a previous holder of the role (who may have died asleep).
    pub(crate) fn reset_sleepers(self) {
        // Relaxed: as in `cancel`.
        self.words.sleepers.store(0, Ordering::Relaxed);
    }

    /// Overwrites the bell's words with garbage, as a hostile peer could (for the fuzz bodies).
    #[cfg(feature = "testing")]
    pub(crate) fn scribble(self, value: u64) {
        // Relaxed: garbage orders nothing; the point is that any value may be seen.
        self.words.seq.store(value as u32, Ordering::Relaxed);
        self.words
            .sleepers
            .store((value >> 32) as u32, Ordering::Relaxed);
        self.words
            .fenced
            .store((value >> 31) as u32 & 1, Ordering::Relaxed);
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

/// How long a spin runs on glances alone before it sets up the peer's death notice: the default
/// spin, so that a wait that ends within it makes no system call.
const NOTICE_AFTER: Duration = Duration::from_micros(20);

/// How closely a waiter looks at its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Look {
    /// Between rounds of spinning: the role's word alone (one atomic load), nothing set up.
    Glance,
    /// Before a sleep: may also set up the holder's death notice, once per holder.
    Cheap,
    /// Once a liveness interval, for a peer no notice covers: also checks its process.
    Thorough,
}

/// What a waiter learns of its peer on its way to sleep.
#[derive(Debug)]
pub(crate) enum Peer {
    /// The peer has gone: the wait ends with this error, after one last look.
    Gone(Error),
    /// The peer is there (or has not come yet). `watched`: its departure will ring this bell
    /// (a death notice covers it), so the sleep needs no liveness checks and lasts until a
    /// wake or the deadline.
    Here { watched: bool },
}

/// How an endpoint waits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaitPolicy {
    /// How long to spin before sleeping.
    pub spin: Duration,
    /// How often a sleeper wakes to check that its peer is alive, when no death notice covers
    /// the peer.
    pub liveness_interval: Duration,
}

/// One blocking call's wait on one doorbell, once its first attempt has failed: spin, then
/// sleep, until `attempt` yields a value or an error, the peer is gone, or the limit passes.
/// Callers make their first attempt inline (a ready ring costs no call) and come here only once
/// it has failed.
pub(crate) struct Waiter<'a, K: Kernel> {
    bell: Doorbell<'a>,
    fences: Fences,
    policy: WaitPolicy,
    /// How long to wait, without looking, before the first look (see [`Waiter::pause_first`]).
    pause: Duration,
    stats: &'a mut WaitStats,
    /// Where the counts go in the segment too, for outside readers.
    tally: Option<Tally<'a>>,
    /// Called before each sleep with the counts so far.
    before_sleep: Option<&'a dyn Fn(&WaitStats)>,
    kernel: K,
}

impl<'a, K: Kernel> Waiter<'a, K> {
    /// A wait on `bell`, fenced as `fences` says, waiting as `policy` says, counted in `stats`.
    pub(crate) fn new(
        bell: Doorbell<'a>,
        fences: Fences,
        policy: WaitPolicy,
        stats: &'a mut WaitStats,
        kernel: K,
    ) -> Self {
        Waiter {
            bell,
            fences,
            policy,
            pause: Duration::ZERO,
            stats,
            tally: None,
            before_sleep: None,
            kernel,
        }
    }

    /// Has `f` called with the counts before each sleep (an MPMC handle adds its counts to the
    /// segment's then: a sleep costs a system call anyway).
    pub(crate) fn before_sleep(mut self, f: &'a dyn Fn(&WaitStats)) -> Self {
        self.before_sleep = Some(f);
        self
    }

    /// Counts the wait in the segment's counters too (see `counters`).
    pub(crate) fn tallied(mut self, tally: Tally<'a>) -> Self {
        self.tally = Some(tally);
        self
    }

    /// Begins the wait with `pause` of not looking: part of the spin, so bounded by the spin
    /// budget (none if it is zero) and by the deadline. Not looking is the point: a look at the
    /// ring takes the line the peer is writing (an SPSC consumer's stream pause).
    pub(crate) fn pause_first(mut self, pause: Duration) -> Self {
        self.pause = pause;
        if !pause.is_zero() && !self.policy.spin.is_zero() {
            self.stats.stream_pauses += 1;
            if let Some(tally) = self.tally {
                tally.paused();
            }
        }
        self
    }

    /// Waits until `attempt` yields a value or an error.
    ///
    /// `attempt` is polled while spinning and after each wake-up; `peer` is asked after each
    /// round of spinning (so that a long spin hears a death as soon as a sleep would) and
    /// before each sleep. If the peer is gone, `attempt` gets one last chance (what was published
    /// before the peer left is still delivered), then the wait fails with the peer's error.
    /// `peer(Look::Glance)` must be one atomic load (a clean detach, or a death notice's mark);
    /// `peer(Look::Cheap)` may set up a death notice (some system calls, once per holder);
    /// `peer(Look::Thorough)` may also check the peer's process, and is asked once per liveness
    /// interval. A peer that a death notice covers is not looked at
    /// again: the sleep lasts until a wake (or the deadline), with no system call in between.
    ///
    /// # Errors
    /// What `attempt` returns, the gone peer's error; [`Error::Timeout`] once `limit` has
    /// passed.
    pub(crate) fn wait<T>(
        mut self,
        limit: Limit,
        mut attempt: impl FnMut() -> Result<Option<T>>,
        mut peer: impl FnMut(Look) -> Peer,
    ) -> Result<T> {
        let kernel = self.kernel;
        let deadline = match limit {
            Limit::Forever => None,
            // None (wait forever) if it is beyond what `Instant` holds.
            Limit::After(timeout) => kernel.now().checked_add(timeout),
        };
        self.stats.waits += 1;
        if let Some(tally) = self.tally {
            tally.waited();
        }
        if let Some(v) = self.spin(deadline, &mut attempt, &mut peer)? {
            return Ok(v);
        }
        let (bell, fences) = (self.bell, self.fences);
        let mut last_thorough = kernel.now();
        loop {
            let announced = bell.announce(fences, kernel);
            self.stats.barriers += u64::from(announced.barrier);
            if let (Some(tally), true) = (self.tally, announced.barrier) {
                tally.barrier();
            }
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
            let now = kernel.now();
            let thorough = now.duration_since(last_thorough) >= self.policy.liveness_interval;
            if thorough {
                last_thorough = now;
            }
            let look = if thorough {
                Look::Thorough
            } else {
                Look::Cheap
            };
            let watched = match peer(look) {
                Peer::Gone(gone) => {
                    bell.cancel();
                    return attempt()?.ok_or(gone);
                }
                Peer::Here { watched } => watched,
            };
            let cap = (!watched).then_some(self.policy.liveness_interval);
            let slice = match deadline {
                Some(d) if d <= now => {
                    bell.cancel();
                    return Err(Error::Timeout);
                }
                Some(d) => Some(cap.map_or(d - now, |cap| (d - now).min(cap))),
                None => cap,
            };
            self.stats.sleeps += 1;
            if let Some(tally) = self.tally {
                tally.slept();
            }
            if let Some(before_sleep) = self.before_sleep {
                before_sleep(self.stats);
            }
            bell.sleep(announced, slice, kernel);
            bell.cancel();
            // Woken, timed out or spurious: look before announcing again, since a wake-up
            // usually means the data is there, and announcing costs a fence (and a membarrier).
            if let Some(v) = attempt()? {
                return Ok(v);
            }
        }
    }

    /// Spins on `attempt` for the policy's spin budget (bounded by the deadline), after the
    /// pause. The clock is read before each round of attempts, so that a clock that has already
    /// passed the end (the model's) makes no attempt at all. After each round `peer` is asked,
    /// so that a peer's marked death ends the spin (without it, a spin of milliseconds made a
    /// crash's notice wait that long): for the first [`NOTICE_AFTER`] a glance (one atomic
    /// load, nothing set up, so a wait that ends in the usual spin makes no system call), after
    /// it a look that may set up the death notice, as a sleep would.
    fn spin<T>(
        &mut self,
        deadline: Option<Instant>,
        attempt: &mut impl FnMut() -> Result<Option<T>>,
        peer: &mut impl FnMut(Look) -> Peer,
    ) -> Result<Option<T>> {
        if self.policy.spin.is_zero() {
            return Ok(None);
        }
        let kernel = self.kernel;
        let start = kernel.now();
        let mut spin_end = start + self.policy.spin;
        if let Some(d) = deadline {
            spin_end = spin_end.min(d);
        }
        if !self.pause.is_zero() {
            let pause_end = (start + self.pause).min(spin_end);
            while kernel.now() < pause_end {
                spin_hint();
            }
        }
        loop {
            let now = kernel.now();
            if now >= spin_end {
                break;
            }
            for _ in 0..32 {
                spin_hint();
                if let Some(v) = attempt()? {
                    return Ok(Some(v));
                }
            }
            // A spin longer than the usual sets up the holder's death notice too (once per
            // holder), as a sleep would: a glance sees only a death that a notice marked.
            let look = if now.duration_since(start) >= NOTICE_AFTER {
                Look::Cheap
            } else {
                Look::Glance
            };
            if let Peer::Gone(gone) = peer(look) {
                // What it published before it left is still delivered.
                return attempt()?.map_or(Err(gone), |v| Ok(Some(v)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;
    use crate::os::fake::FakeKernel;

    const QUIET: u32 = <&FakeKernel as Kernel>::QUIET_PUBLISHES;

    fn header() -> Box<SegmentHeader> {
        Box::new(SegmentHeader::new())
    }

    /// A sleeper announces itself on `bell` and leaves at once; true if that took a membarrier.
    fn sleeper_needs_barrier(bell: Doorbell<'_>, kernel: &FakeKernel) -> bool {
        let announced = bell.announce(Fences::Asymmetric, kernel);
        bell.cancel();
        announced.barrier
    }

    fn policy(spin_us: u64, liveness_ms: u64) -> WaitPolicy {
        WaitPolicy {
            spin: Duration::from_micros(spin_us),
            liveness_interval: Duration::from_millis(liveness_ms),
        }
    }

    #[test]
    fn a_fresh_bell_makes_sleepers_take_the_barrier() {
        // A new segment is zero-filled, and an MPMC ring's notifiers never touch the word.
        let (kernel, header) = (FakeKernel::new(), header());
        let bell = Doorbell::data(&header);
        let mut notifier = Notifier::fixed(Fences::Asymmetric, &kernel);
        assert!(sleeper_needs_barrier(bell, &kernel));
        bell.ring(&mut notifier);
        assert!(sleeper_needs_barrier(bell, &kernel));
        assert_eq!(kernel.barriers.get(), 2);
    }

    #[test]
    fn ringing_with_nobody_asleep_makes_no_system_call() {
        let (kernel, header) = (FakeKernel::new(), header());
        let bell = Doorbell::data(&header);
        let mut notifier = Notifier::sole(bell, Fences::Asymmetric, &kernel);
        for _ in 0..1000 {
            bell.ring(&mut notifier);
        }
        assert_eq!((kernel.wakes.get(), kernel.barriers.get()), (0, 0));
        // One announced sleeper: every ring wakes, until it leaves.
        bell.announce(Fences::Asymmetric, &kernel);
        bell.ring(&mut notifier);
        bell.ring(&mut notifier);
        bell.cancel();
        bell.ring(&mut notifier);
        assert_eq!(kernel.wakes.get(), 2);
    }

    #[test]
    fn sole_notifier_fences_from_a_wake_until_it_has_been_quiet() {
        let (kernel, header) = (FakeKernel::new(), header());
        let bell = Doorbell::data(&header);
        let mut notifier = Notifier::sole(bell, Fences::Asymmetric, &kernel);
        assert!(
            sleeper_needs_barrier(bell, &kernel),
            "starts without fences"
        );
        // A publish that finds a sleeper switches the notifier to fencing.
        bell.announce(Fences::Asymmetric, &kernel);
        bell.ring(&mut notifier);
        bell.cancel();
        assert!(notifier.fencing);
        assert!(!sleeper_needs_barrier(bell, &kernel));
        for _ in 1..QUIET {
            bell.ring(&mut notifier);
        }
        assert!(
            !sleeper_needs_barrier(bell, &kernel),
            "still fencing one publish short of the limit"
        );
        bell.ring(&mut notifier);
        assert!(!notifier.fencing);
        assert!(
            sleeper_needs_barrier(bell, &kernel),
            "stopped after QUIET_PUBLISHES quiet publishes"
        );
    }

    #[test]
    fn a_new_sole_notifier_starts_unfenced_whatever_the_last_one_left() {
        let (kernel, header) = (FakeKernel::new(), header());
        let bell = Doorbell::data(&header);
        let mut first = Notifier::sole(bell, Fences::Asymmetric, &kernel);
        bell.announce(Fences::Asymmetric, &kernel);
        bell.ring(&mut first);
        bell.cancel();
        assert!(!sleeper_needs_barrier(bell, &kernel));
        let second = Notifier::sole(bell, Fences::Asymmetric, &kernel);
        assert!(!second.fencing);
        assert!(sleeper_needs_barrier(bell, &kernel));
    }

    #[test]
    fn fixed_notifiers_never_switch() {
        let (kernel, header) = (FakeKernel::new(), header());
        let bell = Doorbell::data(&header);
        let mut many = Notifier::fixed(Fences::Asymmetric, &kernel);
        bell.announce(Fences::Asymmetric, &kernel);
        bell.ring(&mut many);
        bell.cancel();
        assert!(
            !many.fencing,
            "a notifier of a shared bell must not claim to fence for all"
        );
        assert!(sleeper_needs_barrier(bell, &kernel));
        let mut symmetric = Notifier::sole(bell, Fences::Symmetric, &kernel);
        for _ in 0..=QUIET {
            bell.ring(&mut symmetric);
        }
        assert!(symmetric.fencing);
        // Symmetric sleepers never take a membarrier, whatever the bell says.
        assert!(!bell.announce(Fences::Symmetric, &kernel).barrier);
        bell.cancel();
    }

    #[test]
    fn fences_follow_the_header_and_what_the_process_can_do() {
        let kernel = FakeKernel::new();
        assert_eq!(Fences::creation_flags(false, &kernel), 0);
        assert_eq!(Fences::for_ring(0, &kernel).unwrap(), Fences::Asymmetric);
        assert_eq!(
            Fences::for_ring(FLAG_SYMMETRIC_FENCES, &kernel).unwrap(),
            Fences::Symmetric
        );
        kernel.barrier_available.set(false);
        assert_eq!(
            Fences::creation_flags(false, &kernel),
            FLAG_SYMMETRIC_FENCES
        );
        assert!(matches!(
            Fences::for_ring(0, &kernel),
            Err(Error::Unsupported(_))
        ));
    }

    #[test]
    fn a_waiter_spins_for_its_budget_then_sleeps_until_the_peer_publishes() {
        let (kernel, header) = (FakeKernel::new(), Rc::new(SegmentHeader::new()));
        let ready = Rc::new(Cell::new(false));
        {
            // While we sleep, the peer publishes and wakes us (the futex word moves).
            let (ready, header) = (Rc::clone(&ready), Rc::clone(&header));
            kernel.during_sleep(move || {
                ready.set(true);
                header.bells[DATA_BELL].seq.fetch_add(1, Ordering::SeqCst);
            });
        }
        let (attempts, mut stats) = (Cell::new(0u32), WaitStats::default());
        let bell = Doorbell::data(&header);
        let started = kernel.peek();
        let got = Waiter::new(bell, Fences::Symmetric, policy(20, 20), &mut stats, &kernel).wait(
            Limit::Forever,
            || {
                attempts.set(attempts.get() + 1);
                Ok(ready.get().then_some(7))
            },
            |_| Peer::Here { watched: false },
        );
        assert_eq!(got.unwrap(), 7);
        // The clock moves 1 us a reading: a 20 us spin is 19 rounds of 32 attempts, then the
        // announced re-check, one sleep, and the look after it.
        assert_eq!(attempts.get(), 19 * 32 + 2);
        assert_eq!((stats.waits, stats.sleeps, stats.barriers), (1, 1, 0));
        assert_eq!(kernel.sleeps.borrow().len(), 1);
        // Woken: the sleep did not run to its timeout.
        assert!(kernel.peek() - started < Duration::from_millis(1));
    }

    #[test]
    fn a_long_spin_glances_sets_up_the_notice_after_the_usual_spin_and_ends_when_the_peer_goes() {
        let (kernel, header) = (FakeKernel::new(), header());
        let (looks, mut stats) = (std::cell::RefCell::new(Vec::new()), WaitStats::default());
        let started = kernel.peek();
        // A one-second spin; the peer is gone from its 25th look on.
        let got: Result<()> = Waiter::new(
            Doorbell::data(&header),
            Fences::Asymmetric,
            policy(1_000_000, 20),
            &mut stats,
            &kernel,
        )
        .wait(
            Limit::Forever,
            || Ok(None),
            |look| {
                looks.borrow_mut().push(look);
                if looks.borrow().len() >= 25 {
                    Peer::Gone(Error::PeerGone(crate::error::Role::Producer))
                } else {
                    Peer::Here { watched: true }
                }
            },
        );
        assert!(matches!(got, Err(Error::PeerGone(_))));
        // The clock moves 1 us a reading, one reading a round after the start's: glances for
        // the first 20 us of the spin, then looks that may set up the notice; ended at the
        // 25th, not at 1 s.
        let looks = looks.into_inner();
        assert_eq!(looks.len(), 25);
        assert!(looks[..19].iter().all(|&l| l == Look::Glance), "{looks:?}");
        assert!(looks[19..].iter().all(|&l| l == Look::Cheap), "{looks:?}");
        assert_eq!(stats.sleeps, 0);
        assert!(kernel.peek() - started < Duration::from_micros(40));
    }

    #[test]
    fn a_waiter_without_spin_sleeps_at_once_and_times_out_at_its_deadline() {
        let (kernel, header) = (FakeKernel::new(), header());
        let mut stats = WaitStats::default();
        let attempts = Cell::new(0u32);
        let started = kernel.peek();
        let got: Result<()> = Waiter::new(
            Doorbell::data(&header),
            Fences::Asymmetric,
            policy(0, 20),
            &mut stats,
            &kernel,
        )
        .wait(
            Limit::After(Duration::from_millis(50)),
            || {
                attempts.set(attempts.get() + 1);
                Ok(None)
            },
            |_| Peer::Here { watched: false },
        );
        assert!(matches!(got, Err(Error::Timeout)));
        let slept: Vec<Duration> = kernel.sleeps.borrow().iter().map(|s| s.unwrap()).collect();
        // Sleeps are cut at the liveness interval and at the deadline: 20 + 20 + (the rest).
        assert_eq!(slept.len(), 3, "{slept:?}");
        assert!(slept.iter().all(|s| *s <= Duration::from_millis(20)));
        assert!(slept[2] < Duration::from_millis(11), "{slept:?}");
        let waited = kernel.peek() - started;
        assert!(waited >= Duration::from_millis(50) && waited < Duration::from_millis(51));
        // Each sleep: the re-check after announcing and the look after waking, then the re-check
        // of the announcement that finds the deadline passed; no spinning.
        assert_eq!(attempts.get(), 7);
        assert_eq!((stats.sleeps, stats.barriers), (3, 4));
        assert_eq!(header.bells[DATA_BELL].sleepers.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_gone_peer_is_checked_thoroughly_once_an_interval_and_what_it_left_is_delivered() {
        let (kernel, header) = (FakeKernel::new(), header());
        let mut stats = WaitStats::default();
        let thorough = Cell::new(0u32);
        let (looks, asks) = (Cell::new(0u32), Cell::new(0u32));
        let got = Waiter::new(
            Doorbell::space(&header),
            Fences::Symmetric,
            policy(0, 10),
            &mut stats,
            &kernel,
        )
        .wait(
            Limit::After(Duration::from_secs(1)),
            || {
                looks.set(looks.get() + 1);
                // What the peer published before it went is there at the last look.
                Ok((thorough.get() == 3).then_some("last"))
            },
            |look| {
                asks.set(asks.get() + 1);
                thorough.set(thorough.get() + u32::from(look == Look::Thorough));
                if thorough.get() == 3 {
                    Peer::Gone(Error::PeerGone(crate::error::Role::Consumer))
                } else {
                    Peer::Here { watched: false }
                }
            },
        );
        assert_eq!(got.unwrap(), "last");
        // Sleeps of a whole interval each, so every ask after the first is thorough.
        assert_eq!((asks.get(), thorough.get()), (4, 3));
    }

    #[test]
    fn a_pause_first_does_not_look_until_it_ends() {
        let (kernel, header) = (FakeKernel::new(), header());
        let mut stats = WaitStats::default();
        let started = kernel.peek();
        let first_look = Cell::new(None);
        let got = Waiter::new(
            Doorbell::data(&header),
            Fences::Symmetric,
            policy(20, 20),
            &mut stats,
            &kernel,
        )
        .pause_first(Duration::from_micros(5))
        .wait(
            Limit::Forever,
            || {
                first_look.set(first_look.get().or(Some(kernel.peek())));
                Ok(Some(()))
            },
            |_| Peer::Here { watched: false },
        );
        got.unwrap();
        assert!(first_look.get().unwrap() - started >= Duration::from_micros(5));
        assert_eq!(stats.stream_pauses, 1);
        // Without a spin budget there is no pause (and it is not counted).
        let mut stats = WaitStats::default();
        let _ = Waiter::new(
            Doorbell::data(&header),
            Fences::Symmetric,
            policy(0, 20),
            &mut stats,
            &kernel,
        )
        .pause_first(Duration::from_micros(5));
        assert_eq!(stats.stream_pauses, 0);
    }
}
