//! Issue 14: a forwarded stream has a sequence hole only where the publisher's own stream had
//! one. On loopback with no loss anywhere, a point publishes three simulcast layers with
//! padding-only probes after every frame on every layer (as Chromium does for its bandwidth
//! estimate when RTX is not negotiated); the chair sees it as a thumbnail, then as the floor
//! holder stepping up to the top layer, then as a thumbnail again; another point receives it
//! stepping up from the lowest layer. Neither subscriber may see a single gap, and neither may
//! send a single NACK.

mod common;

use std::time::Duration;

use common::{TestServer, eventually};
use loadtest::layers::Ladder;
use loadtest::point::{Point, PointConfig, StreamStats};
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION};

const LAYERS_KBPS: [u32; 3] = [60, 150, 300];
/// Padding-only packets after each frame of each layer: 20 fps × 3 layers × 2 = 120 a second.
const PROBES_PER_FRAME: usize = 2;

fn ladder() -> Ladder {
    Ladder::simulcast(&LAYERS_KBPS).expect("valid ladder")
}

fn config(server: &TestServer, token: &str, publish: bool) -> PointConfig {
    PointConfig {
        ws_url: server.ws_url(),
        token: token.into(),
        publish,
        bind_ip: [127, 0, 0, 1].into(),
        video_fps: 20,
        video_frame_bytes: 600,
        receive_ladder: ladder(),
        periodic_keyframes: None,
        ..Default::default()
    }
}

/// `from`'s camera as `at` receives it.
fn video_of(at: &Point, from: &Point) -> StreamStats {
    at.snapshot()
        .streams
        .values()
        .find(|st| st.stream_id == from.participant && st.kind.as_deref() == Some("video"))
        .cloned()
        .unwrap_or_default()
}

fn layer(at: &Point, from: &Point) -> Option<usize> {
    video_of(at, from)
        .dimensions
        .and_then(|d| ladder().layer_of(d))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padding_probes_and_layer_switches_leave_no_sequence_gap_and_cause_no_nack() {
    let server = common::start(1).await;
    let chair = Point::join(config(&server, "chair", true))
        .await
        .expect("chair joins");
    let a = Point::join(PointConfig {
        publish_layers: Some(ladder()),
        probe_padding: PROBES_PER_FRAME,
        ..config(&server, "point-a", true)
    })
    .await
    .expect("a joins");
    let b = Point::join(config(&server, "point-b", false))
        .await
        .expect("b joins");

    // The chair's grid: a as a thumbnail, padded all along.
    let thumbnail = eventually(Duration::from_secs(30), || {
        video_of(&chair, &a).packets > 200
    })
    .await;
    assert!(thumbnail, "the chair did not receive a's thumbnail");
    assert_eq!(layer(&chair, &a), Some(0));

    chair
        .send(ClientMessage::GrantFloor {
            v: PROTOCOL_VERSION,
            point: "point-a".into(),
        })
        .await;
    let stepped = eventually(Duration::from_secs(40), || {
        layer(&b, &a) == Some(2) && layer(&chair, &a) == Some(2)
    })
    .await;
    assert!(stepped, "the floor holder did not reach the top layer");
    // A while on the top layer, then back to a thumbnail at the chair.
    let before = video_of(&b, &a).packets;
    assert!(
        eventually(Duration::from_secs(20), || video_of(&b, &a).packets
            > before + 200)
        .await,
        "b stopped receiving a"
    );
    chair
        .send(ClientMessage::RevokeFloor {
            v: PROTOCOL_VERSION,
        })
        .await;
    assert!(
        eventually(Duration::from_secs(20), || layer(&chair, &a) == Some(0)).await,
        "the chair's copy of a did not return to the thumbnail layer"
    );
    let before = video_of(&chair, &a).packets;
    assert!(
        eventually(Duration::from_secs(20), || video_of(&chair, &a).packets
            > before + 100)
        .await,
        "the chair stopped receiving a's thumbnail"
    );

    let padding = a.snapshot().padding_sent;
    let up = server.counter("hoinghi_layer_switches_total");
    let nacked = server.counter("hoinghi_nack_requested_packets_total");
    for (name, at) in [("chair", &chair), ("b", &b)] {
        let st = video_of(at, &a);
        eprintln!(
            "{name}: {} packets of a's video, gaps at arrival {}, discontinuities {}, \
             layer switches seen {}; a sent {padding} padding probes; server: {up} switches, \
             {nacked} packets NACKed",
            st.packets, st.seq.gaps_at_arrival, st.discontinuities, st.layer_switches
        );
        assert_eq!(st.seq.gaps_at_arrival, 0, "{name} saw sequence gaps");
        assert_eq!(st.discontinuities, 0, "{name} saw discontinuities");
    }
    assert!(padding > 500, "a sent too few probes to prove anything");
    assert!(up >= 3.0, "the subscribers switched layers");
    assert_eq!(
        nacked, 0.0,
        "a subscriber NACKed packets that were never lost"
    );
}
