//! Producer handles of an MPMC ring.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use super::handle::{End, Handle, View};
use super::slot::Won;
use crate::error::{Error, Result};
use crate::wait::{Doorbell, Limit, WaitStats};

/// A handle that writes messages into an MPMC ring. Clone it for another thread; make one from
/// the ring in another process.
///
/// Write in place with [`reserve`](Self::reserve) (zero copy) or copy with
/// [`send`](Self::send); each has a `try_` form that fails at once with [`Error::Full`] and a
/// `_timeout` form.
pub struct Producer {
    handle: Handle,
}

impl Producer {
    pub(super) fn new(handle: Handle) -> Producer {
        Producer { handle }
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

    #[inline(always)]
    fn check_len(&self, len: usize) -> Result<()> {
        let max = self.slot_size();
        if len == 0 || len > max {
            return Err(Error::InvalidLength { len, max });
        }
        Ok(())
    }

    /// Reserves a slot to write `len` bytes in place, if one is free now.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] unless `1 <= len <= slot_size`; [`Error::Full`];
    /// [`Error::Corrupted`].
    #[inline(always)]
    pub fn try_reserve(&mut self, len: usize) -> Result<WriteGrant<'_>> {
        self.check_len(len)?;
        match self.handle.try_claim(End::Tail)? {
            Some((view, won)) => Ok(WriteGrant { view, won, len }),
            None => Err(Error::Full),
        }
    }

    /// Reserves a slot to write `len` bytes in place, waiting for one.
    ///
    /// ```
    /// # fn main() -> Result<(), ringport::Error> {
    /// let ring = ringport::MpmcOptions::new().slots(8).slot_size(64).in_process()?;
    /// let (mut producer, mut consumer) = (ring.producer(), ring.consumer());
    /// let mut grant = producer.reserve(64)?;
    /// grant[..5].copy_from_slice(b"hello");
    /// grant.commit_len(5);
    /// assert_eq!(&*consumer.recv()?, b"hello");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidLength`]; [`Error::Corrupted`].
    pub fn reserve(&mut self, len: usize) -> Result<WriteGrant<'_>> {
        self.reserve_until(len, Limit::Forever)
    }

    /// As [`reserve`](Self::reserve), giving up after `timeout`.
    ///
    /// # Errors
    /// As [`reserve`](Self::reserve), and [`Error::Timeout`].
    pub fn reserve_timeout(&mut self, len: usize, timeout: Duration) -> Result<WriteGrant<'_>> {
        self.reserve_until(len, Limit::After(timeout))
    }

    fn reserve_until(&mut self, len: usize, limit: Limit) -> Result<WriteGrant<'_>> {
        self.check_len(len)?;
        let (view, won) = self.handle.claim_until(End::Tail, limit)?;
        Ok(WriteGrant { view, won, len })
    }

    /// Copies `data` into a slot, waiting for one.
    ///
    /// # Errors
    /// As [`reserve`](Self::reserve).
    pub fn send(&mut self, data: &[u8]) -> Result<()> {
        let mut grant = self.reserve(data.len())?;
        grant.copy_from_slice(data);
        grant.commit();
        Ok(())
    }

    /// Copies `data` into a slot if one is free now.
    ///
    /// # Errors
    /// As [`try_reserve`](Self::try_reserve).
    #[inline(always)]
    pub fn try_send(&mut self, data: &[u8]) -> Result<()> {
        let mut grant = self.try_reserve(data.len())?;
        grant.copy_from_slice(data);
        grant.commit();
        Ok(())
    }

    /// Copies `data` into a slot, waiting at most `timeout` for one.
    ///
    /// # Errors
    /// As [`reserve_timeout`](Self::reserve_timeout).
    pub fn send_timeout(&mut self, data: &[u8], timeout: Duration) -> Result<()> {
        let mut grant = self.reserve_timeout(data.len(), timeout)?;
        grant.copy_from_slice(data);
        grant.commit();
        Ok(())
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.handle.flush_counts_slow(End::Tail);
    }
}

impl Clone for Producer {
    /// Another producer handle on the same ring (its own wait statistics).
    fn clone(&self) -> Self {
        Producer::new(self.handle.clone_handle())
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("slots", &self.handle.view.slots.count())
            .field("slot_size", &self.handle.view.slots.slot_size())
            .finish_non_exhaustive()
    }
}

/// A claimed slot, written in place. Derefs to the reserved bytes.
///
/// [`commit`](Self::commit) publishes it; [`commit_len`](Self::commit_len) publishes a shorter
/// prefix; dropping the grant without committing aborts it (consumers skip the slot).
#[must_use = "a grant that is dropped is aborted; call commit()"]
pub struct WriteGrant<'a> {
    /// Shared: the producer's `&mut` borrow, which the grant's life extends, is what keeps it
    /// the only grant.
    view: &'a View,
    won: Won<'a>,
    len: usize,
}

impl WriteGrant<'_> {
    /// Publishes the whole reservation.
    #[inline(always)]
    pub fn commit(self) {
        let len = self.len;
        self.commit_len(len);
    }

    /// Publishes the first `len` bytes; `len == 0` aborts.
    ///
    /// # Panics
    /// If `len` is larger than the reserved length.
    #[inline(always)]
    pub fn commit_len(self, len: usize) {
        if len > self.len {
            more_than_reserved(len, self.len);
        }
        // Published here, not by the drop: the drop glue of a grant stayed out of line in a
        // user's crate (examples/inline_probe.rs), a call on every message.
        let this = std::mem::ManuallyDrop::new(self);
        this.publish(len);
    }

    #[inline(always)]
    fn publish(&self, len: usize) {
        let Won { position, slot, .. } = self.won;
        self.view.slots.commit(slot, position, len);
        self.view.ring(Doorbell::data);
    }
}

/// The panic of [`WriteGrant::commit_len`], out of line.
#[cold]
#[inline(never)]
#[track_caller]
fn more_than_reserved(len: usize, reserved: usize) -> ! {
    panic!("commit_len({len}) is more than the {reserved} bytes reserved")
}

impl Drop for WriteGrant<'_> {
    fn drop(&mut self) {
        // Not committed: the slot is claimed, so it must be published, as an aborted slot, or
        // every consumer would wait behind it.
        self.publish(0);
    }
}

impl Deref for WriteGrant<'_> {
    type Target = [u8];
    #[inline(always)]
    fn deref(&self) -> &[u8] {
        // SAFETY: we claimed this slot (its stamp names us, WRITING), so no consumer reads it
        // and no producer writes it until we commit; `&self` borrows the grant. In bounds:
        // `Slots::at` checked the whole slot, and `len` is at most the slot size (`check_len`).
        unsafe {
            self.view
                .mem
                .slice_unchecked(self.won.slot.payload, self.len)
        }
    }
}

impl DerefMut for WriteGrant<'_> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe {
            self.view
                .mem
                .slice_mut_unchecked(self.won.slot.payload, self.len)
        }
    }
}

impl std::fmt::Debug for WriteGrant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteGrant")
            .field("position", &self.won.position)
            .field("len", &self.len)
            .finish()
    }
}
