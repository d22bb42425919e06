//! The SPSC ring in C: a producer and a consumer handle, reserve / commit / abort in place,
//! receive / release in place, the copying forms, batches, and each in its `try_`, blocking and
//! `_timeout` forms.

use std::ffi::{c_char, c_int, c_void};
use std::os::fd::{BorrowedFd, IntoRawFd};

use ringport::spsc::{Consumer, Producer, ReadGrant, WriteGrant};
use ringport::{Location, SpscOptions};

use crate::common::{peer_status, Holder, RpPeerStatus, RpWaitStats, Wait};
use crate::cptr::{bytes, nanos, out, slice, string};
use crate::endpoints::{self, endpoint_impls};
use crate::handles::{self, Handled, Kind};
use crate::status::{fail, guard, OrStatus, RpStatus};

/// A producer handle (0 is no handle).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RpProducer {
    /// The id (0: no handle).
    pub id: u64,
}

/// A consumer handle (0 is no handle).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RpConsumer {
    /// The id (0: no handle).
    pub id: u64,
}

/// How an SPSC ring is made or opened. Start from `rp_spsc_options_default()`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RpSpscOptions {
    /// Bytes of the data area (default 1 MiB).
    pub capacity: u64,
    /// The largest frame; 0: the default (a quarter of the capacity, see the Rust docs).
    pub max_frame: u64,
    /// How long a blocking call spins before it sleeps, in nanoseconds (default 20 us).
    pub spin_ns: u64,
    /// How often a waiting endpoint checks a peer the kernel cannot watch (default 20 ms).
    pub liveness_interval_ns: u64,
    /// How long a consumer that drained a stream waits before it sleeps (default 1 us).
    pub stream_pause_ns: u64,
    /// Trust segments of this uid as well as our own; -1: none.
    pub trust_owner_uid: i64,
    /// Create the segment mode 0660 with this group; -1: mode 0600.
    pub share_with_gid: i64,
    /// Leave the segment's name when the creator goes (default false: it is removed).
    pub keep_segment: bool,
    /// Fault the pages in when mapping (default true).
    pub prefault: bool,
    /// Back the ring with huge pages (default false).
    pub huge_pages: bool,
    /// Lock the ring in memory (default false).
    pub lock_in_memory: bool,
    /// A consumer that takes over delivers again the frame its dead predecessor held.
    pub redeliver_in_hand: bool,
    /// Fence every publish (default false: see docs/DESIGN.md, the wait protocol).
    pub symmetric_fences: bool,
    /// Open segments that others than the owner may write (default false).
    pub allow_shared_write: bool,
}

/// The defaults, as `SpscOptions::new()` has them.
#[no_mangle]
pub extern "C" fn rp_spsc_options_default() -> RpSpscOptions {
    RpSpscOptions {
        capacity: 1 << 20,
        max_frame: 0,
        spin_ns: 20_000,
        liveness_interval_ns: 20_000_000,
        stream_pause_ns: 1_000,
        trust_owner_uid: -1,
        share_with_gid: -1,
        keep_segment: false,
        prefault: true,
        huge_pages: false,
        lock_in_memory: false,
        redeliver_in_hand: false,
        symmetric_fences: false,
        allow_shared_write: false,
    }
}

/// The Rust options of `options` (null: the defaults).
///
/// # Safety
/// `options` is null or points to an `RpSpscOptions`.
unsafe fn spsc_options(options: *const RpSpscOptions) -> Result<SpscOptions, RpStatus> {
    // SAFETY: null or valid, by the caller's contract.
    let o = unsafe { options.as_ref() }
        .copied()
        .unwrap_or_else(|| rp_spsc_options_default());
    let size = |n: u64, what: &str| {
        usize::try_from(n)
            .map_err(|_| fail(RpStatus::InvalidArgument, &format!("{what} too large")))
    };
    let mut built = SpscOptions::new()
        .capacity(size(o.capacity, "capacity")?)
        .spin(nanos(o.spin_ns))
        .liveness_interval(nanos(o.liveness_interval_ns))
        .stream_pause(nanos(o.stream_pause_ns))
        .keep_segment(o.keep_segment)
        .prefault(o.prefault)
        .huge_pages(o.huge_pages)
        .lock_in_memory(o.lock_in_memory)
        .redeliver_in_hand(o.redeliver_in_hand)
        .symmetric_fences(o.symmetric_fences)
        .allow_shared_write(o.allow_shared_write);
    if o.max_frame != 0 {
        built = built.max_frame(size(o.max_frame, "max_frame")?);
    }
    if let Ok(uid) = u32::try_from(o.trust_owner_uid) {
        built = built.trust_owner(uid);
    }
    if let Ok(gid) = u32::try_from(o.share_with_gid) {
        built = built.share_with_group(gid);
    }
    Ok(built)
}

