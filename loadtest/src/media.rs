//! Synthetic media: VP8 frames with real payload descriptors and frame headers (a keyframe
//! carries the VP8 start code and dimensions), packetised like a browser does; Opus frames of
//! 20 ms. Nothing decodes them here; what matters is that every forwarding rule (keyframe start,
//! marker, sequence) sees realistic packets.

use bytes::{BufMut, Bytes, BytesMut};

/// Largest RTP payload we produce (browsers stay near 1,200 bytes too).
pub const MAX_PAYLOAD: usize = 1_150;

/// The Opus packet for 20 ms of silence (TOC 0xF8: CELT, fullband, 20 ms, one frame).
pub const OPUS_SILENCE: [u8; 3] = [0xF8, 0xFF, 0xFE];

/// Packetises one VP8 frame of `size` bytes into RTP payloads (RFC 7741 descriptor with a
/// 15-bit picture id). Returns payloads in order; the caller sets the marker on the last.
pub fn vp8_frame(
    picture_id: u16,
    keyframe: bool,
    size: usize,
    width: u16,
    height: u16,
) -> Vec<Bytes> {
    let mut frame = BytesMut::with_capacity(size.max(10));
    // Frame tag: bit 0 = 0 for key frames; version 0; show_frame 1; first partition size.
    let tag: u32 = (if keyframe { 0 } else { 1 }) | (1 << 4) | ((size as u32 & 0x7FFFF) << 5);
    frame.put_u8((tag & 0xFF) as u8);
    frame.put_u8(((tag >> 8) & 0xFF) as u8);
    frame.put_u8(((tag >> 16) & 0xFF) as u8);
    if keyframe {
        frame.put_slice(&[0x9d, 0x01, 0x2a]);
        frame.put_u16_le(width);
        frame.put_u16_le(height);
    }
    while frame.len() < size {
        frame.put_u8((frame.len() % 251) as u8);
    }
    vp8_packetise(picture_id, &frame)
}

/// Packetises an encoded VP8 frame (synthetic, or read from a file) into RTP payloads of at most
/// [`MAX_PAYLOAD`] bytes of frame each, behind an RFC 7741 descriptor with a 15-bit picture id
/// and the start bit on the first. The caller sets the marker on the last.
pub fn vp8_packetise(picture_id: u16, frame: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < frame.len() {
        let end = (at + MAX_PAYLOAD).min(frame.len());
        let mut p = BytesMut::with_capacity(4 + end - at);
        // X=1, S=1 on the first packet, PID=0.
        p.put_u8(if at == 0 { 0x90 } else { 0x80 });
        p.put_u8(0x80); // I: picture id present
        p.put_u16(0x8000 | (picture_id & 0x7FFF));
        p.put_slice(&frame[at..end]);
        out.push(p.freeze());
        at = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_frame_is_split_with_descriptors() {
        let frame: Vec<u8> = (0..2_500u32).map(|i| (i % 256) as u8).collect();
        let packets = vp8_packetise(0x1234, &frame);
        assert_eq!(packets.len(), 3);
        let mut joined = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            assert_eq!(p[0], if i == 0 { 0x90 } else { 0x80 });
            assert_eq!(p[1], 0x80);
            assert_eq!(u16::from_be_bytes([p[2], p[3]]), 0x8000 | 0x1234);
            assert!(p.len() - 4 <= MAX_PAYLOAD);
            joined.extend_from_slice(&p[4..]);
        }
        assert_eq!(joined, frame);
    }

    #[test]
    fn keyframes_are_recognised_by_the_server_rules() {
        let packets = vp8_frame(5, true, 3_000, 640, 360);
        assert_eq!(packets.len(), 3);
        assert!(sfu_rule(&packets[0]));
        assert!(
            !sfu_rule(&packets[1]),
            "only the first packet starts the frame"
        );
        let delta = vp8_frame(6, false, 500, 640, 360);
        assert_eq!(delta.len(), 1);
        assert!(!sfu_rule(&delta[0]));
    }

    /// The same check the SFU does (RFC 7741), restated so this crate does not depend on `sfu`.
    fn sfu_rule(p: &[u8]) -> bool {
        p[0] & 0x10 != 0 && p[0] & 0x07 == 0 && p[4] & 0x01 == 0
    }
}
