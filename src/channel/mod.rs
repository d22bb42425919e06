//! Channels: copy small, map large (the LPC-style fallback).
//!
//! A [`Channel`] joins two processes over a Unix `SOCK_SEQPACKET` socket, as Windows LPC joined
//! a client to a port. The socket carries the handshake (protocol version, the peer's
//! credentials), small and occasional messages, and the news that the peer has gone. A steady
//! stream or a large message moves the sending side onto an SPSC ring in a sealed memfd that it
//! creates on first need and passes over the socket: no name in `/dev/shm`, nothing left behind
//! after a crash. Each direction has its own ring and moves on its own.
//!
//! Why not always the ring? Mapping a segment costs more than sending the same bytes through the
//! socket once (here a single message on a fresh channel is faster through the socket up to
//! 4 MiB), so a ring pays off only when it is reused; and a socket wakes its reader in `poll`, with no
//! liveness checks, and reports a dead peer at once. [`Policy::Auto`] follows measurements: see
//! [`ChannelOptions`] for the thresholds and where they come from.
//!
//! Order is kept across path changes: the sender leaves a marker as the last thing on the old
//! path and the receiver follows it (see `wire`). A message larger than a packet or a frame is
//! sent in chunks and reassembled, or handed over chunk by chunk
//! ([`ChannelReceiver::recv_chunks`]).
//!
//! ```
//! # fn main() -> Result<(), ringport::Error> {
//! use ringport::channel::Channel;
//!
//! let (mut a, mut b) = Channel::pair()?; // in one process; across processes: bind and connect
//! a.send(b"ping")?;
//! let mut buf = Vec::new();
//! b.recv(&mut buf)?;
//! assert_eq!(buf, b"ping");
//! # Ok(()) }
//! ```

mod policy;
mod receiver;
mod sender;
mod wire;

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::os::seqpacket::Credentials;
pub use policy::Policy;
use policy::{Chooser, Thresholds};
pub use receiver::{ChannelReceiver, Chunk};
pub use sender::ChannelSender;

use crate::error::{Error, Result};
use crate::os::seqpacket::{self, Packet};
use crate::spsc::SpscOptions;

/// The largest payload of one socket packet. Measured here: 64 KiB packets move 1 MiB messages
/// at about the rate of 256 KiB ones, and stay well inside the default socket buffer (208 KiB).
pub(crate) const SOCKET_CHUNK: usize = 64 << 10;

/// The longest a ring wait sleeps before it looks at the socket for a hang-up.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// How long the next ring wait may sleep: [`WAIT_SLICE`], or less if the deadline is nearer.
/// No clock is read when there is no deadline.
pub(crate) fn wait_slice(deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(d) => d.saturating_duration_since(Instant::now()).min(WAIT_SLICE),
        None => WAIT_SLICE,
    }
}

/// How many messages went each way, and how often the path changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PathCounts {
    /// Messages through the socket.
    pub socket: u64,
    /// Messages through the ring.
    pub ring: u64,
    /// Path changes.
    pub switches: u64,
}

/// Whose connections a channel accepts, judged by the peer's credentials (`SO_PEERCRED`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PeerFilter {
    /// Only processes of our effective uid.
    #[default]
    SameUser,
    /// Processes of our uid or of one of these.
    Users(Vec<u32>),
    /// Anyone who can reach the socket (its file mode or namespace is then the only guard).
    AnyUser,
}

impl PeerFilter {
    fn accepts(&self, peer: &Credentials) -> bool {
        let ours = nix::unistd::geteuid().as_raw();
        match self {
            PeerFilter::SameUser => peer.uid == ours,
            PeerFilter::Users(uids) => peer.uid == ours || uids.contains(&peer.uid),
            PeerFilter::AnyUser => true,
        }
    }
}

/// How to make a channel: its policy and thresholds, its rings, and whom it accepts.
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    policy: Policy,
    thresholds: Thresholds,
    ring: SpscOptions,
    max_message: u32,
    peers: PeerFilter,
    handshake_timeout: Duration,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            policy: Policy::Auto,
            thresholds: Thresholds {
                inline_limit: DEFAULT_INLINE_LIMIT,
                burst_messages: DEFAULT_BURST_MESSAGES,
                burst_bytes: DEFAULT_BURST_BYTES,
                window: DEFAULT_WINDOW,
                fallback_after: None,
            },
            // Not prefaulted: under Auto a ring starts after some 50 messages, and faulting a
            // 1 MiB ring in at once costs about 1 ms here (40x the rest of its setup). Faulted in
            // as the first lap reaches them, pages cost each message a share of that in
            // proportion to its size.
            ring: SpscOptions::new()
                .capacity(DEFAULT_RING_CAPACITY)
                .prefault(false),
            max_message: 64 << 20,
            peers: PeerFilter::SameUser,
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

