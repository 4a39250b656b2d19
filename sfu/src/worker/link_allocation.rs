//! What the allocator remembers about one subscriber link between its ticks: was the link
//! congested lately, did the last step up cause it, how long to wait before the next, and the
//! probe that is running or was just judged ([`crate::probe`]). The tick itself is
//! `allocate.rs`.

use std::time::{Duration, Instant};

use crate::api::{ParticipantId, TrackSource};
use crate::bwe::EstimateSnapshot;
use crate::probe::{Prober, Verdict};

/// A back-off within this long after a step up blames the step.
pub(super) const STEP_UP_TRIAL: Duration = Duration::from_secs(4);
/// Wait after a failed step before trying again; doubles per failure, up to the maximum, and
/// starts over after a minute without congestion.
pub(super) const INITIAL_BACKOFF: Duration = Duration::from_secs(8);
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(120);
/// Wait after a temporal layer given back brought congestion: dropping it again was immediate
/// and cheap, so it neither doubles [`INITIAL_BACKOFF`] nor waits as long. Measured with the
/// shared back-off: a line back from a 150 kbit/s dip sat 13 s on its lowest layer with an
/// estimate of 9 Mbit/s, blocked by a back-off its temporal retries in the dip had doubled to
/// two minutes.
const TEMPORAL_RETRY: Duration = Duration::from_secs(4);
/// After the estimator backs off, lowest layers must fit in the estimate for this long; when
/// congestion comes back soon after a hold ended (the lowest layers it let back in were too
/// much), the next hold is twice as long, up to the maximum.
const CONGESTION_HOLD: Duration = Duration::from_secs(10);
const MAX_CONGESTION_HOLD: Duration = Duration::from_secs(160);
/// A minute without congestion starts the step back-off over.
const CALM_RESETS_BACKOFF: Duration = Duration::from_secs(60);
/// What the link delivered before a drop is read over this long: the delivered rate lags
/// (Chromium behind a 2 Mbit/s line falling to 150 kbit/s: 720p had carried ~880 kbit/s, and
/// the first back-off already read 512 delivered).
const CALM_PEAK_SPAN: Duration = Duration::from_secs(2);
/// Feedback seen for this long before the first step up: the estimate needs a few reports.
pub(super) const SETTLE: Duration = Duration::from_secs(1);
/// A failed probe leaves a queue behind that drains at what the line carries beyond the media:
/// behind a 450 kbit/s line carrying 350 kbit/s, up to a second for the 200 ms a failed probe
/// can fill. Back-offs for that long after its verdict are still the probe's (see
/// [`LinkAllocation::probe_shield`]).
const PROBE_AFTERMATH: Duration = Duration::from_secs(2);
/// A probe's proof lets a step go past the next layer for this long after its verdict: the
/// estimator takes the raise at its next feedback, the allocator at its next tick.
const PROOF_FRESH: Duration = Duration::from_millis(1500);
/// Below this share of the media the link carried when a probe started, a back-off during
/// the probe or its aftermath is the link's own and is not shielded: a line that narrowed from
/// 20 Mbit/s to 400 kbit/s while a probe for 720p ran kept its 1.1 Mbit/s layer for 2.5 s on
/// the shielded estimate, with audio gaps of 100-180 ms all along (virtual time,
/// `sim::lines::Profile::narrow`).
const SHIELD_FLOOR: f64 = 0.6;

