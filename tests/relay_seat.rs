//! A relay seat (the cascade, issue 13) seen from the upstream server: over the real `/ws` and
//! WebRTC of the in-process server, a seat with the role `relay` receives the program a point
//! receives (the chair's camera and microphone, not the other points), is a thumbnail in the
//! chair's grid, and reaches the points only once the chair gives it the floor.

mod common;

use std::time::Duration;

use common::{eventually, packets_from, small_point};
use loadtest::point::Point;
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
