//! Per-downtrack RTP rewriting: decide whether a publisher packet goes to one subscriber, and with
//! which sequence number and timestamp.
//!
//! A subscriber sees one continuous stream with its own SSRC whatever happens upstream: the
//! publisher restarting its encoder (new SSRC), or later a simulcast layer switch. On a switch
//! the output sequence continues at last+1 and the timestamp advances by the wall-clock time
//! since the last packet, so the subscriber's jitter buffer sees neither a gap nor a jump.
//! Within one source, a packet that is not sent (padding, a RED packet without a primary, a
//! failed send) consumes no number ([`numbering`]). Video switches (and starts) only on a
//! keyframe. Pure: no I/O, no clock; `now` is an input.

mod numbering;

use std::time::Instant;

pub use numbering::{Numbering, Skipped};

/// Why a packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Video cannot start or switch source on a delta frame; ask the publisher for a keyframe.
    AwaitingKeyframe,
    /// A late packet from a source we already switched away from.
    StaleSource,
    /// A late packet of the current source with no number it could take (from before the
    /// source started here, too old, or one that was dropped).
    TooLate,
}

/// The rewritten header fields for one outgoing packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    pub seq: u16,
    pub ts: u32,
    /// The packet switched the source (or started the stream): its marker state is unknown to
    /// the subscriber, so callers may want to log or count it.
    pub switched: bool,
}

#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    numbering: Numbering,
    ts_offset: u32,
}

#[derive(Debug, Clone, Copy)]
struct LastOut {
    seq: u16,
    ts: u32,
    at: Instant,
}

#[derive(Debug, Clone)]
pub struct Forwarder {
    is_video: bool,
    clock_rate: u32,
    source: Option<Source>,
    previous_ssrc: Option<u32>,
    last: Option<LastOut>,
    /// `last` before the newest packet moved it, so a failed send can give its number back.
    before_last: Option<LastOut>,
    initial_seq: u16,
    initial_ts: u32,
}

/// `a` is newer than `b` in 16-bit sequence space (RFC 3550 wrap-around).
fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

impl Forwarder {
    /// `initial_seq`/`initial_ts` are where the subscriber's stream starts (random in production,
    /// so a subscriber cannot guess the publisher's values).
    pub fn new(is_video: bool, clock_rate: u32, initial_seq: u16, initial_ts: u32) -> Self {
        Self {
            is_video,
            clock_rate,
            source: None,
            previous_ssrc: None,
            last: None,
            before_last: None,
            initial_seq,
            initial_ts,
        }
    }

    /// Decides one packet. `keyframe_start` is whether its payload begins a keyframe (always
    /// `false` is fine for audio). A packet given a number here must be sent, or handed back
    /// with [`unsend`](Self::unsend).
    pub fn forward(
        &mut self,
        now: Instant,
        ssrc: u32,
        seq: u16,
        ts: u32,
        keyframe_start: bool,
    ) -> Result<Rewrite, Drop> {
        let switched = match &self.source {
            Some(s) if s.ssrc == ssrc => false,
            _ => {
                if self.previous_ssrc == Some(ssrc) && !keyframe_start {
                    return Err(Drop::StaleSource);
                }
                if self.is_video && !keyframe_start {
                    return Err(Drop::AwaitingKeyframe);
                }
                self.switch_to(now, ssrc, seq, ts);
                true
            }
        };
        let Some(source) = self.source.as_mut() else {
            return Err(Drop::AwaitingKeyframe);
        };
        let out_seq = source.numbering.number(seq).ok_or(Drop::TooLate)?;
        let out_ts = ts.wrapping_add(source.ts_offset);
        match self.last {
            Some(last) if !seq_newer(out_seq, last.seq) => {}
            _ => {
                self.before_last = self.last;
                self.last = Some(LastOut {
                    seq: out_seq,
                    ts: out_ts,
                    at: now,
                })
            }
        }
        Ok(Rewrite {
            seq: out_seq,
            ts: out_ts,
            switched,
        })
    }

    /// A packet this subscriber does not get (padding-only, or nothing in it for this
    /// subscriber), decided before numbering. If it belongs to the current source, the
    /// numbering closes over it; if it came late and its number is already reserved, the
    /// returned rewrite is the number to send a padding-only packet with.
    pub fn skip(&mut self, ssrc: u32, seq: u16, ts: u32) -> Option<Rewrite> {
        let source = self.source.as_mut().filter(|s| s.ssrc == ssrc)?;
        match source.numbering.skip(seq) {
            Skipped::Fill(out) => Some(Rewrite {
                seq: out,
                ts: ts.wrapping_add(source.ts_offset),
                switched: false,
            }),
            Skipped::Closed | Skipped::Ignored => None,
        }
    }

