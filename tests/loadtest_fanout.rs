//! The load generator end to end: `fanout` with 5 points for a few seconds against the
//! in-process server; the report is complete and media was delivered. A server that refuses
//! connections ends up as failures in the report, not as a crash.

use std::time::Duration;

use loadtest::scenario::{self, LoadConfig, Scenario, Target, Tokens};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_with_five_points_reports_delivered_media() {
    let cfg = LoadConfig {
        scenario: Scenario::Fanout,
        points: 5,
        seconds: 3.0,
        fps: 25,
        video_kbps: 400,
        ready_timeout: Duration::from_secs(30),
        per_point: true,
        ..LoadConfig::default()
    };
    let r = scenario::run(Target::InProcess { workers: 1 }, cfg)
        .await
        .expect("run");
    assert_eq!(r.schema, scenario::SCHEMA);
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(
        (
            r.points.requested,
            r.points.joined,
            r.points.media,
            r.points.decodable
        ),
        (5, 5, 5, 5)
    );
    assert_eq!(r.per_point.len(), 5);
    assert_eq!(r.join_latency_s.count, 5);
    assert!(r.join_latency_s.max > 0.0 && r.join_latency_s.max < 30.0);
    assert!(r.window_s >= 2.9);
    // 400 kbit/s at 25 fps: every point gets most of it (keyframes add some).
    assert!(r.video.kbps.min > 200.0, "{:?}", r.video.kbps);
    assert!(r.video.fps.min > 15.0, "{:?}", r.video.fps);
    assert!(r.audio.kbps.min > 0.0);
    assert!(r.delivery.packets_expected > 0);
    assert!(r.delivery.ratio > 0.95, "{:?}", r.delivery);
    assert_eq!(
        r.video.loss_after_nack_pct.max, 0.0,
        "loopback loses nothing"
    );
    assert!(r.server.cpu_seconds.is_some_and(|c| c > 0.0));
    assert!(r.server.packets_out.is_some_and(|p| p > 0.0));
    assert!(r.server.cpu_us_per_forwarded_packet.is_some());
    assert!(r.generator.cpu_seconds > 0.0);
    assert!(!r.bitrate_series_kbps.is_empty());
    // Without simulcast the chair's video is one layer, named by its resolution, and every
    // point is on it at the end with no switch.
    assert_eq!(r.video.layers.len(), 1, "{:?}", r.video.layers);
    let single = &r.video.layers[0];
    assert_eq!(
        (single.rid.as_str(), single.width, single.height),
        ("", 640, 360)
    );
    assert_eq!((single.points_reached, single.points_at_end), (5, 5));
    assert_eq!(r.video.layer_switches_total, 0);
    for p in &r.per_point {
        assert_eq!(p.final_layer.as_deref(), Some("640x360"), "{p:?}");
    }
    assert!(r.config.simulcast_layers.is_none() && r.floor.is_none());
    // The JSON has the documented top-level fields.
    let v = serde_json::to_value(&r).unwrap();
    for key in [
        "schema",
        "scenario",
        "config",
        "points",
        "failures",
        "join_latency_s",
        "video",
        "audio",
        "delivery",
        "server",
        "generator",
        "bitrate_series_kbps",
        "publisher",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert!(!scenario::table(&r).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_server_is_reported_as_failures() {
    // Nothing listens on port 1.
    let cfg = LoadConfig {
        points: 3,
        seconds: 1.0,
        ..LoadConfig::default()
    };
    let r = scenario::run(
        Target::Remote {
            ws_url: "ws://127.0.0.1:1/ws".into(),
            pid: None,
            metrics_url: None,
            tokens: Tokens::Fixed,
        },
        cfg,
    )
    .await
    .expect("a report, not an error");
    assert_eq!(r.points.joined, 0);
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].point, "chair");
    assert_eq!(r.failures[0].stage, "join");
    assert!(
        r.failures[0].error.contains("connect"),
        "{}",
        r.failures[0].error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_source_that_cannot_sign_is_reported_as_a_failure() {
    // A data dir without secret.key: no test-room token can be signed.
    let server = loadtest::inprocess::InProcessServer::start(1)
        .await
        .expect("server");
    let dir = tempfile::tempdir().unwrap();
    let cfg = LoadConfig {
        points: 2,
        seconds: 1.0,
        ..LoadConfig::default()
    };
    let r = scenario::run(
        Target::Remote {
            ws_url: server.ws_url(),
            pid: None,
            metrics_url: None,
            tokens: Tokens::DataDir(dir.path().to_owned()),
        },
        cfg,
    )
    .await
    .expect("a report");
    assert_eq!(r.failures[0].point, "chair");
    assert!(
        r.failures[0].error.contains("secret.key"),
        "{:?}",
        r.failures
    );
}
