//! What the allocator remembers about one subscriber link between ticks, and the rules that
//! change it: the congestion hold after a back-off (and its doubling on a relapse), the wait
//! before stepping up again (and whom a back-off blames), and the shield that keeps a probe's
//! own queue from counting as the link's congestion.

use std::time::{Duration, Instant};

use crate::api::{ParticipantId, TrackSource};
use crate::bwe::EstimateSnapshot;
use crate::probe::{Prober, Verdict};

/// After the estimator backs off, lowest layers must fit in the estimate for this long; when
/// congestion comes back soon after a hold ended (the lowest layers it let back in were too
/// much), the next hold is twice as long, up to the maximum.
const CONGESTION_HOLD: Duration = Duration::from_secs(10);
const MAX_CONGESTION_HOLD: Duration = Duration::from_secs(160);
/// A back-off within this long after a step up blames the step.
const STEP_UP_TRIAL: Duration = Duration::from_secs(4);
/// Wait after a failed step before trying again; doubles per failure, up to the maximum, and
/// starts over after a minute without congestion.
const INITIAL_BACKOFF: Duration = Duration::from_secs(8);
const MAX_BACKOFF: Duration = Duration::from_secs(120);
const CALM_RESETS_BACKOFF: Duration = Duration::from_secs(60);
/// Wait after a temporal layer given back brought congestion: dropping it again was immediate
/// and cheap, so it neither doubles [`INITIAL_BACKOFF`] nor waits as long. Measured with the
/// shared back-off: a line back from a 150 kbit/s dip sat 13 s on its lowest layer with an
/// estimate of 9 Mbit/s, blocked by a back-off its temporal retries in the dip had doubled to
/// two minutes.
const TEMPORAL_RETRY: Duration = Duration::from_secs(4);
/// Feedback seen for this long before the first step up: the estimate needs a few reports.
const SETTLE: Duration = Duration::from_secs(1);
/// A connected subscriber that sent no transport-wide feedback for this long does not do
/// congestion control (an old client): it gets the layers the routing allows.
const NO_FEEDBACK_GIVE_UP: Duration = Duration::from_secs(5);
/// A failed probe leaves a queue behind that drains at what the line carries beyond the media:
/// behind a 450 kbit/s line carrying 350 kbit/s, up to a second for the 200 ms a failed probe
/// can fill. Back-offs for that long after its verdict are still the probe's (see
/// [`LinkAllocation::probe_shield`]).
const PROBE_AFTERMATH: Duration = Duration::from_secs(2);
/// After a failed probe that asked more than [`OVERSHOOT`] times the estimate it started
/// from, longer: its overflow's loss reaches the loss half's average later still. With 2 s,
/// after probes for the top layer (1.9 Mbit/s) behind 450 kbit/s, the loss half's back-off
/// came just after the shield in 4 of 6 runs and dropped the middle layer the line carried
/// for 1.5–5.5 s of 10 (`tests/probe_climb.rs`); with 3 s, 10 s of 10 in 6 of 6. Not for
/// every probe: a shield also hides the media's own congestion, and a probe a little above
/// the estimate leaves little to drain.
const OVERSHOOT_AFTERMATH: Duration = Duration::from_secs(3);
const OVERSHOOT: f64 = 2.0;

/// What the allocator remembers about one subscriber link.
#[derive(Debug, Default)]
pub(crate) struct LinkAllocation {
    seen_decreases: u64,
    last_decrease: Option<Instant>,
    congested_until: Option<Instant>,
    hold: Option<Duration>,
    pub(super) last_step_up: Option<Instant>,
    blocked_until: Option<Instant>,
    backoff: Option<Duration>,
    first_feedback: Option<Instant>,
    connected_without_feedback: Option<Instant>,
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
    /// Until when a failed probe's queue may still be draining.
    probe_aftermath_until: Option<Instant>,
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

