//! Scenarios (fanout, townhall, joinstorm, soak) against an in-process server or a running
//! one, and the report they produce.
//!
//! # Layout
//! - this module: the run itself (joins, readiness, floor, window, churn); `config`: what a
//!   run is asked to do ([`LoadConfig`]) and its validation.
//! - `server`: the server under test, its samples (CPU, RSS, Prometheus series) and tokens.
//! - `floor`: the town hall's floor holder.
//! - `measure`: per-point window numbers and the per-layer view across points.
//! - `summary`: snapshots → [`Report`]; `report`: the report's types; `table`: the human table.

mod config;
mod floor;
mod measure;
mod report;
mod server;
mod summary;
mod table;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::layers::Ladder;
use crate::point::{Point, PointConfig};
pub use config::LoadConfig;
use measure::{Base, LayerView, Tracked, base_of};
pub use report::*;
use server::{Server, self_cpu};
pub use server::{load_average, mint_test_room_token, rss_bytes};
pub use table::table;

pub const SCHEMA: &str = "hoinghi-loadtest/2";

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
    /// Given: the chair's token, then point `i`'s (a stored meeting's links, `t=` values).
    List(Vec<String>),
}

impl Tokens {
    /// A token list from a file: one join link (`…/join?t=TOKEN`) or bare token a line, the
    /// chair's first; blank lines and `#` comments skipped.
    pub fn from_links(text: &str) -> Tokens {
        Tokens::List(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| l.rsplit_once("t=").map_or(l, |(_, t)| t).to_owned())
                .collect(),
        )
    }
}

/// Bytes per delta frame for a bitrate (keyframes are 4× a delta frame; one keyframe per
/// interval barely moves the mean).
pub fn frame_bytes(kbps: u32, fps: u32) -> usize {
    ((u64::from(kbps) * 1_000 / 8 / u64::from(fps.max(1))) as usize).max(50)
}

