//! The MPMC ring in C: a ring handle, and producer and consumer handles made from it (any
//! number, in any processes), each with the shared endpoint calls.

use std::ffi::c_char;

use ringport::mpmc::{Consumer, Producer, ReadGrant, Ring, WriteGrant};
use ringport::MpmcOptions;

use crate::common::{Holder, RpWaitStats, Wait};
use crate::cptr::{nanos, out};
use crate::endpoints::{self, endpoint_impls};
use crate::handles::{self, Handled, Kind};
use crate::spsc::location as parse_location;
use crate::status::{fail, guard, OrStatus, RpStatus};

/// An MPMC ring handle.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RpMpmcRing {
    /// The id (0: no handle).
    pub id: u64,
}

/// An MPMC producer handle.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RpMpmcProducer {
    /// The id (0: no handle).
    pub id: u64,
}

/// An MPMC consumer handle.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RpMpmcConsumer {
    /// The id (0: no handle).
    pub id: u64,
}

/// How an MPMC ring is made or opened. Start from `rp_mpmc_options_default()`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RpMpmcOptions {
    /// Slots (default 1024; a power of two).
    pub slots: u64,
    /// Bytes a slot holds, the largest message (default 256).
    pub slot_size: u64,
    /// How long a blocking call spins before it sleeps, in nanoseconds (default 20 us).
    pub spin_ns: u64,
    /// How long a stuck slot waits before its owner is checked (default 20 ms).
    pub liveness_interval_ns: u64,
    /// Trust segments of this uid as well as our own; -1: none.
    pub trust_owner_uid: i64,
    /// Create the segment mode 0660 with this group; -1: mode 0600.
    pub share_with_gid: i64,
    /// Leave the segment's name when the creator's last handle goes (default false).
    pub keep_segment: bool,
    /// Fault the pages in when mapping (default true).
    pub prefault: bool,
    /// Back the ring with huge pages (default false).
    pub huge_pages: bool,
    /// Lock the ring in memory (default false).
    pub lock_in_memory: bool,
    /// Fence every publish (default false).
    pub symmetric_fences: bool,
    /// Open segments that others than the owner may write (default false).
    pub allow_shared_write: bool,
}

/// The defaults, as `MpmcOptions::new()` has them.
#[no_mangle]
pub extern "C" fn rp_mpmc_options_default() -> RpMpmcOptions {
    RpMpmcOptions {
        slots: 1024,
        slot_size: 256,
        spin_ns: 20_000,
        liveness_interval_ns: 20_000_000,
        trust_owner_uid: -1,
        share_with_gid: -1,
        keep_segment: false,
        prefault: true,
        huge_pages: false,
        lock_in_memory: false,
        symmetric_fences: false,
        allow_shared_write: false,
    }
}

/// # Safety
/// `options` is null or points to an `RpMpmcOptions`.
unsafe fn mpmc_options(options: *const RpMpmcOptions) -> Result<MpmcOptions, RpStatus> {
    // SAFETY: null or valid, by the caller's contract.
    let o = unsafe { options.as_ref() }
        .copied()
        .unwrap_or_else(|| rp_mpmc_options_default());
    let size = |n: u64, what: &str| {
        usize::try_from(n)
            .map_err(|_| fail(RpStatus::InvalidArgument, &format!("{what} too large")))
    };
    let mut built = MpmcOptions::new()
        .slots(size(o.slots, "slots")?)
        .slot_size(size(o.slot_size, "slot_size")?)
        .spin(nanos(o.spin_ns))
        .liveness_interval(nanos(o.liveness_interval_ns))
        .keep_segment(o.keep_segment)
        .prefault(o.prefault)
        .huge_pages(o.huge_pages)
        .lock_in_memory(o.lock_in_memory)
        .symmetric_fences(o.symmetric_fences)
        .allow_shared_write(o.allow_shared_write);
    if let Ok(uid) = u32::try_from(o.trust_owner_uid) {
        built = built.trust_owner(uid);
    }
    if let Ok(gid) = u32::try_from(o.share_with_gid) {
        built = built.share_with_group(gid);
    }
    Ok(built)
}

