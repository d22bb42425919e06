//! The calls that SPSC and MPMC endpoints share in C, written once over two traits: reserve,
//! commit and abort in place, the copying send, receive and release in place (and both in one
//! call, `next`), the copying receive; each in its `try_`, blocking and `_timeout` forms.

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
            #[inline(always)]
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
            #[inline(always)]
            fn send(&mut self, data: &[u8], wait: $crate::common::Wait) -> ringport::Result<()> {
                match wait {
                    $crate::common::Wait::Try => self.try_send(data),
                    $crate::common::Wait::Block => <$producer>::send(self, data),
                    $crate::common::Wait::For(t) => self.send_timeout(data, t),
                }
            }
            #[inline(always)]
            fn commit(grant: $write, len: usize) {
                grant.commit_len(len);
            }
        }

        impl $crate::endpoints::Reader for $consumer {
            type Grant = $read;
            #[inline(always)]
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
///
/// Each form gets a body of its own, with its `Wait` a constant inside: the `try_` form's body is
/// then small enough for the compiler to inline whole into the C call (a body shared by every
/// form, with the wait read at run time, stayed out of line, behind the panic guard's call).
#[inline(always)]
pub fn reserve<W: Writer>(id: u64, len: usize, out_data: *mut *mut u8, wait: Wait) -> RpStatus
where
    Holder<W, W::Grant>: Handled,
{
    match wait {
        Wait::Try => reserve_by::<W>(id, out_data, move |w| w.reserve(len, Wait::Try)),
        _ => reserve_by::<W>(id, out_data, move |w| w.reserve(len, wait)),
    }
}

#[inline(always)]
fn reserve_by<W: Writer>(
    id: u64,
    out_data: *mut *mut u8,
    make: impl FnOnce(&'static mut W) -> ringport::Result<W::Grant>,
) -> RpStatus
where
    Holder<W, W::Grant>: Handled,
{
    guard(move || {
        // SAFETY: valid for a write, by the C caller's contract.
        let data = unsafe { out(out_data, "out_data")? };
        handles::with::<Holder<W, W::Grant>, _>(id, |h| {
            *data = h.lend(|w| make(w).or_status())?.as_mut_ptr();
            Ok(())
        })?
    })
}

/// Publishes the first `len` bytes of the reservation (0 aborts it).
#[inline(always)]
pub fn commit<W: Writer>(id: u64, len: usize) -> RpStatus
where
    Holder<W, W::Grant>: Handled,
{
    guard(move || {
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
#[inline(always)]
pub fn drop_grant<E: 'static, G: 'static>(id: u64) -> RpStatus
where
    Holder<E, G>: Handled,
{
    guard(move || {
        handles::with::<Holder<E, G>, _>(id, |h| {
            h.held_for_copy = false;
            match h.grant.take() {
                Some(_) => Ok(()),
                None => Err(no_grant()),
            }
        })?
    })
}

/// Copies `len` bytes at `data` into writer handle `id` as one message (each form with a body
/// of its own, as `reserve`).
#[inline(always)]
pub fn send<W: Writer>(id: u64, data: *const u8, len: usize, wait: Wait) -> RpStatus
where
    Holder<W, W::Grant>: Handled,
{
    match wait {
        Wait::Try => send_by::<W>(id, data, len, move |w, bytes| w.send(bytes, Wait::Try)),
        _ => send_by::<W>(id, data, len, move |w, bytes| w.send(bytes, wait)),
    }
}

#[inline(always)]
fn send_by<W: Writer>(
    id: u64,
    data: *const u8,
    len: usize,
    send: impl FnOnce(&mut W, &[u8]) -> ringport::Result<()>,
) -> RpStatus
where
    Holder<W, W::Grant>: Handled,
{
    guard(move || {
        // SAFETY: valid for `len` bytes, by the C caller's contract.
        let data = unsafe { bytes(data, len)? };
        handles::with::<Holder<W, W::Grant>, _>(id, |h| send(h.endpoint()?, data).or_status())?
    })
}

/// Borrows the next message of reader handle `id` in place.
#[inline(always)]
pub fn recv<R: Reader>(
    id: u64,
    out_data: *mut *const u8,
    out_len: *mut usize,
    wait: Wait,
) -> RpStatus
where
    Holder<R, R::Grant>: Handled,
{
    borrow::<R, false>(id, out_data, out_len, wait)
}

/// Releases the message reader handle `id` borrowed, if any, and borrows the next in place: a
/// receive loop's release and receive in one call. A message that a copying receive kept (too
/// large for its buffer) is not released: it is the next message, and is borrowed.
#[inline(always)]
pub fn next<R: Reader>(
    id: u64,
    out_data: *mut *const u8,
    out_len: *mut usize,
    wait: Wait,
) -> RpStatus
where
    Holder<R, R::Grant>: Handled,
{
    borrow::<R, true>(id, out_data, out_len, wait)
}

/// `recv` and `next` (`RELEASE_FIRST`), each form with a body of its own, as `reserve`.
#[inline(always)]
fn borrow<R: Reader, const RELEASE_FIRST: bool>(
    id: u64,
    out_data: *mut *const u8,
    out_len: *mut usize,
    wait: Wait,
) -> RpStatus
where
    Holder<R, R::Grant>: Handled,
{
    match wait {
        Wait::Try => borrow_by::<R, RELEASE_FIRST>(id, out_data, out_len, |r| r.recv(Wait::Try)),
        _ => borrow_by::<R, RELEASE_FIRST>(id, out_data, out_len, move |r| r.recv(wait)),
    }
}

#[inline(always)]
fn borrow_by<R: Reader, const RELEASE_FIRST: bool>(
    id: u64,
    out_data: *mut *const u8,
    out_len: *mut usize,
    make: impl FnOnce(&'static mut R) -> ringport::Result<R::Grant>,
) -> RpStatus
where
    Holder<R, R::Grant>: Handled,
{
    guard(move || {
        // SAFETY: valid for writes, by the C caller's contract.
        let (data, len) = unsafe { (out(out_data, "out_data")?, out(out_len, "out_len")?) };
        handles::with::<Holder<R, R::Grant>, _>(id, |h| {
            let message = match h.grant {
                Some(ref kept) if RELEASE_FIRST && h.held_for_copy => kept,
                _ => {
                    if RELEASE_FIRST {
                        h.grant = None;
                    }
                    h.lend(|r| make(r).or_status())?
                }
            };
            (*data, *len) = (message.as_ptr(), message.len());
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
    guard(move || {
        // SAFETY: valid for `capacity` bytes and a write, by the C caller's contract.
        let (buf, len) = unsafe { (bytes_mut(buf, capacity)?, out(out_len, "out_len")?) };
        handles::with::<Holder<R, R::Grant>, _>(id, |h| {
            if h.grant.is_none() {
                h.lend(|r| r.recv(wait).or_status())?;
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
