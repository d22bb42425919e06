//! The Linux implementation of the OS boundary: the system calls, and ring memory as raw
//! pointers into the heap or a shared mapping.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use super::{Kernel, Liveness, Notice, ProcessIdentity, Watched};
use crate::sync::AtomicU32;

mod futex;
pub(crate) mod inventory;
mod membarrier;
mod memory;
mod process;
pub(crate) mod seqpacket;
mod served;
pub(crate) mod shm;
pub(crate) mod sysv;
mod watch;

pub(crate) use memory::{DataArea, Memory, RingMemory};

use super::os_error;

/// The kernel the endpoints use in this build.
pub(crate) type Host = Linux;
/// The one value of [`Host`].
pub(crate) const HOST: Host = Linux;

/// Linux itself: every method is a system call (or a read of `/proc`), except the clock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Linux;

impl Kernel for Linux {
    type Check = process::ProcessWatch;
    type Watch = watch::Watch;

    fn futex_wait(
        self,
        word: &AtomicU32,
        expected: u32,
        timeout: Option<Duration>,
        _after_barrier: bool,
    ) {
        futex::wait(word, expected, membarrier::cap_sleep(timeout));
    }

    fn futex_wake_all(self, word: &AtomicU32) {
        futex::wake(word, i32::MAX);
    }

    fn barrier_available(self) -> bool {
        membarrier::register()
    }

    fn global_barrier(self) {
        membarrier::global_barrier();
    }

    #[inline]
    fn now(self) -> Instant {
        Instant::now()
    }

    fn current_process(self) -> ProcessIdentity {
        process::current()
    }

    fn liveness(self, check: &mut Self::Check, who: ProcessIdentity) -> Liveness {
        check.check(who)
    }

    fn watch_process(self, who: ProcessIdentity, notice: Notice) -> Watched<Self::Watch> {
        watch::process(who, notice)
    }

    fn watch_hangup(self, fd: BorrowedFd<'_>, notice: Notice) -> Watched<Self::Watch> {
        watch::hangup(fd, notice)
    }

    fn pid_is_dead(self, pid: u32) -> bool {
        process::pid_is_dead(pid)
    }
}
