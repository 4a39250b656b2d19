//! Town-hall routing end to end: a point's media reaches the others only while it holds the
//! floor, and a muted point's audio reaches nobody. Real UDP, real `/ws`, async `webrtc` peers.

mod common;

use std::time::Duration;

use common::eventually;
use loadtest::point::{Point, PointConfig};
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION};

fn config(ws_url: &str, token: &str) -> PointConfig {
    PointConfig {
        ws_url: ws_url.into(),
        token: token.into(),
        publish: true,
        bind_ip: [127, 0, 0, 1].into(),
        video_fps: 25,
        video_frame_bytes: 1_200,
        periodic_keyframes: None,
        ..Default::default()
    }
}

/// Packets `at` has received from `from`'s media of `kind`.
fn received(at: &Point, from: &Point, kind: &str) -> u64 {
    at.snapshot()
        .streams
        .values()
        .filter(|s| s.stream_id == from.participant && s.kind.as_deref() == Some(kind))
        .map(|s| s.packets)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floor_grant_opens_a_point_to_everyone_and_revoke_closes_it() {
    let server = common::start(1).await;
    let url = server.ws_url();
    let chair = Point::join(config(&url, "chair")).await.expect("chair");
    let a = Point::join(config(&url, "point-a")).await.expect("a");
    let b = Point::join(config(&url, "point-b")).await.expect("b");
    let c = Point::join(config(&url, "point-c")).await.expect("c");
    let points = [&a, &b, &c];

    // Before any floor: the chair sees every point but hears none; points get only the chair.
    let settled = eventually(Duration::from_secs(30), || {
        points
            .iter()
            .all(|p| received(p, &chair, "video") > 20 && received(p, &chair, "audio") > 20)
            && points.iter().all(|p| received(&chair, p, "video") > 20)
    })
    .await;
    assert!(settled, "program and thumbnails did not flow");
    for p in points {
        assert_eq!(
            received(&chair, p, "audio"),
            0,
            "muted points are not heard"
        );
        for q in points {
            assert_eq!(received(p, q, "video"), 0, "points do not see each other");
        }
    }

    // a raises its hand; the chair passes the floor to the first hand.
    a.send(ClientMessage::RaiseHand {
        v: PROTOCOL_VERSION,
        text: Some("Xin phát biểu".into()),
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    chair
        .send(ClientMessage::NextFloor {
            v: PROTOCOL_VERSION,
        })
        .await;
    let opened = eventually(Duration::from_secs(20), || {
        [&b, &c]
            .iter()
            .all(|p| received(p, &a, "video") > 20 && received(p, &a, "audio") > 20)
            && received(&chair, &a, "audio") > 20
    })
    .await;
    assert!(opened, "the floor holder did not reach the others");
    assert_eq!(received(&b, &c, "video") + received(&c, &b, "video"), 0);
    assert_eq!(
        received(&chair, &c, "audio"),
        0,
        "c stays muted while a speaks"
    );

    // Revoke: a's media to b stops (paused downtrack), the chair stops hearing a.
    chair
        .send(ClientMessage::RevokeFloor {
            v: PROTOCOL_VERSION,
        })
        .await;
    // Let packets in flight land, then the counts must stand still.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (video, audio) = (received(&b, &a, "video"), received(&b, &a, "audio"));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        received(&b, &a, "video"),
        video,
        "video of the former holder stopped"
    );
    assert_eq!(
        received(&b, &a, "audio"),
        audio,
        "audio of the former holder stopped"
    );
    let chair_audio = received(&chair, &a, "audio");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        received(&chair, &a, "audio"),
        chair_audio,
        "the chair no longer hears a"
    );
    assert!(received(&b, &chair, "video") > 0, "the program goes on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_cannot_use_chair_controls() {
    let server = common::start(1).await;
    let url = server.ws_url();
    let _chair = Point::join(config(&url, "chair")).await.expect("chair");
    let a = Point::join(config(&url, "point-a")).await.expect("a");
    let b = Point::join(config(&url, "point-b")).await.expect("b");
    a.send(ClientMessage::GrantFloor {
        v: PROTOCOL_VERSION,
        point: "point-a".into(),
    })
    .await;
    a.send(ClientMessage::SetMute {
        v: PROTOCOL_VERSION,
        point: None,
        muted: false,
    })
    .await;
    a.send(ClientMessage::EndMeeting {
        v: PROTOCOL_VERSION,
    })
    .await;
    let refused = eventually(Duration::from_secs(10), || {
        a.snapshot()
            .errors
            .iter()
            .filter(|e| e.starts_with("Forbidden"))
            .count()
            == 3
    })
    .await;
    assert!(refused, "errors: {:?}", a.snapshot().errors);
    // Nothing changed: b still receives only the chair, and the meeting goes on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(received(&b, &a, "video") + received(&b, &a, "audio"), 0);
}