/// A location as the command line spells it: `NAME` (POSIX), `sysv:KEY`, `file:PATH`, `@NAME`.
///
/// # Safety
/// As [`string`].
pub(crate) unsafe fn location(ptr: *const c_char) -> Result<Location, RpStatus> {
    // SAFETY: forwarded.
    let text = unsafe { string(ptr, "location") }?;
    Location::parse(text).or_status()
}

/// A producer handle's object: the producer and the reservation it may have outstanding.
pub type SpscProducer = Holder<Producer, WriteGrant<'static>>;
/// A consumer handle's object: the consumer and the frame it may hold.
pub type SpscConsumer = Holder<Consumer, ReadGrant<'static>>;

endpoint_impls!(Producer, WriteGrant<'static>, Consumer, ReadGrant<'static>);

impl Handled for SpscProducer {
    const KIND: Kind = Kind::SpscProducer;
    const NAME: &'static str = "SPSC producer";
}

impl Handled for SpscConsumer {
    const KIND: Kind = Kind::SpscConsumer;
    const NAME: &'static str = "SPSC consumer";
}

// ---- making and freeing ----

/// Makes or opens a named ring's endpoint with `make` and gives its handle in `*out_id`.
///
/// # Safety
/// `location` a NUL-terminated string; `options` null or valid; `out_id` valid for a write.
unsafe fn named<E: 'static, G: 'static>(
    location: *const c_char,
    options: *const RpSpscOptions,
    out_id: *mut u64,
    make: impl FnOnce(SpscOptions, Location) -> ringport::Result<E>,
) -> RpStatus
where
    Holder<E, G>: Handled,
{
    guard(|| {
        // SAFETY: forwarded from the caller's contract.
        let (loc, opts, out) = unsafe {
            (
                self::location(location)?,
                spsc_options(options)?,
                out(out_id, "out")?,
            )
        };
        *out = handles::insert(Holder::<E, G>::new(make(opts, loc).or_status()?))?;
        Ok(())
    })
}

/// Creates a named ring (`location`: `NAME`, `sysv:KEY`, `file:PATH` or `@NAME`) and takes its
/// producer role. `options` may be null (the defaults).
///
/// # Safety
/// `location` is a NUL-terminated string; `options` null or valid; `out` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_spsc_create_producer(
    location: *const c_char,
    options: *const RpSpscOptions,
    out_producer: *mut RpProducer,
) -> RpStatus {
    // SAFETY: forwarded from the caller's contract; the handle is a one-field repr(C) struct.
    unsafe {
        named::<Producer, WriteGrant<'static>>(location, options, out_producer.cast(), |o, l| {
            o.create_producer(l)
        })
    }
}

/// Creates a named ring and takes its consumer role.
///
/// # Safety
/// As [`rp_spsc_create_producer`].
#[no_mangle]
pub unsafe extern "C" fn rp_spsc_create_consumer(
    location: *const c_char,
    options: *const RpSpscOptions,
    out_consumer: *mut RpConsumer,
) -> RpStatus {
    // SAFETY: forwarded from the caller's contract; the handle is a one-field repr(C) struct.
    unsafe {
        named::<Consumer, ReadGrant<'static>>(location, options, out_consumer.cast(), |o, l| {
            o.create_consumer(l)
        })
    }
}

