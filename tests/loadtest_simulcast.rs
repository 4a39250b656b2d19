//! The load generator with simulcast against the in-process server: the chair publishes three
//! layers, the server forwards one layer at a time per point, and the report's layer fields are
//! complete and consistent with each other. A town hall with a floor holder: every other point
//! receives the holder's camera, and the chair keeps the others as lowest-layer thumbnails.

use std::time::Duration;

use loadtest::layers::Ladder;
use loadtest::scenario::{self, LoadConfig, Report, Scenario, Target};

fn simulcast_config(scenario: Scenario, points: usize) -> LoadConfig {
    LoadConfig {
        scenario,
        points,
        seconds: 4.0,
        fps: 20,
        simulcast: Some(Ladder::parse("100,300,700").unwrap()),
        ready_timeout: Duration::from_secs(30),
        per_point: true,
        ..LoadConfig::default()
    }
}

/// What every simulcast report must satisfy, whatever layers the server chose. `only_chair`:
/// the points receive no video but the chair's (fanout), so the chair's layers are all of it.
fn check_layers(r: &Report, only_chair: bool) {
    let media = r.points.media;
    let v = &r.video;
    assert_eq!(v.layers.len(), 3, "{:?}", v.layers);
    assert_eq!(
        v.layers.iter().map(|l| l.rid.as_str()).collect::<Vec<_>>(),
        ["q", "h", "f"]
    );
    assert_eq!(
        v.layers
            .iter()
            .map(|l| (l.width, l.height))
            .collect::<Vec<_>>(),
        [(320, 180), (640, 360), (1280, 720)]
    );
    // The chair sent every layer, more on higher ones.
    let sent: Vec<f64> = r.publisher.layers.iter().map(|l| l.sent_kbps).collect();
    assert_eq!(sent.len(), 3);
    assert!(
        sent[0] > 0.0 && sent[0] < sent[1] && sent[1] < sent[2],
        "{sent:?}"
    );
    // Every media point ends on exactly one layer it reached.
    assert_eq!(
        v.layers.iter().map(|l| l.points_at_end).sum::<usize>(),
        media,
        "{:?}",
        v.layers
    );
    for l in &v.layers {
        assert!(l.points_at_end <= l.points_reached, "{l:?}");
        assert_eq!(l.first_keyframe_s.count, l.points_reached, "{l:?}");
        assert_eq!(l.seconds.count, media, "{l:?}");
        assert!(!l.series_kbps.is_empty(), "{l:?}");
    }
    for p in &r.per_point {
        assert_eq!(p.layers.len(), 3, "{}", p.name);
        let end = p.final_layer.as_deref().expect("a layer at the end");
        let on_end = p.layers.iter().find(|l| l.rid == end).unwrap();
        assert!(on_end.first_keyframe_s.is_some(), "{p:?}");
        assert!(on_end.keyframes > 0, "{p:?}");
        // One layer at a time on the point's one video SSRC: the time on all layers cannot
        // exceed the window (a server forwarding every layer as its own track would).
        let total: f64 = p.layers.iter().map(|l| l.seconds).sum();
        assert!(
            total <= r.window_s + 0.05,
            "{}: {total} s on layers",
            p.name
        );
        assert!(total > 0.0, "{p:?}");
        if !only_chair {
            continue;
        }
        // What the layers carried is what the point received as video (kbit/s in the window).
        let layer_kbps: f64 = p.layers.iter().map(|l| l.kbps).sum();
        assert!(
            (layer_kbps - p.video_kbps).abs() <= 0.02 * p.video_kbps + 1.0,
            "{}: layers {layer_kbps} vs video {}",
            p.name,
            p.video_kbps
        );
        assert_eq!(
            p.layer_switches_up + p.layer_switches_down,
            p.layer_switches,
            "{p:?}"
        );
    }
    if only_chair {
        assert_eq!(
            v.layer_switches.up + v.layer_switches.down,
            v.layer_switches_total as f64
        );
    }
    // The server's simulcast series exist (the in-process server is the current one).
    assert!(r.server.video_paused_downtracks.is_some(), "{:?}", r.server);
    assert!(r.server.link_loss_ratio.is_some(), "{:?}", r.server);
    let json = serde_json::to_value(r).unwrap();
    for key in ["layers", "layer_switches"] {
        assert!(json["video"].get(key).is_some(), "video.{key}");
    }
    assert!(json["config"]["simulcast_layers"].is_array());
    assert!(json["publisher"]["layers"].is_array());
    assert!(scenario::table(r).contains("layers (chair video at the points)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_with_simulcast_reports_one_layer_at_a_time() {
    let r = scenario::run(
        Target::InProcess { workers: 1 },
        simulcast_config(Scenario::Fanout, 4),
    )
    .await
    .expect("run");
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(
        (r.points.joined, r.points.media, r.points.decodable),
        (4, 4, 4)
    );
    assert_eq!(r.per_point.len(), 4);
    for p in &r.per_point {
        assert!(p.join_latency_s.is_some(), "{p:?}");
        assert!(p.video_kbps > 0.0 && p.fps > 0.0, "{p:?}");
    }
    assert!(r.delivery.packets_expected > 0);
    check_layers(&r, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn townhall_floor_holder_reaches_every_point_and_the_chair_keeps_thumbnails() {
    let cfg = LoadConfig {
        floor: true,
        ..simulcast_config(Scenario::Townhall, 3)
    };
    let r = scenario::run(Target::InProcess { workers: 1 }, cfg)
        .await
        .expect("run");
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let fl = r.floor.as_ref().expect("floor report");
    assert_eq!(fl.holder, "point-0");
    assert!(fl.granted, "{fl:?}");
    assert!(fl.grant_latency_s.is_some_and(|s| s < 30.0), "{fl:?}");
    assert_eq!((fl.points_expected, fl.points_receiving), (2, 2), "{fl:?}");
    assert_eq!(fl.first_keyframe_s.count, 2);
    assert_eq!(fl.points_per_layer.iter().sum::<usize>(), 2, "{fl:?}");
    // The chair sees the two other points as thumbnails, on the lowest layer, and the holder.
    assert_eq!(fl.chair_thumbnails, 2, "{fl:?}");
    assert_eq!(fl.chair_thumbnails_on_lowest, 2, "{fl:?}");
    assert!(fl.chair_holder_layer.is_some(), "{fl:?}");
    let chair = r.chair.as_ref().expect("chair report");
    assert_eq!(chair.video_streams, 3);
    check_layers(&r, false);
}

#[test]
fn invalid_simulcast_settings_are_refused() {
    let mut cfg = simulcast_config(Scenario::Fanout, 2);
    cfg.floor = true;
    assert!(cfg.validate().unwrap_err().contains("--floor"));
    let mut cfg = simulcast_config(Scenario::Fanout, 2);
    cfg.simulcast = Some(Ladder(vec![]));
    assert!(cfg.validate().is_err());
}
