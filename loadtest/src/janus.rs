//! `compare`: the same fan-out load against Janus (VideoRoom over its HTTP API) and against
//! hoinghi (`hoinghi-loadtest serve` in its own process), measured the same way: the SFU
//! process's CPU and RSS from `/proc/<pid>`, packets counted at the subscribers.
//!
//! Janus: create a session and a handle per participant, `create` a room, the publisher
//! `joinandconfigure`s with our offer, each subscriber `join`s as a subscriber, answers Janus's
//! offer and sends `start`. Clients do not trickle: they send `{"candidate":{"completed":true}}`.

use std::net::IpAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, watch};
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};

use crate::http;
use crate::inprocess::process_cpu_seconds;
use crate::point::{
    PointConfig, PointStats, SharedStats, answer_offer, build_publisher, build_subscriber,
    spawn_media, wait_gathered,
};
use crate::scenario::{self, LoadConfig, Scenario, Target, Tokens, frame_bytes, rss_bytes};

#[derive(clap::Args, Clone)]
pub struct CompareArgs {
    /// Subscribers (1..=1000).
    #[arg(short = 'n', long, default_value_t = 50)]
    pub points: usize,
    /// Measurement seconds.
    #[arg(long, default_value_t = 20.0)]
    pub seconds: f64,
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    #[arg(long, default_value_t = 800)]
    pub video_kbps: u32,
    /// Janus HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:8088/janus")]
    pub janus_url: String,
    /// Janus's pid (CPU and RSS from /proc).
    #[arg(long)]
    pub janus_pid: Option<u32>,
    /// Address the clients use towards Janus (Janus gathers no loopback candidates): default
    /// the machine's first non-loopback IPv4.
    #[arg(long)]
    pub janus_ip: Option<IpAddr>,
    /// hoinghi media workers.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Only run one side.
    #[arg(long, value_parser = ["both", "janus", "hoinghi"], default_value = "both")]
    pub only: String,
    /// Write the JSON result here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    #[arg(long)]
    pub progress: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SideResult {
    pub sfu: String,
    pub subscribers_requested: usize,
    pub subscribers_receiving: usize,
    pub failures: Vec<String>,
    pub window_s: f64,
    pub packets_expected: u64,
    pub packets_delivered: u64,
    pub delivered_ratio: f64,
    pub cpu_seconds: Option<f64>,
    pub cpu_us_per_forwarded_packet: Option<f64>,
    pub rss_bytes: Option<u64>,
    pub rss_per_subscriber_bytes: Option<f64>,
    pub generator_cpu_seconds: f64,
    /// 1-minute load average at the start and end of the window (other work on the machine).
    pub load_average: [f64; 2],
}

#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    pub schema: &'static str,
    pub points: usize,
    pub seconds: f64,
    pub fps: u32,
    pub video_kbps: u32,
    pub hoinghi: Option<SideResult>,
    pub janus: Option<SideResult>,
    /// hoinghi CPU per forwarded packet / Janus's (below 1: hoinghi is cheaper).
    pub cpu_per_packet_ratio: Option<f64>,
    pub rss_per_subscriber_ratio: Option<f64>,
}

pub fn machine_ip() -> Option<IpAddr> {
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .map(|i| i.ip())
        .find(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local(),
            IpAddr::V6(_) => false,
        })
}

pub async fn compare(a: CompareArgs) -> anyhow::Result<()> {
    if a.points == 0 || a.points > 1000 {
        bail!("--points must be between 1 and 1000");
    }
    if !(a.seconds.is_finite() && a.seconds > 0.0) || a.fps == 0 || a.video_kbps == 0 {
        bail!("--seconds, --fps and --video-kbps must be positive");
    }
    let mut report = CompareReport {
        schema: "hoinghi-loadtest-compare/1",
        points: a.points,
        seconds: a.seconds,
        fps: a.fps,
        video_kbps: a.video_kbps,
        hoinghi: None,
        janus: None,
        cpu_per_packet_ratio: None,
        rss_per_subscriber_ratio: None,
    };
    if a.only != "hoinghi" {
        let side = match run_janus(&a).await {
            Ok(s) => s,
            Err(e) => SideResult {
                sfu: "janus".into(),
                subscribers_requested: a.points,
                failures: vec![format!("{e:#}")],
                ..Default::default()
            },
        };
        report.janus = Some(side);
    }
    if a.only != "janus" {
        report.hoinghi = Some(run_hoinghi(&a).await?);
    }
    if let (Some(h), Some(j)) = (&report.hoinghi, &report.janus) {
        report.cpu_per_packet_ratio = h
            .cpu_us_per_forwarded_packet
            .zip(j.cpu_us_per_forwarded_packet)
            .map(|(h, j)| h / j);
        report.rss_per_subscriber_ratio = h
            .rss_per_subscriber_bytes
            .zip(j.rss_per_subscriber_bytes)
            .map(|(h, j)| h / j);
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)? + "\n")?;
    }
    print!("{}", table(&report));
    Ok(())
}