/// Opens a named ring another process made and takes its producer role.
///
/// # Safety
/// As [`rp_spsc_create_producer`].
#[no_mangle]
pub unsafe extern "C" fn rp_spsc_open_producer(
    location: *const c_char,
    options: *const RpSpscOptions,
    out_producer: *mut RpProducer,
) -> RpStatus {
    // SAFETY: forwarded from the caller's contract; the handle is a one-field repr(C) struct.
    unsafe {
        named::<Producer, WriteGrant<'static>>(location, options, out_producer.cast(), |o, l| {
            o.open_producer(l)
        })
    }
}

/// Opens a named ring another process made and takes its consumer role.
///
/// # Safety
/// As [`rp_spsc_create_producer`].
#[no_mangle]
pub unsafe extern "C" fn rp_spsc_open_consumer(
    location: *const c_char,
    options: *const RpSpscOptions,
    out_consumer: *mut RpConsumer,
) -> RpStatus {
    // SAFETY: forwarded from the caller's contract; the handle is a one-field repr(C) struct.
    unsafe {
        named::<Consumer, ReadGrant<'static>>(location, options, out_consumer.cast(), |o, l| {
            o.open_consumer(l)
        })
    }
}

/// Creates an unnamed ring in a sealed memfd and takes its producer role; `*out_fd` is the
/// memfd (close-on-exec; the caller owns it) for the consumer's process
/// ([`rp_spsc_open_consumer_fd`]), passed by inheritance or `SCM_RIGHTS`.
///
/// # Safety
/// `options` null or valid; the out-pointers valid for writes.
#[no_mangle]
pub unsafe extern "C" fn rp_spsc_create_producer_memfd(
    options: *const RpSpscOptions,
    out_producer: *mut RpProducer,
    out_fd: *mut c_int,
) -> RpStatus {
    guard(|| {
        // SAFETY: forwarded from the caller's contract.
        let (opts, out, fd_out) = unsafe {
            (
                spsc_options(options)?,
                out(out_producer, "out_producer")?,
                out(out_fd, "out_fd")?,
            )
        };
        let (producer, fd) = opts.create_producer_memfd().or_status()?;
        out.id = handles::insert(Holder::new(producer))?;
        *fd_out = fd.into_raw_fd();
        Ok(())
    })
}

/// Opens the consumer role of the ring in memfd `fd` (the caller keeps `fd`).
///
/// # Safety
/// `fd` is an open descriptor for the call; `options` null or valid; `out` valid.
#[no_mangle]
pub unsafe extern "C" fn rp_spsc_open_consumer_fd(
    fd: c_int,
    options: *const RpSpscOptions,
    out_consumer: *mut RpConsumer,
) -> RpStatus {
    guard(|| {
        if fd < 0 {
            return Err(fail(RpStatus::InvalidArgument, "a negative descriptor"));
        }
        // SAFETY: forwarded from the caller's contract.
        let (opts, out) = unsafe { (spsc_options(options)?, out(out_consumer, "out_consumer")?) };
        // SAFETY: open for the call, by the caller's contract; borrowed, not taken.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let consumer = opts.open_consumer_fd(fd).or_status()?;
        out.id = handles::insert(Holder::new(consumer))?;
        Ok(())
    })
}

/// Frees a producer handle (an outstanding reservation is aborted; the consumer then sees the
/// producer gone). The handle is invalid afterwards.
#[no_mangle]
pub extern "C" fn rp_producer_free(producer: RpProducer) -> RpStatus {
    guard(|| handles::remove::<SpscProducer>(producer.id).map(drop))
}

/// Frees a consumer handle (a held frame is released).
#[no_mangle]
pub extern "C" fn rp_consumer_free(consumer: RpConsumer) -> RpStatus {
    guard(|| handles::remove::<SpscConsumer>(consumer.id).map(drop))
}

// ---- the producer ----

