//! Voice activity from the RTP audio-level header extension (RFC 6464), judged per publisher
//! track over windows of 25 packets (half a second of 20 ms Opus frames).
//!
//! The byte is `V | level`, level in -dBov from 0 (loudest) to 127 (silence). A window counts as
//! speech when enough packets are louder than the threshold; one loud click does not make a
//! speaker, half a second of quiet ends one.

use bytes::Bytes;
use rtc::rtp::header::{EXTENSION_PROFILE_ONE_BYTE, Extension, Header};

const WINDOW: u8 = 25;
/// Louder than -50 dBov.
const LOUD_LEVEL: u8 = 50;
/// Packets of a window that must be loud.
const LOUD_PACKETS: u8 = 5;

#[derive(Debug, Clone, Default)]
pub struct AudioActivity {
    seen: u8,
    loud: u8,
    speaking: bool,
}

impl AudioActivity {
    /// Feeds one packet's extension byte (`None` when the packet carries none). Returns the new
    /// state when a window closes with a different verdict.
    pub fn observe(&mut self, byte: Option<u8>) -> Option<bool> {
        let byte = byte?;
        self.seen += 1;
        if byte & 0x7F < LOUD_LEVEL {
            self.loud += 1;
        }
        if self.seen < WINDOW {
            return None;
        }
        let speaking = self.loud >= LOUD_PACKETS;
        self.seen = 0;
        self.loud = 0;
        if speaking == self.speaking {
            return None;
        }
        self.speaking = speaking;
        Some(speaking)
    }
}

/// The publisher's audio-level element (extension `id`, as its offer negotiated), as received.
pub fn find(header: &Header, id: u8) -> Option<Bytes> {
    header
        .extensions
        .iter()
        .find(|e| e.id == id)
        .map(|e| e.payload.clone())
}

/// Puts the publisher's audio level on a packet for a subscriber that negotiated the extension
/// as `id` (one-byte form); a packet without one carries no extension at all.
///
/// Only the level's one byte (RFC 6464) travels on. A publisher using the two-byte form may send
/// an element of 0 or more than 16 bytes, which the one-byte form cannot say: copied as is, an
/// empty one overflowed the length nibble in `rtc`'s marshalling (a panic with debug assertions,
/// a corrupt header for the subscriber without them; found by `fuzz/`'s `audio_level` target).
pub fn set_forwarded(header: &mut Header, level: Option<&Bytes>, id: Option<u8>) {
    header.extensions = match (level, id) {
        (Some(level), Some(id)) if !level.is_empty() && (1..=14).contains(&id) => {
            vec![Extension {
                id,
                payload: level.slice(..1),
            }]
        }
        _ => Vec::new(),
    };
    header.extension = !header.extensions.is_empty();
    header.extension_profile = if header.extension {
        EXTENSION_PROFILE_ONE_BYTE
    } else {
        0
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(a: &mut AudioActivity, level: u8, n: usize) -> Vec<bool> {
        (0..n).filter_map(|_| a.observe(Some(level))).collect()
    }

    #[test]
    fn speech_starts_and_ends_on_window_verdicts() {
        let mut a = AudioActivity::default();
        assert_eq!(
            feed(&mut a, 127, 50),
            Vec::<bool>::new(),
            "silence is not news"
        );
        assert_eq!(feed(&mut a, 20, 25), vec![true]);
        assert_eq!(
            feed(&mut a, 20, 50),
            Vec::<bool>::new(),
            "still speaking: no repeat"
        );
        assert_eq!(feed(&mut a, 127, 25), vec![false]);
    }

    #[test]
    fn a_click_is_not_speech() {
        let mut a = AudioActivity::default();
        let mut got = feed(&mut a, 10, 2);
        got.extend(feed(&mut a, 127, 23));
        assert!(got.is_empty());
        assert_eq!(
            a.observe(None),
            None,
            "packets without the extension are ignored"
        );
    }

    /// A header as `rtc` reads it from the wire, and one forwarded with its level as `id`,
    /// marshalled and read back.
    fn forward(wire: &[u8], publisher_id: u8, id: u8) -> Header {
        use rtc::shared::marshal::{Marshal, Unmarshal};
        let received = Header::unmarshal(&mut &wire[..]).unwrap();
        let level = find(&received, publisher_id);
        let mut out = Header {
            version: 2,
            ssrc: 1,
            ..Default::default()
        };
        set_forwarded(&mut out, level.as_ref(), Some(id));
        let bytes = out.marshal().unwrap();
        Header::unmarshal(&mut &bytes[..]).unwrap()
    }

    /// An RTP header (X set) with one two-byte-form element: id 1, `payload`.
    fn two_byte(payload: &[u8]) -> Vec<u8> {
        let mut ext = vec![1, payload.len() as u8];
        ext.extend_from_slice(payload);
        while ext.len() % 4 != 0 {
            ext.push(0);
        }
        let mut p = vec![
            0x90, 111, 0, 1, 0, 0, 3, 0xc0, 0x11, 0x22, 0x33, 0x44, 0x10, 0x00,
        ];
        p.extend_from_slice(&((ext.len() / 4) as u16).to_be_bytes());
        p.extend_from_slice(&ext);
        p
    }

    #[test]
    fn the_level_travels_as_one_byte_whatever_form_the_publisher_used() {
        // One-byte form, as Chromium sends it: id 1, level 5 with the voice bit.
        let wire = [
            0x90, 111, 0, 1, 0, 0, 3, 0xc0, 0x11, 0x22, 0x33, 0x44, 0xBE, 0xDE, 0, 1, 0x10, 0x85,
            0, 0,
        ];
        let back = forward(&wire, 1, 3);
        assert_eq!(find(&back, 3).as_deref(), Some(&[0x85][..]));
        // Two-byte form: an empty element (legal there) is not forwarded; a long one is cut
        // to its level byte. Before the fix the first panicked while marshalling.
        assert_eq!(forward(&two_byte(&[]), 1, 3).extensions, vec![]);
        let back = forward(&two_byte(&[0x1e; 20]), 1, 3);
        assert_eq!(find(&back, 3).as_deref(), Some(&[0x1e][..]));
        // An id the one-byte form cannot carry: no extension rather than a corrupt one.
        assert!(!forward(&wire, 1, 15).extension);
    }

    #[test]
    fn voice_bit_does_not_change_the_level() {
        let mut a = AudioActivity::default();
        assert_eq!(feed(&mut a, 0x80 | 30, 25), vec![true]);
    }
}
