//! Which simulcast layer each of one subscriber's video downtracks should carry, given that
//! subscriber's bandwidth estimate. Pure: the worker gathers the inputs at its allocation tick
//! and applies the answer (switching happens later, on the target layer's next keyframe).
//!
//! The policy, in the order the budget is spent:
//! 1. audio, always (it is what a meeting cannot do without);
//! 2. the lowest layer of every video, in priority order (program before thumbnails). These
//!    are cheap and what makes a room usable, so they are granted even beyond the estimate
//!    until the link has shown congestion (one already flowing keeps it through a dip to half
//!    its cost): an estimate only learns a link's capacity by being pushed,
//!    and a chair on fibre must not wait 20 s for its grid of thumbnails. Once congested, a
//!    video whose lowest layer no longer fits is paused (audio-only for that track);
//! 3. whatever is already above its lowest layer keeps as much as still fits in the estimate;
//! 4. then at most one step up, one layer, for the first video in priority order whose next
//!    layer fits with headroom. The estimate grows by itself only to 1.5 times what the link
//!    delivered (`bwe.rs`); a step beyond that is first proved by a padding probe (`probe.rs`),
//!    and the worker still backs off after a step that brought congestion.
//!
//! A video paused for its link comes back only as its [`Floor`] allows (hysteresis in time and
//! rate, see `floor_gate.rs`), so a dip pauses it once instead of blinking.

use crate::floor_gate::{Floor, RESUME_MARGIN};

/// Headroom an estimate must leave after a step up: the estimate of an unprobed link is
/// optimistic, and a step that fills the link exactly queues the audio behind it.
pub const STEP_UP_HEADROOM: f64 = 0.15;

/// Share of its lowest layer's bitrate a flowing video needs to keep it while congested.
pub const KEEP_LOWEST_SHARE: f64 = 0.5;

/// An estimate this high was earned: by itself the estimate grows only to 1.5 times what the
/// link delivered, or freely below [`crate::bwe::FREE_GROWTH_BELOW`]; past twice that, the link
/// carried media to show for it (or a probe raised it), and a paused video may come back on it
/// without a probe of its own ([`Budget::resume_proved`]). A chair whose grid paused under a
/// loaded machine's stalls otherwise waited for resume probes the same stalls failed: 22-60 s
/// at a stop of `chairwalk.mjs` where it was 2-13 s.
pub const EARNED_ESTIMATE: f64 = 2.0 * crate::bwe::FREE_GROWTH_BELOW;

/// A simulcast layer is counted at least this many times the live layer below it. A layer
/// the publisher (re)starts climbs to its rate over seconds (Chromium's 720p after its encoder
/// had dropped it: 8, 120, 218, 295, 354, 432 kbit/s at half-second ticks, with 360p at
/// 370 kbit/s), and taken at what it measured then, a step into it looked nearly free.
pub const MIN_LAYER_RATIO: f64 = 1.5;

/// Raises each layer's rate (and its temporal layers' in proportion) to at least
/// [`MIN_LAYER_RATIO`] times the live layer below it; `layers` by rank ascending.
pub fn floor_layer_costs(layers: &mut [LayerInfo]) {
    let mut below: Option<f64> = None;
    for l in layers.iter_mut() {
        if let Some(floor) = below.map(|b| b * MIN_LAYER_RATIO)
            && l.bps < floor
        {
            let k = if l.bps > 0.0 { floor / l.bps } else { 0.0 };
            for r in &mut l.temporal.up_to {
                *r = if k > 0.0 { *r * k } else { floor };
            }
            l.bps = floor;
        }
        if l.live {
            below = Some(l.bps);
        }
    }
}

/// One simulcast layer as the allocator sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerInfo {
    /// Position in the publisher's declared order, lowest quality first.
    pub rank: u8,
    /// Measured bitrate, bits/s (0 before it was measured).
    pub bps: f64,
    /// Packets arrived recently: a layer the publisher paused cannot be switched to.
    pub live: bool,
    /// Packets ever arrived: a declared layer not seen yet is starting, not stopped.
    pub seen: bool,
    /// Its temporal layers' rates, when it has them.
    pub temporal: Temporal,
}

/// The temporal layers of one simulcast layer, as rungs below its full rate.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Temporal {
    /// How many (0 or 1: nothing to drop).
    pub layers: u8,
    /// Bits/s of temporal layers 0 ..= t, for t below `layers`.
    pub up_to: [f64; 4],
}

