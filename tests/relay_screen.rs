//! Screen shares across the cascade's hop (issue 13): the slides of the national meeting reach
//! the communes through their province's relay, where the communes' pages show a share (on the
//! linked meeting's `upstream` seat, beside the upstream chair's camera), and stop with the
//! share; the province chair's slides go up on the relay seat and reach the national points
//! while the province holds the floor and sharing is allowed. Two in-process servers, real
//! `/ws` and WebRTC on loopback; a share is told from any camera by its keyframes' resolution.

mod cascade;
mod common;

use std::time::{Duration, Instant};

use cascade::{Cascade, WAIT, program_reaches, relay_to, seat_of, upstream_seat};
use common::{eventually, small_point};
use loadtest::point::Point;
use loadtest::share::Sharer;
use relay::RelayState;
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION};

/// The slides' resolution: no camera in these tests sends it.
const SLIDES: (u16, u16) = (1920, 1080);

/// Packets `at` received from the participant `from` on video streams whose keyframes have the
/// slides' resolution.
fn slides_from(at: &Point, from: &str) -> u64 {
    at.snapshot()
        .streams
        .values()
        .filter(|st| st.stream_id == from && st.dimensions == Some(SLIDES))
        .map(|st| st.packets)
        .sum()
}

/// Waits until `at` has received more than `n` more slide packets from `from`.
async fn slides_arrive(at: &Point, from: &str, n: u64) -> bool {
    let before = slides_from(at, from);
    eventually(WAIT, || slides_from(at, from) > before + n).await
}

/// Waits until no slide packet from `from` has reached `at` for 2 s.
async fn slides_stop(at: &Point, from: &str) -> bool {
    let mut last = (u64::MAX, Instant::now());
    eventually(WAIT, || {
        let now = slides_from(at, from);
        if now != last.0 {
            last = (now, Instant::now());
        }
        last.1.elapsed() > Duration::from_secs(2)
    })
    .await
}

async fn chair_allows(chair: &Point, floor_to: &str) {
    chair
        .send(ClientMessage::GrantFloor {
            v: PROTOCOL_VERSION,
            point: floor_to.into(),
        })
        .await;
    chair
        .send(ClientMessage::AllowShare {
            v: PROTOCOL_VERSION,
            allowed: true,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_slides_reach_the_communes_on_the_upstream_seat_and_stop_with_the_share() {
    let c = Cascade::start().await;
    let presenter = Sharer::join(
        &c.up.ws_url(),
        "point-ha-noi",
        [127, 0, 0, 1].into(),
        SLIDES,
    )
    .await
    .expect("a national point sharing slides joins");
    let relay = relay_to(&c.up, &c.down);
    let seat = program_reaches(&relay, &c.down, &c.commune).await;
    assert_eq!(
        slides_from(&c.commune, &seat),
        0,
        "nobody shares downstream yet"
    );

    chair_allows(&c.national, "point-ha-noi").await;
    assert!(
        slides_arrive(&c.commune, &seat, 20).await,
        "the upstream slides do not reach the commune: {:?}",
        c.commune.snapshot().errors
    );
    // They come on the program seat, as a share beside the camera; the presenter has no
    // camera, so no floor seat is opened for it.
    assert_eq!(upstream_seat(&c.down), Some(seat.clone()));
    assert_eq!(seat_of(&c.down, "upstream-floor"), None);

    // The presenter stops: the relay's m-line goes inactive, so the commune's next offer drops
    // the share (not a frozen last slide) while the camera goes on.
    let offers = c.commune.snapshot().subscribe_offers;
    presenter.share(false).await;
    assert!(
        slides_stop(&c.commune, &seat).await,
        "the slides still flow"
    );
    let reoffered = eventually(WAIT, || c.commune.snapshot().subscribe_offers > offers).await;
    assert!(reoffered, "the commune was not offered the share's end");
    assert!(
        cascade::receives_more(&c.commune, &seat, 20).await,
        "the upstream chair no longer reaches the commune"
    );

    // Sharing again: the same m-line is made active and published anew; and stopped again
    // (a second stop of one m-line: vendor/patches/rtc-0.21.1-stop-again.diff).
    presenter.share(true).await;
    assert!(
        slides_arrive(&c.commune, &seat, 20).await,
        "a share started again does not reach the commune"
    );
    let offers = c.commune.snapshot().subscribe_offers;
    presenter.share(false).await;
    let reoffered = eventually(WAIT, || c.commune.snapshot().subscribe_offers > offers).await;
    assert!(
        reoffered,
        "the commune was not offered the second share's end"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_province_chairs_slides_go_up_while_the_province_holds_the_floor() {
    let up = common::start(1).await;
    let down = common::start(1).await;
    let national = cascade::national_chair(&up, &cascade::ladder()).await;
    let national_point = Point::join(small_point(&up, "point-ha-noi", false))
        .await
        .expect("a national point joins");
    let province = Sharer::join(&down.ws_url(), "chair", [127, 0, 0, 1].into(), SLIDES)
        .await
        .expect("the province chair, sharing slides, joins");
    let relay = relay_to(&up, &down);
    let relaying = eventually(WAIT, || {
        relay.state() == RelayState::Relaying && upstream_seat(&down).is_some()
    })
    .await;
    assert!(relaying, "the relay does not relay: {:?}", relay.state());
    let relay_seat = seat_of(&up, "relay-tinh").expect("the relay seat upstream");

    chair_allows(&national, "relay-tinh").await;
    assert!(
        slides_arrive(&national_point, &relay_seat, 20).await,
        "the province's slides do not reach the national point: {:?}",
        national_point.snapshot().errors
    );

    province.share(false).await;
    assert!(
        slides_stop(&national_point, &relay_seat).await,
        "the province's slides still go up after its share stopped"
    );
    relay.stop().await;
}
