//! Redundant audio (RFC 2198, "RED") for the simulated points: the publisher wraps each Opus
//! frame with a copy of the previous one, the subscriber unwraps and recovers a lost packet's
//! frame from its successor. The layout is the server's (`sfu/src/red.rs`):
//!
//! ```text
//!  redundant block header (F = 1):  |1| block PT (7) | timestamp offset (14) | length (10) |
//!  primary block header   (F = 0):  |0| block PT (7) |
//!  then the redundant blocks' data in header order (oldest first), then the primary's data.
//! ```
//!
//! [`RedRecovery`] keeps the per-stream accounting: packets that arrived as RED, frames recovered
//! from redundancy, and audio gaps on the recovered stream (a recovered frame fills its slot).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use crate::stats::{GapDetector, SeqTracker};

/// What the points register for RED, as Chromium offers it and the server accepts it: Opus
/// (payload type 111) as both the primary and the redundant encoding.
pub const MIME_TYPE_RED: &str = "audio/red";
pub const RED_FMTP: &str = "111/111";
pub const RED_PAYLOAD_TYPE: u8 = 63;

/// Largest block a redundant header can describe (10-bit length).
pub const MAX_BLOCK: usize = 1_023;
/// Largest timestamp offset a redundant header can carry (14 bits).
pub const MAX_OFFSET: u32 = 0x3FFF;

/// One block of a RED payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub payload_type: u8,
    /// RTP timestamp offset back from the packet's own timestamp (0 for the primary).
    pub ts_offset: u16,
    pub data: Bytes,
}

/// A RED payload taken apart: redundant blocks oldest first, then the primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedPayload {
    pub redundant: Vec<Block>,
    pub primary: Block,
}

/// Builds a RED payload: `redundant` blocks (oldest first; each at most [`MAX_BLOCK`] bytes with
/// an offset of at most [`MAX_OFFSET`]; others are left out) and the primary.
pub fn encode(primary_pt: u8, redundant: &[Block], primary: &[u8]) -> Bytes {
    let kept: Vec<&Block> = redundant
        .iter()
        .filter(|b| b.data.len() <= MAX_BLOCK && u32::from(b.ts_offset) <= MAX_OFFSET)
        .collect();
    let size = kept.iter().map(|b| 4 + b.data.len()).sum::<usize>() + 1 + primary.len();
    let mut out = BytesMut::with_capacity(size);
    for b in &kept {
        out.put_u8(0x80 | (b.payload_type & 0x7F));
        let word = (u32::from(b.ts_offset) << 10) | b.data.len() as u32;
        out.put_slice(&word.to_be_bytes()[1..]);
    }
    out.put_u8(primary_pt & 0x7F);
    for b in &kept {
        out.put_slice(&b.data);
    }
    out.put_slice(primary);
    out.freeze()
}

/// Takes a RED payload apart, or `None` if it is malformed: headers that run past its end,
/// redundant blocks longer than what follows them, or no primary header. An empty primary is
/// allowed here (the server refuses to forward it as Opus; we only count).
pub fn decode(payload: &Bytes) -> Option<RedPayload> {
    let mut at = 0;
    let mut headers = Vec::new();
    let primary_pt = loop {
        let first = *payload.get(at)?;
        if first & 0x80 == 0 {
            at += 1;
            break first & 0x7F;
        }
        let h = payload.get(at..at + 4)?;
        let word = u32::from_be_bytes([0, h[1], h[2], h[3]]);
        headers.push((first & 0x7F, (word >> 10) as u16, (word & 0x3FF) as usize));
        at += 4;
    };
    let mut redundant = Vec::with_capacity(headers.len());
    for (payload_type, ts_offset, len) in headers {
        let end = at.checked_add(len)?;
        if end > payload.len() {
            return None;
        }
        redundant.push(Block {
            payload_type,
            ts_offset,
            data: payload.slice(at..end),
        });
        at = end;
    }
    Some(RedPayload {
        redundant,
        primary: Block {
            payload_type: primary_pt,
            ts_offset: 0,
            data: payload.slice(at..),
        },
    })
}

/// The publisher's side: remembers the last `depth` frames and wraps each new one with them.
#[derive(Debug, Clone)]
pub struct RedEncoder {
    /// Payload type of the blocks inside (Opus).
    pub inner_pt: u8,
    depth: usize,
    /// (RTP timestamp, frame), oldest first.
    history: Vec<(u32, Bytes)>,
}

impl RedEncoder {
    /// `depth`: redundant blocks per packet (1: the previous frame, as Chromium sends).
    pub fn new(inner_pt: u8, depth: usize) -> RedEncoder {
        RedEncoder {
            inner_pt,
            depth,
            history: Vec::new(),
        }
    }

