//! Bounded retransmission: which of a subscriber's NACKed packets we resend.
//!
//! `rtc`'s NACK responder resends everything it is asked for, as often as it is asked. On a
//! congested link that is a spiral: the link drops packets, the subscriber asks for them again
//! every few tens of milliseconds, the resends fill the link and drop more (measured: 90 % of
//! what a 220 kbit/s subscriber was sent was retransmissions, and its bandwidth estimate sat at
//! the floor). The gate sits wire-ward of the responder on the read path and trims each NACK to
//! what is worth resending:
//! - a packet at most [`MAX_RESENDS`] times, and not again within [`MIN_RESEND_INTERVAL`] (a
//!   resend is still in flight);
//! - in total, at most [`RESEND_SHARE`] of the link's estimate (a token bucket), so repair never
//!   crowds out the media it repairs; audio and the keyframe that follow matter more;
//! - never for a video the allocator paused ([`NackCounts::paused`]): it resumes on a keyframe,
//!   and nothing from before the pause will be decoded. Chromium keeps NACKing a paused video
//!   for about ten seconds (18–27 a second on `flap`), and the floor above answered up to 10 a
//!   second: in virtual time behind 100 kbit/s, 49 kbit/s of the line went on resent video
//!   while paused. (Chromium's audio delay in that dip did not change without them: it comes
//!   from the dip's start.)

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::bwe::LinkEstimate;
use crate::read_hook::ReadHook;
use rtc::interceptor::{Packet, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};

pub const MAX_RESENDS: u8 = 3;
pub const MIN_RESEND_INTERVAL: Duration = Duration::from_millis(100);
pub const RESEND_SHARE: f64 = 0.25;
/// Size a resend is budgeted at (a full video packet).
const RESEND_BITS: f64 = 1_200.0 * 8.0;
/// The bucket never refills slower than this (an estimate at its floor still repairs audio).
const MIN_RESENDS_PER_SEC: f64 = 10.0;
const BURST: f64 = 30.0;
/// Resend records older than this are forgotten (the responder's buffer is shorter anyway).
const REMEMBER: Duration = Duration::from_secs(2);
const MAX_REMEMBERED: usize = 4096;

/// The per-link decision, pure: the interceptor below feeds it.
#[derive(Debug, Default)]
pub struct NackGate {
    resent: HashMap<(u32, u16), (Instant, u8)>,
    tokens: f64,
    refilled: Option<Instant>,
    last_prune: Option<Instant>,
}

impl NackGate {
    /// Whether to resend `seq` of `ssrc` now, on a link estimated at `estimate_bps`.
    pub fn admit(&mut self, now: Instant, ssrc: u32, seq: u16, estimate_bps: f64) -> bool {
        self.refill(now, estimate_bps);
        self.prune(now);
        if let Some(&(at, count)) = self.resent.get(&(ssrc, seq))
            && (count >= MAX_RESENDS || now.saturating_duration_since(at) < MIN_RESEND_INTERVAL)
        {
            return false;
        }
        if self.tokens < 1.0 {
            return false;
        }
        if self.resent.len() >= MAX_REMEMBERED {
            return false;
        }
        self.tokens -= 1.0;
        let entry = self.resent.entry((ssrc, seq)).or_insert((now, 0));
        *entry = (now, entry.1 + 1);
        true
    }

    fn refill(&mut self, now: Instant, estimate_bps: f64) {
        let rate = (estimate_bps * RESEND_SHARE / RESEND_BITS).max(MIN_RESENDS_PER_SEC);
        match self.refilled {
            None => self.tokens = BURST,
            Some(at) => {
                let secs = now.saturating_duration_since(at).as_secs_f64();
                self.tokens = (self.tokens + secs * rate).min(BURST);
            }
        }
        self.refilled = Some(now);
    }

    fn prune(&mut self, now: Instant) {
        if self
            .last_prune
            .is_some_and(|at| now.saturating_duration_since(at) < Duration::from_millis(500))
        {
            return;
        }
        self.last_prune = Some(now);
        self.resent
            .retain(|_, (at, _)| now.saturating_duration_since(*at) < REMEMBER);
    }
}

/// What the gate and the worker share: counts for the worker's metrics, and the videos the
/// worker paused.
#[derive(Debug, Default)]
pub struct NackCounts {
    pub requested: AtomicU64,
    pub refused: AtomicU64,
    /// SSRCs (ours, on this link) of the videos paused by the allocator: their NACKs are
    /// refused. Set by the worker at its allocation tick; the gate runs on the same thread,
    /// so the lock is never contended.
    pub paused: std::sync::Mutex<Vec<u32>>,
}

impl NackCounts {
    /// The paused videos are now `ssrcs`.
    pub fn set_paused(&self, ssrcs: &[u32]) {
        let mut p = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        if p.as_slice() != ssrcs {
            p.clear();
            p.extend_from_slice(ssrcs);
        }
    }

    fn is_paused(&self, ssrc: u32) -> bool {
        self.paused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&ssrc)
    }
}

