//! A fake kernel for the algorithms' unit tests: no system call, time moved by hand, every call
//! counted, and the peer's actions run from inside a futex sleep.

use std::cell::{Cell, RefCell};
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Kernel, Liveness, Notice, ProcessIdentity, Watched};
use crate::sync::{AtomicU32, Ordering};

/// The notices of the watches given out and not dropped, by watch number, with the pid each
/// watches.
type Notices = Arc<Mutex<Vec<Option<(u32, Notice)>>>>;

/// The fake; tests use it as `&FakeKernel`, which implements [`Kernel`].
pub(crate) struct FakeKernel {
    clock: Cell<Instant>,
    /// How far each reading of the clock moves it on (a spinning loop must see time pass).
    pub tick: Cell<Duration>,
    /// `futex_wake_all` calls.
    pub wakes: Cell<u32>,
    /// `global_barrier` calls.
    pub barriers: Cell<u32>,
    /// The timeout of each `futex_wait` call, in order (None: until woken).
    pub sleeps: RefCell<Vec<Option<Duration>>>,
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
    /// Whether `watch_process` and `watch_hangup` can watch.
    pub watchable: Cell<bool>,
    /// The notices of the watches given out and not dropped, by watch number.
    notices: Notices,
}

/// A watch of the fake kernel; dropping it forgets its notice.
pub(crate) struct FakeWatch {
    index: usize,
    notices: Notices,
}

impl std::fmt::Debug for FakeWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FakeWatch").field(&self.index).finish()
    }
}

impl Drop for FakeWatch {
    fn drop(&mut self) {
        self.notices.lock().unwrap()[self.index] = None;
    }
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
            watchable: Cell::new(true),
            notices: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Kills `pid`: it reads dead from now on, and the notices of the watches on it run (as
    /// the watcher thread would run them), each once.
    pub(crate) fn kill(&self, pid: u32) {
        self.dead.borrow_mut().push(pid);
        let due: Vec<Notice> = self
            .notices
            .lock()
            .unwrap()
            .iter_mut()
            .filter(|n| n.as_ref().is_some_and(|(p, _)| *p == pid))
            .filter_map(|n| n.take().map(|(_, notice)| notice))
            .collect();
        for notice in due {
            notice();
        }
    }

    /// How many watches are given out and not dropped (or run).
    pub(crate) fn watches(&self) -> usize {
        self.notices
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n.is_some())
            .count()
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
    type Check = ();
    type Watch = FakeWatch;

    /// Records the sleep and runs the peer's action; then, if the word still holds `expected`
    /// (nobody woke us), the whole timeout passes.
    fn futex_wait(
        self,
        word: &AtomicU32,
        expected: u32,
        timeout: Option<Duration>,
        _after_barrier: bool,
    ) {
        self.sleeps.borrow_mut().push(timeout);
        if let Some(f) = self.during_sleep.borrow_mut().as_mut() {
            f();
        }
        if word.load(Ordering::SeqCst) == expected {
            // A sleep without a timeout that nobody ends would hang the test: say so instead.
            self.advance(timeout.expect("slept forever: no one rang and no timeout was set"));
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

    fn watch_process(self, who: ProcessIdentity, notice: Notice) -> Watched<FakeWatch> {
        if !self.watchable.get() {
            return Watched::Unwatchable;
        }
        if self.dead.borrow().contains(&who.pid) {
            return Watched::Already;
        }
        let mut notices = self.notices.lock().unwrap();
        notices.push(Some((who.pid, notice)));
        Watched::Watching(FakeWatch {
            index: notices.len() - 1,
            notices: Arc::clone(&self.notices),
        })
    }

    fn watch_hangup(self, _fd: BorrowedFd<'_>, _notice: Notice) -> Watched<FakeWatch> {
        Watched::Unwatchable
    }

    fn liveness(self, _check: &mut (), who: ProcessIdentity) -> Liveness {
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
