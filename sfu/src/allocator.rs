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
//!    layer fits with headroom. Stepping up is our probe (no padding probes yet), so it is slow
//!    and the worker backs off after a step that brought congestion.

/// Headroom an estimate must leave after a step up: the estimate of an unprobed link is
/// optimistic, and a step that fills the link exactly queues the audio behind it.
pub const STEP_UP_HEADROOM: f64 = 0.15;

/// Share of its lowest layer's bitrate a flowing video needs to keep it while congested.
pub const KEEP_LOWEST_SHARE: f64 = 0.5;

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
}

/// The chosen rank per item (same order as `items`); `None` pauses that video.
pub fn allocate(budget: &Budget, items: &[VideoItem<'_>]) -> Vec<Option<u8>> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| items[i].priority);
    let mut chosen: Vec<Option<u8>> = vec![None; items.len()];
    let Some(estimate) = budget.estimate else {
        // No feedback yet: every video on its lowest layer, until the link says more.
        for (i, item) in items.iter().enumerate() {
            chosen[i] = lowest(item).map(|l| l.rank);
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
        let needed = if items[i].flowing {
            base.bps * KEEP_LOWEST_SHARE
        } else {
            base.bps
        };
        if !budget.congested || needed <= remaining {
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
            .filter(|l| l.bps - base_bps <= remaining)
            .last();
        if let Some(l) = kept {
            remaining -= l.bps - base_bps;
            chosen[i] = Some(l.rank);
        }
    }
    if budget.may_step_up {
        let headroom = estimate * STEP_UP_HEADROOM;
        for &i in &order {
            let Some(at) = chosen[i] else {
                continue;
            };
            if !items[i].flowing || items[i].current != Some(at) {
                continue;
            }
            let Some(next) = candidates(&items[i]).find(|l| l.rank > at) else {
                continue;
            };
            if next.bps - bps_of(&items[i], at) <= remaining - headroom {
                chosen[i] = Some(next.rank);
                break;
            }
        }
    }
    chosen
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
        }
    }

    fn thumb(layers: &[LayerInfo]) -> VideoItem<'_> {
        VideoItem {
            priority: 2,
            max_rank: 0,
            layers,
            current: Some(0),
            flowing: true,
        }
    }

    fn budget(estimate: f64, congested: bool, may_step_up: bool) -> Budget {
        Budget {
            estimate: Some(estimate),
            audio_bps: 40e3,
            congested,
            may_step_up,
        }
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