    /// The packet `forward` just numbered as `rewrite` (input `ssrc`/`seq`) was not sent: its
    /// number goes to the next packet, so the subscriber sees no hole.
    pub fn unsend(&mut self, ssrc: u32, seq: u16, rewrite: &Rewrite) {
        let Some(source) = self.source.as_mut().filter(|s| s.ssrc == ssrc) else {
            return;
        };
        if !source.numbering.unsend(seq) {
            return;
        }
        if self.last.is_some_and(|l| l.seq == rewrite.seq) {
            self.last = self.before_last.take();
        }
        if rewrite.switched {
            // The new source never reached the subscriber: start it again at a keyframe.
            self.source = None;
        }
    }

    /// A packet of our own (a padding-only probe, see `probe.rs`) after the last one sent: its
    /// number and timestamp (the last frame's, so the subscriber's jitter buffer sees no time
    /// pass). Between sources (a paused video) the next source's numbering starts after it.
    /// `None` before anything went out.
    pub fn pad(&mut self) -> Option<Rewrite> {
        let last = self.last.as_mut()?;
        let seq = match self.source.as_mut() {
            Some(source) => source.numbering.insert(),
            None => last.seq.wrapping_add(1),
        };
        last.seq = seq;
        self.before_last = None;
        Some(Rewrite {
            seq,
            ts: last.ts,
            switched: false,
        })
    }

    /// Forgets the current source so that the next packet (a keyframe, for video) starts anew,
    /// continuing the output numbering.
    pub fn reset_source(&mut self) {
        if let Some(s) = self.source.take() {
            self.previous_ssrc = Some(s.ssrc);
        }
    }

    /// True while a video downtrack has nothing to send until a keyframe comes.
    pub fn awaiting_keyframe(&self) -> bool {
        self.is_video && self.source.is_none()
    }

