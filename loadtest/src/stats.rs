//! The maths of the report, kept pure so it is unit-tested: sequence gaps before and after
//! retransmission, video freezes, audio gaps, and percentiles.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;

/// How far behind the highest sequence number a missing packet is still waited for; older
/// holes count as lost for good (no NACK responder keeps packets that long).
const GIVE_UP_AFTER: u64 = 2_000;

/// Counts sequence gaps as packets arrive (loss seen by the receiver before any retransmission)
/// and which of them are later filled (by NACK retransmissions); what stays missing is the loss
/// after NACK.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    /// Extended (unwrapped) sequence number of the first packet.
    first: Option<u64>,
    highest: u64,
    missing: BTreeSet<u64>,
    /// Packets counted missing when a later one arrived.
    pub gaps_at_arrival: u64,
    /// Of those, how many arrived later.
    pub recovered: u64,
    /// Missing for longer than [`GIVE_UP_AFTER`] packets.
    pub given_up: u64,
    pub duplicates: u64,
    pub received: u64,
}

impl SeqTracker {
    /// Records one arrival; returns the extended sequence number.
    pub fn on_packet(&mut self, seq: u16) -> u64 {
        self.received += 1;
        let Some(_) = self.first else {
            let ext = u64::from(seq) + (1 << 16); // room to go below the first one
            self.first = Some(ext);
            self.highest = ext;
            return ext;
        };
        // Unwrap near the highest seen.
        let base = self.highest & !0xFFFF;
        let mut ext = base | u64::from(seq);
        if ext + 0x8000 < self.highest {
            ext += 1 << 16;
        } else if ext > self.highest + 0x8000 && ext >= 1 << 16 {
            ext -= 1 << 16;
        }
        if ext > self.highest {
            let holes = ext - self.highest - 1;
            self.gaps_at_arrival += holes;
            // Bound the set: a burst of more than GIVE_UP_AFTER holes is lost anyway.
            let from = (self.highest + 1).max(ext.saturating_sub(GIVE_UP_AFTER));
            self.given_up += from - (self.highest + 1);
            self.missing.extend(from..ext);
            self.highest = ext;
            while let Some(&old) = self.missing.first() {
                if old + GIVE_UP_AFTER >= ext {
                    break;
                }
                self.missing.pop_first();
                self.given_up += 1;
            }
        } else if self.missing.remove(&ext) {
            self.recovered += 1;
        } else {
            self.duplicates += 1;
        }
        ext
    }

    /// Packets the sender sent in the range seen so far.
    pub fn expected(&self) -> u64 {
        self.first.map_or(0, |f| self.highest - f + 1)
    }

    /// Holes still open (some may yet be filled).
    pub fn unrecovered(&self) -> u64 {
        self.missing.len() as u64 + self.given_up
    }

    /// Whether the packet with this extended sequence number is a hole still waited for.
    pub fn is_missing(&self, ext: u64) -> bool {
        self.missing.contains(&ext)
    }

    /// Whether every packet from `from` to `to` (extended, inclusive) arrived.
    pub fn complete(&self, from: u64, to: u64) -> bool {
        from <= to
            && to <= self.highest
            && self.first.is_some_and(|f| from >= f)
            && self.missing.range(from..=to).next().is_none()
    }
}

/// Video freezes as WebRTC statistics define them: a frame that arrives more than
/// max(3 × the mean frame interval, mean + 150 ms) after the previous one ends a freeze.
/// The mean is taken over the last 30 intervals. A trailing freeze (no frame since) counts at
/// [`FreezeDetector::finish`].
#[derive(Debug, Clone, Default)]
pub struct FreezeDetector {
    last: Option<Instant>,
    intervals: std::collections::VecDeque<Duration>,
    pub frames: u64,
    pub freezes: u64,
    pub frozen: Duration,
    /// The first [`MAX_FREEZES_LISTED`] freezes: when each began (the last frame before it)
    /// and how long it lasted.
    pub starts: Vec<(Instant, Duration)>,
}

