//! Process identity and liveness: is the process that took a role still there?
//!
//! An identity is the pid plus the process's start time (clock ticks since boot, from
//! `/proc/<pid>/stat`) plus the inode of its pid namespace. Liveness is checked through a pidfd (Linux 5.3+), which refers to one process for
//! good, after confirming that the pid still names the process that took the role.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::os::{Liveness, ProcessIdentity};

/// This process. Cached: reading it costs two files in /proc (some microseconds), and a channel
/// attaches to rings while messages wait. The cache is keyed by pid, so a forked child reads
/// its own.
pub(super) fn current() -> ProcessIdentity {
    static CACHE: std::sync::Mutex<Option<ProcessIdentity>> = std::sync::Mutex::new(None);
    let pid = std::process::id();
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match *cache {
        Some(me) if me.pid == pid => me,
        _ => {
            let me = ProcessIdentity {
                pid,
                start_time: start_time(pid).unwrap_or(0),
                pid_ns: pid_namespace_cached(),
            };
            *cache = Some(me);
            me
        }
    }
}

/// The start time of `pid`, or None if there is no such process (or it is a zombie: dead).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2, the command name, is in parentheses and may itself hold spaces and ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // After the state (field 3), starttime is field 22: 18 fields further on.
    fields.nth(18)?.parse().ok()
}

fn pid_namespace() -> u64 {
    std::fs::metadata("/proc/self/ns/pid")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap_or(0)
}

/// Whether the process `pid` (in our pid namespace) is certainly dead (see `Kernel::pid_is_dead`).
pub(super) fn pid_is_dead(pid: u32) -> bool {
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the pid exists.
    if unsafe { libc::kill(raw, 0) } != 0 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    // It exists; a zombie has exited but not been reaped.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(_) => false,
    }
}

/// Watches one process; caches its pidfd between checks.
#[derive(Debug, Default)]
pub(crate) struct ProcessWatch {
    watched: Option<(ProcessIdentity, Option<OwnedFd>)>,
}

impl ProcessWatch {
    /// Whether the process with this identity is still alive.
    pub(super) fn check(&mut self, who: ProcessIdentity) -> Liveness {
        if who.pid_ns != 0 && who.pid_ns != pid_namespace_cached() {
            return Liveness::Unknown;
        }
        if self.watched.as_ref().map(|(w, _)| *w) != Some(who) {
            self.watched = Some((who, open_pidfd(who)));
        }
        match &self.watched {
            Some((_, Some(fd))) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
                    // A pidfd becomes readable when its process exits.
                    Ok(n) if n > 0 => Liveness::Dead,
                    _ => Liveness::Alive,
                }
            }
            // No pidfd: either the process was gone at open, or pidfds are unsupported; /proc tells.
            _ => match start_time(who.pid) {
                Some(t) if who.start_time == 0 || t == who.start_time => Liveness::Alive,
                _ => Liveness::Dead,
            },
        }
    }
}

/// What a watch on a process can be given.
pub(super) enum Watchable {
    /// A pidfd of the process (it becomes readable when the process exits).
    Pidfd(OwnedFd),
    /// The process is dead already.
    Dead,
    /// It cannot be watched here: another pid namespace, or no pidfds.
    No,
}

/// A pidfd to watch the process `who` by.
pub(super) fn watchable(who: ProcessIdentity) -> Watchable {
    if who.pid_ns != 0 && who.pid_ns != pid_namespace_cached() {
        return Watchable::No;
    }
    match open_pidfd(who) {
        Some(fd) => Watchable::Pidfd(fd),
        None => match start_time(who.pid) {
            // Alive, yet no pidfd: the kernel has none to give.
            Some(t) if who.start_time == 0 || t == who.start_time => Watchable::No,
            _ => Watchable::Dead,
        },
    }
}

/// The inode of this process's pid namespace (0: unknown), read once.
fn pid_namespace_cached() -> u64 {
    static NS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *NS.get_or_init(pid_namespace)
}

/// A pidfd for `who`, or None if the process is gone or pidfds are unsupported.
fn open_pidfd(who: ProcessIdentity) -> Option<OwnedFd> {
    let pid = libc::pid_t::try_from(who.pid).ok()?;
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    if raw < 0 {
        return None;
    }
    // SAFETY: pidfd_open returned a new file descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    // The pid may have been recycled between the death of `who` and pidfd_open: the start time
    // read after opening tells. If it differs, the fd is of a stranger and `who` is dead.
    match start_time(who.pid) {
        Some(t) if who.start_time == 0 || t == who.start_time => Some(fd),
        _ => {
            drop(fd);
            None
        }
    }
}
