//! VP8 payload descriptor rewriting (RFC 7741 §4.2), so a subscriber's stream stays continuous
//! across simulcast layer switches.
//!
//! Each simulcast layer is its own encoder with its own PictureID (15 bits) and TL0PICIDX
//! (8 bits) counters. libwebrtc's VP8 reference finder remembers both: after a switch from one
//! layer to another and back, frames of the first layer whose TL0PICIDX falls where the other
//! layer's did are compared with the other layer's picture ids and dropped as old, until the
//! counters move past them. Measured with Chromium behind a 400 kbit/s line: a freeze of several
//! seconds a few seconds after such a round trip, packets arriving and no frame assembled
//! (`tests/browser/constrained.mjs`). SFUs rewrite both fields per subscriber (mediasoup's VP8
//! encoding context, LiveKit's VP8 munger, Janus' simulcast context); so do we: at each switch
//! the new layer's values are offset to continue the subscriber's last ones.
//!
//! Chromium's VP8 simulcast also carries three temporal layers per simulcast layer (TID in the
//! descriptor): a downtrack may drop the top ones to save bitrate without a keyframe (see
//! `temporal.rs`). A dropped picture leaves a hole in the PictureIDs, and libwebrtc's reference
//! finder waits for a missing PictureID before decoding the frames after it; so a dropped
//! picture also lowers the offset of every later one ([`Munger::skip_picture`]), as LiveKit's
//! VP8 munger and mediasoup's picture-id manager do.
//!
//! Rewriting copies the payload (the fields are inside it). Downtracks that never switched keep
//! offset zero and share the publisher's bytes; the others share one copy per distinct offset
//! per packet (see [`Rewrites`]).

use bytes::{Bytes, BytesMut};

/// Where the two counters sit in a payload, and their values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// PictureID: (value, byte offset, 15-bit form).
    pub picture_id: Option<(u16, usize, bool)>,
    /// TL0PICIDX: (value, byte offset).
    pub tl0: Option<(u8, usize)>,
    /// Temporal layer index, when the publisher sends temporal layers.
    pub tid: Option<u8>,
    /// Layer sync (Y): this frame depends only on TL0 frames, so forwarding may add its
    /// temporal layer from here.
    pub layer_sync: bool,
    /// First packet of a frame (S set, partition 0): where a temporal cap may change.
    pub frame_start: bool,
}

/// Parses the descriptor's PictureID and TL0PICIDX, if present. `None` for a truncated one.
pub fn parse(payload: &[u8]) -> Option<Descriptor> {
    let b0 = *payload.first()?;
    let mut d = Descriptor {
        picture_id: None,
        tl0: None,
        tid: None,
        layer_sync: false,
        frame_start: b0 & 0x10 != 0 && b0 & 0x07 == 0,
    };
    if b0 & 0x80 == 0 {
        return Some(d);
    }
    let x = *payload.get(1)?;
    let mut at = 2;
    if x & 0x80 != 0 {
        let first = *payload.get(at)?;
        if first & 0x80 != 0 {
            let second = *payload.get(at + 1)?;
            d.picture_id = Some((u16::from(first & 0x7f) << 8 | u16::from(second), at, true));
            at += 2;
        } else {
            d.picture_id = Some((u16::from(first), at, false));
            at += 1;
        }
    }
    if x & 0x40 != 0 {
        d.tl0 = Some((*payload.get(at)?, at));
        at += 1;
    }
    if x & 0x20 != 0 {
        let t = *payload.get(at)?;
        d.tid = Some(t >> 6);
        d.layer_sync = t & 0x20 != 0;
    }
    Some(d)
}

/// Offsets added to a layer's counters for one downtrack (mod 2^15 and 2^8; a 7-bit PictureID
/// takes the offset mod 2^7).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub picture_id: u16,
    pub tl0: u8,
}

impl Offsets {
    pub fn is_zero(self) -> bool {
        self.picture_id == 0 && self.tl0 == 0
    }
}

/// One downtrack's memory: its offsets and the last values it sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct Munger {
    offsets: Offsets,
    last: Option<(u16, u8)>,
    /// The input PictureID of the last picture dropped, so its later packets move nothing.
    dropped: Option<u16>,
}

