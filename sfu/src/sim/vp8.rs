//! Synthetic VP8, as Chromium's simulcast encoder sends it: RFC 7741 payload descriptors with
//! the extended control bits (15-bit PictureID, TL0PICIDX, TID/Y/KEYIDX), a frame tag whose P bit
//! marks keyframes, and on keyframes the start code and dimensions, so the server's parsers
//! (`crate::keyframe`, `crate::vp8`) and a receiver's resolution check see real-looking packets.
//! Nothing decodes the frames; their bytes are filler of the right size.
//!
//! Adapted from the load generator's `loadtest/src/media.rs` (`sfu` cannot depend on it).

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

/// Largest RTP payload produced; with RTP header, extensions and SRTP a datagram stays under
/// 1,200 bytes, as a browser's do.
pub const MAX_PAYLOAD: usize = 1_100;

/// RTP clock of video.
const VIDEO_CLOCK: u32 = 90_000;

/// A frame's place in the temporal structure (RFC 7741: TID, layer sync Y, TL0PICIDX).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Temporal {
    pub tid: u8,
    pub layer_sync: bool,
    pub tl0_pic_idx: u8,
}

/// Chromium's three temporal layers: frames TID 0, 2, 1, 2 (layer sync on the first TID 2 and
/// TID 1 of each 8), bits split 40 / 20 / 40 % between TID 0 / 1 / 2 (a quarter, a quarter and
/// half of the frames). A keyframe restarts the pattern on TID 0.
#[derive(Debug, Clone, Default)]
struct TemporalPattern {
    frame: u64,
    tl0: u8,
}

impl TemporalPattern {
    /// The next frame's layer and its size relative to the mean frame.
    fn next(&mut self, keyframe: bool) -> (Temporal, f64) {
        if keyframe {
            self.frame = 0;
        }
        let i = self.frame;
        self.frame += 1;
        let (tid, layer_sync, weight) = match i % 8 {
            0 | 4 => (0, false, 1.6),
            1 | 5 => (2, true, 0.8),
            2 => (1, true, 0.8),
            6 => (1, false, 0.8),
            _ => (2, false, 0.8),
        };
        if tid == 0 {
            self.tl0 = self.tl0.wrapping_add(1);
        }
        let t = Temporal {
            tid,
            layer_sync: layer_sync || keyframe,
            tl0_pic_idx: self.tl0,
        };
        (t, weight)
    }
}

/// The bytes of one encoded frame: frame tag (P bit 0 on keyframes, show_frame, first partition
/// size), then on keyframes the start code `9d 01 2a` and 14-bit width and height, then filler.
pub fn encoded_frame(keyframe: bool, size: usize, width: u16, height: u16) -> BytesMut {
    let size = size.max(10);
    let mut frame = BytesMut::with_capacity(size);
    let tag: u32 = u32::from(!keyframe) | (1 << 4) | ((size as u32 & 0x7FFFF) << 5);
    frame.put_slice(&tag.to_le_bytes()[..3]);
    if keyframe {
        frame.put_slice(&[0x9d, 0x01, 0x2a]);
        frame.put_u16_le(width & 0x3FFF);
        frame.put_u16_le(height & 0x3FFF);
    }
    while frame.len() < size {
        frame.put_u8((frame.len() % 251) as u8);
    }
    frame
}

/// Splits a frame into RTP payloads of at most [`MAX_PAYLOAD`] bytes, each behind a descriptor
/// with I, L and T set (KEYIDX absent, as Chromium sends it); S on the first. The caller sets the
/// marker bit on the last.
pub fn packetise(picture_id: u16, temporal: Temporal, frame: &[u8]) -> Vec<Bytes> {
    const DESCRIPTOR: usize = 6;
    frame
        .chunks(MAX_PAYLOAD - DESCRIPTOR)
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = BytesMut::with_capacity(DESCRIPTOR + chunk.len());
            p.put_u8(if i == 0 { 0x90 } else { 0x80 }); // X, S on the first, PID 0
            p.put_u8(0xE0); // I, L, T
            p.put_u16(0x8000 | (picture_id & 0x7FFF)); // M: 15-bit PictureID
            p.put_u8(temporal.tl0_pic_idx);
            p.put_u8((temporal.tid & 0x03) << 6 | if temporal.layer_sync { 0x20 } else { 0 });
            p.put_slice(chunk);
            p.freeze()
        })
        .collect()
}

/// What a receiver reads from a payload: the temporal layer, and on the first packet of a
/// keyframe its dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    pub tid: Option<u8>,
    pub keyframe: Option<(u16, u16)>,
}

