//! A child process that inherits some of our descriptors (the harness's target), and the other
//! end: taking over the descriptors a parent passed down. Every descriptor ringport makes is
//! close-on-exec; the child's copies are made inheritable between its fork and its exec, and
//! nowhere else. And the fork server's two ends: [`ForkServer`] (the driver's) and
//! [`serve_forks`] (the target's). The same under the model, which never runs it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use super::{io_error, os_error};
use crate::error::{Error, Result};

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
            .map_err(|e| io_error("start the target", &e))
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
            .map_err(|e| io_error("wait for the target", &e))
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

/// The fork server's requests and answers are one 4-byte word each, little-endian: the driver
/// asks for a target ([`FORK`]), the server answers with its pid, then with its wait status once
/// it has ended (the child is left a zombie until the next request, so that its pid cannot be
/// reused while the driver may still kill it).
const FORK: u32 = 0x6b72_6f66;

/// The driver's end of a fork server: a target process that initialised itself once and forks a
/// fresh copy of that state for each target the driver needs.
#[derive(Debug)]
pub(crate) struct ForkServer {
    process: ChildProcess,
    socket: OwnedFd,
    /// The target it forked last, until its status has been read.
    target: Option<Pid>,
    /// That target's status, once read.
    status: Option<ExitStatus>,
}

