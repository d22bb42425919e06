//! Descriptors handed to a child process across `exec`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A file descriptor that a child process inherits: a duplicate without close-on-exec.
///
/// # Errors
/// If `fcntl(F_DUPFD)` fails.
pub fn inheritable(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD duplicates a descriptor we borrow; the new one is ours alone.
    let raw = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD, 3) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` was just returned by F_DUPFD and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Takes ownership of a descriptor number that this process inherited from its parent.
///
/// # Errors
/// If `raw` is not an open descriptor above the standard three.
pub fn adopt_inherited(raw: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags; it tells whether `raw` is open.
    if raw < 3 || unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {raw} was not inherited"),
        ));
    }
    // SAFETY: the parent passed this number to us alone; nothing in this process owns it yet.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // Ours now: do not pass it on to anything this process starts.
    nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(io::Error::from)?;
    Ok(fd)
}
