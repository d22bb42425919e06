//! The memory a ring lives in, and the unsafe code that turns it into references.
//!
//! A [`Region`] is a segment header plus a data area of `capacity` bytes, backed either by a
//! shared mapping or by the heap (in-process rings, unit tests, fuzzing, loom). The ring
//! algorithms see only this type and cannot tell the two apart. All raw-pointer work on ring
//! memory is here; the accessors check bounds before they make a reference.
//!
//! Under loom, frame header words live in an array of loom atomics beside the bytes, and every
//! payload access is registered on a loom cell per 8-byte word, so that loom reports a payload
//! read that is not ordered after its write.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::Result;
use crate::layout::{RingParams, SegmentHeader};
use crate::sync::AtomicU64;

enum Backing {
    Heap(Layout),
    #[cfg(not(loom))]
    /// Held for its `Drop`: unmapping (and unlinking, for the creator).
    Shared(crate::os::shm::SharedMemory),
}

/// A ring's header and data area.
pub(crate) struct Region {
    header: NonNull<SegmentHeader>,
    data: NonNull<u8>,
    capacity: usize,
    backing: Backing,
    #[cfg(loom)]
    words: Box<[AtomicU64]>,
    #[cfg(loom)]
    cells: Box<[crate::sync::TrackedCell<()>]>,
}

// SAFETY: the header is made of atomics; the data area is shared bytes whose ranges the ring
// protocol hands to one endpoint at a time (see `slice` and `slice_mut`). The backing is owned.
unsafe impl Send for Region {}
// SAFETY: as above; `&Region` gives out only atomics and protocol-guarded slices.
unsafe impl Sync for Region {}

impl Region {
    /// A fresh, initialized ring on the heap.
    pub(crate) fn heap(params: &RingParams) -> Region {
        let capacity = usize::try_from(params.capacity).expect("capacity was validated");
        let header = NonNull::from(Box::leak(Box::new(SegmentHeader::new())));
        let layout = Layout::from_size_align(capacity, 128).expect("capacity was validated");
        // SAFETY: the layout has a non-zero size (capacity >= 64).
        let data = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(data) = NonNull::new(data) else {
            std::alloc::handle_alloc_error(layout)
        };
        let region = Region {
            header,
            data,
            capacity,
            backing: Backing::Heap(layout),
            #[cfg(loom)]
            words: (0..capacity / 8).map(|_| AtomicU64::new(0)).collect(),
            #[cfg(loom)]
            cells: (0..capacity / 8)
                .map(|_| crate::sync::TrackedCell::new(()))
                .collect(),
        };
        region
            .header()
            .initialize(params, crate::os::process::pid_namespace_cached());
        region
    }

