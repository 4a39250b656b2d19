//! What a probe cluster delivered, from its own packets: the bytes sent between the cluster's
//! start and the moment its padding stopped, over the longer of the time they took to arrive
//! and the time they took to be sent (the lower of libwebrtc's receive and send rates, as its
//! `ProbeBitrateEstimator` computes per cluster).
//!
//! Why not the delivered rate over the last half second (`queue_delay.rs`): a cluster stopped
//! by its queue after ~0.3 s shares that window with the media-only packets before it, and
//! reads below what the line carried. Behind 450 kbit/s, a probe for a step needing 398 kbit/s
//! asked 497 kbit/s, queued, and was judged on ~360 kbit/s: failed, again and again, and the
//! point stayed on its lowest layer (`tests/probe_climb.rs`). Its own packets arrived at
//! ~450 kbit/s, which proves the step.

use std::time::{Duration, Instant};

/// Packets kept per cluster: a second of 1.9 Mbit/s of 310-byte padding is ~770 of them.
const MAX_PACKETS: usize = 4096;
/// Fewer packets than this, or a shorter arrival span, says nothing (libwebrtc asks for 5).
const MIN_PACKETS: usize = 5;
const MIN_SPAN: Duration = Duration::from_millis(20);

/// The packets of the running (or last) cluster, as feedback reports them.
#[derive(Debug, Default)]
pub struct ClusterRate {
    from: Option<Instant>,
    /// (arrival at the receiver, departure, size) of those that arrived.
    packets: Vec<(Duration, Instant, usize)>,
}

impl ClusterRate {
    /// Notes a packet that arrived, if it left while the cluster (from `from` to `until`, if
    /// its padding stopped) ran; a new `from` starts over. Returns whether it was the
    /// cluster's: once the cluster is over, nothing more is kept or recomputed.
    pub fn note(
        &mut self,
        (from, until): (Instant, Option<Instant>),
        arrival: Duration,
        departure: Instant,
        size: usize,
    ) -> bool {
        if self.from != Some(from) {
            self.from = Some(from);
            self.packets.clear();
        }
        let ours = departure >= from && until.is_none_or(|u| departure <= u);
        if ours && self.packets.len() < MAX_PACKETS {
            self.packets.push((arrival, departure, size));
            return true;
        }
        false
    }

    /// Bits/s the cluster's packets (those that left before `until`, if its padding stopped)
    /// were delivered at; `None` with too few of them.
    pub fn bps(&self, until: Option<Instant>) -> Option<f64> {
        let mut n = 0;
        let (mut first_in, mut last_in) = (Duration::MAX, Duration::ZERO);
        let (mut first_out, mut last_out) = (None::<Instant>, None::<Instant>);
        let (mut bytes, mut first_size) = (0usize, 0usize);
        for &(arrival, departure, size) in &self.packets {
            if until.is_some_and(|u| departure > u) {
                continue;
            }
            n += 1;
            bytes += size;
            if arrival < first_in {
                first_in = arrival;
                first_size = size;
            }
            last_in = last_in.max(arrival);
            first_out = Some(first_out.map_or(departure, |f| f.min(departure)));
            last_out = Some(last_out.map_or(departure, |l| l.max(departure)));
        }
        let received = last_in.checked_sub(first_in)?;
        if n < MIN_PACKETS || received < MIN_SPAN {
            return None;
        }
        let sent = last_out?.saturating_duration_since(first_out?);
        // The first arrival opens the span: its bytes came before it.
        Some((bytes - first_size) as f64 * 8.0 / received.max(sent).as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` packets of `size` bytes sent every `gap_us` from `t0 + at_ms`, arriving as a line
    /// of `line_bps` lets them through (a queue building when they are sent faster).
    fn send(
        c: &mut ClusterRate,
        from: Instant,
        (t0, at_ms): (Instant, u64),
        (n, size, gap_us): (u64, usize, u64),
        line_bps: f64,
    ) {
        let mut free_at = Duration::from_millis(at_ms);
        for i in 0..n {
            let sent = Duration::from_millis(at_ms) + Duration::from_micros(i * gap_us);
            let start = free_at.max(sent);
            free_at = start + Duration::from_secs_f64(size as f64 * 8.0 / line_bps);
            c.note(
                (from, None),
                free_at + Duration::from_millis(20),
                t0 + sent,
                size,
            );
        }
    }

    #[test]
    fn a_cluster_that_queued_reads_the_line_rate() {
        let t0 = Instant::now();
        let mut c = ClusterRate::default();
        let from = t0 + Duration::from_millis(1000);
        // Media alone before the cluster: not counted.
        send(&mut c, from, (t0, 500), (40, 400, 12_500), 450e3);
        // 497 kbit/s for 0.3 s into 450 kbit/s: 310-byte packets every 5 ms.
        send(&mut c, from, (t0, 1000), (60, 310, 5_000), 450e3);
        let bps = c
            .bps(Some(t0 + Duration::from_millis(1300)))
            .expect("enough");
        assert!((430e3..=460e3).contains(&bps), "{bps}");
    }

    #[test]
    fn packets_after_the_padding_stopped_do_not_dilute_it() {
        let t0 = Instant::now();
        let mut c = ClusterRate::default();
        let from = t0;
        send(&mut c, from, (t0, 0), (60, 310, 5_000), 450e3);
        // Media alone at 128 kbit/s after the stop at 300 ms.
        send(&mut c, from, (t0, 400), (30, 400, 25_000), 450e3);
        let stopped = c
            .bps(Some(t0 + Duration::from_millis(300)))
            .expect("enough");
        let diluted = c.bps(None).expect("enough");
        assert!(stopped > 430e3, "{stopped}");
        assert!(diluted < 300e3, "{diluted}");
    }

    #[test]
    fn a_cluster_the_line_carries_reads_its_own_rate_and_a_new_one_starts_over() {
        let t0 = Instant::now();
        let mut c = ClusterRate::default();
        send(&mut c, t0, (t0, 0), (100, 310, 5_000), 4e6);
        let bps = c.bps(None).expect("enough");
        assert!((480e3..=510e3).contains(&bps), "{bps}");
        let next = t0 + Duration::from_secs(5);
        assert!(c.note((next, None), Duration::from_secs(5), next, 310));
        assert_eq!(c.bps(None), None, "one packet says nothing");
        // Once its padding stopped, later packets are not the cluster's and are not kept.
        let after = next + Duration::from_millis(10);
        assert!(!c.note((next, Some(next)), Duration::from_secs(6), after, 310));
        assert_eq!(c.packets.len(), 1);
    }
}
