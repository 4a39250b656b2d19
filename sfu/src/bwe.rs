//! Per-subscriber bandwidth estimation from the subscriber's transport-wide feedback, run by
//! `rtc`'s congestion-control interceptor (which keeps the send history and resolves the
//! feedback into per-packet reports): the lower of a loss half tolerant of random loss
//! (`loss_control.rs`) and a queuing-delay guard (`queue_delay.rs`), with what the worker needs
//! copied out into atomics. Not `rtc`'s GCC: its delay half never backed off in our
//! measurements and its loss half, tuned for wired paths, starved lines with random loss
//! (see those modules).
//!
//! Why a tap and not the interceptor's `TargetBitrateChanged` attribute: that rides on the
//! feedback packet towards the application, and inbound RTCP stops at the end of the chain. The
//! estimator is ours to construct, so it can hand its numbers over directly. The worker reads them
//! at its allocation tick, a few times a second; the interceptor writes them on feedback, a few
//! dozen times a second. Nothing here is on the per-packet path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rtc::interceptor::{BandwidthEstimator, EstimatorStats, PacketReport};

use crate::loss_control::LossControl;
use crate::queue_delay::QueueDelayGuard;

/// Where the estimate starts before any feedback: high enough that a subscriber on a good link
/// reaches the top layer within seconds, low enough that a first step up on a poor link is a
/// small overshoot. New downtracks start on their
/// lowest layer whatever this says (see `allocator.rs`).
pub const INITIAL_BPS: f64 = 1_000_000.0;
/// Below the lowest simulcast layer plus audio, so the estimate can say "video does not fit".
pub const MIN_BPS: f64 = 30_000.0;
pub const MAX_BPS: f64 = 50_000_000.0;

/// What one subscriber link's estimator has learnt; shared between the interceptor (writer)
/// and the worker (reader) of the same thread, atomics only because the chain must be `Sync`.
#[derive(Debug, Default)]
pub struct LinkEstimate {
    target_bps: AtomicU64,
    /// Feedback batches seen; zero means the subscriber sends no transport-wide feedback (yet).
    feedback: AtomicU64,
    /// How many times the estimate went down: congestion the worker reacts to.
    decreases: AtomicU64,
    /// Transmissions the subscriber reported on, and those it reported missing (before any
    /// retransmission: the NACK responder's resends are transmissions of their own).
    reported: AtomicU64,
    missing: AtomicU64,
}

/// A consistent-enough copy of a [`LinkEstimate`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EstimateSnapshot {
    pub target_bps: f64,
    pub feedback: u64,
    pub decreases: u64,
    pub reported: u64,
    pub missing: u64,
}

impl LinkEstimate {
    pub fn snapshot(&self) -> EstimateSnapshot {
        EstimateSnapshot {
            target_bps: f64::from_bits(self.target_bps.load(Ordering::Relaxed)),
            feedback: self.feedback.load(Ordering::Relaxed),
            decreases: self.decreases.load(Ordering::Relaxed),
            reported: self.reported.load(Ordering::Relaxed),
            missing: self.missing.load(Ordering::Relaxed),
        }
    }
}

/// The estimator: loss half and queuing-delay guard, the result published to a
/// [`LinkEstimate`].
pub struct LinkEstimator {
    loss: LossControl,
    guard: QueueDelayGuard,
    target: f64,
    shared: Arc<LinkEstimate>,
}

impl LinkEstimator {
    pub fn new(shared: Arc<LinkEstimate>) -> Self {
        let loss = LossControl::new(INITIAL_BPS, MIN_BPS, MAX_BPS);
        let target = loss.target();
        shared.target_bps.store(target.to_bits(), Ordering::Relaxed);
        Self {
            loss,
            guard: QueueDelayGuard::default(),
            target,
            shared,
        }
    }
}

