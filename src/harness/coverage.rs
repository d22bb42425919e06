//! The coverage map: a block of bytes in a sealed memfd that the target marks as it runs a case
//! (an edge counter a byte, as AFL++'s `__afl_area_ptr`) and the driver reads and clears between
//! cases.

use std::sync::Arc;

use crate::os::shm::SharedBytes;
use crate::sync::Ordering;

/// AFL++'s default map size, the usual one: 64 KiB.
pub const DEFAULT_COVERAGE_LEN: usize = 64 << 10;

/// A coverage map shared by the driver and its target ([`HarnessOptions::coverage`]).
///
/// The target marks it with [`hit`](Self::hit) (or through [`as_mut_ptr`](Self::as_mut_ptr),
/// for instrumentation that writes plain bytes); the driver reads it with
/// [`take`](Self::take), which clears it for the next case. With one case in flight, what the
/// driver takes after a verdict is that case's coverage (a crashing case's too: the map outlives
/// the target); with several, it is the coverage of every case run since the last take.
///
/// A clone is another handle on the same map (for a closure that runs the cases).
///
/// [`HarnessOptions::coverage`]: super::HarnessOptions::coverage
#[derive(Clone)]
pub struct CoverageMap {
    map: Arc<SharedBytes>,
}

impl CoverageMap {
    pub(super) fn new(map: SharedBytes) -> CoverageMap {
        CoverageMap { map: Arc::new(map) }
    }

    /// Its size in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.bytes().len()
    }

    /// Whether it has no bytes (never: a map has at least one).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts a hit of `index` (modulo the map's size), as instrumentation does: a relaxed load
    /// and store, no locked instruction (a hit lost to a race is a count off by one, as in
    /// AFL++), wrapping at 255. For the target.
    #[inline]
    pub fn hit(&self, index: usize) {
        let bytes = self.map.bytes();
        let byte = &bytes[index % bytes.len()];
        byte.store(
            byte.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    /// The map's first byte, for instrumentation that writes it as plain memory (a C target's
    /// `__afl_area_ptr`); [`len`](Self::len) bytes are valid for as long as this map lives.
    #[must_use]
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    /// Copies the map into `into` (as much as fits) and clears it; returns how many bytes are
    /// not zero. For the driver, between cases: bytes the target writes while this runs may be
    /// missed or counted in the next take.
    pub fn take(&self, into: &mut [u8]) -> usize {
        // Relaxed: the bytes are counts, which order nothing else; the verdict the caller took
        // before (a ring's Acquire, or the target's death) is what makes the case's hits visible.
        let words = self.map.words();
        let mut hits = 0;
        let mut out = into.chunks_mut(8);
        for word in words {
            let value = word.load(Ordering::Relaxed);
            if value != 0 {
                word.store(0, Ordering::Relaxed);
                hits += value.to_le_bytes().iter().filter(|&&b| b != 0).count();
            }
            if let Some(chunk) = out.next() {
                chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
            }
        }
        // The tail of a map whose size is not a whole number of words.
        for (i, byte) in self.map.bytes().iter().enumerate().skip(words.len() * 8) {
            let value = byte.load(Ordering::Relaxed);
            if value != 0 {
                byte.store(0, Ordering::Relaxed);
                hits += 1;
            }
            if let Some(slot) = into.get_mut(i) {
                *slot = value;
            }
        }
        hits
    }
}

impl std::fmt::Debug for CoverageMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoverageMap")
            .field("len", &self.len())
            .finish()
    }
}
