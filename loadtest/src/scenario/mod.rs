//! Scenarios (fanout, townhall, joinstorm, soak) against an in-process server or a running
//! one, and the report they produce.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::http;
use crate::inprocess::{InProcessServer, process_cpu_seconds, thread_cpu_seconds};
use crate::link::{LinkCounters, LinkParams};
use crate::mediafile::FileMedia;
use crate::point::{Point, PointConfig, PointStats};
use crate::stats::Summary;

pub const SCHEMA: &str = "hoinghi-loadtest/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    Fanout,
    Townhall,
    Joinstorm,
    Soak,
}

/// Where the server is.
#[derive(Debug, Clone)]
pub enum Target {
    /// The production media plane and signaling in this process, with fixed tokens.
    InProcess { workers: usize },
    /// A server already running: `ws://host:port/ws`.
    Remote {
        ws_url: String,
        /// Its process id on this machine, for CPU and RSS from `/proc`.
        pid: Option<u32>,
        /// `http://host:port/metrics`, for counters and `process_*` gauges.
        metrics_url: Option<String>,
        tokens: Tokens,
    },
}

/// Where join tokens come from for a remote server.
#[derive(Debug, Clone)]
pub enum Tokens {
    /// `chair`, `point-<i>`: the in-process server's and `hoinghi-loadtest serve`'s tokens.
    Fixed,
    /// Signed with the data dir's `secret.key` for the test room (the chair and
    /// `test-point-1` .. `test-point-500`).
    DataDir(PathBuf),
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub scenario: Scenario,
    /// Points besides the chair.
    pub points: usize,
    /// Measurement window (fanout, townhall, joinstorm) or whole run (soak).
    pub seconds: f64,
    pub fps: u32,
    pub video_kbps: u32,
    /// Townhall: each point's thumbnail.
    pub thumbnail_kbps: u32,
    pub thumbnail_fps: u32,
    pub keyframe_interval: Option<Duration>,
    /// Emulated access line of every point (the chair is on the server's LAN).
    pub link: Option<LinkParams>,
    pub seed: u64,
    /// Joinstorm: all points join within this time.
    pub join_spread: Duration,
    /// Soak: one point leaves and another joins this often.
    pub churn_every: Duration,
    /// Joins at once while setting up (fanout, townhall, soak).
    pub join_concurrency: usize,
    /// How long points may take to receive media.
    pub ready_timeout: Duration,
    pub bind_ip: IpAddr,
    pub progress: bool,
    pub per_point: bool,
    /// Clips every publishing point sends instead of synthetic media (`--video-file`,
    /// `--audio-file`).
    pub files: FileMedia,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            scenario: Scenario::Fanout,
            points: 5,
            seconds: 10.0,
            fps: 30,
            video_kbps: 800,
            thumbnail_kbps: 100,
            thumbnail_fps: 10,
            keyframe_interval: Some(Duration::from_secs(10)),
            link: None,
            seed: 1,
            join_spread: Duration::from_secs(10),
            churn_every: Duration::from_secs(2),
            join_concurrency: 8,
            ready_timeout: Duration::from_secs(30),
            bind_ip: [127, 0, 0, 1].into(),
            progress: false,
            per_point: false,
            files: FileMedia::default(),
        }
    }
}

impl LoadConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.points == 0 {
            return Err("--points must be at least 1".into());
        }
        if self.points > 2_000 {
            return Err("--points above 2000 is not supported".into());
        }
        if !(self.seconds.is_finite() && self.seconds > 0.0) {
            return Err("--seconds must be positive".into());
        }
        if self.fps == 0 || self.fps > 120 {
            return Err("--fps must be between 1 and 120".into());
        }
        if self.video_kbps == 0 || self.thumbnail_kbps == 0 || self.thumbnail_fps == 0 {
            return Err("bitrates and frame rates must be positive".into());
        }
        if self.join_concurrency == 0 {
            return Err("--join-concurrency must be at least 1".into());
        }
        if let Some(l) = &self.link {
            l.validate()?;
        }
        Ok(())
    }
}