impl LayerInfo {
    /// Its rate forwarding temporal layers up to `cap` (`None`: all).
    pub fn bps_at(&self, cap: Option<u8>) -> f64 {
        match cap {
            Some(t) if t + 1 < self.temporal.layers => self.temporal.up_to[usize::from(t)],
            _ => self.bps,
        }
    }

    /// The cap one below `cap` (`None`: all), if there is one.
    fn lower(&self, cap: Option<u8>) -> Option<u8> {
        let top = self.temporal.layers.checked_sub(1)?;
        match cap {
            None | Some(_) if top == 0 => None,
            None => Some(top - 1),
            Some(0) => None,
            Some(t) => Some(t.min(top) - 1),
        }
    }

    /// What it costs without its top temporal layer: the least a simulcast layer above the
    /// lowest is kept for (below that, a lower simulcast layer at its full frame rate is
    /// better than a large picture at a quarter of it).
    fn thinned(&self) -> f64 {
        self.bps_at(self.temporal.layers.checked_sub(2))
    }

    /// What stepping up into this layer from one at `from` bits/s costs. It starts without its
    /// top temporal layer (`temporal_caps`): a smaller step, and a smaller overshoot when the
    /// link cannot carry it. But where that costs no more than the layer it leaves, the step is
    /// judged at its full rate: a larger picture at half the frame rate is no step up, and its
    /// keyframe is still a burst (Chromium behind 400 kbit/s: 720p without its top temporal
    /// layer, ~300 kbit/s, below 360p's 370 kbit/s, taken as a free step; the keyframe froze
    /// the picture 0.9 s).
    fn step_cost(&self, from: f64) -> f64 {
        let thinned = self.thinned();
        if thinned > from {
            thinned - from
        } else {
            self.bps - from
        }
    }
}

/// One video downtrack of the subscriber.
#[derive(Debug, Clone)]
pub struct VideoItem<'a> {
    /// Lower is more important.
    pub priority: u8,
    /// The highest rank the routing allows (0 for a thumbnail).
    pub max_rank: u8,
    /// The published track's layers, by rank ascending.
    pub layers: &'a [LayerInfo],
    /// The layer it is forwarding now (or switching to), if any.
    pub current: Option<u8>,
    /// Forwarding that layer already (not waiting for its first keyframe): only such a video
    /// may step up, so that every stream first decodes on the layer it started on.
    pub flowing: bool,
    /// Whether its link paused it lately, and what that allows now.
    pub floor: Floor,
    /// The highest temporal layer it forwards now (`None`: all).
    pub temporal_cap: Option<u8>,
}

/// The subscriber's link as the worker judges it this tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Bits/s the link carries, by the estimator; `None` without feedback (yet).
    pub estimate: Option<f64>,
    /// Bits/s of the audio it receives.
    pub audio_bps: f64,
    /// The estimator backed off recently: lowest layers must fit too.
    pub congested: bool,
    /// The worker allows a step up this tick (not backing off after a failed one).
    pub may_step_up: bool,
    /// The worker allows giving temporal layers back this tick: a shorter wait than a step's
    /// after a back-off (see `worker/allocate.rs`).
    pub may_raise_temporal: bool,
    /// Steps up (a layer, or temporal layers given back) fit within the lower of the estimate
    /// and this: set below the need of a step a probe failed to prove, until one proves it.
    /// A failed probe's padding raises the delivered rate that bounds the estimate's growth;
    /// behind 400 kbit/s the estimate then grew from 447 to 600 kbit/s and the allocator
    /// stepped into 720p at the verdict (Chromium, `constrained.mjs` (b), in CI).
    pub step_ceiling: Option<f64>,
    /// A probe just proved that a paused video's lowest layer fits, or the estimate was earned
    /// ([`EARNED_ESTIMATE`]): a video past its hold comes back only then, never on an estimate
    /// that grew by itself on a line whose video is paused (in virtual time behind 100 kbit/s,
    /// back 6 s after the pause and paused again).
    pub resume_proved: bool,
    /// A probe proved this much lately: a step up may then go past the next layer, as far as
    /// the proof covers, and before the temporal layers came back (see [`allocate`]).
    pub proved_lately: Option<f64>,
}

impl Budget {
    /// Room for a step up, given what is left of the estimate after what is chosen: nothing
    /// past the step ceiling, and the step-up headroom kept below it. A step is judged as if
    /// the ceiling were the estimate, as `probe::needed_estimate` judges it: with the headroom
    /// on the whole estimate, a step the ceiling held looked allowed to the probe planner, and
    /// neither happened.
    fn step_room(&self, estimate: f64, remaining: f64) -> f64 {
        let step_estimate = self.step_ceiling.map_or(estimate, |c| c.min(estimate));
        remaining - (estimate - step_estimate) - step_estimate * STEP_UP_HEADROOM
    }
}