/// What the allocator remembers about one subscriber link.
#[derive(Debug, Default)]
pub(crate) struct LinkAllocation {
    pub(super) seen_decreases: u64,
    pub(super) last_decrease: Option<Instant>,
    pub(super) congested_until: Option<Instant>,
    pub(super) hold: Option<Duration>,
    pub(super) last_step_up: Option<Instant>,
    pub(super) blocked_until: Option<Instant>,
    /// Until when temporal layers are not given back (see [`Self::block_after_back_off`]).
    pub(super) temporal_blocked_until: Option<Instant>,
    pub(super) backoff: Option<Duration>,
    pub(super) first_feedback: Option<Instant>,
    pub(super) connected_without_feedback: Option<Instant>,
    /// When a temporal layer was last given back (see `temporal.rs`).
    pub(super) last_temporal_raise: Option<Instant>,
    /// (reported, missing) of the estimator at the last stats pass.
    pub loss_seen: (u64, u64),
    /// (requested, refused) of the NACK gate at the last stats pass.
    pub nacks_seen: (u64, u64),
    /// The paused videos the subscriber was last told of.
    pub(super) paused_told: Vec<(ParticipantId, TrackSource)>,
    /// Padding probes before stepping up.
    pub prober: Prober,
    /// The estimate when the running probe started, or what a probe that filled the line
    /// delivered: a back-off the probe itself causes goes back to it (see
    /// [`Self::probe_shield`]).
    pub(super) probe_base: Option<f64>,
    /// The media rate when the running (or last) probe started.
    pub(super) probe_media: Option<f64>,
    /// When a probe last proved a rate, and the rate.
    pub(super) last_proof: Option<(Instant, f64)>,
    /// Until when a failed probe's queue may still be draining.
    pub(super) probe_aftermath_until: Option<Instant>,
    /// What the link delivered at the last ticks with no back-off, and when: a back-off far
    /// below the most of them in [`CALM_PEAK_SPAN`] is a large drop
    /// ([`Self::note_back_off`]).
    pub(super) calm: CalmTicks,
    /// The calm peak a run of back-offs started from (see [`Self::note_back_off`]); `Some(0.0)`
    /// once the run was found a large drop, so later back-offs of it compare with the calm
    /// ticks alone.
    pub(super) narrowing_from: Option<f64>,
}

/// What the link delivered at its last few calm ticks (no back-off), a ring without
/// allocation: the delivered rate lags a drop, so the tick just before a back-off may read
/// the line already narrowed, and the rate before it is the most of the last ticks.
#[derive(Debug, Default)]
pub(crate) struct CalmTicks {
    ticks: [Option<(Instant, f64)>; 6],
    next: usize,
}

impl CalmTicks {
    fn push(&mut self, now: Instant, delivered: f64) {
        self.ticks[self.next] = Some((now, delivered));
        self.next = (self.next + 1) % self.ticks.len();
    }

    /// The most delivered at a calm tick within [`CALM_PEAK_SPAN`] before `now`.
    fn peak(&self, now: Instant) -> f64 {
        self.ticks
            .iter()
            .flatten()
            .filter(|(at, _)| now.saturating_duration_since(*at) <= CALM_PEAK_SPAN)
            .map(|(_, bps)| *bps)
            .fold(0.0, f64::max)
    }
}

impl LinkAllocation {
    /// The estimate the link had before a probe, while the probe runs, is judged, or its
    /// queue drains after it failed ([`PROBE_AFTERMATH`]): back-offs meanwhile are the probe's
    /// own, and the media goes on at this estimate. The media, which the link carried before,
    /// is not what queued. Counted as congestion, a failed probe's back-off dropped the layer
    /// the link carried and held it for 8 s; once that was shielded while the probe ran, the
    /// queue guard's back-off as the probe's queue drained, just after the verdict, still
    /// dropped it (behind a 450 kbit/s line, the middle layer 3.5–4.5 s of 10 in CI and in 3
    /// of 8 runs on a loaded machine, `tests/probe_climb.rs`). A line that narrowed meanwhile
    /// backs off again once this ends.
    pub(super) fn probe_shield(&self, now: Instant) -> Option<f64> {
        let shielded =
            self.prober.running() || self.probe_aftermath_until.is_some_and(|until| until > now);
        shielded.then_some(self.probe_base).flatten()
    }

    /// Drops the probe's shield when the estimate fell below [`SHIELD_FLOOR`] of the media the
    /// link carried when the probe started: a probe's own queue costs the estimate a share of
    /// what the link carried (the queue guard backs off to 85 % of the delivered rate), never
    /// most of it; far below, the line narrowed under the probe. Not measured against the
    /// probe's base: that is the estimate, which a failed probe's padding can have raised past
    /// the line (652 kbit/s on a 450 kbit/s line carrying 336, `tests/probe_climb.rs`).
    pub(super) fn unshield_if_narrowed(&mut self, target: f64) {
        if self.probe_base.is_some()
            && self
                .probe_media
                .is_some_and(|media| target < media * SHIELD_FLOOR)
        {
            self.probe_base = None;
            self.probe_aftermath_until = None;
        }
    }