/// A producer handle's object.
pub type MpmcProducer = Holder<Producer, WriteGrant<'static>>;
/// A consumer handle's object.
pub type MpmcConsumer = Holder<Consumer, ReadGrant<'static>>;

endpoint_impls!(Producer, WriteGrant<'static>, Consumer, ReadGrant<'static>);

impl Handled for Ring {
    const KIND: Kind = Kind::MpmcRing;
    const NAME: &'static str = "MPMC ring";
}

impl Handled for MpmcProducer {
    const KIND: Kind = Kind::MpmcProducer;
    const NAME: &'static str = "MPMC producer";
}

impl Handled for MpmcConsumer {
    const KIND: Kind = Kind::MpmcConsumer;
    const NAME: &'static str = "MPMC consumer";
}

fn make_ring(
    location: *const c_char,
    options: *const RpMpmcOptions,
    out_ring: *mut RpMpmcRing,
    create: bool,
) -> RpStatus {
    guard(|| {
        // SAFETY: forwarded from the C caller's contract.
        let (loc, opts, out) = unsafe {
            (
                parse_location(location)?,
                mpmc_options(options)?,
                out(out_ring, "out_ring")?,
            )
        };
        let ring = if create {
            opts.create(loc)
        } else {
            opts.open(loc)
        }
        .or_status()?;
        out.id = handles::insert(ring)?;
        Ok(())
    })
}

/// Creates a named MPMC ring (`NAME`, `sysv:KEY`, `file:PATH` or `@NAME`); `options` may be null.
///
/// # Safety
/// `location` a NUL-terminated string; `options` null or valid; `out_ring` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_create(
    location: *const c_char,
    options: *const RpMpmcOptions,
    out_ring: *mut RpMpmcRing,
) -> RpStatus {
    make_ring(location, options, out_ring, true)
}

/// Opens a named MPMC ring another process made.
///
/// # Safety
/// As [`rp_mpmc_create`].
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_open(
    location: *const c_char,
    options: *const RpMpmcOptions,
    out_ring: *mut RpMpmcRing,
) -> RpStatus {
    make_ring(location, options, out_ring, false)
}

/// Frees a ring handle; its producers and consumers stay usable.
#[no_mangle]
pub extern "C" fn rp_mpmc_free(ring: RpMpmcRing) -> RpStatus {
    guard(|| handles::remove::<Ring>(ring.id).map(drop))
}

/// A new producer of the ring.
///
/// # Safety
/// `out_producer` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_producer_new(
    ring: RpMpmcRing,
    out_producer: *mut RpMpmcProducer,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for a write, by the caller's contract.
        let out = unsafe { out(out_producer, "out_producer")? };
        let producer = handles::with::<Ring, _>(ring.id, |r| r.producer())?;
        out.id = handles::insert(MpmcProducer::new(producer))?;
        Ok(())
    })
}

/// A new consumer of the ring.
///
/// # Safety
/// `out_consumer` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_consumer_new(
    ring: RpMpmcRing,
    out_consumer: *mut RpMpmcConsumer,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for a write, by the caller's contract.
        let out = unsafe { out(out_consumer, "out_consumer")? };
        let consumer = handles::with::<Ring, _>(ring.id, |r| r.consumer())?;
        out.id = handles::insert(MpmcConsumer::new(consumer))?;
        Ok(())
    })
}

/// Slots completed on behalf of handles that died holding them.
///
/// # Safety
/// `out_count` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_recovered_slots(
    ring: RpMpmcRing,
    out_count: *mut u64,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for a write, by the caller's contract.
        let count = unsafe { out(out_count, "out_count")? };
        *count = handles::with::<Ring, _>(ring.id, |r| r.recovered_slots())?;
        Ok(())
    })
}

