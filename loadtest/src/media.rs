//! Synthetic media: VP8 frames with real payload descriptors and frame headers (a keyframe
//! carries the VP8 start code and dimensions), packetised like a browser does; Opus frames of
//! 20 ms. Nothing decodes them here; what matters is that every forwarding rule (keyframe start,
//! marker, sequence) sees realistic packets.

use bytes::{BufMut, Bytes, BytesMut};

/// Largest RTP payload we produce (browsers stay near 1,200 bytes too).
pub const MAX_PAYLOAD: usize = 1_150;

/// The Opus packet for 20 ms of silence (TOC 0xF8: CELT, fullband, 20 ms, one frame).
pub const OPUS_SILENCE: [u8; 3] = [0xF8, 0xFF, 0xFE];

/// A frame's place in a temporal-layer structure, written into its VP8 payload descriptor
/// (RFC 7741: TL0PICIDX, TID and the layer-sync bit Y).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Temporal {
    pub tid: u8,
    pub layer_sync: bool,
    pub tl0_pic_idx: u8,
}

/// Temporal layers as Chromium's VP8 simulcast sends them, frame by frame: with 3 layers the
/// 4-frame pattern TID 0, 2, 1, 2 (layer sync on the first TID 2 and TID 1 of each 8 frames),
/// with 2 layers TID 0, 1; TL0PICIDX counts base-layer frames. Keyframes are on TID 0.
#[derive(Debug, Clone, Default)]
pub struct TemporalPattern {
    layers: u8,
    frame: u64,
    tl0: u8,
}

impl TemporalPattern {
    /// `layers`: 1 (no temporal layers: no descriptor fields) to 3.
    pub fn new(layers: u8, tl0: u8) -> TemporalPattern {
        TemporalPattern {
            layers: layers.clamp(1, 3),
            frame: 0,
            tl0,
        }
    }

    /// The next frame's temporal layer (a keyframe restarts the pattern on TID 0), and its
    /// size relative to the mean frame: Chromium's split of the bits, 40 / 20 / 40 % with
    /// three layers (a quarter, a quarter and half of the frames), 60 / 40 % with two.
    pub fn next(&mut self, keyframe: bool) -> (Option<Temporal>, f64) {
        if self.layers <= 1 {
            return (None, 1.0);
        }
        if keyframe {
            self.frame = 0;
        }
        let i = self.frame;
        self.frame += 1;
        let (tid, layer_sync, weight) = if self.layers == 2 {
            match i % 2 {
                0 => (0, false, 1.2),
                _ => (1, i % 4 == 1, 0.8),
            }
        } else {
            match i % 8 {
                0 | 4 => (0, false, 1.6),
                1 | 5 => (2, true, 0.8),
                2 => (1, true, 0.8),
                6 => (1, false, 0.8),
                _ => (2, false, 0.8),
            }
        };
        if tid == 0 {
            self.tl0 = self.tl0.wrapping_add(1);
        }
        let t = Temporal {
            tid,
            layer_sync: layer_sync || keyframe,
            tl0_pic_idx: self.tl0,
        };
        (Some(t), weight)
    }
}

/// Packetises one VP8 frame of `size` bytes into RTP payloads (RFC 7741 descriptor with a
/// 15-bit picture id). Returns payloads in order; the caller sets the marker on the last.
pub fn vp8_frame(
    picture_id: u16,
    keyframe: bool,
    size: usize,
    width: u16,
    height: u16,
) -> Vec<Bytes> {
    vp8_frame_in_layer(picture_id, keyframe, size, width, height, None)
}

/// [`vp8_frame`] with the frame's temporal layer in its descriptor.
pub fn vp8_frame_in_layer(
    picture_id: u16,
    keyframe: bool,
    size: usize,
    width: u16,
    height: u16,
    temporal: Option<Temporal>,
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
    if size >= frame.len() + SEND_STAMP_LEN {
        put_send_stamp(&mut frame, unix_micros());
    }
    while frame.len() < size {
        frame.put_u8((frame.len() % 251) as u8);
    }
    vp8_packetise_in_layer(picture_id, &frame, temporal)
}

/// Marks the wall-clock send time a synthetic frame carries right after its VP8 frame header
/// (`HNst` + Unix microseconds, big-endian): servers rewrite SSRCs, sequence numbers and RTP
/// timestamps (a layer switch, the cascade's relay) but forward payloads untouched, so a
/// receiver on the same machine (one clock) reads the frame's one-way delay through every hop.
pub const SEND_STAMP_MAGIC: [u8; 4] = *b"HNst";
pub const SEND_STAMP_LEN: usize = 12;

/// Microseconds since the Unix epoch, now.
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn put_send_stamp(frame: &mut BytesMut, micros: u64) {
    frame.put_slice(&SEND_STAMP_MAGIC);
    frame.put_u64(micros);
}

/// The send stamp in a VP8 RTP payload that starts a frame (descriptor S bit, partition 0),
/// if the frame carries one: after the 3-byte frame tag, and a keyframe's 7 more header bytes.
pub fn vp8_send_stamp(payload: &[u8]) -> Option<u64> {
    if payload.first()? & 0x10 == 0 || payload[0] & 0x07 != 0 {
        return None;
    }
    let o = crate::layers::vp8_header_offset(payload)?;
    let keyframe = payload.get(o)? & 1 == 0;
    let at = o + if keyframe { 10 } else { 3 };
    let stamp = payload.get(at..at + SEND_STAMP_LEN)?;
    (stamp[..4] == SEND_STAMP_MAGIC).then(|| u64::from_be_bytes(stamp[4..].try_into().unwrap()))
}