    /// The estimator's state at a tick with feedback, no probe shielding it: a back-off
    /// starts (or doubles) the congestion hold and blocks stepping up for a while.
    /// Returns whether the back-off, if any, was a large drop.
    pub(super) fn on_feedback(&mut self, now: Instant, s: &EstimateSnapshot) -> bool {
        let backed_off = s.decreases > self.seen_decreases;
        let large_drop = self.note_back_off(now, backed_off, s);
        if backed_off {
            self.seen_decreases = s.decreases;
            self.last_decrease = Some(now);
            let relapse = self.congested_until.is_some_and(|until| {
                until <= now && now.saturating_duration_since(until) < CONGESTION_HOLD
            });
            let hold = match self.hold {
                Some(h) if relapse => (h * 2).min(MAX_CONGESTION_HOLD),
                Some(h) if self.congested_until.is_some_and(|until| until > now) => h,
                _ => CONGESTION_HOLD,
            };
            self.hold = Some(hold);
            self.congested_until = Some(now + hold);
            self.block_after_back_off(now, large_drop);
        } else if self
            .last_decrease
            .is_some_and(|at| now.saturating_duration_since(at) > CALM_RESETS_BACKOFF)
        {
            self.backoff = None;
        }
        large_drop
    }

    /// A back-off to less than [`crate::probe::LARGE_DROP`] of the most the link delivered at
    /// its calm ticks of the last [`CALM_PEAK_SPAN`] is a large drop: the line narrowed, and
    /// the prober remembers what it carried before. Back-offs each within [`CALM_PEAK_SPAN`]
    /// of the one before are one narrowing, measured from the calm peak before its first: the
    /// estimate of a line that fell from 2 Mbit/s to 150 kbit/s came down over 1.5 s (2 M,
    /// 730 k, 680 k, 530 k, 120 k at the loadtest's 20 points on `flap`), the ticks of it
    /// were no longer calm, and 15 of 20 points saw no large drop: they climbed back one probe
    /// per rung, 720p up to 14.5 s after the line came back. Returns whether it was one.
    pub(super) fn note_back_off(
        &mut self,
        now: Instant,
        backed_off: bool,
        s: &EstimateSnapshot,
    ) -> bool {
        if !backed_off {
            self.calm.push(now, s.delivered_bps);
            return false;
        }
        let recent = self.calm.peak(now);
        let chained = self
            .last_decrease
            .is_some_and(|at| now.saturating_duration_since(at) <= CALM_PEAK_SPAN);
        let before = match self.narrowing_from {
            Some(from) if chained => from.max(recent),
            _ => recent,
        };
        let large = s.target_bps < before * crate::probe::LARGE_DROP;
        if large {
            self.prober.note_drop(now, before);
        }
        // Found once per narrowing: the back-offs in the dip after it are the dip's own (a
        // step tried in it is blamed), measured against the dip's calm ticks.
        self.narrowing_from = Some(if large { 0.0 } else { before });
        large
    }

    /// What a probe proved within [`PROOF_FRESH`], unless the estimate backed off since.
    pub(super) fn proved_lately(&self, now: Instant) -> Option<f64> {
        let (at, bps) = self.last_proof?;
        let fresh = now.saturating_duration_since(at) <= PROOF_FRESH;
        let since = self.last_decrease.is_some_and(|d| d >= at);
        (fresh && !since).then_some(bps)
    }

    /// What a judged probe leaves: the estimate to raise to, if any, and how long its queue
    /// may drain (see [`Self::probe_shield`]). A probe that filled the line shields at what
    /// it delivered: its queue draining is not the link narrowing.
    pub(super) fn on_verdict(&mut self, now: Instant, verdict: Verdict) -> Option<f64> {
        match verdict {
            Verdict::Proved(bps) => {
                self.probe_aftermath_until = None;
                self.last_proof = Some((now, bps));
                Some(bps)
            }
            Verdict::Filled(bps) => {
                self.probe_aftermath_until = Some(now + PROBE_AFTERMATH);
                self.probe_base = Some(bps);
                Some(bps)
            }
            Verdict::Failed(_) => {
                self.probe_aftermath_until = Some(now + PROBE_AFTERMATH);
                None
            }
        }
    }

