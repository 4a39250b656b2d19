//! The relay seat resumed (issue 13): the WebSocket between the province's relay and the
//! national server drops (a TCP proxy between them severs it; the WebRTC media, which does
//! not pass through the proxy, stays up). The relay opens a new WebSocket and takes its seat
//! back with `resume` within the upstream's grace: the same participant, the national floor
//! still its own, the media flowing both ways on the same peer connections, nothing
//! renegotiated, and the linked meeting's program seat never left.

mod cascade;
mod common;

use cascade::{
    Cascade, Proxy, WAIT, messages, program_reaches, receives_more, relay_via, seat_of,
    upstream_seat,
};
use common::{eventually, small_point};
use loadtest::point::Point;
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_websocket_resumes_the_relay_seat_with_its_floor_and_media() {
    let c = Cascade::start().await;
    let national_point = Point::join(small_point(&c.up, "point-ha-noi", false))
        .await
        .expect("a point of the national meeting joins");
    let proxy = Proxy::start(c.up.http).await;
    let relay = relay_via(&proxy, &c.down, "relay-tinh");
    let program = program_reaches(&relay, &c.down, &c.commune).await;
    let seat = seat_of(&c.up, "relay-tinh").expect("the relay seat upstream");
    c.national
        .send(ClientMessage::GrantFloor {
            v: PROTOCOL_VERSION,
            point: "relay-tinh".into(),
        })
        .await;
    assert!(
        receives_more(&national_point, &seat, 20).await,
        "the province holding the floor does not reach the national point"
    );
    let told = eventually(WAIT, || c.province.snapshot().upstream_floor).await;
    assert!(told, "the province chair is not told it holds the floor");

    let (joins, offers, restarts) = (
        messages(&c.up, "join"),
        messages(&c.up, "publish_offer"),
        messages(&c.up, "restart_subscribe"),
    );
    assert_eq!(proxy.accepted(), 1);
    proxy.sever();
    let rejoined = eventually(WAIT, || {
        proxy.accepted() >= 2 && messages(&c.up, "join") > joins
    })
    .await;
    assert!(rejoined, "the relay did not come back");
    // Let the upstream settle what the join made of the seat.
    let settled = eventually(WAIT, || c.national.snapshot().floor.is_some()).await;
    assert!(settled);

    assert_eq!(
        seat_of(&c.up, "relay-tinh"),
        Some(seat.clone()),
        "the relay seat is a new participant upstream"
    );
    assert_eq!(
        c.national.snapshot().floor.as_deref(),
        Some("relay-tinh"),
        "the relay seat lost the national floor"
    );
    assert!(
        receives_more(&national_point, &seat, 40).await,
        "the province no longer reaches the national point"
    );
    assert!(
        receives_more(&c.commune, &program, 40).await,
        "the national chair no longer reaches the commune"
    );
    assert_eq!(
        upstream_seat(&c.down),
        Some(program),
        "the linked meeting's program seat was left and joined again"
    );
    assert!(c.province.snapshot().upstream_floor);
    assert_eq!(
        (
            messages(&c.up, "join"),
            messages(&c.up, "publish_offer"),
            messages(&c.up, "restart_subscribe")
        ),
        (joins + 1.0, offers, restarts),
        "one join (the resume), and no new peer connection or renegotiation"
    );
    assert_eq!(proxy.accepted(), 2, "one new WebSocket");
}