/// The interceptor: trims inbound NACKs before the NACK responder sees them.
pub fn nack_gate(
    estimate: Arc<LinkEstimate>,
    counts: Arc<NackCounts>,
) -> ReadHook<impl FnMut(&mut TaggedPacket) + Send + Sync> {
    let mut gate = NackGate::default();
    ReadHook::new(move |msg: &mut TaggedPacket| {
        let now = msg.now;
        let Packet::Rtcp(packets) = &mut msg.message.packet else {
            return;
        };
        for p in packets.iter_mut() {
            let trimmed = p
                .as_any()
                .downcast_ref::<TransportLayerNack>()
                .map(|nack| gate.trim(now, nack, &estimate, &counts));
            if let Some(t) = trimmed {
                *p = Box::new(t);
            }
        }
    })
}

impl NackGate {
    fn trim(
        &mut self,
        now: Instant,
        nack: &TransportLayerNack,
        estimate: &LinkEstimate,
        counts: &NackCounts,
    ) -> TransportLayerNack {
        let estimate = estimate.snapshot().target_bps;
        let mut requested = 0u64;
        let mut kept: Vec<u16> = Vec::new();
        let paused = counts.is_paused(nack.media_ssrc);
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                requested += 1;
                if !paused && self.admit(now, nack.media_ssrc, seq, estimate) {
                    kept.push(seq);
                }
            }
        }
        counts.requested.fetch_add(requested, Ordering::Relaxed);
        counts
            .refused
            .fetch_add(requested - kept.len() as u64, Ordering::Relaxed);
        TransportLayerNack {
            sender_ssrc: nack.sender_ssrc,
            media_ssrc: nack.media_ssrc,
            nacks: nack_pairs_from_sequence_numbers(&kept),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_is_resent_at_most_three_times_and_not_while_a_resend_is_in_flight() {
        let t0 = Instant::now();
        let mut g = NackGate::default();
        assert!(g.admit(t0, 1, 10, 1e6));
        assert!(!g.admit(t0 + Duration::from_millis(20), 1, 10, 1e6));
        assert!(g.admit(t0 + Duration::from_millis(150), 1, 10, 1e6));
        assert!(g.admit(t0 + Duration::from_millis(300), 1, 10, 1e6));
        assert!(!g.admit(t0 + Duration::from_millis(500), 1, 10, 1e6));
        // Other packets and other streams are independent.
        assert!(g.admit(t0 + Duration::from_millis(400), 1, 11, 1e6));
        assert!(g.admit(t0 + Duration::from_millis(400), 2, 10, 1e6));
    }

    #[test]
    fn resends_stay_within_a_share_of_the_estimate() {
        let t0 = Instant::now();
        let mut g = NackGate::default();
        // 480 kbit/s: 25 % is 120 kbit/s, 12.5 resends/s of 1,200 bytes, after a burst of 30.
        let mut admitted = 0;
        for i in 0..10_000u32 {
            let now = t0 + Duration::from_millis(u64::from(i)); // 10 s, 1,000 requests/s
            if g.admit(now, 1, i as u16, 480e3) {
                admitted += 1;
            }
        }
        assert!(
            (150..=160).contains(&admitted),
            "30 + 10 s × 12.5/s = 155, got {admitted}"
        );
    }

    #[test]
    fn a_link_at_its_floor_still_repairs_a_little() {
        let t0 = Instant::now();
        let mut g = NackGate::default();
        let admitted = (0..=2_000u32)
            .filter(|&i| g.admit(t0 + Duration::from_millis(u64::from(i)), 1, i as u16, 0.0))
            .count();
        assert_eq!(admitted, 30 + 20, "burst, then 10/s for 2 s");
    }

    #[test]
    fn old_records_are_forgotten() {
        let t0 = Instant::now();
        let mut g = NackGate::default();
        for i in 0..30u16 {
            assert!(g.admit(t0, 1, i, 1e9));
        }
        assert_eq!(g.resent.len(), 30);
        g.admit(t0 + REMEMBER + Duration::from_secs(1), 1, 999, 1e9);
        assert_eq!(g.resent.len(), 1);
    }

    #[test]
    fn nacks_for_a_paused_video_are_refused_and_counted() {
        let t0 = Instant::now();
        let mut g = NackGate::default();
        let counts = NackCounts::default();
        let estimate = LinkEstimate::default();
        let nack = |ssrc| TransportLayerNack {
            sender_ssrc: 9,
            media_ssrc: ssrc,
            nacks: nack_pairs_from_sequence_numbers(&[10, 11, 12]),
        };
        let asked = |t: &TransportLayerNack| -> usize {
            t.nacks.iter().map(|p| p.packet_list().len()).sum()
        };
        counts.set_paused(&[7]);
        assert_eq!(asked(&g.trim(t0, &nack(7), &estimate, &counts)), 0);
        assert_eq!(
            asked(&g.trim(t0, &nack(8), &estimate, &counts)),
            3,
            "the others"
        );
        assert_eq!(counts.requested.load(Ordering::Relaxed), 6);
        assert_eq!(counts.refused.load(Ordering::Relaxed), 3);
        // Resumed: repaired again.
        counts.set_paused(&[]);
        assert_eq!(asked(&g.trim(t0, &nack(7), &estimate, &counts)), 3);
    }
}
