//! The allocation tick: measure every layer, then choose each subscriber's layers within its
//! bandwidth estimate (policy in [`crate::allocator`]), with the memory a probe-by-stepping
//! scheme needs — was the link congested lately, did the last step up cause it, how long to
//! wait before the next.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Worker;
use crate::allocator::{Budget, LayerInfo, Temporal, VideoItem, allocate, temporal_caps};
use crate::api::{MediaEvent, ParticipantId, TrackKind, TrackSource};

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
/// An estimate this many times the one a step failed at, with no back-off for [`SETTLE`] × 2,
/// is a link that changed (a line back from a dip): the step back-off is forgotten. Measured
/// before this: Chromium behind a line back from 150 kbit/s to 2 Mbit/s sat 13 s on its lowest
/// layer with an estimate of 9 Mbit/s, blocked by the back-off its failed steps in the dip had
/// doubled to two minutes.
const RECOVERED: f64 = 3.0;
/// Feedback seen for this long before the first step up: the estimate needs a few reports.
const SETTLE: Duration = Duration::from_secs(1);
/// A connected subscriber that sent no transport-wide feedback for this long does not do
/// congestion control (an old client): it gets the layers the routing allows.
const NO_FEEDBACK_GIVE_UP: Duration = Duration::from_secs(5);
/// Audio assumed per stream until measured.
const AUDIO_BPS_GUESS: f64 = 40_000.0;

/// What the allocator remembers about one subscriber link.
#[derive(Debug, Default)]
pub(crate) struct LinkAllocation {
    seen_decreases: u64,
    last_decrease: Option<Instant>,
    congested_until: Option<Instant>,
    hold: Option<Duration>,
    last_step_up: Option<Instant>,
    blocked_until: Option<Instant>,
    backoff: Option<Duration>,
    first_feedback: Option<Instant>,
    connected_without_feedback: Option<Instant>,
    /// The estimate right after the last failed step.
    refused_at: Option<f64>,
    /// (reported, missing) of the estimator at the last stats pass.
    pub loss_seen: (u64, u64),
    /// (requested, refused) of the NACK gate at the last stats pass.
    pub nacks_seen: (u64, u64),
    /// The paused videos the subscriber was last told of.
    paused_told: Vec<(ParticipantId, TrackSource)>,
}

impl LinkAllocation {
    /// Lifts the step back-off of a link whose estimate grew to [`RECOVERED`] times the one its
    /// last step failed at, with no back-off since for a while.
    fn forget_backoff_if_recovered(&mut self, now: Instant, estimate: f64) {
        let calm = self
            .last_decrease
            .is_none_or(|at| now.saturating_duration_since(at) >= SETTLE * 2);
        if calm && self.refused_at.is_some_and(|r| estimate >= r * RECOVERED) {
            self.refused_at = None;
            self.backoff = None;
            self.blocked_until = None;
        }
    }
}

impl Worker {
    pub(super) fn allocate_layers(&mut self, now: Instant) {
        // Which downtracks each subscriber connection carries.
        let mut by_conn: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
        for (k, t) in self.tracks.iter_mut() {
            for l in &mut t.layers {
                l.meter.tick(now);
            }
            for (i, d) in t.downtracks.iter().enumerate() {
                if d.active {
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
        let a = &mut c.allocation;
        let estimate = match snap {
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
                    let failed_step = a
                        .last_step_up
                        .is_some_and(|at| now.saturating_duration_since(at) < STEP_UP_TRIAL);
                    let wait = if failed_step {
                        let b = a.backoff.unwrap_or(INITIAL_BACKOFF);
                        a.backoff = Some((b * 2).min(MAX_BACKOFF));
                        a.refused_at = Some(s.target_bps);
                        b
                    } else {
                        SETTLE * 2
                    };
                    a.blocked_until = Some(now + wait);
                } else if a
                    .last_decrease
                    .is_some_and(|at| now.saturating_duration_since(at) > CALM_RESETS_BACKOFF)
                {
                    a.backoff = None;
                } else {
                    a.forget_backoff_if_recovered(now, s.target_bps);
                }
                Some(s.target_bps)
            }
            _ => {
                let since = *a.connected_without_feedback.get_or_insert(now);
                (now.saturating_duration_since(since) >= NO_FEEDBACK_GIVE_UP)
                    .then_some(f64::INFINITY)
            }
        };
        let settled = a
            .first_feedback
            .is_some_and(|at| now.saturating_duration_since(at) >= SETTLE);
        let budget_flags = (
            a.congested_until.is_some_and(|at| at > now),
            a.blocked_until.is_none_or(|at| at <= now)
                && (settled || estimate == Some(f64::INFINITY)),
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
                    .collect()
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
        };
        let chosen = allocate(&budget, &items);
        let caps = temporal_caps(&budget, &items, &chosen);
        tracing::debug!(
            conn = key,
            estimate = ?budget.estimate.map(|e| e as u64),
            audio = budget.audio_bps as u64,
            congested = budget.congested,
            may_step_up = budget.may_step_up,
            ?chosen,
            ?caps,
            "allocation"
        );
        let mut paused: Vec<(ParticipantId, TrackSource)> = Vec::new();
        let mut stepped_up = false;
        let mut keyframes: Vec<(usize, u8)> = Vec::new();
        for ((&(t, i), choice), cap) in video.iter().zip(chosen).zip(caps) {
            let (publisher, source) = (self.tracks[t].publisher, self.tracks[t].source);
            let d = &mut self.tracks[t].downtracks[i];
            // A temporal layer back counts as a step up: congestion right after blames it.
            if cap.unwrap_or(u8::MAX) > d.temporal.target().unwrap_or(u8::MAX) {
                stepped_up = true;
            }
            d.temporal.set_target(cap);
            if choice.is_none() {
                paused.push((publisher, source));
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
            if stepped_up {
                c.allocation.last_step_up = Some(now);
            }
            if c.allocation.paused_told != paused {
                tell = Some(c.participant);
                c.allocation.paused_told = paused.clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_back_from_a_dip_forgets_the_back_off_of_its_failed_steps() {
        let t0 = Instant::now();
        let mut a = LinkAllocation {
            last_decrease: Some(t0),
            refused_at: Some(150e3),
            backoff: Some(MAX_BACKOFF),
            blocked_until: Some(t0 + MAX_BACKOFF),
            ..Default::default()
        };
        // Growing, but not yet three times: still blocked.
        a.forget_backoff_if_recovered(t0 + Duration::from_secs(5), 400e3);
        assert_eq!(a.blocked_until, Some(t0 + MAX_BACKOFF));
        // Three times, but right after a back-off: still blocked.
        a.last_decrease = Some(t0 + Duration::from_secs(5));
        a.forget_backoff_if_recovered(t0 + Duration::from_secs(6), 500e3);
        assert_eq!(a.backoff, Some(MAX_BACKOFF));
        // Three times and calm: the line changed.
        a.forget_backoff_if_recovered(t0 + Duration::from_secs(8), 500e3);
        assert_eq!(
            (a.blocked_until, a.backoff, a.refused_at),
            (None, None, None)
        );
    }
}