    /// The RED payload for `frame` at RTP timestamp `ts`.
    pub fn wrap(&mut self, ts: u32, frame: Bytes) -> Bytes {
        let blocks: Vec<Block> = self
            .history
            .iter()
            .filter_map(|(t, data)| {
                let offset = ts.wrapping_sub(*t);
                (offset > 0 && offset <= MAX_OFFSET).then(|| Block {
                    payload_type: self.inner_pt,
                    ts_offset: offset as u16,
                    data: data.clone(),
                })
            })
            .collect();
        let out = encode(self.inner_pt, &blocks, &frame);
        if self.depth > 0 {
            self.history.push((ts, frame));
            if self.history.len() > self.depth {
                self.history.remove(0);
            }
        }
        out
    }
}

/// How far back a recovered sequence number is remembered (as [`SeqTracker`] waits for holes).
const REMEMBER: u64 = 2_000;

/// Per received audio stream: what arrived as RED, what redundancy recovered, and audio gaps on
/// the recovered stream. Fed for every audio packet; for a stream without RED it sees exactly
/// what the plain gap detector sees.
#[derive(Debug, Clone, Default)]
pub struct RedRecovery {
    /// Packets that arrived as RED (payload type the subscriber negotiated for RED).
    pub red_packets: u64,
    /// RED payloads that could not be taken apart.
    pub malformed: u64,
    /// Frames of missing packets recovered from a later packet's redundant block.
    pub recovered: u64,
    /// Of those, packets that arrived after all (late, or retransmitted).
    pub recovered_then_arrived: u64,
    /// Packets more than 60 ms apart on the recovered stream.
    pub gaps: GapDetector,
    /// Of the gaps over 100 ms (`gaps.long_gaps`), when those ended that skipped sequence
    /// numbers (packets lost and not recovered: a loss burst longer than RED covers); the others
    /// are delay (every packet came, late: queueing or a stalled sender).
    pub long_gaps_from_loss: Vec<Instant>,
    /// The highest sequence number played (arrived or recovered) so far.
    last_played: Option<u64>,
    recovered_seqs: BTreeSet<u64>,
}

impl RedRecovery {
    /// Records one audio packet that arrived at `now` with extended sequence number `ext`
    /// (already passed to `seq`). `red`: its payload is RED. Returns the frames it recovered.
    pub fn on_packet(
        &mut self,
        seq: &SeqTracker,
        ext: u64,
        now: Instant,
        payload: &Bytes,
        red: bool,
    ) -> u64 {
        if self.recovered_seqs.remove(&ext) {
            self.recovered_then_arrived += 1;
        }
        let mut recovered = 0;
        if red {
            self.red_packets += 1;
            match decode(payload) {
                Some(p) => {
                    // Redundant block i of n (oldest first) is packet ext - (n - i).
                    let n = p.redundant.len() as u64;
                    for (i, b) in p.redundant.iter().enumerate() {
                        let Some(target) = ext.checked_sub(n - i as u64) else {
                            continue;
                        };
                        if b.data.is_empty()
                            || !seq.is_missing(target)
                            || !self.recovered_seqs.insert(target)
                        {
                            continue;
                        }
                        self.recovered += 1;
                        recovered += 1;
                        // The recovered frame plays in its own slot, before this packet's.
                        let back = Duration::from_micros(u64::from(b.ts_offset) * 1_000 / 48);
                        self.play(target, now.checked_sub(back).unwrap_or(now));
                    }
                }
                None => self.malformed += 1,
            }
        }
        self.play(ext, now);
        while let Some(&old) = self.recovered_seqs.first() {
            if old + REMEMBER >= ext {
                break;
            }
            self.recovered_seqs.pop_first();
        }
        recovered
    }

    /// Packet `ext` plays at `at`: a gap before it that skipped sequence numbers counts as
    /// one from loss.
    fn play(&mut self, ext: u64, at: Instant) {
        let long = self.gaps.long_gaps.len();
        self.gaps.on_packet(at);
        if self.gaps.long_gaps.len() > long && self.last_played.is_some_and(|l| ext > l + 1) {
            self.long_gaps_from_loss.push(at);
        }
        self.last_played = Some(self.last_played.map_or(ext, |l| l.max(ext)));
    }

