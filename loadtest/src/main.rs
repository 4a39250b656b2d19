//! `hoinghi-loadtest`: simulated commune points against hoinghi (in-process or running), with
//! emulated links and measurements; a side-by-side fan-out against Janus; the machine's
//! packet ceiling. `hoinghi-loadtest --help` lists the commands.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};
use loadtest::layers::Ladder;
use loadtest::link::LinkParams;
use loadtest::mediafile::FileMedia;
use loadtest::scenario::{self, LoadConfig, Scenario, Target, Tokens};

#[derive(Parser)]
#[command(
    name = "hoinghi-loadtest",
    about = "Simulated commune points against hoinghi: scenarios, emulated links, measurements",
    long_about = "Simulated commune points against hoinghi: scenarios, emulated links, measurements.\n\n\
        Each point is an async `webrtc` peer speaking the real /ws protocol. Without --server, \
        the production media plane and signaling run in this process with fixed tokens. The \
        report is JSON (--json FILE, schema in docs/benchmarks.md) plus a short table."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The chair publishes video and audio; N points subscribe.
    Fanout(Run),
    /// Chair + N points each publishing a camera; the chair receives them all as thumbnails
    /// (with --floor, one point holds the floor and everyone receives it).
    Townhall(Run),
    /// N points join within --spread seconds; join latency and failures.
    Joinstorm(Run),
    /// A long run with steady churn: one point leaves and another joins every --churn seconds.
    Soak(Run),
    /// The same fan-out load against Janus (VideoRoom, HTTP API) and hoinghi, side by side.
    Compare(loadtest::janus::CompareArgs),
    /// This machine's ceiling: AES-128-GCM encrypt + sendmmsg of 1,200-byte packets to loopback.
    Limit(loadtest::limit::LimitArgs),
    /// Runs a hoinghi media plane + signaling with fixed tokens (`chair`, `point-<i>`) in its
    /// own process, so a benchmark can measure its CPU and RSS from /proc.
    Serve {
        /// Address for /ws and /metrics (port 0: any).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Media worker threads.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        workers: u16,
        /// IP announced and bound for media.
        #[arg(long, default_value = "127.0.0.1")]
        media_ip: IpAddr,
    },
}