/// Parses a VP8 payload as a receiver would (the server's own rules decide "keyframe").
pub fn parse(payload: &[u8]) -> Option<Parsed> {
    let d = crate::vp8::parse(payload)?;
    let keyframe = if crate::keyframe::vp8_is_keyframe_start(payload) {
        let header = &payload[descriptor_len(payload)?..];
        match header.get(3..10) {
            Some([0x9d, 0x01, 0x2a, w0, w1, h0, h1]) => Some((
                u16::from_le_bytes([*w0, *w1]) & 0x3FFF,
                u16::from_le_bytes([*h0, *h1]) & 0x3FFF,
            )),
            _ => None,
        }
    } else {
        None
    };
    Some(Parsed {
        tid: d.tid,
        keyframe,
    })
}

fn descriptor_len(payload: &[u8]) -> Option<usize> {
    if payload.first()? & 0x80 == 0 {
        return Some(1);
    }
    let x = *payload.get(1)?;
    let mut at = 2;
    if x & 0x80 != 0 {
        at += if payload.get(at)? & 0x80 != 0 { 2 } else { 1 };
    }
    if x & 0x40 != 0 {
        at += 1;
    }
    if x & 0x30 != 0 {
        at += 1;
    }
    Some(at)
}

/// One simulcast layer's encoder settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerSpec {
    pub width: u16,
    pub height: u16,
    pub bitrate_bps: u64,
    pub fps: u32,
    /// A keyframe is this many mean frames big (Chromium's are several times a delta frame).
    pub keyframe_factor: f64,
}

impl LayerSpec {
    pub fn new(width: u16, height: u16, kbps: u64) -> Self {
        Self {
            width,
            height,
            bitrate_bps: kbps * 1_000,
            fps: 20,
            keyframe_factor: 4.0,
        }
    }
}

/// One RTP packet of a frame, before the peer adds SSRC, payload type and header extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPacket {
    pub sequence_number: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Bytes,
}

/// A frame generator for one layer: frames at the layer's rate from `start`, sizes from its
/// bitrate and temporal pattern, a keyframe first and whenever one is requested.
#[derive(Debug, Clone)]
pub struct VideoSource {
    pub spec: LayerSpec,
    start: Instant,
    frames: u64,
    sequence_number: u16,
    picture_id: u16,
    timestamp_base: u32,
    pattern: TemporalPattern,
    keyframe_pending: bool,
    /// Keyframes sent, for tests to see requests answered.
    pub keyframes: u64,
}

impl VideoSource {
    /// `seed` varies the initial sequence number, PictureID and timestamp, as encoders do.
    pub fn new(spec: LayerSpec, start: Instant, seed: u32) -> Self {
        let mix = seed.wrapping_mul(2_654_435_761);
        Self {
            spec,
            start,
            frames: 0,
            sequence_number: mix as u16,
            picture_id: (mix >> 16) as u16 & 0x7FFF,
            timestamp_base: mix.rotate_left(7),
            pattern: TemporalPattern::default(),
            keyframe_pending: true,
            keyframes: 0,
        }
    }

    /// When the next frame is due.
    pub fn next_due(&self) -> Instant {
        self.start + frame_interval(self.spec.fps) * self.frames as u32
    }

    /// The next frame gets to be a keyframe (a PLI or FIR arrived).
    pub fn request_keyframe(&mut self) {
        self.keyframe_pending = true;
    }

    /// The frame due at or before `now`, packetised, or nothing when none is due. Frames missed
    /// by a late call are skipped, as an encoder that fell behind drops them.
    pub fn poll_frame(&mut self, now: Instant) -> Option<Vec<MediaPacket>> {
        if now < self.next_due() {
            return None;
        }
        let interval = frame_interval(self.spec.fps);
        let index = ((now - self.start).as_nanos() / interval.as_nanos()) as u64;
        self.frames = index + 1;
        let keyframe = std::mem::take(&mut self.keyframe_pending);
        let (temporal, weight) = self.pattern.next(keyframe);
        let mean = self.spec.bitrate_bps as f64 / 8.0 / f64::from(self.spec.fps);
        let factor = if keyframe {
            self.keyframes += 1;
            self.spec.keyframe_factor
        } else {
            weight
        };
        let frame = encoded_frame(
            keyframe,
            (mean * factor) as usize,
            self.spec.width,
            self.spec.height,
        );
        self.picture_id = self.picture_id.wrapping_add(1) & 0x7FFF;
        let timestamp = self
            .timestamp_base
            .wrapping_add((index * u64::from(VIDEO_CLOCK / self.spec.fps)) as u32);
        let payloads = packetise(self.picture_id, temporal, &frame);
        let last = payloads.len() - 1;
        Some(
            payloads
                .into_iter()
                .enumerate()
                .map(|(i, payload)| {
                    self.sequence_number = self.sequence_number.wrapping_add(1);
                    MediaPacket {
                        sequence_number: self.sequence_number,
                        timestamp,
                        marker: i == last,
                        payload,
                    }
                })
                .collect(),
        )
    }
}

fn frame_interval(fps: u32) -> Duration {
    Duration::from_nanos(1_000_000_000 / u64::from(fps.max(1)))
}

#[cfg(test)]
#[path = "vp8_tests.rs"]
mod tests;