// Defaults of `Policy::Auto`, from `cargo bench --bench channel_policy` on the 2-core KVM
// machine the project is measured on (README, "Channel paths"):
// - a single message on a fresh channel is faster through the socket up to 4 MiB and through
//   a new ring from 8 MiB (the ring's setup, 60-100 us, plus faulting in the pages it touches);
// - a socket message costs about 20 us plus 0.2 ns a byte, a ring message far less, so the
//   ring pays back its setup after about 50 small messages (measured: 36-73) or some MiB of
//   large ones (a fresh 1 MiB ring costs ~0.8 ms with its page faults, and each MiB saves
//   ~0.15 ms): 8 MiB, so that one message of up to 4 MiB never counts as a stream by itself;
// - the window is long enough that 1-4 MiB messages sent every few ms still count as a stream.
const DEFAULT_INLINE_LIMIT: usize = 4 << 20;
const DEFAULT_BURST_MESSAGES: u64 = 50;
const DEFAULT_BURST_BYTES: u64 = 8 << 20;
const DEFAULT_WINDOW: Duration = Duration::from_millis(100);
const DEFAULT_RING_CAPACITY: usize = 1 << 20;

impl ChannelOptions {
    /// The defaults: [`Policy::Auto`], 1 MiB rings, messages up to 64 MiB, same user only.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Which path messages take.
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Under `Auto`, a message longer than this goes through the ring.
    #[must_use]
    pub fn inline_limit(mut self, bytes: usize) -> Self {
        self.thresholds.inline_limit = bytes;
        self
    }

    /// Under `Auto`, socket traffic within `window` moves the channel onto the ring once
    /// `sent messages / messages + sent bytes / bytes` passes 1 (defaults: 50 messages, 8 MiB,
    /// 100 ms; both figures are about what setting up a ring costs, in socket time). Zero is
    /// taken as one.
    #[must_use]
    pub fn ring_after(mut self, messages: u64, bytes: u64, window: Duration) -> Self {
        self.thresholds.burst_messages = messages.max(1);
        self.thresholds.burst_bytes = bytes.max(1);
        self.thresholds.window = window;
        self
    }

    /// Under `Auto`, a channel on the ring that has been quiet this long sends its next small
    /// message through the socket again (default: never; once set up, the ring is the faster
    /// path for every size measured, so falling back buys only the socket's instant notice of a
    /// dead peer and a receiver that sleeps without liveness checks).
    #[must_use]
    pub fn fall_back_after(mut self, quiet: Option<Duration>) -> Self {
        self.thresholds.fallback_after = quiet;
        self
    }

    /// The rings' geometry and waiting (capacity, spin, liveness interval, prefault: off by
    /// default for a channel's rings). Each direction's sender creates its ring with these; the
    /// receiver uses its own waiting settings.
    #[must_use]
    pub fn ring(mut self, options: SpscOptions) -> Self {
        self.ring = options;
        self
    }

    /// The largest message we accept (told to the peer in the handshake), up to 4 GiB - 1.
    #[must_use]
    pub fn max_message(mut self, bytes: u32) -> Self {
        self.max_message = bytes;
        self
    }

    /// Whose connections are accepted.
    #[must_use]
    pub fn peers(mut self, filter: PeerFilter) -> Self {
        self.peers = filter;
        self
    }