#[derive(Args, Clone)]
#[command(allow_negative_numbers = true)]
struct Run {
    /// Simulated points besides the chair (1..=2000).
    #[arg(short = 'n', long, default_value_t = 20)]
    points: usize,
    /// Measurement seconds after every point receives media (soak: the whole run).
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Chair video frames per second.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Chair video bitrate, kbit/s (one stream; with --simulcast, --layers sets the rates).
    #[arg(long, default_value_t = 800)]
    video_kbps: u32,
    /// Publish VP8 as simulcast layers instead of one stream: the chair, and in townhall every
    /// point's camera. Rids q, h, f (lowest first, the order the server ranks them by), each
    /// with its own SSRC, bitrate and keyframe resolution (320x180, 640x360, 1280x720), so the
    /// points report which layer they receive.
    #[arg(long)]
    simulcast: bool,
    /// With --simulcast: kbit/s of each layer, lowest first: 1 to 3 increasing values
    /// [default: 150,500,1200].
    #[arg(long, value_name = "KBPS,..", requires = "simulcast")]
    layers: Option<String>,
    /// Townhall: the chair grants the floor to point-0 before the window; the report says
    /// which points received its camera, at which layer, and what the chair received.
    #[arg(long)]
    floor: bool,
    /// Townhall: each point's camera bitrate, kbit/s (one stream; with --simulcast the points
    /// send the --layers ladder too, at --thumbnail-fps).
    #[arg(long, default_value_t = 100)]
    thumbnail_kbps: u32,
    /// Townhall: each point's camera frames per second.
    #[arg(long, default_value_t = 10)]
    thumbnail_fps: u32,
    /// Seconds between unrequested keyframes (0: only on request).
    #[arg(long, default_value_t = 10.0)]
    keyframe_interval: f64,
    /// Each point's access line: a profile (fibre, adsl, bad, flap, tcp-only) or values
    /// `rate=1M,loss=2,burst=3,delay=40,jitter=5,queue=200` (rate in bit/s with k/M; loss in
    /// %; times in ms), or a profile then overrides: `adsl,loss=5`.
    #[arg(long)]
    link: Option<LinkParams>,
    /// Seed of the link emulators.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Joinstorm: seconds over which all points join.
    #[arg(long, default_value_t = 10.0)]
    spread: f64,
    /// Soak: seconds between churn events.
    #[arg(long, default_value_t = 2.0)]
    churn: f64,
    /// Joins at a time while setting up (fanout, townhall, soak).
    #[arg(long, default_value_t = 8)]
    join_concurrency: usize,
    /// Seconds points may take to receive a first keyframe.
    #[arg(long, default_value_t = 60.0)]
    ready_timeout: f64,
    /// Local IP for the points' sockets.
    #[arg(long, default_value = "127.0.0.1")]
    bind_ip: IpAddr,
    /// A running server (`ws://host:port/ws`); without it, an in-process server is started.
    #[arg(long)]
    server: Option<String>,
    /// With --server: its pid on this machine (CPU and RSS from /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// With --server: its Prometheus endpoint (`http://host:port/metrics`).
    #[arg(long)]
    metrics: Option<String>,
    /// With --server: `fixed` (chair, point-<i>: `hoinghi-loadtest serve`) or a `hoinghi serve`
    /// data dir whose secret.key signs test-room tokens (chair, test-point-1..N; N ≤ 500), or
    /// a file of join links, one a line: the chair's, then one per point (a stored meeting's).
    #[arg(long, default_value = "fixed")]
    tokens: String,
    /// In-process server: media worker threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Write the JSON report here (`-`: stdout instead of the table).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Include every point's numbers in the JSON.
    #[arg(long)]
    per_point: bool,
    /// Progress lines on stderr.
    #[arg(long)]
    progress: bool,
    /// Publish this VP8 IVF clip (looped, its own keyframes) instead of synthetic video; send it
    /// at the clip's frame rate with --fps.
    #[arg(long)]
    video_file: Option<PathBuf>,
    /// Publish the Opus packets of this Ogg Opus file (looped) instead of silence.
    #[arg(long)]
    audio_file: Option<PathBuf>,
    /// Redundant audio (RFC 2198 RED, `red/48000/2`, Opus inside) for every point: publishers
    /// offer RED first and send each 20 ms frame with the previous one; subscribers accept RED
    /// and recover a lost packet's frame from the next. The report adds what it recovered.
    #[arg(long)]
    red: bool,
    /// Temporal layers in every synthetic video layer, as Chromium's VP8 simulcast sends them
    /// (1: none; 3: TID 0, 2, 1, 2 with 40 / 20 / 40 % of the bits; 2: TID 0, 1 with 60 / 40 %),
    /// so the server can shed and restore them as finer rungs.
    #[arg(long, default_value_t = 1)]
    temporal_layers: u8,
    /// Milliseconds between the points' transport-wide congestion feedback packets (`rtc`'s
    /// default: 100; Chromium sends them every 50 ms above ~200 kbit/s).
    #[arg(long)]
    twcc_interval: Option<u64>,
    /// The chair joins but does not publish; the program is the first video the points
    /// receive (a meeting linked to an upstream one: its points receive the upstream chair).
    #[arg(long)]
    chair_silent: bool,
}

fn secs(name: &str, v: f64, allow_zero: bool) -> anyhow::Result<Duration> {
    if !v.is_finite() || v < 0.0 || (!allow_zero && v == 0.0) {
        bail!(
            "--{name} must be {} (got {v})",
            if allow_zero {
                "zero or positive"
            } else {
                "positive"
            }
        );
    }
    Ok(Duration::from_secs_f64(v))
}

