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
//! ([`ChannelReceiver::recv_chunks`]). The parts: `handshake` (hellos and whom a channel
//! accepts), `policy` (which path the next message takes), `wire` (what travels),
//! `reassembly` (messages from their pieces, with no socket), the two halves in `sender` and
//! `receiver`, and this facade.
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

mod handshake;
mod options;
mod policy;
mod reassembly;
mod receiver;
mod sender;
mod wire;

use std::time::{Duration, Instant};

pub use crate::os::Credentials;
pub use handshake::PeerFilter;
pub use options::{ChannelOptions, Listener};
pub use policy::Policy;
pub use reassembly::Chunk;
pub use receiver::ChannelReceiver;
pub use sender::ChannelSender;

use crate::error::Result;

/// The largest payload of one socket packet: 64 KiB packets move 1 MiB messages at about the
/// rate of 256 KiB ones, and stay well inside the default socket buffer (208 KiB).
pub(crate) const SOCKET_CHUNK: usize = 64 << 10;

/// The longest a ring wait sleeps before it looks at the socket for a hang-up.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// The deadline `timeout` from now; None (wait forever) if it is beyond what `Instant` holds.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

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
