//! Issue 11's line profiles in virtual time: one point behind `adsl`, `bad` or `flap` (the load
//! generator's and the Chromium suite's lines: rate, random loss, delay, a queue sized in
//! time), the chair publishing Chromium-like simulcast on a clean line, and what the point got,
//! second by second, against the targets.

use std::time::Duration;

use super::meeting::Meeting;
use super::net::{LinkConfig, QueueLimit};

/// One line: (from second, rate) steps after the first, and how long the run is.
pub struct Profile {
    pub name: &'static str,
    pub line: LinkConfig,
    pub steps: Vec<(u64, u64)>,
    pub seconds: u64,
}

fn line(rate: u64, loss: f64, delay_ms: u64, queue_ms: u64) -> LinkConfig {
    LinkConfig {
        rate_bps: Some(rate),
        queue: QueueLimit::Time(Duration::from_millis(queue_ms)),
        delay: Duration::from_millis(delay_ms),
        loss,
    }
}

impl Profile {
    pub fn adsl() -> Self {
        Self {
            name: "adsl",
            line: line(1_000_000, 0.02, 40, 200),
            steps: Vec::new(),
            seconds: 40,
        }
    }

    pub fn bad() -> Self {
        Self {
            name: "bad",
            line: line(300_000, 0.05, 100, 300),
            steps: Vec::new(),
            seconds: 40,
        }
    }

    /// 2 Mbit/s, 150 kbit/s from 10 s to 30 s, then 2 Mbit/s again.
    pub fn flap() -> Self {
        Self {
            name: "flap",
            line: line(2_000_000, 0.0, 30, 200),
            steps: vec![(10, 150_000), (30, 2_000_000)],
            seconds: 45,
        }
    }
}

impl Profile {
    /// 2 Mbit/s, 200 kbit/s from 10 s to 40 s (enough for the audio and the lowest layer's
    /// base temporal layer, not for the whole layer), then 2 Mbit/s again.
    pub fn long_dip() -> Self {
        Self {
            name: "long_dip",
            line: line(2_000_000, 0.0, 30, 200),
            steps: vec![(10, 200_000), (40, 2_000_000)],
            seconds: 55,
        }
    }
}

impl Profile {
    /// `constrained.mjs` (b) and (c): a clean line, narrowed to 400 kbit/s behind a 20-packet
    /// drop-tail queue (its `pfifo`) from `at` s for 20 s, then clean again. The Chromium check
    /// narrows it as soon as the point decodes 720p, so just after the step into it.
    pub fn narrow(at: u64) -> Self {
        Self {
            name: "narrow",
            line: LinkConfig {
                rate_bps: Some(20_000_000),
                queue: QueueLimit::Packets(20),
                delay: Duration::from_millis(1),
                loss: 0.0,
            },
            steps: vec![(at, 400_000), (at + 20, 20_000_000)],
            seconds: at + 35,
        }
    }
}

/// What the point got.
#[derive(Debug)]
pub struct Outcome {
    /// Per second: the height of the picture being decoded (0: none yet) and the video frames
    /// that started arriving.
    pub heights: Vec<u16>,
    pub frames: Vec<u64>,
    /// Silences in the chair's audio over 100 ms: (when it ended, s; how long, ms).
    pub audio_gaps: Vec<(f64, f64)>,
    /// Per second: the audio's largest transit time above its lowest, in ms.
    pub audio_delay: Vec<Option<f64>>,
    /// Video-paused notices the point was sent: (s, videos paused).
    pub notices: Vec<(f64, usize)>,
    pub queue_drops: u64,
    pub loss_drops: u64,
}

impl Outcome {
    /// Seconds `from..to` on at least `height`.
    pub fn share_at_least(&self, height: u16, from: usize, to: usize) -> f64 {
        let to = to.min(self.heights.len());
        let n = (from..to).filter(|&s| self.heights[s] >= height).count();
        n as f64 / (to - from).max(1) as f64
    }

    /// Audio gaps over `ms` (at least 100) after second `from`.
    pub fn audio_gaps_over(&self, from: f64, ms: f64) -> Vec<(f64, f64)> {
        self.audio_gaps
            .iter()
            .copied()
            .filter(|g| g.0 >= from && g.1 > ms)
            .collect()
    }
}

pub fn run(profile: &Profile, seed: u64) -> Outcome {
    let mut m = Meeting::new(seed, 1, profile.line.clone());
    let t0 = m.clock.epoch();
    for &(at, rate) in &profile.steps {
        m.net
            .schedule_rate(m.downlinks[0], t0 + Duration::from_secs(at), Some(rate));
    }
    m.run_for(Duration::from_secs(profile.seconds));
    assert!(m.logs[0].errors.is_empty(), "{:?}", m.logs[0].errors);
    let n = profile.seconds as usize;
    let heights = (0..n)
        .map(|s| m.height_at(0, Duration::from_secs(s as u64 + 1)))
        .collect();
    let frames = match m.video(0) {
        Some(v) => (0..n as u64)
            .map(|s| {
                v.seconds
                    .get(&s)
                    .map_or(0, |x| x.frames_by_tid.iter().sum())
            })
            .collect(),
        None => vec![0; n],
    };
    let (audio_gaps, audio_delay) = match m.audio(0) {
        Some(a) => {
            let floor = a
                .seconds
                .values()
                .filter_map(|s| s.transit_ms())
                .fold(f64::INFINITY, f64::min);
            (
                a.long_gaps
                    .iter()
                    .map(|(at, gap)| (at.as_secs_f64(), gap.as_secs_f64() * 1e3))
                    .collect(),
                (0..n as u64)
                    .map(|s| {
                        a.seconds
                            .get(&s)
                            .and_then(|x| x.transit_ms())
                            .map(|t| t - floor)
                    })
                    .collect(),
            )
        }
        None => (Vec::new(), vec![None; n]),
    };
    let stats = m.net.stats(m.downlinks[0]);
    Outcome {
        heights,
        frames,
        audio_gaps,
        audio_delay,
        notices: m.logs[0]
            .paused
            .iter()
            .map(|(at, n)| (at.as_secs_f64(), *n))
            .collect(),
        queue_drops: stats.dropped_queue,
        loss_drops: stats.dropped_loss,
    }
}
