//! The downstream side of the cascade (issue 13): two servers in this process, each with the
//! production media plane and signaling on loopback. The downstream's relay client takes the
//! upstream's relay seat over real `/ws` and WebRTC, and re-publishes the upstream chair's
//! simulcast camera and microphone as the `upstream` seat of the linked meeting; the
//! downstream's points receive it where they would receive their local chair. When the
//! upstream program stops for longer than `lost_after`, the local chair is the program again,
//! and the upstream program returns with its media; a relay seat ended upstream reconnects.
//! The other way, the relay sends the local chair up on the relay seat: the national chair sees
//! the province in its grid, and the national points see and hear it once it holds the floor.

mod cascade;
mod common;

use std::time::Duration;

use cascade::{
    Cascade, WAIT, packets_from_id, program_reaches, receives_more, relay_as, relay_to, seat_of,
    upstream_seat, with_ladder,
};
use common::{eventually, packets_from, small_point};
use loadtest::point::Point;
use relay::RelayState;
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION, Role};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downstream_points_receive_the_upstream_chair_through_the_relay() {
    let c = Cascade::start().await;
    let local = eventually(WAIT, || packets_from(&c.commune, &c.province, "video") > 20).await;
    assert!(local, "before the relay, the commune sees its local chair");

    let relay = relay_to(&c.up, &c.down);
    let seat = program_reaches(&relay, &c.down, &c.commune).await;
    assert_eq!(relay.state(), RelayState::Relaying);
    // The upstream program replaces the local chair for the commune.
    let before = packets_from(&c.commune, &c.province, "video");
    let program = receives_more(&c.commune, &seat, 40).await;
    assert!(program);
    assert!(
        packets_from(&c.commune, &c.province, "video") < before + 10,
        "the commune still receives the local chair beside the upstream program"
    );
    // It is the upstream chair's picture: keyframes of its ladder's resolutions.
    let layers = |p: &Point| {
        p.snapshot()
            .streams
            .values()
            .filter(|st| st.stream_id == seat && st.kind.as_deref() == Some("video"))
            .filter_map(|st| st.dimensions.and_then(|d| c.ladder.layer_of(d)))
            .collect::<Vec<_>>()
    };
    assert!(
        !layers(&c.commune).is_empty(),
        "no keyframe of a known layer reached the commune"
    );
    relay.stop().await;
    let left = eventually(WAIT, || upstream_seat(&c.down).is_none()).await;
    assert!(left, "a stopped relay leaves the linked meeting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_upstream_falls_back_to_the_local_chair_and_returns() {
    let Cascade {
        ladder,
        up,
        down,
        national,
        province,
        commune,
    } = Cascade::start().await;
    let relay = relay_to(&up, &down);
    program_reaches(&relay, &down, &commune).await;

    // The upstream program stops (its chair leaves): after `lost_after`, the local chair.
    national.leave();
    drop(national);
    let lost = eventually(WAIT, || relay.state() == RelayState::Lost).await;
    assert!(
        lost,
        "the relay never gave up the program: {:?}",
        relay.state()
    );
    let left = eventually(WAIT, || upstream_seat(&down).is_none()).await;
    assert!(left, "the upstream seat is not left");
    assert!(
        receives_more(&commune, &province.participant, 20).await,
        "the commune does not get its local chair back"
    );

    // The upstream program is back: so is the upstream seat, for the commune too.
    let _national = cascade::national_chair(&up, &ladder).await;
    program_reaches(&relay, &down, &commune).await;

    // The upstream ends the relay's session: it comes back by itself.
    assert!(up.signaling.kick("bench", "relay-tinh", "test"));
    let gone = eventually(WAIT, || {
        !up.signaling
            .live("bench")
            .iter()
            .any(|p| p.role == Role::Relay)
    })
    .await;
    assert!(gone, "the kicked relay seat is still there");
    let rejoined = eventually(WAIT, || {
        up.signaling
            .live("bench")
            .iter()
            .any(|p| p.role == Role::Relay)
    })
    .await;
    assert!(rejoined, "the relay did not reconnect");
    program_reaches(&relay, &down, &commune).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_given_to_the_province_carries_its_chair_up() {
    let c = Cascade::start().await;
    let national_point = Point::join(small_point(&c.up, "point-ha-noi", false))
        .await
        .expect("a point of the national meeting joins");
    let relay = relay_to(&c.up, &c.down);
    program_reaches(&relay, &c.down, &c.commune).await;
    let relay_seat =
        c.up.signaling
            .live("bench")
            .into_iter()
            .find(|p| p.role == Role::Relay)
            .map(|p| p.id)
            .expect("the relay seat upstream");
    // The national chair's grid shows the province: its chair, sent up by the relay.
    let thumbnail = eventually(WAIT, || {
        packets_from_id(&c.national, &relay_seat, "video") > 20
    })
    .await;
    assert!(thumbnail, "the national chair does not see the province");
    assert_eq!(
        packets_from_id(&national_point, &relay_seat, "video"),
        0,
        "the province reaches the national points only with the floor"
    );

    c.national
        .send(ClientMessage::GrantFloor {
            v: PROTOCOL_VERSION,
            point: "relay-tinh".into(),
        })
        .await;
    assert!(
        receives_more(&national_point, &relay_seat, 20).await,
        "the province holding the floor does not reach the national points: {:?}",
        national_point.snapshot().errors
    );
    // What goes up is the province's chair, not the program that came down: when the chair
    // leaves, the upward video stops while the program still reaches the commune.
    let seat = upstream_seat(&c.down).unwrap_or_default();
    c.province.leave();
    let mut last = (u64::MAX, std::time::Instant::now());
    let stopped = eventually(WAIT, || {
        let now = packets_from_id(&national_point, &relay_seat, "video");
        if now != last.0 {
            last = (now, std::time::Instant::now());
        }
        last.1.elapsed() > Duration::from_secs(2)
    })
    .await;
    assert!(stopped, "video still goes up without the province's chair");
    assert!(
        receives_more(&c.commune, &seat, 20).await,
        "the program no longer reaches the commune"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_floor_holder_reaches_the_communes_on_a_seat_of_its_own() {
    let c = Cascade::start().await;
    let speaker = Point::join(small_point(&c.up, "point-ha-noi", true))
        .await
        .expect("a national point with a camera joins");
    let relay = relay_to(&c.up, &c.down);
    let program = program_reaches(&relay, &c.down, &c.commune).await;
    assert_eq!(
        seat_of(&c.down, "upstream-floor"),
        None,
        "nobody holds the floor yet"
    );

    c.national
        .send(ClientMessage::GrantFloor {
            v: PROTOCOL_VERSION,
            point: "point-ha-noi".into(),
        })
        .await;
    let floor_seat = eventually(WAIT, || seat_of(&c.down, "upstream-floor").is_some()).await;
    assert!(
        floor_seat,
        "the upstream floor holder has no seat downstream"
    );
    let floor_seat = seat_of(&c.down, "upstream-floor").unwrap_or_default();
    assert!(
        receives_more(&c.commune, &floor_seat, 20).await,
        "the commune does not see and hear the upstream floor holder"
    );
    assert!(
        receives_more(&c.commune, &program, 20).await,
        "the upstream chair no longer reaches the commune"
    );

    // The floor taken back: its seat leaves once the floor holder's media has stopped.
    c.national
        .send(ClientMessage::RevokeFloor {
            v: PROTOCOL_VERSION,
        })
        .await;
    let left = eventually(WAIT, || seat_of(&c.down, "upstream-floor").is_none()).await;
    assert!(left, "the floor seat stays after the floor was taken back");
    drop(speaker);
}

/// The shape: one upstream, two province servers, a commune on each. Both communes get
/// the national chair's camera (keyframes of its ladder) and microphone through their own
/// province server, each province holding its own relay seat upstream; the national chair's
/// grid shows both provinces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_province_servers_carry_the_national_program_to_their_communes() {
    let Cascade {
        ladder,
        up,
        down,
        national,
        province: _province,
        commune,
    } = Cascade::start().await;
    let down2 = common::start(1).await;
    let (_province2, commune2) = cascade::province(&down2, &ladder).await;
    let relay = relay_as(&up, &down, "relay-tinh");
    let relay2 = relay_as(&up, &down2, "relay-tinh-2");
    let seat = program_reaches(&relay, &down, &commune).await;
    let seat2 = program_reaches(&relay2, &down2, &commune2).await;
    for (commune, seat) in [(&commune, &seat), (&commune2, &seat2)] {
        assert!(
            receives_more(commune, seat, 40).await,
            "the program stopped"
        );
        let decoded = commune
            .snapshot()
            .streams
            .values()
            .filter(|st| &st.stream_id == seat && st.kind.as_deref() == Some("video"))
            .any(|st| st.dimensions.and_then(|d| ladder.layer_of(d)).is_some());
        assert!(decoded, "no keyframe of the national chair's ladder");
    }
    let grid = eventually(WAIT, || {
        ["relay-tinh", "relay-tinh-2"].iter().all(|p| {
            seat_of(&up, p).is_some_and(|id| packets_from_id(&national, &id, "video") > 20)
        })
    })
    .await;
    assert!(grid, "the national chair does not see both provinces");
}

/// The resolutions of the keyframes `at` received on video from the participant `from`, as
/// last seen on each stream.
fn dims_from(at: &Point, from: &str) -> Vec<(u16, u16)> {
    at.snapshot()
        .streams
        .values()
        .filter(|st| st.stream_id == from && st.kind.as_deref() == Some("video"))
        .filter_map(|st| st.dimensions)
        .collect()
}

/// The province chair sends a commune up (`send_up`): the relay seat carries the commune's
/// camera to the national meeting instead of the chair's, and the chair's again when it sends
/// itself back. The province chair's single stream is 640×360; the commune's simulcast layers
/// are 320×180, 640×360 and 1280×720, so a keyframe of 320×180 or 1280×720 on the relay seat's
/// video can only be the commune's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_province_chair_sends_a_commune_up_in_its_place() {
    let c = Cascade::start().await;
    let speaker = Point::join(with_ladder(&c.down, "point-xb", true, &c.ladder))
        .await
        .expect("a commune with a simulcast camera joins");
    let national_point = Point::join(small_point(&c.up, "point-ha-noi", false))
        .await
        .expect("a point of the national meeting joins");
    let relay = relay_to(&c.up, &c.down);
    program_reaches(&relay, &c.down, &c.commune).await;
    let relay_seat = seat_of(&c.up, "relay-tinh").expect("the relay seat upstream");
    c.national
        .send(ClientMessage::GrantFloor {
            v: PROTOCOL_VERSION,
            point: "relay-tinh".into(),
        })
        .await;
    let chair_up = eventually(WAIT, || {
        dims_from(&national_point, &relay_seat).contains(&(640, 360))
    })
    .await;
    assert!(chair_up, "the province's chair does not go up");

    let commune_only = |d: &(u16, u16)| [(320, 180), (1280, 720)].contains(d);
    c.province
        .send(ClientMessage::SendUp {
            v: PROTOCOL_VERSION,
            point: Some("point-xb".into()),
        })
        .await;
    let commune_up = eventually(WAIT, || {
        dims_from(&national_point, &relay_seat)
            .iter()
            .any(commune_only)
    })
    .await;
    assert!(
        commune_up,
        "the commune sent up does not reach the national meeting: {:?}",
        dims_from(&national_point, &relay_seat)
    );
    assert!(
        receives_more(&national_point, &relay_seat, 20).await,
        "the commune's camera and microphone do not keep flowing up"
    );

    // Back to the chair: its 640×360 keyframes replace the commune's on the relay seat.
    c.province
        .send(ClientMessage::SendUp {
            v: PROTOCOL_VERSION,
            point: None,
        })
        .await;
    let chair_back = eventually(WAIT, || {
        let dims = dims_from(&national_point, &relay_seat);
        !dims.is_empty() && !dims.iter().any(commune_only)
    })
    .await;
    assert!(
        chair_back,
        "the chair does not go up again: {:?}",
        dims_from(&national_point, &relay_seat)
    );
    drop(speaker);
}

/// The text of the relay seat's hand in the national chair's last `room_state`, if raised.
fn relay_hand(national: &Point) -> Option<String> {
    national
        .snapshot()
        .hands
        .into_iter()
        .find(|h| h.point == "relay-tinh")
        .map(|h| h.text.unwrap_or_default())
}

/// The province chair raises a hand in the national meeting on behalf of a commune
/// (`raise_hand_up`): the national chair sees the relay seat's hand with the commune's name and
/// text, and sees it go when the province chair lowers it. When the national chair gives the
/// relay seat the floor, the province chair sees its upward hand go and the national floor it
/// holds (`upstream_floor`), until the national chair takes the floor back; a hand the national
/// chair lowers goes for the province chair too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_province_chair_raises_a_hand_upstream_for_a_commune() {
    let c = Cascade::start().await;
    let relay = relay_to(&c.up, &c.down);
    program_reaches(&relay, &c.down, &c.commune).await;
    assert_eq!(relay_hand(&c.national), None);

    c.province
        .send(ClientMessage::RaiseHandUp {
            v: PROTOCOL_VERSION,
            point: Some("point-xa".into()),
            text: Some("Xin phát biểu về mục 2".into()),
        })
        .await;
    let raised = eventually(WAIT, || relay_hand(&c.national).is_some()).await;
    assert!(raised, "the national chair sees no hand from the province");
    assert_eq!(
        relay_hand(&c.national).as_deref(),
        Some("point-xa: Xin phát biểu về mục 2"),
        "the hand names the commune it is for"
    );

    c.province
        .send(ClientMessage::LowerHandUp {
            v: PROTOCOL_VERSION,
        })
        .await;
    let lowered = eventually(WAIT, || relay_hand(&c.national).is_none()).await;
    assert!(lowered, "the province's hand stays raised upstream");

    // Raised again, and the national chair gives the relay seat the floor: the hand leaves
    // the national queue, and the province chair sees its hand go and the floor it holds.
    c.province
        .send(ClientMessage::RaiseHandUp {
            v: PROTOCOL_VERSION,
            point: None,
            text: None,
        })
        .await;
    let raised = eventually(WAIT, || relay_hand(&c.national).is_some()).await;
    assert!(
        raised,
        "the national chair sees no second hand from the province"
    );
    assert!(c.province.snapshot().hand_up.is_some());
    assert!(!c.province.snapshot().upstream_floor);
    c.national
        .send(ClientMessage::GrantFloor {
            v: PROTOCOL_VERSION,
            point: "relay-tinh".into(),
        })
        .await;
    let told = eventually(WAIT, || {
        let s = c.province.snapshot();
        s.upstream_floor && s.hand_up.is_none()
    })
    .await;
    let s = c.province.snapshot();
    assert!(
        told,
        "the province chair is not told: floor {}, hand_up {:?}",
        s.upstream_floor, s.hand_up
    );
    assert_eq!(relay_hand(&c.national), None);
    let commune_told = eventually(WAIT, || c.commune.snapshot().upstream_floor).await;
    assert!(commune_told, "every page of the linked meeting is told");

    c.national
        .send(ClientMessage::RevokeFloor {
            v: PROTOCOL_VERSION,
        })
        .await;
    let revoked = eventually(WAIT, || !c.province.snapshot().upstream_floor).await;
    assert!(
        revoked,
        "the province still holds the national floor as its chair sees it"
    );
    assert_eq!(c.province.snapshot().hand_up, None);

    // Raised once more and lowered by the national chair: the province's hand goes too.
    c.province
        .send(ClientMessage::RaiseHandUp {
            v: PROTOCOL_VERSION,
            point: Some("point-xa".into()),
            text: None,
        })
        .await;
    let raised = eventually(WAIT, || relay_hand(&c.national).is_some()).await;
    assert!(
        raised,
        "the national chair sees no third hand from the province"
    );
    c.national
        .send(ClientMessage::LowerHand {
            v: PROTOCOL_VERSION,
            point: Some("relay-tinh".into()),
        })
        .await;
    let gone = eventually(WAIT, || c.province.snapshot().hand_up.is_none()).await;
    assert!(
        gone,
        "a hand lowered upstream stays raised for the province chair"
    );
    assert!(!c.province.snapshot().upstream_floor);
    assert!(
        c.province.snapshot().errors.is_empty(),
        "{:?}",
        c.province.snapshot().errors
    );
    // The relay did not lower, upstream, a hand that was no longer there.
    assert!(
        c.national.snapshot().errors.is_empty(),
        "{:?}",
        c.national.snapshot().errors
    );
}
