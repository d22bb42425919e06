//! Unix `SOCK_SEQPACKET` sockets: the control path of a channel.
//!
//! Sequenced packets keep message boundaries (one `sendmsg` is one `recvmsg`) and order, carry
//! descriptors (`SCM_RIGHTS`) and the peer's credentials (`SO_PEERCRED`), and report the peer's
//! death as end-of-file or `EPIPE` at once, whatever killed it.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    self, sockopt, AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType, UnixAddr,
};

use super::os_error;
use crate::error::{Error, Result, Role};
use crate::os::Credentials;

/// A socket address: a filesystem path, or an abstract name written with a leading '@'.
fn address(path: &str) -> Result<UnixAddr> {
    let invalid = |reason| Error::InvalidName { reason };
    if path.is_empty() || path == "@" {
        return Err(invalid("empty"));
    }
    match path.strip_prefix('@') {
        Some(name) => UnixAddr::new_abstract(name.as_bytes()),
        None => UnixAddr::new(path),
    }
    .map_err(|_| invalid("longer than a socket address holds (107 bytes)"))
}

fn seqpacket_socket() -> Result<OwnedFd> {
    socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| os_error("socket", e))
}

/// A listening socket bound to `path`.
pub(crate) fn listen(path: &str) -> Result<OwnedFd> {
    let addr = address(path)?;
    let fd = seqpacket_socket()?;
    socket::bind(fd.as_raw_fd(), &addr).map_err(|e| match e {
        Errno::EADDRINUSE => Error::AlreadyExists,
        e => os_error("bind", e),
    })?;
    // A path's socket file got the umask's mode: only its owner may connect (the peer's
    // credentials are checked too). Set before `listen`, so that no connection was accepted
    // under the wider mode.
    if !path.starts_with('@') {
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            path,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| os_error("chmod a listener's socket", e))?;
    }
    socket::listen(&fd, Backlog::new(128).expect("128 is a valid backlog"))
        .map_err(|e| os_error("listen", e))?;
    Ok(fd)
}

/// The next connection on a listening socket, waiting at most until `deadline`.
pub(crate) fn accept(listener: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<OwnedFd> {
    loop {
        if !wait_for(listener, PollFlags::POLLIN, deadline)? {
            return Err(Error::Timeout);
        }
        match socket::accept4(
            listener.as_raw_fd(),
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        ) {
            // SAFETY: accept4 returned a new descriptor that nothing else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            // Another thread took it, or the client gave up before we got to it.
            Err(Errno::EAGAIN | Errno::EINTR | Errno::ECONNABORTED) => {}
            Err(e) => return Err(os_error("accept", e)),
        }
    }
}

/// A connection to the listener at `path`, non-blocking (waits go through `poll`).
pub(crate) fn connect(path: &str) -> Result<OwnedFd> {
    let addr = address(path)?;
    let fd = seqpacket_socket()?;
    socket::connect(fd.as_raw_fd(), &addr).map_err(|e| match e {
        Errno::ENOENT | Errno::ECONNREFUSED => Error::NotFound,
        e => os_error("connect", e),
    })?;
    set_nonblocking(&fd)?;
    Ok(fd)
}

fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| os_error("F_GETFL", e))?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(|e| os_error("F_SETFL", e))?;
    Ok(())
}

/// The connected peer's credentials.
pub(crate) fn peer_credentials(fd: BorrowedFd<'_>) -> Result<Credentials> {
    let cred = socket::getsockopt(&fd, sockopt::PeerCredentials)
        .map_err(|e| os_error("SO_PEERCRED", e))?;
    Ok(Credentials {
        pid: cred.pid(),
        uid: cred.uid(),
        gid: cred.gid(),
    })
}

/// Sends one packet made of `parts`, with `passing` attached as `SCM_RIGHTS`, without blocking.
/// `Ok(false)`: the socket buffer is full. A peer that has gone is `PeerGone`; since we send
/// with `MSG_NOSIGNAL`, no SIGPIPE is raised.
pub(crate) fn try_send(
    fd: BorrowedFd<'_>,
    parts: &[IoSlice<'_>],
    passing: Option<BorrowedFd<'_>>,
) -> Result<bool> {
    let raw: [RawFd; 1] = [passing.map_or(-1, |f| f.as_raw_fd())];
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if passing.is_some() { &rights } else { &[] };
    let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
    loop {
        match socket::sendmsg::<()>(fd.as_raw_fd(), parts, cmsgs, flags, None) {
            Ok(_) => return Ok(true),
            Err(Errno::EAGAIN) => return Ok(false),
            Err(Errno::EINTR) => {}
            Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) => {
                return Err(Error::PeerGone(Role::Consumer))
            }
            Err(e) => return Err(os_error("sendmsg", e)),
        }
    }
}

