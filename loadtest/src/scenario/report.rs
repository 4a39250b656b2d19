//! The report: its JSON schema (documented in docs/benchmarks.md) and the pieces every scenario
//! fills in.

use serde::Serialize;

use super::server::load_average;
use super::{LoadConfig, SCHEMA, Scenario};
use crate::layers::Ladder;
use crate::link::{LinkCounters, LinkParams};
use crate::point::{LayerSent, PointStats};
use crate::prom::HistogramReport;
use crate::stall::StallReport;
use crate::stats::Summary;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub scenario: Scenario,
    pub target: String,
    pub started_unix: u64,
    /// `/proc/loadavg` (1 min) at the start and end of the window: other work on the machine.
    pub load_average: [f64; 2],
    pub config: ConfigReport,
    pub points: Counts,
    pub failures: Vec<Failure>,
    /// WebSocket connect → first complete keyframe, seconds, over points that got one.
    pub join_latency_s: Summary,
    /// Seconds from the first join to all joins answered (joinstorm).
    pub setup_s: f64,
    pub window_s: f64,
    pub video: VideoReport,
    pub audio: AudioReport,
    pub rtt_ms: Summary,
    pub delivery: Delivery,
    /// Mean over media-receiving points of received kbit/s, one value per second since start.
    pub bitrate_series_kbps: Vec<f64>,
    pub server: ServerReport,
    pub generator: GeneratorReport,
    pub link: Option<LinkReport>,
    /// Townhall: what the chair received.
    pub chair: Option<ChairReport>,
    /// Townhall: the floor granted to one point, and who received its camera.
    pub floor: Option<FloorReport>,
    /// What the chair sent on each video layer in the window.
    pub publisher: PublisherReport,
    /// Issue 11's line targets: audio gaps over 100 ms, the layer each second, the return
    /// after a dip.
    pub targets: TargetsReport,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_point: Vec<PointReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigReport {
    pub points: usize,
    pub seconds: f64,
    pub fps: u32,
    pub video_kbps: u32,
    pub link: Option<LinkParams>,
    pub seed: u64,
    pub join_spread_s: Option<f64>,
    pub churn_every_s: Option<f64>,
    /// With `--simulcast`: the layers every publisher sends (rid, kbit/s, resolution).
    pub simulcast_layers: Option<Ladder>,
    /// `--red`: redundant audio asked for by every point.
    pub red: bool,
    /// `--temporal-layers`: temporal layers in each synthetic video layer (1: none).
    pub temporal_layers: u8,
    /// `--twcc-interval`: the points' transport-wide feedback interval, ms (`null`: 100).
    pub twcc_interval_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    pub requested: usize,
    pub joined: usize,
    /// Received at least one video packet.
    pub media: usize,
    /// Got a complete keyframe.
    pub decodable: usize,
    pub failed: usize,
    /// Soak: joins and leaves during the run.
    pub churn_joins: usize,
    pub churn_leaves: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub point: String,
    /// `join` (refused, dropped, timed out), `media` (joined but no video arrived) or `floor`
    /// (the chair's `grant_floor` was not confirmed).
    pub stage: &'static str,
    pub error: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VideoReport {
    pub kbps: Summary,
    pub fps: Summary,
    /// Sequence gaps seen at arrival, % of expected packets (whole run).
    pub loss_before_nack_pct: Summary,
    /// Gaps never filled by a retransmission, % of expected packets (whole run).
    pub loss_after_nack_pct: Summary,
    pub freezes_total: u64,
    /// Per point, the median and 95th percentile of the video frames' one-way delay from the
    /// publisher's send stamp (ms; publisher and points on one machine).
    pub send_delay_ms: Summary,
    pub send_delay_p95_ms: Summary,
    /// Frozen time / time since the first frame, per point.
    pub freeze_ratio: Summary,
    /// Keyframes whose dimensions changed, over every received video stream.
    pub layer_switches_total: u64,
    /// Layer changes seen in the chair's video at the points (whole run), by direction.
    pub layer_switches: Switches,
    /// The chair's video layer by layer (one entry without simulcast).
    pub layers: Vec<LayerReport>,
    /// Points the server told (`video_paused`) that their link cannot carry some video, at any
    /// time, and at the end of the window.
    pub points_told_paused: usize,
    pub points_paused_at_end: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AudioReport {
    pub kbps: Summary,
    pub gaps_over_60ms_total: u64,
    /// Time in gaps / time since the first packet, per point.
    pub gap_ratio: Summary,
    pub loss_after_nack_pct: Summary,
    /// The chair's audio at each point: one-way delay above the lowest the point saw (queueing
    /// on the way, plus the chair's own lateness), ms. `delay_ms`: each point's median over the
    /// window's seconds (of per-second means); `delay_max_ms`: each point's largest.
    pub delay_ms: Summary,
    pub delay_max_ms: Summary,
    /// Mean over points of the per-second mean delay above the lowest, ms, per second since the
    /// start (0 for a second without audio).
    pub delay_series_ms: Vec<f64>,
    /// Redundant audio: what arrived as RED and what it recovered (every run; without RED
    /// nothing is recovered and the gaps are the ones above).
    pub red: RedAudioReport,
}

/// Audio over the points, whole run: packets, loss before and after recovery from RED, and
/// gaps on the recovered stream (a recovered frame fills its 20 ms slot).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RedAudioReport {
    /// The chair's audio went out as RED (the server's answer accepted it).
    pub publisher_red: bool,
    /// Points that received at least one RED packet.
    pub points_receiving_red: usize,
    pub packets_received: u64,
    pub red_packets: u64,
    /// Sequence gaps at arrival.
    pub lost_before_recovery: u64,
    /// Frames of those recovered from a later packet's redundant block.
    pub recovered: u64,
    /// Gaps neither recovered nor filled later.
    pub lost_after_recovery: u64,
    /// Per point, % of expected audio packets.
    pub loss_before_recovery_pct: Summary,
    pub loss_after_recovery_pct: Summary,
    /// Gaps over 60 ms on the recovered stream, and their time / time since the first packet.
    pub gaps_over_60ms_total: u64,
    pub gap_ratio: Summary,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Delivery {
    /// Publisher packets in the window × receiving points.
    pub packets_expected: u64,
    /// Packets those points received in the window.
    pub packets_delivered: u64,
    pub ratio: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerReport {
    /// `media-threads` (in-process: CPU of the `media-*` threads), `proc` (`/proc/<pid>`),
    /// `metrics` (`process_cpu_seconds_total`), or `none`.
    pub cpu_source: String,
    pub cpu_seconds: Option<f64>,
    /// Share of one core over the window.
    pub cpu_cores: Option<f64>,
    pub rss_bytes: Option<u64>,
    pub rss_per_point_bytes: Option<f64>,
    pub packets_in: Option<f64>,
    pub packets_out: Option<f64>,
    /// Server CPU / packets it forwarded (its counter when known, else packets delivered).
    pub cpu_us_per_forwarded_packet: Option<f64>,
    pub plis_sent: Option<f64>,
    /// Per-subscriber-link bandwidth estimates observed in the window (bit/s).
    pub link_estimate_bps: Option<HistogramReport>,
    /// Loss subscribers reported in RTCP receiver reports (after NACK), window.
    pub link_loss_ratio: Option<HistogramReport>,
    /// Layer switches the server's allocator made in the window.
    pub layer_switches: Option<Switches>,
    /// Video downtracks paused for lack of bandwidth: at the end of the window, and the most
    /// seen in the once-a-second samples.
    pub video_paused_downtracks: Option<PausedReport>,
    /// Packets subscribers asked the server to resend in the window, and of those, how many it
    /// refused (`hoinghi_nack_requested_packets_total`, `hoinghi_nack_refused_packets_total`).
    pub nack_requested_packets: Option<f64>,
    pub nack_refused_packets: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Switches {
    pub up: f64,
    pub down: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PausedReport {
    pub end: f64,
    pub max: f64,
}

/// One layer of the chair's video, over the points that received it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LayerReport {
    /// `q`, `h`, `f` (empty for a single stream).
    pub rid: String,
    pub width: u16,
    pub height: u16,
    /// What the chair sent on this layer in the window, kbit/s.
    pub sent_kbps: f64,
    /// Points that received at least one keyframe of this layer (whole run).
    pub points_reached: usize,
    /// Points on this layer at the end of the window.
    pub points_at_end: usize,
    /// Per point: kbit/s received on this layer in the window (every media point, 0 if none).
    pub kbps: Summary,
    /// Per point: seconds on this layer in the window.
    pub seconds: Summary,
    /// Per point that reached it: WebSocket connect → first keyframe of this layer, seconds.
    pub first_keyframe_s: Summary,
    /// Mean over media points of kbit/s received on this layer, per second since the start.
    pub series_kbps: Vec<f64>,
}

/// One point's numbers for one layer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PointLayerReport {
    pub rid: String,
    pub kbps: f64,
    pub seconds: f64,
    pub first_keyframe_s: Option<f64>,
    pub keyframes: u64,
    /// kbit/s per second since the start.
    pub series_kbps: Vec<f64>,
}

/// The chair's publish side, per layer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PublisherReport {
    pub layers: Vec<PublishedLayer>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PublishedLayer {
    pub rid: String,
    pub target_kbps: u32,
    pub sent_kbps: f64,
    /// Keyframes sent and keyframe requests (PLI/FIR) received for this layer, whole run.
    pub keyframes: u64,
    pub keyframe_requests: u64,
}

impl PublisherReport {
    pub(super) fn of(
        ladder: &Ladder,
        now: &[LayerSent],
        base: &[LayerSent],
        window_s: f64,
    ) -> Self {
        PublisherReport {
            layers: ladder
                .0
                .iter()
                .zip(now.iter().zip(base))
                .map(|(l, (n, b))| PublishedLayer {
                    rid: l.rid.clone(),
                    target_kbps: l.kbps,
                    sent_kbps: crate::layers::kbps(n.bytes.saturating_sub(b.bytes), window_s),
                    keyframes: n.keyframes,
                    keyframe_requests: n.keyframe_requests,
                })
                .collect(),
        }
    }
}

/// Townhall with a floor holder.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FloorReport {
    /// Point code the chair granted the floor to.
    pub holder: String,
    /// The chair saw `room_state` name the holder.
    pub granted: bool,
    /// `grant_floor` sent → `room_state` naming the holder at the chair, seconds.
    pub grant_latency_s: Option<f64>,
    /// Points other than the holder, and how many received the holder's camera (a keyframe).
    pub points_expected: usize,
    pub points_receiving: usize,
    /// Per receiving point: `grant_floor` → first keyframe of the holder's camera, seconds.
    pub first_keyframe_s: Summary,
    /// Per receiving point: the holder's camera kbit/s in the window.
    pub kbps: Summary,
    /// Receiving points by the layer they were on at the end (lowest first).
    pub points_per_layer: Vec<usize>,
    /// Thumbnails at the chair (every point's camera but the holder's) and how many were on the
    /// lowest layer at the end.
    pub chair_thumbnails: usize,
    pub chair_thumbnails_on_lowest: usize,
    /// The holder's camera at the chair: the layer it was on at the end.
    pub chair_holder_layer: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GeneratorReport {
    /// CPU of this process over the window, minus the in-process server's media threads.
    pub cpu_seconds: f64,
    pub cpu_cores: f64,
    pub rss_bytes: Option<u64>,
    /// The epoch (time zero of every `_at_s`, `freezes_at` and per-second series) on the wall
    /// clock, Unix seconds: lines up the reports of several generators.
    pub epoch_unix_s: f64,
    /// This process's runtime lateness since the epoch (`loadtest/src/stall.rs`).
    pub stalls: StallReport,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LinkReport {
    pub up: LinkCounters,
    pub down: LinkCounters,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ChairReport {
    pub video_streams: usize,
    pub audio_streams: usize,
    pub video_fps: Summary,
    pub video_kbps_total: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PointReport {
    pub name: String,
    pub join_latency_s: Option<f64>,
    pub video_kbps: f64,
    pub audio_kbps: f64,
    pub fps: f64,
    pub loss_before_nack_pct: f64,
    pub loss_after_nack_pct: f64,
    pub freezes: u64,
    pub freeze_ratio: f64,
    /// The program's video freezes (whole run, the first 200): `[start, seconds since the
    /// epoch (the last frame before it), length ms]`, by start.
    pub freezes_at: Vec<[f64; 2]>,
    pub audio_gaps: u64,
    pub audio_gap_ratio: f64,
    /// Audio, whole run: packets received, of them RED, sequence gaps at arrival, frames
    /// recovered from redundancy, gaps left; losses in % of expected packets; gaps over 60 ms
    /// (and their ratio) on the recovered stream.
    pub audio_packets: u64,
    pub audio_red_packets: u64,
    pub audio_lost_before_recovery: u64,
    pub audio_recovered_red: u64,
    pub audio_lost_after_recovery: u64,
    pub audio_loss_before_recovery_pct: f64,
    pub audio_loss_after_recovery_pct: f64,
    pub audio_gaps_after_recovery: u64,
    pub audio_gap_ratio_after_recovery: f64,
    pub layer_switches: u64,
    pub layer_switches_up: u64,
    pub layer_switches_down: u64,
    /// The chair's video layer at the end (rid or resolution), if any keyframe arrived.
    pub final_layer: Option<String>,
    pub layers: Vec<PointLayerReport>,
    /// The most videos `video_paused` listed at once for this point, and at the end.
    pub video_paused_max: usize,
    pub video_paused_at_end: usize,
    pub rtt_ms: Option<f64>,
    /// The program's video frames in the window: one-way delay from the publisher's send stamp
    /// to the arrival of the frame's first packet (ms), median, 95th percentile and largest.
    pub video_send_delay_ms: Option<f64>,
    pub video_send_delay_p95_ms: Option<f64>,
    pub video_send_delay_max_ms: Option<f64>,
    /// The chair's audio: delay above the lowest seen, median and largest over the window, ms.
    pub audio_delay_ms: Option<f64>,
    pub audio_delay_max_ms: Option<f64>,
    /// Per-second mean of it since the start (`None`: no audio that second).
    #[serde(skip)]
    pub audio_delay_series_ms: Vec<Option<f64>>,
    /// The chair's audio in the window, on the stream as RED recovered it (a recovered frame
    /// fills its slot): gaps over 100 ms, and the longest gap, ms.
    pub audio_gaps_over_100ms: u64,
    pub audio_longest_gap_ms: f64,
    /// Of those gaps, the ones that skipped packets (a loss burst RED could not cover); the
    /// rest are delay (every packet came, late).
    pub audio_gaps_over_100ms_from_loss: u64,
    /// When each of those gaps ended, seconds since the start (to set beside
    /// `layer_per_second`).
    pub audio_gaps_over_100ms_at_s: Vec<f64>,
    /// Of those gaps, the ones that ended within 500 ms after one of the chair's keyframes began
    /// arriving at this point (the keyframe's burst ahead of the audio on the line).
    pub audio_gaps_over_100ms_after_keyframe: u64,
    /// When each of the chair's keyframes began arriving in the window, seconds since the start.
    pub video_keyframes_at_s: Vec<f64>,
    #[serde(skip)]
    pub audio_long_gap_ends: Vec<std::time::Instant>,
    /// The chair's video layer each second since the start: the layer that carried most of
    /// that second's bytes (rid), `-` for a second without video (paused, or not yet).
    pub layer_per_second: Vec<String>,
    #[serde(skip)]
    pub layer_index_per_second: Vec<Option<usize>>,
    /// Share of the window's steady seconds (not within 5 s of a change of the line's rate) on
    /// the lowest layer or without video.
    pub lowest_or_paused_share: Option<f64>,
    /// `video_paused` notices that turned on or off for this point.
    pub video_paused_changes: u64,
    /// A line whose rate dips and recovers (`flap`): seconds from the recovery to the first
    /// keyframe of the top layer (0: on it already; `None`: not before the end), the audio
    /// delay's floor (median second before the dip, ms) and seconds from the recovery until it
    /// stays within 30 ms of it (`None`: not before the end).
    pub top_layer_after_recovery_s: Option<f64>,
    pub audio_delay_floor_ms: Option<f64>,
    pub audio_delay_back_to_floor_s: Option<f64>,
    /// Video sequence numbers expected and never filled (whole run), for the loss without the
    /// server's padding probes.
    #[serde(skip)]
    pub video_expected: u64,
    #[serde(skip)]
    pub video_unrecovered: u64,
}

/// Issue 11's line targets over the points (see `loadtest/src/targets.rs`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetsReport {
    /// The chair's audio in the window after RED recovery: gaps over 100 ms at all points, the
    /// points with at least one, and each point's longest gap (ms).
    pub audio_gaps_over_100ms_total: u64,
    /// Of those, the ones that skipped packets (loss bursts longer than RED covers).
    pub audio_gaps_over_100ms_from_loss: u64,
    /// Of those, the ones that ended within a second after one of the chair's own send gaps
    /// over 100 ms ended: the generator's lateness, seen at every point.
    pub audio_gaps_over_100ms_after_chair_gap: u64,
    /// Of those, the ones at least half of the other points saw end within 250 ms: the
    /// machine's (generator or in-process server stalled), since every point has its own line.
    pub audio_gaps_over_100ms_common: u64,
    /// Of those, the ones that ended within 500 ms after a keyframe of the chair's began
    /// arriving at that point: a keyframe asked for one point's switch goes to every point on
    /// that layer at once, so such gaps are common without being the machine's.
    pub audio_gaps_over_100ms_after_keyframe: u64,
    pub points_with_audio_gap_over_100ms: usize,
    pub audio_longest_gap_ms: Summary,
    /// The chair's own audio sends over 100 ms apart in the window, and its longest send gap
    /// (ms): the generator's lateness, which every point then sees as a gap.
    pub chair_audio_send_gaps_over_100ms: u64,
    pub chair_audio_send_longest_gap_ms: f64,
    /// Video loss after NACK over all points (whole run, % of expected packets) with the
    /// server's padding-only probe packets taken out: what the line dropped of them (never
    /// resent) from the holes, what it was offered from the expected (`null` without an
    /// emulated line).
    pub video_loss_after_nack_without_padding_pct: Option<f64>,
    /// Per point: share of steady window seconds on the lowest layer or without video.
    pub lowest_or_paused_share: Summary,
    pub video_paused_changes_total: u64,
    /// Points per layer each second since the start: counts lowest layer first, then the
    /// points without video that second.
    pub points_per_layer_series: Vec<Vec<usize>>,
    /// The line's dip, seconds since each point's line started (`flap`: 10 and 30).
    pub dip_s: Option<[f64; 2]>,
    /// Per point that got back on the top layer: seconds from the recovery; and how many did,
    /// of the points whose recovery fell in the run.
    pub top_layer_after_recovery_s: Summary,
    pub points_back_on_top: usize,
    pub points_with_recovery: usize,
    /// Per point whose audio delay settled: seconds from the recovery; and how many did.
    pub audio_delay_back_to_floor_s: Summary,
    pub points_audio_delay_back: usize,
    pub audio_delay_floor_ms: Summary,
}

pub(super) fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

pub(super) fn audio_loss_after(s: &PointStats) -> f64 {
    let (mut e, mut l) = (0, 0);
    for st in s.streams.values() {
        if st.kind.as_deref() == Some("audio") {
            e += st.seq.expected();
            l += st.seq.unrecovered();
        }
    }
    pct(l, e)
}

/// The report of a run that could not start (the chair could not join).
pub(super) fn failed_report(
    cfg: &LoadConfig,
    target: &str,
    started_unix: u64,
    failure: Failure,
) -> Report {
    Report {
        schema: SCHEMA,
        scenario: cfg.scenario,
        target: target.to_owned(),
        started_unix,
        load_average: [load_average(); 2],
        config: config_report(cfg),
        points: Counts {
            requested: cfg.points,
            failed: 1,
            ..Default::default()
        },
        failures: vec![failure],
        join_latency_s: Summary::default(),
        setup_s: 0.0,
        window_s: 0.0,
        video: VideoReport::default(),
        audio: AudioReport::default(),
        rtt_ms: Summary::default(),
        delivery: Delivery::default(),
        bitrate_series_kbps: Vec::new(),
        server: ServerReport::default(),
        generator: GeneratorReport::default(),
        link: None,
        chair: None,
        floor: None,
        publisher: PublisherReport::default(),
        targets: TargetsReport::default(),
        per_point: Vec::new(),
    }
}

pub(super) fn config_report(cfg: &LoadConfig) -> ConfigReport {
    ConfigReport {
        points: cfg.points,
        seconds: cfg.seconds,
        fps: cfg.fps,
        video_kbps: cfg.video_kbps,
        link: cfg.link.clone(),
        seed: cfg.seed,
        join_spread_s: (cfg.scenario == Scenario::Joinstorm)
            .then_some(cfg.join_spread.as_secs_f64()),
        churn_every_s: (cfg.scenario == Scenario::Soak).then_some(cfg.churn_every.as_secs_f64()),
        simulcast_layers: cfg.simulcast.clone(),
        red: cfg.red,
        temporal_layers: cfg.temporal_layers,
        twcc_interval_ms: cfg.twcc_interval.map(|d| d.as_secs_f64() * 1_000.0),
    }
}

pub(super) fn add_counters(a: &mut LinkCounters, b: &LinkCounters) {
    a.packets += b.packets;
    a.bytes += b.bytes;
    a.delivered += b.delivered;
    a.lost += b.lost;
    a.queue_drops += b.queue_drops;
    a.blocked += b.blocked;
    a.rtp_repeats += b.rtp_repeats;
    a.rtp_padding += b.rtp_padding;
    a.rtp_padding_dropped += b.rtp_padding_dropped;
}
