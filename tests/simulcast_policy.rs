//! The server's simulcast policy end to end, on loopback with async `webrtc` peers through the
//! real `/ws`: a point publishes three layers; the chair sees it as a thumbnail (lowest layer
//! only); given the floor, it reaches the other point starting on the lowest layer and stepping
//! up to the top as the bandwidth estimate allows, and the chair steps up too; when the floor
//! is taken back, the chair's copy returns to the thumbnail layer.

mod common;

use std::time::Duration;

use common::{TestServer, eventually};
use loadtest::layers::Ladder;
use loadtest::point::{Point, PointConfig};
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION};

/// Small layers so the estimate (which starts at 1 Mbit/s) allows the top one quickly.
const LAYERS_KBPS: [u32; 3] = [60, 150, 300];

fn ladder() -> Ladder {
    Ladder::simulcast(&LAYERS_KBPS).expect("valid ladder")
}

fn config(server: &TestServer, token: &str, layers: bool) -> PointConfig {
    PointConfig {
        ws_url: server.ws_url(),
        token: token.into(),
        publish: true,
        bind_ip: [127, 0, 0, 1].into(),
        video_fps: 20,
        video_frame_bytes: 600,
        publish_layers: layers.then(ladder),
        receive_ladder: ladder(),
        periodic_keyframes: None,
        ..Default::default()
    }
}

/// The layer (by its last keyframe's resolution) and packets of `from`'s camera at `at`.
fn seen(at: &Point, from: &Point) -> (Option<usize>, u64, [u64; 3]) {
    let s = at.snapshot();
    s.streams
        .values()
        .find(|st| st.stream_id == from.participant && st.kind.as_deref() == Some("video"))
        .map(|st| {
            (
                st.dimensions.and_then(|d| ladder().layer_of(d)),
                st.packets,
                st.layers.bytes,
            )
        })
        .unwrap_or((None, 0, [0; 3]))
}