/// Reserves room for a frame of `len` bytes, failing at once with `RP_STATUS_FULL`; `*out_data` is
/// where to write it. Then `rp_producer_commit` or `rp_producer_abort`.
///
/// # Safety
/// `out_data` valid for a write. The `len` bytes at `*out_data` are the caller's to write until
/// the commit or abort (or the handle's free), and no longer.
#[no_mangle]
pub unsafe extern "C" fn rp_producer_try_reserve(
    producer: RpProducer,
    len: usize,
    out_data: *mut *mut u8,
) -> RpStatus {
    endpoints::reserve::<Producer>(producer.id, len, out_data, Wait::Try)
}

/// As [`rp_producer_try_reserve`], waiting for room (spinning, then asleep).
///
/// # Safety
/// As [`rp_producer_try_reserve`].
#[no_mangle]
pub unsafe extern "C" fn rp_producer_reserve(
    producer: RpProducer,
    len: usize,
    out_data: *mut *mut u8,
) -> RpStatus {
    endpoints::reserve::<Producer>(producer.id, len, out_data, Wait::Block)
}

/// As [`rp_producer_reserve`], for at most `timeout_ns` (then `RP_STATUS_TIMEOUT`).
///
/// # Safety
/// As [`rp_producer_try_reserve`].
#[no_mangle]
pub unsafe extern "C" fn rp_producer_reserve_timeout(
    producer: RpProducer,
    len: usize,
    timeout_ns: u64,
    out_data: *mut *mut u8,
) -> RpStatus {
    endpoints::reserve::<Producer>(producer.id, len, out_data, Wait::For(nanos(timeout_ns)))
}

/// Publishes the first `len` bytes of the reservation as a frame (`len` 0 aborts it); more
/// than was reserved is `RP_STATUS_INVALID_LENGTH` and the reservation stays.
#[no_mangle]
pub extern "C" fn rp_producer_commit(producer: RpProducer, len: usize) -> RpStatus {
    endpoints::commit::<Producer>(producer.id, len)
}

/// Drops the reservation: the consumer sees nothing of it.
#[no_mangle]
pub extern "C" fn rp_producer_abort(producer: RpProducer) -> RpStatus {
    endpoints::drop_grant::<Producer, WriteGrant<'static>>(producer.id)
}

/// Copies `len` bytes at `data` into the ring as one frame, failing at once with `RP_STATUS_FULL`.
///
/// # Safety
/// `data` valid for reads of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn rp_producer_try_send(
    producer: RpProducer,
    data: *const u8,
    len: usize,
) -> RpStatus {
    endpoints::send::<Producer>(producer.id, data, len, Wait::Try)
}

/// As [`rp_producer_try_send`], waiting for room.
///
/// # Safety
/// As [`rp_producer_try_send`].
#[no_mangle]
pub unsafe extern "C" fn rp_producer_send(
    producer: RpProducer,
    data: *const u8,
    len: usize,
) -> RpStatus {
    endpoints::send::<Producer>(producer.id, data, len, Wait::Block)
}

/// As [`rp_producer_send`], for at most `timeout_ns`.
///
/// # Safety
/// As [`rp_producer_try_send`].
#[no_mangle]
pub unsafe extern "C" fn rp_producer_send_timeout(
    producer: RpProducer,
    data: *const u8,
    len: usize,
    timeout_ns: u64,
) -> RpStatus {
    endpoints::send::<Producer>(producer.id, data, len, Wait::For(nanos(timeout_ns)))
}

/// A buffer: `len` bytes at `data`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RpBuffer {
    /// The first byte (may be null when `len` is 0).
    pub data: *const u8,
    /// Its length.
    pub len: usize,
}