    fn switch_to(&mut self, now: Instant, ssrc: u32, seq: u16, ts: u32) {
        let (next_seq, next_ts) = match self.last {
            Some(last) => {
                let elapsed = now.saturating_duration_since(last.at);
                let ticks = (elapsed.as_micros() * u128::from(self.clock_rate) / 1_000_000)
                    .clamp(1, u128::from(u32::MAX / 2)) as u32;
                (last.seq.wrapping_add(1), last.ts.wrapping_add(ticks))
            }
            None => (self.initial_seq, self.initial_ts),
        };
        if let Some(old) = self.source.take() {
            self.previous_ssrc = Some(old.ssrc);
        }
        self.source = Some(Source {
            ssrc,
            numbering: Numbering::new(seq, next_seq),
            ts_offset: next_ts.wrapping_sub(ts),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn audio_starts_at_once_with_own_numbering() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(false, 48_000, 1000, 5000);
        let r = f.forward(t0, 0xAAAA, 60_000, 123_456, false).unwrap();
        assert_eq!((r.seq, r.ts, r.switched), (1000, 5000, true));
        let r = f.forward(t0, 0xAAAA, 60_001, 123_456 + 960, false).unwrap();
        assert_eq!((r.seq, r.ts, r.switched), (1001, 5960, false));
    }

    #[test]
    fn video_waits_for_keyframe() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(true, 90_000, 0, 0);
        assert!(f.awaiting_keyframe());
        assert_eq!(
            f.forward(t0, 1, 10, 100, false),
            Err(Drop::AwaitingKeyframe)
        );
        let r = f.forward(t0, 1, 11, 3100, true).unwrap();
        assert_eq!((r.seq, r.ts), (0, 0));
        // Rest of the keyframe and a delta frame flow on.
        assert_eq!(f.forward(t0, 1, 12, 3100, false).unwrap().seq, 1);
        assert_eq!(f.forward(t0, 1, 13, 6100, false).unwrap().ts, 3000);
        assert!(!f.awaiting_keyframe());
    }

    #[test]
    fn sequence_and_timestamp_continue_across_a_source_switch() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(true, 90_000, 65_534, u32::MAX - 1000);
        f.forward(t0, 1, 500, 10_000, true).unwrap();
        let last = f.forward(t0, 1, 501, 13_000, false).unwrap();
        assert_eq!(last.seq, 65_535);
        // The publisher restarts with a new SSRC and unrelated numbering, 100 ms later.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(
            f.forward(t1, 2, 40_000, 7, false),
            Err(Drop::AwaitingKeyframe)
        );
        let r = f.forward(t1, 2, 40_001, 9_007, true).unwrap();
        assert!(r.switched);
        assert_eq!(r.seq, 0, "wraps to the next sequence number");
        assert_eq!(
            r.ts,
            last.ts.wrapping_add(9_000),
            "advances by 100 ms at 90 kHz"
        );
        let r2 = f.forward(t1, 2, 40_002, 12_007, false).unwrap();
        assert_eq!((r2.seq, r2.ts), (1, r.ts.wrapping_add(3000)));
        // A late packet of the old source is dropped, not allowed to switch back.
        assert_eq!(f.forward(t1, 1, 502, 16_000, false), Err(Drop::StaleSource));
    }

    #[test]
    fn reordering_and_retransmissions_keep_their_offsets() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(false, 48_000, 100, 0);
        f.forward(t0, 9, 10, 0, false).unwrap();
        f.forward(t0, 9, 12, 1920, false).unwrap();
        let late = f.forward(t0, 9, 11, 960, false).unwrap();
        assert_eq!((late.seq, late.ts), (101, 960));
        // The late packet must not move "last": a switch now continues after 102.
        f.reset_source();
        let r = f.forward(t0, 10, 7, 0, false).unwrap();
        assert_eq!(r.seq, 103);
    }

    #[test]
    fn skipped_packets_and_failed_sends_leave_no_hole() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(true, 90_000, 1000, 0);
        assert_eq!(f.forward(t0, 1, 50, 0, true).unwrap().seq, 1000);
        // Two padding-only probes, then media: numbered as if the probes never existed.
        assert_eq!(f.skip(1, 51, 0), None);
        assert_eq!(f.skip(1, 52, 0), None);
        assert_eq!(f.forward(t0, 1, 53, 3000, false).unwrap().seq, 1001);
        // A packet of another layer is not this source's business.
        assert_eq!(f.skip(2, 54, 0), None);
        assert_eq!(f.forward(t0, 1, 54, 3000, false).unwrap().seq, 1002);
        // A send that fails gives its number to the next packet.
        let r = f.forward(t0, 1, 55, 6000, false).unwrap();
        assert_eq!(r.seq, 1003);
        f.unsend(1, 55, &r);
        assert_eq!(f.forward(t0, 1, 56, 6000, false).unwrap().seq, 1003);
        // A switch after all that continues at last + 1.
        f.reset_source();
        let r = f.forward(t0, 3, 9, 0, true).unwrap();
        assert_eq!(r.seq, 1004);
    }

    #[test]
    fn our_probes_take_numbers_between_frames_and_a_switch_continues_after_them() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(true, 90_000, 500, 0);
        assert_eq!(f.pad(), None, "nothing sent yet");
        assert_eq!(f.forward(t0, 1, 10, 3000, true).unwrap().seq, 500);
        let p = f.pad().unwrap();
        assert_eq!((p.seq, p.ts), (501, 0));
        assert_eq!(f.pad().unwrap().seq, 502);
        assert_eq!(f.forward(t0, 1, 11, 6000, false).unwrap().seq, 503);
        // Paused (no source): a probe still pads, and the next source starts after it.
        f.reset_source();
        assert_eq!(f.pad().map(|p| (p.seq, p.ts)), Some((504, 3000)));
        assert_eq!(f.forward(t0, 2, 90, 0, true).unwrap().seq, 505);
    }

    #[test]
    fn a_late_probe_fills_the_number_reserved_for_it() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(false, 48_000, 0, 0);
        f.forward(t0, 1, 10, 0, false).unwrap();
        f.forward(t0, 1, 12, 1920, false).unwrap();
        let fill = f
            .skip(1, 11, 960)
            .expect("its number is between two sent ones");
        assert_eq!((fill.seq, fill.ts), (1, 960));
    }

    #[test]
    fn a_failed_first_packet_of_a_source_waits_for_the_next_keyframe() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(true, 90_000, 0, 0);
        let r = f.forward(t0, 1, 10, 0, true).unwrap();
        f.unsend(1, 10, &r);
        assert!(f.awaiting_keyframe());
        assert_eq!(f.forward(t0, 1, 11, 0, false), Err(Drop::AwaitingKeyframe));
        assert_eq!(f.forward(t0, 1, 12, 3000, true).unwrap().seq, 0);
    }
}