/// Sends one packet (as [`try_send`]), waiting in `poll` while the socket buffer is full, at
/// most until `deadline` ([`Error::Timeout`]).
pub(crate) fn send(
    fd: BorrowedFd<'_>,
    parts: &[IoSlice<'_>],
    passing: Option<BorrowedFd<'_>>,
    deadline: Option<Instant>,
) -> Result<()> {
    while !try_send(fd, parts, passing)? {
        if !wait_for(fd, PollFlags::POLLOUT, deadline)? {
            return Err(Error::Timeout);
        }
    }
    Ok(())
}

/// Receives one packet (as [`try_recv`]), waiting in `poll` for one, at most until `deadline`
/// ([`Error::Timeout`]).
pub(crate) fn recv(
    fd: BorrowedFd<'_>,
    bufs: &mut [IoSliceMut<'_>],
    deadline: Option<Instant>,
) -> Result<Packet> {
    loop {
        match try_recv(fd, bufs)? {
            Some(packet) => return Ok(packet),
            None => {
                if !wait_for(fd, PollFlags::POLLIN, deadline)? {
                    return Err(Error::Timeout);
                }
            }
        }
    }
}

/// One packet received.
#[derive(Debug)]
pub(crate) enum Packet {
    /// `len` bytes across the buffers given, and the descriptor that came with them, if any.
    Data { len: usize, passed: Option<OwnedFd> },
    /// The peer closed its end (or died) and every packet it sent has been read.
    Closed,
}

/// Receives one packet into `bufs` without blocking (None: nothing waiting). A packet longer
/// than the buffers is a protocol error (the peer ignored the agreed packet size); so are
/// descriptors beyond one.
fn try_recv(fd: BorrowedFd<'_>, bufs: &mut [IoSliceMut<'_>]) -> Result<Option<Packet>> {
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC;
    let msg = loop {
        match socket::recvmsg::<()>(fd.as_raw_fd(), bufs, Some(&mut space), flags) {
            Ok(msg) => break msg,
            Err(Errno::EAGAIN) => return Ok(None),
            // ECONNRESET: the peer closed with our packets unread. The error is reported once,
            // ahead of what the peer sent before closing, which the next call returns.
            Err(Errno::EINTR | Errno::ECONNRESET) => {}
            Err(e) => return Err(os_error("recvmsg", e)),
        }
    };
    let mut passed = Vec::new();
    for cmsg in msg.cmsgs().map_err(|e| os_error("recvmsg", e))? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: the kernel installed these descriptors for us; nothing else owns them.
            passed.extend(fds.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
        }
    }
    let len = msg.bytes;
    if msg
        .flags
        .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC)
        || passed.len() > 1
    {
        return Err(Error::Protocol(
            "packet larger than agreed, or extra descriptors",
        ));
    }
    if len == 0 && passed.is_empty() {
        return Ok(Some(Packet::Closed));
    }
    Ok(Some(Packet::Data {
        len,
        passed: passed.pop(),
    }))
}

/// Stops our sending direction: the peer's receives see end-of-file once they have read what
/// we sent, while we can still receive.
pub(crate) fn shutdown_send(fd: BorrowedFd<'_>) {
    let _ = socket::shutdown(fd.as_raw_fd(), socket::Shutdown::Write);
}

/// Whether the peer has hung up (or shut its sending side), without waiting.
pub(crate) fn peer_hung_up(fd: BorrowedFd<'_>) -> bool {
    // libc rather than nix: nix knows no POLLRDHUP (the peer shut its sending side, which is
    // what a dropped channel sender does), and its revents() discards flags it does not know.
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
    ready > 0 && pfd.revents & (libc::POLLHUP | libc::POLLRDHUP | libc::POLLERR) != 0
}

/// Waits until `fd` is ready for `events` (or hung up: the next call then reports it), or
/// until the deadline: `Ok(false)` on timeout.
fn wait_for(fd: BorrowedFd<'_>, events: PollFlags, deadline: Option<Instant>) -> Result<bool> {
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    PollTimeout::ZERO
                } else {
                    // Round up: a wait of less than a millisecond must still wait.
                    let ms = left.as_nanos().div_ceil(1_000_000);
                    PollTimeout::try_from(ms.min(i32::MAX as u128) as i32)
                        .unwrap_or(PollTimeout::MAX)
                }
            }
        };
        let mut fds = [PollFd::new(fd.as_fd(), events)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) if deadline.is_some_and(|d| Instant::now() >= d) => return Ok(false),
            Ok(0) | Err(Errno::EINTR) => {}
            Ok(_) => return Ok(true),
            Err(e) => return Err(os_error("poll", e)),
        }
    }
}

/// A connected pair (for in-process channels and tests).
pub(crate) fn pair() -> Result<(OwnedFd, OwnedFd)> {
    let (a, b) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
    )
    .map_err(|e| os_error("socketpair", e))?;
    Ok((a, b))
}
