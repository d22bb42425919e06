//! Ring memory and the accessors that make references into it: all the raw-pointer work on a
//! ring's header and data area (the model's implementation keeps the frame words in loom
//! atomics instead).

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;

use super::shm::SharedMemory;
use crate::error::Result;
use crate::layout::{SegmentHeader, SubscriberSlot, DATA_OFFSET, SUBSCRIBER_SLOT_LEN};
use crate::sync::AtomicU64;

enum Backing {
    /// The data area's layout (the header and the subscriber table are boxes).
    Heap(Layout),
    /// Held for its `Drop`: unmapping (and unlinking, for the creator).
    Shared(SharedMemory),
}

/// A ring's header, data area of `capacity` bytes and subscriber table of `slots` slots (none
/// but for publish-subscribe), on the heap or in a shared mapping. The algorithms see only
/// [`RingMemory`] views of it and cannot tell the two apart.
pub(crate) struct Memory {
    header: NonNull<SegmentHeader>,
    data: NonNull<u8>,
    capacity: usize,
    table: NonNull<SubscriberSlot>,
    slots: usize,
    backing: Backing,
}

// SAFETY: the header is made of atomics; the data area is shared bytes whose ranges the ring
// protocols hand to one endpoint at a time (see `RingMemory::slice` and `slice_mut`). The
// backing is owned.
unsafe impl Send for Memory {}
// SAFETY: as above; `&Memory` gives out only atomics and protocol-guarded slices.
unsafe impl Sync for Memory {}

impl Memory {
    /// A zeroed header and `capacity` zeroed bytes of data on the heap (a ring in one process).
    ///
    /// # Panics
    /// If `capacity` is zero or not a multiple of 8 (a caller's bug: geometries are validated
    /// first).
    #[cfg(test)]
    pub(crate) fn heap(capacity: usize) -> Memory {
        Memory::heap_with_slots(capacity, 0)
    }

    /// [`heap`](Self::heap) with a table of `slots` zeroed subscriber slots.
    ///
    /// # Panics
    /// As [`heap`](Self::heap).
    pub(crate) fn heap_with_slots(capacity: usize, slots: usize) -> Memory {
        assert!(capacity > 0 && capacity % 8 == 0, "capacity was validated");
        let header = NonNull::from(Box::leak(Box::new(SegmentHeader::new())));
        let table: Box<[SubscriberSlot]> = (0..slots).map(|_| SubscriberSlot::new()).collect();
        let table = NonNull::from(Box::leak(table)).cast::<SubscriberSlot>();
        let layout = Layout::from_size_align(capacity, 128).expect("capacity was validated");
        // SAFETY: the layout has a non-zero size (asserted above).
        let data = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(data) = NonNull::new(data) else {
            std::alloc::handle_alloc_error(layout)
        };
        Memory {
            header,
            data,
            capacity,
            table,
            slots,
            backing: Backing::Heap(layout),
        }
    }

    /// A mapped segment whose header says its data area is `capacity` bytes, followed by
    /// `slots` subscriber slots.
    ///
    /// # Panics
    /// If the mapping is shorter than the header, data area and table, or a table would not be
    /// aligned to its slots (a caller's bug: the length is checked against the header first,
    /// and a ring with slots has a capacity that is a multiple of a slot).
    pub(crate) fn mapped(shm: SharedMemory, capacity: usize, slots: usize) -> Memory {
        let table_len = slots * SUBSCRIBER_SLOT_LEN as usize;
        assert!(
            shm.len() >= DATA_OFFSET + capacity + table_len,
            "mapping checked against its header"
        );
        assert!(
            slots == 0 || capacity % SUBSCRIBER_SLOT_LEN as usize == 0,
            "geometry checked"
        );
        let base = shm.base();
        Memory {
            header: base.cast(),
            // SAFETY: DATA_OFFSET + capacity <= the mapping's length (asserted above).
            data: unsafe { base.add(DATA_OFFSET) },
            capacity,
            // SAFETY: the table's end is within the mapping (asserted above); page-aligned
            // base plus multiples of 128 keep it aligned to its slots.
            table: unsafe { base.add(DATA_OFFSET + capacity) }.cast(),
            slots,
            backing: Backing::Shared(shm),
        }
    }