fn send_many(
    producer: RpProducer,
    frames: *const RpBuffer,
    count: usize,
    out_sent: *mut usize,
    blocking: bool,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for `count` buffers and a write, by the caller's contract.
        let (frames, sent) = unsafe { (slice(frames, count)?, out(out_sent, "out_sent")?) };
        *sent = 0;
        handles::with::<SpscProducer, _>(producer.id, |p| {
            let inner = p.endpoint()?;
            let mut i = 0;
            while i < count {
                // As many as fit, published together.
                let mut batch = inner.write_batch();
                while i < count {
                    // SAFETY: each buffer valid for its length, by the caller's contract.
                    let frame = unsafe { bytes(frames[i].data, frames[i].len)? };
                    match batch.try_push(frame.len()) {
                        Ok(room) => room.copy_from_slice(frame),
                        Err(ringport::Error::Full) => break,
                        Err(e) => {
                            *sent += batch.commit();
                            return Err(crate::status::from_error(e));
                        }
                    }
                    i += 1;
                }
                *sent += batch.commit();
                if i < count {
                    if !blocking {
                        return if *sent == 0 {
                            Err(crate::status::from_error(ringport::Error::Full))
                        } else {
                            Ok(())
                        };
                    }
                    // SAFETY: as above.
                    let frame = unsafe { bytes(frames[i].data, frames[i].len)? };
                    inner.send(frame).or_status()?;
                    *sent += 1;
                    i += 1;
                }
            }
            Ok(())
        })?
    })
}

/// Copies the `count` frames at `frames` into the ring, as many as fit, published together;
/// `*out_sent` says how many. `RP_STATUS_FULL` if none fit.
///
/// # Safety
/// `frames` valid for `count` buffers, each valid for its length; `out_sent` for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_producer_try_send_many(
    producer: RpProducer,
    frames: *const RpBuffer,
    count: usize,
    out_sent: *mut usize,
) -> RpStatus {
    send_many(producer, frames, count, out_sent, false)
}

/// As [`rp_producer_try_send_many`], waiting for room until all are sent.
///
/// # Safety
/// As [`rp_producer_try_send_many`].
#[no_mangle]
pub unsafe extern "C" fn rp_producer_send_many(
    producer: RpProducer,
    frames: *const RpBuffer,
    count: usize,
    out_sent: *mut usize,
) -> RpStatus {
    send_many(producer, frames, count, out_sent, true)
}

// ---- the consumer ----

/// Borrows the next frame in place, failing at once with `RP_STATUS_EMPTY`: `*out_data` and
/// `*out_len` are its bytes, valid until `rp_consumer_release` (or the handle's free).
///
/// # Safety
/// The out-pointers valid for writes.
#[no_mangle]
pub unsafe extern "C" fn rp_consumer_try_recv(
    consumer: RpConsumer,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::recv::<Consumer>(consumer.id, out_data, out_len, Wait::Try)
}

/// As [`rp_consumer_try_recv`], waiting for a frame (`RP_STATUS_PEER_GONE` once the producer has gone
/// and everything it committed was received).
///
/// # Safety
/// As [`rp_consumer_try_recv`].
#[no_mangle]
pub unsafe extern "C" fn rp_consumer_recv(
    consumer: RpConsumer,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::recv::<Consumer>(consumer.id, out_data, out_len, Wait::Block)
}

/// As [`rp_consumer_recv`], for at most `timeout_ns`.
///
/// # Safety
/// As [`rp_consumer_try_recv`].
#[no_mangle]
pub unsafe extern "C" fn rp_consumer_recv_timeout(
    consumer: RpConsumer,
    timeout_ns: u64,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::recv::<Consumer>(consumer.id, out_data, out_len, Wait::For(nanos(timeout_ns)))
}

/// Hands the borrowed frame back to the producer.
#[no_mangle]
pub extern "C" fn rp_consumer_release(consumer: RpConsumer) -> RpStatus {
    endpoints::drop_grant::<Consumer, ReadGrant<'static>>(consumer.id)
}

/// Releases the frame borrowed (if one is) and borrows the next in place, failing at once with
/// `RP_STATUS_EMPTY`: a receive loop's `rp_consumer_release` and `rp_consumer_try_recv` in one
/// call. The frame is released whatever the outcome; a frame that a copying receive kept (too
/// large for its buffer) is not released but borrowed, as the next frame.
///
/// # Safety
/// As [`rp_consumer_try_recv`].
#[no_mangle]
pub unsafe extern "C" fn rp_consumer_try_next(
    consumer: RpConsumer,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::next::<Consumer>(consumer.id, out_data, out_len, Wait::Try)
}

