//! The harness's frames. A case is its id (a u64, little-endian) then its bytes; a result is the
//! id of the case it answers then the result's bytes. Ids count from 0 and go up by one a case;
//! a target's first result is [`HELLO`], with no bytes.

use crate::error::{Error, Result};

/// Bytes before a case's or a result's own bytes.
pub(super) const ID_LEN: usize = 8;

/// The id of the first frame a target sends, once it holds both rings: the driver's sign that
/// this target, not the one before it, is there.
pub(super) const HELLO: u64 = u64::MAX;

/// Writes `id` and `bytes` into `frame`, which is `ID_LEN + bytes.len()` long.
pub(super) fn encode(frame: &mut [u8], id: u64, bytes: &[u8]) {
    frame[..ID_LEN].copy_from_slice(&id.to_le_bytes());
    frame[ID_LEN..].copy_from_slice(bytes);
}

/// The id and the bytes of a frame from the other side, which may be anything.
///
/// # Errors
/// [`Error::Protocol`] if the frame is too short to hold an id.
pub(super) fn decode(frame: &[u8]) -> Result<(u64, &[u8])> {
    let Some((id, bytes)) = frame.split_first_chunk::<ID_LEN>() else {
        return Err(Error::Protocol("a harness frame shorter than its id"));
    };
    Ok((u64::from_le_bytes(*id), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_short_ones_are_refused() {
        let mut frame = [0u8; ID_LEN + 3];
        encode(&mut frame, 7, b"abc");
        assert_eq!(decode(&frame).unwrap(), (7, &b"abc"[..]));
        assert!(matches!(decode(&frame[..7]), Err(Error::Protocol(_))));
        assert_eq!(decode(&frame[..ID_LEN]).unwrap(), (7, &b""[..]));
    }
}