    fn table_len(&self) -> usize {
        self.slots * SUBSCRIBER_SLOT_LEN as usize
    }

    /// The segment header.
    pub(crate) fn header(&self) -> &SegmentHeader {
        // SAFETY: `header` points to a live SegmentHeader (heap box or mapping) for as long as
        // `self` lives, and a SegmentHeader is all atomics: shared references are fine.
        unsafe { self.header.as_ref() }
    }

    /// Faults a shared segment's header and data area in now, so that using the ring takes no
    /// page fault (see [`SharedMemory::populate`]). Heap memory is in memory already.
    ///
    /// # Errors
    /// [`Error::Os`](crate::error::Error::Os) if the system cannot back the pages.
    pub(crate) fn populate(&self) -> Result<()> {
        match &self.backing {
            Backing::Shared(shm) => shm.populate(DATA_OFFSET + self.capacity + self.table_len()),
            Backing::Heap(_) => Ok(()),
        }
    }

    /// Locks a shared segment's pages in memory (see [`SharedMemory::lock`]); heap memory is
    /// left as it is.
    ///
    /// # Errors
    /// [`Error::MemoryLock`](crate::error::Error::MemoryLock); [`Error::Os`](crate::error::Error::Os).
    pub(crate) fn lock(&self) -> Result<()> {
        match &self.backing {
            Backing::Shared(shm) => shm.lock(),
            Backing::Heap(_) => Ok(()),
        }
    }
}

impl Memory {
    /// The header of a segment image (`bytes` as a mapping of that length would hold them),
    /// copied out to be validated.
    ///
    /// # Errors
    /// [`Error::TooSmall`](crate::error::Error::TooSmall) if the image is shorter than a header.
    pub(crate) fn image_header(bytes: &[u8]) -> Result<Box<SegmentHeader>> {
        if bytes.len() < DATA_OFFSET {
            return Err(crate::error::Error::TooSmall {
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
        Ok(header)
    }
}

#[cfg(feature = "testing")]
impl Memory {
    /// A heap copy of a segment image whose header, validated, says `capacity`.
    ///
    /// # Panics
    /// If the image is shorter than the header and `capacity` bytes.
    pub(crate) fn from_image(
        header: &SegmentHeader,
        bytes: &[u8],
        capacity: usize,
        slots: usize,
    ) -> Memory {
        let memory = Memory::heap_with_slots(capacity, slots);
        assert!(
            bytes.len() >= DATA_OFFSET + capacity + memory.table_len(),
            "image checked against its header"
        );
        // SAFETY: `memory.header` is the box `heap` leaked, and `header` a distinct, live header;
        // both are DATA_OFFSET bytes of atomics, copied before anyone else can see the memory.
        unsafe {
            std::ptr::copy_nonoverlapping(
                std::ptr::from_ref(header).cast::<u8>(),
                memory.header.as_ptr().cast::<u8>(),
                DATA_OFFSET,
            );
        }
        // SAFETY: the data area has `capacity` bytes and no other reference yet; the image holds
        // them (asserted above).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes[DATA_OFFSET..].as_ptr(),
                memory.data.as_ptr(),
                capacity,
            );
        }
        // SAFETY: the table has `table_len` bytes of atomics, which any bits make valid, and no
        // other reference yet; the image holds them (asserted above).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes[DATA_OFFSET + capacity..].as_ptr(),
                memory.table.as_ptr().cast::<u8>(),
                memory.table_len(),
            );
        }
        memory
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        if let Backing::Heap(layout) = self.backing {
            // SAFETY: all three were allocated in `heap_with_slots`, the table as a boxed slice
            // of `slots`, and are freed once, here.
            unsafe {
                drop(Box::from_raw(self.header.as_ptr()));
                std::alloc::dealloc(self.data.as_ptr(), layout);
                drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    self.table.as_ptr(),
                    self.slots,
                )));
            }
        }
    }
}

