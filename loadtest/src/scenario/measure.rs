//! Per-point numbers over the measurement window, and the per-layer view of the chair's video
//! across points.

use std::time::{Duration, Instant};

use super::report::{LayerReport, PointLayerReport, PointReport, Switches, pct};
use crate::layers::{Ladder, MAX_LAYERS, kbps};
use crate::link::LinkParams;
use crate::point::{Point, PointStats, StreamStats};
use crate::stats::Summary;
use crate::targets;

/// Whose video the layer numbers follow, and how resolutions map to layers.
pub(super) struct LayerView<'a> {
    pub ladder: &'a Ladder,
    /// The chair's participant id: its video is the program every point receives.
    pub chair: &'a str,
    /// Time zero of the series.
    pub epoch: Instant,
    /// The points' line, if emulated (its rate schedule places `flap`'s dip).
    pub link: Option<&'a LinkParams>,
}

impl LayerView<'_> {
    fn is_program(&self, st: &StreamStats) -> bool {
        st.kind.as_deref() == Some("video") && st.stream_id == self.chair
    }
}

/// Window-start snapshot of one point.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Base {
    pub at: Option<Instant>,
    pub video_bytes: u64,
    pub audio_bytes: u64,
    pub packets: u64,
    /// Packets of the chair's streams (what delivery counts).
    pub program_packets: u64,
    pub frames: u64,
    /// The chair's video: time on and bytes of each layer so far.
    pub layer_time: [Duration; MAX_LAYERS],
    pub layer_bytes: [u64; MAX_LAYERS],
}

pub(super) fn base_of(s: &PointStats, at: Instant, view: &LayerView) -> Base {
    let mut b = Base {
        at: Some(at),
        ..Default::default()
    };
    for st in s.streams.values().filter(|st| view.is_program(st)) {
        for l in 0..MAX_LAYERS {
            b.layer_time[l] += st.layers.time_on(l, at);
            b.layer_bytes[l] += st.layers.bytes[l];
        }
    }
    for st in s.streams.values() {
        b.packets += st.packets;
        if st.stream_id == view.chair {
            b.program_packets += st.packets;
        }
        if st.kind.as_deref() == Some("video") {
            b.video_bytes += st.bytes;
            b.frames += st.freezes.frames;
        } else {
            b.audio_bytes += st.bytes;
        }
    }
    b
}

pub(super) struct Tracked {
    pub name: String,
    pub point: Option<Point>,
    pub base: Base,
    /// Final snapshot and when it was taken (at leave or at the end).
    pub last: Option<(PointStats, Instant)>,
    pub left_early: bool,
}

