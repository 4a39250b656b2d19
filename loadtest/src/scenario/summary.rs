//! From the snapshots at the end of a run to the report.

use std::time::{Duration, Instant};

use super::floor::FloorRun;
use super::measure::{LayerView, Tracked, layer_reports, point_report};
use super::report::*;
use super::server::{Server, ServerSample, load_average, rss_bytes};
use super::{LoadConfig, SCHEMA, Scenario};
use crate::layers::MAX_LAYERS;
use crate::point::{LayerSent, PointStats};
use crate::stall::StallReport;
use crate::stats::Summary;

/// Everything a finished run hands to [`summarize`].
pub(super) struct Finished<'a> {
    pub cfg: &'a LoadConfig,
    pub server: &'a Server,
    pub view: LayerView<'a>,
    pub tracked: &'a [Tracked],
    pub failures: Vec<Failure>,
    pub chair_snap: PointStats,
    pub chair_base: super::measure::Base,
    pub chair_sent0: u64,
    pub chair_layers_sent0: [LayerSent; MAX_LAYERS],
    pub floor: Option<FloorRun>,
    pub started_unix: u64,
    pub setup_s: f64,
    pub window_start: Instant,
    pub window_end: Instant,
    pub load0: f64,
    pub gen_cpu_total: f64,
    pub epoch_unix_s: f64,
    pub stalls: StallReport,
    pub s0: ServerSample,
    pub s1: ServerSample,
    pub paused_max: Option<f64>,
    pub rss0: Option<u64>,
    pub churn_joins: usize,
    pub churn_leaves: usize,
}