/// Freezes a [`FreezeDetector`] lists at most (it counts them all).
pub const MAX_FREEZES_LISTED: usize = 200;

impl FreezeDetector {
    fn list(&mut self, from: Instant, gap: Duration) {
        if self.starts.len() < MAX_FREEZES_LISTED {
            self.starts.push((from, gap));
        }
    }

    fn threshold(&self) -> Option<Duration> {
        if self.intervals.len() < 3 {
            return None;
        }
        let mean = self.intervals.iter().sum::<Duration>() / self.intervals.len() as u32;
        Some((mean * 3).max(mean + Duration::from_millis(150)))
    }

    pub fn on_frame(&mut self, now: Instant) {
        self.frames += 1;
        if let Some(last) = self.last {
            let gap = now.saturating_duration_since(last);
            if self.threshold().is_some_and(|t| gap > t) {
                self.freezes += 1;
                self.frozen += gap;
                self.list(last, gap);
            } else {
                // Freeze intervals stay out of the mean, so a long freeze does not hide the next.
                self.intervals.push_back(gap);
                if self.intervals.len() > 30 {
                    self.intervals.pop_front();
                }
            }
        }
        self.last = Some(now);
    }

    /// Closes the measurement at `now`: a freeze still in progress counts.
    pub fn finish(&mut self, now: Instant) {
        if let (Some(last), Some(t)) = (self.last, self.threshold()) {
            let gap = now.saturating_duration_since(last);
            if gap > t {
                self.freezes += 1;
                self.frozen += gap;
                self.list(last, gap);
                self.last = Some(now);
            }
        }
    }
}

/// One-way delay of a stream above the lowest seen: each packet's arrival time minus the time
/// its RTP timestamp stands for on the sender's schedule, less the smallest such difference of
/// the run. The clocks' offset cancels; what is left is time spent queued on the way (server,
/// send buffers, the link) plus the sender's own lateness. Kept per second since the epoch.
#[derive(Debug, Clone, Default)]
pub struct DelayTracker {
    last_ts: Option<u32>,
    /// The last timestamp, unwrapped (ticks since the first packet).
    ticks: i64,
    min_us: Option<i64>,
    /// Per second since the epoch: sum, count and maximum of the raw difference (µs).
    secs: Vec<(i64, u32, i64)>,
}

impl DelayTracker {
    pub fn on_packet(&mut self, epoch: Instant, now: Instant, ts: u32, clock_hz: u32) {
        if let Some(last) = self.last_ts {
            self.ticks += i64::from(ts.wrapping_sub(last) as i32);
        }
        self.last_ts = Some(ts);
        let at = now.saturating_duration_since(epoch);
        let raw = at.as_micros() as i64 - self.ticks * 1_000_000 / i64::from(clock_hz.max(1));
        self.min_us = Some(self.min_us.map_or(raw, |m| m.min(raw)));
        let sec = at.as_secs() as usize;
        if self.secs.len() <= sec {
            self.secs.resize(sec + 1, (0, 0, i64::MIN));
        }
        let s = &mut self.secs[sec];
        s.0 += raw;
        s.1 += 1;
        s.2 = s.2.max(raw);
    }

    /// Mean and maximum delay above the lowest (ms) in each second from `from` to `to`
    /// (seconds since the epoch, end excluded); `None` for a second without packets.
    pub fn per_second_ms(&self, from: usize, to: usize) -> Vec<Option<(f64, f64)>> {
        let min = self.min_us.unwrap_or(0);
        (from..to)
            .map(|i| {
                self.secs.get(i).filter(|s| s.1 > 0).map(|&(sum, n, max)| {
                    (
                        (sum as f64 / f64::from(n) - min as f64) / 1_000.0,
                        (max - min) as f64 / 1_000.0,
                    )
                })
            })
            .collect()
    }
}