pub fn table(r: &CompareReport) -> String {
    let mut s = format!(
        "fan-out: 1 publisher ({} kbit/s, {} fps) → {} subscribers, {:.0} s window\n",
        r.video_kbps, r.fps, r.points, r.seconds
    );
    s += "| SFU | receiving | delivered/expected | CPU s | µs CPU per forwarded packet | RSS | RSS per subscriber |\n|---|---|---|---|---|---|---|\n";
    for side in [&r.hoinghi, &r.janus].into_iter().flatten() {
        s += &format!(
            "| {} | {}/{} | {:.4} | {} | {} | {} | {} |\n",
            side.sfu,
            side.subscribers_receiving,
            side.subscribers_requested,
            side.delivered_ratio,
            side.cpu_seconds.map_or("-".into(), |c| format!("{c:.2}")),
            side.cpu_us_per_forwarded_packet
                .map_or("-".into(), |c| format!("{c:.2}")),
            side.rss_bytes
                .map_or("-".into(), |b| format!("{:.1} MB", b as f64 / 1e6)),
            side.rss_per_subscriber_bytes
                .map_or("-".into(), |b| format!("{:.0} kB", b / 1e3)),
        );
        for f in side.failures.iter().take(3) {
            s += &format!("  {} failure: {f}\n", side.sfu);
        }
    }
    if let Some(x) = r.cpu_per_packet_ratio {
        s += &format!(
            "hoinghi/Janus CPU per forwarded packet: {x:.3} (Janus/hoinghi = {:.2}×)\n",
            1.0 / x
        );
    }
    if let Some(x) = r.rss_per_subscriber_ratio {
        s += &format!("hoinghi/Janus RSS per subscriber: {x:.3}\n");
    }
    s
}

async fn run_hoinghi(a: &CompareArgs) -> anyhow::Result<SideResult> {
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--workers"])
        .arg(a.workers.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("start hoinghi-loadtest serve")?;
    let pid = child.id();
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut ws_url = None;
    let mut metrics = None;
    while let Some(l) = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await?? {
        if let Some(u) = l.strip_prefix("ready ") {
            ws_url = Some(u.to_owned());
        }
        if let Some(u) = l.strip_prefix("metrics ") {
            metrics = Some(u.to_owned());
            break;
        }
    }
    let ws_url = ws_url.context("serve printed no ready line")?;
    let cfg = LoadConfig {
        scenario: Scenario::Fanout,
        points: a.points,
        seconds: a.seconds,
        fps: a.fps,
        video_kbps: a.video_kbps,
        progress: a.progress,
        ..LoadConfig::default()
    };
    let r = scenario::run(
        Target::Remote {
            ws_url,
            pid,
            metrics_url: metrics,
            tokens: Tokens::Fixed,
        },
        cfg,
    )
    .await?;
    let _ = child.kill().await;
    Ok(SideResult {
        sfu: "hoinghi".into(),
        subscribers_requested: a.points,
        subscribers_receiving: r.points.media,
        failures: r
            .failures
            .iter()
            .map(|f| format!("{} [{}] {}", f.point, f.stage, f.error))
            .collect(),
        window_s: r.window_s,
        packets_expected: r.delivery.packets_expected,
        packets_delivered: r.delivery.packets_delivered,
        delivered_ratio: r.delivery.ratio,
        cpu_seconds: r.server.cpu_seconds,
        // Per delivered packet, exactly as for Janus (not the server's own counter).
        cpu_us_per_forwarded_packet: r
            .server
            .cpu_seconds
            .filter(|_| r.delivery.packets_delivered > 0)
            .map(|c| c * 1e6 / r.delivery.packets_delivered as f64),
        rss_bytes: r.server.rss_bytes,
        rss_per_subscriber_bytes: r.server.rss_per_point_bytes,
        generator_cpu_seconds: r.generator.cpu_seconds,
        load_average: r.load_average,
    })
}

/// One Janus session + plugin handle.
struct Handle {
    base: String,
    session: u64,
    handle: u64,
}

fn tx() -> String {
    format!("t{:x}", rand::random::<u64>())
}

async fn post(url: &str, body: Value) -> anyhow::Result<Value> {
    let (status, text) = http::request(
        "POST",
        url,
        Some(&body.to_string()),
        Duration::from_secs(20),
    )
    .await?;
    if status != 200 {
        bail!("{url}: HTTP {status}: {text}");
    }
    let v: Value = serde_json::from_str(&text).with_context(|| format!("bad JSON: {text}"))?;
    if v["janus"] == "error" {
        bail!("janus error: {}", v["error"]);
    }
    Ok(v)
}

impl Handle {
    async fn new(base: &str) -> anyhow::Result<Handle> {
        let s = post(base, json!({"janus": "create", "transaction": tx()})).await?;
        let session = s["data"]["id"].as_u64().context("no session id")?;
        let h = post(
            &format!("{base}/{session}"),
            json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": tx()}),
        )
        .await?;
        let handle = h["data"]["id"].as_u64().context("no handle id")?;
        Ok(Handle {
            base: base.to_owned(),
            session,
            handle,
        })
    }

    fn url(&self) -> String {
        format!("{}/{}/{}", self.base, self.session, self.handle)
    }

    /// Sends a plugin message; returns the synchronous answer (`success` or `ack`).
    async fn message(&self, body: Value, jsep: Option<Value>) -> anyhow::Result<Value> {
        let mut m = json!({"janus": "message", "body": body, "transaction": tx()});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        post(&self.url(), m).await
    }

    async fn trickle_done(&self) -> anyhow::Result<()> {
        post(
            &self.url(),
            json!({"janus": "trickle", "candidate": {"completed": true}, "transaction": tx()}),
        )
        .await
        .map(|_| ())
    }

    /// Long-polls the session until an event for this handle arrives.
    async fn event(&self, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let url = format!("{}/{}?maxev=1&rid={}", self.base, self.session, tx());
            let (status, text) = http::request("GET", &url, None, Duration::from_secs(35)).await?;
            if status != 200 {
                bail!("poll: HTTP {status}: {text}");
            }
            let v: Value =
                serde_json::from_str(&text).with_context(|| format!("bad JSON: {text}"))?;
            let events = if v.is_array() {
                v.as_array().cloned().unwrap_or_default()
            } else {
                vec![v]
            };
            for e in events {
                if e["janus"] == "event" && e["sender"].as_u64() == Some(self.handle) {
                    if let Some(err) = e["plugindata"]["data"].get("error") {
                        bail!("videoroom: {err}");
                    }
                    return Ok(e);
                }
            }
        }
        bail!("no event from Janus within {timeout:?}")
    }

    async fn destroy(&self) {
        let _ = post(
            &format!("{}/{}", self.base, self.session),
            json!({"janus": "destroy", "transaction": tx()}),
        )
        .await;
    }
}