    /// Missing packets neither arrived nor recovered, given the stream's sequence tracker.
    pub fn lost_after(&self, seq: &SeqTracker) -> u64 {
        seq.unrecovered()
            .saturating_sub(self.recovered - self.recovered_then_arrived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(offset: u16, data: &'static [u8]) -> Block {
        Block {
            payload_type: 111,
            ts_offset: offset,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn one_redundant_block_round_trips() {
        let p = encode(111, &[block(960, b"previous")], b"current");
        // One 4-byte header, one primary header, then the data.
        assert_eq!(p.len(), 4 + 1 + 8 + 7);
        assert_eq!(p[0], 0x80 | 111);
        assert_eq!(p[4], 111);
        let d = decode(&p).unwrap();
        assert_eq!(d.redundant, vec![block(960, b"previous")]);
        assert_eq!(d.primary.data.as_ref(), b"current");
        assert_eq!(d.primary.payload_type, 111);
    }

    #[test]
    fn several_redundant_blocks_round_trip_oldest_first() {
        let blocks = [block(1920, b"two back"), block(960, b"one back!")];
        let p = encode(111, &blocks, b"now");
        let d = decode(&p).unwrap();
        assert_eq!(d.redundant, blocks.to_vec());
        assert_eq!(d.primary.data.as_ref(), b"now");
        // A block at the largest length and offset a header can say.
        let big = Bytes::from(vec![7u8; MAX_BLOCK]);
        let b = Block {
            payload_type: 111,
            ts_offset: MAX_OFFSET as u16,
            data: big.clone(),
        };
        let d = decode(&encode(111, std::slice::from_ref(&b), b"x")).unwrap();
        assert_eq!(d.redundant, vec![b]);
        // Too long for a header: left out, the primary still goes.
        let huge = Block {
            payload_type: 111,
            ts_offset: 960,
            data: Bytes::from(vec![1u8; MAX_BLOCK + 1]),
        };
        let d = decode(&encode(111, &[huge], b"y")).unwrap();
        assert!(d.redundant.is_empty());
        assert_eq!(d.primary.data.as_ref(), b"y");
    }

    #[test]
    fn the_encoder_sends_the_first_frame_alone_then_the_previous_one() {
        let mut e = RedEncoder::new(111, 1);
        let first = e.wrap(1_000, Bytes::from_static(b"f0"));
        assert_eq!(first.as_ref(), &[111, b'f', b'0']);
        let d = decode(&first).unwrap();
        assert!(d.redundant.is_empty());
        let second = decode(&e.wrap(1_960, Bytes::from_static(b"f1"))).unwrap();
        assert_eq!(second.redundant, vec![block(960, b"f0")]);
        assert_eq!(second.primary.data.as_ref(), b"f1");
        // The timestamp wraps: the offset is still 960.
        let mut e = RedEncoder::new(111, 2);
        e.wrap(u32::MAX - 959, Bytes::from_static(b"a"));
        e.wrap(0, Bytes::from_static(b"b"));
        let third = decode(&e.wrap(960, Bytes::from_static(b"c"))).unwrap();
        assert_eq!(third.redundant, vec![block(1920, b"a"), block(960, b"b")]);
        // What the server forwards to a subscriber without RED: the primary.
        let p = e.wrap(1_920, Bytes::from_static(b"d"));
        assert_eq!(sfu::red::primary(&p).unwrap().as_ref(), b"d");
    }

    #[test]
    fn malformed_payloads_never_panic() {
        assert_eq!(decode(&Bytes::new()), None);
        assert_eq!(decode(&Bytes::from_static(&[0x80 | 111, 0, 0])), None);
        assert_eq!(
            decode(&Bytes::from_static(&[0xff, 0, 0, 0, 0xff, 0, 0, 0])),
            None
        );
        let mut p = encode(111, &[block(960, b"abc")], b"").to_vec();
        p.truncate(p.len() - 1);
        assert_eq!(decode(&Bytes::from(p)), None);
        // Every prefix and a sweep of byte values: an answer or None, never a panic.
        let good = encode(111, &[block(1920, b"xy"), block(960, b"abc")], b"pq");
        for n in 0..=good.len() {
            let _ = decode(&good.slice(..n));
        }
        for v in 0..=255u8 {
            for i in 0..good.len() {
                let mut p = good.to_vec();
                p[i] = v;
                let _ = decode(&Bytes::from(p));
            }
        }
        // A header alone is a valid, empty primary.
        assert_eq!(
            decode(&Bytes::from_static(&[111]))
                .unwrap()
                .primary
                .data
                .len(),
            0
        );
    }

    /// A 20 ms stream at 50 packets per second: `lost` sequence numbers never arrive; returns
    /// the recovery and sequence accounting.
    fn run(lost: &[u16], red: bool) -> (RedRecovery, SeqTracker, GapDetector) {
        let t0 = Instant::now();
        let mut enc = RedEncoder::new(111, 1);
        let (mut rec, mut seq, mut plain) = (
            RedRecovery::default(),
            SeqTracker::default(),
            GapDetector::default(),
        );
        for s in 0..50u16 {
            let frame = Bytes::from(vec![s as u8; 3]);
            let ts = 5_000 + u32::from(s) * 960;
            let payload = if red { enc.wrap(ts, frame) } else { frame };
            if lost.contains(&s) {
                continue;
            }
            let now = t0 + Duration::from_millis(u64::from(s) * 20);
            let ext = seq.on_packet(s);
            plain.on_packet(now);
            rec.on_packet(&seq, ext, now, &payload, red);
        }
        (rec, seq, plain)
    }

    #[test]
    fn recovery_and_gaps_on_a_stream_with_known_losses() {
        // 5 alone, 10–11 (two), 20–22 (three), 30–33 (four).
        let lost = [5, 10, 11, 20, 21, 22, 30, 31, 32, 33];
        let (rec, seq, plain) = run(&lost, true);
        assert_eq!(rec.red_packets, 40);
        assert_eq!(seq.gaps_at_arrival, 10);
        // One frame back per packet: the last of each run comes back.
        assert_eq!(rec.recovered, 4);
        assert_eq!(rec.lost_after(&seq), 6);
        // Arrival: 40 ms (no gap), 60 ms (not over), 80 ms and 100 ms (gaps).
        assert_eq!(plain.gaps, 2);
        assert_eq!(plain.gap_time, Duration::from_millis(180));
        // Recovered: 20, 40, 60 and 80 ms holes: only the four-packet run leaves a gap.
        assert_eq!(rec.gaps.gaps, 1);
        assert_eq!(rec.gaps.gap_time, Duration::from_millis(80));

        assert!(rec.gaps.long_gaps.is_empty(), "80 ms is not over 100");
        // Six lost in a row: RED brings back the last, a 120 ms gap from loss.
        let (rec, _, _) = run(&[40, 41, 42, 43, 44, 45], true);
        assert_eq!(rec.gaps.long_gaps.len(), 1);
        assert_eq!(rec.gaps.longest, Duration::from_millis(120));
        assert_eq!(rec.long_gaps_from_loss.len(), 1);

        // Without RED the recovered stream is the arrival stream.
        let (rec, seq, plain) = run(&lost, false);
        assert_eq!((rec.red_packets, rec.recovered), (0, 0));
        assert_eq!(rec.lost_after(&seq), 10);
        assert_eq!(rec.gaps.gaps, plain.gaps);
        assert_eq!(rec.gaps.gap_time, plain.gap_time);
    }

    #[test]
    fn a_late_packet_after_recovery_is_not_counted_twice() {
        let t0 = Instant::now();
        let mut enc = RedEncoder::new(111, 1);
        let payloads: Vec<Bytes> = (0..4u32)
            .map(|i| enc.wrap(i * 960, Bytes::from_static(b"f")))
            .collect();
        let (mut rec, mut seq) = (RedRecovery::default(), SeqTracker::default());
        for s in [0u16, 2, 1, 3] {
            let ext = seq.on_packet(s);
            let now = t0 + Duration::from_millis(u64::from(s) * 20);
            rec.on_packet(&seq, ext, now, &payloads[usize::from(s)], true);
        }
        assert_eq!((rec.recovered, rec.recovered_then_arrived), (1, 1));
        assert_eq!(rec.lost_after(&seq), 0);
        // A RED packet that cannot be taken apart is counted, not recovered from.
        let ext = seq.on_packet(5);
        rec.on_packet(&seq, ext, t0, &Bytes::from_static(&[0x80]), true);
        assert_eq!(rec.malformed, 1);
        assert_eq!(rec.recovered, 1);
    }

    #[test]
    fn a_long_gap_with_every_packet_arriving_is_delay_not_loss() {
        let t0 = Instant::now();
        let (mut rec, mut seq) = (RedRecovery::default(), SeqTracker::default());
        // Packets 0..5 every 20 ms, then packet 5 held 150 ms in a queue: no hole.
        for (s, ms) in [
            (0u16, 0u64),
            (1, 20),
            (2, 40),
            (3, 60),
            (4, 80),
            (5, 230),
            (6, 240),
        ] {
            let ext = seq.on_packet(s);
            let now = t0 + Duration::from_millis(ms);
            rec.on_packet(&seq, ext, now, &Bytes::from_static(b"f"), false);
        }
        assert_eq!(rec.gaps.long_gaps.len(), 1);
        assert!(rec.long_gaps_from_loss.is_empty());
    }
}