    #[cfg(feature = "testing")]
    /// A heap copy of a segment image (`bytes` as a mapping of that length would hold them),
    /// validated as a segment of `kind` is at attach. For fuzzing the attach path.
    #[cfg(not(loom))]
    pub(crate) fn from_image(bytes: &[u8], kind: u32) -> Result<(Region, RingParams)> {
        use crate::layout::DATA_OFFSET;
        if bytes.len() < DATA_OFFSET {
            return Err(crate::Error::TooSmall {
                len: bytes.len() as u64,
                needed: DATA_OFFSET as u64,
            });
        }
        let mut header = Box::new(SegmentHeader::new());
        // SAFETY: the box holds DATA_OFFSET bytes of atomics (and padding), which any bit
        // pattern makes valid; the pointer comes from our unique borrow of it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                std::ptr::from_mut::<SegmentHeader>(&mut header).cast::<u8>(),
                DATA_OFFSET,
            );
        }
        let params = header.validate(kind, bytes.len() as u64)?;
        let region = Region::heap(&params);
        // SAFETY: `region.header` is the box `heap` leaked; we replace its contents (all
        // atomics) before anyone else can see the region.
        unsafe { region.header.as_ptr().write(*header) };
        let capacity = params.capacity as usize;
        // SAFETY: validate checked DATA_OFFSET + capacity <= bytes.len(); the data area has
        // `capacity` bytes and no other reference yet.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes[DATA_OFFSET..].as_ptr(),
                region.data.as_ptr(),
                capacity,
            );
        }
        Ok((region, params))
    }

    /// Creates a named shared segment and initializes its header.
    #[cfg(not(loom))]
    pub(crate) fn create_shared(name: &str, params: &RingParams, unlink: bool) -> Result<Region> {
        let shm = crate::os::shm::SharedMemory::create(name, segment_len(params)?, unlink)?;
        Ok(Region::initialized(shm, params))
    }

    /// Creates an anonymous sealed segment (memfd) and initializes its header; the descriptor
    /// is for passing to the peer.
    #[cfg(not(loom))]
    pub(crate) fn create_memfd(params: &RingParams) -> Result<(Region, std::os::fd::OwnedFd)> {
        let (shm, fd) = crate::os::shm::SharedMemory::create_memfd(segment_len(params)?)?;
        Ok((Region::initialized(shm, params), fd))
    }

    #[cfg(not(loom))]
    fn initialized(shm: crate::os::shm::SharedMemory, params: &RingParams) -> Region {
        let region = Region::from_shared(shm, params.capacity as usize);
        region
            .header()
            .initialize(params, crate::os::process::pid_namespace_cached());
        region
    }

    /// Opens a named shared segment and validates its header.
    #[cfg(not(loom))]
    pub(crate) fn open_shared(name: &str, kind: u32) -> Result<(Region, RingParams)> {
        let shm = crate::os::shm::SharedMemory::open(name, crate::layout::DATA_OFFSET)?;
        Region::validated(shm, kind)
    }

    /// Maps a segment received as a descriptor (a sealed memfd) and validates its header.
    #[cfg(not(loom))]
    pub(crate) fn open_fd(
        fd: std::os::fd::BorrowedFd<'_>,
        kind: u32,
    ) -> Result<(Region, RingParams)> {
        let shm = crate::os::shm::SharedMemory::from_fd(fd, crate::layout::DATA_OFFSET)?;
        Region::validated(shm, kind)
    }

    #[cfg(not(loom))]
    fn validated(shm: crate::os::shm::SharedMemory, kind: u32) -> Result<(Region, RingParams)> {
        let mapped = shm.len() as u64;
        // SAFETY: the mapping is at least DATA_OFFSET bytes (checked when mapped), page-aligned,
        // and a SegmentHeader is made of atomics, for which any bit pattern is valid.
        let header = unsafe { shm.base().cast::<SegmentHeader>().as_ref() };
        let params = header.validate(kind, mapped)?;
        Ok((Region::from_shared(shm, params.capacity as usize), params))
    }

    #[cfg(not(loom))]
    fn from_shared(shm: crate::os::shm::SharedMemory, capacity: usize) -> Region {
        use crate::layout::DATA_OFFSET;
        assert!(
            shm.len() >= DATA_OFFSET + capacity,
            "mapping checked against its header"
        );
        let base = shm.base();
        Region {
            header: base.cast(),
            // SAFETY: DATA_OFFSET + capacity <= the mapping's length (asserted above).
            data: unsafe { base.add(DATA_OFFSET) },
            capacity,
            backing: Backing::Shared(shm),
        }
    }

    /// Faults a shared region's header and data area in now, so that using the ring takes no
    /// page fault (see [`SharedMemory::populate`](crate::os::shm::SharedMemory::populate)).
    /// Heap regions are in memory already.
    ///
    /// # Errors
    /// [`Error::Os`] if the system cannot back the pages.
    #[cfg(not(loom))]
    pub(crate) fn populate(&self) -> Result<()> {
        match &self.backing {
            Backing::Shared(shm) => shm.populate(crate::layout::DATA_OFFSET + self.capacity),
            _ => Ok(()),
        }
    }

    /// The segment header.
    #[inline(always)]
    pub(crate) fn header(&self) -> &SegmentHeader {
        // SAFETY: `header` points to a live SegmentHeader (heap box or mapping) for as long as
        // `self` lives, and a SegmentHeader is all atomics: shared references are fine.
        unsafe { self.header.as_ref() }
    }

    /// Under loom, frame header words live in loom atomics beside the bytes.
    #[cfg(loom)]
    fn frame_word(&self, offset: usize) -> &AtomicU64 {
        &self.words[(offset & (self.capacity - 1)) / 8]
    }

    /// Under loom, the atomic word at `offset` (8-aligned, inside the data area).
    #[cfg(loom)]
    fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(offset % 8 == 0);
        &self.words[offset / 8]
    }

    /// Under loom: the bytes, with the access registered for the race detector.
    ///
    /// # Safety
    /// As [`RingMemory::slice_mut`].
    #[cfg(loom)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice_mut(&self, offset: usize, len: usize) -> &mut [u8] {
        assert!(offset + len <= self.capacity);
        self.track(offset, len, true);
        // SAFETY: in bounds (asserted); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr().add(offset), len) }
    }

    /// Under loom: the bytes, with the access registered for the race detector.
    ///
    /// # Safety
    /// As [`RingMemory::slice`].
    #[cfg(loom)]
    unsafe fn slice(&self, offset: usize, len: usize) -> &[u8] {
        assert!(offset + len <= self.capacity);
        self.track(offset, len, false);
        // SAFETY: in bounds (asserted); not written by our side, by the caller's contract.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().add(offset), len) }
    }

    /// Registers an access to `offset..offset + len` with loom's race detector.
    #[cfg(loom)]
    fn track(&self, offset: usize, len: usize, write: bool) {
        for cell in &self.cells[offset / 8..(offset + len).div_ceil(8)] {
            if write {
                cell.with_mut(|_| ());
            } else {
                cell.with(|_| ());
            }
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Backing::Heap(layout) = self.backing {
            // SAFETY: both were allocated in `heap` with these layouts and are freed once, here.
            unsafe {
                drop(Box::from_raw(self.header.as_ptr()));
                std::alloc::dealloc(self.data.as_ptr(), layout);
            }
        }
    }
}