/// Frees a producer handle (an outstanding reservation is aborted).
#[no_mangle]
pub extern "C" fn rp_mpmc_producer_free(producer: RpMpmcProducer) -> RpStatus {
    guard(|| handles::remove::<MpmcProducer>(producer.id).map(drop))
}

/// Frees a consumer handle (a held message is released).
#[no_mangle]
pub extern "C" fn rp_mpmc_consumer_free(consumer: RpMpmcConsumer) -> RpStatus {
    guard(|| handles::remove::<MpmcConsumer>(consumer.id).map(drop))
}

/// Claims a slot for a message of `len` bytes (at most the slot size), failing at once with
/// `RP_STATUS_FULL`; `*out_data` is where to write it. Then commit or abort.
///
/// # Safety
/// `out_data` valid for a write; the bytes are the caller's until the commit or abort.
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_try_reserve(
    producer: RpMpmcProducer,
    len: usize,
    out_data: *mut *mut u8,
) -> RpStatus {
    endpoints::reserve::<Producer>(producer.id, len, out_data, Wait::Try)
}

/// As [`rp_mpmc_try_reserve`], waiting for a free slot.
///
/// # Safety
/// As [`rp_mpmc_try_reserve`].
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_reserve(
    producer: RpMpmcProducer,
    len: usize,
    out_data: *mut *mut u8,
) -> RpStatus {
    endpoints::reserve::<Producer>(producer.id, len, out_data, Wait::Block)
}

/// As [`rp_mpmc_reserve`], for at most `timeout_ns`.
///
/// # Safety
/// As [`rp_mpmc_try_reserve`].
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_reserve_timeout(
    producer: RpMpmcProducer,
    len: usize,
    timeout_ns: u64,
    out_data: *mut *mut u8,
) -> RpStatus {
    endpoints::reserve::<Producer>(producer.id, len, out_data, Wait::For(nanos(timeout_ns)))
}

/// Publishes the first `len` bytes of the slot (0 publishes an empty message's abort: the
/// slot is skipped by consumers).
#[no_mangle]
pub extern "C" fn rp_mpmc_commit(producer: RpMpmcProducer, len: usize) -> RpStatus {
    endpoints::commit::<Producer>(producer.id, len)
}

/// Drops the reservation.
#[no_mangle]
pub extern "C" fn rp_mpmc_abort(producer: RpMpmcProducer) -> RpStatus {
    endpoints::drop_grant::<Producer, WriteGrant<'static>>(producer.id)
}

/// Copies `len` bytes into a slot as one message, failing at once with `RP_STATUS_FULL`.
///
/// # Safety
/// `data` valid for reads of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_try_send(
    producer: RpMpmcProducer,
    data: *const u8,
    len: usize,
) -> RpStatus {
    endpoints::send::<Producer>(producer.id, data, len, Wait::Try)
}

/// As [`rp_mpmc_try_send`], waiting for a free slot.
///
/// # Safety
/// As [`rp_mpmc_try_send`].
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_send(
    producer: RpMpmcProducer,
    data: *const u8,
    len: usize,
) -> RpStatus {
    endpoints::send::<Producer>(producer.id, data, len, Wait::Block)
}

/// As [`rp_mpmc_send`], for at most `timeout_ns`.
///
/// # Safety
/// As [`rp_mpmc_try_send`].
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_send_timeout(
    producer: RpMpmcProducer,
    data: *const u8,
    len: usize,
    timeout_ns: u64,
) -> RpStatus {
    endpoints::send::<Producer>(producer.id, data, len, Wait::For(nanos(timeout_ns)))
}

/// Takes the next message in place, failing at once with `RP_STATUS_EMPTY`; valid until
/// `rp_mpmc_release`.
///
/// # Safety
/// The out-pointers valid for writes.
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_try_recv(
    consumer: RpMpmcConsumer,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::recv::<Consumer>(consumer.id, out_data, out_len, Wait::Try)
}