    /// What a judged probe leaves: the estimate to raise to, if any, and how long its queue
    /// may drain (see [`Self::probe_shield`]). A probe that filled the line shields at what
    /// it delivered: its queue draining is not the link narrowing.
    pub(super) fn on_verdict(&mut self, now: Instant, verdict: Verdict) -> Option<f64> {
        match verdict {
            Verdict::Proved(bps) => {
                self.probe_aftermath_until = None;
                Some(bps)
            }
            Verdict::Filled(bps) => {
                self.probe_aftermath_until = Some(now + PROBE_AFTERMATH);
                self.probe_base = Some(bps);
                Some(bps)
            }
            Verdict::Failed(_) => {
                let overshot = (self.prober.failed_target())
                    .zip(self.probe_base)
                    .is_some_and(|(target, base)| target > base * OVERSHOOT);
                let drain = if overshot {
                    OVERSHOOT_AFTERMATH
                } else {
                    PROBE_AFTERMATH
                };
                self.probe_aftermath_until = Some(now + drain);
                None
            }
        }
    }

    /// What the allocator works with this tick, from the estimator's `snap` (with the running
    /// or last probe's `probe_base`, see [`Self::probe_shield`]): the estimate (infinite for a
    /// subscriber that never sends feedback), and whether the link is congested (a back-off
    /// within the hold: lowest layers must fit too) and whether a step up is allowed (settled,
    /// not waiting after a back-off). A back-off starts a hold of [`CONGESTION_HOLD`], twice the
    /// last one if congestion comes back soon after a hold ended.
    pub(super) fn read_estimate(
        &mut self,
        now: Instant,
        snap: Option<EstimateSnapshot>,
        probe_base: Option<f64>,
    ) -> (Option<f64>, (bool, bool)) {
        let estimate = match snap {
            Some(s) if s.feedback > 0 && probe_base.is_some() => {
                // The probe's back-off, if any, is not the link's.
                self.seen_decreases = s.decreases;
                Some(s.target_bps.max(probe_base.unwrap_or_default()))
            }
            Some(s) if s.feedback > 0 => {
                self.first_feedback.get_or_insert(now);
                if s.decreases > self.seen_decreases {
                    self.seen_decreases = s.decreases;
                    self.on_back_off(now);
                } else if self
                    .last_decrease
                    .is_some_and(|at| now.saturating_duration_since(at) > CALM_RESETS_BACKOFF)
                {
                    self.backoff = None;
                }
                Some(s.target_bps)
            }
            _ => {
                let since = *self.connected_without_feedback.get_or_insert(now);
                (now.saturating_duration_since(since) >= NO_FEEDBACK_GIVE_UP)
                    .then_some(f64::INFINITY)
            }
        };
        let settled = self
            .first_feedback
            .is_some_and(|at| now.saturating_duration_since(at) >= SETTLE);
        let flags = (
            self.congested_until.is_some_and(|at| at > now),
            self.blocked_until.is_none_or(|at| at <= now)
                && (settled || estimate == Some(f64::INFINITY)),
        );
        (estimate, flags)
    }

    /// The estimator backed off at `now`: congestion held, stepping up waits.
    fn on_back_off(&mut self, now: Instant) {
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
        self.block_after_back_off(now);
    }

    /// The estimate backed off at `now`: stepping up waits (see [`Self::wait_after_back_off`]),
    /// and a wait already running is never shortened.
    fn block_after_back_off(&mut self, now: Instant) {
        let until = now + self.wait_after_back_off(now);
        self.blocked_until = Some(self.blocked_until.map_or(until, |at| at.max(until)));
    }