/// The bytes a segment for `params` needs, as a mapping length.
#[cfg(not(loom))]
fn segment_len(params: &RingParams) -> Result<usize> {
    usize::try_from(params.segment_len())
        .map_err(|_| crate::Error::InvalidConfig("segment too large"))
}

/// Replaces the contents of `buf` with `frame`. A frame of 8 to 32 bytes is copied as two
/// overlapping words (8 or 16 bytes each) instead of through a call to `memcpy`: for small
/// frames that call and its size dispatch cost more than the rest of a receive (8-byte frames
/// through `try_recv_into` ran at about 105 M/s, half the rate of the in-place forms).
#[inline(always)]
pub(crate) fn copy_frame(frame: &[u8], buf: &mut Vec<u8>) {
    /// Copies `len` bytes, `size_of::<W>() <= len <= 2 * size_of::<W>()`, as a first and a
    /// last word that overlap.
    ///
    /// # Safety
    /// `src` is readable and `dst` writable for `len` bytes, and `len` is in the range above.
    #[inline(always)]
    unsafe fn two_words<W: Copy>(src: *const u8, dst: *mut u8, len: usize) {
        let last = len - std::mem::size_of::<W>();
        // SAFETY: both words lie inside the `len` bytes the caller vouches for; unaligned
        // reads and writes of plain bytes.
        unsafe {
            let (first, tail) = (
                src.cast::<W>().read_unaligned(),
                src.add(last).cast::<W>().read_unaligned(),
            );
            dst.cast::<W>().write_unaligned(first);
            dst.add(last).cast::<W>().write_unaligned(tail);
        }
    }
    buf.clear();
    let len = frame.len();
    if !(8..=32).contains(&len) {
        buf.extend_from_slice(frame);
        return;
    }
    buf.reserve(len);
    // SAFETY: `reserve` left room for `len` bytes in `buf`, which is empty; `frame` has `len`
    // bytes; the copy initializes all of them before `set_len` exposes them.
    unsafe {
        if len <= 16 {
            two_words::<u64>(frame.as_ptr(), buf.as_mut_ptr(), len);
        } else {
            two_words::<u128>(frame.as_ptr(), buf.as_mut_ptr(), len);
        }
        buf.set_len(len);
    }
}