/// A [`Memory`] as an endpoint holds it, with the header and data addresses and the mask copied
/// inline. The ring accessors are the hottest code in ringport: reaching the data through the
/// `Arc` costs two dependent loads per access, and since the `Memory` sits behind a shared
/// pointer the compiler must reload its fields after every store into ring memory. Fields inline
/// in an endpoint borrowed `&mut` stay in registers, and the hot paths never touch the `Arc`'s
/// allocation (which may share a cache line with whatever another thread writes). Holding the
/// `Arc` keeps the memory alive, which is what makes the accessors safe.
pub(crate) struct RingMemory {
    /// Keeps the memory alive.
    memory: Arc<Memory>,
    header: NonNull<SegmentHeader>,
    data: NonNull<u8>,
    mask: usize,
    table: NonNull<SubscriberSlot>,
    slots: usize,
}

// SAFETY: the pointers point into the memory that the `Arc<Memory>` beside them keeps alive;
// Memory is Send and Sync, and the pointers are only cached copies of its own.
unsafe impl Send for RingMemory {}
// SAFETY: as above.
unsafe impl Sync for RingMemory {}

impl RingMemory {
    pub(crate) fn new(memory: Arc<Memory>) -> RingMemory {
        RingMemory {
            header: memory.header,
            data: memory.data,
            mask: memory.capacity - 1,
            table: memory.table,
            slots: memory.slots,
            memory,
        }
    }

    /// Another view of the same memory, for another handle.
    pub(crate) fn share(&self) -> RingMemory {
        RingMemory::new(Arc::clone(&self.memory))
    }