/// Bytes per delta frame for a bitrate (keyframes are 4× a delta frame; one keyframe per
/// interval barely moves the mean).
pub fn frame_bytes(kbps: u32, fps: u32) -> usize {
    ((u64::from(kbps) * 1_000 / 8 / u64::from(fps.max(1))) as usize).max(50)
}

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
    /// `join` (refused, dropped, timed out) or `media` (joined but no video arrived).
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
    /// Frozen time / time since the first frame, per point.
    pub freeze_ratio: Summary,
    pub layer_switches_total: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AudioReport {
    pub kbps: Summary,
    pub gaps_over_60ms_total: u64,
    /// Time in gaps / time since the first packet, per point.
    pub gap_ratio: Summary,
    pub loss_after_nack_pct: Summary,
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
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GeneratorReport {
    /// CPU of this process over the window, minus the in-process server's media threads.
    pub cpu_seconds: f64,
    pub cpu_cores: f64,
    pub rss_bytes: Option<u64>,
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
    pub audio_gaps: u64,
    pub audio_gap_ratio: f64,
    pub layer_switches: u64,
    pub rtt_ms: Option<f64>,
}

/// Window-start snapshot of one point.
#[derive(Debug, Clone, Copy, Default)]
struct Base {
    at: Option<Instant>,
    video_bytes: u64,
    audio_bytes: u64,
    packets: u64,
    frames: u64,
}

fn base_of(s: &PointStats, at: Instant) -> Base {
    let mut b = Base {
        at: Some(at),
        ..Default::default()
    };
    for st in s.streams.values() {
        b.packets += st.packets;
        if st.kind.as_deref() == Some("video") {
            b.video_bytes += st.bytes;
            b.frames += st.freezes.frames;
        } else {
            b.audio_bytes += st.bytes;
        }
    }
    b
}

struct Tracked {
    name: String,
    point: Option<Point>,
    base: Base,
    /// Final snapshot and when it was taken (at leave or at the end).
    last: Option<(PointStats, Instant)>,
    left_early: bool,
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn point_report(name: &str, s: &PointStats, base: &Base, end: Instant) -> PointReport {
    let start = base.at.unwrap_or(end);
    let window = end.saturating_duration_since(start).as_secs_f64().max(1e-3);
    let mut r = PointReport {
        name: name.to_owned(),
        rtt_ms: s.rtt.map(|r| r * 1_000.0),
        ..Default::default()
    };
    let (mut vb, mut ab, mut frames) = (0u64, 0u64, 0u64);
    let (mut v_expected, mut v_gaps, mut v_lost) = (0u64, 0u64, 0u64);
    let (mut frozen, mut video_span) = (Duration::ZERO, Duration::ZERO);
    let (mut gap_time, mut audio_span) = (Duration::ZERO, Duration::ZERO);
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
            if let Some(f) = st.first_packet_at {
                audio_span += end.saturating_duration_since(f);
            }
        }
    }
    r.video_kbps = vb.saturating_sub(base.video_bytes) as f64 * 8.0 / 1_000.0 / window;
    r.audio_kbps = ab.saturating_sub(base.audio_bytes) as f64 * 8.0 / 1_000.0 / window;
    r.fps = frames.saturating_sub(base.frames) as f64 / window;
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
    r
}

fn audio_loss_after(s: &PointStats) -> f64 {
    let (mut e, mut l) = (0, 0);
    for st in s.streams.values() {
        if st.kind.as_deref() == Some("audio") {
            e += st.seq.expected();
            l += st.seq.unrecovered();
        }
    }
    pct(l, e)
}

/// Samples of the server's resource use.
#[derive(Debug, Clone, Copy, Default)]
struct ServerSample {
    cpu: Option<f64>,
    rss: Option<u64>,
    packets_in: Option<f64>,
    packets_out: Option<f64>,
    plis: Option<f64>,
}

struct Server {
    inprocess: Option<InProcessServer>,
    ws_url: String,
    pid: Option<u32>,
    metrics_url: Option<String>,
    tokens: Tokens,
    label: String,
}

impl Server {
    async fn sample(&self) -> ServerSample {
        if let Some(s) = &self.inprocess {
            return ServerSample {
                cpu: Some(thread_cpu_seconds("media-")),
                rss: None,
                packets_in: Some(s.counter("hoinghi_rtp_packets_in_total")),
                packets_out: Some(s.counter("hoinghi_rtp_packets_out_total")),
                plis: Some(s.counter("hoinghi_plis_sent_total")),
            };
        }
        let mut out = ServerSample::default();
        if let Some(url) = &self.metrics_url
            && let Ok((200, text)) = http::request("GET", url, None, Duration::from_secs(5)).await
        {
            out.cpu = http::metric_sum(&text, "process_cpu_seconds_total");
            out.rss = http::metric_sum(&text, "process_resident_memory_bytes").map(|v| v as u64);
            out.packets_in = http::metric_sum(&text, "hoinghi_rtp_packets_in_total");
            out.packets_out = http::metric_sum(&text, "hoinghi_rtp_packets_out_total");
            out.plis = http::metric_sum(&text, "hoinghi_plis_sent_total");
        }
        if let Some(pid) = self.pid {
            if let Some(c) = process_cpu_seconds(pid) {
                out.cpu = Some(c);
            }
            if let Some(r) = rss_bytes(pid) {
                out.rss = Some(r);
            }
        }
        out
    }