fn switches(server: &TestServer, direction: &str) -> u64 {
    server
        .registry
        .gather()
        .iter()
        .filter(|f| f.name() == "hoinghi_layer_switches_total")
        .flat_map(|f| f.get_metric().to_vec())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == "direction" && l.value() == direction)
        })
        .map(|m| m.get_counter().value() as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_stay_low_the_floor_holder_steps_up_and_comes_back_down() {
    let server = common::start(1).await;
    let chair = Point::join(config(&server, "chair", false))
        .await
        .expect("chair joins");
    let a = Point::join(config(&server, "point-a", true))
        .await
        .expect("a joins");
    let b = Point::join(config(&server, "point-b", false))
        .await
        .expect("b joins");

    let offer = &a.publish_sdp.as_ref().expect("a published").0;
    assert!(
        offer.contains("a=simulcast:send q;h;f"),
        "the offer lists the layers lowest first:\n{offer}"
    );

    // The chair's grid: a as a thumbnail. Wait for several seconds of it, with the chair's
    // link estimated (so a program stream would have stepped up by now: see below).
    let thumbnail = eventually(Duration::from_secs(30), || {
        let (_, packets, _) = seen(&chair, &a);
        packets > 200
    })
    .await;
    assert!(thumbnail, "the chair did not receive a's thumbnail");
    let (layer, _, bytes) = seen(&chair, &a);
    assert_eq!(layer, Some(0), "a thumbnail is the lowest layer");
    assert_eq!(bytes[1] + bytes[2], 0, "never a higher layer: {bytes:?}");
    assert_eq!(seen(&b, &a).1, 0, "points do not see each other");

    chair
        .send(ClientMessage::GrantFloor {
            v: PROTOCOL_VERSION,
            point: "point-a".into(),
        })
        .await;

    // b receives a: from the lowest layer up to the top, and the chair steps up too.
    let stepped = eventually(Duration::from_secs(40), || {
        seen(&b, &a).0 == Some(2) && seen(&chair, &a).0 == Some(2)
    })
    .await;
    let (b_layer, b_packets, b_bytes) = seen(&b, &a);
    let (c_layer, _, c_bytes) = seen(&chair, &a);
    eprintln!(
        "b: layer {b_layer:?}, {b_packets} packets, bytes per layer {b_bytes:?}; chair: layer {c_layer:?}, {c_bytes:?}; switches up {} down {}",
        switches(&server, "up"),
        switches(&server, "down")
    );
    assert!(stepped, "the floor holder did not reach the top layer");
    {
        let s = b.snapshot();
        let st = s
            .streams
            .values()
            .find(|st| st.stream_id == a.participant && st.kind.as_deref() == Some("video"))
            .expect("b has a's video");
        let first = st.layers.first_keyframe_at;
        assert!(
            first[0].is_some() && first[0] <= first[2],
            "a new stream starts on the lowest layer: {first:?}"
        );
        assert_eq!(
            st.discontinuities, 0,
            "layer switches are invisible in the sequence"
        );
        assert_eq!(
            s.streams.len(),
            4,
            "the chair's audio and video, and the floor holder's: {:?}",
            s.streams
                .values()
                .map(|st| (&st.stream_id, &st.kind))
                .collect::<Vec<_>>()
        );
    }
    assert!(switches(&server, "up") >= 2, "b and the chair switched up");

    chair
        .send(ClientMessage::RevokeFloor {
            v: PROTOCOL_VERSION,
        })
        .await;
    let back = eventually(Duration::from_secs(20), || seen(&chair, &a).0 == Some(0)).await;
    assert!(
        back,
        "the chair's copy of a did not return to the thumbnail layer"
    );
    assert!(switches(&server, "down") >= 1);
}

fn narrow(kbps: u64) -> loadtest::link::LinkParams {
    loadtest::link::LinkParams {
        name: format!("{kbps}k"),
        rate_bps: Some(kbps * 1000),
        queue: Duration::from_millis(200),
        ..loadtest::link::LinkParams::profile("fibre").expect("fibre profile")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrow_link_settles_below_the_top_layer_and_a_too_narrow_one_goes_audio_only() {
    // The allocator's and the prober's decisions, with RUST_LOG=sfu::worker::allocate=debug.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let server = common::start(1).await;
    let chair = Point::join(config(&server, "chair", true))
        .await
        .expect("chair joins");
    let b = Point::join(PointConfig {
        link: Some(narrow(220)),
        link_seed: 2,
        // Receiving only, so the link's capacity is all the downlink's.
        publish: false,
        ..config(&server, "point-b", false)
    })
    .await
    .expect("b joins");
    let c = Point::join(PointConfig {
        link: Some(narrow(45)),
        link_seed: 3,
        publish: false,
        ..config(&server, "point-c", false)
    })
    .await
    .expect("c joins");

    // c: the chair's lowest layer (60 kbit/s) and its audio do not fit in 45 kbit/s; the server
    // pauses the video, says so, and the audio keeps coming.
    let paused = eventually(Duration::from_secs(40), || c.snapshot().video_paused >= 1).await;
    let audio = |p: &Point| -> u64 {
        p.snapshot()
            .streams
            .values()
            .filter(|st| st.kind.as_deref() == Some("audio"))
            .map(|st| st.packets)
            .sum()
    };
    assert!(paused, "c was never told its video is paused");
    let before = audio(&c);
    let flowing = eventually(Duration::from_secs(10), || audio(&c) > before + 50).await;
    assert!(flowing, "audio stopped while video was paused");
    let paused_gauge: f64 = server
        .registry
        .gather()
        .iter()
        .filter(|f| f.name() == "hoinghi_video_paused_downtracks")
        .flat_map(|f| f.get_metric().to_vec())
        .map(|m| m.get_gauge().value())
        .sum();
    assert!(
        paused_gauge >= 1.0,
        "the operators' gauge counts c's paused video"
    );

    // b: 220 kbit/s carries the 150 kbit/s layer but not the 300 kbit/s one. Over a long
    // enough run the server may try the top layer (stepping up is its probe) but must not
    // stay there.
    let long_enough = eventually(Duration::from_secs(60), || {
        let (_, packets, _) = seen(&b, &chair);
        packets > 600
    })
    .await;
    assert!(long_enough, "b did not receive the chair's video");
    let s = b.snapshot();
    let st = s
        .streams
        .values()
        .find(|st| st.stream_id == chair.participant && st.kind.as_deref() == Some("video"))
        .expect("b has the chair's video");
    let now = std::time::Instant::now();
    let on: Vec<f64> = (0..3)
        .map(|l| st.layers.time_on(l, now).as_secs_f64())
        .collect();
    eprintln!(
        "b on layers {on:?} s, switches up {} down {}, freezes {}, packets {}, gaps at arrival {}, recovered {}, given up {}",
        st.layers.switches_up,
        st.layers.switches_down,
        st.freezes.freezes,
        st.packets,
        st.seq.gaps_at_arrival,
        st.seq.recovered,
        st.seq.given_up
    );
    assert!(
        on[1] > 0.0,
        "b never reached the layer its link carries: {on:?}"
    );
    assert!(
        on[2] < (on[0] + on[1]) / 2.0,
        "b spent too long on a layer its link cannot carry: {on:?}"
    );
}