/// Audio gaps: packets arriving more than `limit` after the previous one (20 ms frames: a gap
/// over 60 ms is two or more frames missing, which concealment can no longer hide).
#[derive(Debug, Clone)]
pub struct GapDetector {
    limit: Duration,
    last: Option<Instant>,
    pub gaps: u64,
    pub gap_time: Duration,
    /// Gaps longer than [`GapDetector::LONG`] (what concealment cannot hide at all): when each
    /// ended and how long it was (the first 10,000).
    pub long_gaps: Vec<(Instant, Duration)>,
    /// The longest gap (whatever the limit).
    pub longest: Duration,
}

impl Default for GapDetector {
    fn default() -> Self {
        GapDetector::new(Duration::from_millis(60))
    }
}

impl GapDetector {
    pub fn new(limit: Duration) -> GapDetector {
        GapDetector {
            limit,
            last: None,
            gaps: 0,
            gap_time: Duration::ZERO,
            long_gaps: Vec::new(),
            longest: Duration::ZERO,
        }
    }

    /// A gap longer than this is counted apart: the issue's target for audio ("no audio gap
    /// over 100 ms").
    pub const LONG: Duration = Duration::from_millis(100);

    fn count(&mut self, now: Instant, gap: Duration) {
        self.longest = self.longest.max(gap);
        if gap > self.limit {
            self.gaps += 1;
            self.gap_time += gap;
        }
        if gap > Self::LONG && self.long_gaps.len() < 10_000 {
            self.long_gaps.push((now, gap));
        }
    }

    /// Gaps over [`GapDetector::LONG`] that ended in `from..=to`: how many, and the longest.
    pub fn long_gaps_in(&self, from: Instant, to: Instant) -> (u64, Duration) {
        self.long_gaps
            .iter()
            .filter(|(at, _)| (from..=to).contains(at))
            .fold((0, Duration::ZERO), |(n, m), (_, g)| (n + 1, m.max(*g)))
    }

    pub fn on_packet(&mut self, now: Instant) {
        if let Some(last) = self.last {
            self.count(now, now.saturating_duration_since(last));
        }
        self.last = Some(now.max(self.last.unwrap_or(now)));
    }

    /// Closes the measurement at `now`: silence since the last packet counts if long enough.
    pub fn finish(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let gap = now.saturating_duration_since(last);
            if gap > self.limit {
                self.count(now, gap);
                self.last = Some(now);
            }
        }
    }
}

/// Bytes per whole second since a start instant: a bitrate time series.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub bytes_per_second: Vec<u64>,
}

impl Series {
    pub fn add(&mut self, start: Instant, now: Instant, bytes: usize) {
        let i = now.saturating_duration_since(start).as_secs() as usize;
        if i >= 3_600 * 24 {
            return;
        }
        if self.bytes_per_second.len() <= i {
            self.bytes_per_second.resize(i + 1, 0);
        }
        self.bytes_per_second[i] += bytes as u64;
    }
}

