//! Ring memory under the model: the header and the frame words are loom atomics (a loom atomic
//! is a handle into loom's runtime and cannot live in plain bytes), and every payload access is
//! registered on a loom cell per 8-byte word, so that loom reports a payload read that is not
//! ordered after its write. The bytes themselves are plain heap memory.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;

use super::shm::SharedMemory;
use crate::error::Result;
use crate::layout::{SegmentHeader, SubscriberSlot};
use crate::sync::{AtomicU64, TrackedCell};

/// A ring's header and data area of `capacity` bytes, on the heap.
pub(crate) struct Memory {
    header: SegmentHeader,
    data: NonNull<u8>,
    layout: Layout,
    /// The data area's 8-byte words as atomics: what frame headers and slot stamps are read
    /// and written through.
    words: Box<[AtomicU64]>,
    /// One cell per 8 bytes of data, through which payload accesses are registered.
    cells: Box<[TrackedCell<()>]>,
    /// The subscriber slots (publish-subscribe).
    table: Box<[SubscriberSlot]>,
}

// SAFETY: the header and words are loom atomics; the data bytes are handed to one endpoint at a
// time by the ring protocols, which is what loom's cells check.
unsafe impl Send for Memory {}
// SAFETY: as above.
unsafe impl Sync for Memory {}

impl Memory {
    /// A zeroed header and `capacity` zeroed bytes of data.
    ///
    /// # Panics
    /// If `capacity` is zero or not a multiple of 8 (a caller's bug: geometries are validated
    /// first).
    #[cfg(test)]
    pub(crate) fn heap(capacity: usize) -> Memory {
        Memory::heap_with_slots(capacity, 0)
    }

    /// [`heap`](Self::heap) with `slots` subscriber slots.
    pub(crate) fn heap_with_slots(capacity: usize, slots: usize) -> Memory {
        assert!(capacity > 0 && capacity % 8 == 0, "capacity was validated");
        let layout = Layout::from_size_align(capacity, 128).expect("capacity was validated");
        // SAFETY: the layout has a non-zero size (asserted above).
        let data = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(data) = NonNull::new(data) else {
            std::alloc::handle_alloc_error(layout)
        };
        Memory {
            header: SegmentHeader::new(),
            data,
            layout,
            words: (0..capacity / 8).map(|_| AtomicU64::new(0)).collect(),
            cells: (0..capacity / 8).map(|_| TrackedCell::new(())).collect(),
            table: (0..slots).map(|_| SubscriberSlot::new()).collect(),
        }
    }

    /// A mapped segment: never, under the model (there are none to map).
    pub(crate) fn mapped(shm: SharedMemory, _capacity: usize, _slots: usize) -> Memory {
        match shm {}
    }

    /// The segment header.
    pub(crate) fn header(&self) -> &SegmentHeader {
        &self.header
    }

    /// Heap memory is in memory already.
    pub(crate) fn populate(&self) -> Result<()> {
        Ok(())
    }

    /// Heap memory is not locked.
    pub(crate) fn lock(&self) -> Result<()> {
        Ok(())
    }

    /// Registers an access to `offset..offset + len` with loom's race detector.
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

/// Segment images (the fuzz bodies', a segment read from outside): the model's header is loom
/// atomics, which no bytes can be.
impl Memory {
    pub(crate) fn image_header(_bytes: &[u8]) -> Result<Box<SegmentHeader>> {
        Err(super::unsupported())
    }
}

#[cfg(feature = "testing")]
impl Memory {
    pub(crate) fn from_image(
        _header: &SegmentHeader,
        _bytes: &[u8],
        _capacity: usize,
        _slots: usize,
    ) -> Memory {
        unreachable!("no image header can be had under the model")
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: allocated in `heap` with this layout and freed once, here.
        unsafe { std::alloc::dealloc(self.data.as_ptr(), self.layout) };
    }
}

/// A [`Memory`] as an endpoint holds it (the Linux implementation keeps raw pointers here).
pub(crate) struct RingMemory {
    memory: Arc<Memory>,
    mask: usize,
}

impl RingMemory {
    pub(crate) fn new(memory: Arc<Memory>) -> RingMemory {
        let mask = memory.words.len() * 8 - 1;
        RingMemory { memory, mask }
    }

    /// Another view of the same memory, for another handle.
    pub(crate) fn share(&self) -> RingMemory {
        RingMemory::new(Arc::clone(&self.memory))
    }