pub(super) fn point_report(
    name: &str,
    s: &PointStats,
    base: &Base,
    end: Instant,
    view: &LayerView,
) -> PointReport {
    let start = base.at.unwrap_or(end);
    let window = end.saturating_duration_since(start).as_secs_f64().max(1e-3);
    // The program's frames only (a town hall's thumbnails are stamped too).
    let delays: Vec<f64> = s
        .streams
        .values()
        .filter(|st| view.is_program(st))
        .flat_map(|st| st.send_delay_ms.iter())
        .filter(|(at, _)| (start..=end).contains(at))
        .map(|(_, d)| *d)
        .collect();
    let delay = Summary::of(&delays);
    let mut r = PointReport {
        name: name.to_owned(),
        video_send_delay_ms: (delay.count > 0).then_some(delay.p50),
        video_send_delay_p95_ms: (delay.count > 0).then_some(delay.p95),
        video_send_delay_max_ms: (delay.count > 0).then_some(delay.max),
        rtt_ms: s.rtt.map(|r| r * 1_000.0),
        video_paused_max: s.video_paused_max,
        video_paused_at_end: s.video_paused,
        ..Default::default()
    };
    let (mut vb, mut ab, mut frames) = (0u64, 0u64, 0u64);
    let (mut v_expected, mut v_gaps, mut v_lost) = (0u64, 0u64, 0u64);
    let (mut frozen, mut video_span) = (Duration::ZERO, Duration::ZERO);
    let (mut gap_time, mut audio_span) = (Duration::ZERO, Duration::ZERO);
    let (mut a_expected, mut red_gap_time) = (0u64, Duration::ZERO);
    let mut freezes_at: Vec<(Instant, Duration)> = Vec::new();
    for st in s.streams.values() {
        let mut st = st.clone();
        if st.kind.as_deref() == Some("video") {
            st.freezes.finish(end);
            vb += st.bytes;
            frames += st.freezes.frames;
            v_expected += st.seq.expected();
            v_gaps += st.seq.gaps_at_arrival;
            v_lost += st.seq.unrecovered();
            r.freezes += st.freezes.freezes;
            frozen += st.freezes.frozen;
            if view.is_program(&st) {
                freezes_at.extend(st.freezes.starts.iter().copied());
            }
            r.layer_switches += st.layer_switches;
            if let Some(f) = st.first_packet_at {
                video_span += end.saturating_duration_since(f);
            }
            if let (Some(k), Some(ws)) = (st.first_complete_keyframe_at, s.ws_started_at) {
                let l = k.saturating_duration_since(ws).as_secs_f64();
                r.join_latency_s = Some(r.join_latency_s.map_or(l, |x: f64| x.min(l)));
            }
        } else {
            st.audio_gaps.finish(end);
            ab += st.bytes;
            r.audio_gaps += st.audio_gaps.gaps;
            gap_time += st.audio_gaps.gap_time;
            st.red.gaps.finish(end);
            r.audio_packets += st.packets;
            r.audio_red_packets += st.red.red_packets;
            r.audio_lost_before_recovery += st.seq.gaps_at_arrival;
            r.audio_recovered_red += st.red.recovered;
            r.audio_lost_after_recovery += st.red.lost_after(&st.seq);
            r.audio_gaps_after_recovery += st.red.gaps.gaps;
            if st.stream_id == view.chair {
                let (n, longest) = st.red.gaps.long_gaps_in(start, end);
                r.audio_gaps_over_100ms += n;
                for (at, _) in st.red.gaps.long_gaps.iter() {
                    if (start..=end).contains(at) {
                        r.audio_long_gap_ends.push(*at);
                        r.audio_gaps_over_100ms_at_s
                            .push(at.saturating_duration_since(view.epoch).as_secs_f64());
                    }
                }
                r.audio_gaps_over_100ms_from_loss += st
                    .red
                    .long_gaps_from_loss
                    .iter()
                    .filter(|at| (start..=end).contains(*at))
                    .count() as u64;
                r.audio_longest_gap_ms =
                    r.audio_longest_gap_ms.max(longest.as_secs_f64() * 1_000.0);
            }
            red_gap_time += st.red.gaps.gap_time;
            a_expected += st.seq.expected();
            if let Some(f) = st.first_packet_at {
                audio_span += end.saturating_duration_since(f);
            }
        }
    }
    r.video_kbps = vb.saturating_sub(base.video_bytes) as f64 * 8.0 / 1_000.0 / window;
    r.audio_kbps = ab.saturating_sub(base.audio_bytes) as f64 * 8.0 / 1_000.0 / window;
    r.fps = frames.saturating_sub(base.frames) as f64 / window;
    // The chair's keyframes at this point in the window, and the audio gaps that followed one
    // (a keyframe is a burst on the line that the audio behind it waits for).
    let keyframes: Vec<Instant> = s
        .streams
        .values()
        .filter(|st| view.is_program(st))
        .flat_map(|st| st.keyframe_times.iter().copied())
        .filter(|at| (start..=end).contains(at))
        .collect();
    r.video_keyframes_at_s = keyframes
        .iter()
        .map(|at| at.saturating_duration_since(view.epoch).as_secs_f64())
        .collect();
    r.audio_gaps_over_100ms_after_keyframe = targets::after_any(
        r.audio_long_gap_ends.iter().copied(),
        &keyframes,
        targets::AFTER_KEYFRAME,
    );
    freezes_at.sort();
    freezes_at.truncate(crate::stats::MAX_FREEZES_LISTED);
    r.freezes_at = freezes_at
        .iter()
        .map(|(at, len)| {
            let ms3 = |x: f64| (x * 1_000.0).round() / 1_000.0;
            [
                ms3(at.saturating_duration_since(view.epoch).as_secs_f64()),
                ms3(len.as_secs_f64() * 1_000.0),
            ]
        })
        .collect();
    r.video_expected = v_expected;
    r.video_unrecovered = v_lost;
    r.loss_before_nack_pct = pct(v_gaps, v_expected);
    r.loss_after_nack_pct = pct(v_lost, v_expected);
    r.freeze_ratio = if video_span.is_zero() {
        0.0
    } else {
        frozen.as_secs_f64() / video_span.as_secs_f64()
    };
    r.audio_gap_ratio = if audio_span.is_zero() {
        0.0
    } else {
        gap_time.as_secs_f64() / audio_span.as_secs_f64()
    };
    r.audio_gap_ratio_after_recovery = if audio_span.is_zero() {
        0.0
    } else {
        red_gap_time.as_secs_f64() / audio_span.as_secs_f64()
    };
    r.audio_loss_before_recovery_pct = pct(r.audio_lost_before_recovery, a_expected);
    r.audio_loss_after_recovery_pct = pct(r.audio_lost_after_recovery, a_expected);
    point_layers(&mut r, s, base, end, window, view);
    audio_delay(&mut r, s, start, end, view);
    line_targets(&mut r, s, start, end, view);
    r
}

