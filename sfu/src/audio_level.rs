//! Voice activity from the RTP audio-level header extension (RFC 6464), judged per publisher
//! track over windows of 25 packets (half a second of 20 ms Opus frames).
//!
//! The byte is `V | level`, level in -dBov from 0 (loudest) to 127 (silence). A window counts as
//! speech when enough packets are louder than the threshold; one loud click does not make a
//! speaker, half a second of quiet ends one.

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

    #[test]
    fn voice_bit_does_not_change_the_level() {
        let mut a = AudioActivity::default();
        assert_eq!(feed(&mut a, 0x80 | 30, 25), vec![true]);
    }
}
