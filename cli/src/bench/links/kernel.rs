//! The kernel's message paths: pipes, Unix stream and seqpacket sockets, TCP over loopback,
//! POSIX message queues. Every message is copied twice (into the kernel and out of it).
//!
//! Busy: the descriptors are non-blocking and a call that would block is retried at once.
//! Blocking: plain blocking calls. Socket and pipe buffers keep their default sizes (what a
//! program gets), except a seqpacket socket's send buffer, which must hold a whole message.

use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT};
use nix::sys::socket::{setsockopt, socketpair, sockopt, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode as FileMode;

use super::{look_at, Handoff, Patience, PeerEnd};
use crate::bench::plan::{Mechanism, Mode};
use crate::bench::BoxError;
use ringport_measure::fds::adopt_inherited;

/// How a read relates to a message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// A byte stream: a message may take several reads and writes.
    Stream,
    /// One write is one message and one read returns it whole.
    Packet,
}

/// Both directions over descriptors: a pipe each way, or one socket.
pub struct FdLink {
    tx: OwnedFd,
    rx: OwnedFd,
    framing: Framing,
    mode: Mode,
    buf: Vec<u8>,
}

fn set_nonblocking(fd: BorrowedFd<'_>, mode: Mode) -> Result<(), BoxError> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    let flags = match mode {
        Mode::Spin => flags | OFlag::O_NONBLOCK,
        Mode::Block => flags & !OFlag::O_NONBLOCK,
    };
    fcntl(fd, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// Lets a seqpacket socket send a whole message of `size` bytes (above the default limit this
/// takes CAP_NET_ADMIN's SO_SNDBUFFORCE; without it the message is refused with EMSGSIZE).
fn room_for_packets(fd: BorrowedFd<'_>, size: usize) {
    let want = 2 * size + (64 << 10);
    if setsockopt(&fd, sockopt::SndBufForce, &want).is_err() {
        let _ = setsockopt(&fd, sockopt::SndBuf, &want);
    }
}

impl FdLink {
    fn new(
        tx: OwnedFd,
        rx: OwnedFd,
        framing: Framing,
        mode: Mode,
        size: usize,
    ) -> Result<FdLink, BoxError> {
        set_nonblocking(tx.as_fd(), mode)?;
        set_nonblocking(rx.as_fd(), mode)?;
        Ok(FdLink {
            tx,
            rx,
            framing,
            mode,
            buf: vec![0; size],
        })
    }

    pub fn create(
        mechanism: Mechanism,
        mode: Mode,
        size: usize,
        handoff: &mut Handoff,
    ) -> Result<FdLink, BoxError> {
        match mechanism {
            Mechanism::Pipe => {
                let (ping_rx, ping_tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
                let (pong_rx, pong_tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
                handoff.pass_fd(ping_rx.as_fd())?;
                handoff.pass_fd(pong_tx.as_fd())?;
                FdLink::new(ping_tx, pong_rx, Framing::Stream, mode, size)
            }
            Mechanism::UnixStream | Mechanism::UnixSeqpacket => {
                let (kind, framing) = if mechanism == Mechanism::UnixStream {
                    (SockType::Stream, Framing::Stream)
                } else {
                    (SockType::SeqPacket, Framing::Packet)
                };
                let (ours, theirs) =
                    socketpair(AddressFamily::Unix, kind, None, SockFlag::SOCK_CLOEXEC)?;
                if framing == Framing::Packet {
                    room_for_packets(ours.as_fd(), size);
                    room_for_packets(theirs.as_fd(), size);
                }
                handoff.pass_fd(theirs.as_fd())?;
                FdLink::new(ours.try_clone()?, ours, framing, mode, size)
            }
            _ => unreachable!("{mechanism:?} is not carried over inherited descriptors"),
        }
    }

    pub fn open(
        mechanism: Mechanism,
        mode: Mode,
        size: usize,
        end: &PeerEnd,
    ) -> Result<FdLink, BoxError> {
        match mechanism {
            Mechanism::Pipe => {
                let [ping_rx, pong_tx] = end.fds[..] else {
                    return Err("pipe: expected two descriptors".into());
                };
                FdLink::new(
                    adopt_inherited(pong_tx)?,
                    adopt_inherited(ping_rx)?,
                    Framing::Stream,
                    mode,
                    size,
                )
            }
            Mechanism::UnixStream | Mechanism::UnixSeqpacket => {
                let [socket] = end.fds[..] else {
                    return Err("unix socket: expected one descriptor".into());
                };
                let socket = adopt_inherited(socket)?;
                let framing = if mechanism == Mechanism::UnixStream {
                    Framing::Stream
                } else {
                    Framing::Packet
                };
                FdLink::new(socket.try_clone()?, socket, framing, mode, size)
            }
            Mechanism::Tcp => {
                let port = end.port.ok_or("tcp: no port given")?;
                let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
                stream.set_nodelay(true)?;
                let socket = OwnedFd::from(stream);
                FdLink::new(socket.try_clone()?, socket, Framing::Stream, mode, size)
            }
            _ => unreachable!("{mechanism:?} is not carried over descriptors"),
        }
    }
}

/// Makes `call` until it neither would block (the busy form: descriptors are non-blocking) nor
/// was interrupted.
#[inline]
fn retry<T>(mode: Mode, mut call: impl FnMut() -> nix::Result<T>) -> Result<T, BoxError> {
    let mut patience = Patience::new();
    loop {
        match call() {
            Ok(done) => return Ok(done),
            Err(Errno::EAGAIN) if mode == Mode::Spin => patience.spin()?,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(io::Error::from(e).into()),
        }
    }
}

impl super::Link for FdLink {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<(), BoxError> {
        let mut done = 0;
        while done < msg.len() {
            let n = retry(self.mode, || nix::unistd::write(&self.tx, &msg[done..]))?;
            if self.framing == Framing::Packet && n != msg.len() {
                return Err(format!("a packet of {} bytes went as {n}", msg.len()).into());
            }
            done += n;
        }
        Ok(())
    }

    #[inline]
    fn recv(&mut self) -> Result<u64, BoxError> {
        let size = self.buf.len();
        let mut got = 0;
        while got < size {
            let (rx, buf) = (self.rx.as_fd(), &mut self.buf[got..]);
            let n = retry(self.mode, || nix::unistd::read(rx, buf))?;
            if n == 0 {
                return Err("the peer closed its end".into());
            }
            if self.framing == Framing::Packet && n != size {
                return Err(format!("a packet of {n} bytes, expected {size}").into());
            }
            got += n;
        }
        look_at(&self.buf)
    }
}

/// TCP's listening socket, until the peer connects.
pub struct TcpListening {
    listener: TcpListener,
    mode: Mode,
    size: usize,
}

impl TcpListening {
    pub fn bind(mode: Mode, size: usize, handoff: &mut Handoff) -> Result<TcpListening, BoxError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        handoff.peer.port = Some(listener.local_addr()?.port());
        Ok(TcpListening {
            listener,
            mode,
            size,
        })
    }

    /// Accepts the peer's connection (within ten seconds).
    pub fn accept(self) -> Result<FdLink, BoxError> {
        self.listener.set_nonblocking(true)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(e.into()),
            }
        };
        stream.set_nodelay(true)?;
        let socket = OwnedFd::from(stream);
        FdLink::new(
            socket.try_clone()?,
            socket,
            Framing::Stream,
            self.mode,
            self.size,
        )
    }
}