    /// How long `connect` and `accept` wait for the peer's hello.
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Listens at `path`: a filesystem path, or an abstract name written `@name` (which
    /// vanishes with the listener, even after a crash).
    ///
    /// # Errors
    /// [`Error::InvalidName`] for an empty or overlong path; [`Error::AlreadyExists`] if it is
    /// in use (a file left by a crashed listener must be removed first); [`Error::Os`].
    pub fn bind(&self, path: &str) -> Result<Listener> {
        let fd = seqpacket::listen(path)?;
        Ok(Listener {
            fd,
            path: path.to_owned(),
            options: self.clone(),
        })
    }

    /// Connects to the listener at `path` and shakes hands.
    ///
    /// # Errors
    /// [`Error::NotFound`] if nothing listens there; [`Error::Refused`] if the listener does not
    /// accept our credentials; [`Error::PeerRefused`] if we do not accept the listener's;
    /// [`Error::VersionMismatch`] or [`Error::Protocol`] if it is not a compatible ringport
    /// channel; [`Error::Timeout`] if it does not answer within the handshake timeout.
    pub fn connect(&self, path: &str) -> Result<Channel> {
        let fd = seqpacket::connect(path)?;
        let peer = seqpacket::peer_credentials(fd.as_fd())?;
        if !self.peers.accepts(&peer) {
            return Err(Error::PeerRefused {
                pid: peer.pid,
                uid: peer.uid,
            });
        }
        self.shake_hands(fd, peer)
    }

    /// Both ends of a channel in this process (threads, tests).
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn pair(&self) -> Result<(Channel, Channel)> {
        let (a, b) = seqpacket::pair()?;
        let peer = seqpacket::peer_credentials(a.as_fd())?;
        // Both hellos are sent before either is read: the socket buffers them.
        let deadline = Instant::now() + self.handshake_timeout;
        self.send_hello(&a, deadline)?;
        self.send_hello(&b, deadline)?;
        Ok((
            self.finish_handshake(a, peer, deadline)?,
            self.finish_handshake(b, peer, deadline)?,
        ))
    }

    /// Sends our hello, then reads and checks the peer's.
    fn shake_hands(&self, fd: OwnedFd, peer: Credentials) -> Result<Channel> {
        let deadline = Instant::now() + self.handshake_timeout;
        // A listener that refuses us answers and closes at once, so our hello may fail with
        // PeerGone while its answer waits to be read: read it before giving up.
        let sent = match self.send_hello(&fd, deadline) {
            Err(e) if !matches!(e, Error::PeerGone(_)) => return Err(e),
            sent => sent,
        };
        match (sent, self.finish_handshake(fd, peer, deadline)) {
            (Err(e), Err(Error::PeerGone(_))) => Err(e),
            (_, r) => r,
        }
    }

    fn send_hello(&self, fd: &OwnedFd, deadline: Instant) -> Result<()> {
        let prefix = wire::prefix(wire::HELLO, wire::PROTOCOL_VERSION);
        let payload = wire::hello_payload(self.max_message);
        let parts = [IoSlice::new(&prefix), IoSlice::new(&payload)];
        seqpacket::send(fd.as_fd(), &parts, None, Some(deadline))
    }

    fn finish_handshake(
        &self,
        fd: OwnedFd,
        peer: Credentials,
        deadline: Instant,
    ) -> Result<Channel> {
        let mut prefix = [0u8; wire::PREFIX_LEN];
        let mut payload = [0u8; wire::HELLO_LEN];
        let mut bufs = [IoSliceMut::new(&mut prefix), IoSliceMut::new(&mut payload)];
        let len = match seqpacket::recv(fd.as_fd(), &mut bufs, Some(deadline))? {
            Packet::Data { len, passed: None } => len,
            Packet::Data { .. } => return Err(Error::Protocol("a descriptor in the handshake")),
            Packet::Closed => return Err(Error::PeerGone(crate::Role::Producer)),
        };
        let (kind, version) = wire::parse(&prefix);
        if kind == wire::REFUSED {
            return Err(Error::Refused);
        }
        if kind != wire::HELLO
            || len != wire::PREFIX_LEN + wire::HELLO_LEN
            || payload[..8] != wire::MAGIC
        {
            return Err(Error::Protocol("not a ringport channel hello"));
        }
        if version != wire::PROTOCOL_VERSION {
            return Err(Error::VersionMismatch {
                found: version,
                expected: wire::PROTOCOL_VERSION,
            });
        }
        let peer_max = u32::from_le_bytes(payload[8..12].try_into().expect("4 bytes")) as usize;

        let link = Arc::new(fd);
        let chooser = Chooser::new(self.policy, self.thresholds, Instant::now());
        Ok(Channel {
            sender: ChannelSender::new(Arc::clone(&link), self.ring.clone(), chooser, peer_max),
            receiver: ChannelReceiver::new(link, self.ring.clone(), self.max_message as usize),
            peer,
        })
    }
}

/// A listening socket that makes channels.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    path: String,
    options: ChannelOptions,
}