/// As [`rp_mpmc_try_recv`], waiting for a message.
///
/// # Safety
/// As [`rp_mpmc_try_recv`].
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_recv(
    consumer: RpMpmcConsumer,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::recv::<Consumer>(consumer.id, out_data, out_len, Wait::Block)
}

/// As [`rp_mpmc_recv`], for at most `timeout_ns`.
///
/// # Safety
/// As [`rp_mpmc_try_recv`].
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_recv_timeout(
    consumer: RpMpmcConsumer,
    timeout_ns: u64,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::recv::<Consumer>(consumer.id, out_data, out_len, Wait::For(nanos(timeout_ns)))
}

/// Hands the message's slot back.
#[no_mangle]
pub extern "C" fn rp_mpmc_release(consumer: RpMpmcConsumer) -> RpStatus {
    endpoints::drop_grant::<Consumer, ReadGrant<'static>>(consumer.id)
}

/// Releases the message taken (if one is) and takes the next in place, failing at once with
/// `RP_STATUS_EMPTY`: `rp_mpmc_release` and `rp_mpmc_try_recv` in one call. The message is
/// released whatever the outcome; one that a copying receive kept is taken, as the next.
///
/// # Safety
/// As [`rp_mpmc_try_recv`].
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_try_next(
    consumer: RpMpmcConsumer,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::next::<Consumer>(consumer.id, out_data, out_len, Wait::Try)
}

/// As [`rp_mpmc_try_next`], waiting for a message.
///
/// # Safety
/// As [`rp_mpmc_try_recv`].
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_next(
    consumer: RpMpmcConsumer,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::next::<Consumer>(consumer.id, out_data, out_len, Wait::Block)
}

/// As [`rp_mpmc_next`], for at most `timeout_ns`.
///
/// # Safety
/// As [`rp_mpmc_try_recv`].
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_next_timeout(
    consumer: RpMpmcConsumer,
    timeout_ns: u64,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::next::<Consumer>(consumer.id, out_data, out_len, Wait::For(nanos(timeout_ns)))
}

/// Copies the next message into `buf`, failing at once with `RP_STATUS_EMPTY`; one larger than `buf`
/// is `RP_STATUS_BUFFER_TOO_SMALL` (its length in `*out_len`) and is kept for the next call.
///
/// # Safety
/// `buf` valid for writes of `capacity` bytes; `out_len` for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_try_recv_into(
    consumer: RpMpmcConsumer,
    buf: *mut u8,
    capacity: usize,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::recv_into::<Consumer>(consumer.id, buf, capacity, out_len, Wait::Try)
}

/// As [`rp_mpmc_try_recv_into`], waiting for a message.
///
/// # Safety
/// As [`rp_mpmc_try_recv_into`].
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_recv_into(
    consumer: RpMpmcConsumer,
    buf: *mut u8,
    capacity: usize,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::recv_into::<Consumer>(consumer.id, buf, capacity, out_len, Wait::Block)
}

/// The producer's waits and sleeps so far.
///
/// # Safety
/// `out_stats` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_producer_stats(
    producer: RpMpmcProducer,
    out_stats: *mut RpWaitStats,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for a write, by the caller's contract.
        let stats = unsafe { out(out_stats, "out_stats")? };
        handles::with::<MpmcProducer, _>(producer.id, |p| {
            *stats = p.endpoint()?.stats().into();
            Ok(())
        })?
    })
}

/// The consumer's waits and sleeps so far.
///
/// # Safety
/// `out_stats` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_mpmc_consumer_stats(
    consumer: RpMpmcConsumer,
    out_stats: *mut RpWaitStats,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for a write, by the caller's contract.
        let stats = unsafe { out(out_stats, "out_stats")? };
        handles::with::<MpmcConsumer, _>(consumer.id, |c| {
            *stats = c.endpoint()?.stats().into();
            Ok(())
        })?
    })
}