    /// A copy of the header and data area, as a mapping of the segment would show them (for
    /// seeding the fuzz corpus). The caller must be the only one using the memory.
    #[cfg(feature = "testing")]
    pub(crate) fn image(&self) -> Vec<u8> {
        let table_len = self.slots * SUBSCRIBER_SLOT_LEN as usize;
        let mut bytes = vec![0u8; DATA_OFFSET + self.mask + 1 + table_len];
        // SAFETY: both areas are live for as long as our `Arc`; the header is DATA_OFFSET bytes
        // and the data area mask + 1; no one writes them meanwhile (the caller's contract), so
        // reading the atomics' bytes plainly races with nothing.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.header.as_ptr().cast::<u8>(),
                bytes.as_mut_ptr(),
                DATA_OFFSET,
            );
            std::ptr::copy_nonoverlapping(
                self.data.as_ptr(),
                bytes[DATA_OFFSET..].as_mut_ptr(),
                self.mask + 1,
            );
            std::ptr::copy_nonoverlapping(
                self.table.as_ptr().cast::<u8>(),
                bytes[DATA_OFFSET + self.mask + 1..].as_mut_ptr(),
                table_len,
            );
        }
        bytes
    }

    /// The segment header.
    #[inline(always)]
    pub(crate) fn header(&self) -> &SegmentHeader {
        // SAFETY: a copy of the memory's own header pointer, live while our `Arc` is.
        unsafe { self.header.as_ref() }
    }

    /// Subscriber slot `index` (publish-subscribe).
    ///
    /// # Panics
    /// If there is no such slot (a bug in the caller: indexes come from our own count).
    #[inline(always)]
    pub(crate) fn subscriber(&self, index: usize) -> &SubscriberSlot {
        assert!(index < self.slots);
        // SAFETY: in bounds (asserted) of the table the `Arc` keeps alive; a slot is all
        // atomics, so shared references are fine whatever a peer writes.
        unsafe { &*self.table.as_ptr().add(index) }
    }

    /// How many subscriber slots the segment has (0 but for publish-subscribe).
    #[inline(always)]
    pub(crate) fn subscriber_slots(&self) -> usize {
        self.slots
    }

    /// The atomic header word of the frame at `offset` (taken modulo the capacity, rounded down
    /// to 8 bytes: never out of bounds).
    #[inline(always)]
    pub(crate) fn frame_word(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: the `Arc` in `self` keeps the memory alive for the life of the reference.
        unsafe { self.data_area().frame_word(offset) }
    }

    /// The first word of the record of `words` words that starts at word `word` (an MPMC slot:
    /// its stamp, then its payload), with the whole record checked in bounds, so that its payload
    /// may be taken unchecked.
    ///
    /// # Panics
    /// If the record is not inside the data area (a bug in the caller: indexes come from masked
    /// positions, never straight from shared memory).
    #[inline(always)]
    pub(crate) fn record(&self, word: usize, words: usize) -> &AtomicU64 {
        assert!((word + words) * 8 <= self.mask + 1);
        // SAFETY: aligned (a word index) and in bounds (asserted) of memory the `Arc` keeps
        // alive; AtomicU64 has the layout of u64 and any bits are valid.
        unsafe { &*self.data.as_ptr().add(word * 8).cast::<AtomicU64>() }
    }

    /// The atomic word at `offset`, which need not be a power-of-two ring offset: for the fuzz
    /// bodies, which write hostile stamps (the rings themselves take [`record`](Self::record)).
    ///
    /// # Panics
    /// If `offset` is not 8-aligned or the word is not inside the data area.
    #[cfg(feature = "testing")]
    pub(crate) fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(offset % 8 == 0 && offset + 8 <= self.mask + 1);
        // SAFETY: aligned and in bounds (asserted) of memory the `Arc` keeps alive; AtomicU64
        // has the layout of u64 and any bits are valid.
        unsafe { &*self.data.as_ptr().add(offset).cast::<AtomicU64>() }
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
        // SAFETY: in bounds and exclusive, by the caller's contract; the `Arc` in `self` keeps
        // the memory alive for the life of the slice.
        unsafe { self.data_area().slice_mut_unchecked(offset, len) }
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

    /// [`slice`](Self::slice) for a range the caller has proved in bounds (see
    /// [`slice_mut_unchecked`](Self::slice_mut_unchecked)).
    ///
    /// # Safety
    /// As [`slice`](Self::slice), and `offset + len` must not exceed the capacity.
    #[inline(always)]
    pub(crate) unsafe fn slice_unchecked(&self, offset: usize, len: usize) -> &[u8] {
        debug_assert!(offset + len <= self.mask + 1);
        // SAFETY: in bounds and not written by our side, by the caller's contract; the `Arc`
        // keeps the memory alive.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().add(offset), len) }
    }

    /// The data area's address and mask, by value: for a loop that keeps them in registers
    /// while it writes through pointers that, for all the compiler knows, could point at the
    /// `RingMemory` itself (see `spsc::write_cursor::InPlaceBatch`).
    #[inline(always)]
    pub(crate) fn data_area(&self) -> DataArea {
        DataArea {
            data: self.data,
            mask: self.mask,
        }
    }

    /// Asks the CPU to fetch the cache line at `offset` (modulo the capacity) for writing. A
    /// streaming producer calls it some lines ahead of where it writes: its stores to a line the
    /// consumer last read wait for that line to be taken back, and every later store queues
    /// behind them; fetched early, the line is ours by the time the stores reach it. A hint
    /// only: it cannot fault, and changes no memory.
    #[inline(always)]
    pub(crate) fn prefetch_for_write(&self, offset: usize) {
        self.data_area().prefetch_for_write(offset);
    }
}

/// The header is a cross-process ABI: its layout is fixed whatever compiler built each peer.
/// (The model builds it from loom's atomics, whose sizes differ; it is never shared.)
mod layout_checks {
    use crate::layout::{
        BellWords, Counters, Identity, Ledger, RoleSlot, SegmentHeader, SubscriberSlot,
        DATA_OFFSET, SUBSCRIBER_SLOT_LEN,
    };
    use core::mem::{align_of, offset_of, size_of};
    use static_assertions::const_assert_eq;

