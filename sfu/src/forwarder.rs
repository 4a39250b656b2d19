//! Per-downtrack RTP rewriting: decide whether a publisher packet goes to one subscriber, and with
//! which sequence number and timestamp.
//!
//! A subscriber sees one continuous stream with its own SSRC whatever happens upstream: the
//! publisher restarting its encoder (new SSRC), or later a simulcast layer switch. On a switch
//! the output sequence continues at last+1 and the timestamp advances by the wall-clock time
//! since the last packet, so the subscriber's jitter buffer sees neither a gap nor a jump.
//! Video switches (and starts) only on a keyframe. Pure: no I/O, no clock; `now` is an input.

use std::time::Instant;

/// Why a packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Video cannot start or switch source on a delta frame; ask the publisher for a keyframe.
    AwaitingKeyframe,
    /// A late packet from a source we already switched away from.
    StaleSource,
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

#[derive(Debug, Clone, Copy)]
struct Source {
    ssrc: u32,
    seq_offset: u16,
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
            initial_seq,
            initial_ts,
        }
    }

    /// Decides one packet. `keyframe_start` is whether its payload begins a keyframe (always
    /// `false` is fine for audio).
    pub fn forward(
        &mut self,
        now: Instant,
        ssrc: u32,
        seq: u16,
        ts: u32,
        keyframe_start: bool,
    ) -> Result<Rewrite, Drop> {
        let mut switched = false;
        let source = match self.source {
            Some(s) if s.ssrc == ssrc => s,
            _ => {
                if self.previous_ssrc == Some(ssrc) && !keyframe_start {
                    return Err(Drop::StaleSource);
                }
                if self.is_video && !keyframe_start {
                    return Err(Drop::AwaitingKeyframe);
                }
                switched = true;
                self.switch_to(now, ssrc, seq, ts)
            }
        };
        let out_seq = seq.wrapping_add(source.seq_offset);
        let out_ts = ts.wrapping_add(source.ts_offset);
        match self.last {
            Some(last) if !seq_newer(out_seq, last.seq) => {}
            _ => {
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

    fn switch_to(&mut self, now: Instant, ssrc: u32, seq: u16, ts: u32) -> Source {
        let (next_seq, next_ts) = match self.last {
            Some(last) => {
                let elapsed = now.saturating_duration_since(last.at);
                let ticks = (elapsed.as_micros() * u128::from(self.clock_rate) / 1_000_000)
                    .clamp(1, u128::from(u32::MAX / 2)) as u32;
                (last.seq.wrapping_add(1), last.ts.wrapping_add(ticks))
            }
            None => (self.initial_seq, self.initial_ts),
        };
        if let Some(old) = self.source {
            self.previous_ssrc = Some(old.ssrc);
        }
        let s = Source {
            ssrc,
            seq_offset: next_seq.wrapping_sub(seq),
            ts_offset: next_ts.wrapping_sub(ts),
        };
        self.source = Some(s);
        s
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
}
