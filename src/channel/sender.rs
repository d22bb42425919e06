//! The sending half of a channel.

use std::io::IoSlice;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::policy::{Chooser, Path, Policy};
use super::wire::{self, PREFIX_LEN};
use super::{deadline_after, wait_slice, PathCounts, SOCKET_CHUNK};
use crate::error::{Error, Result, Role};
use crate::os::seqpacket;
use crate::spsc::{Producer, SpscOptions};

/// The sending half of a [`Channel`](super::Channel): messages go through the socket or the
/// ring as the channel's [`Policy`] decides, in order.
pub struct ChannelSender {
    link: Arc<OwnedFd>,
    path: Path,
    ring: Option<Producer>,
    /// A hang-up notice on the socket marks the ring's consumer departed (see
    /// `Producer::watch_hangup`).
    ring_watched: bool,
    ring_options: SpscOptions,
    chooser: Chooser,
    /// The largest message the peer accepts (from its hello).
    peer_max: usize,
    /// A chunked message was left half-sent by a timeout: the next send cancels it first.
    unfinished: bool,
    counts: PathCounts,
}

impl ChannelSender {
    pub(crate) fn new(
        link: Arc<OwnedFd>,
        ring_options: SpscOptions,
        chooser: Chooser,
        peer_max: usize,
    ) -> ChannelSender {
        ChannelSender {
            link,
            path: Path::Socket,
            ring: None,
            ring_watched: false,
            ring_options,
            chooser,
            peer_max,
            unfinished: false,
            counts: PathCounts::default(),
        }
    }

    /// Messages sent so far through each path, and path changes.
    #[must_use]
    pub fn counts(&self) -> PathCounts {
        self.counts
    }

    /// The largest message the peer accepts.
    #[must_use]
    pub fn max_message(&self) -> usize {
        self.peer_max
    }