/// As [`rp_consumer_try_next`], waiting for a frame, as [`rp_consumer_recv`].
///
/// # Safety
/// As [`rp_consumer_try_recv`].
#[no_mangle]
pub unsafe extern "C" fn rp_consumer_next(
    consumer: RpConsumer,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::next::<Consumer>(consumer.id, out_data, out_len, Wait::Block)
}

/// As [`rp_consumer_next`], for at most `timeout_ns`.
///
/// # Safety
/// As [`rp_consumer_try_recv`].
#[no_mangle]
pub unsafe extern "C" fn rp_consumer_next_timeout(
    consumer: RpConsumer,
    timeout_ns: u64,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::next::<Consumer>(consumer.id, out_data, out_len, Wait::For(nanos(timeout_ns)))
}

/// Copies the next frame into `buf` (`capacity` bytes), failing at once with `RP_STATUS_EMPTY`;
/// `*out_len` is its length. A frame larger than `buf` is `RP_STATUS_BUFFER_TOO_SMALL` with its length
/// in `*out_len`, and is kept for the next copying receive.
///
/// # Safety
/// `buf` valid for writes of `capacity` bytes; `out_len` for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_consumer_try_recv_into(
    consumer: RpConsumer,
    buf: *mut u8,
    capacity: usize,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::recv_into::<Consumer>(consumer.id, buf, capacity, out_len, Wait::Try)
}

/// As [`rp_consumer_try_recv_into`], waiting for a frame.
///
/// # Safety
/// As [`rp_consumer_try_recv_into`].
#[no_mangle]
pub unsafe extern "C" fn rp_consumer_recv_into(
    consumer: RpConsumer,
    buf: *mut u8,
    capacity: usize,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::recv_into::<Consumer>(consumer.id, buf, capacity, out_len, Wait::Block)
}

/// As [`rp_consumer_recv_into`], for at most `timeout_ns`.
///
/// # Safety
/// As [`rp_consumer_try_recv_into`].
#[no_mangle]
pub unsafe extern "C" fn rp_consumer_recv_into_timeout(
    consumer: RpConsumer,
    buf: *mut u8,
    capacity: usize,
    timeout_ns: u64,
    out_len: *mut usize,
) -> RpStatus {
    endpoints::recv_into::<Consumer>(
        consumer.id,
        buf,
        capacity,
        out_len,
        Wait::For(nanos(timeout_ns)),
    )
}

/// Called with each frame of a batch, in place; the bytes are valid for the call only. It must
/// not call ringport on the same handle.
pub type RpFrameFn =
    Option<unsafe extern "C" fn(context: *mut c_void, data: *const u8, len: usize)>;

fn recv_many(
    consumer: RpConsumer,
    max: usize,
    on_frame: RpFrameFn,
    context: *mut c_void,
    out_count: *mut usize,
    wait: Wait,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for a write, by the caller's contract.
        let count = unsafe { out(out_count, "out_count")? };
        let Some(on_frame) = on_frame else {
            return Err(fail(RpStatus::InvalidArgument, "on_frame is null"));
        };
        *count = 0;
        handles::with::<SpscConsumer, _>(consumer.id, |c| {
            let inner = c.endpoint()?;
            // SAFETY: the caller's function, given the frame's bytes for the call and the
            // caller's context.
            let each = |frame: &[u8]| unsafe { on_frame(context, frame.as_ptr(), frame.len()) };
            *count = match wait {
                Wait::Try => inner.try_recv_many(max, each),
                Wait::Block => inner.recv_many(max, each),
                Wait::For(t) => inner.recv_many_timeout(max, each, t),
            }
            .or_status()?;
            Ok(())
        })?
    })
}

/// Calls `on_frame` on up to `max` frames in place and releases them together, failing at once
/// with `RP_STATUS_EMPTY`; `*out_count` says how many.
///
/// # Safety
/// `on_frame` a valid function; `out_count` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_consumer_try_recv_many(
    consumer: RpConsumer,
    max: usize,
    on_frame: RpFrameFn,
    context: *mut c_void,
    out_count: *mut usize,
) -> RpStatus {
    recv_many(consumer, max, on_frame, context, out_count, Wait::Try)
}