async fn run(scenario: Scenario, a: Run) -> anyhow::Result<()> {
    let files = FileMedia::load(a.video_file.as_deref(), a.audio_file.as_deref())?;
    if let Some(clip_fps) = files.video.as_ref().and_then(|v| v.header_fps)
        && (clip_fps - f64::from(a.fps)).abs() > 0.5
    {
        eprintln!(
            "note: the video file's header says {clip_fps:.1} fps; its frames are sent at --fps {}",
            a.fps
        );
    }
    let cfg = LoadConfig {
        scenario,
        points: a.points,
        seconds: a.seconds,
        fps: a.fps,
        video_kbps: a.video_kbps,
        thumbnail_kbps: a.thumbnail_kbps,
        thumbnail_fps: a.thumbnail_fps,
        keyframe_interval: Some(secs("keyframe-interval", a.keyframe_interval, true)?)
            .filter(|d| !d.is_zero()),
        link: a.link.clone(),
        seed: a.seed,
        join_spread: secs("spread", a.spread, true)?,
        churn_every: secs("churn", a.churn, false)?,
        join_concurrency: a.join_concurrency,
        ready_timeout: secs("ready-timeout", a.ready_timeout, false)?,
        bind_ip: a.bind_ip,
        progress: a.progress,
        per_point: a.per_point,
        files,
        simulcast: if a.simulcast {
            Some(match &a.layers {
                Some(l) => Ladder::parse(l).map_err(anyhow::Error::msg)?,
                None => Ladder::simulcast(&loadtest::layers::DEFAULT_KBPS)
                    .map_err(anyhow::Error::msg)?,
            })
        } else {
            None
        },
        floor: a.floor,
        red: a.red,
        temporal_layers: a.temporal_layers,
        twcc_interval: a.twcc_interval.map(Duration::from_millis),
        chair_silent: a.chair_silent,
    };
    if let Err(e) = cfg.validate() {
        bail!(e);
    }
    if a.workers == 0 {
        bail!("--workers must be at least 1");
    }
    let target = match &a.server {
        None => {
            if a.server_pid.is_some() || a.metrics.is_some() {
                bail!("--server-pid and --metrics need --server");
            }
            Target::InProcess { workers: a.workers }
        }
        Some(url) => {
            if !url.starts_with("ws://") {
                bail!(
                    "--server must be a ws:// URL (run hoinghi with --no-tls; wss is not supported yet)"
                );
            }
            let tokens = if a.tokens == "fixed" {
                Tokens::Fixed
            } else if std::path::Path::new(&a.tokens).is_file() {
                let tokens = Tokens::from_links(&std::fs::read_to_string(&a.tokens)?);
                if let Tokens::List(list) = &tokens
                    && list.len() < a.points + 1
                {
                    bail!(
                        "{} holds {} link(s): the chair's and {} point(s) needed",
                        a.tokens,
                        list.len(),
                        a.points
                    );
                }
                tokens
            } else {
                let dir = PathBuf::from(&a.tokens);
                let max = room_admin::test_room::MAX_POINTS;
                if a.points > max {
                    bail!(
                        "the test room of a data dir accepts {max} points (test-point-1..{max}); \
                         --points {} needs `--tokens fixed` against `hoinghi-loadtest serve`",
                        a.points
                    );
                }
                Tokens::DataDir(dir)
            };
            Target::Remote {
                ws_url: url.clone(),
                pid: a.server_pid,
                metrics_url: a.metrics.clone(),
                tokens,
            }
        }
    };
    let report = scenario::run(target, cfg).await?;
    let json = serde_json::to_string_pretty(&report)?;
    match a.json.as_deref() {
        Some(p) if p.as_os_str() == "-" => println!("{json}"),
        Some(p) => {
            std::fs::write(p, json + "\n")?;
            print!("{}", scenario::table(&report));
        }
        None => print!("{}", scenario::table(&report)),
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The in-process server's decisions (and the generator's own), to stderr, only when asked:
    // `HOINGHI_LOG=info,sfu::worker::allocate=debug` as for `hoinghi serve`.
    if let Ok(filter) = std::env::var("HOINGHI_LOG") {
        let filter = tracing_subscriber::EnvFilter::try_new(&filter)
            .map_err(|e| anyhow::anyhow!("invalid HOINGHI_LOG filter {filter:?}: {e}"))?;
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Fanout(a) => run(Scenario::Fanout, a).await,
            Command::Townhall(a) => run(Scenario::Townhall, a).await,
            Command::Joinstorm(a) => run(Scenario::Joinstorm, a).await,
            Command::Soak(a) => run(Scenario::Soak, a).await,
            Command::Compare(a) => loadtest::janus::compare(a).await,
            Command::Limit(a) => loadtest::limit::run(a),
            Command::Serve {
                listen,
                workers,
                media_ip,
            } => {
                let server = loadtest::inprocess::InProcessServer::start_on(
                    listen,
                    media_ip,
                    workers.into(),
                )
                .await?;
                println!("ready ws://{}/ws", server.http);
                println!("metrics http://{}/metrics", server.http);
                tokio::signal::ctrl_c().await?;
                Ok(())
            }
        }
    })
}
