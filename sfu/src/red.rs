//! Redundant audio (RFC 2198, "RED"): each packet carries the current Opus frame and a copy of
//! the previous one(s), so a subscriber that loses a packet recovers its frame from the next one
//! without a retransmission round trip. Chromium publishes RED when it is negotiated first.
//!
//! The server forwards RED as is to subscribers that negotiated it and sends the primary (the
//! current frame) as plain Opus to those that did not. Taking the primary is a slice of the
//! packet's shared payload: nothing is copied.
//!
//! ```text
//!  redundant block header (F = 1):  |1| block PT (7) | timestamp offset (14) | length (10) |
//!  primary block header   (F = 0):  |0| block PT (7) |
//!  then the redundant blocks' data in header order, then the primary's data.
//! ```

use bytes::Bytes;

/// The media type and format parameters we register: Opus (payload type 111) as both the
/// primary and the redundant encoding, as Chromium offers it.
pub const MIME_TYPE_RED: &str = "audio/red";
pub const RED_FMTP: &str = "111/111";
pub const RED_PAYLOAD_TYPE: u8 = 63;

/// The primary block of a RED payload, or `None` if the payload is malformed (headers run past
/// its end, or the redundant blocks claim more bytes than it has) or the primary is empty.
pub fn primary(payload: &Bytes) -> Option<Bytes> {
    let mut at = 0;
    let mut redundant = 0usize;
    loop {
        let first = *payload.get(at)?;
        if first & 0x80 == 0 {
            at += 1;
            break;
        }
        let header = payload.get(at..at + 4)?;
        redundant += (usize::from(header[2] & 0x03) << 8) | usize::from(header[3]);
        at += 4;
    }
    let start = at + redundant;
    (start < payload.len()).then(|| payload.slice(start..))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A RED payload with `redundant` blocks (offset, data) and then `primary`.
    fn red(redundant: &[(u16, &[u8])], primary: &[u8]) -> Bytes {
        let mut out = Vec::new();
        for (offset, data) in redundant {
            out.push(0x80 | 111);
            let word = (u32::from(*offset) << 10) | data.len() as u32;
            out.extend_from_slice(&word.to_be_bytes()[1..]);
        }
        out.push(111);
        for (_, data) in redundant {
            out.extend_from_slice(data);
        }
        out.extend_from_slice(primary);
        Bytes::from(out)
    }

    #[test]
    fn the_primary_is_what_follows_the_redundant_blocks() {
        let p = red(&[(960, b"previous frame")], b"current");
        assert_eq!(primary(&p).unwrap().as_ref(), b"current");
        let p = red(&[(1920, b"two back"), (960, b"one back!")], b"now");
        assert_eq!(primary(&p).unwrap().as_ref(), b"now");
        // No redundancy (the first packet of a stream): one header byte, then the frame.
        let p = red(&[], b"first");
        assert_eq!(primary(&p).unwrap().as_ref(), b"first");
        // A 1,023-byte redundant block (the largest a header can say).
        let big = vec![7u8; 1023];
        let p = red(&[(960, &big)], b"x");
        assert_eq!(primary(&p).unwrap().as_ref(), b"x");
    }

    #[test]
    fn malformed_payloads_give_nothing() {
        assert_eq!(primary(&Bytes::new()), None);
        // A redundant header cut short.
        assert_eq!(primary(&Bytes::from_static(&[0x80 | 111, 0, 0])), None);
        // Headers that never end.
        assert_eq!(
            primary(&Bytes::from_static(&[0xff, 0, 0, 0, 0xff, 0, 0, 0])),
            None
        );
        // Redundant blocks longer than the packet.
        let mut p = red(&[(960, b"abc")], b"").to_vec();
        p.truncate(p.len() - 1);
        assert_eq!(primary(&Bytes::from(p)), None);
        // An empty primary.
        assert_eq!(primary(&red(&[(960, b"abc")], b"")), None);
    }
}
