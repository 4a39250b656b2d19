//! What issue 11's line targets are read from, kept pure so it is unit-tested: the layer a
//! point is on each second, when a line's rate dips and comes back, how long the top layer and
//! the audio delay take to return after it, and whether video holds the lowest layer (or
//! pauses) steadily.
//!
//! The definitions follow `tests/browser/constrained.mjs`, so the loadtest and Chromium are read
//! the same way: the audio delay *floor* is the median second before the line dips, and the
//! delay is *back* from the first second after the recovery from which every later second is
//! within [`DELAY_MARGIN_MS`] of it.

use std::time::Duration;

use crate::link::LinkParams;

/// How far above its floor the audio delay may stay and still count as back.
pub const DELAY_MARGIN_MS: f64 = 30.0;

/// Seconds after a change of the line before the video counts as *steady* (the first seconds
/// measure how fast the server reacts, not what the line gives).
pub const STEADY_AFTER_S: f64 = 5.0;

/// The layer carrying most of each second's video, from per-layer kbit/s series (lowest layer
/// first, one value per second); `None` for a second without video (paused, or not yet).
pub fn dominant_layer(per_layer_kbps: &[&[f64]], seconds: usize) -> Vec<Option<usize>> {
    (0..seconds)
        .map(|i| {
            per_layer_kbps
                .iter()
                .enumerate()
                .map(|(l, s)| (l, s.get(i).copied().unwrap_or(0.0)))
                .filter(|(_, k)| *k > 0.0)
                .max_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
                .map(|(l, _)| l)
        })
        .collect()
}

/// When a line's rate first drops and when it last comes back up (since the line started):
/// `flap`'s dip. `None` for a line without such a schedule.
pub fn dip(params: &LinkParams) -> Option<(Duration, Duration)> {
    let mut rate = params.rate_bps?;
    let (mut down, mut up) = (None, None);
    for step in &params.schedule {
        if step.rate_bps < rate && down.is_none() {
            down = Some(step.at);
        }
        if step.rate_bps > rate && down.is_some() {
            up = Some(step.at);
        }
        rate = step.rate_bps;
    }
    down.zip(up)
}

/// The audio delay's floor and how long after `recovery_s` it is back within
/// [`DELAY_MARGIN_MS`] of it. `series`: per-second mean delay (ms) since the epoch (`None`: no
/// audio that second); the floor is the median of the seconds in `clean` (before the dip);
/// seconds from `recovery_s` to `end_s` (exclusive) are searched. The answer is measured from
/// the recovery to the start of the first second from which every later one is within the
/// margin (0 when the delay never left it); `None` when it never settles before the end.
pub fn back_to_floor(
    series: &[Option<f64>],
    clean: std::ops::Range<usize>,
    recovery_s: f64,
    end_s: usize,
) -> (Option<f64>, Option<f64>) {
    let mut before: Vec<f64> = series
        .get(clean.start.min(series.len())..clean.end.min(series.len()))
        .unwrap_or_default()
        .iter()
        .flatten()
        .copied()
        .collect();
    if before.is_empty() {
        return (None, None);
    }
    before.sort_by(f64::total_cmp);
    let floor = before[before.len() / 2];
    // The second the recovery falls in is the first one searched.
    let first = recovery_s.max(0.0).floor() as usize;
    let end = end_s.min(series.len());
    if first >= end {
        return (Some(floor), None);
    }
    let ok = |s: &Option<f64>| s.is_none_or(|d| d <= floor + DELAY_MARGIN_MS);
    // The earliest second from which all later ones are within the margin.
    let mut settled = None;
    for i in (first..end).rev() {
        if ok(&series[i]) {
            settled = Some(i);
        } else {
            break;
        }
    }
    let back = settled.map(|i| (i as f64 - recovery_s).max(0.0));
    (Some(floor), back)
}

