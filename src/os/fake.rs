//! A fake kernel for the algorithms' unit tests: no system call, time moved by hand, every call
//! counted, and the peer's actions run from inside a futex sleep.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use super::{Kernel, Liveness, ProcessIdentity};
use crate::sync::{AtomicU32, Ordering};

/// The fake; tests use it as `&FakeKernel`, which implements [`Kernel`].
pub(crate) struct FakeKernel {
    clock: Cell<Instant>,
    /// How far each reading of the clock moves it on (a spinning loop must see time pass).
    pub tick: Cell<Duration>,
    /// `futex_wake_all` calls.
    pub wakes: Cell<u32>,
    /// `global_barrier` calls.
    pub barriers: Cell<u32>,
    /// The timeout of each `futex_wait` call, in order.
    pub sleeps: RefCell<Vec<Duration>>,
    /// Run inside each `futex_wait`, as the peer acts while we sleep.
    during_sleep: RefCell<Option<Box<dyn FnMut()>>>,
    /// What `barrier_available` answers.
    pub barrier_available: Cell<bool>,
    /// This process.
    pub me: Cell<ProcessIdentity>,
    /// The pids of processes that have died.
    pub dead: RefCell<Vec<u32>>,
    /// `liveness` calls.
    pub liveness_checks: Cell<u32>,
}

impl FakeKernel {
    /// A kernel whose clock moves 1 us a reading, with membarrier, for process 100 in pid
    /// namespace 7.
    pub(crate) fn new() -> FakeKernel {
        FakeKernel {
            clock: Cell::new(Instant::now()),
            tick: Cell::new(Duration::from_micros(1)),
            wakes: Cell::new(0),
            barriers: Cell::new(0),
            sleeps: RefCell::new(Vec::new()),
            during_sleep: RefCell::new(None),
            barrier_available: Cell::new(true),
            me: Cell::new(ProcessIdentity {
                pid: 100,
                start_time: 5,
                pid_ns: 7,
            }),
            dead: RefCell::new(Vec::new()),
            liveness_checks: Cell::new(0),
        }
    }

    /// Runs `f` inside every futex sleep from now on.
    pub(crate) fn during_sleep(&self, f: impl FnMut() + 'static) {
        *self.during_sleep.borrow_mut() = Some(Box::new(f));
    }

    /// Moves the clock on by `by`.
    pub(crate) fn advance(&self, by: Duration) {
        self.clock.set(self.clock.get() + by);
    }

    /// The clock's reading, without moving it.
    pub(crate) fn peek(&self) -> Instant {
        self.clock.get()
    }
}

impl std::fmt::Debug for FakeKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKernel")
            .field("wakes", &self.wakes.get())
            .field("barriers", &self.barriers.get())
            .field("sleeps", &self.sleeps.borrow().len())
            .finish_non_exhaustive()
    }
}

impl Kernel for &FakeKernel {
    type Watch = ();

    /// Records the sleep and runs the peer's action; then, if the word still holds `expected`
    /// (nobody woke us), the whole timeout passes.
    fn futex_wait(self, word: &AtomicU32, expected: u32, timeout: Duration, _after_barrier: bool) {
        self.sleeps.borrow_mut().push(timeout);
        if let Some(f) = self.during_sleep.borrow_mut().as_mut() {
            f();
        }
        if word.load(Ordering::SeqCst) == expected {
            self.advance(timeout);
        }
    }

    fn futex_wake_all(self, _word: &AtomicU32) {
        self.wakes.set(self.wakes.get() + 1);
    }

    fn barrier_available(self) -> bool {
        self.barrier_available.get()
    }

    fn global_barrier(self) {
        self.barriers.set(self.barriers.get() + 1);
    }

    fn now(self) -> Instant {
        self.advance(self.tick.get());
        self.clock.get()
    }

    fn current_process(self) -> ProcessIdentity {
        self.me.get()
    }

    fn liveness(self, _watch: &mut (), who: ProcessIdentity) -> Liveness {
        self.liveness_checks.set(self.liveness_checks.get() + 1);
        if who.pid_ns != 0 && who.pid_ns != self.me.get().pid_ns {
            Liveness::Unknown
        } else if self.dead.borrow().contains(&who.pid) {
            Liveness::Dead
        } else {
            Liveness::Alive
        }
    }

    fn pid_is_dead(self, pid: u32) -> bool {
        self.dead.borrow().contains(&pid)
    }
}