    fn cpu_source(&self) -> &'static str {
        if self.inprocess.is_some() {
            "media-threads"
        } else if self.pid.is_some() {
            "proc"
        } else if self.metrics_url.is_some() {
            "metrics"
        } else {
            "none"
        }
    }

    fn token(&self, chair: bool, i: usize) -> anyhow::Result<String> {
        match &self.tokens {
            Tokens::Fixed => Ok(if chair {
                "chair".into()
            } else {
                format!("point-{i}")
            }),
            Tokens::DataDir(dir) => mint_test_room_token(dir, chair, i),
        }
    }
}

/// A test-room token signed with the data dir's secret: the chair, or point `i` (0-based) as
/// `test-point-{i + 1}`. The test room accepts points 1 ..= [`room_admin::test_room::MAX_POINTS`].
pub fn mint_test_room_token(
    dir: &std::path::Path,
    chair: bool,
    i: usize,
) -> anyhow::Result<String> {
    use room_admin::test_room;
    if !dir.join("secret.key").exists() {
        bail!(
            "{}: no secret.key (start the server once first)",
            dir.display()
        );
    }
    let secret = room_admin::Secret::load_or_create(dir).context("read secret.key")?;
    let tokens = room_admin::JoinTokens::new(&secret);
    let (code, name, role) = if chair {
        let c = test_room::CHAIR;
        (c.code.to_owned(), c.name.to_owned(), c.role)
    } else {
        let n = i + 1;
        if n > test_room::MAX_POINTS {
            bail!(
                "the test room accepts {} points; a data-dir token source cannot make point {n}",
                test_room::MAX_POINTS
            );
        }
        (
            test_room::point_code(n),
            test_room::point_name(n),
            signaling::protocol::Role::Point,
        )
    };
    let claims = room_admin::JoinClaims::new(
        test_room::MEETING_ID,
        &code,
        role,
        &name,
        SystemTime::now(),
        Duration::from_secs(3_600),
    );
    Ok(tokens.sign(&claims)?)
}

/// Resident set size of a process, bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1_024)
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split(' ').next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