/// Runs one scenario and returns its report. Failures of individual points (refused, dropped,
/// timed out) are in the report; an error here means the run itself could not happen.
pub async fn run(target: Target, cfg: LoadConfig) -> anyhow::Result<Report> {
    cfg.validate().map_err(anyhow::Error::msg)?;
    let started_unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let server = Server::start(target).await?;
    let epoch = Instant::now();
    let epoch_unix_s = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    // The generator's own stalls, on the runtime every point shares, from the same epoch.
    let stall_monitor = crate::stall::StallMonitor::start(epoch);
    // Received keyframes are matched against the layers publishers send (by resolution).
    let receive_ladder = cfg.simulcast.clone().unwrap_or_else(|| {
        let (w, h) = cfg
            .files
            .video
            .as_ref()
            .map_or(crate::point::publish::SINGLE_DIMS, |v| (v.width, v.height));
        Ladder::single(cfg.video_kbps, w, h)
    });
    let point_cfg = |token: String, publish: bool, i: usize, kbps: u32, fps: u32| PointConfig {
        ws_url: server.ws_url.clone(),
        token,
        publish,
        bind_ip: cfg.bind_ip,
        video_fps: fps,
        video_frame_bytes: frame_bytes(kbps, fps),
        publish_layers: cfg.simulcast.clone(),
        receive_ladder: receive_ladder.clone(),
        periodic_keyframes: cfg.keyframe_interval,
        link: if publish && i == usize::MAX {
            None
        } else {
            cfg.link.clone()
        },
        link_seed: cfg.seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
        epoch,
        files: cfg.files.clone(),
        red: cfg.red,
        probe_padding: 0,
        first_answer_fault: None,
        ice_timeouts: None,
        temporal_layers: cfg.temporal_layers,
        twcc_interval: cfg.twcc_interval,
    };
    let rss0 = server.sample().await.rss;

    // The chair: publishes the program; in a townhall it also receives every point. A chair
    // that cannot join ends the run with a report saying so.
    let chair = match server.token(true, 0) {
        Ok(token) => match tokio::time::timeout(
            Duration::from_secs(20),
            Point::join(point_cfg(
                token,
                !cfg.chair_silent,
                usize::MAX,
                cfg.video_kbps,
                cfg.fps,
            )),
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

    // Townhall with a floor holder: the chair grants the floor to the first point that joined.
    let mut floor = None;
    if cfg.floor
        && let Some(p) = tracked.first().and_then(|t| t.point.as_ref())
    {
        let i: usize = tracked[0]
            .name
            .strip_prefix("point-")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let code = server.point_code(i);
        progress(format!("granting the floor to {code}"));
        let run = floor::grant(
            &chair,
            code,
            p.participant.clone(),
            &tracked,
            cfg.ready_timeout,
        )
        .await;
        if run.confirmed_at.is_none() {
            failures.push(Failure {
                point: "chair".into(),
                stage: "floor",
                error: format!(
                    "grant_floor {}: no room_state naming it within {:?}",
                    run.code, cfg.ready_timeout
                ),
            });
        }
        floor = Some(run);
    }

    // Measurement window. With a silent chair, the program is the video the first point with
    // media receives (the upstream seat of a linked meeting).
    let program = if cfg.chair_silent {
        tracked
            .iter()
            .filter_map(|t| t.point.as_ref())
            .find_map(|p| {
                p.snapshot()
                    .streams
                    .values()
                    .find(|s| s.kind.as_deref() == Some("video") && s.first_packet_at.is_some())
                    .map(|s| s.stream_id.clone())
            })
            .unwrap_or_default()
    } else {
        chair.participant.clone()
    };
    let view = LayerView {
        ladder: &receive_ladder,
        chair: &program,
        epoch,
        link: cfg.link.as_ref(),
    };
    let s0 = server.sample().await;
    let load0 = load_average();
    let gen0 = self_cpu();
    let window_start = Instant::now();
    let chair_snap0 = chair.snapshot();
    let chair_sent0 = chair_snap0.packets_sent;
    let chair_layers_sent0 = chair_snap0.layers_sent;
    let chair_base = base_of(&chair_snap0, window_start, &view);
    for t in &mut tracked {
        if let Some(p) = &t.point {
            t.base = base_of(&p.snapshot(), window_start, &view);
        }
    }
    if let Some(f) = &mut floor {
        f.start_window(&tracked);
    }
    let mut paused_max: Option<f64> = None;
    let mut next_sample = window_start + Duration::from_secs(1);
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
        // The paused-downtracks gauge is a level, not a counter: sample it through the window.
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(1);
            if let Some(p) = server.sample().await.paused_downtracks {
                paused_max = Some(paused_max.map_or(p, |m: f64| m.max(p)));
            }
        }
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
    let s1 = server.sample().await;
    let gen_cpu_total = self_cpu() - gen0;
    let chair_snap = chair.snapshot();
    for t in &mut tracked {
        if let Some(p) = &t.point {
            t.last = Some((p.snapshot(), window_end));
        }
    }
    let report = summary::summarize(summary::Finished {
        cfg: &cfg,
        server: &server,
        view,
        tracked: &tracked,
        failures,
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
        stalls: stall_monitor.report(),
        s0,
        s1,
        paused_max,
        rss0,
        churn_joins,
        churn_leaves,
    });
    drop(tracked);
    drop(chair);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::Tokens;

    #[test]
    fn a_link_file_gives_the_chair_then_the_points() {
        let text = "# meeting 1\nhttp://127.0.0.1:8080/join?t=chair.jwt\n\n  bare-token \n\
                    http://h/join?t=p1.jwt\n";
        let Tokens::List(list) = Tokens::from_links(text) else {
            panic!("a list")
        };
        assert_eq!(list, ["chair.jwt", "bare-token", "p1.jwt"]);
    }
}