    /// The estimate backed off at `now`: stepping up waits (see [`Self::wait_after_back_off`]),
    /// and a wait already running is never shortened. Giving back the temporal layers of the
    /// layer a video is on waits only [`TEMPORAL_RETRY`] if a temporal raise just before is
    /// to blame, else a moment to settle: it needs no keyframe and is undone at once, so it
    /// does not wait out a simulcast step's back-off. Behind it, a line that narrowed under
    /// 720p (Chromium, `constrained.mjs` (b), loaded machine) played 180p at half its frame
    /// rate for 6–8 s with room for the whole layer, because the narrowing came within
    /// [`STEP_UP_TRIAL`] of the step into 720p and was blamed on it.
    ///
    /// A large drop (`large_drop`) blames nothing: a step's overshoot costs the estimate a
    /// share of what the link delivered (the queue guard backs off to 85 % of it), a line that
    /// narrowed most of it. Blamed, the step into 720p a second before a line fell to
    /// 400 kbit/s doubled the wait after the next failed step, and 720p came back 13 s after
    /// the line did (virtual time, `narrow`).
    pub(super) fn block_after_back_off(&mut self, now: Instant, large_drop: bool) {
        if large_drop {
            // Nor what the first back-offs of the same narrowing blamed (a line narrowing
            // under a queue backs off in steps): waits and doublings from a wider line are moot.
            self.last_step_up = None;
            self.last_temporal_raise = None;
            self.backoff = None;
            let until = now + SETTLE * 2;
            self.blocked_until = Some(until);
            self.temporal_blocked_until = Some(until);
            return;
        }
        let temporal_wait = if self
            .last_temporal_raise
            .is_some_and(|at| now.saturating_duration_since(at) < STEP_UP_TRIAL)
        {
            TEMPORAL_RETRY
        } else {
            SETTLE * 2
        };
        let until = now + self.wait_after_back_off(now);
        self.blocked_until = Some(self.blocked_until.map_or(until, |at| at.max(until)));
        let until = now + temporal_wait;
        self.temporal_blocked_until = Some(
            self.temporal_blocked_until
                .map_or(until, |at| at.max(until)),
        );
    }