pub(super) fn summarize(run: Finished) -> Report {
    let Finished {
        cfg,
        server,
        view,
        tracked,
        mut failures,
        chair_snap,
        chair_base,
        chair_sent0,
        chair_layers_sent0,
        floor,
        started_unix,
        setup_s,
        window_start,
        window_end,
        load0,
        gen_cpu_total,
        epoch_unix_s,
        stalls,
        s0,
        s1,
        paused_max,
        rss0,
        churn_joins,
        churn_leaves,
    } = run;
    let window_s = (window_end - window_start).as_secs_f64();
    let chair_sent = chair_snap.packets_sent - chair_sent0;
    // Per point numbers.
    let mut reports = Vec::new();
    let mut counts = Counts {
        requested: cfg.points,
        churn_joins,
        churn_leaves,
        ..Default::default()
    };
    let mut delivered = 0u64;
    let mut expected = 0f64;
    // The chair's packets in the window, per video layer and audio.
    let layer_packets: Vec<u64> = chair_snap
        .layers_sent
        .iter()
        .zip(&chair_layers_sent0)
        .map(|(n, b)| n.packets.saturating_sub(b.packets))
        .collect();
    let chair_audio_sent = chair_sent.saturating_sub(layer_packets.iter().sum());
    let mut audio_loss = Vec::new();
    let mut link = cfg.link.as_ref().map(|_| LinkReport::default());
    let mut series: Vec<(f64, usize)> = Vec::new();
    for t in tracked {
        let Some((snap, end)) = &t.last else { continue };
        counts.joined += 1;
        let has_video = snap
            .streams
            .values()
            .any(|s| s.kind.as_deref() == Some("video") && s.packets > 0);
        // A point that joined in the last seconds of the window (soak churn) is not judged.
        let too_late = t
            .base
            .at
            .is_some_and(|at| window_end.saturating_duration_since(at) < Duration::from_secs(3));
        if has_video {
            counts.media += 1;
        } else if !too_late {
            failures.push(Failure {
                point: t.name.clone(),
                stage: "media",
                error: if cfg.link.as_ref().is_some_and(|l| l.udp_blocked) {
                    "UDP blocked and no video over ICE-TCP (does the server offer a TCP \
                     candidate?)"
                        .into()
                } else if snap.errors.is_empty() {
                    "joined, but no video arrived".into()
                } else {
                    snap.errors.join("; ")
                },
            });
        }
        if snap
            .streams
            .values()
            .any(|s| s.first_complete_keyframe_at.is_some())
        {
            counts.decodable += 1;
        }
        let r = point_report(&t.name, snap, &t.base, *end, &view);
        if !t.left_early && t.base.at == Some(window_start) {
            // Only points present for the whole window count toward delivery.
            let chair_streams: u64 = snap
                .streams
                .values()
                .filter(|s| s.stream_id == view.chair)
                .map(|s| s.packets)
                .sum();
            delivered += chair_streams.saturating_sub(t.base.program_packets);
            expected += if view.ladder.is_simulcast() {
                // One layer at a time: what the chair sent on each layer, for as long as this
                // point was on it.
                let on = |l: usize| {
                    r.layers
                        .get(l)
                        .map_or(0.0, |pl| (pl.seconds / window_s).min(1.0))
                };
                chair_audio_sent as f64
                    + layer_packets
                        .iter()
                        .enumerate()
                        .map(|(l, p)| *p as f64 * on(l))
                        .sum::<f64>()
            } else {
                chair_sent as f64
            };
        }
        audio_loss.push(audio_loss_after(snap));
        if let (Some(l), Some(p)) = (&mut link, &t.point)
            && let Some(pl) = &p.link
        {
            let (up, down) = pl.counters();
            add_counters(&mut l.up, &up);
            add_counters(&mut l.down, &down);
        }
        for st in snap.streams.values() {
            for (i, b) in st.series.bytes_per_second.iter().enumerate() {
                if series.len() <= i {
                    series.resize(i + 1, (0.0, 0));
                }
                series[i].0 += *b as f64 * 8.0 / 1_000.0;
            }
        }
        let secs = snap
            .streams
            .values()
            .map(|s| s.series.bytes_per_second.len())
            .max()
            .unwrap_or(0);
        for s in series.iter_mut().take(secs) {
            s.1 += 1;
        }
        reports.push(r);
    }
    counts.failed = failures.len();
    let expected = expected.round() as u64;
    let summary = |f: &dyn Fn(&PointReport) -> Option<f64>| {
        Summary::of(&reports.iter().filter_map(f).collect::<Vec<_>>())
    };
    let media_only = |r: &PointReport| r.video_kbps > 0.0 || r.fps > 0.0;

    let publisher = PublisherReport::of(
        view.ladder,
        &chair_snap.layers_sent,
        &chair_layers_sent0,
        window_s,
    );
    let sent: Vec<f64> = publisher.layers.iter().map(|l| l.sent_kbps).collect();
    let media_points: Vec<&PointReport> = reports.iter().filter(|r| media_only(r)).collect();
    let (layers, layer_switches) = layer_reports(&media_points, view.ladder, &sent);
    let floor = floor.map(|f| f.report(tracked, &chair_snap, &view, window_s));
    let server_cpu = match (s0.cpu, s1.cpu) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let diff = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
    let packets_out = diff(s0.packets_out, s1.packets_out);
    let forwarded = packets_out.filter(|p| *p > 0.0).unwrap_or(delivered as f64);
    let in_process = server.inprocess.is_some();
    let rss = s1.rss;
    let chair_report = (cfg.scenario == Scenario::Townhall).then(|| {
        let mut c = ChairReport::default();
        let window = (window_end - window_start).as_secs_f64().max(1e-3);
        let mut fps = Vec::new();
        let mut vbytes = 0u64;
        for st in chair_snap.streams.values() {
            if st.kind.as_deref() == Some("video") {
                c.video_streams += 1;
                fps.push(st.freezes.frames as f64 / window);
                vbytes += st.bytes;
            } else {
                c.audio_streams += 1;
            }
        }
        c.video_fps = Summary::of(&fps);
        c.video_kbps_total =
            vbytes.saturating_sub(chair_base.video_bytes) as f64 * 8.0 / 1_000.0 / window;
        c
    });
    let loss_without_padding = link.as_ref().map(|l| {
        let expected: u64 = reports.iter().map(|r| r.video_expected).sum();
        let lost: u64 = reports.iter().map(|r| r.video_unrecovered).sum();
        pct(
            lost.saturating_sub(l.down.rtp_padding_dropped),
            expected.saturating_sub(l.down.rtp_padding),
        )
    });
    Report {
        schema: SCHEMA,
        scenario: cfg.scenario,
        target: server.label.clone(),
        started_unix,
        load_average: [load0, load_average()],
        config: config_report(cfg),
        points: counts,
        failures,
        join_latency_s: summary(&|r| r.join_latency_s),
        setup_s,
        window_s,
        video: VideoReport {
            kbps: summary(&|r| media_only(r).then_some(r.video_kbps)),
            fps: summary(&|r| media_only(r).then_some(r.fps)),
            loss_before_nack_pct: summary(&|r| media_only(r).then_some(r.loss_before_nack_pct)),
            loss_after_nack_pct: summary(&|r| media_only(r).then_some(r.loss_after_nack_pct)),
            freezes_total: reports.iter().map(|r| r.freezes).sum(),
            send_delay_ms: summary(&|r| r.video_send_delay_ms),
            send_delay_p95_ms: summary(&|r| r.video_send_delay_p95_ms),
            freeze_ratio: summary(&|r| media_only(r).then_some(r.freeze_ratio)),
            layer_switches_total: reports.iter().map(|r| r.layer_switches).sum(),
            layer_switches,
            layers,
            points_told_paused: reports.iter().filter(|r| r.video_paused_max > 0).count(),
            points_paused_at_end: reports.iter().filter(|r| r.video_paused_at_end > 0).count(),
        },
        audio: AudioReport {
            kbps: summary(&|r| Some(r.audio_kbps)),
            gaps_over_60ms_total: reports.iter().map(|r| r.audio_gaps).sum(),
            gap_ratio: summary(&|r| Some(r.audio_gap_ratio)),
            loss_after_nack_pct: Summary::of(&audio_loss),
            delay_ms: summary(&|r| r.audio_delay_ms),
            delay_max_ms: summary(&|r| r.audio_delay_max_ms),
            delay_series_ms: delay_series(&reports),
            red: RedAudioReport {
                publisher_red: chair_snap.red_sent.is_some(),
                points_receiving_red: reports.iter().filter(|r| r.audio_red_packets > 0).count(),
                packets_received: reports.iter().map(|r| r.audio_packets).sum(),
                red_packets: reports.iter().map(|r| r.audio_red_packets).sum(),
                lost_before_recovery: reports.iter().map(|r| r.audio_lost_before_recovery).sum(),
                recovered: reports.iter().map(|r| r.audio_recovered_red).sum(),
                lost_after_recovery: reports.iter().map(|r| r.audio_lost_after_recovery).sum(),
                loss_before_recovery_pct: summary(&|r| Some(r.audio_loss_before_recovery_pct)),
                loss_after_recovery_pct: summary(&|r| Some(r.audio_loss_after_recovery_pct)),
                gaps_over_60ms_total: reports.iter().map(|r| r.audio_gaps_after_recovery).sum(),
                gap_ratio: summary(&|r| Some(r.audio_gap_ratio_after_recovery)),
            },
        },
        rtt_ms: summary(&|r| r.rtt_ms),
        delivery: Delivery {
            packets_expected: expected,
            packets_delivered: delivered,
            ratio: if expected > 0 {
                delivered as f64 / expected as f64
            } else {
                0.0
            },
        },
        bitrate_series_kbps: series
            .iter()
            .map(|(kbps, n)| if *n > 0 { kbps / *n as f64 } else { 0.0 })
            .collect(),
        server: ServerReport {
            cpu_source: server.cpu_source().into(),
            cpu_seconds: server_cpu,
            cpu_cores: server_cpu.map(|c| c / window_s),
            rss_bytes: rss,
            rss_per_point_bytes: match (rss0, rss) {
                (Some(a), Some(b)) if counts.joined > 0 => {
                    Some((b as f64 - a as f64) / counts.joined as f64)
                }
                _ => None,
            },
            packets_in: diff(s0.packets_in, s1.packets_in),
            packets_out,
            cpu_us_per_forwarded_packet: server_cpu
                .filter(|_| forwarded > 0.0)
                .map(|c| c * 1e6 / forwarded),
            plis_sent: diff(s0.plis, s1.plis),
            link_estimate_bps: s1
                .link_estimate
                .as_ref()
                .map(|h| h.since(s0.link_estimate.as_ref()).report()),
            link_loss_ratio: s1
                .link_loss
                .as_ref()
                .map(|h| h.since(s0.link_loss.as_ref()).report()),
            layer_switches: match (s1.switches_up, s1.switches_down) {
                (None, None) => None,
                (up, down) => Some(Switches {
                    up: up.unwrap_or(0.0) - s0.switches_up.unwrap_or(0.0),
                    down: down.unwrap_or(0.0) - s0.switches_down.unwrap_or(0.0),
                }),
            },
            nack_requested_packets: diff(s0.nack_requested, s1.nack_requested),
            nack_refused_packets: diff(s0.nack_refused, s1.nack_refused),
            video_paused_downtracks: s1.paused_downtracks.map(|end| PausedReport {
                end,
                max: paused_max.unwrap_or(end).max(end),
            }),
        },
        generator: GeneratorReport {
            cpu_seconds: gen_cpu_total
                - if in_process {
                    server_cpu.unwrap_or(0.0)
                } else {
                    0.0
                },
            cpu_cores: (gen_cpu_total
                - if in_process {
                    server_cpu.unwrap_or(0.0)
                } else {
                    0.0
                })
                / window_s,
            rss_bytes: rss_bytes(std::process::id()),
            epoch_unix_s,
            stalls,
        },
        link,
        chair: chair_report,
        floor,
        publisher,
        targets: TargetsReport {
            video_loss_after_nack_without_padding_pct: loss_without_padding,
            ..targets_report(
                &reports,
                &chair_snap,
                window_start,
                window_end,
                view.ladder.len(),
                cfg.link.as_ref(),
            )
        },
        per_point: if cfg.per_point { reports } else { Vec::new() },
    }
}