    /// Sends a message (any length up to [`max_message`](Self::max_message), zero included),
    /// waiting for room if the path is full.
    ///
    /// # Errors
    /// [`Error::MessageTooLong`] if the message is longer than the peer accepts;
    /// [`Error::PeerGone`] if the peer closed its receiving side or died; [`Error::Os`] if the
    /// ring cannot be set up under [`Policy::Ring`] (under `Auto` the channel stays on the
    /// socket instead).
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        self.send_until(message, None)
    }

    /// As [`send`](Self::send), giving up after `timeout`. A long message that times out
    /// half-way is abandoned: the receiver drops its first chunks and never sees it.
    ///
    /// # Errors
    /// As [`send`](Self::send), and [`Error::Timeout`].
    pub fn send_timeout(&mut self, message: &[u8], timeout: Duration) -> Result<()> {
        self.send_until(message, deadline_after(timeout))
    }

    fn send_until(&mut self, message: &[u8], deadline: Option<Instant>) -> Result<()> {
        if message.len() > self.peer_max {
            return Err(Error::MessageTooLong {
                len: message.len(),
                max: self.peer_max,
            });
        }
        if self.unfinished {
            self.emit(wire::CANCEL, 0, &[], deadline)?;
            self.unfinished = false;
        }
        let want = self.chooser.choose(self.path, message.len(), Instant::now);
        if want != self.path {
            self.switch(want, deadline)?;
        }
        let chunk = self.chunk_len();
        if message.len() <= chunk {
            self.emit(wire::WHOLE, 0, message, deadline)?;
        } else {
            let total = u32::try_from(message.len()).expect("max_message fits in u32");
            let (first, rest) = message.split_at(chunk);
            self.emit(wire::FIRST, total, first, deadline)?;
            for piece in rest.chunks(chunk) {
                if let Err(e) = self.emit(wire::MORE, 0, piece, deadline) {
                    self.unfinished = true;
                    return Err(e);
                }
            }
        }
        match self.path {
            Path::Socket => self.counts.socket += 1,
            Path::Ring => self.counts.ring += 1,
        }
        Ok(())
    }

    /// The largest payload of one packet or frame on the current path.
    fn chunk_len(&self) -> usize {
        match (&self.path, &self.ring) {
            // A quarter of the ring, so that the receiver copies one chunk out while we copy
            // the next in.
            (Path::Ring, Some(ring)) => ring.max_frame().min(ring.capacity() / 4) - PREFIX_LEN,
            _ => SOCKET_CHUNK,
        }
    }

    /// Moves to `to`, leaving a marker as the last thing on the old path.
    fn switch(&mut self, to: Path, deadline: Option<Instant>) -> Result<()> {
        match to {
            Path::Ring if self.ring.is_none() => {
                let (producer, memfd) = match self.ring_options.create_producer_memfd() {
                    Ok(made) => made,
                    // Under Auto a channel that cannot have a ring (memfd limits, a sandbox)
                    // still works: it stays on the socket for good.
                    Err(_) if self.chooser.policy() == Policy::Auto => {
                        self.chooser.force(Policy::Socket);
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                };
                self.socket_send(wire::TO_RING, 0, &[], Some(&memfd), deadline)?;
                let mut producer = producer;
                self.ring_watched = producer.watch_hangup(self.link.as_fd());
                self.ring = Some(producer);
            }
            Path::Ring => self.socket_send(wire::TO_RING, 0, &[], None, deadline)?,
            Path::Socket => self.ring_send(wire::TO_SOCKET, 0, &[], deadline)?,
        }
        self.path = to;
        self.counts.switches += 1;
        Ok(())
    }

    fn emit(
        &mut self,
        kind: u8,
        value: u32,
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<()> {
        match self.path {
            Path::Socket => self.socket_send(kind, value, payload, None, deadline),
            Path::Ring => self.ring_send(kind, value, payload, deadline),
        }
    }

    /// Sends one packet: the prefix, then the payload, with a descriptor if `passing`.
    fn socket_send(
        &self,
        kind: u8,
        value: u32,
        payload: &[u8],
        passing: Option<&OwnedFd>,
        deadline: Option<Instant>,
    ) -> Result<()> {
        let prefix = wire::prefix(kind, value);
        let parts = [IoSlice::new(&prefix), IoSlice::new(payload)];
        let passing = passing.map(AsFd::as_fd);
        seqpacket::send(self.link.as_fd(), &parts, passing, deadline)
    }

    /// Writes one frame into the ring, waiting for room in slices so that a peer that hangs up
    /// (seen on the socket) is noticed even where its process cannot be checked.
    fn ring_send(
        &mut self,
        kind: u8,
        value: u32,
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<()> {
        let ring = self
            .ring
            .as_mut()
            .expect("the ring exists on the ring path");
        loop {
            // With a hang-up notice on the socket, the ring itself reports a peer that hung up
            // or died: wait on the ring alone. Without one, look at the socket between slices.
            let len = PREFIX_LEN + payload.len();
            let reserved = match (self.ring_watched, deadline) {
                (true, None) => ring.reserve(len),
                (true, Some(d)) => {
                    ring.reserve_timeout(len, d.saturating_duration_since(Instant::now()))
                }
                (false, _) => ring.reserve_timeout(len, wait_slice(deadline)),
            };
            match reserved {
                Ok(mut grant) => {
                    grant[..PREFIX_LEN].copy_from_slice(&wire::prefix(kind, value));
                    grant[PREFIX_LEN..].copy_from_slice(payload);
                    grant.commit();
                    return Ok(());
                }
                Err(Error::Timeout) => {
                    if seqpacket::peer_hung_up(self.link.as_fd()) {
                        return Err(Error::PeerGone(Role::Consumer));
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

impl Drop for ChannelSender {
    fn drop(&mut self) {
        // The peer's receives then end (after what we sent) even if our receiving half lives on.
        seqpacket::shutdown_send(self.link.as_fd());
    }
}

impl std::fmt::Debug for ChannelSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelSender")
            .field("path", &self.path)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}