    /// How long stepping up waits after the estimate backed off at `now`: a simulcast step up
    /// just before is blamed (the back-off doubles), a temporal layer given back just before
    /// waits [`TEMPORAL_RETRY`], anything else a moment to settle. A step is blamed once: the
    /// estimator backs off two or three times as one overshoot drains (the queue guard, then
    /// the loss half), and each doubled the wait: a point behind 220 kbit/s that stepped into
    /// the top layer once then waited 32 s on the lowest, below the middle layer its line
    /// carried (`tests/simulcast_policy.rs`, on a loaded machine).
    pub(super) fn wait_after_back_off(&mut self, now: Instant) -> Duration {
        let just = |at: Option<Instant>| {
            at.is_some_and(|at| now.saturating_duration_since(at) < STEP_UP_TRIAL)
        };
        if just(self.last_step_up) {
            self.last_step_up = None;
            let b = self.backoff.unwrap_or(INITIAL_BACKOFF);
            self.backoff = Some((b * 2).min(MAX_BACKOFF));
            b
        } else if just(self.last_temporal_raise) {
            TEMPORAL_RETRY
        } else {
            SETTLE * 2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_temporal_retry_waits_briefly_and_a_failed_step_doubles() {
        let t0 = Instant::now();
        let secs = |n| t0 + Duration::from_secs(n);
        // A temporal layer given back, congestion 1 s later: a short wait, nothing doubled.
        let mut a = LinkAllocation {
            last_temporal_raise: Some(t0),
            ..Default::default()
        };
        assert_eq!(a.wait_after_back_off(secs(1)), TEMPORAL_RETRY);
        a.last_temporal_raise = Some(secs(10));
        assert_eq!(a.wait_after_back_off(secs(11)), TEMPORAL_RETRY);
        assert_eq!(a.backoff, None);
        // A simulcast step up, congestion 1 s later: 8 s, then 16 s.
        a.last_step_up = Some(secs(20));
        assert_eq!(a.wait_after_back_off(secs(21)), INITIAL_BACKOFF);
        a.last_step_up = Some(secs(40));
        assert_eq!(a.wait_after_back_off(secs(41)), INITIAL_BACKOFF * 2);
        // Congestion long after either: a moment to settle.
        assert_eq!(a.wait_after_back_off(secs(60)), SETTLE * 2);
    }

    fn snapshot(decreases: u64, target_bps: f64, delivered_bps: f64) -> EstimateSnapshot {
        EstimateSnapshot {
            target_bps,
            delivered_bps,
            decreases,
            feedback: 1,
            ..Default::default()
        }
    }

    #[test]
    fn a_back_off_far_below_what_the_link_delivered_is_a_drop_remembered_and_not_blamed() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        // A step up, then a back-off to 85 % of what was delivered: the step's overshoot,
        // blamed (the doubling wait), and no drop.
        let mut a = LinkAllocation {
            last_step_up: Some(t0),
            ..Default::default()
        };
        a.on_feedback(ms(500), &snapshot(0, 1.2e6, 1.0e6));
        a.on_feedback(ms(1000), &snapshot(1, 850e3, 900e3));
        assert_eq!(a.prober.before_drop(), None);
        assert_eq!(a.blocked_until, Some(ms(1000) + INITIAL_BACKOFF));
        // A step up, 1.5 M delivered, then back-offs to 1.2 M and 330 k over two ticks: the
        // line narrowed. What it carried is remembered, and the step is not blamed.
        let mut a = LinkAllocation {
            last_step_up: Some(t0),
            ..Default::default()
        };
        a.on_feedback(ms(0), &snapshot(0, 2e6, 1.5e6));
        // The delivered rate lags the drop: the tick just before the back-off reads it.
        a.on_feedback(ms(500), &snapshot(0, 2e6, 600e3));
        a.on_feedback(ms(1000), &snapshot(1, 1.2e6, 1.3e6));
        a.on_feedback(ms(1500), &snapshot(2, 330e3, 400e3));
        assert_eq!(a.prober.before_drop(), Some(1.5e6));
        assert_eq!(a.blocked_until, Some(ms(1500) + SETTLE * 2));
        assert_eq!(a.backoff, None);
        // Back-offs in the dip compare with the dip's own calm ticks; the higher rate stays.
        a.on_feedback(ms(3000), &snapshot(2, 150e3, 140e3));
        a.on_feedback(ms(3500), &snapshot(3, 60e3, 100e3));
        assert_eq!(a.prober.before_drop(), Some(1.5e6));
    }

    #[test]
    fn a_line_narrowing_over_several_back_offs_is_one_large_drop_from_the_rate_before_it() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut a = LinkAllocation::default();
        for n in [0, 500, 1000] {
            a.on_feedback(ms(n), &snapshot(0, 2e6, 1.25e6));
        }
        // Down by less than half at each tick, over 2.5 s with no calm tick between: the
        // calm peak of the last 2 s is gone by the last, not the rate before the first.
        for (i, (n, target)) in [(1500, 730e3), (2000, 700e3), (2500, 680e3), (3000, 650e3)]
            .into_iter()
            .enumerate()
        {
            assert!(!a.on_feedback(ms(n), &snapshot(i as u64 + 1, target, 600e3)));
        }
        assert!(a.on_feedback(ms(3500), &snapshot(5, 120e3, 140e3)));
        assert_eq!(a.prober.before_drop(), Some(1.25e6));
        // Once found, a back-off further in the dip is measured against the dip alone.
        a.on_feedback(ms(4000), &snapshot(5, 120e3, 140e3));
        assert!(!a.on_feedback(ms(4500), &snapshot(6, 100e3, 140e3)));
        // A back-off after a calm spell starts a new narrowing.
        for n in [7000, 7500, 8000] {
            a.on_feedback(ms(n), &snapshot(6, 1e6, 900e3));
        }
        assert!(!a.on_feedback(ms(8500), &snapshot(7, 700e3, 800e3)));
        assert!(a.on_feedback(ms(9000), &snapshot(8, 400e3, 500e3)));
    }

    impl LinkAllocation {
        fn block_after_back_off_at(&mut self, now: Instant) {
            self.block_after_back_off(now, false);
        }
    }