    /// The segment header.
    pub(crate) fn header(&self) -> &SegmentHeader {
        &self.memory.header
    }

    /// Subscriber slot `index` (publish-subscribe).
    pub(crate) fn subscriber(&self, index: usize) -> &SubscriberSlot {
        &self.memory.table[index]
    }

    /// How many subscriber slots the segment has.
    pub(crate) fn subscriber_slots(&self) -> usize {
        self.memory.table.len()
    }

    /// The atomic header word of the frame at `offset` (modulo the capacity, rounded down to 8).
    pub(crate) fn frame_word(&self, offset: usize) -> &AtomicU64 {
        &self.memory.words[(offset & self.mask) / 8]
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
        &self.memory.words[word]
    }

    /// The atomic word at `offset` (8-aligned, inside the data area), for the fuzz bodies.
    #[cfg(feature = "testing")]
    pub(crate) fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(offset % 8 == 0 && offset + 8 <= self.mask + 1);
        &self.memory.words[offset / 8]
    }

    /// The payload bytes `offset..offset + len`, to write, with the access registered.
    ///
    /// # Safety
    /// As the Linux implementation's: the caller owns the range exclusively.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut(&self, offset: usize, len: usize) -> &mut [u8] {
        assert!(offset + len <= self.mask + 1);
        self.memory.track(offset, len, true);
        // SAFETY: in bounds (asserted); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.memory.data.as_ptr().add(offset), len) }
    }

    /// As [`slice_mut`](Self::slice_mut): under the model every access is checked.
    ///
    /// # Safety
    /// As [`slice_mut`](Self::slice_mut).
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut_unchecked(&self, offset: usize, len: usize) -> &mut [u8] {
        // SAFETY: the caller's contract is the one `slice_mut` asks for.
        unsafe { self.slice_mut(offset, len) }
    }

    /// The payload bytes `offset..offset + len`, to read, with the access registered.
    ///
    /// # Safety
    /// As the Linux implementation's: the range is published to the caller.
    pub(crate) unsafe fn slice(&self, offset: usize, len: usize) -> &[u8] {
        assert!(offset + len <= self.mask + 1);
        self.memory.track(offset, len, false);
        // SAFETY: in bounds (asserted); not written by our side, by the caller's contract.
        unsafe { std::slice::from_raw_parts(self.memory.data.as_ptr().add(offset), len) }
    }

    /// As [`slice`](Self::slice): under the model every access is checked.
    ///
    /// # Safety
    /// As [`slice`](Self::slice).
    pub(crate) unsafe fn slice_unchecked(&self, offset: usize, len: usize) -> &[u8] {
        // SAFETY: the caller's contract is the one `slice` asks for.
        unsafe { self.slice(offset, len) }
    }

    /// A hint that the model has no use for.
    pub(crate) fn prefetch_for_write(&self, _offset: usize) {}

    /// The data area by value (under the model, a pointer to this view, whose accesses are
    /// tracked).
    pub(crate) fn data_area(&self) -> DataArea {
        DataArea { memory: self }
    }

    /// The fuzz bodies' segment images have no model (see `Memory::image_header`).
    #[cfg(feature = "testing")]
    pub(crate) fn image(&self) -> Vec<u8> {
        unimplemented!("segment images are bytes, and the model's header is loom atomics")
    }
}

/// The Linux implementation's data area by value, here a pointer to the [`RingMemory`], so
/// that every access is tracked.
#[derive(Clone, Copy)]
pub(crate) struct DataArea {
    memory: *const RingMemory,
}

impl DataArea {
    /// As [`RingMemory::frame_word`].
    ///
    /// # Safety
    /// The `RingMemory` this came from must outlive the returned reference.
    pub(crate) unsafe fn frame_word<'a>(self, offset: usize) -> &'a AtomicU64 {
        // SAFETY: alive by the caller's contract.
        unsafe { (*self.memory).frame_word(offset) }
    }

    /// As [`RingMemory::slice_mut_unchecked`].
    ///
    /// # Safety
    /// As [`RingMemory::slice_mut_unchecked`], and the `RingMemory` must outlive the slice.
    pub(crate) unsafe fn slice_mut_unchecked<'a>(self, offset: usize, len: usize) -> &'a mut [u8] {
        // SAFETY: alive and exclusive by the caller's contract.
        unsafe { (*self.memory).slice_mut_unchecked(offset, len) }
    }

    /// A hint that the model has no use for.
    pub(crate) fn prefetch_for_write(self, _offset: usize) {}
}
