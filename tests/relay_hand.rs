//! A hand raised upstream for the province (`raise_hand_up`) that the national side drops
//! while the upstream program is lost, so that no program seat is in the linked meeting: the
//! relay seat is still in the national meeting and sees the hand go, and the province's
//! `room_state.hand_up` goes with it.

mod cascade;
mod common;

use cascade::{Cascade, WAIT, program_reaches, relay_to, upstream_seat};
use common::{eventually, small_point};
use loadtest::point::Point;
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION};

/// Whether the relay seat's hand is in `national`'s last `room_state`.
fn relay_hand_up(national: &Point) -> bool {
    national
        .snapshot()
        .hands
        .iter()
        .any(|h| h.point == "relay-tinh")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_dropped_upstream_while_the_program_is_lost_goes_for_the_province_too() {
    let Cascade {
        up,
        down,
        national,
        province,
        commune,
        ..
    } = Cascade::start().await;
    let relay = relay_to(&up, &down);
    program_reaches(&relay, &down, &commune).await;
    province
        .send(ClientMessage::RaiseHandUp {
            v: PROTOCOL_VERSION,
            point: None,
            text: None,
        })
        .await;
    let raised = eventually(WAIT, || relay_hand_up(&national)).await;
    assert!(raised, "the national chair sees no hand from the province");

    // The national chair leaves: no program, so the program seat leaves the linked meeting;
    // the relay seat (and its hand) stay in the national meeting.
    national.leave();
    drop(national);
    let left = eventually(WAIT, || upstream_seat(&down).is_none()).await;
    assert!(left, "the program seat stays without a program");
    assert!(province.snapshot().hand_up.is_some());

    // A national chair without a camera (still no program) lowers the relay seat's hand.
    let chair = Point::join(small_point(&up, "chair", false))
        .await
        .expect("a national chair joins again");
    let seen = eventually(WAIT, || relay_hand_up(&chair)).await;
    assert!(
        seen,
        "the relay seat's hand is no longer in the national queue"
    );
    chair
        .send(ClientMessage::LowerHand {
            v: PROTOCOL_VERSION,
            point: Some("relay-tinh".into()),
        })
        .await;
    let gone = eventually(WAIT, || province.snapshot().hand_up.is_none()).await;
    assert!(
        gone,
        "a hand dropped upstream stays raised for the province chair"
    );
    assert_eq!(upstream_seat(&down), None, "no program seat was there");
    assert!(
        chair.snapshot().errors.is_empty(),
        "{:?}",
        chair.snapshot().errors
    );
}
