//! The allocation tick: measure every layer, then choose each subscriber's layers within its
//! bandwidth estimate (policy in [`crate::allocator`]), with the memory stepping needs — was
//! the link congested lately, did the last step up cause it, how long to wait before the next —
//! and, where only the estimate stands in the way of a step up, a padding probe first
//! ([`crate::probe`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::WorkerCore;
use crate::allocator::{
    Budget, EARNED_ESTIMATE, LayerInfo, Temporal, VideoItem, allocate, floor_layer_costs,
    temporal_caps,
};
use crate::api::{MediaEvent, ParticipantId, TrackKind, TrackSource};
use crate::floor_gate::Floor;
use crate::probe::{
    PaddedDowntrack, Prober, Verdict, goal_estimate, needed_estimate, resume_all_estimate, steps_up,
};

pub(super) const ALLOCATE_INTERVAL: Duration = Duration::from_millis(500);
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
/// Audio assumed per stream until measured.
const AUDIO_BPS_GUESS: f64 = 40_000.0;
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
    seen_decreases: u64,
    last_decrease: Option<Instant>,
    congested_until: Option<Instant>,
    hold: Option<Duration>,
    last_step_up: Option<Instant>,
    blocked_until: Option<Instant>,
    /// Until when temporal layers are not given back (see [`Self::block_after_back_off`]).
    temporal_blocked_until: Option<Instant>,
    backoff: Option<Duration>,
    first_feedback: Option<Instant>,
    connected_without_feedback: Option<Instant>,
    /// When a temporal layer was last given back (see `temporal.rs`).
    last_temporal_raise: Option<Instant>,
    /// (reported, missing) of the estimator at the last stats pass.
    pub loss_seen: (u64, u64),
    /// (requested, refused) of the NACK gate at the last stats pass.
    pub nacks_seen: (u64, u64),
    /// The paused videos the subscriber was last told of.
    paused_told: Vec<(ParticipantId, TrackSource)>,
    /// Padding probes before stepping up.
    pub prober: Prober,
    /// The estimate when the running probe started, or what a probe that filled the line
    /// delivered: a back-off the probe itself causes goes back to it (see
    /// [`Self::probe_shield`]).
    probe_base: Option<f64>,
    /// The media rate when the running (or last) probe started.
    probe_media: Option<f64>,
    /// When a probe last proved a rate, and the rate.
    last_proof: Option<(Instant, f64)>,
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
    fn probe_shield(&self, now: Instant) -> Option<f64> {
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
    fn unshield_if_narrowed(&mut self, target: f64) {
        if self.probe_base.is_some()
            && self
                .probe_media
                .is_some_and(|media| target < media * SHIELD_FLOOR)
        {
            self.probe_base = None;
            self.probe_aftermath_until = None;
        }
    }

    /// What a probe proved within [`PROOF_FRESH`], unless the estimate backed off since.
    fn proved_lately(&self, now: Instant) -> Option<f64> {
        let (at, bps) = self.last_proof?;
        let fresh = now.saturating_duration_since(at) <= PROOF_FRESH;
        let since = self.last_decrease.is_some_and(|d| d >= at);
        (fresh && !since).then_some(bps)
    }

    /// What a judged probe leaves: the estimate to raise to, if any, and how long its queue
    /// may drain (see [`Self::probe_shield`]). A probe that filled the line shields at what
    /// it delivered: its queue draining is not the link narrowing.
    fn on_verdict(&mut self, now: Instant, verdict: Verdict) -> Option<f64> {
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
    fn block_after_back_off(&mut self, now: Instant) {
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

impl WorkerCore {
    pub(super) fn allocate_layers(&mut self, now: Instant) {
        // Which downtracks each subscriber connection carries.
        let mut by_conn: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
        for (k, t) in self.tracks.iter_mut() {
            for l in &mut t.layers {
                l.meter.tick(now);
            }
            for (i, d) in t.downtracks.iter().enumerate() {
                // A pinned layer (a relay's) is sent whatever the link's estimate: the relay
                // serves it on to halls whose lines are not this one, so thinning it here
                // would starve them; its link is a province's uplink, sized for the program.
                if d.active && d.pinned.is_none() {
                    by_conn.entry(d.conn).or_default().push((k, i));
                }
            }
        }
        // A link that receives nothing any more has nothing paused either.
        let emptied: Vec<ParticipantId> = self
            .conns
            .iter_mut()
            .filter(|(k, c)| !c.allocation.paused_told.is_empty() && !by_conn.contains_key(k))
            .map(|(_, c)| {
                c.allocation.paused_told.clear();
                c.participant
            })
            .collect();
        for p in emptied {
            self.notify(p, MediaEvent::VideoPaused { tracks: Vec::new() });
        }
        let mut paused = 0i64;
        for (conn, downtracks) in by_conn {
            paused += self.allocate_link(now, conn, &downtracks);
        }
        self.metrics.video_paused.set(paused);
    }

    /// Returns how many videos of this link are paused.
    fn allocate_link(&mut self, now: Instant, key: usize, downtracks: &[(usize, usize)]) -> i64 {
        let Some(c) = self.conns.get_mut(key) else {
            return 0;
        };
        if !c.connected {
            return 0;
        }
        let snap = c.estimate.as_ref().map(|e| e.snapshot());
        if let Some(s) = snap {
            c.allocation.unshield_if_narrowed(s.target_bps);
        }
        let shield_before = c.allocation.probe_shield(now);
        // What a probe for a paused video proved this tick: the estimator takes the raise with
        // its next feedback, the resume is taken now (a tick late, the raise had often been
        // eaten by a back-off, and the resume waited for another probe: after a dip, 4 s more
        // without video). Other steps wait for the raise, which the queue guard may cap.
        let mut proved = None;
        if let (Some(e), Some(s)) = (&c.estimate, snap) {
            let resuming = c.allocation.prober.resuming();
            if let Some(verdict) = c.allocation.prober.tick(now, s.decreases, e.probe_peak()) {
                if let Some(bps) = c.allocation.on_verdict(now, verdict) {
                    e.raise_to(bps);
                    proved = resuming.then_some(bps);
                }
                match verdict {
                    Verdict::Failed(_) => self.metrics.probes_failed.inc(),
                    _ => self.metrics.probes_proved.inc(),
                }
                tracing::debug!(conn = key, ?verdict, "probe judged");
            }
            // Judged and failed, its back-offs go back to where the probe started, or to what
            // it filled (while it runs, the estimator is left alone: the verdict reads its
            // back-offs). One raise per tick: the estimator keeps the last one asked.
            if let Some(base) = c.allocation.probe_shield(now)
                && !c.allocation.prober.running()
                && s.target_bps < base
            {
                e.raise_to(base);
            }
        }
        let probe_base = c.allocation.probe_shield(now).or(shield_before);
        let a = &mut c.allocation;
        let estimate = match snap {
            Some(s) if s.feedback > 0 && probe_base.is_some() => {
                // The probe's back-off, if any, is not the link's (see above).
                a.seen_decreases = s.decreases;
                Some(s.target_bps.max(probe_base.unwrap_or_default()))
            }
            Some(s) if s.feedback > 0 => {
                a.first_feedback.get_or_insert(now);
                if s.decreases > a.seen_decreases {
                    a.seen_decreases = s.decreases;
                    a.last_decrease = Some(now);
                    let relapse = a.congested_until.is_some_and(|until| {
                        until <= now && now.saturating_duration_since(until) < CONGESTION_HOLD
                    });
                    let hold = match a.hold {
                        Some(h) if relapse => (h * 2).min(MAX_CONGESTION_HOLD),
                        Some(h) if a.congested_until.is_some_and(|until| until > now) => h,
                        _ => CONGESTION_HOLD,
                    };
                    a.hold = Some(hold);
                    a.congested_until = Some(now + hold);
                    a.block_after_back_off(now);
                } else if a
                    .last_decrease
                    .is_some_and(|at| now.saturating_duration_since(at) > CALM_RESETS_BACKOFF)
                {
                    a.backoff = None;
                }
                Some(s.target_bps)
            }
            _ => {
                let since = *a.connected_without_feedback.get_or_insert(now);
                (now.saturating_duration_since(since) >= NO_FEEDBACK_GIVE_UP)
                    .then_some(f64::INFINITY)
            }
        };
        let estimate = estimate.map(|e| proved.map_or(e, |p: f64| e.max(p)));
        let settled = a
            .first_feedback
            .is_some_and(|at| now.saturating_duration_since(at) >= SETTLE);
        // No step while a probe runs or waits for its verdict: the estimate grows with the
        // probe's padding as the line carries it, and a step taken on that growth is the step
        // the probe was there to prove (in virtual time behind 1 Mbit/s, 720p taken half a
        // second into every probe for it, then given back with 100-200 ms of audio delay).
        let may_change = (settled || estimate == Some(f64::INFINITY)) && !a.prober.running();
        let budget_flags = (
            a.congested_until.is_some_and(|at| at > now),
            a.blocked_until.is_none_or(|at| at <= now) && may_change,
            a.temporal_blocked_until.is_none_or(|at| at <= now) && may_change,
        );

        let mut audio_bps = 0.0;
        let mut video: Vec<(usize, usize)> = Vec::new();
        for &(t, i) in downtracks {
            let track = &self.tracks[t];
            match track.kind {
                TrackKind::Audio => {
                    let m = track.layers.first().map_or(0.0, |l| l.meter.bps());
                    audio_bps += if m > 0.0 { m } else { AUDIO_BPS_GUESS };
                }
                TrackKind::Video if track.downtracks[i].bound.is_some() => video.push((t, i)),
                TrackKind::Video => {}
            }
        }
        let infos: Vec<Vec<LayerInfo>> = video
            .iter()
            .map(|&(t, _)| {
                self.tracks[t]
                    .layers
                    .iter()
                    .map(|l| LayerInfo {
                        rank: l.rank,
                        bps: l.meter.bps(),
                        live: l.meter.live(now),
                        seen: l.meter.seen(),
                        temporal: {
                            let layers = l.meter.temporal_layers();
                            let mut up_to = [0.0; 4];
                            for (t, v) in up_to.iter_mut().enumerate() {
                                *v = l.meter.bps_up_to(t as u8);
                            }
                            Temporal { layers, up_to }
                        },
                    })
                    .collect::<Vec<_>>()
            })
            .map(|mut layers| {
                floor_layer_costs(&mut layers);
                layers
            })
            .collect();
        let items: Vec<VideoItem<'_>> = video
            .iter()
            .zip(&infos)
            .map(|(&(t, i), layers)| {
                let d = &self.tracks[t].downtracks[i];
                VideoItem {
                    priority: d.priority,
                    max_rank: d.max_rank,
                    layers,
                    current: d.target.or(d.current),
                    flowing: d.current.is_some() && d.current == d.target,
                    floor: d.floor.floor(now),
                    temporal_cap: d.temporal.target(),
                }
            })
            .collect();
        let budget = Budget {
            estimate: if estimate == Some(f64::INFINITY) {
                Some(f64::MAX)
            } else {
                estimate
            },
            audio_bps,
            congested: budget_flags.0,
            may_step_up: budget_flags.1,
            may_raise_temporal: budget_flags.2,
            step_ceiling: self
                .conns
                .get(key)
                .and_then(|c| c.allocation.prober.step_ceiling()),
            resume_proved: proved.is_some() || estimate.is_some_and(|e| e >= EARNED_ESTIMATE),
            proved_lately: self
                .conns
                .get(key)
                .and_then(|c| c.allocation.proved_lately(now)),
        };
        let chosen = allocate(&budget, &items);
        let caps = temporal_caps(&budget, &items, &chosen);
        let probe = self.plan_probe(now, key, &budget, &items, &video, &chosen, &caps);
        tracing::debug!(
            conn = key,
            estimate = ?budget.estimate.map(|e| e as u64),
            audio = budget.audio_bps as u64,
            congested = budget.congested,
            may_step_up = budget.may_step_up,
            may_raise_temporal = budget.may_raise_temporal,
            ceiling = ?budget.step_ceiling.map(|c| c as u64),
            ?chosen,
            ?caps,
            // Per video, per layer: rank, bits/s, and bits/s up to each temporal layer.
            layers = ?items
                .iter()
                .map(|it| {
                    it.layers
                        .iter()
                        .map(|l| (l.rank, l.bps as u64, l.temporal.up_to.map(|x| x as u64)))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>(),
            "allocation"
        );
        let mut paused: Vec<(ParticipantId, TrackSource)> = Vec::new();
        let mut stepped_up = false;
        let mut temporal_raised = false;
        let mut keyframes: Vec<(usize, u8)> = Vec::new();
        let mut paused_ssrcs: Vec<u32> = Vec::new();
        for ((&(t, i), choice), cap) in video.iter().zip(chosen).zip(caps) {
            let (publisher, source) = (self.tracks[t].publisher, self.tracks[t].source);
            let d = &mut self.tracks[t].downtracks[i];
            // A temporal layer given back: congestion right after blames it (briefly).
            if cap.unwrap_or(u8::MAX) > d.temporal.target().unwrap_or(u8::MAX) {
                temporal_raised = true;
            }
            d.temporal.set_target(cap);
            if choice.is_none() {
                paused.push((publisher, source));
                paused_ssrcs.push(d.ssrc);
                d.frame_open = false;
                d.floor.on_pause(now);
            } else {
                d.floor.on_resume(now);
            }
            if choice == d.target {
                continue;
            }
            if let (Some(new), Some(old)) = (choice, d.target.or(d.current))
                && new > old
            {
                stepped_up = true;
            }
            d.target = choice;
            match choice {
                None => {
                    // Paused: the next resume starts on a keyframe, numbering continued.
                    d.forwarder.reset_source();
                    d.current = None;
                }
                Some(rank) if d.current != Some(rank) => keyframes.push((t, rank)),
                Some(_) => {}
            }
        }
        let count = paused.len() as i64;
        paused.sort_unstable_by_key(|(p, s)| (*p, *s as u8));
        let mut tell = None;
        if let Some(c) = self.conns.get_mut(key) {
            if let (Some((downtrack, (needed, target), media, resume)), Some(e)) =
                (probe, &c.estimate)
            {
                e.start_probe();
                let snapshot = e.snapshot();
                let decreases = snapshot.decreases;
                c.allocation.probe_base = Some(snapshot.target_bps);
                c.allocation.probe_media = Some(media);
                c.allocation
                    .prober
                    .start(now, downtrack, (needed, target), media, decreases);
                if resume {
                    c.allocation.prober.for_resume();
                }
                self.timers.push(std::cmp::Reverse((
                    now + crate::probe::PACE,
                    super::Timer::Pace(key),
                )));
                self.metrics.probes_started.inc();
                tracing::debug!(
                    conn = key,
                    needed = needed as u64,
                    target = target as u64,
                    media = media as u64,
                    "probe started"
                );
            }
            if stepped_up {
                c.allocation.last_step_up = Some(now);
            }
            if temporal_raised {
                c.allocation.last_temporal_raise = Some(now);
            }
            if c.allocation.paused_told != paused {
                tell = Some(c.participant);
                c.allocation.paused_told = paused.clone();
            }
            if let Some(gate) = &c.nacks {
                gate.set_paused(&paused_ssrcs);
            }
        }
        if let Some(subscriber) = tell {
            self.notify(subscriber, MediaEvent::VideoPaused { tracks: paused });
        }
        for (t, rank) in keyframes {
            self.request_keyframe(now, t, rank);
        }
        count
    }
}

impl WorkerCore {
    /// Whether to probe this tick, and how: only when a flowing video could step up but for the
    /// estimate, and stepping is allowed (not backing off after a failed step). Returns the
    /// downtrack to pad (the most important flowing video), what the next step needs and the
    /// rate to probe at, and the media rate already sent.
    #[allow(clippy::too_many_arguments)]
    fn plan_probe(
        &self,
        now: Instant,
        key: usize,
        budget: &Budget,
        items: &[VideoItem<'_>],
        video: &[(usize, usize)],
        chosen: &[Option<u8>],
        caps: &[Option<u8>],
    ) -> Option<(PaddedDowntrack, (f64, f64), f64, bool)> {
        let c = self.conns.get(key)?;
        // Congested or not: "congested" only makes lowest layers fit; a probe stops at the
        // first queue.
        if !budget.may_step_up || !c.allocation.prober.may_start(now) {
            return None;
        }
        if steps_up(items, chosen, caps) {
            return None;
        }
        let needed = needed_estimate(budget, items)?;
        // A flowing video pads between its frames; a paused one whose hold is over pads on its
        // own numbers, so that a probe, not the estimate's blind growth, brings it back.
        let paddable = |i: usize| items[i].flowing || items[i].floor == Floor::Resuming;
        let padded = (0..items.len())
            .filter(|&i| paddable(i) && chosen[i] == items[i].current)
            .min_by_key(|&i| (!items[i].flowing, items[i].priority))?;
        let media: f64 = budget.audio_bps
            + (0..items.len())
                .filter_map(|i| {
                    let rank = chosen[i]?;
                    let l = items[i].layers.iter().find(|l| l.rank == rank)?;
                    Some(l.bps_at(caps[i]))
                })
                .sum::<f64>();
        // With a paused video waiting for its proof, the probe is for it (the allocator brings
        // paused videos back before any step up), and asks for every one waiting (less after
        // a failed one, `Prober::resume_target`), so that a grid comes back in one proof; a
        // probe that fills a narrower line brings back what it carried. Never towards what was proved before the pause: the line is narrow, or it
        // would not have paused (1.5 Mbit/s asked behind 100 kbit/s, the audio behind it).
        let goal = goal_estimate(budget, items);
        let (target, resume) = match resume_all_estimate(budget, items) {
            Some(all) => (c.allocation.prober.resume_target(all, needed, goal), true),
            None => (
                c.allocation
                    .prober
                    .target(now, needed, goal, media, budget.congested),
                false,
            ),
        };
        Some((video[padded], (needed, target), media, resume))
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
    fn temporal_layers_wait_briefly_after_a_back_off_blamed_on_a_simulcast_step() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut a = LinkAllocation {
            last_step_up: Some(t0),
            ..Default::default()
        };
        a.block_after_back_off(ms(1000));
        assert_eq!(a.blocked_until, Some(ms(1000) + INITIAL_BACKOFF));
        assert_eq!(a.temporal_blocked_until, Some(ms(1000) + SETTLE * 2));
        // A temporal layer given back, then congestion: that one waits its retry.
        a.last_temporal_raise = Some(ms(5000));
        a.block_after_back_off(ms(5500));
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
