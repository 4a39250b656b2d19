//! The bitrate of one incoming simulcast layer, as the allocator needs it: counted per packet
//! (an add), turned into bits per second at the allocation tick (smoothed, since a keyframe
//! makes one tick's worth look several times the stream's real rate).

use std::time::{Duration, Instant};

/// A layer with no packet for this long is treated as stopped by its publisher (Chrome drops
/// its upper layers when its own uplink estimate falls).
pub const LIVE_WITHIN: Duration = Duration::from_millis(1500);
/// Weight of the newest tick in the average.
const SMOOTHING: f64 = 0.3;

#[derive(Debug, Clone, Default)]
pub struct LayerMeter {
    bytes: u64,
    last_packet: Option<Instant>,
    last_tick: Option<Instant>,
    bps: Option<f64>,
}

impl LayerMeter {
    /// Counts one packet (payload plus a typical header; what matters is the relative size).
    #[inline]
    pub fn on_packet(&mut self, now: Instant, payload_len: usize) {
        self.bytes += payload_len as u64 + 40;
        self.last_packet = Some(now);
    }

    /// Closes the interval since the previous tick.
    pub fn tick(&mut self, now: Instant) {
        if let Some(prev) = self.last_tick {
            let secs = now.saturating_duration_since(prev).as_secs_f64();
            if secs > 0.0 {
                let sample = self.bytes as f64 * 8.0 / secs;
                self.bps = Some(match self.bps {
                    Some(old) => old + SMOOTHING * (sample - old),
                    None => sample,
                });
            }
        }
        self.bytes = 0;
        self.last_tick = Some(now);
    }

    /// Bits per second, 0 before the first full interval.
    pub fn bps(&self) -> f64 {
        self.bps.unwrap_or(0.0)
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
                m.on_packet(t0 + Duration::from_millis((tick - 1) * 500 + i * 5), 1210);
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
        m.on_packet(t0, 1210);
        m.tick(t0 + Duration::from_secs(1));
        let steady = m.bps();
        for _ in 0..10 {
            m.on_packet(t0 + Duration::from_millis(1100), 1210);
        }
        m.tick(t0 + Duration::from_secs(2));
        assert!(m.bps() > steady && m.bps() < 10.0 * steady);
    }

    #[test]
    fn a_silent_layer_stops_being_live() {
        let t0 = Instant::now();
        let mut m = LayerMeter::default();
        assert!(!m.live(t0));
        m.on_packet(t0, 100);
        assert!(m.live(t0 + Duration::from_millis(1000)));
        assert!(!m.live(t0 + LIVE_WITHIN));
        assert_eq!(m.bps(), 0.0, "no interval closed yet");
    }
}