/// Share of the seconds in `from..to` spent on the lowest layer or without video (paused):
/// `bad`'s target, "video at the lowest layer or paused, steadily".
pub fn lowest_or_paused_share(layers: &[Option<usize>], from: usize, to: usize) -> Option<f64> {
    let to = to.min(layers.len());
    if from >= to {
        return None;
    }
    let n = layers[from..to]
        .iter()
        .filter(|l| l.is_none_or(|l| l == 0))
        .count();
    Some(n as f64 / (to - from) as f64)
}

/// How many of `events` happened within `within` after one of `causes` (at or after it):
/// the points' audio gaps that followed a send gap of the chair's own.
pub fn after_any(
    events: impl Iterator<Item = std::time::Instant>,
    causes: &[std::time::Instant],
    within: Duration,
) -> u64 {
    events
        .filter(|e| {
            causes
                .iter()
                .any(|c| *e >= *c && e.saturating_duration_since(*c) <= within)
        })
        .count() as u64
}

/// An audio gap that ends this soon after a keyframe began arriving followed it: the keyframe's
/// burst (several times a frame) queued on the line ahead of the audio.
pub const AFTER_KEYFRAME: Duration = Duration::from_millis(500);

/// How far apart two points' gaps may end and still be one event.
pub const COMMON_WITHIN_S: f64 = 0.25;

/// Per point, how many of its events (times in seconds) were shared by at least half of the
/// other points (one of theirs within [`COMMON_WITHIN_S`]), and at least two of them: each
/// point has its own line, so an audio gap most points see at once is the machine's (the
/// generator or the in-process server stalled), not a line's.
pub fn common_events(per_point: &[Vec<f64>]) -> Vec<u64> {
    let others = per_point.len().saturating_sub(1);
    let need = (others.div_ceil(2)).max(2);
    per_point
        .iter()
        .enumerate()
        .map(|(i, mine)| {
            mine.iter()
                .filter(|t| {
                    let shared = per_point
                        .iter()
                        .enumerate()
                        .filter(|(j, theirs)| {
                            *j != i && theirs.iter().any(|u| (*u - **t).abs() <= COMMON_WITHIN_S)
                        })
                        .count();
                    others >= 2 && shared >= need
                })
                .count() as u64
        })
        .collect()
}

/// A per-second layer series as text: the layer's label, `-` for a second without video.
/// Whether nothing came in the second holding `at_s` (seconds since the epoch).
pub fn paused_at(layers: &[Option<usize>], at_s: f64) -> bool {
    layers.get(at_s as usize).copied().flatten().is_none()
}

/// Seconds from `from_s` to the first whole second after it, before `to_s`, on `layer`.
pub fn first_second_on(
    layers: &[Option<usize>],
    layer: usize,
    from_s: f64,
    to_s: f64,
) -> Option<f64> {
    (from_s.ceil() as usize..to_s.floor() as usize)
        .find(|&i| layers.get(i).copied().flatten() == Some(layer))
        .map(|i| i as f64 - from_s)
}

