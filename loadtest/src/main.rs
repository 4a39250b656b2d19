//! `hoinghi-loadtest`: simulated points against the media plane, with measurements.
//!
//! Today: `fanout` against an in-process server (one chair publishing VP8 + Opus, N points
//! subscribing), reporting the media workers' CPU per forwarded packet. The full tool (remote
//! servers, link emulation, other scenarios, Janus comparison) is issue "loadtest".

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Parser, Subcommand};
use loadtest::inprocess::{InProcessServer, thread_cpu_seconds};
use loadtest::point::{Point, PointConfig};
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "hoinghi-loadtest",
    about = "Simulated conference points against hoinghi"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One chair publishes video and audio; N points subscribe. Runs an in-process server.
    Fanout {
        /// Number of subscribing points (1..=1000).
        #[arg(long, default_value_t = 20)]
        subscribers: usize,
        /// Measurement duration in seconds, after every point receives media.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Media worker threads of the in-process server.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Video frames per second of the chair.
        #[arg(long, default_value_t = 30)]
        fps: u32,
        /// Bytes per delta frame (keyframes are 4×).
        #[arg(long, default_value_t = 4_000)]
        frame_bytes: usize,
    },
}

#[derive(Serialize)]
struct FanoutReport {
    subscribers: usize,
    seconds: f64,
    workers: usize,
    packets_in: f64,
    packets_out: f64,
    expected_out: f64,
    delivered_ratio: f64,
    sfu_cpu_seconds: f64,
    sfu_cpu_us_per_forwarded_packet: f64,
    process_cpu_seconds: f64,
    received_per_point_min: u64,
    discontinuities_total: u64,
    setup_seconds: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Fanout {
            subscribers,
            seconds,
            workers,
            fps,
            frame_bytes,
        } => {
            if subscribers == 0 || subscribers > 1000 {
                bail!("--subscribers must be between 1 and 1000");
            }
            if seconds == 0 || fps == 0 || frame_bytes == 0 || workers == 0 {
                bail!("--seconds, --fps, --frame-bytes and --workers must be positive");
            }
            let r = fanout(subscribers, seconds, workers, fps, frame_bytes).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
    }
    Ok(())
}

async fn fanout(
    n: usize,
    seconds: u64,
    workers: usize,
    fps: u32,
    frame_bytes: usize,
) -> anyhow::Result<FanoutReport> {
    let server = InProcessServer::start(workers).await?;
    let cfg = |token: String, publish: bool| PointConfig {
        ws_url: server.ws_url(),
        token,
        publish,
        bind_ip: [127, 0, 0, 1].into(),
        video_fps: fps,
        video_frame_bytes: frame_bytes,
        periodic_keyframes: Some(Duration::from_secs(10)),
    };
    let setup = Instant::now();
    let _chair = Point::join(cfg("chair".into(), true)).await?;
    let mut points = Vec::new();
    for i in 0..n {
        points.push(Point::join(cfg(format!("point-{i}"), false)).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = points.iter().all(|p| {
            p.snapshot()
                .streams
                .values()
                .filter(|s| s.packets > 0)
                .count()
                == 2
        });
        if ready {
            break;
        }
        if Instant::now() > deadline {
            bail!("not every point received media within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let setup_seconds = setup.elapsed().as_secs_f64();
    let received = |points: &[Point]| -> Vec<u64> {
        points
            .iter()
            .map(|p| p.snapshot().streams.values().map(|s| s.packets).sum())
            .collect()
    };
    let cpu0 = thread_cpu_seconds("media-");
    let proc0 = loadtest::inprocess::process_cpu_seconds(std::process::id()).unwrap_or(0.0);
    let (in0, out0) = (
        server.counter("hoinghi_rtp_packets_in_total"),
        server.counter("hoinghi_rtp_packets_out_total"),
    );
    let rx0 = received(&points);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = thread_cpu_seconds("media-") - cpu0;
    let proc_cpu =
        loadtest::inprocess::process_cpu_seconds(std::process::id()).unwrap_or(0.0) - proc0;
    let packets_in = server.counter("hoinghi_rtp_packets_in_total") - in0;
    let packets_out = server.counter("hoinghi_rtp_packets_out_total") - out0;
    let rx1 = received(&points);
    let per_point: Vec<u64> = rx1.iter().zip(&rx0).map(|(a, b)| a - b).collect();
    let expected = packets_in * n as f64;
    Ok(FanoutReport {
        subscribers: n,
        seconds: elapsed,
        workers,
        packets_in,
        packets_out,
        expected_out: expected,
        delivered_ratio: if expected > 0.0 {
            per_point.iter().sum::<u64>() as f64 / expected
        } else {
            0.0
        },
        sfu_cpu_seconds: cpu,
        sfu_cpu_us_per_forwarded_packet: if packets_out > 0.0 {
            cpu * 1e6 / packets_out
        } else {
            0.0
        },
        process_cpu_seconds: proc_cpu,
        received_per_point_min: per_point.iter().copied().min().unwrap_or(0),
        discontinuities_total: points
            .iter()
            .map(|p| {
                p.snapshot()
                    .streams
                    .values()
                    .map(|s| s.discontinuities)
                    .sum::<u64>()
            })
            .sum(),
        setup_seconds,
    })
}
