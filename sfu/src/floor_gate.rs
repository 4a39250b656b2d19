//! Hysteresis for a video paused below its lowest layer's need: pause once, stay paused.
//!
//! Measured before this (issue 11, Chromium behind a line that fell from 2 Mbit/s to
//! 150 kbit/s for 19 s): the video paused and resumed four to six times in the dip (1–2 s of
//! 180p, 2–4 s of nothing) and the audio-only notice blinked with it. A paused video sends
//! nothing, so its link's estimate only grows (nothing fills the line to say otherwise), and a
//! plain threshold let the video back in within seconds of every pause, each return a burst of
//! loss and queued audio. So a paused video stays paused for a hold time, then comes back only
//! when a resume probe proved room for its lowest layer with a margin, or the estimate was
//! earned by media the link carried ([`RESUME_MARGIN`], `allocator::Budget::resume_proved`);
//! a pause soon after a resume (a relapse) doubles the next hold.
//!
//! Pure: the worker keeps one gate per video downtrack and passes `now`.

use std::time::{Duration, Instant};

/// The hold after a first pause, before a probe may ask whether the lowest layer fits again.
/// It was 6 s, doubling to 12, while a paused video came back on the estimate's blind growth;
/// since a resume needs a probe's proof or an earned estimate (`probe.rs` pads a paused video on
/// its own numbers when nothing else flows),
/// the hold only keeps the first probe off the queue the pause left, and a long one kept a
/// recovered line waiting (in virtual time on `flap`: 12 s of hold, 720p 10 s after the line
/// came back).
pub const FIRST_HOLD: Duration = Duration::from_secs(2);
pub const MAX_HOLD: Duration = Duration::from_secs(4);
/// A pause within this long after a resume is a relapse: the resume was too early.
pub const RELAPSE: Duration = Duration::from_secs(15);
/// After this long without a pause, the next one starts from [`FIRST_HOLD`] again.
pub const CALM: Duration = Duration::from_secs(60);
/// A paused video comes back only when the estimate left for it covers its lowest layer's base
/// temporal layer (where it restarts) this many times over: the measured rate misses the
/// keyframe that restarts it.
pub const RESUME_MARGIN: f64 = 1.5;

/// What the allocator may do with a video's lowest layer this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Floor {
    /// Not paused by the link: the usual rules.
    #[default]
    Open,
    /// Paused and within its hold: stays paused whatever the estimate says.
    Held,
    /// Paused, hold over: resumes only with [`RESUME_MARGIN`] of room.
    Resuming,
}

#[derive(Debug, Clone, Default)]
pub struct FloorGate {
    paused_at: Option<Instant>,
    resumed_at: Option<Instant>,
    hold: Option<Duration>,
}

impl FloorGate {
    pub fn floor(&self, now: Instant) -> Floor {
        match (self.paused_at, self.hold) {
            (Some(at), Some(hold)) if now.saturating_duration_since(at) < hold => Floor::Held,
            (Some(_), _) => Floor::Resuming,
            (None, _) => Floor::Open,
        }
    }

    /// The allocator paused the video (it was flowing or about to).
    pub fn on_pause(&mut self, now: Instant) {
        if self.paused_at.is_some() {
            return;
        }
        let relapse = self
            .resumed_at
            .is_some_and(|at| now.saturating_duration_since(at) < RELAPSE);
        let calm = self
            .resumed_at
            .is_none_or(|at| now.saturating_duration_since(at) >= CALM);
        self.hold = Some(match self.hold {
            Some(h) if relapse => (h * 2).min(MAX_HOLD),
            Some(h) if !calm => h,
            _ => FIRST_HOLD,
        });
        self.paused_at = Some(now);
    }

    /// The allocator gave the video a layer again.
    pub fn on_resume(&mut self, now: Instant) {
        if self.paused_at.take().is_some() {
            self.resumed_at = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn a_pause_holds_then_asks_for_margin() {
        let t0 = Instant::now();
        let mut g = FloorGate::default();
        assert_eq!(g.floor(t0), Floor::Open);
        g.on_pause(t0);
        assert_eq!(g.floor(secs(t0, 1)), Floor::Held);
        assert_eq!(
            g.floor(t0 + FIRST_HOLD - Duration::from_millis(1)),
            Floor::Held
        );
        assert_eq!(g.floor(t0 + FIRST_HOLD), Floor::Resuming);
        // Pausing again while paused changes nothing.
        g.on_pause(secs(t0, 9));
        assert_eq!(g.floor(secs(t0, 9)), Floor::Resuming);
        g.on_resume(secs(t0, 10));
        assert_eq!(g.floor(secs(t0, 10)), Floor::Open);
    }

    #[test]
    fn a_relapse_doubles_the_hold_and_calm_resets_it() {
        let t0 = Instant::now();
        let mut g = FloorGate::default();
        g.on_pause(t0);
        g.on_resume(secs(t0, 2));
        // Paused again 2 s after coming back: 4 s this time.
        g.on_pause(secs(t0, 4));
        assert_eq!(g.floor(secs(t0, 7)), Floor::Held);
        assert_eq!(g.floor(secs(t0, 8)), Floor::Resuming);
        g.on_resume(secs(t0, 8));
        g.on_pause(secs(t0, 9));
        assert_eq!(g.floor(secs(t0, 9 + 3)), Floor::Held, "capped at 4 s");
        assert_eq!(g.floor(secs(t0, 9 + 4)), Floor::Resuming);
        // A minute of video later, a pause is a first pause again.
        g.on_resume(secs(t0, 13));
        g.on_pause(secs(t0, 13 + 61));
        assert_eq!(g.floor(secs(t0, 13 + 61) + FIRST_HOLD), Floor::Resuming);
    }

    #[test]
    fn a_video_never_paused_is_open() {
        let t0 = Instant::now();
        let mut g = FloorGate::default();
        g.on_resume(t0);
        assert_eq!(g.floor(secs(t0, 100)), Floor::Open);
    }
}
