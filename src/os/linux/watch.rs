//! Death and hang-up notices: one watcher thread per process waits in `epoll_wait` on the
//! pidfds of the processes and the sockets that endpoints asked to watch, and runs each one's
//! notice when its process dies (the pidfd becomes readable) or its peer hangs up. Nothing
//! polls: while nothing happens the thread sleeps in the kernel, and a notice runs some
//! microseconds after the event. The thread starts with the first watch; a forked child, which
//! has no watcher thread, starts its own.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use super::process::{watchable, Watchable};
use crate::os::{Notice, ProcessIdentity, Watched};

/// A registration; dropping it cancels the notice (if it has not run).
#[derive(Debug)]
pub(crate) struct Watch {
    id: u64,
    /// The process that registered it: a forked child's registry is its own.
    owner: u32,
}

/// What the watcher thread waits on.
struct Registry {
    /// The process this registry (and its thread) belongs to.
    owner: u32,
    epoll: Arc<Epoll>,
    entries: HashMap<u64, Entry>,
    next: u64,
}

struct Entry {
    /// The pidfd, or our own duplicate of the socket.
    fd: OwnedFd,
    notice: Notice,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn registry() -> MutexGuard<'static, Option<Registry>> {
    // A notice that panicked poisons nothing we rely on: the map is consistent between calls.
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Watches the death of `who`.
pub(super) fn process(who: ProcessIdentity, notice: Notice) -> Watched<Watch> {
    match watchable(who) {
        Watchable::Pidfd(fd) => register(fd, EpollFlags::EPOLLIN, notice),
        Watchable::Dead => Watched::Already,
        Watchable::No => Watched::Unwatchable,
    }
}

/// Watches the hang-up of the peer of the connected socket `fd`.
pub(super) fn hangup(fd: BorrowedFd<'_>, notice: Notice) -> Watched<Watch> {
    match fd.try_clone_to_owned() {
        // EPOLLRDHUP: the peer shut its sending side or closed; EPOLLHUP and EPOLLERR always
        // come. Not EPOLLIN: messages do not wake the watcher.
        Ok(ours) => register(ours, EpollFlags::EPOLLRDHUP, notice),
        Err(_) => Watched::Unwatchable,
    }
}

fn register(fd: OwnedFd, events: EpollFlags, notice: Notice) -> Watched<Watch> {
    let me = std::process::id();
    let mut guard = registry();
    if guard.as_ref().is_some_and(|r| r.owner != me) {
        // Made before a fork: its thread lives only in the parent. Its descriptors are the
        // parent's to close; our copies go with the registry.
        *guard = None;
    }
    if guard.is_none() {
        let Some(fresh) = start(me) else {
            return Watched::Unwatchable;
        };
        *guard = Some(fresh);
    }
    let registry = guard.as_mut().expect("made above");
    let id = registry.next;
    registry.next += 1;
    if registry
        .epoll
        .add(fd.as_fd(), EpollEvent::new(events, id))
        .is_err()
    {
        return Watched::Unwatchable;
    }
    registry.entries.insert(id, Entry { fd, notice });
    Watched::Watching(Watch { id, owner: me })
}

/// A registry with its epoll set, and the thread that waits on it; None if either cannot be
/// had (the callers then fall back to looking now and then).
fn start(owner: u32) -> Option<Registry> {
    let epoll = Arc::new(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).ok()?);
    let waited = Arc::clone(&epoll);
    // The core of the thread that first waits on a peer: a busy poller's, as likely as not.
    // SAFETY: sched_getcpu takes nothing and returns a number (or -1).
    let spawner = usize::try_from(unsafe { libc::sched_getcpu() }).ok();
    std::thread::Builder::new()
        .name("ringport-watch".into())
        .spawn(move || {
            keep_off_the_pollers_core(spawner);
            ask_for_a_short_slice();
            watch(&waited, owner)
        })
        .ok()?;
    Some(Registry {
        owner,
        epoll,
        entries: HashMap::new(),
        next: 0,
    })
}

