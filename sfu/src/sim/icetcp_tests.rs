//! ICE-TCP in virtual time (issue 12): a point whose firewall drops UDP gets the chair over the
//! server's passive TCP candidate, a point that has both ends up on UDP, and a slow TCP line
//! keeps the audio ahead of the video. The point's agent picks the pair (it is controlling,
//! the server ICE-lite); both ends' candidates rank UDP first, so with both pairs valid the
//! agent nominates UDP, and it is also the first to answer (TCP waits for its handshake).

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::meeting::{Meeting, clean_line, point_addr};
use super::net::{LinkConfig, LinkKey};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A firewall that drops every UDP datagram (the load generator's `tcp-only` line).
fn udp_blocked() -> LinkConfig {
    LinkConfig {
        loss: 1.0,
        ..clean_line()
    }
}

#[test]
fn a_point_without_udp_gets_the_chair_over_ice_tcp_within_five_seconds() {
    let mut m = Meeting::with_ice_tcp(3, 1, clean_line());
    let addr = point_addr(0);
    let down = m.net.add_link(LinkKey::To(addr), udp_blocked());
    m.net.add_link(LinkKey::From(addr), udp_blocked());
    m.tcp.set_line(addr.ip(), clean_line(), clean_line());
    m.run_for(secs(5));

    let v = m.video(0).expect("the chair's video within 5 s over TCP");
    let first = v.keyframes.first().expect("a keyframe");
    assert!(first.0 < secs(5), "first picture at {:?}", first.0);
    let a = m.audio(0).expect("the chair's audio within 5 s over TCP");
    assert!(a.packets > 50, "audio packets: {}", a.packets);

    m.run_for(secs(5));
    let dropped = m.server.metric("hoinghi_ice_tcp_send_dropped_total");
    let (v, a) = (m.video(0).expect("video"), m.audio(0).expect("audio"));
    // A reliable stream on a clean line: nothing missing, nothing twice, the top layer. Small
    // packets (a frame's tail) may overtake queued video on the server's TCP queue (audio
    // first, issue 11), so video numbers can arrive out of order, but every gap is filled.
    let nacked = m.chair.rtcp_seen.nacked_packets.load(Ordering::Relaxed);
    let summary = format!(
        "gaps {} late {} dropped {dropped} nacked {nacked}",
        v.gaps, v.late
    );
    assert_eq!(v.gaps, v.late, "{summary}");
    assert_eq!(v.duplicates, 0, "{summary}");
    assert_eq!((dropped, nacked), (0.0, 0), "{summary}");
    assert_eq!((a.gaps, a.late, a.duplicates), (0, 0, 0), "audio {a:?}");
    assert_eq!(m.height_at(0, m.elapsed()), 720);
    assert!(a.packets > 400, "10 s of audio, {} packets", a.packets);
    // All of it over TCP: nothing got through the firewall, and the server wrote to one stream.
    assert_eq!(m.net.stats(down).delivered, 0);
    let (tcp_bytes, streams) = m.tcp.delivered_to(addr.ip());
    assert!(tcp_bytes > v.bytes + a.bytes, "{tcp_bytes} bytes over TCP");
    assert_eq!(m.server.metric("hoinghi_ice_tcp_connections"), 1.0);
    assert!(streams >= 1);
    assert!(m.points[0].errors.is_empty(), "{:?}", m.points[0].errors);
}

#[test]
fn a_point_with_both_ends_up_on_udp() {
    let mut m = Meeting::with_ice_tcp(3, 1, clean_line());
    let addr = point_addr(0);
    m.tcp.set_line(addr.ip(), clean_line(), clean_line());
    m.run_for(secs(6));

    let v = m.video(0).expect("video");
    assert_eq!((v.gaps, v.late, v.duplicates), (0, 0, 0), "video {v:?}");
    assert_eq!(m.height_at(0, m.elapsed()), 720);
    // The media came over UDP; TCP carried at most the agent's checks of the TCP pair (a
    // binding response is under 100 bytes).
    let udp = m.net.stats(m.downlinks[0]).bytes_delivered;
    assert!(udp > v.bytes, "{udp} bytes over UDP");
    let (tcp_bytes, streams) = m.tcp.delivered_to(addr.ip());
    assert!(tcp_bytes < 2_000, "{tcp_bytes} bytes over TCP");
    // The TCP pair was there to choose: the agent opened a stream and the server took it.
    assert_eq!(streams, 1);
    assert_eq!(m.server.metric("hoinghi_ice_tcp_connections"), 1.0);
    assert!(m.server.metric("hoinghi_ice_tcp_bytes_out_total") < 2_000.0);
}

#[test]
fn behind_a_slow_tcp_line_audio_goes_ahead_of_video() {
    // 600 kbit/s from the server over TCP, UDP dropped: more video than the line takes reaches
    // the server's TCP queue, and the audio must not wait behind it (issue 11, audio first).
    let mut m = Meeting::with_ice_tcp(3, 1, clean_line());
    let addr = point_addr(0);
    m.net.add_link(LinkKey::To(addr), udp_blocked());
    m.net.add_link(LinkKey::From(addr), udp_blocked());
    let slow = LinkConfig {
        rate_bps: Some(600_000),
        ..clean_line()
    };
    m.tcp.set_line(addr.ip(), clean_line(), slow);
    m.run_for(secs(20));

    let a = m.audio(0).expect("audio");
    let transit: Vec<(u64, f64)> = a
        .seconds
        .iter()
        .filter_map(|(&s, x)| Some((s, x.transit_ms()?)))
        .collect();
    let floor = transit.iter().map(|t| t.1).fold(f64::MAX, f64::min);
    let late: Vec<_> = transit.iter().filter(|t| t.1 > floor + 150.0).collect();
    assert!(
        late.is_empty(),
        "audio seconds 150 ms over the floor: {late:?}"
    );
    let quiet: Vec<u64> = (1..20)
        .filter(|s| a.seconds.get(s).is_none_or(|x| x.packets < 40))
        .collect();
    assert!(quiet.is_empty(), "seconds with little audio: {quiet:?}");
    // The video plays on: every second from the first picture on brings some.
    let v = m.video(0).expect("video");
    let first = v.keyframes.first().expect("a keyframe").0.as_secs();
    let empty: Vec<u64> = (first + 1..20)
        .filter(|s| v.seconds.get(s).is_none_or(|x| x.packets == 0))
        .collect();
    assert!(empty.is_empty(), "seconds without video: {empty:?}");
}
