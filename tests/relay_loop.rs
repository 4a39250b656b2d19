//! A loop of linked meetings (the cascade, issue 13): server A's meeting takes B's relay seat
//! (A is a province under B), then B's meeting is linked to A's relay seat. B's relay joins A
//! with the chain of servers its program comes through (B, and A, whose relay sits in B's
//! meeting): A finds its own instance id there and refuses the seat with `relay_loop`, and
//! B's relay shows why (`RelayState::Loop`, `loop` in the admin panel).

mod cascade;
mod common;

use cascade::{WAIT, relay_to, seat_of};
use common::eventually;
use relay::RelayState;

/// How many errors of `code` the server `at` sent.
fn errors(at: &common::TestServer, code: &str) -> f64 {
    at.registry
        .gather()
        .iter()
        .filter(|f| f.name() == "hoinghi_signaling_errors_total")
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| m.get_label().iter().any(|l| l.value() == code))
        .map(|m| m.get_counter().value())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_meetings_linked_to_each_other_are_refused_as_a_loop() {
    let a = common::start(1).await;
    let b = common::start(1).await;
    assert_ne!(a.signaling.instance_id(), b.signaling.instance_id());

    // A → B: A's meeting takes B's relay seat.
    let a_up = relay_to(&b, &a);
    let seated = eventually(WAIT, || seat_of(&b, "relay-tinh").is_some()).await;
    assert!(seated, "A's relay does not take its seat in B's meeting");
    assert_eq!(
        b.signaling.relay_chain("bench"),
        [b.signaling.instance_id(), a.signaling.instance_id()],
        "B's meeting takes A's program"
    );

    // B → A: B's relay comes with the chain [B, A]; A refuses it.
    let b_up = relay_to(&a, &b);
    let refused = eventually(WAIT, || b_up.state() == RelayState::Loop).await;
    assert!(
        refused,
        "B's relay is not refused as a loop: {:?}",
        b_up.state()
    );
    assert!(errors(&a, "relay_loop") >= 1.0, "A sent no relay_loop");
    assert_eq!(
        seat_of(&a, "relay-tinh"),
        None,
        "B's relay took a seat in A"
    );
    // The first link is untouched.
    assert!(seat_of(&b, "relay-tinh").is_some());
    assert_ne!(a_up.state(), RelayState::Loop);
}
