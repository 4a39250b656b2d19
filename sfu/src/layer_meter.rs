//! The bitrate of one incoming simulcast layer, as the allocator needs it: counted per packet
//! (an add), turned into bits per second at the allocation tick (smoothed, since a keyframe
//! makes one tick's worth look several times the stream's real rate). Per temporal layer too,
//! when the publisher sends them (VP8's TID), so the allocator can price a layer without its
//! top temporal layers.

use std::time::{Duration, Instant};

/// A layer with no packet for this long is treated as stopped by its publisher (Chrome drops
/// its upper layers when its own uplink estimate falls).
pub const LIVE_WITHIN: Duration = Duration::from_millis(1500);
/// Weight of the newest tick in the average.
const SMOOTHING: f64 = 0.3;
/// Temporal layers told apart (VP8 carries up to four).
pub const MAX_TIDS: usize = 4;

#[derive(Debug, Clone, Default)]
pub struct LayerMeter {
    bytes: u64,
    last_packet: Option<Instant>,
    last_tick: Option<Instant>,
    bps: Option<f64>,
    /// Bytes and smoothed rate per temporal layer (packets without one count as TID 0).
    tid_bytes: [u64; MAX_TIDS],
    tid_bps: [f64; MAX_TIDS],
    /// Highest temporal layer seen, plus one (0: the stream has no temporal layers).
    tids: u8,
}

impl LayerMeter {
    /// Counts one packet (payload plus a typical header; what matters is the relative size).
    #[inline]
    pub fn on_packet(&mut self, now: Instant, payload_len: usize, tid: Option<u8>) {
        let size = payload_len as u64 + 40;
        self.bytes += size;
        self.last_packet = Some(now);
        let t = usize::from(tid.unwrap_or(0)).min(MAX_TIDS - 1);
        self.tid_bytes[t] += size;
        if tid.is_some() {
            self.tids = self.tids.max(t as u8 + 1);
        }
    }

    /// Closes the interval since the previous tick.
    pub fn tick(&mut self, now: Instant) {
        if let Some(prev) = self.last_tick {
            let secs = now.saturating_duration_since(prev).as_secs_f64();
            if secs > 0.0 {
                let sample = self.bytes as f64 * 8.0 / secs;
                let first = self.bps.is_none();
                self.bps = Some(match self.bps {
                    Some(old) => old + SMOOTHING * (sample - old),
                    None => sample,
                });
                for (bps, bytes) in self.tid_bps.iter_mut().zip(self.tid_bytes) {
                    let sample = bytes as f64 * 8.0 / secs;
                    *bps = if first {
                        sample
                    } else {
                        *bps + SMOOTHING * (sample - *bps)
                    };
                }
            }
        }
        self.bytes = 0;
        self.tid_bytes = [0; MAX_TIDS];
        self.last_tick = Some(now);
    }

    /// Bits per second, 0 before the first full interval.
    pub fn bps(&self) -> f64 {
        self.bps.unwrap_or(0.0)
    }

    /// How many temporal layers the stream carries (0: none told apart).
    pub fn temporal_layers(&self) -> u8 {
        self.tids
    }

    /// Bits per second of temporal layers 0 ..= `tid` (the whole layer when it has none).
    pub fn bps_up_to(&self, tid: u8) -> f64 {
        if self.tids == 0 || tid + 1 >= self.tids {
            return self.bps();
        }
        self.tid_bps[..=usize::from(tid)].iter().sum()
    }

    /// Whether any packet ever arrived (a declared layer that has not started yet: no).
    pub fn seen(&self) -> bool {
        self.last_packet.is_some()
    }

    pub fn live(&self, now: Instant) -> bool {
        self.last_packet
            .is_some_and(|at| now.saturating_duration_since(at) < LIVE_WITHIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_stream_measures_its_rate() {
        let t0 = Instant::now();
        let mut m = LayerMeter::default();
        m.tick(t0);
        // 100 packets of 1,210 + 40 bytes every 500 ms: 1,250 B × 100 × 8 × 2 = 2 Mbit/s.
        for tick in 1..=20u64 {
            for i in 0..100u64 {
                m.on_packet(
                    t0 + Duration::from_millis((tick - 1) * 500 + i * 5),
                    1210,
                    None,
                );
            }
            m.tick(t0 + Duration::from_millis(tick * 500));
        }
        assert!((m.bps() - 2_000_000.0).abs() < 1.0, "{}", m.bps());
    }

    #[test]
    fn a_burst_moves_the_average_only_partly() {
        let t0 = Instant::now();
        let mut m = LayerMeter::default();
        m.tick(t0);
        m.on_packet(t0, 1210, None);
        m.tick(t0 + Duration::from_secs(1));
        let steady = m.bps();
        for _ in 0..10 {
            m.on_packet(t0 + Duration::from_millis(1100), 1210, None);
        }
        m.tick(t0 + Duration::from_secs(2));
        assert!(m.bps() > steady && m.bps() < 10.0 * steady);
    }

    #[test]
    fn temporal_layers_are_measured_apart() {
        let t0 = Instant::now();
        let mut m = LayerMeter::default();
        m.tick(t0);
        // Chromium's three-layer pattern 0, 2, 1, 2 with equal frames: TL0 a quarter, TL1 a
        // quarter, TL2 half.
        for tick in 1..=10u64 {
            for i in 0..40u64 {
                let tid = [0, 2, 1, 2][(i % 4) as usize];
                m.on_packet(t0 + Duration::from_millis(tick * 100 + i), 960, Some(tid));
            }
            m.tick(t0 + Duration::from_secs(tick));
        }
        assert_eq!(m.temporal_layers(), 3);
        let all = m.bps();
        assert!(
            (m.bps_up_to(0) - all / 4.0).abs() < 1.0,
            "{}",
            m.bps_up_to(0)
        );
        assert!((m.bps_up_to(1) - all / 2.0).abs() < 1.0);
        assert_eq!(m.bps_up_to(2), all);
        // Without temporal layers every cap is the whole layer.
        let mut plain = LayerMeter::default();
        plain.tick(t0);
        plain.on_packet(t0, 960, None);
        plain.tick(t0 + Duration::from_secs(1));
        assert_eq!(plain.temporal_layers(), 0);
        assert_eq!(plain.bps_up_to(0), plain.bps());
    }

    #[test]
    fn a_silent_layer_stops_being_live() {
        let t0 = Instant::now();
        let mut m = LayerMeter::default();
        assert!(!m.live(t0));
        m.on_packet(t0, 100, None);
        assert!(m.live(t0 + Duration::from_millis(1000)));
        assert!(!m.live(t0 + LIVE_WITHIN));
        assert_eq!(m.bps(), 0.0, "no interval closed yet");
    }
}
