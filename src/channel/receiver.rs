//! The receiving half of a channel.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::policy::Path;
use super::reassembly::{Chunk, Reassembly};
use super::wire::{self, PREFIX_LEN};
use super::{deadline_after, wait_slice, PathCounts, SOCKET_CHUNK};
use crate::error::{Error, Result, Role};
use crate::os::seqpacket::{self, Packet};
use crate::spsc::{Consumer, SpscOptions};

/// The receiving half of a [`Channel`](super::Channel).
///
/// Messages arrive in the order sent, whichever path each took. A blocked receive sleeps in
/// `poll` on the socket or on the ring's futex, whichever path the sender is on; in the ring it
/// wakes every 50 ms at most to look for a hang-up on the socket.
pub struct ChannelReceiver {
    inbox: Inbox,
    reassembly: Reassembly,
    /// Where `recv` builds a message (swapped with the caller's buffer when it is whole).
    assembly: Vec<u8>,
    max_message: usize,
}

/// Where messages come from, and which path the sender is on.
struct Inbox {
    link: Arc<OwnedFd>,
    path: Path,
    ring: Option<Consumer>,
    /// A hang-up notice on the socket marks the ring's producer departed (see
    /// `Consumer::watch_hangup`).
    ring_watched: bool,
    ring_options: SpscOptions,
    packet: Box<[u8]>,
    counts: PathCounts,
}

impl ChannelReceiver {
    pub(crate) fn new(link: Arc<OwnedFd>, ring_options: SpscOptions, max_message: usize) -> Self {
        ChannelReceiver {
            inbox: Inbox {
                link,
                path: Path::Socket,
                ring: None,
                ring_watched: false,
                ring_options,
                packet: vec![0; SOCKET_CHUNK].into_boxed_slice(),
                counts: PathCounts::default(),
            },
            reassembly: Reassembly::default(),
            assembly: Vec::new(),
            max_message,
        }
    }

    /// Messages received so far through each path, and path changes.
    #[must_use]
    pub fn counts(&self) -> PathCounts {
        self.inbox.counts
    }

    /// Receives the next message into `buf` (replacing its contents; the buffer's allocation is
    /// kept for reuse), waiting for it; returns its length.
    ///
    /// # Errors
    /// [`Error::PeerGone`] once every message sent before the peer closed or died has been
    /// received; [`Error::Protocol`] or [`Error::Corrupted`] if the peer breaks the protocol.
    pub fn recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_until(buf, None)
    }

    /// As [`recv`](Self::recv), giving up after `timeout`. A long message half received when
    /// time runs out is kept, and the next call goes on with it.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and [`Error::Timeout`].
    pub fn recv_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.recv_until(buf, deadline_after(timeout))
    }

    /// As [`recv`](Self::recv), without waiting.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and [`Error::Empty`] when no whole message is there now.
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        match self.recv_until(buf, Some(Instant::now())) {
            Err(Error::Timeout) => Err(Error::Empty),
            r => r,
        }
    }

    /// Hands the next message over in chunks, zero-copy, waiting for it; returns its length.
    /// `on_chunk` sees the chunks in order. A chunk with offset 0 arriving for a message in
    /// progress means its sender gave up on the earlier one (a timed-out send): drop what you
    /// had.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_chunks(&mut self, on_chunk: impl FnMut(Chunk<'_>)) -> Result<usize> {
        self.chunks_until(on_chunk, None)
    }

    /// As [`recv_chunks`](Self::recv_chunks), giving up after `timeout` (the message in
    /// progress goes on at the next call).
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_chunks_timeout(
        &mut self,
        on_chunk: impl FnMut(Chunk<'_>),
        timeout: Duration,
    ) -> Result<usize> {
        self.chunks_until(on_chunk, deadline_after(timeout))
    }

    fn chunks_until(
        &mut self,
        mut on_chunk: impl FnMut(Chunk<'_>),
        deadline: Option<Instant>,
    ) -> Result<usize> {
        receive(
            &mut self.inbox,
            &mut self.reassembly,
            self.max_message,
            deadline,
            &mut on_chunk,
        )
    }

    fn recv_until(&mut self, buf: &mut Vec<u8>, deadline: Option<Instant>) -> Result<usize> {
        let assembly = &mut self.assembly;
        let len = receive(
            &mut self.inbox,
            &mut self.reassembly,
            self.max_message,
            deadline,
            &mut |chunk: Chunk<'_>| {
                if chunk.offset == 0 {
                    assembly.clear();
                    assembly.reserve(chunk.total);
                }
                assembly.extend_from_slice(chunk.bytes);
            },
        )?;
        // Swap rather than copy: the caller's old buffer becomes the next assembly buffer.
        std::mem::swap(buf, &mut self.assembly);
        Ok(len)
    }
}