/// The chosen rank per item (same order as `items`); `None` pauses that video.
pub fn allocate(budget: &Budget, items: &[VideoItem<'_>]) -> Vec<Option<u8>> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| items[i].priority);
    let mut chosen: Vec<Option<u8>> = vec![None; items.len()];
    let Some(estimate) = budget.estimate else {
        // No feedback yet: every video on its lowest layer, until the link says more.
        for (i, item) in items.iter().enumerate() {
            if item.floor != Floor::Held {
                chosen[i] = lowest(item).map(|l| l.rank);
            }
        }
        return chosen;
    };
    let mut remaining = estimate - budget.audio_bps;
    for &i in &order {
        let Some(base) = lowest(&items[i]) else {
            continue;
        };
        // A video already flowing keeps (at least) its lowest layer through a dip to half that
        // layer's cost: the dip after a failed step up is brief, and a paused video restarts
        // only on a keyframe.
        let (needed, must_fit) = match items[i].floor {
            Floor::Held => continue,
            // Coming back is a step up: not while steps wait (a probe running, a back-off), and
            // only on a probe's proof or an earned estimate.
            Floor::Resuming if !budget.may_step_up || !budget.resume_proved => continue,
            // Back from a pause only with room to spare, congested or not, for its base
            // temporal layer: it restarts there (`temporal_caps`).
            Floor::Resuming => (base.bps_at(Some(0)) * RESUME_MARGIN, true),
            // Its base temporal layer, or half of it without temporal layers.
            Floor::Open if items[i].flowing => (
                base.bps_at(Some(0)).min(base.bps * KEEP_LOWEST_SHARE),
                budget.congested,
            ),
            Floor::Open => (base.bps, budget.congested),
        };
        if !must_fit || needed <= remaining {
            chosen[i] = Some(base.rank);
            remaining -= base.bps;
        }
    }
    // Keep what is already above the lowest layer, as high as still fits.
    for &i in &order {
        let (Some(base_rank), Some(current)) = (chosen[i], items[i].current) else {
            continue;
        };
        let base_bps = bps_of(&items[i], base_rank);
        let kept = candidates(&items[i])
            .filter(|l| l.rank > base_rank && l.rank <= current)
            .filter(|l| l.thinned() - base_bps <= remaining)
            .last();
        if let Some(l) = kept {
            remaining -= l.bps - base_bps;
            chosen[i] = Some(l.rank);
        }
    }
    if budget.may_step_up {
        let room = budget.step_room(estimate, remaining);
        for &i in &order {
            let Some(at) = chosen[i] else {
                continue;
            };
            let from = bps_of(&items[i], at);
            // Past a proof, as high as it covers: a line back from a dip that a probe showed
            // carries 1.3 Mbit/s came back to 720p one layer a second, each waiting for the
            // last and for its temporal layers (virtual time, `flap`: 720p 7 s after the line).
            // Otherwise one layer, and a video without its top temporal layers gets them back
            // first (`temporal_caps`).
            let jump = budget.proved_lately.is_some_and(|p| p >= estimate * 0.9);
            if !items[i].flowing
                || items[i].current != Some(at)
                || (items[i].temporal_cap.is_some() && !jump)
            {
                continue;
            }
            let next = if jump {
                candidates(&items[i])
                    .filter(|l| l.rank > at && l.step_cost(from) <= room)
                    .last()
            } else {
                candidates(&items[i])
                    .find(|l| l.rank > at)
                    .filter(|l| l.step_cost(from) <= room)
            };
            if let Some(next) = next {
                chosen[i] = Some(next.rank);
                break;
            }
        }
    }
    chosen
}

/// The highest temporal layer each video forwards (same order as `items`; `None`: all), given
/// the layers [`allocate`] chose: while they do not fit the estimate, the least important video
/// sheds its top temporal layer (immediate, no keyframe); with room to spare (the step-up
/// headroom) and a step up allowed, the most important capped video gets one layer back.
pub fn temporal_caps(
    budget: &Budget,
    items: &[VideoItem<'_>],
    chosen: &[Option<u8>],
) -> Vec<Option<u8>> {
    let layer =
        |i: usize| chosen[i].and_then(|rank| items[i].layers.iter().find(|l| l.rank == rank));
    // Where a video starts on a new layer: back from a pause on its base temporal layer; a
    // step up without the new layer's top temporal layer; otherwise (a start, a step down) at
    // its full rate. The cap then moves as the estimate allows.
    let mut caps: Vec<Option<u8>> = (0..items.len())
        .map(|i| {
            let l = layer(i).filter(|l| l.temporal.layers > 1)?;
            match (items[i].current, chosen[i]) {
                (current, chosen) if current == chosen => {
                    items[i].temporal_cap.filter(|t| t + 1 < l.temporal.layers)
                }
                _ if items[i].floor == Floor::Resuming => Some(0),
                (Some(from), Some(to)) if to > from => l.lower(None),
                _ => None,
            }
        })
        .collect();
    let Some(estimate) = budget.estimate.filter(|e| e.is_finite() && *e < f64::MAX) else {
        return vec![None; items.len()];
    };
    let spent = |caps: &[Option<u8>]| -> f64 {
        (0..items.len())
            .filter_map(|i| layer(i).map(|l| l.bps_at(caps[i])))
            .sum::<f64>()
    };
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| items[i].priority);
    let mut remaining = estimate - budget.audio_bps - spent(&caps);
    // Shed, least important first, each as far as it takes.
    for &i in order.iter().rev() {
        let Some(l) = layer(i) else { continue };
        while remaining < 0.0 {
            let Some(lower) = l.lower(caps[i]) else { break };
            remaining += l.bps_at(caps[i]) - l.bps_at(Some(lower));
            caps[i] = Some(lower);
        }
    }
    if remaining >= 0.0 && budget.may_raise_temporal {
        let room = budget.step_room(estimate, remaining);
        for &i in &order {
            let (Some(l), Some(cap)) = (layer(i), caps[i]) else {
                continue;
            };
            // Not in the tick it switched, resumed or started: first let it flow.
            if !items[i].flowing || items[i].current != chosen[i] {
                continue;
            }
            let up = if cap + 2 >= l.temporal.layers {
                None
            } else {
                Some(cap + 1)
            };
            if l.bps_at(up) - l.bps_at(Some(cap)) <= room {
                caps[i] = up;
                break;
            }
        }
    }
    caps
}

/// Live layers the routing allows, by rank ascending; when none is allowed but some are live
/// and the allowed ones have stopped (a thumbnail of a publisher whose lowest layer stopped),
/// the lowest live one.
fn candidates<'a>(item: &'a VideoItem<'_>) -> impl Iterator<Item = &'a LayerInfo> + 'a {
    let allowed = |l: &LayerInfo| l.rank <= item.max_rank;
    let settled = item
        .layers
        .iter()
        .any(|l| allowed(l) && (l.live || !l.seen));
    let fallback = if settled {
        None
    } else {
        item.layers.iter().find(|l| l.live).map(|l| l.rank)
    };
    item.layers
        .iter()
        .filter(move |l| l.live && (allowed(l) || Some(l.rank) == fallback))
}