/// Issue 11's targets over the points (media points for the video ones).
fn targets_report(
    reports: &[PointReport],
    chair: &PointStats,
    window_start: Instant,
    window_end: Instant,
    layers: usize,
    link: Option<&crate::link::LinkParams>,
) -> TargetsReport {
    let media: Vec<&PointReport> = reports
        .iter()
        .filter(|r| r.video_kbps > 0.0 || r.fps > 0.0)
        .collect();
    let of = |f: &dyn Fn(&PointReport) -> Option<f64>| {
        Summary::of(&media.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
    };
    let seconds = media
        .iter()
        .map(|r| r.layer_index_per_second.len())
        .max()
        .unwrap_or(0);
    let points_per_layer_series = (0..seconds)
        .map(|i| {
            let mut counts = vec![0usize; layers + 1];
            for r in &media {
                match r.layer_index_per_second.get(i).copied().flatten() {
                    Some(l) if l < layers => counts[l] += 1,
                    _ => counts[layers] += 1,
                }
            }
            counts
        })
        .collect();
    let (send_gaps, send_longest) = chair.audio_send_gaps.long_gaps_in(window_start, window_end);
    let dip = link.and_then(crate::targets::dip);
    let with_recovery: Vec<&&PointReport> = media
        .iter()
        .filter(|r| r.audio_delay_floor_ms.is_some() || r.top_layer_after_recovery_s.is_some())
        .collect();
    TargetsReport {
        audio_gaps_over_100ms_total: reports.iter().map(|r| r.audio_gaps_over_100ms).sum(),
        audio_gaps_over_100ms_from_loss: reports
            .iter()
            .map(|r| r.audio_gaps_over_100ms_from_loss)
            .sum(),
        audio_gaps_over_100ms_after_keyframe: reports
            .iter()
            .map(|r| r.audio_gaps_over_100ms_after_keyframe)
            .sum(),
        audio_gaps_over_100ms_common: crate::targets::common_events(
            &reports
                .iter()
                .map(|r| r.audio_gaps_over_100ms_at_s.clone())
                .collect::<Vec<_>>(),
        )
        .iter()
        .sum(),
        audio_gaps_over_100ms_after_chair_gap: {
            let chair_ends: Vec<Instant> = chair
                .audio_send_gaps
                .long_gaps
                .iter()
                .map(|(at, _)| *at)
                .collect();
            crate::targets::after_any(
                reports
                    .iter()
                    .flat_map(|r| r.audio_long_gap_ends.iter().copied()),
                &chair_ends,
                Duration::from_secs(1),
            )
        },
        points_with_audio_gap_over_100ms: reports
            .iter()
            .filter(|r| r.audio_gaps_over_100ms > 0)
            .count(),
        audio_longest_gap_ms: Summary::of(
            &reports
                .iter()
                .map(|r| r.audio_longest_gap_ms)
                .collect::<Vec<_>>(),
        ),
        chair_audio_send_gaps_over_100ms: send_gaps,
        chair_audio_send_longest_gap_ms: send_longest.as_secs_f64() * 1_000.0,
        lowest_or_paused_share: of(&|r| r.lowest_or_paused_share),
        video_paused_changes_total: reports.iter().map(|r| r.video_paused_changes).sum(),
        points_per_layer_series,
        dip_s: dip.map(|(d, u)| [d.as_secs_f64(), u.as_secs_f64()]),
        top_layer_after_recovery_s: of(&|r| r.top_layer_after_recovery_s),
        points_back_on_top: media
            .iter()
            .filter(|r| r.top_layer_after_recovery_s.is_some())
            .count(),
        points_with_recovery: if dip.is_some() {
            with_recovery.len()
        } else {
            0
        },
        audio_delay_back_to_floor_s: of(&|r| r.audio_delay_back_to_floor_s),
        points_audio_delay_back: media
            .iter()
            .filter(|r| r.audio_delay_back_to_floor_s.is_some())
            .count(),
        audio_delay_floor_ms: of(&|r| r.audio_delay_floor_ms),
        video_loss_after_nack_without_padding_pct: None,
    }
}

/// Mean over points of each second's mean audio delay above the lowest (points without audio
/// that second left out; 0 when none had any).
fn delay_series(reports: &[PointReport]) -> Vec<f64> {
    let len = reports
        .iter()
        .map(|r| r.audio_delay_series_ms.len())
        .max()
        .unwrap_or(0);
    (0..len)
        .map(|i| {
            let v: Vec<f64> = reports
                .iter()
                .filter_map(|r| r.audio_delay_series_ms.get(i).copied().flatten())
                .collect();
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        })
        .collect()
}