/// Packetises an encoded VP8 frame (synthetic, or read from a file) into RTP payloads of at most
/// [`MAX_PAYLOAD`] bytes of frame each, behind an RFC 7741 descriptor with a 15-bit picture id
/// and the start bit on the first. The caller sets the marker on the last.
pub fn vp8_packetise(picture_id: u16, frame: &[u8]) -> Vec<Bytes> {
    vp8_packetise_in_layer(picture_id, frame, None)
}

/// [`vp8_packetise`], with TL0PICIDX and the TID/Y byte (RFC 7741's L and T) when `temporal`.
pub fn vp8_packetise_in_layer(
    picture_id: u16,
    frame: &[u8],
    temporal: Option<Temporal>,
) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < frame.len() {
        let end = (at + MAX_PAYLOAD).min(frame.len());
        let mut p = BytesMut::with_capacity(6 + end - at);
        // X=1, S=1 on the first packet, PID=0.
        p.put_u8(if at == 0 { 0x90 } else { 0x80 });
        match temporal {
            Some(t) => {
                p.put_u8(0xE0); // I, L, T: picture id, TL0PICIDX, TID/Y/KEYIDX
                p.put_u16(0x8000 | (picture_id & 0x7FFF));
                p.put_u8(t.tl0_pic_idx);
                p.put_u8((t.tid & 0x03) << 6 | if t.layer_sync { 0x20 } else { 0 });
            }
            None => {
                p.put_u8(0x80); // I: picture id present
                p.put_u16(0x8000 | (picture_id & 0x7FFF));
            }
        }
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
    fn a_synthetic_frame_carries_its_send_time() {
        let before = unix_micros();
        for (key, temporal) in [
            (true, None),
            (false, None),
            (
                false,
                Some(Temporal {
                    tid: 1,
                    layer_sync: false,
                    tl0_pic_idx: 7,
                }),
            ),
        ] {
            let packets = vp8_frame_in_layer(42, key, 3_000, 640, 360, temporal);
            assert!(packets.len() > 1);
            let stamp = vp8_send_stamp(&packets[0]).expect("the first packet has the stamp");
            assert!((before..=unix_micros()).contains(&stamp));
            // Only the packet that starts the frame.
            assert_eq!(vp8_send_stamp(&packets[1]), None);
            if key {
                let o = crate::layers::vp8_start_of_keyframe(&packets[0]).unwrap();
                assert_eq!(
                    crate::layers::vp8_keyframe_dims(&packets[0]),
                    Some((640, 360))
                );
                assert_eq!(packets[0][o] & 1, 0);
            }
        }
        // A frame too small for a stamp has none, and a file's frame neither.
        assert_eq!(vp8_send_stamp(&vp8_frame(1, false, 10, 0, 0)[0]), None);
        assert_eq!(vp8_send_stamp(&vp8_packetise(1, &[1u8; 200])[0]), None);
    }

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

    #[test]
    fn temporal_layers_follow_chromiums_pattern() {
        let mut t = TemporalPattern::new(3, 7);
        let frames: Vec<(u8, bool, u8, f64)> = (0..8)
            .map(|_| {
                let (l, w) = t.next(false);
                let l = l.unwrap();
                (l.tid, l.layer_sync, l.tl0_pic_idx, w)
            })
            .collect();
        assert_eq!(
            frames.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(),
            [
                (0, false),
                (2, true),
                (1, true),
                (2, false),
                (0, false),
                (2, true),
                (1, false),
                (2, false)
            ]
        );
        // TL0PICIDX counts base frames; the sizes average to the mean frame, 40/20/40 %.
        assert_eq!(
            frames.iter().map(|f| f.2).collect::<Vec<_>>(),
            [8, 8, 8, 8, 9, 9, 9, 9]
        );
        let by_tid = |tid: u8| -> f64 { frames.iter().filter(|f| f.0 == tid).map(|f| f.3).sum() };
        assert!((by_tid(0) + by_tid(1) + by_tid(2) - 8.0).abs() < 1e-9);
        assert!((by_tid(0) / 8.0 - 0.4).abs() < 1e-9 && (by_tid(1) / 8.0 - 0.2).abs() < 1e-9);
        // A keyframe restarts on TID 0, marked layer sync.
        t.next(false);
        let (k, _) = t.next(true);
        assert_eq!(
            k,
            Some(Temporal {
                tid: 0,
                layer_sync: true,
                tl0_pic_idx: 11
            })
        );
        assert_eq!(TemporalPattern::new(1, 0).next(false), (None, 1.0));
        // Written into the descriptor as the SFU reads it (I, L, T; TID in the top bits, Y).
        let p = vp8_frame_in_layer(
            300,
            true,
            3_000,
            640,
            360,
            Some(Temporal {
                tid: 2,
                layer_sync: true,
                tl0_pic_idx: 42,
            }),
        );
        assert_eq!(&p[0][..6], &[0x90, 0xE0, 0x81, 0x2C, 42, 0xA0]);
        assert!(sfu_rule_at(&p[0], 6));
        assert_eq!(
            crate::layers::vp8_keyframe_dims(&p[0]),
            Some((640, 360)),
            "the receiver still reads the layer from the keyframe"
        );
    }

    /// [`sfu_rule`] for a descriptor of `len` bytes.
    fn sfu_rule_at(p: &[u8], len: usize) -> bool {
        p[0] & 0x10 != 0 && p[0] & 0x07 == 0 && p[len] & 0x01 == 0
    }

    /// The same check the SFU does (RFC 7741), restated so this crate does not depend on `sfu`.
    fn sfu_rule(p: &[u8]) -> bool {
        p[0] & 0x10 != 0 && p[0] & 0x07 == 0 && p[4] & 0x01 == 0
    }
}