/// As [`rp_consumer_try_recv_many`], waiting for at least one frame.
///
/// # Safety
/// As [`rp_consumer_try_recv_many`].
#[no_mangle]
pub unsafe extern "C" fn rp_consumer_recv_many(
    consumer: RpConsumer,
    max: usize,
    on_frame: RpFrameFn,
    context: *mut c_void,
    out_count: *mut usize,
) -> RpStatus {
    recv_many(consumer, max, on_frame, context, out_count, Wait::Block)
}

// ---- status and counters ----

/// What the producer knows of its consumer.
///
/// # Safety
/// `out_status` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_producer_peer_status(
    producer: RpProducer,
    out_status: *mut RpPeerStatus,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for a write, by the caller's contract.
        let status = unsafe { out(out_status, "out_status")? };
        handles::with::<SpscProducer, _>(producer.id, |p| {
            *status = peer_status(p.endpoint()?.peer_status());
            Ok(())
        })?
    })
}

/// What the consumer knows of its producer.
///
/// # Safety
/// `out_status` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_consumer_peer_status(
    consumer: RpConsumer,
    out_status: *mut RpPeerStatus,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for a write, by the caller's contract.
        let status = unsafe { out(out_status, "out_status")? };
        handles::with::<SpscConsumer, _>(consumer.id, |c| {
            *status = peer_status(c.endpoint()?.peer_status());
            Ok(())
        })?
    })
}

/// Waits up to `timeout_ns` for a consumer to attach (or a replacement, after one went).
#[no_mangle]
pub extern "C" fn rp_producer_wait_for_peer(producer: RpProducer, timeout_ns: u64) -> RpStatus {
    guard(|| {
        handles::with::<SpscProducer, _>(producer.id, |p| {
            p.endpoint()?.wait_for_peer(nanos(timeout_ns)).or_status()
        })?
    })
}

/// Waits up to `timeout_ns` for a producer to attach (or a replacement).
#[no_mangle]
pub extern "C" fn rp_consumer_wait_for_peer(consumer: RpConsumer, timeout_ns: u64) -> RpStatus {
    guard(|| {
        handles::with::<SpscConsumer, _>(consumer.id, |c| {
            c.endpoint()?.wait_for_peer(nanos(timeout_ns)).or_status()
        })?
    })
}

/// The producer's waits, sleeps and barriers so far (`RP_STATUS_GRANT_OUTSTANDING` while a
/// reservation is: so for the sizes).
///
/// # Safety
/// `out_stats` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_producer_stats(
    producer: RpProducer,
    out_stats: *mut RpWaitStats,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for a write, by the caller's contract.
        let stats = unsafe { out(out_stats, "out_stats")? };
        handles::with::<SpscProducer, _>(producer.id, |p| {
            *stats = p.endpoint()?.stats().into();
            Ok(())
        })?
    })
}

/// The consumer's waits, sleeps, barriers and stream pauses so far.
///
/// # Safety
/// `out_stats` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_consumer_stats(
    consumer: RpConsumer,
    out_stats: *mut RpWaitStats,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for a write, by the caller's contract.
        let stats = unsafe { out(out_stats, "out_stats")? };
        handles::with::<SpscConsumer, _>(consumer.id, |c| {
            *stats = c.endpoint()?.stats().into();
            Ok(())
        })?
    })
}

/// The ring's data area and its largest frame, in bytes.
///
/// # Safety
/// The out-pointers valid for writes (either may be null).
#[no_mangle]
pub unsafe extern "C" fn rp_producer_sizes(
    producer: RpProducer,
    out_capacity: *mut usize,
    out_max_frame: *mut usize,
) -> RpStatus {
    guard(|| {
        handles::with::<SpscProducer, _>(producer.id, |p| {
            let inner = p.endpoint()?;
            // SAFETY: null or valid for writes, by the caller's contract.
            unsafe {
                if let Some(c) = out_capacity.as_mut() {
                    *c = inner.capacity();
                }
                if let Some(m) = out_max_frame.as_mut() {
                    *m = inner.max_frame();
                }
            }
            Ok(())
        })?
    })
}
