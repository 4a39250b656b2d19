//! Is this RTP payload the start of a keyframe? Forwarding starts (and switches source) only
//! there: a decoder fed a delta frame first shows garbage or nothing.

/// Codecs whose payload the forwarder understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    H264,
}

impl VideoCodec {
    pub fn from_mime(mime: &str) -> Option<Self> {
        if mime.eq_ignore_ascii_case("video/vp8") {
            Some(Self::Vp8)
        } else if mime.eq_ignore_ascii_case("video/h264") {
            Some(Self::H264)
        } else {
            None
        }
    }

    pub fn is_keyframe_start(self, payload: &[u8]) -> bool {
        match self {
            Self::Vp8 => vp8_is_keyframe_start(payload),
            Self::H264 => h264_is_keyframe(payload),
        }
    }
}

/// RFC 7741: the payload descriptor, then (on the first packet of a partition) the VP8 frame
/// header whose lowest bit is 0 for a key frame.
pub fn vp8_is_keyframe_start(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let extended = b0 & 0x80 != 0;
    let start_of_partition = b0 & 0x10 != 0;
    let partition_id = b0 & 0x07;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    let mut at = 1;
    if extended {
        let Some(&x) = payload.get(at) else {
            return false;
        };
        at += 1;
        if x & 0x80 != 0 {
            // PictureID: 7 or 15 bits (M flag).
            let Some(&pid) = payload.get(at) else {
                return false;
            };
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            at += 1; // TID/Y/KEYIDX
        }
    }
    payload.get(at).is_some_and(|&h| h & 0x01 == 0)
}

/// RFC 6184: an IDR slice or SPS, alone, in a STAP-A, or at the start of an FU-A.
pub fn h264_is_keyframe(payload: &[u8]) -> bool {
    const IDR: u8 = 5;
    const SPS: u8 = 7;
    const STAP_A: u8 = 24;
    const FU_A: u8 = 28;
    let Some(&b0) = payload.first() else {
        return false;
    };
    match b0 & 0x1F {
        IDR | SPS => true,
        STAP_A => {
            let mut at = 1;
            while at + 2 < payload.len() {
                let size = usize::from(u16::from_be_bytes([payload[at], payload[at + 1]]));
                let Some(&nal) = payload.get(at + 2) else {
                    return false;
                };
                if matches!(nal & 0x1F, IDR | SPS) {
                    return true;
                }
                at += 2 + size;
            }
            false
        }
        FU_A => payload
            .get(1)
            .is_some_and(|&fu| fu & 0x80 != 0 && matches!(fu & 0x1F, IDR | SPS)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_with_and_without_extensions() {
        // S=1, PID=0, no X; frame header P bit 0.
        assert!(vp8_is_keyframe_start(&[0x10, 0x00, 0x9d]));
        // Same but a delta frame.
        assert!(!vp8_is_keyframe_start(&[0x10, 0x01, 0x9d]));
        // Continuation packet (S=0).
        assert!(!vp8_is_keyframe_start(&[0x00, 0x00]));
        // X with 15-bit picture id, TL0PICIDX and TID (as Chromium sends).
        assert!(vp8_is_keyframe_start(&[
            0x90, 0xE0, 0x81, 0x23, 0x05, 0x20, 0x50
        ]));
        assert!(!vp8_is_keyframe_start(&[
            0x90, 0xE0, 0x81, 0x23, 0x05, 0x20, 0x51
        ]));
        // Truncated inputs never panic.
        for n in 0..7 {
            let _ = vp8_is_keyframe_start(&[0x90, 0xE0, 0x81, 0x23, 0x05, 0x20, 0x50][..n]);
        }
    }

    #[test]
    fn h264_keyframes() {
        assert!(h264_is_keyframe(&[0x65, 0x88]));
        assert!(h264_is_keyframe(&[0x67, 0x42]));
        assert!(!h264_is_keyframe(&[0x41, 0x9a]));
        // STAP-A with SPS then PPS.
        assert!(h264_is_keyframe(&[
            0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce
        ]));
        assert!(!h264_is_keyframe(&[0x78, 0x00, 0x02, 0x41, 0x42]));
        // FU-A start of IDR, and its middle.
        assert!(h264_is_keyframe(&[0x7c, 0x85, 0x00]));
        assert!(!h264_is_keyframe(&[0x7c, 0x05, 0x00]));
        assert!(!h264_is_keyframe(&[]));
    }
}
