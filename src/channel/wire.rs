//! What travels on a channel: every message, chunk and marker starts with an 8-byte prefix,
//! on the socket and in the ring alike.
//!
//! ```text
//!   byte 0: kind    bytes 1..4: zero    bytes 4..8: value (u32, little-endian)
//! ```
//!
//! A sender writes its messages on one path at a time. It moves to the other path by writing a
//! marker as the last thing on the old one ([`TO_RING`] on the socket, [`TO_SOCKET`] in the
//! ring); the receiver reads the old path up to the marker and only then turns to the new one.
//! So the receiver sees messages exactly in the order sent, however often the path changes.
//! A message too large for one packet or frame goes as [`FIRST`] (with the total length) and
//! [`MORE`]s; the receiver knows it is complete when the lengths add up.

/// Bytes in a prefix.
pub(crate) const PREFIX_LEN: usize = 8;

/// Handshake, both ways, first: value = protocol version; payload = [`MAGIC`], then the
/// largest message the sender of the hello accepts (u32 LE) and 4 zero bytes.
pub(crate) const HELLO: u8 = 0x10;
/// The listener's answer to a peer whose credentials it does not accept.
pub(crate) const REFUSED: u8 = 0x11;
/// A whole message: the payload.
pub(crate) const WHOLE: u8 = 1;
/// The first chunk of a message: value = the message's total length.
pub(crate) const FIRST: u8 = 2;
/// A further chunk of the message in progress.
pub(crate) const MORE: u8 = 3;
/// The sender abandoned the message in progress (its send timed out half-way).
pub(crate) const CANCEL: u8 = 4;
/// On the socket: the sender's next messages come through the ring. The first carries the
/// ring's memfd.
pub(crate) const TO_RING: u8 = 5;
/// In the ring: the sender's next messages come through the socket.
pub(crate) const TO_SOCKET: u8 = 6;

/// The channel protocol's version, checked in the handshake.
pub(crate) const PROTOCOL_VERSION: u32 = 1;
/// What a hello's payload starts with.
pub(crate) const MAGIC: [u8; 8] = *b"RPCHAN\0\x01";
/// Bytes in a hello's payload.
pub(crate) const HELLO_LEN: usize = 16;

/// A prefix.
#[inline]
pub(crate) fn prefix(kind: u8, value: u32) -> [u8; PREFIX_LEN] {
    let v = value.to_le_bytes();
    [kind, 0, 0, 0, v[0], v[1], v[2], v[3]]
}

/// A prefix's kind and value.
#[inline]
pub(crate) fn parse(prefix: &[u8]) -> (u8, u32) {
    let value = u32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    (prefix[0], value)
}

/// A hello's payload.
pub(crate) fn hello_payload(max_message: u32) -> [u8; HELLO_LEN] {
    let mut p = [0u8; HELLO_LEN];
    p[..8].copy_from_slice(&MAGIC);
    p[8..12].copy_from_slice(&max_message.to_le_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_round_trip() {
        for (kind, value) in [(WHOLE, 0), (FIRST, u32::MAX), (TO_RING, 0x0102_0304)] {
            assert_eq!(parse(&prefix(kind, value)), (kind, value));
        }
    }
}
