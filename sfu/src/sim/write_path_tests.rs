//! What the interceptors give a forwarded packet on its way out, end to end through real `rtc`
//! peers: a NACKed packet comes back as itself, and every packet the server sends, media or
//! padding, takes the next transport-wide number. Any faster write path (issue 12) must keep
//! both.

use std::time::Duration;

use super::meeting::{Meeting, clean_line};
use super::net::LinkConfig;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_packet_lost_on_the_line_comes_back_with_its_number_its_timestamp_and_its_frame() {
    let lossy = LinkConfig {
        loss: 0.03,
        ..clean_line()
    };
    let mut m = Meeting::new(7, 1, lossy);
    m.run_for(secs(10));
    let v = m.video(0).expect("the point receives video");
    let numbers = m.points[0].transport_numbers.lock().unwrap().clone();
    let summary = format!(
        "packets {} gaps {} late {} duplicates {} foreign {} {numbers:?}",
        v.packets, v.gaps, v.late, v.duplicates, v.foreign
    );
    // The line lost packets (a few percent of ~10 s of video) and the server resent them, as
    // repairs on the RTX stream.
    assert!(v.gaps > 20, "{summary}");
    assert!(numbers.repairs >= v.late, "{summary}");
    // Each repair filled its hole (nearly all: a repair can be lost on the line too, and is
    // asked for again), as the packet of that number, not as some other one: it arrived
    // `late` rather than as a duplicate, and its payload is of the frame its timestamp says.
    assert!(v.late * 100 >= v.gaps * 95, "{summary}");
    assert_eq!(v.foreign, 0, "{summary}");
    assert!(v.duplicates <= v.gaps / 10, "{summary}");
    // Media kept its transport-wide numbers on the lossy line (the line's losses are the
    // only holes; repairs are not numbered by `rtc`, see `TransportNumbers`).
    assert_eq!(numbers.unnumbered, 0, "{summary}");
}

#[test]
fn transport_wide_numbers_run_on_without_a_hole_across_media_and_probe_padding() {
    let mut m = Meeting::new(1, 1, clean_line());
    m.run_for(secs(8));
    let probes = m.server.metric("hoinghi_probes_total");
    let numbers = m.points[0].transport_numbers.lock().unwrap().clone();
    let line = m.net.stats(m.downlinks[0]);
    let summary = format!("probes {probes} line {line:?} {numbers:?}");
    // The climb to 720p probed with padding, and those packets were numbered with the media.
    assert!(probes > 0.0, "{summary}");
    assert!(numbers.padding > 0, "{summary}");
    assert!(numbers.numbered > 1_000, "{summary}");
    // A clean line dropped nothing, so every number arrived once, in order.
    assert_eq!((line.dropped_queue, line.dropped_loss), (0, 0), "{summary}");
    assert_eq!(
        (numbers.skipped, numbers.not_ahead, numbers.unnumbered),
        (0, 0, 0),
        "{summary}"
    );
    assert_eq!(
        numbers.repairs, 0,
        "nothing to repair on a clean line: {summary}"
    );
}