    #[test]
    fn one_failed_step_is_blamed_once_however_many_back_offs_it_causes() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut a = LinkAllocation {
            last_step_up: Some(t0),
            ..Default::default()
        };
        // The queue guard at 0.5 s, the loss half at 1 s and 2 s, all after one step up.
        a.block_after_back_off_at(ms(500));
        a.block_after_back_off_at(ms(1000));
        a.block_after_back_off_at(ms(2000));
        assert_eq!(a.blocked_until, Some(ms(500) + INITIAL_BACKOFF));
        assert_eq!(a.backoff, Some(INITIAL_BACKOFF * 2), "doubled once");
        // The next step that fails waits the doubled time.
        a.last_step_up = Some(ms(20_000));
        a.block_after_back_off_at(ms(20_500));
        assert_eq!(a.blocked_until, Some(ms(20_500) + INITIAL_BACKOFF * 2));
    }

    #[test]
    fn temporal_layers_wait_briefly_after_a_back_off_blamed_on_a_simulcast_step() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut a = LinkAllocation {
            last_step_up: Some(t0),
            ..Default::default()
        };
        a.block_after_back_off_at(ms(1000));
        assert_eq!(a.blocked_until, Some(ms(1000) + INITIAL_BACKOFF));
        assert_eq!(a.temporal_blocked_until, Some(ms(1000) + SETTLE * 2));
        // A temporal layer given back, then congestion: that one waits its retry.
        a.last_temporal_raise = Some(ms(5000));
        a.block_after_back_off_at(ms(5500));
        assert_eq!(a.temporal_blocked_until, Some(ms(5500) + TEMPORAL_RETRY));
        assert_eq!(
            a.blocked_until,
            Some(ms(5500) + TEMPORAL_RETRY),
            "the step's wait is not shortened"
        );
    }

    #[test]
    fn a_failed_probe_shields_the_estimate_until_its_queue_drained() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut a = LinkAllocation {
            probe_base: Some(480e3),
            ..Default::default()
        };
        assert_eq!(a.probe_shield(t0), None, "no probe, no shield");
        a.prober.start(t0, (0, 0), (1.5e6, 1.87e6), 360e3, 0);
        assert_eq!(a.probe_shield(ms(500)), Some(480e3), "running");
        assert_eq!(a.prober.tick(ms(1000), 0, 0.0), None);
        assert_eq!(a.probe_shield(ms(1300)), Some(480e3), "judged");
        let verdict = a.prober.tick(ms(1600), 1, 0.0).expect("judged");
        assert!(matches!(verdict, Verdict::Failed(_)));
        assert_eq!(a.on_verdict(ms(1600), verdict), None);
        assert_eq!(a.probe_shield(ms(3000)), Some(480e3), "its queue drains");
        assert_eq!(
            a.probe_shield(ms(3700)),
            None,
            "a back-off now is the link's"
        );
    }

    #[test]
    fn a_line_that_narrows_under_a_probe_is_not_shielded() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut a = LinkAllocation {
            probe_base: Some(1.15e6),
            probe_media: Some(1.1e6),
            ..Default::default()
        };
        a.prober.start(t0, (0, 0), (1.67e6, 2.09e6), 1.1e6, 0);
        // The probe's own back-off: still shielded.
        a.unshield_if_narrowed(900e3);
        assert_eq!(a.probe_shield(ms(500)), Some(1.15e6));
        // The line fell to 400 kbit/s: the estimate is the link's, now and after the verdict.
        a.unshield_if_narrowed(397e3);
        assert_eq!(a.probe_shield(ms(600)), None);
        assert_eq!(a.prober.tick(ms(1000), 0, 0.0), None);
        let verdict = a.prober.tick(ms(1600), 1, 0.0).expect("judged");
        assert_eq!(a.on_verdict(ms(1600), verdict), None);
        assert_eq!(a.probe_shield(ms(2000)), None);
    }

    #[test]
    fn a_probe_that_filled_the_line_shields_what_it_delivered() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut a = LinkAllocation {
            probe_base: Some(317e3),
            ..Default::default()
        };
        // The middle layer needs 398 k, the probe asks 497 k of a 450 k line and queues.
        a.prober.start(t0, (0, 0), (398e3, 497e3), 126e3, 0);
        a.prober
            .padding_due(ms(400), (0, 0), crate::probe::STOP_BATCHES, 0);
        assert_eq!(a.prober.tick(ms(500), 0, 450e3), None);
        let verdict = a.prober.tick(ms(1100), 0, 450e3).expect("judged");
        assert_eq!(verdict, Verdict::Filled(450e3));
        assert_eq!(a.on_verdict(ms(1100), verdict), Some(450e3), "raised");
        assert_eq!(
            a.probe_shield(ms(2500)),
            Some(450e3),
            "its queue drains at what it delivered"
        );
        assert_eq!(a.probe_shield(ms(3200)), None);
    }
}
