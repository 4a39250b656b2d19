//! A queuing-delay guard in the link estimate: backs the estimate off when packets start waiting in a
//! queue on the way to the subscriber, before that queue overflows and drops them.
//!
//! Why our own: `rtc` 0.21's GCC delay half never backed off in our measurements — neither on
//! the loadtest's emulated lines nor on a synthetic replay of 300 kbit/s sent into a 220 kbit/s
//! line with a 200 ms queue (its delay target kept growing while the queue filled) — so only
//! its loss half acted, which on a rural line means after 200 ms of queue and a burst of loss,
//! audio included. This guard is deliberately simple: one-way delay relative to the lowest
//! seen lately (clock offsets cancel), averaged per feedback batch; above a threshold the
//! estimate drops to a share of what the path is actually delivering; when the queue is empty
//! again it lets go, 25 % per second.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;

/// Queuing delay above which the path counts as overused.
pub const OVERUSE: Duration = Duration::from_millis(60);
/// Queuing delay below which the cap may grow again.
pub const DRAINED: Duration = Duration::from_millis(20);
/// Queuing delay below which the delay signal counts as flat: loss seen meanwhile is the
/// line's own, not a queue overflowing (see `loss_control.rs`).
pub const FLAT: Duration = Duration::from_millis(30);
/// On overuse the cap goes to this share of the delivered rate, so the queue drains.
const BACK_OFF: f64 = 0.85;
/// Growth of the cap per second while the queue is empty: fast enough that a line that came
/// back (the `flap` profile: 150 kbit/s for 20 s, then 2 Mbit/s) is used again within seconds,
/// since stepping up is gated by the allocator's own back-off anyway.
const GROWTH_PER_SEC: f64 = 1.25;
/// At most one back-off per this long (the queue needs a round trip to react).
const REACT: Duration = Duration::from_millis(300);
/// Feedback batches in a row above [`OVERUSE`], not shrinking, before backing off: a queue
/// that builds persists, while scheduling hiccups on a busy host (either end) come and go.
const PERSIST: u32 = 3;
/// The base (lowest one-way delay) is the minimum over this window, so a route change that
/// lengthens the path is learnt rather than read as a queue forever.
const BASE_WINDOW: Duration = Duration::from_secs(10);
/// Delivered rate is measured over this much arrival time.
const RATE_WINDOW: Duration = Duration::from_millis(500);
/// A back-off never goes below this share of what the bottleneck served while it was busy
/// (see [`QueueDelayGuard::busy_bps`]).
const BUSY_FLOOR: f64 = 0.7;
/// Busy time measured before the busy rate counts: a few packets' worth on a rural line.
const MIN_BUSY_SPAN: Duration = Duration::from_millis(100);
const MAX_ARRIVALS: usize = 2048;

#[derive(Debug, Default)]
pub struct QueueDelayGuard {
    /// Reference for departures (first seen), so departures and arrivals are both durations.
    epoch: Option<Instant>,
    /// (departure since epoch, lowest one-way delay in µs seen in that second).
    minima: VecDeque<(Duration, i64)>,
    /// (arrival, departure since epoch, size) of the packets that arrived lately.
    arrivals: VecDeque<(Duration, Duration, usize)>,
    cap: Option<f64>,
    last_back_off: Option<Instant>,
    last_update: Option<Instant>,
    /// Batches in a row above the threshold and not shrinking.
    over: u32,
    /// Queuing delay of the last batch, for stats.
    pub queue: Option<Duration>,
}