impl Listener {
    /// Listens at `path` with the default options (see [`ChannelOptions::bind`]).
    ///
    /// # Errors
    /// As [`ChannelOptions::bind`].
    pub fn bind(path: &str) -> Result<Listener> {
        ChannelOptions::new().bind(path)
    }

    /// The next channel, waiting for a connection.
    ///
    /// # Errors
    /// [`Error::PeerRefused`] if the connecting process's credentials are not accepted (it is
    /// told, and the listener goes on working); handshake errors as in
    /// [`ChannelOptions::connect`].
    pub fn accept(&self) -> Result<Channel> {
        self.accept_until(None)
    }

    /// As [`accept`](Self::accept), giving up after `timeout`.
    ///
    /// # Errors
    /// As [`accept`](Self::accept), and [`Error::Timeout`].
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Channel> {
        self.accept_until(crate::wait::deadline_after(timeout))
    }

    fn accept_until(&self, deadline: Option<Instant>) -> Result<Channel> {
        let fd = seqpacket::accept(self.fd.as_fd(), deadline)?;
        let peer = seqpacket::peer_credentials(fd.as_fd())?;
        if !self.options.peers.accepts(&peer) {
            let prefix = wire::prefix(wire::REFUSED, 0);
            let _ = seqpacket::try_send(fd.as_fd(), &[IoSlice::new(&prefix)], None);
            return Err(Error::PeerRefused {
                pid: peer.pid,
                uid: peer.uid,
            });
        }
        self.options.shake_hands(fd, peer)
    }

    /// The path or `@name` it listens at.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if !self.path.starts_with('@') {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A duplex channel: both ends send and receive, each direction on its own path.
#[derive(Debug)]
pub struct Channel {
    sender: ChannelSender,
    receiver: ChannelReceiver,
    peer: Credentials,
}

impl Channel {
    /// Connects to `path` with the default options (see [`ChannelOptions::connect`]).
    ///
    /// # Errors
    /// As [`ChannelOptions::connect`].
    pub fn connect(path: &str) -> Result<Channel> {
        ChannelOptions::new().connect(path)
    }

    /// Both ends in this process, with the default options.
    ///
    /// # Errors
    /// As [`ChannelOptions::pair`].
    pub fn pair() -> Result<(Channel, Channel)> {
        ChannelOptions::new().pair()
    }

    /// The peer's credentials, as the kernel saw them when the connection was made.
    #[must_use]
    pub fn peer_credentials(&self) -> Credentials {
        self.peer
    }

    /// Sends a message (see [`ChannelSender::send`]).
    ///
    /// # Errors
    /// As [`ChannelSender::send`].
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        self.sender.send(message)
    }

    /// Sends a message, waiting at most `timeout` (see [`ChannelSender::send_timeout`]).
    ///
    /// # Errors
    /// As [`ChannelSender::send_timeout`].
    pub fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        self.sender.send_timeout(message, timeout)
    }

    /// Receives the next message into `buf` (see [`ChannelReceiver::recv`]).
    ///
    /// # Errors
    /// As [`ChannelReceiver::recv`].
    pub fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.receiver.recv(buf)
    }

    /// As [`recv`](Self::recv), giving up after `timeout`.
    ///
    /// # Errors
    /// As [`ChannelReceiver::recv_timeout`].
    pub fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.receiver.recv_timeout(buf, timeout)
    }

    /// As [`recv`](Self::recv), without waiting.
    ///
    /// # Errors
    /// As [`ChannelReceiver::try_recv`].
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.receiver.try_recv(buf)
    }

    /// Hands the next message over chunk by chunk (see [`ChannelReceiver::recv_chunks`]).
    ///
    /// # Errors
    /// As [`ChannelReceiver::recv_chunks`].
    pub fn recv_chunks(&mut self, on_chunk: impl FnMut(Chunk<'_>)) -> Result<usize> {
        self.receiver.recv_chunks(on_chunk)
    }

    /// Messages sent through each path so far.
    #[must_use]
    pub fn sent(&self) -> PathCounts {
        self.sender.counts()
    }

    /// Messages received through each path so far.
    #[must_use]
    pub fn received(&self) -> PathCounts {
        self.receiver.counts()
    }

    /// The two halves, for two threads.
    #[must_use]
    pub fn split(self) -> (ChannelSender, ChannelReceiver) {
        (self.sender, self.receiver)
    }
}
