//! How to make a channel (its policy and thresholds, its rings, whom it accepts), and the
//! listener that makes channels of connections.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::handshake::{self, PeerFilter};
use super::policy::{Chooser, Policy, Thresholds};
use super::{deadline_after, Channel, ChannelReceiver, ChannelSender};
use crate::error::{Error, Result};
use crate::os::seqpacket;
use crate::os::Credentials;
use crate::spsc::SpscOptions;

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
            // whole 1 MiB ring in at once costs many times the rest of its setup. Faulted in as
            // the first lap reaches them, pages cost each message a share of that in proportion
            // to its size.
            ring: SpscOptions::new()
                .capacity(DEFAULT_RING_CAPACITY)
                .prefault(false),
            max_message: 64 << 20,
            peers: PeerFilter::SameUser,
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

// Defaults of `Policy::Auto`, from `cargo bench --bench channel_policy` on the project's
// machine (docs/PERFORMANCE.md, "Channel paths"):
// - a single message on a fresh channel is faster through the socket up to some MiB, and
//   through a new ring above (the ring's setup plus faulting in the pages it touches);
// - a ring message costs far less than a socket message, so the ring pays back its setup after
//   some tens of small messages, or some MiB of large ones: 8 MiB, so that one message of up
//   to 4 MiB never counts as a stream by itself;
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
        handshake::send_hello(&a, self.max_message, deadline)?;
        handshake::send_hello(&b, self.max_message, deadline)?;
        let a_peer_max = handshake::read_hello(&a, deadline)?;
        let b_peer_max = handshake::read_hello(&b, deadline)?;
        Ok((
            self.channel(a, peer, a_peer_max),
            self.channel(b, peer, b_peer_max),
        ))
    }

    /// Shakes hands on a new connection with a peer whose credentials were accepted.
    pub(super) fn shake_hands(&self, fd: OwnedFd, peer: Credentials) -> Result<Channel> {
        let deadline = Instant::now() + self.handshake_timeout;
        let peer_max = handshake::shake_hands(&fd, self.max_message, deadline)?;
        Ok(self.channel(fd, peer, peer_max))
    }

    /// The channel over a connection whose handshake is done.
    fn channel(&self, fd: OwnedFd, peer: Credentials, peer_max: usize) -> Channel {
        let link = Arc::new(fd);
        let chooser = Chooser::new(self.policy, self.thresholds, Instant::now());
        Channel {
            sender: ChannelSender::new(Arc::clone(&link), self.ring.clone(), chooser, peer_max),
            receiver: ChannelReceiver::new(link, self.ring.clone(), self.max_message as usize),
            peer,
        }
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
        self.accept_until(deadline_after(timeout))
    }

    fn accept_until(&self, deadline: Option<Instant>) -> Result<Channel> {
        let fd = seqpacket::accept(self.fd.as_fd(), deadline)?;
        let peer = seqpacket::peer_credentials(fd.as_fd())?;
        if !self.options.peers.accepts(&peer) {
            handshake::refuse(&fd);
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
