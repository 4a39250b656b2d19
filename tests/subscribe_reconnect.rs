//! Issue 10, item 6: a subscribe connection whose path stays dead past the ICE failure timeout
//! comes back without a re-join. A point receives the chair's camera and microphone through an
//! emulated line (a userspace relay on loopback); the line is cut both ways for longer than the
//! point's ICE failure timeout, so its subscribe connection fails, and a failed connection never
//! comes back by itself (the server offers it: the client cannot restart its ICE). The point
//! reports it (`restart_subscribe`), the server opens a new subscribe connection on the same
//! session (an offer marked `restart`, again while the line stays dead), and once the line
//! returns the point receives the chair again: same WebSocket, same participant, nobody left or
//! joined. Before: the point received nothing after the cut until it joined again.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, packets_from, small_point};
use loadtest::link::LinkParams;
use loadtest::point::{Point, PointConfig};

/// The point's ICE gives a connection up 2 + 3 s after the last packet it heard (Chromium: about
/// 17 s); short, so the test's cut can be longer than it without lasting a minute.
const POINT_ICE: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(3));
/// How long the line stays cut: three times the point's failure timeout.
const CUT: Duration = Duration::from_secs(15);
/// Generous for a loaded machine; recovery takes a second or a few when idle (the figure is
/// printed). Shorter than the server's own ICE failure timeout (45 s), so only the client's
/// report can bring the media back within it.
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_path_dead_past_the_failure_timeout_comes_back_on_the_same_seat() {
    let server = common::start(1).await;
    let chair = Point::join(small_point(&server, "chair", true))
        .await
        .expect("chair joins");
    let a = Point::join(PointConfig {
        link: Some(LinkParams::default()),
        ice_timeouts: Some(POINT_ICE),
        ..small_point(&server, "point-a", false)
    })
    .await
    .expect("a joins");
    let receiving = eventually(Duration::from_secs(60), || {
        packets_from(&a, &chair, "video") > 20 && packets_from(&a, &chair, "audio") > 20
    })
    .await;
    assert!(
        receiving,
        "before the cut, the point does not receive the chair"
    );
    let link = a.link.clone().expect("the point has an emulated line");

    link.set_cut(true);
    let cut_at = Instant::now();
    let failed = eventually(Duration::from_secs(60), || {
        a.snapshot().subscribe_failures >= 1
    })
    .await;
    let s = a.snapshot();
    assert!(
        failed,
        "the point's subscribe connection did not fail with its line cut ({} offers, errors {:?})",
        s.subscribe_offers, s.errors
    );
    let restarted = eventually(Duration::from_secs(30), || {
        a.snapshot().subscribe_restarts >= 1
    })
    .await;
    let s = a.snapshot();
    assert!(
        restarted,
        "the server offered no new subscribe connection after the point reported its failure \
         ({} offers, errors {:?})",
        s.subscribe_offers, s.errors
    );
    // The line stays dead well past the failure (a new connection on it fails again).
    tokio::time::sleep(CUT.saturating_sub(cut_at.elapsed())).await;
    let (video, audio) = (
        packets_from(&a, &chair, "video"),
        packets_from(&a, &chair, "audio"),
    );
    link.set_cut(false);
    let restored = Instant::now();
    let back = eventually(RECOVERY_LIMIT, || {
        packets_from(&a, &chair, "video") > video + 20
            && packets_from(&a, &chair, "audio") > audio + 20
    })
    .await;
    let took = restored.elapsed();
    let s = a.snapshot();
    println!(
        "MEASURED  line cut {:.1} s: video and audio again {:.2} s after the restore \
         ({} subscribe connections failed, {} restarted)",
        (restored - cut_at).as_secs_f64(),
        took.as_secs_f64(),
        s.subscribe_failures,
        s.subscribe_restarts
    );
    assert!(
        back,
        "the point does not receive the chair again within {RECOVERY_LIMIT:?} of the restore \
         ({} offers, {} restarts, errors {:?})",
        s.subscribe_offers, s.subscribe_restarts, s.errors
    );
    // The same session all along: the point's WebSocket never closed (a closed one ends its
    // task, and no offer could have reached it since), and it never joined again.
    assert!(
        s.errors.is_empty(),
        "the point was refused something: {:?}",
        s.errors
    );
}
