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
use std::time::{Duration, Instant};

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
/// The estimate grows by itself only up to this multiple of what the link delivered lately
/// (plus [`GROWTH_SLACK`]), as libwebrtc's rate control limits itself to 1.5 times the
/// acknowledged rate: a link carrying 300 kbit/s of video without queueing says nothing about
/// 1 Mbit/s. Measured before this limit: behind a 400 kbit/s line the estimate climbed from
/// 400 kbit/s to 1 Mbit/s in four seconds while the point received its 360p layer, and the
/// allocator stepped up to 720p into a freeze (CI, `constrained.mjs` (b)). Above that, only a
/// probe (`probe.rs`) raises it.
pub const GROWTH_LIMIT: f64 = 1.5;
pub const GROWTH_SLACK: f64 = 50_000.0;
/// Below this the estimate grows freely: a link whose video is paused delivers only audio, and
/// the lowest layer must be able to come back without a probe (it has no video to pad).
pub const FREE_GROWTH_BELOW: f64 = 300_000.0;
/// "Delivered lately" is the peak of the delivered rate over this long.
const DELIVERED_PEAK_WINDOW: Duration = Duration::from_secs(2);

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
    /// Bits/s the subscriber received over the last half second, by its feedback.
    delivered_bps: AtomicU64,
    /// The highest delivered rate since the worker last reset it (at a probe's start).
    probe_peak_bps: AtomicU64,
    /// Queuing delay of the last feedback batch, µs, and how many batches in a row it was over
    /// [`crate::probe::STOP_QUEUE`]: a probe stops at the first sign of a queue.
    queue_us: AtomicU64,
    queue_over: AtomicU64,
    /// A rate a probe showed the link carries, adopted at the next feedback (0: none).
    raise_bps: AtomicU64,
}

/// A consistent-enough copy of a [`LinkEstimate`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EstimateSnapshot {
    pub target_bps: f64,
    pub feedback: u64,
    pub decreases: u64,
    pub reported: u64,
    pub missing: u64,
    pub delivered_bps: f64,
}

impl LinkEstimate {
    pub fn snapshot(&self) -> EstimateSnapshot {
        EstimateSnapshot {
            target_bps: f64::from_bits(self.target_bps.load(Ordering::Relaxed)),
            feedback: self.feedback.load(Ordering::Relaxed),
            decreases: self.decreases.load(Ordering::Relaxed),
            reported: self.reported.load(Ordering::Relaxed),
            missing: self.missing.load(Ordering::Relaxed),
            delivered_bps: f64::from_bits(self.delivered_bps.load(Ordering::Relaxed)),
        }
    }

    /// Starts measuring a probe: the peak delivered rate from now on.
    pub fn start_probe(&self) {
        self.probe_peak_bps.store(0, Ordering::Relaxed);
    }

    /// The highest delivered rate since [`Self::start_probe`].
    pub fn probe_peak(&self) -> f64 {
        f64::from_bits(self.probe_peak_bps.load(Ordering::Relaxed))
    }

    /// Queuing delay the last feedback showed.
    pub fn queue(&self) -> Duration {
        Duration::from_micros(self.queue_us.load(Ordering::Relaxed))
    }

    /// Feedback batches in a row whose queuing delay was over [`crate::probe::STOP_QUEUE`].
    pub fn queue_over(&self) -> u64 {
        self.queue_over.load(Ordering::Relaxed)
    }

    /// A probe showed the link carries `bps`: the estimate rises to it at the next feedback.
    pub fn raise_to(&self, bps: f64) {
        self.raise_bps.store(bps.to_bits(), Ordering::Relaxed);
    }
}