impl Munger {
    /// The offsets for a packet; `switched` when this packet starts a new source (a keyframe):
    /// its counters then continue one after the last ones sent.
    pub fn offsets(&mut self, d: &Descriptor, switched: bool) -> Offsets {
        if switched && let Some((last_pid, last_tl0)) = self.last {
            if let Some((pid, _, _)) = d.picture_id {
                self.offsets.picture_id = last_pid.wrapping_add(1).wrapping_sub(pid) & 0x7fff;
            }
            if let Some((tl0, _)) = d.tl0 {
                self.offsets.tl0 = last_tl0.wrapping_add(1).wrapping_sub(tl0);
            }
        }
        let pid = d
            .picture_id
            .map(|(p, _, _)| p.wrapping_add(self.offsets.picture_id) & 0x7fff);
        let tl0 = d.tl0.map(|(t, _)| t.wrapping_add(self.offsets.tl0));
        let (last_pid, last_tl0) = self.last.unwrap_or((0, 0));
        // Later packets of a frame carry the same values; reordered ones are not "last".
        let newer_pid = pid
            .is_some_and(|p| self.last.is_none() || (p.wrapping_sub(last_pid) & 0x7fff) < 0x4000);
        if newer_pid || self.last.is_none() {
            self.last = Some((pid.unwrap_or(last_pid), tl0.unwrap_or(last_tl0)));
        }
        self.offsets
    }
}

impl Munger {
    /// A packet of a picture this downtrack does not forward (a temporal layer above its cap):
    /// if the picture is newer than the last one sent, every later picture's PictureID moves
    /// down by one, so the subscriber sees no missing picture. TL0PICIDX needs nothing: it
    /// counts base-layer pictures, which are never dropped.
    pub fn skip_picture(&mut self, d: &Descriptor) {
        let Some((pid, _, _)) = d.picture_id else {
            return;
        };
        if self.dropped == Some(pid) {
            return;
        }
        let out = pid.wrapping_add(self.offsets.picture_id) & 0x7fff;
        let newer = self
            .last
            .is_none_or(|(last, _)| out != last && (out.wrapping_sub(last) & 0x7fff) < 0x4000);
        if !newer {
            return;
        }
        self.dropped = Some(pid);
        self.offsets.picture_id = self.offsets.picture_id.wrapping_sub(1) & 0x7fff;
    }
}

/// Writes `offsets` into a copy of `payload`.
pub fn rewrite(payload: &Bytes, d: &Descriptor, offsets: Offsets) -> Bytes {
    let mut out = BytesMut::from(&payload[..]);
    if let Some((pid, at, long)) = d.picture_id {
        let v = pid.wrapping_add(offsets.picture_id);
        if long {
            let v = v & 0x7fff;
            out[at] = 0x80 | (v >> 8) as u8;
            out[at + 1] = v as u8;
        } else {
            out[at] = (v & 0x7f) as u8;
        }
    }
    if let Some((tl0, at)) = d.tl0 {
        out[at] = tl0.wrapping_add(offsets.tl0);
    }
    out.freeze()
}

/// The rewritten copies of one packet, shared by every downtrack with the same offsets.
#[derive(Default)]
pub struct Rewrites {
    copies: Vec<(Offsets, Bytes)>,
}

impl Rewrites {
    pub fn clear(&mut self) {
        self.copies.clear();
    }