/// Issue 11's line targets at one point: the layer each second, the share of steady seconds on
/// the lowest layer or paused, and after a dip (`flap`) how long the top layer and the audio
/// delay took to come back.
fn line_targets(
    r: &mut PointReport,
    s: &PointStats,
    start: Instant,
    end: Instant,
    view: &LayerView,
) {
    r.video_paused_changes = s.video_paused_changes;
    let reach = end.saturating_duration_since(view.epoch).as_secs() as usize + 1;
    let series: Vec<&[f64]> = r.layers.iter().map(|l| l.series_kbps.as_slice()).collect();
    r.layer_index_per_second = targets::dominant_layer(&series, reach);
    r.layer_per_second = targets::layer_labels(&r.layer_index_per_second, |l| view.ladder.label(l));
    let since_epoch = |t: Instant| t.saturating_duration_since(view.epoch).as_secs_f64();
    let (w0, w1) = (since_epoch(start), since_epoch(end));
    // Steady seconds: whole seconds of the window, but the first STEADY_AFTER_S after any
    // change of the line's rate.
    let changes: Vec<f64> = match (view.link, s.link_started_at) {
        (Some(l), Some(at)) => l
            .schedule
            .iter()
            .map(|step| since_epoch(at) + step.at.as_secs_f64())
            .collect(),
        _ => Vec::new(),
    };
    let steady: Vec<Option<usize>> = (w0.ceil() as usize..w1.floor() as usize)
        .filter(|&i| {
            let t = i as f64;
            !changes
                .iter()
                .any(|c| t + 1.0 > *c && t < c + targets::STEADY_AFTER_S)
        })
        .map(|i| r.layer_index_per_second.get(i).copied().flatten())
        .collect();
    r.lowest_or_paused_share = targets::lowest_or_paused_share(&steady, 0, steady.len());
    let (Some(link), Some(link_at)) = (view.link, s.link_started_at) else {
        return;
    };
    let Some((down, up)) = targets::dip(link) else {
        return;
    };
    let recovery = link_at + up;
    if recovery > end {
        return;
    }
    let top = view.ladder.len().saturating_sub(1);
    let recovery_s = since_epoch(recovery);
    // The keyframes' history says which layer came last, not that video still came: a point
    // paused straight from the top layer read 0 s, its last keyframe being the top layer's.
    // Paused at the line's return (nothing that second), the first second on the top layer
    // counts.
    let paused = targets::paused_at(&r.layer_index_per_second, recovery_s);
    r.top_layer_after_recovery_s = if paused {
        targets::first_second_on(&r.layer_index_per_second, top, recovery_s, w1)
    } else {
        s.streams
            .values()
            .filter(|st| view.is_program(st))
            .filter_map(|st| st.layers.on_layer_since(top, recovery))
            .filter(|at| *at <= end)
            .min()
            .map(|at| at.saturating_duration_since(recovery).as_secs_f64())
    };
    // The floor: the seconds with the line clean, from 2 s after the window start (or the line
    // start, if later) to the dip.
    let clean_from = (since_epoch(start).max(since_epoch(link_at) + 2.0)).ceil() as usize;
    let clean_to = since_epoch(link_at + down).floor() as usize;
    let (floor, back) = targets::back_to_floor(
        &r.audio_delay_series_ms,
        clean_from..clean_to,
        since_epoch(recovery),
        w1.floor() as usize,
    );
    r.audio_delay_floor_ms = floor;
    r.audio_delay_back_to_floor_s = back;
}