/// The estimator: loss half and queuing-delay guard, the result published to a
/// [`LinkEstimate`].
pub struct LinkEstimator {
    loss: LossControl,
    guard: QueueDelayGuard,
    target: f64,
    /// Peak delivered rate of the last [`DELIVERED_PEAK_WINDOW`], and when it was set.
    delivered_peak: Option<(f64, Instant)>,
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
            delivered_peak: None,
            shared,
        }
    }

    /// Notes the delivered rate; returns the peak of the last [`DELIVERED_PEAK_WINDOW`].
    fn note_delivered(&mut self, now: Instant) -> Option<f64> {
        let Some(delivered) = self.guard.delivered_bps() else {
            return self.delivered_peak.map(|(p, _)| p);
        };
        let s = &self.shared;
        s.delivered_bps
            .store(delivered.to_bits(), Ordering::Relaxed);
        let peak = f64::from_bits(s.probe_peak_bps.load(Ordering::Relaxed));
        if delivered > peak {
            s.probe_peak_bps
                .store(delivered.to_bits(), Ordering::Relaxed);
        }
        match self.delivered_peak {
            Some((p, at))
                if p >= delivered && now.saturating_duration_since(at) < DELIVERED_PEAK_WINDOW => {}
            _ => self.delivered_peak = Some((delivered, now)),
        }
        self.delivered_peak.map(|(p, _)| p)
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
        let mut loss_target =
            self.loss
                .update(now, missing, reports.len(), self.guard.delay_flat());
        // Growth only as far as the link has shown it carries (see GROWTH_LIMIT).
        if let Some(peak) = self.note_delivered(now) {
            let limit = (peak * GROWTH_LIMIT + GROWTH_SLACK).max(FREE_GROWTH_BELOW);
            if loss_target > before && loss_target > limit {
                loss_target = before.max(limit);
                self.loss.set_target(loss_target);
            }
        }
        let raise = f64::from_bits(self.shared.raise_bps.swap(0, Ordering::Relaxed));
        if raise > loss_target {
            loss_target = raise.min(MAX_BPS);
            self.loss.set_target(loss_target);
            self.guard.lift_to(loss_target);
        }
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
            // Beside the allocation log: which half backed off, and on what.
            tracing::debug!(
                target: "sfu::worker::allocate",
                before = before as u64,
                after = after as u64,
                queue_guard = queue_backed_off,
                queue_ms = ?self.guard.queue.map(|q| q.as_millis()),
                delivered = s.snapshot().delivered_bps as u64,
                busy = ?self.guard.busy_bps().map(|b| b as u64),
                loss = ?self.loss.average_loss(),
                missing,
                reports = reports.len(),
                "estimate backed off"
            );
        }
        s.reported
            .fetch_add(reports.len() as u64, Ordering::Relaxed);
        s.missing.fetch_add(missing as u64, Ordering::Relaxed);
        if let Some(q) = self.guard.queue {
            s.queue_us.store(q.as_micros() as u64, Ordering::Relaxed);
            if q > crate::probe::STOP_QUEUE {
                s.queue_over.fetch_add(1, Ordering::Relaxed);
            } else {
                s.queue_over.store(0, Ordering::Relaxed);
            }
        }
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

    /// Ten packets of 1,200 bytes sent 10 ms apart from `epoch + base_ms` (480 kbit/s in a
    /// batch every 200 ms), arriving 20 ms later each.
    fn batch(
        epoch: Instant,
        base_ms: u64,
        start: u64,
        lost_every: Option<u64>,
    ) -> Vec<PacketReport> {
        dense_batch(epoch, base_ms, start, lost_every, 10)
    }

    /// `n` packets of 1,200 bytes spread over 100 ms from `epoch + base_ms`.
    fn dense_batch(
        epoch: Instant,
        base_ms: u64,
        start: u64,
        lost_every: Option<u64>,
        n: u64,
    ) -> Vec<PacketReport> {
        (0..n)
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
                    departure: epoch + Duration::from_micros((base_ms * 1000) + i * 100_000 / n),
                    arrival: arrived
                        .then(|| Duration::from_micros((base_ms + 20) * 1000 + i * 100_000 / n)),
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
        // 30 s of batches of 40 (1.9 Mbit/s delivered) losing 0, 4 or 8 of 40 (up to 20 % in
        // a batch, 8 % over all): the delay stays flat, so none of it is congestion.
        for b in 0..150u64 {
            let at = epoch + Duration::from_millis(b * 200 + 150);
            let mut reports = dense_batch(epoch, b * 200, b * 40, None, 40);
            for r in reports
                .iter_mut()
                .take(4 * [1, 0, 1, 2, 0, 1, 1, 0, 2, 0][(b % 10) as usize])
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

    #[test]
    fn the_estimate_grows_only_as_far_as_the_link_has_delivered() {
        let shared = Arc::new(LinkEstimate::default());
        let mut e = LinkEstimator::new(shared.clone());
        let epoch = Instant::now();
        // 6 s losing half: the estimate falls well below the 1 Mbit/s it started from.
        for b in 0..30u64 {
            let at = epoch + Duration::from_millis(b * 200 + 150);
            e.on_reports(at, &batch(epoch, b * 200, b * 10, Some(2)));
        }
        let low = shared.snapshot().target_bps;
        assert!(low < 500_000.0, "{low}");
        // 30 s clean at 480 kbit/s: it climbs to 1.5 times that plus the slack, no further.
        for b in 30..180u64 {
            let at = epoch + Duration::from_millis(b * 200 + 150);
            e.on_reports(at, &batch(epoch, b * 200, b * 10, None));
        }
        // (Half a second of arrivals in 100 ms bursts every 200 ms reads up to 570 kbit/s.)
        let s = shared.snapshot();
        let limit = 570_000.0 * GROWTH_LIMIT + GROWTH_SLACK;
        assert!(
            s.target_bps > 480_000.0 * GROWTH_LIMIT && s.target_bps <= limit,
            "target {} limit {limit}",
            s.target_bps
        );
        assert!(
            (s.delivered_bps - 480_000.0).abs() < 100_000.0,
            "{}",
            s.delivered_bps
        );
    }

    #[test]
    fn a_rate_a_probe_proved_is_adopted_at_the_next_feedback_and_its_peak_measured() {
        let shared = Arc::new(LinkEstimate::default());
        let mut e = LinkEstimator::new(shared.clone());
        let epoch = Instant::now();
        for b in 0..10u64 {
            let at = epoch + Duration::from_millis(b * 200 + 150);
            e.on_reports(at, &batch(epoch, b * 200, b * 10, None));
        }
        shared.start_probe();
        assert_eq!(shared.probe_peak(), 0.0);
        for b in 10..15u64 {
            let at = epoch + Duration::from_millis(b * 200 + 150);
            e.on_reports(at, &dense_batch(epoch, b * 200, b * 40, None, 40));
        }
        let peak = shared.probe_peak();
        assert!(peak > 1_500_000.0, "{peak}");
        let before = shared.snapshot();
        shared.raise_to(peak);
        e.on_reports(
            epoch + Duration::from_millis(15 * 200 + 150),
            &batch(epoch, 15 * 200, 600, None),
        );
        let after = shared.snapshot();
        assert_eq!(after.target_bps, peak);
        assert_eq!(after.decreases, before.decreases);
    }

    #[test]
    fn a_growing_queue_is_counted_batch_by_batch_and_forgotten_when_it_drains() {
        let shared = Arc::new(LinkEstimate::default());
        let mut e = LinkEstimator::new(shared.clone());
        let epoch = Instant::now();
        let delayed = |b: u64, extra_ms: u64| {
            let mut reports = batch(epoch, b * 200, b * 10, None);
            for r in &mut reports {
                r.arrival = r.arrival.map(|a| a + Duration::from_millis(extra_ms));
            }
            reports
        };
        let at = |b: u64| epoch + Duration::from_millis(b * 200 + 150);
        for b in 0..5 {
            e.on_reports(at(b), &delayed(b, 0));
        }
        assert_eq!(shared.queue_over(), 0);
        // Two batches 80 ms later than the base: a queue, counted twice.
        e.on_reports(at(5), &delayed(5, 80));
        assert_eq!(shared.queue_over(), 1);
        e.on_reports(at(6), &delayed(6, 80));
        assert_eq!(shared.queue_over(), 2);
        assert!(shared.queue() >= Duration::from_millis(75));
        // Drained: the count starts over.
        e.on_reports(at(7), &delayed(7, 0));
        assert_eq!(shared.queue_over(), 0);
    }
}
