//! Issue 10, item 4: the chair walks its grid page by page (its `viewport` names one page of
//! points at a time, twice over) and receives the camera of every point on the page, its offer
//! keeps at most what is routed plus the 8 paused m-lines, and no subscribe offer hands an
//! m-line from one point's track straight to another's: a freed m-line is offered inactive,
//! answered, and only then given to a new track. Before: a track routed off freed its m-line
//! for the tracks routed on in the same offer, so the client had to swap a receiver's stream
//! and SSRC in place, and a 120-point walk in pages of 24 lost one point's video at the fifth
//! page (`WALK_POINTS=120 WALK_PAGE=24` runs that walk; here a smaller one that CI affords).

mod common;

use std::time::Duration;

use common::{eventually, packets_from, small_point};
use loadtest::point::Point;
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walking_the_grid_every_point_on_the_page_reaches_the_chair_on_an_m_line_of_its_own() {
    // More points than the chair receives before its first viewport (24), so later pages bring
    // tracks it never had.
    let n = env("WALK_POINTS", 36);
    let page = env("WALK_PAGE", 12);
    let server = common::start(1).await;
    let chair = Point::join(small_point(&server, "chair", false))
        .await
        .expect("chair joins");
    let mut points = Vec::new();
    for i in 0..n {
        let p = Point::join(small_point(&server, &format!("point-{i:03}"), true))
            .await
            .unwrap_or_else(|e| panic!("point {i} joins: {e}"));
        points.push(p);
    }
    let pages = n.div_ceil(page);
    for round in 0..2 {
        for pg in 0..pages {
            let visible: Vec<&Point> = points.iter().skip(pg * page).take(page).collect();
            let base: Vec<u64> = visible
                .iter()
                .map(|p| packets_from(&chair, p, "video"))
                .collect();
            chair
                .send(ClientMessage::Viewport {
                    v: PROTOCOL_VERSION,
                    visible: visible.iter().map(|p| p.participant.clone()).collect(),
                })
                .await;
            let flowing = |p: &Point, b: u64| packets_from(&chair, p, "video") > b + 10;
            let ok = eventually(Duration::from_secs(40), || {
                visible.iter().zip(&base).all(|(p, b)| flowing(p, *b))
            })
            .await;
            let missing: Vec<&str> = visible
                .iter()
                .zip(&base)
                .filter(|(p, b)| !flowing(p, **b))
                .map(|(p, _)| p.participant.as_str())
                .collect();
            let s = chair.snapshot();
            eprintln!(
                "round {round} page {pg}: {} m-lines, {} offers, {} m-lines handed over in place",
                s.subscribe_offer_mlines, s.subscribe_offers, s.mid_handoffs
            );
            assert!(
                ok,
                "round {round} page {pg}: the chair gets no video from {missing:?} (errors {:?})",
                s.errors
            );
            // What is routed at once (the first 24 points before the first viewport, then a
            // page) plus the 8 paused downtracks a subscriber keeps.
            let bound = 24.max(page + 8);
            assert!(
                s.subscribe_offer_mlines <= bound,
                "round {round} page {pg}: {} m-lines in the chair's offer, more than {bound}",
                s.subscribe_offer_mlines
            );
            assert_eq!(
                s.mid_handoffs, 0,
                "round {round} page {pg}: an offer gave an m-line to another point's track \
                 without the chair seeing it inactive first"
            );
        }
    }
}