/// The chair's audio delay above the lowest seen: median of the window's per-second means and
/// the largest, and the per-second series since the start.
fn audio_delay(
    r: &mut PointReport,
    s: &PointStats,
    start: Instant,
    end: Instant,
    view: &LayerView,
) {
    let Some(st) = s
        .streams
        .values()
        .find(|st| st.kind.as_deref() == Some("audio") && st.stream_id == view.chair)
    else {
        return;
    };
    let sec = |t: Instant| t.saturating_duration_since(view.epoch).as_secs() as usize;
    let reach = sec(end) + 1;
    let all = st.delay.per_second_ms(0, reach);
    let window: Vec<(f64, f64)> = all[sec(start).min(reach)..]
        .iter()
        .flatten()
        .copied()
        .collect();
    let means: Vec<f64> = window.iter().map(|w| w.0).collect();
    if !means.is_empty() {
        r.audio_delay_ms = Some(Summary::of(&means).p50);
        r.audio_delay_max_ms = window.iter().map(|w| w.1).reduce(f64::max);
    }
    r.audio_delay_series_ms = all.iter().map(|x| x.map(|(m, _)| m)).collect();
}

/// The chair's video at one point, layer by layer: window kbit/s and seconds, first keyframe
/// of each layer since the WebSocket connect, switches since the join, and the layer at the end.
/// A server that forwarded every layer as a track of its own would put a point on several layers
/// at once; their times then add up to more than the window, which shows it.
fn point_layers(
    r: &mut PointReport,
    s: &PointStats,
    base: &Base,
    end: Instant,
    window: f64,
    view: &LayerView,
) {
    let reach = end.saturating_duration_since(view.epoch).as_secs() as usize + 1;
    let program: Vec<&StreamStats> = s
        .streams
        .values()
        .filter(|st| view.is_program(st))
        .collect();
    let mut final_layer: Option<(usize, Instant)> = None;
    for st in &program {
        r.layer_switches_up += st.layers.switches_up;
        r.layer_switches_down += st.layers.switches_down;
        // The most recently started stream decides the layer at the end.
        if let (Some(c), Some(at)) = (st.layers.current(), st.first_packet_at)
            && final_layer.is_none_or(|(_, t)| at > t)
        {
            final_layer = Some((c, at));
        }
    }
    r.final_layer = final_layer.map(|(c, _)| view.ladder.label(c));
    for l in 0..view.ladder.len().min(MAX_LAYERS) {
        let mut pl = PointLayerReport {
            rid: view.ladder.label(l),
            series_kbps: vec![0.0; reach],
            ..Default::default()
        };
        let (mut bytes, mut time) = (0u64, Duration::ZERO);
        for st in &program {
            let t = &st.layers;
            bytes += t.bytes[l];
            time += t.time_on(l, end);
            pl.keyframes += t.keyframes[l];
            if let (Some(k), Some(ws)) = (t.first_keyframe_at[l], s.ws_started_at) {
                let v = k.saturating_duration_since(ws).as_secs_f64();
                pl.first_keyframe_s = Some(pl.first_keyframe_s.map_or(v, |x: f64| x.min(v)));
            }
            for (i, b) in t.series[l].bytes_per_second.iter().enumerate().take(reach) {
                pl.series_kbps[i] += *b as f64 * 8.0 / 1_000.0;
            }
        }
        pl.kbps = kbps(bytes.saturating_sub(base.layer_bytes[l]), window);
        pl.seconds = time.saturating_sub(base.layer_time[l]).as_secs_f64();
        r.layers.push(pl);
    }
}