impl ForkServer {
    /// Starts `command` as a fork server: `fds` and the server's end of a socket are inherited;
    /// `socket_env` is set to the socket's descriptor number.
    ///
    /// # Errors
    /// [`Error::Os`] if the socket cannot be made or the process cannot be started.
    pub(crate) fn spawn(
        command: &mut Command,
        fds: &[BorrowedFd<'_>],
        socket_env: &str,
    ) -> Result<ForkServer> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| os_error("socketpair", e))?;
        command.env(socket_env, theirs.as_raw_fd().to_string());
        let mut inherited = fds.to_vec();
        inherited.push(theirs.as_fd());
        let process = ChildProcess::spawn(command, &inherited)?;
        // Ours closes here: the server's death is the socket's end-of-file.
        drop(theirs);
        Ok(ForkServer {
            process,
            socket: ours,
            target: None,
            status: None,
        })
    }

    /// Asks for a new target and returns its pid. The target before it must have ended
    /// ([`target_status`](Self::target_status) gave its status).
    ///
    /// # Errors
    /// [`Error::Protocol`] if the server has died (or answers nonsense); [`Error::Timeout`] if it
    /// does not answer by `deadline`.
    pub(crate) fn fork_target(&mut self, deadline: Instant) -> Result<u32> {
        debug_assert!(self.target.is_none(), "the last target has not ended");
        send_word(self.socket.as_fd(), FORK)
            .map_err(|_| Error::Protocol("the fork server has died"))?;
        match recv_word(self.socket.as_fd(), Some(deadline))? {
            Some(pid) if pid > 0 && pid <= i32::MAX as u32 => {
                self.target = Some(Pid::from_raw(pid as i32));
                self.status = None;
                Ok(pid)
            }
            Some(_) => Err(Error::Protocol("the fork server answered with no pid")),
            None => Err(Error::Protocol(
                "the fork server died before it forked a target: does the target call \
                 ringport::harness::fork_server() before anything else?",
            )),
        }
    }

    /// The status of the target forked last, if it has ended by `deadline` (None: it still
    /// runs).
    ///
    /// # Errors
    /// [`Error::Protocol`] if the server has died.
    pub(crate) fn target_status(&mut self, deadline: Instant) -> Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        if self.target.is_none() {
            return Err(Error::Protocol("no target was forked"));
        }
        match recv_word(self.socket.as_fd(), Some(deadline)) {
            Ok(Some(raw)) => {
                let status = ExitStatus::from_raw(raw as i32);
                self.status = Some(status);
                self.target = None;
                Ok(Some(status))
            }
            Ok(None) => Err(Error::Protocol("the fork server has died")),
            Err(Error::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Kills the target forked last, if it has not ended (it is the server's child, and not
    /// reaped until the next request: its pid names it until then).
    pub(crate) fn kill_target(&mut self) {
        if let (Some(pid), None) = (self.target, self.status) {
            // An error means it has ended already.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Kills the target and the server, and reaps the server.
    pub(crate) fn stop(mut self) {
        self.kill_target();
        let _ = self.process.kill_and_reap();
    }
}

/// Sends one word.
fn send_word(fd: BorrowedFd<'_>, word: u32) -> Result<()> {
    let bytes = word.to_le_bytes();
    loop {
        match send(fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL) {
            Ok(4) => return Ok(()),
            Ok(_) => return Err(Error::Protocol("a fork server word was cut short")),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(os_error("send", e)),
        }
    }
}

/// Receives one word, waiting until `deadline` (None: for ever); None at end-of-file.
fn recv_word(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<Option<u32>> {
    let mut bytes = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) if Instant::now() >= deadline => return Err(Error::Timeout),
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(os_error("poll", e)),
            }
            if !fds[0].any().unwrap_or(false) {
                continue;
            }
        }
        match recv(fd.as_raw_fd(), &mut bytes[got..], MsgFlags::empty()) {
            // A peer that closed with our word unread resets the connection: it has gone all
            // the same.
            Ok(0) | Err(Errno::ECONNRESET) => return Ok(None),
            Ok(n) => got += n,
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => return Err(os_error("recv", e)),
        }
    }
    Ok(Some(u32::from_le_bytes(bytes)))
}

/// A wait status as `waitpid` gives it, from what `waitid` said.
fn raw_status(status: WaitStatus) -> u32 {
    match status {
        WaitStatus::Exited(_, code) => ((code & 0xff) as u32) << 8,
        WaitStatus::Signaled(_, signal, core) => signal as u32 | if core { 0x80 } else { 0 },
        // Stops and continues are not asked for; call anything else a SIGKILL.
        _ => libc::SIGKILL as u32,
    }
}

/// The target's end of a fork server, on the socket descriptor `socket` passed down: serves
/// fork requests until the driver goes (then exits the process), and returns in each forked
/// child, with the socket closed there.
///
/// # Safety
/// The process must have one thread (a fork copies only the calling thread: another's locks
/// would stay held in the child for ever).
///
/// # Errors
/// [`Error::Protocol`] if `socket` is not a descriptor we inherited; [`Error::Os`] if fork or
/// wait fails.
pub(crate) unsafe fn serve_forks(socket: RawFd) -> Result<()> {
    let socket = adopt_inherited(socket)?;
    let server = nix::unistd::getpid();
    let mut last: Option<Pid> = None;
    loop {
        match recv_word(socket.as_fd(), None) {
            Ok(Some(FORK)) => {}
            // The driver has gone (or speaks nonsense): so does the server.
            _ => {
                if let Some(pid) = last {
                    let _ = waitpid(pid, None);
                }
                std::process::exit(0);
            }
        }
        // The target before has ended (the driver asks only then): reap it now.
        if let Some(pid) = last.take() {
            let _ = waitpid(pid, None);
        }
        // SAFETY: the caller promises one thread; the child touches no lock taken elsewhere.
        match unsafe { fork() }.map_err(|e| os_error("fork", e))? {
            ForkResult::Child => {
                // The child is a target: it does not speak for the server, and dies with it (a
                // target whose server died would be nobody's child: the driver could not tell
                // its end, nor kill it safely by pid).
                drop(socket);
                // SAFETY: prctl(PR_SET_PDEATHSIG) sets a flag of this process; no memory.
                let set = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
                if set != 0 || nix::unistd::getppid() != server {
                    std::process::exit(1);
                }
                return Ok(());
            }
            ForkResult::Parent { child } => {
                last = Some(child);
                if send_word(socket.as_fd(), child.as_raw() as u32).is_err() {
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    std::process::exit(0);
                }
                // Wait for it to end, without reaping it (WNOWAIT): the driver may still kill it
                // by pid, which must not name another process meanwhile.
                let status = loop {
                    match waitid(Id::Pid(child), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                        Ok(status) => break raw_status(status),
                        Err(Errno::EINTR) => {}
                        Err(e) => return Err(os_error("waitid", e)),
                    }
                };
                if send_word(socket.as_fd(), status).is_err() {
                    let _ = waitpid(child, None);
                    std::process::exit(0);
                }
            }
        }
    }
}
