//! Issue 10, item 4: a subscribe connection is never left without offers after an error. The
//! chair mishandles its first subscribe offer (answers with garbage, with an answer past the
//! SDP limit (`MAX_SDP_BYTES`), or not at all); the server restarts its subscribe connection (a new offer
//! marked `restart`) and the chair then receives the point. Before: the server waited for that
//! answer for ever and sent the chair no further offer, so it never received anyone again.

mod common;

use std::time::Duration;

use common::{eventually, packets_from, small_point};
use loadtest::point::{AnswerFault, Point, PointConfig};

async fn the_chair_recovers_from(fault: AnswerFault) {
    let server = common::start(1).await;
    let chair = Point::join(PointConfig {
        first_answer_fault: Some(fault),
        ..small_point(&server, "chair", false)
    })
    .await
    .expect("chair joins");
    let a = Point::join(small_point(&server, "point-a", true))
        .await
        .expect("a joins");
    // The answer timeout is 15 s; a loaded machine gets generous room beyond it.
    let restarted = eventually(Duration::from_secs(60), || {
        chair.snapshot().subscribe_restarts >= 1
    })
    .await;
    let s = chair.snapshot();
    assert!(
        restarted,
        "{fault:?}: no new subscribe connection offered ({} offers, errors {:?})",
        s.subscribe_offers, s.errors
    );
    let receiving = eventually(Duration::from_secs(30), || {
        packets_from(&chair, &a, "video") > 20
    })
    .await;
    assert!(
        receiving,
        "{fault:?}: the chair does not receive a's camera after the restart"
    );
    assert_eq!(
        chair.snapshot().subscribe_restarts,
        1,
        "{fault:?}: one restart is enough once the chair answers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_subscribe_answer_is_followed_by_a_new_connection_and_media() {
    the_chair_recovers_from(AnswerFault::Garbage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_subscribe_answer_is_followed_by_a_new_connection_and_media() {
    the_chair_recovers_from(AnswerFault::Oversized).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_subscribe_offer_is_followed_by_a_new_connection_and_media() {
    the_chair_recovers_from(AnswerFault::Silent).await;
}