/// A shared [`Region`] as an endpoint holds it, with the header and data addresses and the mask
/// copied inline. The ring accessors are the hottest code in ringport: reaching the data through
/// the `Arc` costs two dependent loads per access, and since the `Region` sits behind a shared
/// pointer the compiler must reload its fields after every store into ring memory. Fields inline
/// in an endpoint borrowed `&mut` stay in registers, and the hot paths never touch the `Arc`'s
/// allocation (which may share a cache line with whatever another thread writes). Holding the
/// `Arc` keeps the memory alive, which is what makes the accessors safe.
pub(crate) struct RingMemory {
    /// Keeps the memory alive (and, under loom, reaches the modelled words).
    #[cfg_attr(not(loom), allow(dead_code))]
    region: Arc<Region>,
    header: NonNull<SegmentHeader>,
    #[cfg(not(loom))]
    data: NonNull<u8>,
    mask: usize,
}

// SAFETY: `data` points into the region that the `Arc<Region>` beside it keeps alive; Region is
// Send and Sync, and the pointer is only a cached copy of its own.
unsafe impl Send for RingMemory {}
// SAFETY: as above.
unsafe impl Sync for RingMemory {}

impl RingMemory {
    pub(crate) fn new(region: Arc<Region>) -> RingMemory {
        RingMemory {
            header: region.header,
            #[cfg(not(loom))]
            data: region.data,
            mask: region.capacity - 1,
            region,
        }
    }

