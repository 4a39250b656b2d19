//! The harness tested without a server: sim peers connect to a server-like `rtc` peer over the
//! virtual network, ICE and DTLS complete in virtual time, and media arrives as sent.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::net::{LinkConfig, LinkKey, Net, QueueLimit};
use super::peer::{PeerOptions, SimPeer};
use super::publish::PublisherConfig;
use super::vp8::LayerSpec;
use super::{Clock, Node, progress};

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 5000))
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A line like a home connection's: 30 ms each way, a 20-packet queue, plenty of rate.
fn home_line(net: &mut Net, who: SocketAddr) {
    for key in [LinkKey::To(who), LinkKey::From(who)] {
        net.add_link(
            key,
            LinkConfig {
                rate_bps: Some(20_000_000),
                queue: QueueLimit::Packets(20),
                delay: Duration::from_millis(30),
                loss: 0.0,
            },
        );
    }
}

#[test]
fn a_simulcast_publisher_reaches_a_server_like_peer_with_all_three_layers() {
    let mut clock = Clock::new();
    let mut net = Net::new(1);
    home_line(&mut net, addr(1));
    let now = clock.now();
    let mut publisher = SimPeer::publisher(
        now,
        addr(1),
        PublisherConfig::default(),
        PeerOptions::default(),
    )
    .unwrap();
    let mut server = SimPeer::server_like(now, addr(100), PeerOptions::default(), None).unwrap();

    let offer = publisher.offer(now).unwrap();
    assert_eq!(offer.matches("a=rid:").count(), 3, "{offer}");
    assert!(offer.contains("a=simulcast:send q;h;f"), "{offer}");
    let answer = server.accept_offer(now, &offer).unwrap();
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(
        answer.contains(&format!("{} {}", addr(100).ip(), 5000)),
        "{answer}"
    );
    publisher.accept_answer(now, &answer).unwrap();

    let end = clock.epoch() + secs(5);
    let run = progress(
        &mut clock,
        &mut net,
        &mut [&mut publisher, &mut server],
        end,
    );
    assert!(publisher.connected && server.connected);
    assert_eq!(run.unroutable, 0);
    assert!(publisher.errors.is_empty(), "{:?}", publisher.errors);
    assert!(server.errors.is_empty(), "{:?}", server.errors);

    for (rid, w, h, kbps) in [
        ("q", 320, 180, 150.0),
        ("h", 640, 360, 500.0),
        ("f", 1280, 720, 1200.0),
    ] {
        let (ssrc, s) = server
            .recorder
            .by_rid(rid)
            .unwrap_or_else(|| panic!("no layer {rid}: {:?}", server.recorder.streams));
        assert_eq!(ssrc, publisher.publish().unwrap().layer(rid).unwrap().ssrc);
        assert_eq!(s.resolution(), Some((w, h)), "{rid}");
        assert_eq!(s.gaps, 0, "{rid}");
        assert_eq!(s.tids_in(2, 4), [0, 1, 2], "{rid}");
        let rate = s.bitrate_in(2, 4) / 1_000.0;
        assert!((rate - kbps).abs() < kbps * 0.15, "{rid}: {rate} kbit/s");
    }
    let audio = server.recorder.streams.len();
    assert_eq!(audio, 4, "three layers and the audio");
    assert!(
        publisher.rtcp_seen.receiver_reports.load(Ordering::Relaxed) > 0,
        "the server-like peer reports"
    );
    assert!(
        publisher.rtcp_seen.transport_cc.load(Ordering::Relaxed) > 10,
        "and sends transport-wide feedback on the publisher's numbered packets"
    );
}