impl BandwidthEstimator for LinkEstimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        let before = self.target;
        let missing = reports.iter().filter(|r| !r.arrived).count();
        // Delay first: the loss half reads loss with it (random loss comes with a flat delay).
        let queue_backed_off = self.guard.on_reports(now, reports);
        let loss_target = self
            .loss
            .update(now, missing, reports.len(), self.guard.delay_flat());
        self.guard.release_above(loss_target);
        let after = self
            .guard
            .cap()
            .map_or(loss_target, |cap| loss_target.min(cap))
            .clamp(MIN_BPS, MAX_BPS);
        self.target = after;
        let s = &self.shared;
        s.target_bps.store(after.to_bits(), Ordering::Relaxed);
        s.feedback.fetch_add(1, Ordering::Relaxed);
        // Increases are small steps (≤ 5 % per 200 ms); anything below 98 % of the previous
        // value, or the guard reacting, is a decision to back off.
        if after < before * 0.98 || queue_backed_off {
            s.decreases.fetch_add(1, Ordering::Relaxed);
        }
        s.reported
            .fetch_add(reports.len() as u64, Ordering::Relaxed);
        s.missing.fetch_add(missing as u64, Ordering::Relaxed);
    }

    fn target_bitrate(&self) -> f64 {
        self.target
    }

    fn stats(&self) -> EstimatorStats {
        let mut stats = EstimatorStats::default();
        stats.loss_based_bitrate = Some(self.loss.target());
        stats.packet_loss = self.loss.average_loss();
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Ten packets sent 10 ms apart from `epoch + base_ms`, arriving 20 ms later each.
    fn batch(
        epoch: Instant,
        base_ms: u64,
        start: u64,
        lost_every: Option<u64>,
    ) -> Vec<PacketReport> {
        (0..10)
            .map(|i| {
                let id = start + i;
                let arrived = lost_every.is_none_or(|n| !id.is_multiple_of(n));
                PacketReport {
                    ssrc: 1,
                    id,
                    rtp_sequence_number: id as u16,
                    is_twcc: true,
                    twcc_sequence_number: id as u16,
                    size: 1200,
                    arrived,
                    departure: epoch + Duration::from_millis(base_ms + i * 10),
                    arrival: arrived.then(|| Duration::from_millis(base_ms + i * 10 + 20)),
                    ecn: Default::default(),
                }
            })
            .collect()
    }

    #[test]
    fn the_tap_publishes_the_initial_target_before_any_feedback() {
        let shared = Arc::new(LinkEstimate::default());
        let _e = LinkEstimator::new(shared.clone());
        let s = shared.snapshot();
        assert_eq!(s.target_bps, INITIAL_BPS);
        assert_eq!(s.feedback, 0);
    }

    #[test]
    fn heavy_loss_is_published_as_a_lower_target_and_a_decrease() {
        let shared = Arc::new(LinkEstimate::default());
        let mut e = LinkEstimator::new(shared.clone());
        let epoch = Instant::now();
        for b in 0..30u64 {
            let at = epoch + Duration::from_millis(b * 200 + 150);
            // Every second packet lost: 50 % loss.
            e.on_reports(at, &batch(epoch, b * 200, b * 10, Some(2)));
        }
        let s = shared.snapshot();
        assert_eq!(s.feedback, 30);
        assert!(s.target_bps < INITIAL_BPS, "target {}", s.target_bps);
        assert!(s.decreases >= 1);
        assert_eq!(s.reported, 300);
        assert_eq!(s.missing, 150);
        assert_eq!(s.target_bps, e.target_bitrate());
    }

    #[test]
    fn random_loss_with_a_flat_delay_neither_pulls_the_estimate_down_nor_stops_its_climb() {
        let shared = Arc::new(LinkEstimate::default());
        let mut e = LinkEstimator::new(shared.clone());
        let epoch = Instant::now();
        // 30 s of batches losing 0, 1 or 2 of 10 (up to 20 % in a batch, 8 % over all): the
        // delay stays flat, so none of it is congestion.
        for b in 0..150u64 {
            let at = epoch + Duration::from_millis(b * 200 + 150);
            let mut reports = batch(epoch, b * 200, b * 10, None);
            for r in reports
                .iter_mut()
                .take([1, 0, 1, 2, 0, 1, 1, 0, 2, 0][(b % 10) as usize])
            {
                r.arrived = false;
                r.arrival = None;
            }
            e.on_reports(at, &reports);
        }
        let s = shared.snapshot();
        assert_eq!(s.decreases, 0, "target {}", s.target_bps);
        assert!(s.target_bps > 2.0 * INITIAL_BPS, "{}", s.target_bps);
    }

    #[test]
    fn a_clean_path_never_counts_a_decrease() {
        let shared = Arc::new(LinkEstimate::default());
        let mut e = LinkEstimator::new(shared.clone());
        let epoch = Instant::now();
        for b in 0..30u64 {
            let at = epoch + Duration::from_millis(b * 200 + 150);
            e.on_reports(at, &batch(epoch, b * 200, b * 10, None));
        }
        let s = shared.snapshot();
        assert_eq!(s.decreases, 0);
        assert_eq!(s.missing, 0);
        assert!(s.target_bps >= INITIAL_BPS);
    }
}