    #[cfg(feature = "testing")]
    /// A copy of the header and data area, as a mapping of the segment would show them (for
    /// seeding the fuzz corpus). The caller must be the only one using the memory.
    #[cfg(not(loom))]
    pub(crate) fn image(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; crate::layout::DATA_OFFSET + self.mask + 1];
        // SAFETY: both areas are live for as long as our `Arc`; the header is DATA_OFFSET bytes
        // and the data area mask + 1; no one writes them meanwhile (the caller's contract), so
        // reading the atomics' bytes plainly races with nothing.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.header.as_ptr().cast::<u8>(),
                bytes.as_mut_ptr(),
                crate::layout::DATA_OFFSET,
            );
            std::ptr::copy_nonoverlapping(
                self.data.as_ptr(),
                bytes[crate::layout::DATA_OFFSET..].as_mut_ptr(),
                self.mask + 1,
            );
        }
        bytes
    }

    /// Another view of the same memory, for another handle.
    pub(crate) fn share(&self) -> RingMemory {
        RingMemory::new(Arc::clone(&self.region))
    }

    /// The segment header.
    #[inline(always)]
    pub(crate) fn header(&self) -> &SegmentHeader {
        // SAFETY: a copy of the region's own header pointer, live while our `Arc` is.
        unsafe { self.header.as_ref() }
    }

    /// The atomic header word of the frame at `offset` (taken modulo the capacity, rounded down
    /// to 8 bytes: never out of bounds).
    #[inline(always)]
    pub(crate) fn frame_word(&self, offset: usize) -> &AtomicU64 {
        #[cfg(not(loom))]
        {
            let offset = offset & self.mask & !7;
            // SAFETY: offset + 8 <= capacity and offset is 8-aligned within a 128-aligned area,
            // so this is an aligned, in-bounds u64, kept alive by the `Arc` in `self` for the
            // life of the reference; AtomicU64 has the layout of u64 and any bits are valid.
            unsafe { &*self.data.as_ptr().add(offset).cast::<AtomicU64>() }
        }
        #[cfg(loom)]
        self.region.frame_word(offset & self.mask)
    }

    /// The atomic word at `offset`, which need not be a power-of-two ring offset (MPMC slots).
    ///
    /// # Panics
    /// If `offset` is not 8-aligned or the word is not inside the data area (a bug in the
    /// caller: offsets come from masked positions, never straight from shared memory).
    #[inline(always)]
    pub(crate) fn word(&self, offset: usize) -> &AtomicU64 {
        #[cfg(not(loom))]
        {
            assert!(offset % 8 == 0 && offset + 8 <= self.mask + 1);
            // SAFETY: aligned and in bounds (asserted) of memory the `Arc` keeps alive;
            // AtomicU64 has the layout of u64 and any bits are valid.
            unsafe { &*self.data.as_ptr().add(offset).cast::<AtomicU64>() }
        }
        #[cfg(loom)]
        self.region.word(offset)
    }

    /// The payload bytes `offset..offset + len`, to write.
    ///
    /// # Safety
    /// Under the ring protocol the caller must own this range exclusively (a producer's grant)
    /// for the life of the returned slice, and no other reference to it may exist.
    ///
    /// # Panics
    /// If the range is not inside the data area (a bug in the caller, never a peer's input).
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut(&self, offset: usize, len: usize) -> &mut [u8] {
        // One compare: offset and len are below 2^40 here, so the sum cannot overflow.
        assert!(offset + len <= self.mask + 1);
        // SAFETY: in bounds (asserted); exclusive by the caller's contract.
        unsafe { self.slice_mut_unchecked(offset, len) }
    }

    /// [`slice_mut`](Self::slice_mut) for a range the caller has proved in bounds: the hot
    /// paths of the SPSC ring, whose claim (producer) or header check (consumer) already bounds
    /// the frame by the capacity, so that the assert would be a second compare on every frame.
    ///
    /// # Safety
    /// As [`slice_mut`](Self::slice_mut), and `offset + len` must not exceed the capacity.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut_unchecked(&self, offset: usize, len: usize) -> &mut [u8] {
        #[cfg(not(loom))]
        {
            debug_assert!(offset + len <= self.mask + 1);
            // SAFETY: in bounds and exclusive, by the caller's contract; the `Arc` keeps the
            // memory alive.
            unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr().add(offset), len) }
        }
        // SAFETY: the caller's contract is stronger than the one `Region::slice_mut` asks for.
        #[cfg(loom)]
        unsafe {
            self.region.slice_mut(offset, len)
        }
    }

    /// [`slice`](Self::slice) for a range the caller has proved in bounds (see
    /// [`slice_mut_unchecked`](Self::slice_mut_unchecked)).
    ///
    /// # Safety
    /// As [`slice`](Self::slice), and `offset + len` must not exceed the capacity.
    #[inline(always)]
    pub(crate) unsafe fn slice_unchecked(&self, offset: usize, len: usize) -> &[u8] {
        #[cfg(not(loom))]
        {
            debug_assert!(offset + len <= self.mask + 1);
            // SAFETY: in bounds and not written by our side, by the caller's contract; the
            // `Arc` keeps the memory alive.
            unsafe { std::slice::from_raw_parts(self.data.as_ptr().add(offset), len) }
        }
        // SAFETY: the caller's contract is stronger than the one `Region::slice` asks for.
        #[cfg(loom)]
        unsafe {
            self.region.slice(offset, len)
        }
    }

    /// The payload bytes `offset..offset + len`, to read.
    ///
    /// # Safety
    /// Under the ring protocol the range must be published to the caller (a consumer's frame)
    /// and no endpoint of ours may write it while the returned slice lives. A hostile peer can
    /// still write it: the bytes may then change, but nothing in ringport depends on them.
    ///
    /// # Panics
    /// If the range is not inside the data area (a bug in the caller, never a peer's input).
    #[inline(always)]
    pub(crate) unsafe fn slice(&self, offset: usize, len: usize) -> &[u8] {
        assert!(offset + len <= self.mask + 1);
        // SAFETY: in bounds (asserted); not written by our side, by the caller's contract.
        unsafe { self.slice_unchecked(offset, len) }
    }

    /// Asks the CPU to fetch the cache line at `offset` (modulo the capacity) for writing. A
    /// streaming producer calls it some lines ahead of where it writes: its stores to a line the
    /// consumer last read wait for that line to be taken back, and every later store queues
    /// behind them; fetched early, the line is ours by the time the stores reach it. A hint
    /// only: it cannot fault, and changes no memory.
    #[inline(always)]
    pub(crate) fn prefetch_for_write(&self, offset: usize) {
        #[cfg(all(not(loom), target_arch = "x86_64"))]
        {
            let offset = offset & self.mask;
            // SAFETY: `offset` is inside the data area, which the `Arc` keeps alive; PREFETCHW
            // reads and writes no architectural state, and CPUs without it run it as a NOP.
            unsafe {
                std::arch::asm!(
                    "prefetchw [{}]",
                    in(reg) self.data.as_ptr().add(offset),
                    options(nostack, preserves_flags, readonly)
                );
            }
        }
        #[cfg(any(loom, not(target_arch = "x86_64")))]
        let _ = offset;
    }
}