/// Lets the watcher thread run on any core the system allows but `spawner` (the core of the
/// thread that started it), not only on those this process was pinned to. A busy poller shares
/// its core with nothing it does not have to: woken there, the watcher would wait, at times, for
/// the scheduler to preempt the poller, milliseconds later (docs/PERFORMANCE.md, "Death
/// notices"). The thread sleeps until a peer dies; the process's own threads stay where they
/// are. With one core, it may run there; best effort: where it cannot move (a cpuset), it stays.
fn keep_off_the_pollers_core(spawner: Option<usize>) {
    let count = std::thread::available_parallelism().map_or(1, usize::from);
    // Every core the system has, not only those available to us: the kernel keeps the ones our
    // cpuset allows.
    let configured = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_CONF)
        .ok()
        .flatten()
        .map_or(count, |n| n as usize)
        .min(nix::sched::CpuSet::count());
    let me = nix::unistd::Pid::from_raw(0);
    let all_but = |skipped: Option<usize>| {
        let mut cores = nix::sched::CpuSet::new();
        for core in (0..configured).filter(|&c| Some(c) != skipped) {
            let _ = cores.set(core);
        }
        cores
    };
    if nix::sched::sched_setaffinity(me, &all_but(spawner)).is_err() {
        let _ = nix::sched::sched_setaffinity(me, &all_but(None));
    }
}

/// Asks the scheduler for a short slice for the watcher thread (`sched_setattr` with a runtime,
/// which the fair scheduler takes as the thread's slice since Linux 6.12): woken on a core where a
/// thread busy-polls, a thread with a shorter slice than the poller's preempts it at once, where
/// it would otherwise wait for the poller's slice to end, milliseconds later (docs/PERFORMANCE.md,
/// "Death notices"). Unprivileged; best effort: an older kernel ignores the runtime or refuses.
fn ask_for_a_short_slice() {
    /// `struct sched_attr`, as of its first version (48 bytes).
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        flags: 0,
        nice: 0,
        priority: 0,
        // 0.1 ms, the shortest slice the scheduler takes.
        runtime: 100_000,
        deadline: 0,
        period: 0,
    };
    // SAFETY: sched_setattr reads `size` bytes of the attribute struct we pass, which lives
    // across the call; pid 0 is the calling thread.
    let _ = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
}

/// The watcher thread: waits, then runs the notices of what happened, each once.
fn watch(epoll: &Epoll, owner: u32) {
    let mut events = [EpollEvent::empty(); 16];
    loop {
        let ready = match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            // The set is gone or broken: there is nothing left to watch.
            Err(_) => return,
        };
        for event in &events[..ready] {
            let notice = {
                let mut guard = registry();
                let Some(registry) = guard.as_mut().filter(|r| r.owner == owner) else {
                    return;
                };
                let Some(entry) = registry.entries.remove(&event.data()) else {
                    continue;
                };
                let _ = registry.epoll.delete(entry.fd.as_fd());
                entry.notice
            };
            // Outside the lock: a notice may register a new watch.
            notice();
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut guard = registry();
        if let Some(registry) = guard.as_mut().filter(|r| r.owner == self.owner) {
            if let Some(entry) = registry.entries.remove(&self.id) {
                let _ = registry.epoll.delete(entry.fd.as_fd());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::sync::{AtomicU32, Ordering};

    #[test]
    fn a_dead_childs_notice_runs_and_a_dropped_watch_never_does() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let who = ProcessIdentity {
            pid: child.id(),
            start_time: 0,
            pid_ns: 0,
        };
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let Watched::Watching(watch) =
            process(who, Arc::new(move || tx.lock().unwrap().send(()).unwrap()))
        else {
            panic!("a live child can be watched");
        };
        let cancelled = Arc::new(AtomicU32::new(0));
        let count = Arc::clone(&cancelled);
        let Watched::Watching(dropped) = process(
            who,
            Arc::new(move || {
                count.fetch_add(1, Ordering::Relaxed);
            }),
        ) else {
            panic!("a live child can be watched twice");
        };
        drop(dropped);
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err(), "early");
        child.kill().unwrap();
        child.wait().unwrap();
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the notice");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(cancelled.load(Ordering::Relaxed), 0);
        drop(watch);
        // A reaped child has no pidfd to give.
        assert!(matches!(process(who, Arc::new(|| ())), Watched::Already));
    }
}