async fn run_janus(a: &CompareArgs) -> anyhow::Result<SideResult> {
    let ip = a
        .janus_ip
        .or_else(machine_ip)
        .context("no non-loopback IPv4 address for Janus (pass --janus-ip)")?;
    let base = a.janus_url.trim_end_matches('/').to_owned();
    let room: u64 = 1_000 + u64::from(rand::random::<u16>());
    let pid = a.janus_pid;
    let rss0 = pid.and_then(rss_bytes);
    let progress = |m: String| {
        if a.progress {
            eprintln!("[janus] {m}");
        }
    };

    // Room and publisher.
    let pub_handle = Handle::new(&base).await.context("Janus HTTP API")?;
    pub_handle
        .message(
            json!({"request": "create", "room": room, "publishers": 1, "videocodec": "vp8",
                   "audiocodec": "opus", "bitrate": 0, "fir_freq": 10, "permanent": false}),
            None,
        )
        .await
        .context("create room")?;
    let cfg = PointConfig {
        publish: true,
        bind_ip: ip,
        video_fps: a.fps,
        video_frame_bytes: frame_bytes(a.video_kbps, a.fps),
        periodic_keyframes: Some(Duration::from_secs(10)),
        ..PointConfig::default()
    };
    let chair_stats: SharedStats = Arc::new(Mutex::new(PointStats::default()));
    let (control_tx, _control_rx) = mpsc::channel(8);
    let (pc, video, audio) = build_publisher(&cfg, chair_stats.clone(), control_tx).await?;
    let offer = pc.create_offer(None).await.map_err(|e| anyhow!("{e}"))?;
    pc.set_local_description(offer)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    wait_gathered(&pc).await;
    let sdp = pc
        .local_description()
        .await
        .context("no local description")?
        .sdp;
    pub_handle
        .message(
            json!({"request": "joinandconfigure", "room": room, "ptype": "publisher",
                   "display": "chair", "audio": true, "video": true}),
            Some(json!({"type": "offer", "sdp": sdp})),
        )
        .await?;
    pub_handle.trickle_done().await?;
    let ev = pub_handle.event(Duration::from_secs(20)).await?;
    let feed = ev["plugindata"]["data"]["id"]
        .as_u64()
        .context("no publisher id in joined event")?;
    let answer = ev["jsep"]["sdp"]
        .as_str()
        .context("no answer from Janus")?
        .to_owned();
    pc.set_remote_description(RTCSessionDescription::answer(answer).map_err(|e| anyhow!("{e}"))?)
        .await
        .map_err(|e| anyhow!("set answer: {e}"))?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    spawn_media(
        cfg.clone(),
        video,
        audio,
        chair_stats.clone(),
        None,
        None,
        shutdown_rx,
    );
    progress(format!("publisher up as feed {feed}"));
    // Let the publisher's media reach Janus before subscribing.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Subscribers, a few at a time.
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = Vec::new();
    for i in 0..a.points {
        let sem = sem.clone();
        let base = base.clone();
        let cfg = PointConfig {
            publish: false,
            ..cfg.clone()
        };
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire_owned().await;
            let r: anyhow::Result<(Handle, Arc<dyn PeerConnection>, SharedStats)> = async {
                let h = Handle::new(&base).await?;
                h.message(
                    json!({"request": "join", "room": room, "ptype": "subscriber",
                           "streams": [{"feed": feed}]}),
                    None,
                )
                .await?;
                let ev = h.event(Duration::from_secs(20)).await?;
                let offer = ev["jsep"]["sdp"].as_str().context("no offer")?.to_owned();
                let stats: SharedStats = Arc::new(Mutex::new(PointStats {
                    ws_started_at: Some(Instant::now()),
                    ..Default::default()
                }));
                let pc = build_subscriber(&cfg, stats.clone()).await?;
                let answer = answer_offer(&pc, offer).await?;
                h.message(
                    json!({"request": "start"}),
                    Some(json!({"type": "answer", "sdp": answer})),
                )
                .await?;
                h.trickle_done().await?;
                Ok((h, pc, stats))
            }
            .await;
            (i, r)
        }));
    }
    let mut subs = Vec::new();
    let mut failures = Vec::new();
    for t in tasks {
        if let Ok((i, r)) = t.await {
            match r {
                Ok(s) => subs.push(s),
                Err(e) => failures.push(format!("subscriber {i}: {e:#}")),
            }
        }
    }
    progress(format!(
        "{} subscribers joined, {} failed",
        subs.len(),
        failures.len()
    ));
    let video_packets = |s: &SharedStats| -> (u64, bool) {
        let g = s.lock().unwrap_or_else(|e| e.into_inner());
        let total = g.streams.values().map(|st| st.packets).sum();
        let video = g
            .streams
            .values()
            .any(|st| st.kind.as_deref() == Some("video") && st.packets > 0);
        (total, video)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !subs.iter().all(|(_, _, s)| video_packets(s).1) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let receiving = subs.iter().filter(|(_, _, s)| video_packets(s).1).count();
    let cpu0 = pid.and_then(process_cpu_seconds);
    let gen0 = process_cpu_seconds(std::process::id()).unwrap_or(0.0);
    let sent0 = chair_stats.lock().map(|s| s.packets_sent).unwrap_or(0);
    let rx0: Vec<u64> = subs.iter().map(|(_, _, s)| video_packets(s).0).collect();
    let load0 = scenario::load_average();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
    let load1 = scenario::load_average();
    let window_s = t0.elapsed().as_secs_f64();
    let cpu = pid
        .and_then(process_cpu_seconds)
        .zip(cpu0)
        .map(|(b, a)| b - a);
    let gen_cpu = process_cpu_seconds(std::process::id()).unwrap_or(0.0) - gen0;
    let sent = chair_stats.lock().map(|s| s.packets_sent).unwrap_or(0) - sent0;
    let delivered: u64 = subs
        .iter()
        .zip(&rx0)
        .map(|((_, _, s), b)| video_packets(s).0 - b)
        .sum();
    let rss = pid.and_then(rss_bytes);
    let expected = sent * subs.len() as u64;

    let _ = shutdown_tx.send(true);
    for (h, pc, _) in &subs {
        let _ = pc.close().await;
        h.destroy().await;
    }
    let _ = pc.close().await;
    let _ = pub_handle
        .message(json!({"request": "destroy", "room": room}), None)
        .await;
    pub_handle.destroy().await;
    Ok(SideResult {
        sfu: "janus".into(),
        subscribers_requested: a.points,
        subscribers_receiving: receiving,
        failures,
        window_s,
        packets_expected: expected,
        packets_delivered: delivered,
        delivered_ratio: if expected > 0 {
            delivered as f64 / expected as f64
        } else {
            0.0
        },
        cpu_seconds: cpu,
        cpu_us_per_forwarded_packet: cpu
            .filter(|_| delivered > 0)
            .map(|c| c * 1e6 / delivered as f64),
        rss_bytes: rss,
        rss_per_subscriber_bytes: rss0
            .zip(rss)
            .filter(|_| !subs.is_empty())
            .map(|(a, b)| (b as f64 - a as f64) / subs.len() as f64),
        generator_cpu_seconds: gen_cpu,
        load_average: [load0, load1],
    })
}