/// Percentile summary of a sample (nearest-rank).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub min: f64,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    pub fn of(values: &[f64]) -> Summary {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Summary::default();
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Summary {
            count: v.len(),
            min: v[0],
            p50: rank(0.5),
            p95: rank(0.95),
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_above_the_lowest_per_second() {
        let epoch = Instant::now();
        let ms = Duration::from_millis;
        let mut d = DelayTracker::default();
        // 20 ms audio frames (960 ticks at 48 kHz) near the top of the timestamp space, so the
        // timestamp wraps: the first second on time (10 ms in flight), then 150 ms more queueing.
        let mut ts = u32::MAX - 960 * 10;
        for i in 0..100u64 {
            let queued = if i < 50 { 0 } else { 150 };
            d.on_packet(epoch, epoch + ms(10 + 20 * i + queued), ts, 48_000);
            ts = ts.wrapping_add(960);
        }
        let s = d.per_second_ms(0, 4);
        assert_eq!(s.len(), 4);
        let (mean0, max0) = s[0].unwrap();
        assert!(mean0.abs() < 0.01 && max0.abs() < 0.01, "{s:?}");
        let (mean2, max2) = s[2].unwrap();
        assert!(
            (mean2 - 150.0).abs() < 0.01 && (max2 - 150.0).abs() < 0.01,
            "{s:?}"
        );
        assert!(s[3].is_none(), "no packets in the 4th second");
        assert!(
            DelayTracker::default()
                .per_second_ms(0, 2)
                .iter()
                .all(Option::is_none)
        );
    }

    #[test]
    fn gaps_counted_at_arrival_and_after_retransmission() {
        let mut t = SeqTracker::default();
        for s in [10u16, 11, 14, 15] {
            t.on_packet(s);
        }
        assert_eq!(t.gaps_at_arrival, 2);
        assert_eq!(t.unrecovered(), 2);
        t.on_packet(12); // retransmitted
        assert_eq!(t.recovered, 1);
        assert_eq!(t.unrecovered(), 1);
        t.on_packet(12);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.expected(), 6);
        assert_eq!(t.received, 6);
    }

    #[test]
    fn sequence_wraps_without_phantom_gaps() {
        let mut t = SeqTracker::default();
        let mut s = 65_530u16;
        for _ in 0..20 {
            t.on_packet(s);
            s = s.wrapping_add(1);
        }
        assert_eq!(t.gaps_at_arrival, 0);
        assert_eq!(t.expected(), 20);
        // A late packet from before the wrap is a recovery or duplicate, not a huge jump.
        let mut t = SeqTracker::default();
        for s in [65_534u16, 0, 1] {
            t.on_packet(s);
        }
        assert_eq!(t.gaps_at_arrival, 1);
        t.on_packet(65_535);
        assert_eq!(t.recovered, 1);
        assert_eq!(t.unrecovered(), 0);
    }

    #[test]
    fn completeness_of_a_frame_range() {
        let mut t = SeqTracker::default();
        let a = t.on_packet(100);
        t.on_packet(102);
        let c = t.on_packet(103);
        assert!(!t.complete(a, c));
        t.on_packet(101);
        assert!(t.complete(a, c));
        assert!(!t.complete(a, c + 1), "not yet arrived");
    }

    #[test]
    fn long_bursts_give_up_and_stay_bounded() {
        let mut t = SeqTracker::default();
        t.on_packet(0);
        t.on_packet(10_000);
        assert_eq!(t.gaps_at_arrival, 9_999);
        assert_eq!(t.unrecovered(), 9_999);
        assert!(t.missing.len() as u64 <= GIVE_UP_AFTER);
    }

    fn frames(d: &mut FreezeDetector, t0: Instant, times_ms: &[u64]) {
        for ms in times_ms {
            d.on_frame(t0 + Duration::from_millis(*ms));
        }
    }

    #[test]
    fn freezes_need_more_than_three_intervals_and_150ms() {
        let t0 = Instant::now();
        let mut d = FreezeDetector::default();
        // 30 fps (33 ms), then a 120 ms gap: 3.6 intervals but < mean + 150 ms: no freeze.
        let mut times: Vec<u64> = (0..30).map(|i| i * 33).collect();
        times.push(29 * 33 + 120);
        frames(&mut d, t0, &times);
        assert_eq!(d.freezes, 0);
        // Then a 400 ms gap: a freeze of 400 ms.
        let last = *times.last().unwrap();
        frames(&mut d, t0, &[last + 400, last + 433, last + 466]);
        assert_eq!(d.freezes, 1);
        assert_eq!(d.frozen, Duration::from_millis(400));
        // Nothing more for a second: the trailing freeze counts at the end.
        d.finish(t0 + Duration::from_millis(last + 466 + 1_000));
        assert_eq!(d.freezes, 2);
        assert_eq!(d.frames, 34);
        // Each listed from the last frame before it, with its length.
        let ms = |i: Instant| i.duration_since(t0).as_millis() as u64;
        let starts: Vec<(u64, u128)> = d
            .starts
            .iter()
            .map(|(a, g)| (ms(*a), g.as_millis()))
            .collect();
        assert_eq!(starts, [(last, 400), (last + 466, 1_000)]);
    }

    #[test]
    fn the_freeze_list_is_bounded_the_count_is_not() {
        let t0 = Instant::now();
        let mut d = FreezeDetector::default();
        let mut t = 0u64;
        for _ in 0..(MAX_FREEZES_LISTED + 10) {
            for _ in 0..5 {
                t += 33;
                d.on_frame(t0 + Duration::from_millis(t));
            }
            t += 500;
            d.on_frame(t0 + Duration::from_millis(t));
        }
        assert_eq!(d.freezes, MAX_FREEZES_LISTED as u64 + 10);
        assert_eq!(d.starts.len(), MAX_FREEZES_LISTED);
    }

    #[test]
    fn slow_but_steady_video_is_not_frozen() {
        // 5 fps thumbnails: 200 ms intervals; threshold 600 ms.
        let t0 = Instant::now();
        let mut d = FreezeDetector::default();
        let times: Vec<u64> = (0..50).map(|i| i * 200 + (i % 3) * 20).collect();
        frames(&mut d, t0, &times);
        d.finish(t0 + Duration::from_millis(49 * 200 + 300));
        assert_eq!(d.freezes, 0);
    }

    #[test]
    fn audio_gaps_over_60ms() {
        let t0 = Instant::now();
        let mut g = GapDetector::new(Duration::from_millis(60));
        for ms in [0u64, 20, 40, 60, 140, 160, 180, 240] {
            g.on_packet(t0 + Duration::from_millis(ms));
        }
        // 60 → 140 is 80 ms (a gap); 180 → 240 is exactly 60 ms (not).
        assert_eq!(g.gaps, 1);
        assert_eq!(g.gap_time, Duration::from_millis(80));
        assert!(g.long_gaps.is_empty());
        assert_eq!(g.longest, Duration::from_millis(80));
        // 240 → 345: over 100 ms, a long gap too.
        g.on_packet(t0 + Duration::from_millis(345));
        assert_eq!(g.gaps, 2);
        assert_eq!(g.longest, Duration::from_millis(105));
        g.finish(t0 + Duration::from_millis(500));
        assert_eq!(g.gaps, 3);
        assert_eq!(g.longest, Duration::from_millis(155));
        let ms = |m| t0 + Duration::from_millis(m);
        assert_eq!(
            g.long_gaps_in(ms(0), ms(500)),
            (2, Duration::from_millis(155))
        );
        // Only the gaps that ended in the window count.
        assert_eq!(
            g.long_gaps_in(ms(300), ms(400)),
            (1, Duration::from_millis(105))
        );
        assert_eq!(g.long_gaps_in(ms(0), ms(200)), (0, Duration::ZERO));
    }

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&v);
        assert_eq!((s.min, s.p50, s.p95, s.max), (1.0, 50.0, 95.0, 100.0));
        assert_eq!(s.mean, 50.5);
        assert_eq!(Summary::of(&[]).count, 0);
        assert_eq!(Summary::of(&[f64::NAN, 2.0]).p95, 2.0);
    }

    #[test]
    fn series_buckets_by_second() {
        let t0 = Instant::now();
        let mut s = Series::default();
        s.add(t0, t0 + Duration::from_millis(100), 10);
        s.add(t0, t0 + Duration::from_millis(900), 5);
        s.add(t0, t0 + Duration::from_millis(2_500), 7);
        assert_eq!(s.bytes_per_second, vec![15, 0, 7]);
    }
}