/// The chair's video layer by layer across points (`media` points only: those that got video).
pub(super) fn layer_reports<'a>(
    points: &[&'a PointReport],
    ladder: &Ladder,
    sent_kbps: &[f64],
) -> (Vec<LayerReport>, Switches) {
    let mut layers = Vec::new();
    for l in 0..ladder.len().min(MAX_LAYERS) {
        let spec = &ladder.0[l];
        let of = |p: &&'a PointReport| p.layers.get(l);
        let label = ladder.label(l);
        let series_len = points
            .iter()
            .filter_map(of)
            .map(|pl| pl.series_kbps.len())
            .max();
        let mut series = vec![0.0; series_len.unwrap_or(0)];
        let mut reach = vec![0usize; series.len()];
        for pl in points.iter().filter_map(of) {
            for (i, v) in pl.series_kbps.iter().enumerate() {
                series[i] += v;
                reach[i] += 1;
            }
        }
        for (v, n) in series.iter_mut().zip(&reach) {
            *v /= (*n).max(1) as f64;
        }
        layers.push(LayerReport {
            rid: spec.rid.clone(),
            width: spec.width,
            height: spec.height,
            sent_kbps: sent_kbps.get(l).copied().unwrap_or(0.0),
            points_reached: points
                .iter()
                .filter_map(of)
                .filter(|pl| pl.first_keyframe_s.is_some())
                .count(),
            points_at_end: points
                .iter()
                .filter(|p| p.final_layer.as_deref() == Some(label.as_str()))
                .count(),
            kbps: Summary::of(
                &points
                    .iter()
                    .filter_map(of)
                    .map(|pl| pl.kbps)
                    .collect::<Vec<_>>(),
            ),
            seconds: Summary::of(
                &points
                    .iter()
                    .filter_map(of)
                    .map(|pl| pl.seconds)
                    .collect::<Vec<_>>(),
            ),
            first_keyframe_s: Summary::of(
                &points
                    .iter()
                    .filter_map(of)
                    .filter_map(|pl| pl.first_keyframe_s)
                    .collect::<Vec<_>>(),
            ),
            series_kbps: series,
        });
    }
    let switches = Switches {
        up: points.iter().map(|p| p.layer_switches_up as f64).sum(),
        down: points.iter().map(|p| p.layer_switches_down as f64).sum(),
    };
    (layers, switches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::vp8_frame;
    use crate::point::record_stream;
    use rtc::rtp;
    use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

    /// One frame of the chair's video at `ms` after t0: a keyframe of `dims` or a delta frame of
    /// 1,000 payload bytes, on one SSRC as the server forwards it.
    fn frame(
        st: &mut StreamStats,
        t0: Instant,
        ladder: &Ladder,
        ms: u64,
        seq: &mut u16,
        key: Option<(u16, u16)>,
    ) {
        let (w, h) = key.unwrap_or((0, 0));
        let payloads = vp8_frame(1, key.is_some(), 996, w, h);
        assert_eq!(payloads.len(), 1);
        let p = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                payload_type: 96,
                sequence_number: *seq,
                timestamp: ms as u32 * 90,
                ssrc: 7,
                marker: true,
                ..Default::default()
            },
            payload: payloads[0].clone(),
        };
        *seq = seq.wrapping_add(1);
        let now = t0 + Duration::from_millis(ms);
        record_stream(st, now, t0, ladder, RtpCodecKind::Video, "chair-id", &p);
    }

    #[test]
    fn a_point_on_two_layers_in_the_window() {
        let t0 = Instant::now();
        let ladder = Ladder::parse("150,500,1200").unwrap();
        let view = LayerView {
            ladder: &ladder,
            chair: "chair-id",
            epoch: t0,
            link: None,
        };
        let mut stats = PointStats {
            ws_started_at: Some(t0),
            ..Default::default()
        };
        let mut seq = 100;
        let st = stats.streams.entry(7).or_default();
        // q from 500 ms, one 1,000-byte frame every 100 ms; h from 2,000 ms (a step up).
        frame(st, t0, &ladder, 500, &mut seq, Some((320, 180)));
        for ms in (600..1_000).step_by(100) {
            frame(st, t0, &ladder, ms, &mut seq, None);
        }
        // The window starts at 1 s: the base is taken then, as the run does.
        let base = base_of(&stats, t0 + Duration::from_secs(1), &view);
        assert_eq!(base.layer_time[0], Duration::from_millis(500));
        assert_eq!(base.layer_bytes, [5_000, 0, 0]);
        let st = stats.streams.get_mut(&7).unwrap();
        for ms in (1_000..2_000).step_by(100) {
            frame(st, t0, &ladder, ms, &mut seq, None);
        }
        frame(st, t0, &ladder, 2_000, &mut seq, Some((640, 360)));
        for ms in (2_100..3_000).step_by(100) {
            frame(st, t0, &ladder, ms, &mut seq, None);
        }
        let end = t0 + Duration::from_secs(3);
        let r = point_report("point-0", &stats, &base, end, &view);
        assert_eq!(r.layers.len(), 3);
        assert_eq!((r.layer_switches_up, r.layer_switches_down), (1, 0));
        assert_eq!(r.final_layer.as_deref(), Some("h"));
        // Keyframes in the window only: q's at 0.5 s came before it.
        assert_eq!(r.video_keyframes_at_s, vec![2.0]);
        // q: 1.5 s in total, 0.5 s of it before the window; h: 1 s, all in the window.
        assert!(
            (r.layers[0].seconds - 1.0).abs() < 1e-9,
            "{:?}",
            r.layers[0]
        );
        assert!(
            (r.layers[1].seconds - 1.0).abs() < 1e-9,
            "{:?}",
            r.layers[1]
        );
        assert_eq!(r.layers[2].seconds, 0.0);
        // q carried 15 frames of 1,000 bytes; 5 were before the window: 10,000 bytes in 2 s.
        assert!((r.layers[0].kbps - 40.0).abs() < 1e-9, "{:?}", r.layers[0]);
        assert!((r.layers[1].kbps - 40.0).abs() < 1e-9, "{:?}", r.layers[1]);
        assert_eq!(r.layers[0].first_keyframe_s, Some(0.5));
        assert_eq!(r.layers[1].first_keyframe_s, Some(2.0));
        assert_eq!(r.layers[2].first_keyframe_s, None);
        assert_eq!(r.layers[0].series_kbps[..3], [40.0, 80.0, 0.0]);
        assert_eq!(r.layers[1].series_kbps[..3], [0.0, 0.0, 80.0]);

        // Across two points: the second never left q.
        let mut other = r.clone();
        other.final_layer = Some("q".into());
        other.layer_switches_up = 0;
        other.layers[0].kbps = 120.0;
        other.layers[1] = PointLayerReport {
            rid: "h".into(),
            ..Default::default()
        };
        let (layers, switches) = layer_reports(&[&r, &other], &ladder, &[150.0, 500.0, 0.0]);
        assert_eq!(switches, Switches { up: 1.0, down: 0.0 });
        assert_eq!(
            layers
                .iter()
                .map(|l| (l.points_reached, l.points_at_end))
                .collect::<Vec<_>>(),
            [(2, 1), (1, 1), (0, 0)]
        );
        assert_eq!((layers[0].kbps.min, layers[0].kbps.max), (40.0, 120.0));
        assert_eq!(layers[1].sent_kbps, 500.0);
        assert_eq!(layers[0].series_kbps[..2], [40.0, 80.0]);
        assert_eq!(
            layers[1].series_kbps[2], 80.0,
            "the mean over the points that have data"
        );
    }
}