pub fn layer_labels(layers: &[Option<usize>], label: impl Fn(usize) -> String) -> Vec<String> {
    layers
        .iter()
        .map(|l| l.map_or_else(|| "-".to_owned(), &label))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dominant_layer_of_each_second() {
        let q = [100.0, 50.0, 0.0, 0.0, 0.0];
        let h = [0.0, 400.0, 0.0, 10.0];
        let f = [0.0, 0.0, 0.0, 900.0];
        let l = dominant_layer(&[&q, &h, &f], 5);
        assert_eq!(l, vec![Some(0), Some(1), None, Some(2), None]);
        assert_eq!(
            layer_labels(&l, |i| ["q", "h", "f"][i].to_owned()),
            ["q", "h", "-", "f", "-"]
        );
    }

    #[test]
    fn the_flap_dip_is_read_from_the_schedule() {
        let flap = LinkParams::profile("flap").unwrap();
        assert_eq!(
            dip(&flap),
            Some((Duration::from_secs(10), Duration::from_secs(30)))
        );
        assert_eq!(dip(&LinkParams::profile("adsl").unwrap()), None);
        assert_eq!(dip(&LinkParams::default()), None);
    }

    #[test]
    fn the_audio_delay_is_back_once_it_stays_near_its_floor() {
        // Floor 10 ms (median of 8, 10, 12); the dip builds 300 ms; recovery at 5.5 s.
        let s: Vec<Option<f64>> = [8.0, 10.0, 12.0, 300.0, 250.0, 200.0, 90.0, 45.0, 35.0, 20.0]
            .into_iter()
            .map(Some)
            .collect();
        let (floor, back) = back_to_floor(&s, 0..3, 5.5, s.len());
        assert_eq!(floor, Some(10.0));
        // Second 7 (45 ms) is over 10 + 30; from second 8 on all are within: 8 - 5.5.
        assert_eq!(back, Some(2.5));
        // A blip over the margin later restarts the count: never settled before the end.
        let mut late = s.clone();
        late.push(Some(100.0));
        assert_eq!(back_to_floor(&late, 0..3, 5.5, late.len()).1, None);
        // Seconds without audio do not break it; already near the floor: 0.
        let calm = vec![Some(10.0), Some(11.0), None, Some(12.0)];
        assert_eq!(back_to_floor(&calm, 0..2, 2.2, 4), (Some(11.0), Some(0.0)));
        // No clean seconds: no floor.
        assert_eq!(back_to_floor(&calm, 5..6, 2.0, 4), (None, None));
    }

    #[test]
    fn events_after_a_cause() {
        let t0 = std::time::Instant::now();
        let ms = |m| t0 + Duration::from_millis(m);
        let events = [ms(100), ms(900), ms(2_500), ms(50)];
        let causes = [ms(80), ms(2_000)];
        // 100 and 900 follow 80 within a second, 2,500 follows 2,000; 50 came before any.
        assert_eq!(
            after_any(events.into_iter(), &causes, Duration::from_secs(1)),
            3
        );
        assert_eq!(
            after_any(events.into_iter(), &causes, Duration::from_millis(100)),
            1
        );
        assert_eq!(
            after_any(events.into_iter(), &[], Duration::from_secs(1)),
            0
        );
    }

    #[test]
    fn gaps_most_points_share_are_the_machines() {
        // Five points: all gap at ~3 s, two at ~7 s, one alone at 9 s.
        let points = vec![
            vec![3.0, 7.0, 9.0],
            vec![3.1, 7.1],
            vec![2.9],
            vec![3.2],
            vec![3.05],
        ];
        // At 3 s every other point shares it; 7 s is shared by one other only (need 2 of 4).
        assert_eq!(common_events(&points), vec![1, 1, 1, 1, 1]);
        // Two points cannot tell a shared cause from chance.
        assert_eq!(common_events(&[vec![1.0], vec![1.0]]), vec![0, 0]);
        assert!(common_events(&[]).is_empty());
    }

    #[test]
    fn lowest_layer_or_paused_share() {
        let l = [Some(1), Some(0), None, Some(0), Some(2)];
        assert_eq!(lowest_or_paused_share(&l, 1, 4), Some(1.0));
        assert_eq!(lowest_or_paused_share(&l, 0, 5), Some(0.6));
        assert_eq!(lowest_or_paused_share(&l, 5, 9), None);
    }

    #[test]
    fn a_point_paused_at_the_recovery_is_on_top_at_its_first_second_there() {
        let l = [
            Some(2),
            Some(2),
            None,
            None,
            None,
            Some(0),
            Some(0),
            Some(2),
            Some(2),
        ];
        assert!(!paused_at(&l, 1.5));
        assert!(paused_at(&l, 3.2));
        assert_eq!(first_second_on(&l, 2, 3.2, 9.0), Some(7.0 - 3.2));
        assert_eq!(first_second_on(&l, 2, 3.2, 7.0), None);
    }
}
