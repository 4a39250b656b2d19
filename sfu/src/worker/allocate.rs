//! The allocation tick: measure every layer, then choose each subscriber's layers within its
//! bandwidth estimate (policy in [`crate::allocator`]), with the memory stepping needs (was the
//! link congested lately, did the last step up cause it, how long to wait before the next:
//! `link_allocation.rs`), and, where only the estimate stands in the way of a step up, a
//! padding probe first ([`crate::probe`]).

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
    PaddedDowntrack, Verdict, goal_estimate, needed_estimate, resume_all_estimate, steps_up,
};

pub(super) const ALLOCATE_INTERVAL: Duration = Duration::from_millis(500);
/// A connected subscriber that sent no transport-wide feedback for this long does not do
/// congestion control (an old client): it gets the layers the routing allows.
const NO_FEEDBACK_GIVE_UP: Duration = Duration::from_secs(5);
/// Audio assumed per stream until measured.
const AUDIO_BPS_GUESS: f64 = 40_000.0;

use super::link_allocation::SETTLE;

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
                // The probe's back-off, if any, is not the link's (see above); a large drop
                // under it is remembered all the same.
                if a.note_back_off(now, s.decreases > a.seen_decreases, &s) {
                    tracing::debug!(conn = key, before = ?a.prober.before_drop(), "large drop");
                }
                a.seen_decreases = s.decreases;
                Some(s.target_bps.max(probe_base.unwrap_or_default()))
            }
            Some(s) if s.feedback > 0 => {
                a.first_feedback.get_or_insert(now);
                if a.on_feedback(now, &s) {
                    tracing::debug!(conn = key, before = ?a.prober.before_drop(), "large drop");
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
                    before_drop = ?c.allocation.prober.before_drop().map(|b| b as u64),
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