    const_assert_eq!(size_of::<Identity>(), 120);
    const_assert_eq!(offset_of!(Identity, message_hash), 72);
    const_assert_eq!(offset_of!(Identity, created_ns), 64);
    const_assert_eq!(offset_of!(Identity, creator_pid_ns), 56);
    const_assert_eq!(offset_of!(Identity, version), 8);
    const_assert_eq!(offset_of!(Identity, kind), 12);
    const_assert_eq!(offset_of!(Identity, flags), 16);
    const_assert_eq!(offset_of!(Identity, max_frame), 20);
    const_assert_eq!(offset_of!(Identity, capacity), 24);
    const_assert_eq!(offset_of!(Identity, data_offset), 32);
    const_assert_eq!(offset_of!(Identity, segment_len), 40);
    const_assert_eq!(offset_of!(Identity, creator_pid), 48);
    const_assert_eq!(size_of::<RoleSlot>(), 32);
    const_assert_eq!(size_of::<BellWords>(), 12);
    const_assert_eq!(offset_of!(SegmentHeader, identity), 0);
    const_assert_eq!(offset_of!(SegmentHeader, roles), 128);
    const_assert_eq!(offset_of!(SegmentHeader, positions), 256);
    const_assert_eq!(offset_of!(SegmentHeader, bells), 512);
    const_assert_eq!(offset_of!(SegmentHeader, ledger), 768);
    const_assert_eq!(offset_of!(SegmentHeader, counters), 896);
    const_assert_eq!(size_of::<Ledger>(), 16);
    const_assert_eq!(size_of::<Counters>(), 72);
    const_assert_eq!(size_of::<SegmentHeader>(), DATA_OFFSET);
    const_assert_eq!(size_of::<SubscriberSlot>() as u64, SUBSCRIBER_SLOT_LEN);
    const_assert_eq!(offset_of!(SubscriberSlot, cursor), 32);
    const_assert_eq!(offset_of!(Identity, subscriber_slots), 52);
    const_assert_eq!(align_of::<SegmentHeader>(), 128);
}

/// A [`RingMemory`]'s data area by value ([`RingMemory::data_area`]): the same accessors, with
/// the memory's life left to the caller, who must keep the `RingMemory` alive while it uses
/// what they return.
#[derive(Clone, Copy)]
pub(crate) struct DataArea {
    data: NonNull<u8>,
    mask: usize,
}

impl DataArea {
    /// As [`RingMemory::frame_word`].
    ///
    /// # Safety
    /// The `RingMemory` this came from must outlive the returned reference.
    #[inline(always)]
    pub(crate) unsafe fn frame_word<'a>(self, offset: usize) -> &'a AtomicU64 {
        let offset = offset & self.mask & !7;
        // SAFETY: offset + 8 <= capacity and offset is 8-aligned within a 128-aligned area, so
        // this is an aligned, in-bounds u64, in memory alive for 'a by the caller's contract;
        // AtomicU64 has the layout of u64 and any bits are valid.
        unsafe { &*self.data.as_ptr().add(offset).cast::<AtomicU64>() }
    }

    /// As [`RingMemory::slice_mut_unchecked`].
    ///
    /// # Safety
    /// As [`RingMemory::slice_mut_unchecked`], and the `RingMemory` this came from must outlive
    /// the returned slice.
    #[inline(always)]
    pub(crate) unsafe fn slice_mut_unchecked<'a>(self, offset: usize, len: usize) -> &'a mut [u8] {
        debug_assert!(offset + len <= self.mask + 1);
        // SAFETY: in bounds and exclusive, by the caller's contract, in memory kept alive by it.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr().add(offset), len) }
    }

    /// As [`RingMemory::prefetch_for_write`]: a hint, which cannot fault.
    #[inline(always)]
    pub(crate) fn prefetch_for_write(self, offset: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let offset = offset & self.mask;
            // SAFETY: PREFETCHW reads and writes no architectural state and cannot fault, so
            // even an address whose memory is gone is harmless; CPUs without it run a NOP.
            unsafe {
                std::arch::asm!(
                    "prefetchw [{}]",
                    in(reg) self.data.as_ptr().wrapping_add(offset),
                    options(nostack, preserves_flags, readonly)
                );
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = offset;
    }
}