    /// How long stepping up waits after the estimate backed off at `now`: a simulcast step up
    /// just before is blamed (the back-off doubles), a temporal layer given back just before
    /// waits [`TEMPORAL_RETRY`], anything else a moment to settle. A step is blamed once: the
    /// estimator backs off two or three times as one overshoot drains (the queue guard, then
    /// the loss half), and each doubled the wait: a point behind 220 kbit/s that stepped into
    /// the top layer once then waited 32 s on the lowest, below the middle layer its line
    /// carried (`tests/simulcast_policy.rs`, on a loaded machine).
    fn wait_after_back_off(&mut self, now: Instant) -> Duration {
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

    #[test]
    fn one_failed_step_is_blamed_once_however_many_back_offs_it_causes() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut a = LinkAllocation {
            last_step_up: Some(t0),
            ..Default::default()
        };
        // The queue guard at 0.5 s, the loss half at 1 s and 2 s, all after one step up.
        a.block_after_back_off(ms(500));
        a.block_after_back_off(ms(1000));
        a.block_after_back_off(ms(2000));
        assert_eq!(a.blocked_until, Some(ms(500) + INITIAL_BACKOFF));
        assert_eq!(a.backoff, Some(INITIAL_BACKOFF * 2), "doubled once");
        // The next step that fails waits the doubled time.
        a.last_step_up = Some(ms(20_000));
        a.block_after_back_off(ms(20_500));
        assert_eq!(a.blocked_until, Some(ms(20_500) + INITIAL_BACKOFF * 2));
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
        // 1.87 M asked from 480 k: an overshoot, drained for longer.
        let drained = ms(1600) + OVERSHOOT_AFTERMATH;
        assert_eq!(a.probe_shield(ms(3000)), Some(480e3), "its queue drains");
        assert_eq!(
            a.probe_shield(drained - Duration::from_millis(100)),
            Some(480e3)
        );
        assert_eq!(
            a.probe_shield(drained),
            None,
            "a back-off now is the link's"
        );
        // A probe a little above the estimate: its queue drains sooner.
        a.probe_base = Some(465e3);
        a.prober.start(ms(20_000), (0, 0), (505e3, 631e3), 256e3, 1);
        a.prober.tick(ms(21_000), 1, 0.0);
        let verdict = a.prober.tick(ms(21_600), 2, 0.0).expect("judged");
        assert_eq!(a.on_verdict(ms(21_600), verdict), None);
        assert_eq!(a.probe_aftermath_until, Some(ms(21_600) + PROBE_AFTERMATH));
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
        assert_eq!(a.probe_shield(ms(1100) + PROBE_AFTERMATH), None);
    }

    fn snap(target_bps: f64, feedback: u64, decreases: u64) -> EstimateSnapshot {
        EstimateSnapshot {
            target_bps,
            feedback,
            decreases,
            ..Default::default()
        }
    }

    #[test]
    fn a_back_off_holds_congestion_and_a_relapse_soon_after_holds_it_twice_as_long() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut a = LinkAllocation::default();
        assert_eq!(
            a.read_estimate(at(0), Some(snap(1e6, 1, 0)), None),
            (Some(1e6), (false, false))
        );
        assert_eq!(
            a.read_estimate(at(1), Some(snap(1e6, 5, 0)), None).1,
            (false, true),
            "settled: a step up may come"
        );
        // A back-off: congested for the hold, and no step for a moment.
        let (estimate, flags) = a.read_estimate(at(2), Some(snap(400e3, 9, 1)), None);
        assert_eq!((estimate, flags), (Some(400e3), (true, false)));
        assert_eq!(a.congested_until, Some(at(2) + CONGESTION_HOLD));
        // The hold ends; congestion comes back soon after: twice as long.
        let after = 2 + CONGESTION_HOLD.as_secs() + 1;
        let (_, (congested, _)) = a.read_estimate(at(after), Some(snap(400e3, 60, 1)), None);
        assert!(!congested, "the hold ended");
        a.read_estimate(at(after + 2), Some(snap(300e3, 70, 2)), None);
        assert_eq!(a.congested_until, Some(at(after + 2) + CONGESTION_HOLD * 2));
    }

    #[test]
    fn a_probes_back_off_is_not_congestion_and_a_silent_subscriber_gets_everything() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut a = LinkAllocation::default();
        a.read_estimate(at(0), Some(snap(600e3, 1, 0)), None);
        // Backed off while a probe started at 600 k runs: the estimate stays, no hold.
        let (estimate, flags) = a.read_estimate(at(1500), Some(snap(420e3, 8, 1)), Some(600e3));
        assert_eq!((estimate, flags.0), (Some(600e3), false));
        assert_eq!(a.congested_until, None);
        // No feedback at all: nothing known, then, after the give-up, no limit.
        let mut silent = LinkAllocation::default();
        assert_eq!(
            silent.read_estimate(at(0), Some(snap(1e6, 0, 0)), None).0,
            None
        );
        let late = at(0) + NO_FEEDBACK_GIVE_UP;
        assert_eq!(
            silent.read_estimate(late, Some(snap(1e6, 0, 0)), None),
            (Some(f64::INFINITY), (false, true))
        );
    }
}
