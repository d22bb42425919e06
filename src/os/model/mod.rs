//! The model implementation of the OS boundary, under `--cfg loom`: the algorithms run over heap
//! memory whose frame words are loom atomics, and loom explores every interleaving of them.
//!
//! - The futex can only wake a thread that is really waiting, and a sleep has no timeout, so a
//!   lost wake-up is a deadlock that loom reports.
//! - loom cannot model `membarrier` (a fence forced on another thread), so a sleep whose
//!   handshake rests on one returns at once: a spurious wake-up. The models check the fenced
//!   handshake, and the switches between the two forms.
//! - Under the model's clock every reading is an hour after the last: a spin or pause ends at
//!   its first check, every liveness check is thorough, and a deadline passes at the first
//!   look. (loom has no time; this keeps the explored states those of the protocol.)
//! - Every reading of `current_process` is a process of its own (pid and start time from a
//!   counter, in an unknown pid namespace), so that each endpoint's claim names one. A process
//!   lives until a test declares it dead (`os::declare_dead`, through `ringport::testing`):
//!   then liveness checks say so, and the death notices on it run, on the declaring thread.
//!   There are no named segments, memfds or sockets ([`Error::Unsupported`]).

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use super::{Kernel, Liveness, Notice, ProcessIdentity, Watched};
use crate::error::Error;
use crate::sync::{AtomicU32, Ordering};

pub(crate) mod inventory;
mod memory;
pub(crate) mod seqpacket;
pub(crate) mod shm;

pub(crate) use memory::{DataArea, Memory, RingMemory};

/// The kernel the endpoints use in this build.
pub(crate) type Host = Model;
/// The one value of [`Host`].
pub(crate) const HOST: Host = Model;

/// What the model cannot do.
pub(super) fn unsupported() -> Error {
    Error::Unsupported("not under the loom model (it has no named segments, memfds or sockets)")
}

/// The model kernel.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Model;

loom::lazy_static! {
    /// The futex: for each word slept on (by address), how many wakes it has had; sleepers
    /// wait on the condition variable until their word's count moves.
    static ref FUTEX: (loom::sync::Mutex<Vec<(usize, u64)>>, loom::sync::Condvar) =
        (loom::sync::Mutex::new(Vec::new()), loom::sync::Condvar::new());
}

/// The model's processes: a counter for new ones, the dead, and the death notices waiting.
struct Processes {
    next: u32,
    dead: Vec<u32>,
    notices: Vec<(u64, u32, Notice)>,
    next_watch: u64,
}

loom::lazy_static! {
    /// A loom mutex: a death declared on one thread and seen on another must order what the
    /// dead process did before what its survivor does after, as the kernel's pidfd does.
    static ref PROCESSES: loom::sync::Mutex<Processes> = loom::sync::Mutex::new(Processes {
        next: 2,
        dead: Vec::new(),
        notices: Vec::new(),
        next_watch: 0,
    });
}

fn processes() -> loom::sync::MutexGuard<'static, Processes> {
    PROCESSES.lock().unwrap()
}

/// A death notice of the model; dropping it forgets the notice.
#[derive(Debug)]
pub(crate) struct ModelWatch(u64);

impl Drop for ModelWatch {
    fn drop(&mut self) {
        processes().notices.retain(|(id, _, _)| *id != self.0);
    }
}

/// Declares the process `who` dead: from now on liveness checks say so, and the death notices
/// on it run now, on this thread (the model's watcher).
pub(crate) fn declare_dead(who: ProcessIdentity) -> crate::error::Result<()> {
    let due: Vec<Notice> = {
        let mut processes = processes();
        processes.dead.push(who.pid);
        let (due, kept) = std::mem::take(&mut processes.notices)
            .into_iter()
            .partition(|(_, pid, _)| *pid == who.pid);
        processes.notices = kept;
        due.into_iter().map(|(_, _, notice)| notice).collect()
    };
    for notice in due {
        notice();
    }
    Ok(())
}

fn wakes_of(table: &[(usize, u64)], address: usize) -> u64 {
    table
        .iter()
        .find(|(a, _)| *a == address)
        .map_or(0, |(_, n)| *n)
}

impl Kernel for Model {
    type Check = ();
    type Watch = ModelWatch;
    const QUIET_PUBLISHES: u32 = 1;

    fn futex_wait(
        self,
        word: &AtomicU32,
        expected: u32,
        _timeout: Option<Duration>,
        after_barrier: bool,
    ) {
        if after_barrier {
            loom::thread::yield_now();
            return;
        }
        let address = std::ptr::from_ref(word) as usize;
        let (table, condvar) = &*FUTEX;
        let mut table = table.lock().unwrap();
        // SeqCst, under the lock: a waker bumps the word before it takes the lock, so a sleeper
        // that checks after it sees the bump, and one that checks before it is waiting when the
        // waker notifies.
        if word.load(Ordering::SeqCst) != expected {
            return;
        }
        let seen = wakes_of(&table, address);
        while wakes_of(&table, address) == seen {
            table = condvar.wait(table).unwrap();
        }
    }

    fn futex_wake_all(self, word: &AtomicU32) {
        let address = std::ptr::from_ref(word) as usize;
        let (table, condvar) = &*FUTEX;
        let mut table = table.lock().unwrap();
        match table.iter_mut().find(|(a, _)| *a == address) {
            Some((_, n)) => *n += 1,
            None => table.push((address, 1)),
        }
        condvar.notify_all();
    }

    fn barrier_available(self) -> bool {
        true
    }

    fn global_barrier(self) {}

    fn now(self) -> Instant {
        use std::sync::atomic::AtomicU64 as Readings;
        static READINGS: Readings = Readings::new(0);
        static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let hours = READINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        *EPOCH.get_or_init(Instant::now) + Duration::from_secs(3600 * hours)
    }

    fn current_process(self) -> ProcessIdentity {
        let mut processes = processes();
        let pid = processes.next;
        processes.next += 1;
        ProcessIdentity {
            pid,
            start_time: u64::from(pid),
            pid_ns: 0,
        }
    }

    fn watch_process(self, who: ProcessIdentity, notice: Notice) -> Watched<ModelWatch> {
        let mut processes = processes();
        if processes.dead.contains(&who.pid) {
            return Watched::Already;
        }
        let id = processes.next_watch;
        processes.next_watch += 1;
        processes.notices.push((id, who.pid, notice));
        Watched::Watching(ModelWatch(id))
    }

    /// There are no sockets under the model.
    fn watch_hangup(self, _fd: BorrowedFd<'_>, _notice: Notice) -> Watched<ModelWatch> {
        Watched::Unwatchable
    }

    fn liveness(self, _check: &mut (), who: ProcessIdentity) -> Liveness {
        if who.pid_ns != 0 {
            // As on Linux, a pid recorded in another pid namespace means nothing here.
            Liveness::Unknown
        } else if processes().dead.contains(&who.pid) {
            Liveness::Dead
        } else {
            Liveness::Alive
        }
    }

    fn pid_is_dead(self, pid: u32) -> bool {
        processes().dead.contains(&pid)
    }
}