fn self_cpu() -> f64 {
    process_cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// Runs one scenario and returns its report. Failures of individual points (refused, dropped,
/// timed out) are in the report; an error here means the run itself could not happen.
pub async fn run(target: Target, cfg: LoadConfig) -> anyhow::Result<Report> {
    cfg.validate().map_err(anyhow::Error::msg)?;
    let started_unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let server = match target {
        Target::InProcess { workers } => {
            let s = InProcessServer::start(workers).await?;
            Server {
                ws_url: s.ws_url(),
                inprocess: Some(s),
                pid: None,
                metrics_url: None,
                tokens: Tokens::Fixed,
                label: format!("in-process ({workers} media worker(s))"),
            }
        }
        Target::Remote {
            ws_url,
            pid,
            metrics_url,
            tokens,
        } => Server {
            label: format!("remote {ws_url}"),
            ws_url,
            inprocess: None,
            pid,
            metrics_url,
            tokens,
        },
    };
    let epoch = Instant::now();
    let point_cfg = |token: String, publish: bool, i: usize, kbps: u32, fps: u32| PointConfig {
        ws_url: server.ws_url.clone(),
        token,
        publish,
        bind_ip: cfg.bind_ip,
        video_fps: fps,
        video_frame_bytes: frame_bytes(kbps, fps),
        periodic_keyframes: cfg.keyframe_interval,
        link: if publish && i == usize::MAX {
            None
        } else {
            cfg.link.clone()
        },
        link_seed: cfg.seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
        epoch,
        files: cfg.files.clone(),
    };
    let rss0 = server.sample().await.rss;

    // The chair: publishes the program; in a townhall it also receives every point. A chair
    // that cannot join ends the run with a report saying so.
    let chair = match server.token(true, 0) {
        Ok(token) => match tokio::time::timeout(
            Duration::from_secs(20),
            Point::join(point_cfg(token, true, usize::MAX, cfg.video_kbps, cfg.fps)),
        )
        .await
        {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err("no answer within 20 s".to_owned()),
        },
        Err(e) => Err(format!("{e:#}")),
    };
    let chair = match chair {
        Ok(c) => c,
        Err(error) => {
            return Ok(failed_report(
                &cfg,
                &server.label,
                started_unix,
                Failure {
                    point: "chair".into(),
                    stage: "join",
                    error,
                },
            ));
        }
    };

    let publish_points = cfg.scenario == Scenario::Townhall;
    let make = |i: usize| -> anyhow::Result<PointConfig> {
        Ok(point_cfg(
            server.token(false, i)?,
            publish_points,
            i,
            cfg.thumbnail_kbps,
            cfg.thumbnail_fps,
        ))
    };

    let mut tracked: Vec<Tracked> = Vec::new();
    let mut failures: Vec<Failure> = Vec::new();
    let setup_start = Instant::now();
    let progress = |msg: String| {
        if cfg.progress {
            eprintln!("[{:6.1}s] {msg}", epoch.elapsed().as_secs_f64());
        }
    };

    // Joins: a storm spreads them evenly over the spread; other scenarios join a few at a time.
    let mut handles = Vec::new();
    let spread = if cfg.scenario == Scenario::Joinstorm {
        cfg.join_spread
    } else {
        Duration::ZERO
    };
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(
        if cfg.scenario == Scenario::Joinstorm {
            cfg.points
        } else {
            cfg.join_concurrency
        },
    ));
    for i in 0..cfg.points {
        let name = format!("point-{i}");
        let c = match make(i) {
            Ok(c) => c,
            Err(e) => {
                failures.push(Failure {
                    point: name,
                    stage: "join",
                    error: format!("{e:#}"),
                });
                continue;
            }
        };
        let at = setup_start + spread.mul_f64(i as f64 / cfg.points as f64);
        let sem = sem.clone();
        handles.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let _permit = sem.acquire_owned().await;
            let r = tokio::time::timeout(Duration::from_secs(30), Point::join(c)).await;
            let r = match r {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("no answer within 30 s")),
            };
            (name, r)
        }));
    }
    let total = handles.len();
    for (done, h) in handles.into_iter().enumerate() {
        let Ok((name, r)) = h.await else { continue };
        match r {
            Ok(p) => tracked.push(Tracked {
                name,
                point: Some(p),
                base: Base::default(),
                last: None,
                left_early: false,
            }),
            Err(e) => failures.push(Failure {
                point: name,
                stage: "join",
                error: format!("{e:#}"),
            }),
        }
        if (done + 1) % 50 == 0 {
            progress(format!("joined {}/{total}", done + 1));
        }
    }
    let setup_s = setup_start.elapsed().as_secs_f64();
    progress(format!(
        "{} joined, {} failed in {setup_s:.1}s; waiting for media",
        tracked.len(),
        failures.len()
    ));

    // Wait until every joined point has a complete keyframe (or the timeout).
    let deadline = Instant::now() + cfg.ready_timeout;
    loop {
        let waiting = tracked
            .iter()
            .filter(|t| {
                t.point.as_ref().is_some_and(|p| {
                    !p.snapshot()
                        .streams
                        .values()
                        .any(|s| s.first_complete_keyframe_at.is_some())
                })
            })
            .count();
        if waiting == 0 || Instant::now() > deadline {
            if waiting > 0 {
                progress(format!(
                    "{waiting} point(s) without a keyframe after the timeout"
                ));
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Measurement window.
    let s0 = server.sample().await;
    let load0 = load_average();
    let gen0 = self_cpu();
    let window_start = Instant::now();
    let chair_sent0 = chair.snapshot().packets_sent;
    let chair_base = base_of(&chair.snapshot(), window_start);
    for t in &mut tracked {
        if let Some(p) = &t.point {
            t.base = base_of(&p.snapshot(), window_start);
        }
    }
    let window = Duration::from_secs_f64(cfg.seconds);
    let mut churn_joins = 0;
    let mut churn_leaves = 0;
    let mut next_churn = window_start + cfg.churn_every;
    let mut churn_victim = 0usize;
    let mut churn_id = cfg.points;
    let mut last_progress = Instant::now();
    while window_start.elapsed() < window {
        let step = Duration::from_millis(100);
        tokio::time::sleep(step).await;
        if cfg.scenario == Scenario::Soak && Instant::now() >= next_churn && !tracked.is_empty() {
            next_churn += cfg.churn_every;
            // One point leaves (its final numbers are kept) and a new one joins.
            let n = tracked.len();
            let victim = &mut tracked[churn_victim % n];
            churn_victim += 1;
            if let Some(p) = victim.point.take() {
                victim.last = Some((p.snapshot(), Instant::now()));
                victim.left_early = true;
                p.leave();
                churn_leaves += 1;
            }
            let name = format!("point-{churn_id}");
            match make(churn_id) {
                Ok(c) => {
                    match tokio::time::timeout(Duration::from_secs(30), Point::join(c)).await {
                        Ok(Ok(p)) => {
                            churn_joins += 1;
                            tracked.push(Tracked {
                                name,
                                base: Base {
                                    at: Some(Instant::now()),
                                    ..Default::default()
                                },
                                point: Some(p),
                                last: None,
                                left_early: false,
                            });
                        }
                        Ok(Err(e)) => failures.push(Failure {
                            point: name,
                            stage: "join",
                            error: format!("{e:#}"),
                        }),
                        Err(_) => failures.push(Failure {
                            point: name,
                            stage: "join",
                            error: "no answer within 30 s".into(),
                        }),
                    }
                }
                Err(e) => failures.push(Failure {
                    point: name,
                    stage: "join",
                    error: format!("{e:#}"),
                }),
            }
            churn_id += 1;
        }
        if cfg.progress && last_progress.elapsed() >= Duration::from_secs(5) {
            last_progress = Instant::now();
            let rx: u64 = tracked
                .iter()
                .filter_map(|t| t.point.as_ref())
                .map(|p| p.snapshot().streams.values().map(|s| s.bytes).sum::<u64>())
                .sum();
            progress(format!(
                "measuring {:.0}/{:.0}s, {} points, {:.1} MB received",
                window_start.elapsed().as_secs_f64(),
                cfg.seconds,
                tracked.iter().filter(|t| t.point.is_some()).count(),
                rx as f64 / 1e6
            ));
        }
    }
    let window_end = Instant::now();
    let window_s = (window_end - window_start).as_secs_f64();
    let s1 = server.sample().await;
    let gen_cpu_total = self_cpu() - gen0;
    let chair_snap = chair.snapshot();
    let chair_sent = chair_snap.packets_sent - chair_sent0;
    for t in &mut tracked {
        if let Some(p) = &t.point {
            t.last = Some((p.snapshot(), window_end));
        }
    }

    // Per point numbers.
    let mut reports = Vec::new();
    let mut counts = Counts {
        requested: cfg.points,
        churn_joins,
        churn_leaves,
        ..Default::default()
    };
    let mut delivered = 0u64;
    let mut receiving = 0u64;
    let mut audio_loss = Vec::new();
    let mut link = cfg.link.as_ref().map(|_| LinkReport::default());
    let mut series: Vec<(f64, usize)> = Vec::new();
    for t in &tracked {
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
                    "UDP blocked: unsupported until the server offers ICE-TCP or TURN \
                     (no media path)"
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
        let r = point_report(&t.name, snap, &t.base, *end);
        if !t.left_early && t.base.at == Some(window_start) {
            // Only points present for the whole window count toward delivery.
            let chair_streams: u64 = snap
                .streams
                .values()
                .filter(|s| s.stream_id == chair.participant)
                .map(|s| s.packets)
                .sum();
            let base_chair: u64 = t.base.packets.min(chair_streams);
            delivered += chair_streams - base_chair;
            receiving += 1;
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
    let expected = chair_sent * receiving;
    let summary = |f: &dyn Fn(&PointReport) -> Option<f64>| {
        Summary::of(&reports.iter().filter_map(f).collect::<Vec<_>>())
    };
    let media_only = |r: &PointReport| r.video_kbps > 0.0 || r.fps > 0.0;

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
    let report = Report {
        schema: SCHEMA,
        scenario: cfg.scenario,
        target: server.label.clone(),
        started_unix,
        load_average: [load0, load_average()],
        config: config_report(&cfg),
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
            freeze_ratio: summary(&|r| media_only(r).then_some(r.freeze_ratio)),
            layer_switches_total: reports.iter().map(|r| r.layer_switches).sum(),
        },
        audio: AudioReport {
            kbps: summary(&|r| Some(r.audio_kbps)),
            gaps_over_60ms_total: reports.iter().map(|r| r.audio_gaps).sum(),
            gap_ratio: summary(&|r| Some(r.audio_gap_ratio)),
            loss_after_nack_pct: Summary::of(&audio_loss),
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
        },
        link,
        chair: chair_report,
        per_point: if cfg.per_point { reports } else { Vec::new() },
    };
    drop(tracked);
    drop(chair);
    Ok(report)
}

/// The report of a run that could not start (the chair could not join).
fn failed_report(cfg: &LoadConfig, target: &str, started_unix: u64, failure: Failure) -> Report {
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
        per_point: Vec::new(),
    }
}

fn config_report(cfg: &LoadConfig) -> ConfigReport {
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
    }
}

fn add_counters(a: &mut LinkCounters, b: &LinkCounters) {
    a.packets += b.packets;
    a.bytes += b.bytes;
    a.delivered += b.delivered;
    a.lost += b.lost;
    a.queue_drops += b.queue_drops;
    a.blocked += b.blocked;
}

fn f(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The short human table.
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    let link = r
        .config
        .link
        .as_ref()
        .map_or("direct".to_owned(), |l| l.name.clone());
    s += &format!(
        "{:?} · {} · {} points · link {} · window {:.1}s\n",
        r.scenario, r.target, r.points.requested, link, r.window_s
    );
    s += &format!(
        "points: joined {} · media {} · decodable {} · failed {}{}\n",
        r.points.joined,
        r.points.media,
        r.points.decodable,
        r.points.failed,
        if r.points.churn_joins > 0 {
            format!(
                " · churn {} joins / {} leaves",
                r.points.churn_joins, r.points.churn_leaves
            )
        } else {
            String::new()
        }
    );
    let j = &r.join_latency_s;
    s += &format!(
        "join → first keyframe (s): p50 {} · p95 {} · max {} (n={})\n",
        f(j.p50),
        f(j.p95),
        f(j.max),
        j.count
    );
    let v = &r.video;
    s += &format!(
        "video: {} kbit/s p50 · {} fps p50 · loss {}% → {}% after NACK (p95 {}%) · freezes {} · \
         freeze ratio p95 {}\n",
        f(v.kbps.p50),
        f(v.fps.p50),
        f(v.loss_before_nack_pct.mean),
        f(v.loss_after_nack_pct.mean),
        f(v.loss_after_nack_pct.p95),
        v.freezes_total,
        f(v.freeze_ratio.p95)
    );
    s += &format!(
        "audio: {} kbit/s p50 · gaps >60 ms {} · gap ratio p95 {}\n",
        f(r.audio.kbps.p50),
        r.audio.gaps_over_60ms_total,
        f(r.audio.gap_ratio.p95)
    );
    if r.rtt_ms.count > 0 {
        s += &format!(
            "rtt (ms): p50 {} · p95 {}\n",
            f(r.rtt_ms.p50),
            f(r.rtt_ms.p95)
        );
    }
    s += &format!(
        "delivered/expected: {}/{} = {:.4}\n",
        r.delivery.packets_delivered, r.delivery.packets_expected, r.delivery.ratio
    );
    let sv = &r.server;
    s += &format!(
        "server ({}): cpu {} s ({} cores) · {} µs per forwarded packet · rss {} · packets out {}\n",
        sv.cpu_source,
        sv.cpu_seconds.map_or("-".into(), f),
        sv.cpu_cores.map_or("-".into(), f),
        sv.cpu_us_per_forwarded_packet.map_or("-".into(), f),
        sv.rss_bytes
            .map_or("-".into(), |b| format!("{:.1} MB", b as f64 / 1e6)),
        sv.packets_out.map_or("-".into(), |p| format!("{p:.0}")),
    );
    s += &format!(
        "generator: cpu {} s ({} cores)\n",
        f(r.generator.cpu_seconds),
        f(r.generator.cpu_cores)
    );
    if let Some(c) = &r.chair {
        s += &format!(
            "chair receives: {} video + {} audio streams · {} kbit/s video total · fps p50 {}\n",
            c.video_streams,
            c.audio_streams,
            f(c.video_kbps_total),
            f(c.video_fps.p50)
        );
    }
    for fl in r.failures.iter().take(5) {
        s += &format!("failure: {} [{}] {}\n", fl.point, fl.stage, fl.error);
    }
    if r.failures.len() > 5 {
        s += &format!(
            "… {} more failures in the JSON report\n",
            r.failures.len() - 5
        );
    }
    s
}
