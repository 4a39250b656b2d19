//! The loss half of the link estimate, tolerant of the random loss rural lines have.
//!
//! GCC's loss controller holds between 2 % and 10 % loss and backs off above 10 %. On a line
//! that loses 5 % at random (the `bad` profile: 300 kbit/s, 5 % in bursts of two), a batch
//! above 10 % is common, so the estimate kept stepping down and never found a reason to climb
//! back (it climbs only below 2 %): measured, the estimate sat at 40 kbit/s p50 on a 300 kbit/s
//! line and 19 of 20 points had their video paused. Random loss is repaired by NACK and says
//! nothing about capacity; congestion shows as a queue first (`queue_delay.rs`) and as heavy
//! loss when a queue is too short to show. So: climb below 5 %, back off only above 15 %.

use std::time::{Duration, Instant};

/// Below this average loss the target may grow.
pub const LOW: f64 = 0.05;
/// Above this average loss the target backs off.
pub const HIGH: f64 = 0.15;
/// Growth per [`INTERVAL`] while loss is low (GCC's loss half uses the same).
const GROWTH: f64 = 1.05;
const INTERVAL: Duration = Duration::from_millis(200);
/// Weight of the newest batch in the average.
const SMOOTHING: f64 = 0.2;

#[derive(Debug, Clone)]
pub struct LossControl {
    target: f64,
    min: f64,
    max: f64,
    average: Option<f64>,
    last_change: Option<Instant>,
}

impl LossControl {
    pub fn new(initial: f64, min: f64, max: f64) -> Self {
        Self {
            target: initial.clamp(min, max),
            min,
            max,
            average: None,
            last_change: None,
        }
    }

    pub fn target(&self) -> f64 {
        self.target
    }

    pub fn average_loss(&self) -> Option<f64> {
        self.average
    }

    /// One feedback batch: `lost` of `total` transmissions reported missing.
    pub fn update(&mut self, now: Instant, lost: usize, total: usize) -> f64 {
        if total == 0 {
            return self.target;
        }
        let sample = lost as f64 / total as f64;
        let average = self
            .average
            .map_or(sample, |a| a + SMOOTHING * (sample - a));
        self.average = Some(average);
        if self
            .last_change
            .is_some_and(|at| now.saturating_duration_since(at) < INTERVAL)
        {
            return self.target;
        }
        if average < LOW {
            self.target = (self.target * GROWTH).clamp(self.min, self.max);
            self.last_change = Some(now);
        } else if average > HIGH {
            self.target = (self.target * (1.0 - 0.5 * average)).clamp(self.min, self.max);
            self.last_change = Some(now);
        }
        self.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `batches` of 20 packets every 100 ms from `*at` on, losing per `lost(batch)`.
    fn run(c: &mut LossControl, at: &mut Instant, batches: u64, lost: impl Fn(u64) -> usize) {
        for b in 0..batches {
            *at += Duration::from_millis(100);
            c.update(*at, lost(b), 20);
        }
    }

    #[test]
    fn random_loss_of_five_percent_does_not_drive_the_estimate_down() {
        let mut c = LossControl::new(300e3, 30e3, 50e6);
        // 1 in 20 on average, as 0, 2, 0, 1, 2, 0... (batches up to 10 %).
        run(&mut c, &mut Instant::now(), 300, |b| {
            [0, 2, 0, 1, 2, 0, 1, 0, 1, 3][(b % 10) as usize]
        });
        assert!(c.target() >= 300e3, "{}", c.target());
    }

    #[test]
    fn heavy_loss_backs_off_and_a_clean_line_climbs_back() {
        let mut c = LossControl::new(1e6, 30e3, 50e6);
        let mut at = Instant::now();
        run(&mut c, &mut at, 30, |_| 8); // 40 %
        let low = c.target();
        assert!(low < 200e3, "{low}");
        run(&mut c, &mut at, 50, |_| 0);
        assert!(
            c.target() > low * 2.0,
            "{} after 5 clean seconds",
            c.target()
        );
    }

    #[test]
    fn the_target_stays_in_bounds() {
        let mut c = LossControl::new(1e6, 30e3, 2e6);
        let mut at = Instant::now();
        run(&mut c, &mut at, 500, |_| 20);
        assert_eq!(c.target(), 30e3);
        run(&mut c, &mut at, 5000, |_| 0);
        assert_eq!(c.target(), 2e6);
    }
}
