//! The generator's own stalls: a task on the generator's runtime that asks to wake every
//! [`TICK`] and notes how late it woke. Every point of a `hoinghi-loadtest` process shares its
//! runtime, so a freeze that every point sees at once is the generator's when the runtime could
//! not run at that moment, and someone else's (server, upstream) when it could.
//!
//! The cost is one timer wake-up every 10 ms, nothing per packet. On the multi-thread runtime
//! the task runs on whichever worker is free: a lateness over [`THRESHOLD`] means no worker
//! could run it (all busy, or the process was not scheduled).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How often the monitor asks to wake.
pub const TICK: Duration = Duration::from_millis(10);
/// Lateness above this is a stall.
pub const THRESHOLD: Duration = Duration::from_millis(50);
/// Stalls listed at most (the first ones; `count` goes on counting).
pub const MAX_LISTED: usize = 200;

/// What the report says about the generator's stalls.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StallReport {
    /// The monitor's period and the lateness that counts as a stall, ms.
    pub tick_ms: f64,
    pub threshold_ms: f64,
    /// Wake-ups observed since the epoch.
    pub ticks: u64,
    /// Wake-ups later than the threshold, and the largest lateness seen (any wake-up), ms.
    pub count: u64,
    pub max_ms: f64,
    /// The first [`MAX_LISTED`] stalls: `[when the wake-up was due (s since the epoch),
    /// lateness (ms)]`. The runtime could run nothing of this process's from then for that long.
    pub at: Vec<[f64; 2]>,
}

/// The bookkeeping, pure: fed one wake-up at a time.
#[derive(Debug, Clone, Default)]
pub struct LatenessLog {
    ticks: u64,
    count: u64,
    max: Duration,
    at: Vec<[f64; 2]>,
}

fn round3(x: f64) -> f64 {
    (x * 1_000.0).round() / 1_000.0
}

impl LatenessLog {
    /// One wake-up due `due_s` seconds after the epoch, `late` after it was due.
    pub fn record(&mut self, due_s: f64, late: Duration) {
        self.ticks += 1;
        self.max = self.max.max(late);
        if late > THRESHOLD {
            self.count += 1;
            if self.at.len() < MAX_LISTED {
                self.at
                    .push([round3(due_s), round3(late.as_secs_f64() * 1_000.0)]);
            }
        }
    }

    pub fn report(&self) -> StallReport {
        StallReport {
            tick_ms: TICK.as_secs_f64() * 1_000.0,
            threshold_ms: THRESHOLD.as_secs_f64() * 1_000.0,
            ticks: self.ticks,
            count: self.count,
            max_ms: round3(self.max.as_secs_f64() * 1_000.0),
            at: self.at.clone(),
        }
    }
}

/// The monitor task; stops when dropped.
pub struct StallMonitor {
    log: Arc<Mutex<LatenessLog>>,
    task: tokio::task::JoinHandle<()>,
}

impl StallMonitor {
    /// Starts the task on the current runtime; times are seconds since `epoch`.
    pub fn start(epoch: Instant) -> Self {
        let log = Arc::new(Mutex::new(LatenessLog::default()));
        let shared = log.clone();
        let task = tokio::spawn(async move {
            loop {
                let due = Instant::now() + TICK;
                tokio::time::sleep_until(due.into()).await;
                let late = Instant::now().saturating_duration_since(due);
                let due_s = due.saturating_duration_since(epoch).as_secs_f64();
                if let Ok(mut l) = shared.lock() {
                    l.record(due_s, late);
                }
            }
        });
        StallMonitor { log, task }
    }

    pub fn report(&self) -> StallReport {
        self.log.lock().map(|l| l.report()).unwrap_or_default()
    }
}

impl Drop for StallMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lateness_over_the_threshold_is_a_stall() {
        let mut l = LatenessLog::default();
        l.record(0.01, Duration::from_millis(1));
        l.record(0.02, Duration::from_millis(50)); // at the threshold: not over it
        l.record(1.5, Duration::from_micros(305_400));
        l.record(2.0, Duration::from_millis(51));
        let r = l.report();
        assert_eq!(r.ticks, 4);
        assert_eq!(r.count, 2);
        assert_eq!(r.max_ms, 305.4);
        assert_eq!(r.at, vec![[1.5, 305.4], [2.0, 51.0]]);
        assert_eq!((r.tick_ms, r.threshold_ms), (10.0, 50.0));
    }

    #[test]
    fn the_list_is_bounded_the_count_is_not() {
        let mut l = LatenessLog::default();
        for i in 0..(MAX_LISTED + 50) {
            l.record(i as f64, Duration::from_millis(60));
        }
        l.record(1e4, Duration::from_millis(900));
        let r = l.report();
        assert_eq!(r.count, MAX_LISTED as u64 + 51);
        assert_eq!(r.at.len(), MAX_LISTED);
        assert_eq!(r.at[0], [0.0, 60.0]);
        // The largest is kept even when its stall is past the list.
        assert_eq!(r.max_ms, 900.0);
    }

    #[tokio::test]
    async fn the_monitor_sees_a_blocked_runtime() {
        let epoch = Instant::now();
        let m = StallMonitor::start(epoch);
        tokio::time::sleep(Duration::from_millis(30)).await;
        // A current-thread test runtime: blocking it blocks the monitor too, whose next wake-up
        // was due at most 10 ms into the block: over 100 ms late, however loaded the machine.
        std::thread::sleep(Duration::from_millis(120));
        tokio::time::sleep(Duration::from_millis(30)).await;
        let r = m.report();
        assert!(r.ticks >= 1, "{r:?}");
        assert!(r.count >= 1, "{r:?}");
        assert!(r.max_ms >= 60.0, "{r:?}");
        assert!(
            r.at.iter().any(|[at, late]| *at < 1.0 && *late >= 60.0),
            "{r:?}"
        );
    }
}