    pub fn get(&mut self, payload: &Bytes, d: &Descriptor, offsets: Offsets) -> Bytes {
        if offsets.is_zero() {
            return payload.clone();
        }
        if let Some((_, b)) = self.copies.iter().find(|(o, _)| *o == offsets) {
            return b.clone();
        }
        let b = rewrite(payload, d, offsets);
        self.copies.push((offsets, b.clone()));
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Chromium-style descriptor: X, 15-bit PictureID, TL0PICIDX, TID; then one payload byte.
    fn packet(pid: u16, tl0: u8, start: bool) -> Bytes {
        Bytes::from(vec![
            if start { 0x90 } else { 0x80 },
            0xE0,
            0x80 | (pid >> 8) as u8,
            pid as u8,
            tl0,
            0x20,
            0x50,
        ])
    }

    fn values(p: &Bytes) -> (u16, u8) {
        let d = parse(p).unwrap();
        (d.picture_id.unwrap().0, d.tl0.unwrap().0)
    }

    #[test]
    fn parses_the_forms_chromium_and_others_send() {
        let d = parse(&packet(0x1234, 9, true)).unwrap();
        assert_eq!(d.picture_id, Some((0x1234, 2, true)));
        assert_eq!(d.tl0, Some((9, 4)));
        // 7-bit PictureID, no TL0PICIDX.
        let d = parse(&[0x90, 0x80, 0x05, 0x50]).unwrap();
        assert_eq!(d.picture_id, Some((5, 2, false)));
        assert_eq!(d.tl0, None);
        // No extension at all.
        assert_eq!(
            parse(&[0x10, 0x50]),
            Some(Descriptor {
                picture_id: None,
                tl0: None,
                tid: None,
                layer_sync: false,
                frame_start: true,
            })
        );
        // Chromium's temporal layers: TID 2 with layer sync, on a packet inside a frame.
        let d = parse(&[0x80, 0xE0, 0x81, 0x23, 0x05, 0xA0, 0x50]).unwrap();
        assert_eq!((d.tid, d.layer_sync, d.frame_start), (Some(2), true, false));
        assert_eq!(parse(&packet(1, 1, true)).unwrap().tid, Some(0));
        // Truncated: never a panic.
        for n in 0..5 {
            let _ = parse(&packet(0x1234, 9, true)[..n]);
        }
        assert_eq!(parse(&[0x90, 0xE0, 0x81]), None);
    }

    #[test]
    fn a_switch_continues_the_counters_and_later_packets_follow() {
        let mut m = Munger::default();
        let mut rw = Rewrites::default();
        let mut send = |m: &mut Munger, p: Bytes, switched: bool| {
            let d = parse(&p).unwrap();
            let o = m.offsets(&d, switched);
            rw.clear();
            values(&rw.get(&p, &d, o))
        };
        // Layer A from its keyframe: sent as is.
        assert_eq!(send(&mut m, packet(100, 7, true), true), (100, 7));
        assert_eq!(send(&mut m, packet(101, 8, true), false), (101, 8));
        // Switch to layer B, whose counters are elsewhere (and about to wrap).
        assert_eq!(send(&mut m, packet(0x7ffe, 250, true), true), (102, 9));
        assert_eq!(send(&mut m, packet(0x7fff, 251, true), false), (103, 10));
        assert_eq!(send(&mut m, packet(0, 252, true), false), (104, 11));
        // Back to layer A, which moved on meanwhile: continues after the last sent.
        assert_eq!(send(&mut m, packet(140, 30, true), true), (105, 12));
        assert_eq!(send(&mut m, packet(141, 31, true), false), (106, 13));
    }

    #[test]
    fn dropped_pictures_leave_no_hole_in_the_picture_ids() {
        let mut m = Munger::default();
        let mut rw = Rewrites::default();
        let mut send = |m: &mut Munger, p: Bytes, switched: bool| {
            let d = parse(&p).unwrap();
            let o = m.offsets(&d, switched);
            rw.clear();
            values(&rw.get(&p, &d, o))
        };
        assert_eq!(send(&mut m, packet(10, 3, true), true), (10, 3));
        // Picture 11 (two packets) is a top temporal layer: dropped.
        for _ in 0..2 {
            m.skip_picture(&parse(&packet(11, 3, true)).unwrap());
        }
        assert_eq!(send(&mut m, packet(12, 3, true), false), (11, 3));
        m.skip_picture(&parse(&packet(13, 3, true)).unwrap());
        assert_eq!(send(&mut m, packet(14, 4, true), false), (12, 4));
        assert_eq!(send(&mut m, packet(14, 4, false), false), (12, 4));
        // A late packet of a picture already sent moves nothing.
        m.skip_picture(&parse(&packet(12, 3, false)).unwrap());
        assert_eq!(send(&mut m, packet(15, 4, true), false), (13, 4));
        // A layer switch afterwards still continues at last + 1.
        assert_eq!(send(&mut m, packet(900, 77, true), true), (14, 5));
    }

    #[test]
    fn copies_are_shared_per_offset_and_zero_offsets_copy_nothing() {
        let p = packet(10, 1, true);
        let d = parse(&p).unwrap();
        let mut rw = Rewrites::default();
        let same = rw.get(&p, &d, Offsets::default());
        assert_eq!(same.as_ptr(), p.as_ptr());
        let o = Offsets {
            picture_id: 5,
            tl0: 2,
        };
        let a = rw.get(&p, &d, o);
        let b = rw.get(&p, &d, o);
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(values(&a), (15, 3));
        // Everything but the two fields is unchanged.
        assert_eq!(a[..2], p[..2]);
        assert_eq!(a[5..], p[5..]);
    }

    #[test]
    fn a_seven_bit_picture_id_wraps_in_seven_bits() {
        let p = Bytes::from_static(&[0x90, 0x80, 0x7f, 0x50]);
        let d = parse(&p).unwrap();
        let out = rewrite(
            &p,
            &d,
            Offsets {
                picture_id: 3,
                tl0: 0,
            },
        );
        assert_eq!(out[2], 2);
    }
}
