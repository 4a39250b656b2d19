//! A relay seat (the cascade, issue 13) seen from the upstream server: over the real `/ws` and
//! WebRTC of the in-process server, a seat with the role `relay` receives the program a point
//! receives (the chair's camera and microphone, not the other points), is a thumbnail in the
//! chair's grid, and reaches the points only once the chair gives it the floor; of a simulcast
//! camera it receives every layer, each as a stream of its own.

mod common;

use std::time::Duration;

use common::{eventually, packets_from, small_point};
use loadtest::layers::Ladder;
use loadtest::point::{Point, PointConfig};
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_seat_receives_the_program_and_reaches_the_points_only_with_the_floor() {
    let server = common::start(1).await;
    let chair = Point::join(small_point(&server, "chair", true))
        .await
        .expect("chair joins");
    let relay = Point::join(small_point(&server, "relay-cao-bang", true))
        .await
        .expect("the relay joins");
    let a = Point::join(small_point(&server, "point-a", true))
        .await
        .expect("a joins");

    let program = eventually(WAIT, || {
        packets_from(&relay, &chair, "video") > 20 && packets_from(&relay, &chair, "audio") > 20
    })
    .await;
    assert!(
        program,
        "the relay does not receive the chair's camera and microphone"
    );
    let thumbnail = eventually(WAIT, || packets_from(&chair, &relay, "video") > 20).await;
    assert!(thumbnail, "the chair's grid does not show the relay");
    // Once a's camera reaches the chair, what the relay would get of it, it would have too.
    let a_published = eventually(WAIT, || packets_from(&chair, &a, "video") > 20).await;
    assert!(a_published, "a's camera did not reach the chair");
    assert_eq!(
        packets_from(&relay, &a, "video"),
        0,
        "a point is not the program"
    );
    assert_eq!(
        packets_from(&relay, &a, "audio"),
        0,
        "a's microphone is closed"
    );
    assert_eq!(
        packets_from(&a, &relay, "video") + packets_from(&a, &relay, "audio"),
        0,
        "the relay reaches the points only with the floor"
    );

    chair
        .send(ClientMessage::GrantFloor {
            v: PROTOCOL_VERSION,
            point: "relay-cao-bang".into(),
        })
        .await;
    let upward = eventually(WAIT, || {
        packets_from(&a, &relay, "video") > 20 && packets_from(&a, &relay, "audio") > 20
    })
    .await;
    assert!(
        upward,
        "the relay holding the floor does not reach the points: errors {:?}",
        a.snapshot().errors
    );
}

/// The layer of each video stream `at` receives from `from` (by its last keyframe's
/// resolution), with its packets.
fn layers_seen(at: &Point, from: &Point, ladder: &Ladder) -> Vec<(Option<usize>, u64)> {
    let mut seen: Vec<(Option<usize>, u64)> = at
        .snapshot()
        .streams
        .values()
        .filter(|st| st.stream_id == from.participant && st.kind.as_deref() == Some("video"))
        .map(|st| (st.dimensions.and_then(|d| ladder.layer_of(d)), st.packets))
        .collect();
    seen.sort();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_seat_receives_every_simulcast_layer_as_a_stream_of_its_own() {
    let ladder = Ladder::simulcast(&[60, 150, 300]).expect("valid ladder");
    let server = common::start(1).await;
    let with_ladder = |token: &str, publish: bool| PointConfig {
        video_fps: 20,
        video_frame_bytes: 600,
        publish_layers: publish.then(|| ladder.clone()),
        receive_ladder: ladder.clone(),
        ..small_point(&server, token, publish)
    };
    let chair = Point::join(with_ladder("chair", true))
        .await
        .expect("chair joins");
    let relay = Point::join(with_ladder("relay-cao-bang", false))
        .await
        .expect("the relay joins");
    let a = Point::join(with_ladder("point-a", false))
        .await
        .expect("a joins");

    let every = eventually(WAIT, || {
        let seen = layers_seen(&relay, &chair, &ladder);
        seen.len() == 3 && seen.iter().all(|(_, packets)| *packets > 20)
    })
    .await;
    let seen = layers_seen(&relay, &chair, &ladder);
    assert!(every, "the relay does not get three streams: {seen:?}");
    assert_eq!(
        seen.iter().map(|(layer, _)| *layer).collect::<Vec<_>>(),
        [Some(0), Some(1), Some(2)],
        "one stream per layer, each its own: {seen:?}"
    );
    // A point gets the chair's camera as one stream, whatever layer its link allows.
    let one = eventually(WAIT, || {
        layers_seen(&a, &chair, &ladder)
            .first()
            .is_some_and(|(_, packets)| *packets > 20)
    })
    .await;
    assert!(one, "a does not receive the chair's camera");
    assert_eq!(layers_seen(&a, &chair, &ladder).len(), 1);
}