/// Receives pieces until one message is complete, handing each chunk to `sink`.
fn receive(
    inbox: &mut Inbox,
    reassembly: &mut Reassembly,
    max_message: usize,
    deadline: Option<Instant>,
    sink: &mut dyn FnMut(Chunk<'_>),
) -> Result<usize> {
    loop {
        let done = inbox.next(deadline, |kind, value, bytes| {
            reassembly.piece(kind, value, bytes, max_message, sink)
        })?;
        if let Some(len) = done {
            return Ok(len);
        }
    }
}

impl Inbox {
    /// Waits for the next piece on the sender's path, following path markers, and hands its
    /// kind, value and payload to `f`.
    fn next<R>(
        &mut self,
        deadline: Option<Instant>,
        f: impl FnOnce(u8, u32, &[u8]) -> Result<R>,
    ) -> Result<R> {
        let mut hung_up = false;
        loop {
            match self.path {
                Path::Socket => {
                    let mut prefix = [0u8; PREFIX_LEN];
                    let fd = self.link.as_fd();
                    let mut bufs = [
                        IoSliceMut::new(&mut prefix),
                        IoSliceMut::new(&mut self.packet),
                    ];
                    match seqpacket::recv(fd, &mut bufs, deadline)? {
                        Packet::Data { len, passed } => {
                            if len < PREFIX_LEN {
                                return Err(Error::Protocol("packet shorter than its prefix"));
                            }
                            let (kind, value) = wire::parse(&prefix);
                            if kind == wire::TO_RING {
                                self.follow_to_ring(passed)?;
                                continue;
                            }
                            if passed.is_some() {
                                return Err(Error::Protocol("a descriptor with a message"));
                            }
                            self.counts.socket += u64::from(starts_message(kind));
                            return f(kind, value, &self.packet[..len - PREFIX_LEN]);
                        }
                        Packet::Closed => return Err(Error::PeerGone(Role::Producer)),
                    }
                }
                Path::Ring => {
                    let ring = self
                        .ring
                        .as_mut()
                        .expect("the ring exists on the ring path");
                    // With a hang-up notice on the socket, the ring itself reports a peer that
                    // hung up or died, whatever its pid namespace: wait on the ring alone.
                    // Without one, look at the socket between slices of the wait.
                    let got = match (hung_up, self.ring_watched, deadline) {
                        (true, _, _) => ring.recv_timeout(Duration::ZERO),
                        (false, true, None) => ring.recv(),
                        (false, true, Some(d)) => {
                            ring.recv_timeout(d.saturating_duration_since(Instant::now()))
                        }
                        (false, false, _) => ring.recv_timeout(wait_slice(deadline)),
                    };
                    match got {
                        Ok(frame) => {
                            if frame.len() < PREFIX_LEN {
                                return Err(Error::Protocol("frame shorter than its prefix"));
                            }
                            let (kind, value) = wire::parse(&frame[..PREFIX_LEN]);
                            if kind == wire::TO_SOCKET {
                                drop(frame);
                                self.path = Path::Socket;
                                self.counts.switches += 1;
                                continue;
                            }
                            self.counts.ring += u64::from(starts_message(kind));
                            return f(kind, value, &frame[PREFIX_LEN..]);
                        }
                        Err(Error::Timeout) => {
                            // Without a notice, the ring notices a dead peer by its pid, which a
                            // peer in another pid namespace does not give; the socket's hang-up
                            // always tells. After a hang-up, one more look: what was committed
                            // is delivered.
                            if hung_up {
                                return Err(Error::PeerGone(Role::Producer));
                            }
                            if seqpacket::peer_hung_up(self.link.as_fd()) {
                                hung_up = true;
                                continue;
                            }
                            if deadline.is_some_and(|d| Instant::now() >= d) {
                                return Err(Error::Timeout);
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// The sender moved to the ring; the first time, the packet carries the ring's memfd.
    fn follow_to_ring(&mut self, passed: Option<OwnedFd>) -> Result<()> {
        match (passed, &self.ring) {
            (Some(memfd), None) => {
                let mut ring = self.ring_options.open_consumer_fd(&memfd)?;
                self.ring_watched = ring.watch_hangup(self.link.as_fd());
                self.ring = Some(ring);
            }
            (None, Some(_)) => {}
            _ => return Err(Error::Protocol("ring offered twice, or never")),
        }
        self.path = Path::Ring;
        self.counts.switches += 1;
        Ok(())
    }
}

fn starts_message(kind: u8) -> bool {
    kind == wire::WHOLE || kind == wire::FIRST
}

impl std::fmt::Debug for ChannelReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelReceiver")
            .field("path", &self.inbox.path)
            .field("counts", &self.inbox.counts)
            .finish_non_exhaustive()
    }
}