impl QueueDelayGuard {
    /// Learns from one feedback batch; returns true when it backed off.
    pub fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) -> bool {
        let epoch = *self
            .epoch
            .get_or_insert_with(|| reports.first().map_or(now, |r| r.departure));
        let mut sum = 0i64;
        let mut n = 0i64;
        for r in reports {
            let Some(arrival) = r.arrival.filter(|_| r.arrived) else {
                continue;
            };
            let departure = r.departure.saturating_duration_since(epoch);
            let owd = arrival.as_micros() as i64 - departure.as_micros() as i64;
            self.note_minimum(departure, owd);
            sum += owd;
            n += 1;
            if self.arrivals.len() == MAX_ARRIVALS {
                self.arrivals.pop_front();
            }
            self.arrivals.push_back((arrival, departure, r.size));
        }
        let elapsed = self
            .last_update
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        self.last_update = Some(now);
        if n == 0 {
            return false;
        }
        let Some(base) = self.minima.iter().map(|(_, m)| *m).min() else {
            return false;
        };
        let queue = Duration::from_micros((sum / n - base).max(0) as u64);
        let shrinking = self
            .queue
            .is_some_and(|previous| queue + DRAINED / 2 < previous);
        self.queue = Some(queue);
        self.over = if queue > OVERUSE && !shrinking {
            self.over + 1
        } else {
            0
        };
        if self.over >= PERSIST {
            let reacted_lately = self
                .last_back_off
                .is_some_and(|at| now.saturating_duration_since(at) < REACT);
            if let Some(delivered) = self.delivered_bps()
                && !reacted_lately
            {
                let floor = self.busy_bps().map_or(0.0, |busy| busy * BUSY_FLOOR);
                let target = (delivered * BACK_OFF).max(floor);
                self.cap = Some(self.cap.map_or(target, |c| c.min(target)));
                self.last_back_off = Some(now);
                return true;
            }
        } else if queue < DRAINED
            && let Some(c) = self.cap
        {
            self.cap = Some(c * GROWTH_PER_SEC.powf(elapsed.as_secs_f64().min(1.0)));
        }
        false
    }

    /// No queue is building: the last batch's queuing delay is below [`FLAT`] and none of the
    /// batches before it was over [`OVERUSE`]. False before any delay was measured.
    pub fn delay_flat(&self) -> bool {
        self.over == 0 && self.queue.is_some_and(|q| q < FLAT)
    }

    /// The most the path should be asked to carry, if the guard has an opinion.
    pub fn cap(&self) -> Option<f64> {
        self.cap
    }

    /// Forgets a cap that no longer constrains anything (the other estimate is lower).
    pub fn release_above(&mut self, bps: f64) {
        if self.cap.is_some_and(|c| c > bps * 2.0) {
            self.cap = None;
        }
    }

    fn note_minimum(&mut self, departure: Duration, owd: i64) {
        let second = Duration::from_secs(departure.as_secs());
        match self.minima.back_mut() {
            Some((at, m)) if *at == second => *m = (*m).min(owd),
            _ => self.minima.push_back((second, owd)),
        }
        while self
            .minima
            .front()
            .is_some_and(|(at, _)| second.saturating_sub(*at) > BASE_WINDOW)
        {
            self.minima.pop_front();
        }
    }

    /// Forgets a cap below `bps`: a probe just showed the path carries that much.
    pub fn lift_to(&mut self, bps: f64) {
        if self.cap.is_some_and(|c| c < bps) {
            self.cap = Some(bps);
        }
    }

    /// Bits/s the subscriber received over the last [`RATE_WINDOW`] of arrivals: their bytes
    /// over the longer of the time they took to arrive and the time they took to be sent, as
    /// libwebrtc's probe estimator takes the lower of the send and receive rates. A receiver
    /// that stalls stamps what arrived meanwhile all at once when it wakes; over the arrival
    /// span alone those bytes read as a rate the line never carried (on a loaded machine, 1.4
    /// times it), which let the growth limit and probe verdicts run ahead of the line.
    pub fn delivered_bps(&mut self) -> Option<f64> {
        let last = self.arrivals.back()?.0;
        while self
            .arrivals
            .front()
            .is_some_and(|(at, _, _)| last.saturating_sub(*at) > RATE_WINDOW)
        {
            self.arrivals.pop_front();
        }
        let first = self.arrivals.front()?.0;
        let span = last.saturating_sub(first);
        // Half the window at least: over a shorter span one keyframe's burst reads as a rate
        // the link never carried (at the start of a stream: 700 kbit/s from a 100 kbit/s
        // layer, which let the estimate's growth limit run ahead, `bwe.rs`).
        if span < RATE_WINDOW / 2 {
            return None;
        }
        let (mut sent_first, mut sent_last) = (Duration::MAX, Duration::ZERO);
        for (_, departure, _) in &self.arrivals {
            sent_first = sent_first.min(*departure);
            sent_last = sent_last.max(*departure);
        }
        let span = span.max(sent_last.saturating_sub(sent_first)).as_secs_f64();
        // The first arrival opens the span: its bytes came before it.
        let bytes: usize = self.arrivals.iter().skip(1).map(|(_, _, s)| s).sum();
        Some(bytes as f64 * 8.0 / span)
    }

    /// Bits/s the bottleneck served while it was busy, over the arrivals
    /// [`Self::delivered_bps`] measures: a packet that had waited in the queue at least as
    /// long as the gap since the arrival before it was already queued when that one left, so
    /// that gap is the time the bottleneck took to serve it. Only packets that waited at
    /// least [`DRAINED`] count: a receiver that reads its socket in bunches stamps packets
    /// that met no queue with no gap between them, a rate no line carried. The delivered rate also counts
    /// the time the sender sent nothing: a server or publisher that stalls 150 ms (a loaded
    /// host) and then sends what piled up queues behind a 400 kbit/s line while delivering
    /// 240 kbit/s over the window, and backing off to 85 % of that took the estimate below
    /// the lowest layer's full rate (Chromium, `constrained.mjs` (b)).
    pub fn busy_bps(&self) -> Option<f64> {
        let base = self.minima.iter().map(|(_, m)| *m).min()?;
        let (mut bytes, mut span) = (0usize, Duration::ZERO);
        let mut previous: Option<Duration> = None;
        for &(arrival, departure, size) in &self.arrivals {
            let queued = arrival.as_micros() as i64 - departure.as_micros() as i64 - base;
            if let Some(p) = previous {
                let gap = arrival.saturating_sub(p);
                if queued >= gap.max(DRAINED).as_micros() as i64 {
                    bytes += size;
                    span += gap;
                }
            }
            previous = Some(arrival);
        }
        (span >= MIN_BUSY_SPAN).then(|| bytes as f64 * 8.0 / span.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport-wide feedback report of packet `id` (`arrival`: `None` if lost).
    fn report(id: u64, size: usize, departure: Instant, arrival: Option<Duration>) -> PacketReport {
        PacketReport {
            ssrc: 1,
            id,
            rtp_sequence_number: id as u16,
            is_twcc: true,
            twcc_sequence_number: id as u16,
            size,
            arrived: arrival.is_some(),
            departure,
            arrival,
            ecn: Default::default(),
        }
    }

    /// Sends `send_bps` of 1,000-byte packets into a line of `line_bps` with a 200 ms drop-tail
    /// queue and 20 ms propagation, feeding back every 100 ms; returns the cap over time.
    fn replay(line_bps: f64, send_bps: f64, seconds: u64) -> (QueueDelayGuard, Vec<Option<f64>>) {
        let t0 = Instant::now();
        let mut g = QueueDelayGuard::default();
        let size = 1000usize;
        let gap = Duration::from_secs_f64(size as f64 * 8.0 / send_bps);
        let ser = Duration::from_secs_f64(size as f64 * 8.0 / line_bps);
        let (mut t, mut busy, mut next_fb) =
            (Duration::ZERO, Duration::ZERO, Duration::from_millis(100));
        let mut batch = Vec::new();
        let mut caps = Vec::new();
        let mut id = 0u64;
        while t < Duration::from_secs(seconds) {
            let begin = busy.max(t);
            let arrival = if begin - t > Duration::from_millis(200) {
                None
            } else {
                busy = begin + ser;
                Some(busy + Duration::from_millis(20))
            };
            batch.push(report(id, size, t0 + t, arrival));
            id += 1;
            t += gap;
            if t >= next_fb {
                g.on_reports(t0 + t, &batch);
                batch.clear();
                caps.push(g.cap());
                next_fb += Duration::from_millis(100);
            }
        }
        (g, caps)
    }

    #[test]
    fn a_filling_queue_caps_the_estimate_near_the_line_rate_before_it_drops() {
        let (g, caps) = replay(220_000.0, 300_000.0, 10);
        let first = caps.iter().position(|c| c.is_some()).expect("backed off");
        // The queue passes 60 ms after ~0.8 s (it grows 36 − 26.7 ms per packet at 37 pkt/s);
        // the 200 ms drop-tail would start dropping only after ~2.7 s.
        assert!(first <= 15, "backed off only at batch {first}");
        let cap = g.cap().unwrap();
        assert!(
            (150_000.0..=220_000.0).contains(&cap),
            "capped near what the line delivers: {cap}"
        );
    }

    /// A 400 kbit/s line (1,000-byte packets served every 20 ms) with a queue of 100 ms, a
    /// sender that stalls 220 ms (a loaded server or publisher), so the line idles, then
    /// sends what piled up at once and goes on at the line rate: the queue is back at
    /// 160 ms. The delivered rate over the last half second counts the idle time.
    #[test]
    fn a_stalling_sender_is_backed_off_near_the_line_rate_not_below_its_idle_time() {
        let t0 = Instant::now();
        let mut g = QueueDelayGuard::default();
        // (departure, arrival) in ms: 20 ms of propagation under each queue.
        let mut packets: Vec<(u64, u64)> = (0..18).map(|i| (i * 50, i * 50 + 20)).collect();
        packets.extend((0..10).map(|i| (1000 + i * 20, 1120 + i * 20)));
        // After the stall: 8 at once at 1,400 ms, then one every 20 ms.
        let mut served = 1420;
        for i in 0..23u64 {
            let departure = if i < 8 { 1400 } else { 1400 + (i - 7) * 20 };
            served = served.max(departure + 20) + 20;
            packets.push((departure, served));
        }
        let ms = |n: u64| Duration::from_millis(n);
        let mut cap = None;
        for fb in (100..=1900).step_by(100) {
            let batch: Vec<PacketReport> = packets
                .iter()
                .enumerate()
                .filter(|(_, (_, a))| (fb - 100..fb).contains(a))
                .map(|(i, (d, a))| report(i as u64, 1000, t0 + ms(*d), Some(ms(*a))))
                .collect();
            if g.on_reports(t0 + ms(fb), &batch) {
                cap = g.cap();
                break;
            }
        }
        let cap = cap.expect("backed off");
        assert!(
            (BUSY_FLOOR * 400_000.0 * 0.95..=400_000.0).contains(&cap),
            "backed off to {cap} on a 400 kbit/s line (busy {:?})",
            g.busy_bps()
        );
    }

    #[test]
    fn a_passing_hiccup_is_not_a_queue() {
        let t0 = Instant::now();
        let mut g = QueueDelayGuard::default();
        for i in 0..50u64 {
            let at = t0 + Duration::from_millis(i * 100);
            // Every tenth batch arrives 150 ms late (a stalled receiver thread), then recovers.
            let late = if i % 10 == 9 { 150 } else { 0 };
            let reports: Vec<PacketReport> = (0..5)
                .map(|k| {
                    report(
                        i * 5 + k,
                        1000,
                        at + Duration::from_millis(k * 20),
                        Some(Duration::from_millis(i * 100 + k * 20 + 20 + late)),
                    )
                })
                .collect();
            g.on_reports(at + Duration::from_millis(95), &reports);
        }
        assert_eq!(g.cap(), None, "single late batches do not cap the estimate");
    }

    /// 300 kbit/s sent evenly (1,000-byte packets every 26.7 ms) over a line with room; the
    /// receiver stalls 150 ms of every 500 and stamps what arrived meanwhile when it wakes.
    #[test]
    fn a_stalling_receiver_does_not_make_the_line_look_faster() {
        let t0 = Instant::now();
        let mut g = QueueDelayGuard::default();
        let gap = Duration::from_secs_f64(8000.0 / 300_000.0);
        let stamp = |at: Duration| {
            let in_cycle = at.as_millis() % 500;
            if in_cycle < 150 {
                at + Duration::from_millis((150 - in_cycle) as u64)
            } else {
                at
            }
        };
        let mut peak: f64 = 0.0;
        let (mut t, mut id, mut batch) = (Duration::ZERO, 0u64, Vec::new());
        let mut next_fb = Duration::from_millis(100);
        while t < Duration::from_secs(10) {
            batch.push(report(
                id,
                1000,
                t0 + t,
                Some(stamp(t + Duration::from_millis(20))),
            ));
            id += 1;
            t += gap;
            if t >= next_fb {
                g.on_reports(t0 + t, &batch);
                batch.clear();
                if let Some(d) = g.delivered_bps() {
                    peak = peak.max(d);
                }
                next_fb += Duration::from_millis(100);
            }
        }
        assert!(peak > 250_000.0, "measured at all: {peak}");
        assert!(
            peak < 300_000.0 * 1.1,
            "read a rate the line never carried: {peak}"
        );
    }

    #[test]
    fn a_line_with_room_is_left_alone() {
        let (g, caps) = replay(1_000_000.0, 300_000.0, 10);
        assert!(caps.iter().all(|c| c.is_none()), "no queue, no cap");
        assert!(g.queue.unwrap() < DRAINED);
    }

    #[test]
    fn the_cap_grows_back_once_the_queue_drained() {
        let mut g = QueueDelayGuard {
            cap: Some(100_000.0),
            ..Default::default()
        };
        let t0 = Instant::now();
        let mut caps = Vec::new();
        for i in 0..20u64 {
            let at = t0 + Duration::from_millis(i * 100);
            let reports: Vec<PacketReport> = (0..3)
                .map(|k| {
                    report(
                        i * 3 + k,
                        200,
                        at + Duration::from_millis(k * 30),
                        Some(Duration::from_millis(i * 100 + k * 30 + 20)),
                    )
                })
                .collect();
            g.on_reports(at + Duration::from_millis(90), &reports);
            caps.push(g.cap().unwrap());
        }
        assert!(caps.windows(2).all(|w| w[1] >= w[0]));
        assert!(
            (140_000.0..170_000.0).contains(&caps[19]),
            "grew ~25 %/s over 2 s: {}",
            caps[19]
        );
    }
}
