//! What the relay does to each packet between the upstream subscription and the local seat:
//! which local stream it belongs to ([`Route`]) and the rewrite onto that stream
//! ([`Rewriter`]). Pure: no I/O, tested on its own.

use bytes::Bytes;
use rtc::rtp;

use crate::peer::SimulcastIds;

/// Where an upstream packet goes on the local seat's publish connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// The upstream chair's microphone: the seat's audio track.
    Audio,
    /// One simulcast layer of the upstream chair's camera, by rank (0 the lowest).
    Video { layer: u8 },
    /// The screen share relayed (one encoding: a share is sent whole, text must stay sharp).
    Screen,
}

/// Simulcast rids of the local seat's camera, lowest first (as the loadtest points and the web
/// client name them).
pub const RIDS: [&str; 3] = ["q", "h", "f"];

/// The rid of a layer rank, or `None` past the last one the seat publishes.
pub fn rid(layer: u8) -> Option<&'static str> {
    RIDS.get(usize::from(layer)).copied()
}

/// Rewrites the packets of one upstream stream onto one local stream: the local SSRC and
/// payload type, sequence numbers and timestamps continuous when the upstream stream behind it
/// changes (a reconnect, another m-line), every upstream header extension dropped (they were
/// negotiated on the upstream connection, not this one) and, for video, the mid and rid the
/// local server reads the layer from.
#[derive(Debug)]
pub struct Rewriter {
    ssrc: u32,
    payload_type: u8,
    /// Timestamp units between the last packet of one upstream stream and the first of the next.
    step: u32,
    rid: Option<Bytes>,
    /// The upstream SSRC being rewritten, and the offsets onto the local numbering.
    source: Option<u32>,
    seq_offset: u16,
    ts_offset: u32,
    /// The newest local sequence number and timestamp written.
    last: Option<(u16, u32)>,
}

impl Rewriter {
    /// Audio (Opus, 48 kHz, 20 ms frames).
    pub fn audio(ssrc: u32, payload_type: u8) -> Self {
        Self::new(ssrc, payload_type, 960, None)
    }

    /// One video layer (90 kHz; one frame at 30 fps between sources).
    pub fn video(ssrc: u32, payload_type: u8, rid: &'static str) -> Self {
        Self::new(
            ssrc,
            payload_type,
            3_000,
            Some(Bytes::from_static(rid.as_bytes())),
        )
    }

    /// A screen share (90 kHz, one encoding: no rid).
    pub fn screen(ssrc: u32, payload_type: u8) -> Self {
        Self::new(ssrc, payload_type, 3_000, None)
    }

    fn new(ssrc: u32, payload_type: u8, step: u32, rid: Option<Bytes>) -> Self {
        Self {
            ssrc,
            payload_type,
            step,
            rid,
            source: None,
            seq_offset: 0,
            ts_offset: 0,
            last: None,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Rewrites `p` in place for the local stream.
    pub fn rewrite(&mut self, p: &mut rtp::Packet, ids: Option<&SimulcastIds>) {
        let h = &mut p.header;
        if self.source != Some(h.ssrc) {
            // A new upstream stream continues the local one right after its last packet.
            if let Some((seq, ts)) = self.last {
                self.seq_offset = seq.wrapping_add(1).wrapping_sub(h.sequence_number);
                self.ts_offset = ts.wrapping_add(self.step).wrapping_sub(h.timestamp);
            }
            self.source = Some(h.ssrc);
        }
        let seq = h.sequence_number.wrapping_add(self.seq_offset);
        let ts = h.timestamp.wrapping_add(self.ts_offset);
        let newer = self
            .last
            .is_none_or(|(last, _)| seq.wrapping_sub(last) < 0x8000);
        if newer {
            self.last = Some((seq, ts));
        }
        // A new header: nothing of the upstream's extension block (ids, profile, its padding)
        // may survive into this one.
        *h = rtp::header::Header {
            version: 2,
            padding: h.padding,
            marker: h.marker,
            payload_type: self.payload_type,
            sequence_number: seq,
            timestamp: ts,
            ssrc: self.ssrc,
            ..Default::default()
        };
        if let (Some(ids), Some(rid)) = (ids, &self.rid) {
            // Bytes clones share the buffer: no copy per packet.
            let _ = h.set_extension(ids.mid_ext, ids.mid.clone());
            let _ = h.set_extension(ids.rid_ext, rid.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ssrc: u32, seq: u16, ts: u32) -> rtp::Packet {
        let mut p = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                payload_type: 100,
                sequence_number: seq,
                timestamp: ts,
                ssrc,
                ..Default::default()
            },
            payload: Bytes::from_static(b"x"),
        };
        let _ = p.header.set_extension(3, Bytes::from_static(b"upstream"));
        p
    }

    fn ids() -> SimulcastIds {
        SimulcastIds {
            mid: Bytes::from_static(b"1"),
            mid_ext: 4,
            rid_ext: 10,
        }
    }

    #[test]
    fn a_video_packet_takes_the_local_ssrc_payload_type_mid_and_rid_and_loses_upstream_extensions()
    {
        let mut w = Rewriter::video(77, 96, "h");
        let mut p = packet(5, 10, 1_000);
        w.rewrite(&mut p, Some(&ids()));
        assert_eq!((p.header.ssrc, p.header.payload_type), (77, 96));
        assert_eq!((p.header.sequence_number, p.header.timestamp), (10, 1_000));
        assert_eq!(p.header.get_extension(3), None);
        assert_eq!(p.header.get_extension(4), Some(Bytes::from_static(b"1")));
        assert_eq!(p.header.get_extension(10), Some(Bytes::from_static(b"h")));
    }

    #[test]
    fn numbering_continues_when_the_upstream_stream_changes() {
        let mut w = Rewriter::video(77, 96, "q");
        for (seq, ts) in [(100, 9_000), (101, 12_000)] {
            w.rewrite(&mut packet(5, seq, ts), Some(&ids()));
        }
        // A reconnect: another SSRC, another numbering.
        let mut p = packet(6, 40_000, 123);
        w.rewrite(&mut p, Some(&ids()));
        assert_eq!(
            (p.header.sequence_number, p.header.timestamp),
            (102, 15_000)
        );
        let mut p = packet(6, 40_001, 3_123);
        w.rewrite(&mut p, Some(&ids()));
        assert_eq!(
            (p.header.sequence_number, p.header.timestamp),
            (103, 18_000)
        );
    }

    #[test]
    fn a_late_packet_does_not_move_the_continuation_point_back() {
        let mut w = Rewriter::audio(9, 111);
        w.rewrite(&mut packet(5, 11, 960), None);
        w.rewrite(&mut packet(5, 10, 0), None);
        let mut p = packet(6, 500, 0);
        w.rewrite(&mut p, None);
        assert_eq!((p.header.sequence_number, p.header.timestamp), (12, 1_920));
        assert!(!p.header.extension, "audio carries no extension");
    }

    #[test]
    fn three_layers_have_rids_and_a_fourth_has_none() {
        assert_eq!(
            [rid(0), rid(1), rid(2), rid(3)],
            [Some("q"), Some("h"), Some("f"), None]
        );
    }
}
