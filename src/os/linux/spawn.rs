//! Starting a process that inherits some of our descriptors (the harness's rings): every
//! descriptor ringport makes is close-on-exec, so the child's copies are made inheritable
//! between its fork and its exec, and nowhere else.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use crate::error::{Error, Result};

/// Spawns `command` with `fds` open in the child under the same numbers (they stay
/// close-on-exec here). The caller tells the child their numbers (an argument or the
/// environment).
///
/// # Errors
/// [`Error::Os`] if the process cannot be started.
pub(crate) fn spawn_inheriting(command: &mut Command, fds: &[BorrowedFd<'_>]) -> Result<Child> {
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: it calls fcntl alone, on descriptors the parent keeps open (borrowed
    // for the whole call), and allocates nothing (`raw` was built before the fork).
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
    command.spawn().map_err(|e| Error::Os {
        op: "start the target",
        source: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })
}

/// The descriptors taken with [`adopt_inherited`] so far: each may be taken once, or two owners
/// would close it twice.
static ADOPTED: std::sync::Mutex<Vec<RawFd>> = std::sync::Mutex::new(Vec::new());

/// Takes ownership of descriptor `fd`, inherited from the process that started us (its number
/// came from it, in our environment).
///
/// # Errors
/// [`Error::Protocol`] if `fd` is not open here, or was taken already.
pub(crate) fn adopt_inherited(fd: RawFd) -> Result<std::os::fd::OwnedFd> {
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
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}