/// Where a video starts or falls back to: its lowest live allowed layer; else an allowed layer
/// that has not started yet (wait for it rather than take a higher one); else the fallback of
/// [`candidates`]; else, with nothing live at all, its lowest declared layer.
fn lowest<'a>(item: &'a VideoItem<'_>) -> Option<&'a LayerInfo> {
    let allowed = |l: &&LayerInfo| l.rank <= item.max_rank;
    candidates(item)
        .next()
        .or_else(|| item.layers.iter().filter(allowed).find(|l| !l.seen))
        .or_else(|| {
            item.layers
                .first()
                .filter(|_| !item.layers.iter().any(|l| l.live))
        })
}

fn bps_of(item: &VideoItem<'_>, rank: u8) -> f64 {
    item.layers
        .iter()
        .find(|l| l.rank == rank)
        .map_or(0.0, |l| l.bps)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// q/h/f at 150 k, 500 k and 1.2 M.
    fn qhf() -> Vec<LayerInfo> {
        [150e3, 500e3, 1200e3]
            .iter()
            .enumerate()
            .map(|(i, &bps)| LayerInfo {
                rank: i as u8,
                bps,
                live: true,
                seen: true,
                temporal: Temporal::default(),
            })
            .collect()
    }

    /// q/h/f with three temporal layers each, 40 / 20 / 40 % of the layer.
    fn qhf_temporal() -> Vec<LayerInfo> {
        qhf()
            .into_iter()
            .map(|l| LayerInfo {
                temporal: Temporal {
                    layers: 3,
                    up_to: [0.4 * l.bps, 0.6 * l.bps, l.bps, 0.0],
                },
                ..l
            })
            .collect()
    }

    fn program(layers: &[LayerInfo], current: Option<u8>) -> VideoItem<'_> {
        VideoItem {
            priority: 0,
            max_rank: u8::MAX,
            layers,
            current,
            flowing: current.is_some(),
            floor: Floor::Open,
            temporal_cap: None,
        }
    }

    fn thumb(layers: &[LayerInfo]) -> VideoItem<'_> {
        VideoItem {
            priority: 2,
            max_rank: 0,
            layers,
            current: Some(0),
            flowing: true,
            floor: Floor::Open,
            temporal_cap: None,
        }
    }

    fn budget(estimate: f64, congested: bool, may_step_up: bool) -> Budget {
        Budget {
            estimate: Some(estimate),
            audio_bps: 40e3,
            congested,
            may_step_up,
            may_raise_temporal: may_step_up,
            step_ceiling: None,
            resume_proved: true,
            proved_lately: None,
        }
    }

    /// The layer and temporal cap one video gets.
    fn layer_and_cap(b: &Budget, item: &VideoItem<'_>) -> (Option<u8>, Option<u8>) {
        let items = std::slice::from_ref(item);
        let chosen = allocate(b, items);
        (chosen[0], temporal_caps(b, items, &chosen)[0])
    }

    #[test]
    fn without_feedback_every_video_starts_on_its_lowest_layer() {
        let l = qhf();
        let b = Budget {
            estimate: None,
            ..budget(0.0, false, true)
        };
        assert_eq!(
            allocate(&b, &[program(&l, None), thumb(&l)]),
            vec![Some(0), Some(0)]
        );
    }

    #[test]
    fn steps_up_one_layer_at_a_time_and_only_with_headroom() {
        let l = qhf();
        // 40 k audio + 150 k base leaves 810 k; h costs 350 k more, headroom 150 k: fits.
        let b = budget(1e6, false, true);
        assert_eq!(allocate(&b, &[program(&l, Some(0))]), vec![Some(1)]);
        // From h, f costs 700 k more; 1 M − 40 k − 500 k = 460 k: no.
        assert_eq!(allocate(&b, &[program(&l, Some(1))]), vec![Some(1)]);
        // 1.6 M: 1.6 M − 40 k − 500 k = 1.06 M ≥ 700 k + 240 k headroom.
        assert_eq!(
            allocate(&budget(1.6e6, false, true), &[program(&l, Some(1))]),
            vec![Some(2)]
        );
    }

    #[test]
    fn a_stream_waiting_for_its_first_keyframe_does_not_step_up() {
        let l = qhf();
        let waiting = VideoItem {
            flowing: false,
            ..program(&l, Some(0))
        };
        assert_eq!(
            allocate(&budget(10e6, false, true), &[waiting]),
            vec![Some(0)]
        );
    }

    #[test]
    fn no_step_up_while_backing_off_but_the_current_layer_is_kept() {
        let l = qhf();
        let b = budget(3e6, false, false);
        assert_eq!(allocate(&b, &[program(&l, Some(1))]), vec![Some(1)]);
        assert_eq!(allocate(&b, &[program(&l, Some(0))]), vec![Some(0)]);
    }

    #[test]
    fn a_falling_estimate_brings_the_layer_down_without_headroom_games() {
        let l = qhf();
        // On f, estimate 700 k: f does not fit, h (500 k) does: keep h.
        assert_eq!(
            allocate(&budget(700e3, true, false), &[program(&l, Some(2))]),
            vec![Some(1)]
        );
        // 300 k: only q.
        assert_eq!(
            allocate(&budget(300e3, true, false), &[program(&l, Some(2))]),
            vec![Some(0)]
        );
    }

    #[test]
    fn congestion_pauses_the_least_important_lowest_layers_first() {
        let l = qhf();
        let items = [thumb(&l), program(&l, Some(0)), thumb(&l)];
        // 40 k audio + 150 k program + one 150 k thumbnail fit in 350 k, the second does not.
        assert_eq!(
            allocate(&budget(350e3, true, true), &items),
            vec![Some(0), Some(0), None]
        );
        // Not congested: lowest layers are granted beyond the estimate.
        assert_eq!(
            allocate(&budget(350e3, false, false), &items),
            vec![Some(0), Some(0), Some(0)]
        );
        // Below even audio + program's q: everything video pauses.
        assert_eq!(
            allocate(&budget(100e3, true, true), &items),
            vec![None, None, None]
        );
    }

    #[test]
    fn a_flowing_lowest_layer_survives_a_dip_a_waiting_one_does_not_start() {
        let l = qhf();
        // 40 k audio; 150 k q; estimate 140 k leaves 100 k: above half of q, below all of it.
        let flowing = program(&l, Some(0));
        assert_eq!(
            allocate(&budget(140e3, true, false), &[flowing]),
            vec![Some(0)]
        );
        let waiting = VideoItem {
            flowing: false,
            ..program(&l, Some(0))
        };
        assert_eq!(
            allocate(&budget(140e3, true, false), &[waiting]),
            vec![None]
        );
        // Far below: paused even when flowing.
        assert_eq!(
            allocate(&budget(90e3, true, false), &[program(&l, Some(0))]),
            vec![None]
        );
    }

    #[test]
    fn a_paused_video_stays_paused_in_its_hold_and_returns_only_with_margin() {
        let l = qhf();
        let paused = |floor| VideoItem {
            flowing: false,
            floor,
            ..program(&l, None)
        };
        // Held: not even a fibre estimate, nor the absence of congestion, brings it back.
        assert_eq!(
            allocate(&budget(50e6, false, true), &[paused(Floor::Held)]),
            vec![None]
        );
        let no_feedback = Budget {
            estimate: None,
            ..budget(0.0, false, true)
        };
        assert_eq!(allocate(&no_feedback, &[paused(Floor::Held)]), vec![None]);
        // Hold over: 40 k audio + 150 k q fits in 200 k, but not with 50 % to spare; lowest
        // layers are granted beyond the estimate without congestion, but not to this one.
        assert_eq!(
            allocate(&budget(200e3, false, true), &[paused(Floor::Resuming)]),
            vec![None]
        );
        assert_eq!(
            allocate(&budget(200e3, false, true), &[paused(Floor::Open)]),
            vec![Some(0)]
        );
        assert_eq!(
            allocate(&budget(270e3, true, true), &[paused(Floor::Resuming)]),
            vec![Some(0)]
        );
        assert_eq!(
            allocate(&budget(270e3, true, false), &[paused(Floor::Resuming)]),
            vec![None],
            "not while steps wait"
        );
        let unproved = Budget {
            resume_proved: false,
            ..budget(270e3, true, true)
        };
        assert_eq!(
            allocate(&unproved, &[paused(Floor::Resuming)]),
            vec![None],
            "not on an estimate nothing proved"
        );
    }

    #[test]
    fn the_top_temporal_layer_goes_first_then_the_simulcast_layer() {
        let l = qhf_temporal();
        let on_f = program(&l, Some(2));
        // 1 M: f (1.2 M) does not fit, f without its top temporal layer (720 k) does: keep f,
        // shed to TID 1 — no keyframe, no smaller picture.
        let b = budget(1e6, true, false);
        let chosen = allocate(&b, std::slice::from_ref(&on_f));
        assert_eq!(chosen, vec![Some(2)]);
        assert_eq!(
            temporal_caps(&b, std::slice::from_ref(&on_f), &chosen),
            vec![Some(1)]
        );
        // 600 k: not even f at TID 1: down to h, at its full rate (500 k fits).
        let b = budget(600e3, true, false);
        let chosen = allocate(&b, std::slice::from_ref(&on_f));
        assert_eq!(chosen, vec![Some(1)]);
        assert_eq!(temporal_caps(&b, &[on_f], &chosen), vec![None]);
    }

    #[test]
    fn below_the_lowest_layer_its_temporal_layers_are_the_last_rungs_before_a_pause() {
        let l = qhf_temporal();
        let on_q = program(&l, Some(0));
        // 40 k audio; q is 150 k: at 140 k only TID 0 and 1 (90 k) fit; at 110 k only TID 0.
        for (estimate, cap) in [(200e3, None), (140e3, Some(1)), (110e3, Some(0))] {
            let b = budget(estimate, true, false);
            let chosen = allocate(&b, std::slice::from_ref(&on_q));
            assert_eq!(chosen, vec![Some(0)], "{estimate}");
            assert_eq!(
                temporal_caps(&b, std::slice::from_ref(&on_q), &chosen),
                vec![cap],
                "{estimate}"
            );
        }
        // Below q's base temporal layer (60 k): paused.
        let b = budget(90e3, true, false);
        assert_eq!(allocate(&b, &[on_q]), vec![None]);
    }

    #[test]
    fn temporal_layers_come_back_one_at_a_time_with_headroom_least_important_shed_first() {
        let l = qhf_temporal();
        let capped = |cap| VideoItem {
            temporal_cap: cap,
            ..program(&l, Some(1))
        };
        // On h at TID 0 (200 k); 1 M leaves plenty: one layer back per tick.
        let b = budget(1e6, false, true);
        let items = [capped(Some(0))];
        assert_eq!(temporal_caps(&b, &items, &[Some(1)]), vec![Some(1)]);
        let items = [capped(Some(1))];
        assert_eq!(temporal_caps(&b, &items, &[Some(1)]), vec![None]);
        // No step up allowed: the cap stays.
        let b = budget(1e6, false, false);
        assert_eq!(temporal_caps(&b, &items, &[Some(1)]), vec![Some(1)]);
        // While capped, no spatial step up.
        assert_eq!(allocate(&budget(5e6, false, true), &items), vec![Some(1)]);
        // Two programs on h, 800 k: 40 k + 2 × 500 k is 240 k too much; the less important one
        // sheds down to TID 0 (saves 300 k), the more important keeps all.
        let first = VideoItem {
            priority: 0,
            ..program(&l, Some(1))
        };
        let second = VideoItem {
            priority: 1,
            ..program(&l, Some(1))
        };
        let b = budget(800e3, true, false);
        assert_eq!(
            temporal_caps(&b, &[second, first], &[Some(1), Some(1)]),
            vec![Some(0), None]
        );
    }

    #[test]
    fn a_resume_starts_on_the_base_temporal_layer_and_a_step_up_without_the_top_one() {
        let l = qhf_temporal();
        let resuming = VideoItem {
            flowing: false,
            floor: Floor::Resuming,
            ..program(&l, None)
        };
        // q's base temporal layer is 60 k: 40 k audio + 1.5 × 60 k fits in 140 k.
        let b = budget(140e3, true, true);
        let chosen = allocate(&b, std::slice::from_ref(&resuming));
        assert_eq!(chosen, vec![Some(0)]);
        assert_eq!(temporal_caps(&b, &[resuming], &chosen), vec![Some(0)]);
        // From q to h at 700 k: h without its top temporal layer (300 k) is the step.
        let on_q = program(&l, Some(0));
        assert_eq!(
            layer_and_cap(&budget(700e3, false, true), &on_q),
            (Some(1), Some(1))
        );
    }

    #[test]
    fn past_a_fresh_proof_a_step_goes_as_high_as_it_covers() {
        let l = qhf_temporal();
        // Resumed on q's base temporal layer after a dip; the line is back.
        let on_q = VideoItem {
            temporal_cap: Some(0),
            ..program(&l, Some(0))
        };
        let wide = budget(2e6, false, true);
        // On the estimate alone: q's temporal layers first, one layer at a time after.
        assert_eq!(allocate(&wide, std::slice::from_ref(&on_q)), vec![Some(0)]);
        // A probe proved 2 M: straight to f (without its top temporal layer).
        let proved = Budget {
            proved_lately: Some(2e6),
            ..wide
        };
        let chosen = allocate(&proved, std::slice::from_ref(&on_q));
        assert_eq!(chosen, vec![Some(2)]);
        assert_eq!(
            temporal_caps(&proved, std::slice::from_ref(&on_q), &chosen),
            vec![Some(1)]
        );
        // A proof well below the estimate covers nothing past it: one step.
        let short = Budget {
            proved_lately: Some(700e3),
            ..wide
        };
        assert_eq!(allocate(&short, std::slice::from_ref(&on_q)), vec![Some(0)]);
        // Nor past the room: h, not f, at 800 k (f without its top temporal layer is 720 k).
        let narrow = Budget {
            estimate: Some(800e3),
            proved_lately: Some(800e3),
            ..wide
        };
        assert_eq!(
            allocate(&narrow, std::slice::from_ref(&on_q)),
            vec![Some(1)]
        );
    }

    #[test]
    fn a_step_into_a_layer_cheaper_thinned_than_the_current_one_is_judged_at_its_full_rate() {
        // Chromium's 360p at 370 k; its 720p at 660 k, 300 k without the top temporal layer.
        let mut l = qhf_temporal();
        l[1].bps = 370e3;
        l[1].temporal.up_to = [110e3, 200e3, 370e3, 0.0];
        l[2].bps = 660e3;
        l[2].temporal.up_to = [190e3, 300e3, 660e3, 0.0];
        let on_h = program(&l, Some(1));
        // 560 k: 40 k audio + 370 k leaves 150 k; thinned 720p "costs" −70 k, full 290 k.
        assert_eq!(
            allocate(&budget(560e3, false, true), std::slice::from_ref(&on_h)),
            vec![Some(1)]
        );
        // 1.3 M: 890 k left, 290 k + 195 k headroom fits; it starts thinned.
        assert_eq!(
            layer_and_cap(&budget(1.3e6, false, true), &on_h),
            (Some(2), Some(1))
        );
    }

    #[test]
    fn a_layer_that_just_started_costs_at_least_one_and_a_half_times_the_one_below() {
        let mut l = qhf_temporal();
        // 720p restarting: 8 k measured, its temporal layers in proportion.
        l[2].bps = 8e3;
        l[2].temporal.up_to = [2e3, 4e3, 8e3, 0.0];
        floor_layer_costs(&mut l);
        assert_eq!(l[2].bps, 750e3);
        assert_eq!(l[2].temporal.up_to[..3], [187.5e3, 375e3, 750e3]);
        // Already above the floor, and q and h: unchanged.
        assert_eq!(l[0].bps, 150e3);
        assert_eq!(l[1].bps, 500e3);
        let mut l = qhf();
        floor_layer_costs(&mut l);
        assert_eq!(l, qhf());
        // A step from h at 850 k (310 k left): the restarting f measured 8 k looks free;
        // counted 750 k, it costs 250 k, past the room the 127 k headroom leaves.
        let mut l = qhf_temporal();
        l[2].bps = 8e3;
        l[2].temporal.up_to = [2e3, 4e3, 8e3, 0.0];
        let b = budget(850e3, false, true);
        assert_eq!(allocate(&b, &[program(&l, Some(1))]), vec![Some(2)]);
        floor_layer_costs(&mut l);
        assert_eq!(allocate(&b, &[program(&l, Some(1))]), vec![Some(1)]);
    }

    #[test]
    fn a_thumbnail_never_leaves_the_lowest_layer() {
        let l = qhf();
        assert_eq!(
            allocate(&budget(50e6, false, true), &[thumb(&l)]),
            vec![Some(0)]
        );
    }

    #[test]
    fn paused_layers_are_skipped() {
        let mut l = qhf();
        l[0].live = false;
        // A thumbnail of a publisher whose q stopped gets the lowest live layer.
        assert_eq!(
            allocate(&budget(50e6, false, true), &[thumb(&l)]),
            vec![Some(1)]
        );
        // A program at q whose q stopped goes to h (its new lowest), not nowhere.
        assert_eq!(
            allocate(&budget(2e6, false, false), &[program(&l, Some(0))]),
            vec![Some(1)]
        );
        let mut l = qhf();
        l[2].live = false;
        assert_eq!(
            allocate(&budget(50e6, false, true), &[program(&l, Some(1))]),
            vec![Some(1)],
            "f is not sent by the publisher: no step to it"
        );
    }

    #[test]
    fn a_thumbnail_waits_for_a_lowest_layer_that_has_not_started_yet() {
        let mut l = qhf();
        l[0].live = false;
        l[0].seen = false;
        l[0].bps = 0.0;
        assert_eq!(
            allocate(&budget(50e6, false, true), &[thumb(&l)]),
            vec![Some(0)],
            "q is declared and starting: no detour through h"
        );
        assert_eq!(
            allocate(&budget(50e6, false, false), &[program(&l, None)]),
            vec![Some(1)],
            "a program stream starts on the lowest layer that flows"
        );
    }

    #[test]
    fn a_single_layer_track_is_simply_on_or_off() {
        let l = [LayerInfo {
            rank: 0,
            bps: 800e3,
            live: true,
            seen: true,
            temporal: Temporal::default(),
        }];
        assert_eq!(
            allocate(&budget(2e6, true, true), &[program(&l, Some(0))]),
            vec![Some(0)]
        );
        assert_eq!(
            allocate(&budget(300e3, true, true), &[program(&l, Some(0))]),
            vec![None]
        );
    }

    #[test]
    fn the_step_up_goes_to_the_most_important_video_first() {
        let l = qhf();
        let screen = VideoItem {
            priority: 0,
            ..program(&l, Some(0))
        };
        let camera = VideoItem {
            priority: 1,
            ..program(&l, Some(0))
        };
        assert_eq!(
            allocate(&budget(2e6, false, true), &[camera, screen]),
            vec![Some(0), Some(1)]
        );
    }

    #[test]
    fn a_track_with_nothing_live_yet_keeps_its_lowest_declared_layer() {
        let mut l = qhf();
        for x in &mut l {
            x.live = false;
        }
        assert_eq!(
            allocate(&budget(2e6, false, true), &[program(&l, None)]),
            vec![Some(0)]
        );
    }
}