#[test]
fn a_subscriber_answers_receives_vp8_and_sends_transport_feedback() {
    let mut clock = Clock::new();
    let mut net = Net::new(2);
    home_line(&mut net, addr(2));
    let now = clock.now();
    let one_layer = PublisherConfig {
        layers: vec![(String::new(), LayerSpec::new(640, 360, 500))],
        audio: false,
    };
    let mut server =
        SimPeer::server_like(now, addr(100), PeerOptions::default(), Some(one_layer)).unwrap();
    let mut subscriber = SimPeer::subscriber(now, addr(2), PeerOptions::default()).unwrap();

    let offer = server.offer(now).unwrap();
    let answer = subscriber.accept_offer(now, &offer).unwrap();
    assert!(answer.contains("transport-cc"), "{answer}");
    server.accept_answer(now, &answer).unwrap();

    let end = clock.epoch() + secs(3);
    let run = progress(
        &mut clock,
        &mut net,
        &mut [&mut server, &mut subscriber],
        end,
    );
    assert!(server.connected && subscriber.connected);
    assert_eq!(run.unroutable, 0);
    assert!(subscriber.errors.is_empty(), "{:?}", subscriber.errors);
    assert!(server.errors.is_empty(), "{:?}", server.errors);
    let ssrc = server.publish().unwrap().layers[0].ssrc;
    let s = &subscriber.recorder.streams[&ssrc];
    assert_eq!(s.resolution(), Some((640, 360)));
    assert_eq!((s.gaps, s.late, s.duplicates), (0, 0, 0));
    assert!(s.packets > 100, "{s:?}");
    let feedback = server.rtcp_seen.transport_cc.load(Ordering::Relaxed);
    assert!(
        feedback >= 10,
        "transport-wide feedback reports: {feedback}"
    );

    // A keyframe request reaches the sender, which answers with a keyframe.
    subscriber.request_keyframe(clock.now(), ssrc).unwrap();
    let end = clock.now() + secs(1);
    progress(
        &mut clock,
        &mut net,
        &mut [&mut server, &mut subscriber],
        end,
    );
    assert_eq!(
        server.publish().unwrap().layers[0]
            .source
            .as_ref()
            .unwrap()
            .keyframes,
        2
    );
    assert_eq!(subscriber.recorder.streams[&ssrc].keyframes.len(), 2);
}

/// Nodes can be driven as trait objects (the server's worker core will be one).
#[test]
fn nodes_report_their_address() {
    let clock = Clock::new();
    let p = SimPeer::subscriber(clock.now(), addr(3), PeerOptions::default()).unwrap();
    assert_eq!(Node::addr(&p), addr(3));
}

/// What a subscriber behind a lossy line got: (gaps, late, duplicates, sequence numbers the
/// sender saw NACKed).
fn lossy_run(seed: u64) -> (u64, u64, u64, u64) {
    let mut clock = Clock::new();
    let mut net = Net::new(seed);
    net.add_link(
        LinkKey::To(addr(2)),
        LinkConfig {
            rate_bps: Some(5_000_000),
            queue: QueueLimit::Packets(20),
            delay: Duration::from_millis(20),
            loss: 0.03,
        },
    );
    let now = clock.now();
    let one_layer = PublisherConfig {
        layers: vec![(String::new(), LayerSpec::new(640, 360, 500))],
        audio: false,
    };
    let mut server =
        SimPeer::server_like(now, addr(100), PeerOptions::default(), Some(one_layer)).unwrap();
    let mut subscriber = SimPeer::subscriber(now, addr(2), PeerOptions::default()).unwrap();
    let offer = server.offer(now).unwrap();
    let answer = subscriber.accept_offer(now, &offer).unwrap();
    server.accept_answer(now, &answer).unwrap();
    let end = clock.epoch() + secs(6);
    progress(
        &mut clock,
        &mut net,
        &mut [&mut server, &mut subscriber],
        end,
    );
    assert!(subscriber.connected, "DTLS gets through 3 % loss");
    let ssrc = server.publish().unwrap().layers[0].ssrc;
    let s = &subscriber.recorder.streams[&ssrc];
    let nacked = server.rtcp_seen.nacked_packets.load(Ordering::Relaxed);
    (s.gaps, s.late, s.duplicates, nacked)
}

#[test]
fn a_lossy_line_repeats_with_its_seed_and_nacks_repair_it() {
    let a = lossy_run(11);
    assert_eq!(a, lossy_run(11), "same seed, same run");
    let (gaps, late, duplicates, nacked) = a;
    assert!(gaps > 5, "3 % of some 400 packets are lost: {a:?}");
    // Each loss is asked for once and repaired once (over RTX, unwrapped): see `unwrap_rtx`.
    assert_eq!((late, duplicates, nacked), (gaps, 0, gaps), "{a:?}");
    assert_ne!(a, lossy_run(12), "another seed, other losses");
}

#[test]
fn rtx_pairs_are_read_from_the_remote_description() {
    let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=rtpmap:97 rtx/90000\r\n\
               a=fmtp:97 apt=96\r\na=ssrc-group:FID 1111 2222\r\na=ssrc:1111 cname:x\r\n";
    let map = super::engine::RtxMap::from_sdp(sdp);
    assert_eq!(map.primary.get(&2222), Some(&1111));
    assert_eq!(map.apt.get(&97), Some(&96));
}
