//! The calls that SPSC and MPMC endpoints share in C, written once over two traits: reserve,
//! commit and abort in place, the copying send, receive and release in place, the copying
//! receive; each in its `try_`, blocking and `_timeout` forms.

use std::ops::{Deref, DerefMut};

use crate::common::{no_grant, outstanding, Holder, Wait};
use crate::cptr::{bytes, bytes_mut, out};
use crate::handles::{self, Handled};
use crate::status::{fail, guard, OrStatus, RpStatus};

/// A writing endpoint.
pub trait Writer: 'static {
    type Grant: DerefMut<Target = [u8]> + 'static;
    fn reserve(&'static mut self, len: usize, wait: Wait) -> ringport::Result<Self::Grant>;
    fn send(&mut self, data: &[u8], wait: Wait) -> ringport::Result<()>;
    fn commit(grant: Self::Grant, len: usize);
}

/// A reading endpoint.
pub trait Reader: 'static {
    type Grant: Deref<Target = [u8]> + 'static;
    fn recv(&'static mut self, wait: Wait) -> ringport::Result<Self::Grant>;
}

macro_rules! endpoint_impls {
    ($producer:ty, $write:ty, $consumer:ty, $read:ty) => {
        impl $crate::endpoints::Writer for $producer {
            type Grant = $write;
            #[inline]
            fn reserve(
                &'static mut self,
                len: usize,
                wait: $crate::common::Wait,
            ) -> ringport::Result<$write> {
                match wait {
                    $crate::common::Wait::Try => self.try_reserve(len),
                    $crate::common::Wait::Block => <$producer>::reserve(self, len),
                    $crate::common::Wait::For(t) => self.reserve_timeout(len, t),
                }
            }
            #[inline]
            fn send(&mut self, data: &[u8], wait: $crate::common::Wait) -> ringport::Result<()> {
                match wait {
                    $crate::common::Wait::Try => self.try_send(data),
                    $crate::common::Wait::Block => <$producer>::send(self, data),
                    $crate::common::Wait::For(t) => self.send_timeout(data, t),
                }
            }
            #[inline]
            fn commit(grant: $write, len: usize) {
                grant.commit_len(len);
            }
        }

        impl $crate::endpoints::Reader for $consumer {
            type Grant = $read;
            #[inline]
            fn recv(&'static mut self, wait: $crate::common::Wait) -> ringport::Result<$read> {
                match wait {
                    $crate::common::Wait::Try => self.try_recv(),
                    $crate::common::Wait::Block => <$consumer>::recv(self),
                    $crate::common::Wait::For(t) => self.recv_timeout(t),
                }
            }
        }
    };
}
pub(crate) use endpoint_impls;

/// Reserves `len` bytes on writer handle `id`; `*out_data` is where to write them.
#[inline]
pub fn reserve<W: Writer>(id: u64, len: usize, out_data: *mut *mut u8, wait: Wait) -> RpStatus
where
    Holder<W, W::Grant>: Handled,
{
    guard(|| {
        // SAFETY: valid for a write, by the C caller's contract.
        let data = unsafe { out(out_data, "out_data")? };
        handles::with::<Holder<W, W::Grant>, _>(id, |h| {
            // SAFETY: the grant goes into `h.grant` below, before anything else uses the
            // endpoint.
            let endpoint = unsafe { h.for_grant()? };
            let mut grant = endpoint.reserve(len, wait).or_status()?;
            *data = grant.as_mut_ptr();
            h.grant = Some(grant);
            Ok(())
        })?
    })
}

/// Publishes the first `len` bytes of the reservation (0 aborts it).
#[inline]
pub fn commit<W: Writer>(id: u64, len: usize) -> RpStatus
where
    Holder<W, W::Grant>: Handled,
{
    guard(|| {
        handles::with::<Holder<W, W::Grant>, _>(id, |h| {
            let Some(grant) = h.grant.take() else {
                return Err(no_grant());
            };
            if len > grant.len() {
                let reserved = grant.len();
                h.grant = Some(grant);
                return Err(fail(
                    RpStatus::InvalidLength,
                    &format!("a commit of {len} bytes, {reserved} reserved: the reservation stays"),
                ));
            }
            W::commit(grant, len);
            Ok(())
        })?
    })
}

/// Drops the reservation (or the borrowed frame) of handle `id`.
pub fn drop_grant<E: 'static, G: 'static>(id: u64) -> RpStatus
where
    Holder<E, G>: Handled,
{
    guard(|| {
        handles::with::<Holder<E, G>, _>(id, |h| {
            h.held_for_copy = false;
            match h.grant.take() {
                Some(_) => Ok(()),
                None => Err(no_grant()),
            }
        })?
    })
}

/// Copies `len` bytes at `data` into writer handle `id` as one message.
#[inline]
pub fn send<W: Writer>(id: u64, data: *const u8, len: usize, wait: Wait) -> RpStatus
where
    Holder<W, W::Grant>: Handled,
{
    guard(|| {
        // SAFETY: valid for `len` bytes, by the C caller's contract.
        let data = unsafe { bytes(data, len)? };
        handles::with::<Holder<W, W::Grant>, _>(id, |h| h.endpoint()?.send(data, wait).or_status())?
    })
}

/// Borrows the next message of reader handle `id` in place.
#[inline]
pub fn recv<R: Reader>(
    id: u64,
    out_data: *mut *const u8,
    out_len: *mut usize,
    wait: Wait,
) -> RpStatus
where
    Holder<R, R::Grant>: Handled,
{
    guard(|| {
        // SAFETY: valid for writes, by the C caller's contract.
        let (data, len) = unsafe { (out(out_data, "out_data")?, out(out_len, "out_len")?) };
        handles::with::<Holder<R, R::Grant>, _>(id, |h| {
            // SAFETY: the grant goes into `h.grant` below.
            let endpoint = unsafe { h.for_grant()? };
            let grant = endpoint.recv(wait).or_status()?;
            *data = grant.as_ptr();
            *len = grant.len();
            h.grant = Some(grant);
            h.held_for_copy = false;
            Ok(())
        })?
    })
}

/// Copies the next message of reader handle `id` into `buf`; one too large for it is kept for
/// the next copying receive, and its length given.
pub fn recv_into<R: Reader>(
    id: u64,
    buf: *mut u8,
    capacity: usize,
    out_len: *mut usize,
    wait: Wait,
) -> RpStatus
where
    Holder<R, R::Grant>: Handled,
{
    guard(|| {
        // SAFETY: valid for `capacity` bytes and a write, by the C caller's contract.
        let (buf, len) = unsafe { (bytes_mut(buf, capacity)?, out(out_len, "out_len")?) };
        handles::with::<Holder<R, R::Grant>, _>(id, |h| {
            if h.grant.is_none() {
                // SAFETY: the grant goes into `h.grant` below.
                let endpoint = unsafe { h.for_grant()? };
                h.grant = Some(endpoint.recv(wait).or_status()?);
                h.held_for_copy = true;
            } else if !h.held_for_copy {
                return Err(outstanding());
            }
            let message = h.grant.as_ref().expect("held");
            *len = message.len();
            if message.len() > buf.len() {
                return Err(fail(
                    RpStatus::BufferTooSmall,
                    &format!(
                        "a message of {} bytes, a buffer of {}: it is kept for the next call",
                        message.len(),
                        buf.len()
                    ),
                ));
            }
            buf[..message.len()].copy_from_slice(message);
            h.grant = None;
            h.held_for_copy = false;
            Ok(())
        })?
    })
}
