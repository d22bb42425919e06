//! Consumer handles of an MPMC ring.

use std::ops::Deref;
use std::time::Duration;

use super::handle::{End, Handle, View};
use super::slot::Won;
use crate::error::{Error, Result};
use crate::os::copy_frame;
use crate::wait::{Doorbell, Limit, WaitStats};

/// A handle that takes messages from an MPMC ring. Clone it for another thread; make one from
/// the ring in another process. Each message goes to exactly one consumer handle.
///
/// Read in place with [`recv`](Self::recv) (the grant borrows the slot and frees it when
/// dropped) or copy with [`recv_into`](Self::recv_into); each has a `try_` form that fails at
/// once with [`Error::Empty`] and a `_timeout` form.
pub struct Consumer {
    handle: Handle,
}

impl Consumer {
    pub(super) fn new(handle: Handle) -> Consumer {
        Consumer { handle }
    }

    /// Largest message in bytes.
    #[must_use]
    #[inline]
    pub fn slot_size(&self) -> usize {
        self.handle.view.slots.slot_size()
    }

    /// How often this handle's blocking calls had to wait and sleep.
    #[must_use]
    pub fn stats(&self) -> WaitStats {
        self.handle.stats
    }

    /// The next message, if one is ready now.
    ///
    /// # Errors
    /// [`Error::Empty`]; [`Error::Corrupted`].
    #[inline(always)]
    pub fn try_recv(&mut self) -> Result<ReadGrant<'_>> {
        match self.handle.try_claim(End::Head)? {
            Some((view, won)) => Ok(ReadGrant { view, won }),
            None => Err(Error::Empty),
        }
    }

    /// The next message, waiting for one.
    ///
    /// # Errors
    /// [`Error::Corrupted`].
    pub fn recv(&mut self) -> Result<ReadGrant<'_>> {
        self.recv_until(Limit::Forever)
    }

    /// As [`recv`](Self::recv), giving up after `timeout`.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and [`Error::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<ReadGrant<'_>> {
        self.recv_until(Limit::After(timeout))
    }

    /// For `rpc`: the next message that `keep` accepts, at once (`wait` None) or waiting as
    /// `wait` says (each refused message starts the wait again); the refused are released
    /// unread, as a dropped grant is.
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv) or [`recv_timeout`](Self::recv_timeout).
    pub(crate) fn recv_kept(
        &mut self,
        wait: Option<Limit>,
        mut keep: impl FnMut(&[u8]) -> bool,
    ) -> Result<ReadGrant<'_>> {
        let (position, len) = loop {
            let (_, won) = match wait {
                None => self.handle.try_claim(End::Head)?.ok_or(Error::Empty)?,
                Some(limit) => self.handle.claim_until(End::Head, limit)?,
            };
            let (position, len) = (won.position, won.len);
            let look = self.grant_of(position, len);
            let kept = keep(&look);
            // Not dropped: that would release the slot, which stays ours if it is kept.
            std::mem::forget(look);
            if kept {
                break (position, len);
            }
            drop(self.grant_of(position, len));
        };
        Ok(self.grant_of(position, len))
    }

    fn recv_until(&mut self, limit: Limit) -> Result<ReadGrant<'_>> {
        let (view, won) = self.handle.claim_until(End::Head, limit)?;
        Ok(ReadGrant { view, won })
    }

    /// Copies the next message into `buf` (replacing its contents), waiting for one; returns
    /// its length.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        copy_out(&self.recv()?, buf)
    }

    /// Copies the next message into `buf` if one is ready now.
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv).
    #[inline(always)]
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        copy_out(&self.try_recv()?, buf)
    }

    /// Copies the next message into `buf`, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        copy_out(&self.recv_timeout(timeout)?, buf)
    }

    /// Hands the next message to `f`, read in place, waiting for one, and frees its slot when
    /// `f` returns; returns what `f` returns. Unlike [`recv`](Self::recv)'s, this form's error
    /// arm borrows nothing (see [`spsc::Consumer::recv_with`](crate::spsc::Consumer::recv_with)).
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let message = self.recv()?;
        Ok(f(&message))
    }

    /// As [`recv_with`](Self::recv_with), if a message is ready now.
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv).
    #[inline(always)]
    pub fn try_recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let message = self.try_recv()?;
        Ok(f(&message))
    }

    /// As [`recv_with`](Self::recv_with), waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_with_timeout<R>(
        &mut self,
        f: impl FnOnce(&[u8]) -> R,
        timeout: Duration,
    ) -> Result<R> {
        let message = self.recv_timeout(timeout)?;
        Ok(f(&message))
    }

    #[inline(always)]
    fn grant_of(&mut self, position: u64, len: usize) -> ReadGrant<'_> {
        let view = &self.handle.view;
        ReadGrant {
            view,
            won: view.won_at(position, len),
        }
    }
}

#[inline(always)]
fn copy_out(grant: &ReadGrant<'_>, buf: &mut Vec<u8>) -> Result<usize> {
    copy_frame(grant, buf);
    Ok(grant.won.len)
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.handle.flush_counts_slow(End::Head);
    }
}

impl Clone for Consumer {
    /// Another consumer handle on the same ring (its own wait statistics).
    fn clone(&self) -> Self {
        Consumer::new(self.handle.clone_handle())
    }
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("slots", &self.handle.view.slots.count())
            .field("slot_size", &self.handle.view.slots.slot_size())
            .finish_non_exhaustive()
    }
}

/// A received message, read in place. Derefs to its bytes; dropping it frees the slot.
#[must_use = "dropping the grant releases the message at once"]
pub struct ReadGrant<'a> {
    /// Shared: the consumer's `&mut` borrow, which the grant's life extends, is what keeps it
    /// the only grant.
    view: &'a View,
    won: Won<'a>,
}

impl Deref for ReadGrant<'_> {
    type Target = [u8];
    #[inline(always)]
    fn deref(&self) -> &[u8] {
        // SAFETY: we claimed this slot for reading (its stamp names us, READING) after its
        // commit, which we acquired; no producer writes it until we release it in `drop`. In
        // bounds: `Slots::at` checked the whole slot, and the claim checked `len` against the
        // slot size.
        unsafe {
            self.view
                .mem
                .slice_unchecked(self.won.slot.payload, self.won.len)
        }
    }
}

impl Drop for ReadGrant<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        let Won { position, slot, .. } = self.won;
        self.view.slots.release(slot, position);
        self.view.ring(Doorbell::space);
    }
}

impl std::fmt::Debug for ReadGrant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadGrant")
            .field("position", &self.won.position)
            .field("len", &self.won.len)
            .finish()
    }
}
