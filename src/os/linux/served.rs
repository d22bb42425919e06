//! Rings served by name: the creator keeps the ring in a sealed memfd and answers, on an
//! abstract Unix socket named after the ring, each process that asks for it with the
//! descriptor (`SCM_RIGHTS`). Nothing is in a file system: the name goes with the creator,
//! however it dies, and the sealed memfd cannot be truncated by anyone. The server is a thread
//! asleep in `poll` between requests; it serves only the creator's uid (or, when the ring is
//! shared with a group, that group's members), and an opener takes the descriptor only from a
//! server of its own uid (or one it trusts).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::eventfd::{EfdFlags, EventFd};

use super::seqpacket::{self, Packet};
use crate::error::{Error, Result};
use crate::options::Access;

/// The abstract socket a ring named `name` is served on.
fn socket_name(name: &str) -> Result<String> {
    if name.is_empty() || name.contains('\0') {
        return Err(Error::InvalidName {
            reason: "a served ring's name is not empty and holds no NUL",
        });
    }
    Ok(format!("@{PREFIX}{name}"))
}

/// What every served ring's socket name starts with (after the '@' of abstract names).
const PREFIX: &str = "ringport-ring/";

/// The one packet a server sends, with the descriptor.
const GREETING: &[u8] = b"ringport served ring 1";

/// How long an opener waits for the server's answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// A ring being served; dropping it stops the server (the name goes at once).
pub(crate) struct Server {
    stop: EventFd,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serves `memfd` under `name`, to our uid and, if `group`, that group's members.
    ///
    /// # Errors
    /// [`Error::InvalidName`]; [`Error::AlreadyExists`] if a ring of that name is served
    /// already; [`Error::Os`].
    pub(crate) fn start(name: &str, memfd: OwnedFd, group: Option<u32>) -> Result<Server> {
        let listener = seqpacket::listen(&socket_name(name)?)?;
        let stop = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC)
            .map_err(|e| super::os_error("eventfd", e))?;
        let stop_fd = stop
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| crate::os::io_error("dup an eventfd", &e))?;
        let thread = std::thread::Builder::new()
            .name(format!("ringport-serve-{name}"))
            .spawn(move || serve(&listener, &stop_fd, &memfd, group))
            .map_err(|e| crate::os::io_error("spawn a ring's server thread", &e))?;
        Ok(Server {
            stop,
            thread: Some(thread),
        })
    }

    /// Leaves the server running until the process exits (a ring kept after its creator's
    /// endpoint goes).
    pub(crate) fn keep(mut self) {
        drop(self.thread.take());
        std::mem::forget(self);
    }
}

impl Server {
    /// Stops answering: the name goes at once (the thread ends when dropped).
    pub(crate) fn stop(&self) {
        let _ = self.stop.write(1);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The server's loop: asleep in `poll` on the listener and the stop event, answering each
/// connection that may have the ring with its descriptor, until stopped.
fn serve(listener: &OwnedFd, stop: &OwnedFd, memfd: &OwnedFd, group: Option<u32>) {
    let me = nix::unistd::geteuid().as_raw();
    loop {
        let mut fds = [
            libc::pollfd {
                fd: listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds, for the duration of the call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if ready < 0 {
            if nix::errno::Errno::last() == nix::errno::Errno::EINTR {
                continue;
            }
            return;
        }
        if fds[1].revents != 0 {
            return;
        }
        let Ok(connection) = seqpacket::accept(listener.as_fd(), Some(Instant::now())) else {
            continue;
        };
        let Ok(peer) = seqpacket::peer_credentials(connection.as_fd()) else {
            continue;
        };
        if peer.uid == me || group.is_some_and(|g| in_group(&peer, g)) {
            // A client that does not read its answer is its own loss: bounded, and closed.
            let _ = seqpacket::send(
                connection.as_fd(),
                &[IoSlice::new(GREETING)],
                Some(memfd.as_fd()),
                Some(Instant::now() + Duration::from_millis(100)),
            );
        }
    }
}

/// Whether the process behind `peer` is in group `gid`: its effective group, or one of its
/// supplementary groups (from `/proc/<pid>/status`; the connection keeps the pid from being
/// reused while we look).
fn in_group(peer: &crate::os::Credentials, gid: u32) -> bool {
    if peer.gid == gid {
        return true;
    }
    let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", peer.pid)) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .is_some_and(|groups| {
            groups
                .split_whitespace()
                .any(|g| g.parse::<u32>() == Ok(gid))
        })
}

/// Asks the server of the ring `name` for its descriptor. The server must run as our uid, or
/// as one `access` trusts.
///
/// # Errors
/// [`Error::NotFound`] if no ring of that name is served; [`Error::NotOwner`] if its server
/// runs as another uid; [`Error::Refused`] if it does not serve us; [`Error::Timeout`];
/// [`Error::Protocol`] if what answered is no ring's server.
pub(crate) fn fetch(name: &str, access: &Access) -> Result<(OwnedFd, crate::os::Credentials)> {
    let connection = seqpacket::connect(&socket_name(name)?)?;
    let server = seqpacket::peer_credentials(connection.as_fd())?;
    if server.uid != nix::unistd::geteuid().as_raw() && !access.trusted_owners.contains(&server.uid)
    {
        return Err(Error::NotOwner { owner: server.uid });
    }
    let mut greeting = [0u8; 64];
    let packet = seqpacket::recv(
        connection.as_fd(),
        &mut [IoSliceMut::new(&mut greeting)],
        Some(Instant::now() + ANSWER_WITHIN),
    )?;
    match packet {
        Packet::Data {
            len,
            passed: Some(fd),
        } if greeting[..len] == *GREETING => Ok((fd, server)),
        Packet::Closed => Err(Error::Refused),
        Packet::Data { .. } => Err(Error::Protocol("the ring's server sent no ring")),
    }
}

/// The names of the rings served on this machine (in our network namespace), from
/// `/proc/net/unix`'s listening sockets.
pub(crate) fn names() -> Vec<String> {
    let Ok(text) = std::fs::read_to_string("/proc/net/unix") else {
        return Vec::new();
    };
    let mut names: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 is a listener.
            let listening = fields.get(3).is_some_and(|f| f.ends_with("10000"));
            let path = fields.get(7)?;
            let name = path.strip_prefix('@')?.strip_prefix(PREFIX)?;
            listening.then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}