/// A POSIX message queue descriptor, closed when dropped.
struct Queue(Option<MqdT>);

impl Queue {
    fn get(&self) -> &MqdT {
        self.0.as_ref().expect("open until dropped")
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        if let Some(q) = self.0.take() {
            let _ = nix::mqueue::mq_close(q);
        }
    }
}

/// Messages a queue holds (the kernel's default `msg_max`).
const QUEUE_DEPTH: i64 = 10;

/// Two POSIX message queues.
pub struct MqLink {
    tx: Queue,
    rx: Queue,
    mode: Mode,
    buf: Vec<u8>,
    /// The queues' names while the peer may still need them (the bench's end only).
    names: Vec<String>,
}

impl MqLink {
    fn flags(mode: Mode) -> MQ_OFlag {
        match mode {
            Mode::Spin => MQ_OFlag::O_RDWR | MQ_OFlag::O_NONBLOCK,
            Mode::Block => MQ_OFlag::O_RDWR,
        }
    }

    pub fn create(mode: Mode, size: usize, handoff: &mut Handoff) -> Result<MqLink, BoxError> {
        // Queues above the default limits (8 KiB messages, 800 KiB a user) need a higher
        // RLIMIT_MSGQUEUE and CAP_SYS_RESOURCE; ask, and let mq_open say no if it must.
        let need = 4 * (QUEUE_DEPTH as u64) * (size as u64 + 64);
        if let Ok((soft, hard)) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MSGQUEUE)
        {
            if soft < need {
                let _ = nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_MSGQUEUE,
                    need,
                    hard.max(need),
                );
            }
        }
        let stem = format!("/{}", crate::bench::unique_name("mq"));
        let names = vec![format!("{stem}-ping"), format!("{stem}-pong")];
        let attr = MqAttr::new(0, QUEUE_DEPTH, size as i64, 0);
        let mut queues = Vec::new();
        for name in &names {
            let queue = nix::mqueue::mq_open(
                name.as_str(),
                Self::flags(mode) | MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL,
                FileMode::S_IRUSR | FileMode::S_IWUSR,
                Some(&attr),
            );
            match queue {
                Ok(q) => queues.push(Queue(Some(q))),
                Err(e) => {
                    forget(&names);
                    let limit = std::fs::read_to_string("/proc/sys/fs/mqueue/msgsize_max")
                        .unwrap_or_default();
                    let limit = limit.trim();
                    return Err(match e {
                        Errno::EINVAL if limit.parse::<usize>().is_ok_and(|l| l < size) => format!(
                            "message queues here take messages up to {limit} B (fs.mqueue.msgsize_max)"
                        ),
                        Errno::EMFILE => format!("queues of {size}-byte messages exceed RLIMIT_MSGQUEUE"),
                        e => format!("mq_open of a queue of {size}-byte messages: {e}"),
                    }
                    .into());
                }
            }
        }
        handoff.peer.names.clone_from(&names);
        let rx = queues.pop().expect("two queues");
        let tx = queues.pop().expect("two queues");
        Ok(MqLink {
            tx,
            rx,
            mode,
            buf: vec![0; size],
            names,
        })
    }

    pub fn open(mode: Mode, size: usize, end: &PeerEnd) -> Result<MqLink, BoxError> {
        let [ping, pong] = &end.names[..] else {
            return Err("mq: expected two queue names".into());
        };
        let open = |name: &str| -> Result<Queue, BoxError> {
            Ok(Queue(Some(nix::mqueue::mq_open(
                name,
                Self::flags(mode),
                FileMode::empty(),
                None,
            )?)))
        };
        Ok(MqLink {
            rx: open(ping)?,
            tx: open(pong)?,
            mode,
            buf: vec![0; size],
            names: Vec::new(),
        })
    }

    /// Unlinks the names once the peer has opened the queues.
    pub fn forget_names(&mut self) {
        forget(&self.names);
        self.names.clear();
    }
}

fn forget(names: &[String]) {
    for name in names {
        let _ = nix::mqueue::mq_unlink(name.as_str());
    }
}

impl Drop for MqLink {
    fn drop(&mut self) {
        self.forget_names();
    }
}

impl super::Link for MqLink {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<(), BoxError> {
        retry(self.mode, || nix::mqueue::mq_send(self.tx.get(), msg, 0))
    }

    #[inline]
    fn recv(&mut self) -> Result<u64, BoxError> {
        let mut priority = 0;
        let (rx, buf) = (self.rx.get(), &mut self.buf);
        let n = retry(self.mode, || {
            nix::mqueue::mq_receive(rx, buf, &mut priority)
        })?;
        if n != self.buf.len() {
            return Err(format!("a message of {n} bytes, expected {}", self.buf.len()).into());
        }
        look_at(&self.buf)
    }
}
