//! The frame format: an 8-byte header word, then the payload, padded to 8 bytes.
//!
//! The header word is also the frame's commit flag. The producer writes the payload, then stores
//! the header with Release; the consumer polls the header word of the next frame with Acquire, so
//! a small message arrives in the same cache-line transfer as its commit (the Aeron/Disruptor
//! idea: no separate head index to poll). Zero means "not yet written". Before publishing a frame
//! the producer zeroes the header slot that follows it, so the consumer never mistakes a stale
//! header or stale payload of an earlier lap for a fresh frame.
//!
//! ```text
//! bits  0..32  payload length (0 for padding)
//! bits 32..40  kind: 1 data, 2 padding (the rest of the lap is unused; wrap to offset 0)
//! bits 40..64  stamp: bits 3..27 of the frame's ring position, a check against garbage
//! ```

use crate::error::{Error, Result};
use crate::layout::{MAX_CAPACITY, MIN_CAPACITY};

/// Bytes of header before each payload.
pub(crate) const HEADER_LEN: usize = 8;

const KIND_DATA: u64 = 1;
const KIND_PAD: u64 = 2;

/// Bytes a frame of `len` payload bytes occupies in the ring.
#[inline(always)]
pub(crate) const fn frame_size(len: usize) -> usize {
    HEADER_LEN + ((len + 7) & !7)
}

/// The stamp of `position` in place, at bits 40..64. Positions are multiples of 8, so bits 3..27
/// of the position land there with one shift, and the bits above fall off.
#[inline(always)]
pub(crate) fn stamp(position: u64) -> u64 {
    debug_assert!(position % 8 == 0);
    position << 37
}

/// The header word of a data frame at `position`.
#[inline(always)]
pub(crate) fn data_header(len: u32, position: u64) -> u64 {
    u64::from(len) | KIND_DATA << 32 | stamp(position)
}

/// The header word of padding at `position`.
#[inline(always)]
pub(crate) fn pad_header(position: u64) -> u64 {
    KIND_PAD << 32 | stamp(position)
}

/// What a header word says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Nothing published here yet.
    Empty,
    /// A data frame of this many payload bytes.
    Data(usize),
    /// Padding up to the end of the lap.
    Pad,
}

/// Decodes and checks the header word read at `position` of a ring of `capacity` bytes.
///
/// Every way a header can be wrong is an [`Error::Corrupted`]; a frame that passes lies wholly
/// inside the data area.
// Always: `try_recv_many`'s loop stopped inlining it (.ci/inline-guard).
#[inline(always)]
pub(crate) fn decode(word: u64, position: u64, capacity: u64, max_frame: u32) -> Result<Frame> {
    // Fast path: the upper half of a data frame's header is its kind and stamp, both known in
    // advance, so one compare checks the two; then the length, then the bounds.
    let len = word & 0xFFFF_FFFF;
    if word >> 32 == (KIND_DATA << 32 | stamp(position)) >> 32 {
        let offset = position & (capacity - 1);
        if len.wrapping_sub(1) < u64::from(max_frame)
            && offset + frame_size(len as usize) as u64 <= capacity
        {
            return Ok(Frame::Data(len as usize));
        }
        return Err(Error::corrupted("frame length", word, position));
    }
    if word == 0 {
        return Ok(Frame::Empty);
    }
    if word >> 40 != stamp(position) >> 40 {
        return Err(Error::corrupted("frame stamp", word, position));
    }
    let offset = position & (capacity - 1);
    match (word >> 32) & 0xFF {
        KIND_PAD if len == 0 && offset != 0 => Ok(Frame::Pad),
        KIND_PAD => Err(Error::corrupted("padding frame", word, position)),
        _ => Err(Error::corrupted("frame kind", word, position)),
    }
}

/// Walks the frames published from ring position `from` (a frame boundary) while they start
/// before `end`, calling `each(position, len)` for every data frame and stepping over padding.
/// `word(position)` is the header word there, or `None` where there is none to read. Stops at
/// the first slot that holds no frame, at `end`, or where `word` has none; returns where it
/// stopped, and the error of a header that broke the rules if that is what stopped it.
pub(crate) fn walk(
    from: u64,
    end: u64,
    capacity: u64,
    max_frame: u32,
    mut word: impl FnMut(u64) -> Option<u64>,
    mut each: impl FnMut(u64, usize),
) -> (u64, Option<Error>) {
    let mut position = from;
    while position < end {
        let Some(header) = word(position) else {
            break;
        };
        match decode(header, position, capacity, max_frame) {
            Ok(Frame::Data(len)) => {
                each(position, len);
                position += frame_size(len) as u64;
            }
            Ok(Frame::Pad) => position += capacity - (position & (capacity - 1)),
            Ok(Frame::Empty) => break,
            Err(e) => return (position, Some(e)),
        }
    }
    (position, None)
}

/// The largest frame payload that [`check_geometry`] allows for `capacity`.
pub(crate) fn largest_frame(capacity: u64) -> u64 {
    // frame_size(len) + 8 <= capacity / 2, with frame_size(len) = 8 + len rounded up to 8.
    (capacity / 2).saturating_sub(16)
}

/// The SPSC ring's geometry rule: checks capacity and maximum frame length; returns what is
/// wrong.
pub(crate) fn check_geometry(capacity: u64, max_frame: u32) -> Result<(), &'static str> {
    if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        return Err("capacity must be a power of two from 64 bytes to 1 TiB");
    }
    // With a frame (plus the zeroed slot after it) no larger than half the ring, an empty ring
    // takes any frame even when it must first pad to the end of the lap: wrapping happens only
    // at an offset past capacity - size, which leaves at least size + 8 bytes at the start.
    // So a producer never waits on a consumer that has nothing to read.
    if max_frame == 0 || frame_size(max_frame as usize) as u64 + 8 > capacity / 2 {
        return Err(
            "max frame must be at least 1, and its frame plus 8 bytes at most half the capacity",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_eight() {
        assert_eq!(frame_size(1), 16);
        assert_eq!(frame_size(8), 16);
        assert_eq!(frame_size(9), 24);
        assert_eq!(frame_size(64), 72);
    }

    #[test]
    fn round_trips() {
        let pos = 4096 * 3 + 64;
        assert_eq!(decode(0, pos, 1 << 16, 1024).unwrap(), Frame::Empty);
        assert_eq!(
            decode(data_header(100, pos), pos, 1 << 16, 1024).unwrap(),
            Frame::Data(100)
        );
        assert_eq!(
            decode(pad_header(pos), pos, 1 << 16, 1024).unwrap(),
            Frame::Pad
        );
    }

    #[test]
    fn rejects_bad_headers() {
        let cap: u64 = 1 << 12;
        let pos: u64 = 8 * 1000;
        let near_end = 8 * cap + cap - 16;
        for (word, at) in [
            (data_header(10, pos + 8), pos),        // stamp of another position
            (data_header(0, pos), pos),             // empty data frame
            (data_header(1025, pos), pos),          // longer than max_frame
            (data_header(100, near_end), near_end), // runs past the end of the lap
            (pad_header(0), 0),                     // padding at offset 0
            (pad_header(pos) | 5, pos),             // padding with a length
            (7 << 32 | stamp(pos), pos),            // unknown kind
        ] {
            assert!(
                matches!(decode(word, at, cap, 1024), Err(Error::Corrupted { .. })),
                "{word:#x} at {at} should be rejected"
            );
        }
    }
}
