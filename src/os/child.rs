//! A child process that inherits some of our descriptors (the harness's target), and the other
//! end: taking over the descriptors a parent passed down. Every descriptor ringport makes is
//! close-on-exec; the child's copies are made inheritable between its fork and its exec, and
//! nowhere else. The same under the model, which never runs it.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A failed process operation `op`, as the crate's error.
fn os_error(op: &'static str, e: &std::io::Error) -> Error {
    Error::Os {
        op,
        source: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// A process we started, until it is reaped.
#[derive(Debug)]
pub(crate) struct ChildProcess(Child);

impl ChildProcess {
    /// Starts `command` with `fds` open in the child under the same numbers (they stay
    /// close-on-exec here). The caller tells the child their numbers (an argument or the
    /// environment).
    ///
    /// # Errors
    /// [`Error::Os`] if the process cannot be started.
    pub(crate) fn spawn(command: &mut Command, fds: &[BorrowedFd<'_>]) -> Result<ChildProcess> {
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        // SAFETY: the closure runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed: it calls fcntl alone, on descriptors the parent
        // keeps open (borrowed for the whole call), and allocates nothing (`raw` was built
        // before the fork).
        unsafe {
            command.pre_exec(move || {
                for &fd in &raw {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        command
            .spawn()
            .map(ChildProcess)
            .map_err(|e| os_error("start the target", &e))
    }

    pub(crate) fn id(&self) -> u32 {
        self.0.id()
    }

    /// Whether it has exited (and can be reaped at once).
    pub(crate) fn has_exited(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(Some(_)))
    }

    /// Waits at most `grace` for it to exit by itself; returns whether it did.
    pub(crate) fn exits_within(&mut self, grace: Duration) -> bool {
        let until = Instant::now() + grace;
        loop {
            if self.has_exited() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Sends it SIGKILL (nothing, if it has exited already).
    pub(crate) fn kill(&mut self) {
        // An error means it is gone already.
        let _ = self.0.kill();
    }

    /// Kills it if it still runs, and reaps it: how it ended.
    ///
    /// # Errors
    /// [`Error::Os`] if it cannot be waited for.
    pub(crate) fn kill_and_reap(mut self) -> Result<ExitStatus> {
        self.kill();
        self.0
            .wait()
            .map_err(|e| os_error("wait for the target", &e))
    }
}

/// The descriptors taken with [`adopt_inherited`] so far: each may be taken once, or two owners
/// would close it twice.
static ADOPTED: std::sync::Mutex<Vec<RawFd>> = std::sync::Mutex::new(Vec::new());

/// Takes ownership of descriptor `fd`, inherited from the process that started us (its number
/// came from it, in our environment), and makes it close-on-exec again.
///
/// # Errors
/// [`Error::Protocol`] if `fd` is not open here, or was taken already.
pub(crate) fn adopt_inherited(fd: RawFd) -> Result<OwnedFd> {
    let mut adopted = ADOPTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if fd < 0 || adopted.contains(&fd) {
        return Err(Error::Protocol(
            "an inherited descriptor is invalid or was taken already",
        ));
    }
    // SAFETY: fcntl(F_GETFD) reads a flag of the descriptor table and touches no memory.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(Error::Protocol(
            "an inherited descriptor is not open: was this process started by a ringport harness?",
        ));
    }
    // Close-on-exec again, as every descriptor ringport makes: the processes this one starts do
    // not inherit the rings.
    // SAFETY: as above, setting the flag.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(Error::Protocol(
            "an inherited descriptor cannot be made close-on-exec",
        ));
    }
    adopted.push(fd);
    // SAFETY: `fd` is open (checked) and nothing in this process owns it: it was inherited (the
    // caller's word) and is taken once (the list above).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
