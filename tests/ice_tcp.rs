//! ICE-TCP end to end on loopback: a point whose UDP is blocked (the load generator's `tcp-only`
//! link drops every UDP datagram) reaches the server over TCP, receives the chair and publishes
//! to it; the acceptor closes what is not ICE. Also: a media plane bound to every interface
//! (the default of `hoinghi serve`) still matches packets to its announced candidate.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{TestServer, eventually};
use loadtest::link::LinkParams;
use loadtest::point::{Point, PointConfig, PointStats};

fn config(
    server: &TestServer,
    token: &str,
    publish: bool,
    link: Option<LinkParams>,
) -> PointConfig {
    PointConfig {
        ws_url: server.ws_url(),
        token: token.into(),
        publish,
        bind_ip: [127, 0, 0, 1].into(),
        video_fps: 25,
        video_frame_bytes: 1_500,
        link,
        ..Default::default()
    }
}

fn packets(s: &PointStats, kind: &str) -> Vec<u64> {
    s.streams
        .values()
        .filter(|st| st.kind.as_deref() == Some(kind))
        .map(|st| st.packets)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_without_udp_sends_and_receives_over_ice_tcp() {
    let server = common::start(1).await;
    assert!(server.sfu.ice_tcp_port().is_some(), "ICE-TCP is on");
    let chair = Point::join(config(&server, "chair", true, None))
        .await
        .expect("chair joins");
    let tcp_only = LinkParams::profile("tcp-only").expect("profile");
    let point = Point::join(config(&server, "point-tcp", true, Some(tcp_only)))
        .await
        .expect("point joins");

    // The point hears and sees the chair, and the chair sees the point's camera.
    let flowing = eventually(Duration::from_secs(40), || {
        let p = point.snapshot();
        let c = chair.snapshot();
        packets(&p, "video").iter().any(|&n| n >= 60)
            && packets(&p, "audio").iter().any(|&n| n >= 50)
            && packets(&c, "video").iter().any(|&n| n >= 60)
    })
    .await;
    let (p, c) = (point.snapshot(), chair.snapshot());
    eprintln!(
        "point video {:?} audio {:?} errors {:?}; chair video {:?}",
        packets(&p, "video"),
        packets(&p, "audio"),
        p.errors,
        packets(&c, "video")
    );
    assert!(flowing, "media did not flow both ways over ICE-TCP");

    // Every byte the point got went over TCP: its UDP is dropped by the emulated firewall. Both
    // of its connections (publish and subscribe) are TCP; the chair's are not.
    assert_eq!(server.gauge("hoinghi_ice_tcp_connections"), 2.0);
    assert!(server.counter("hoinghi_ice_tcp_accepted_total") >= 2.0);
    assert!(server.counter("hoinghi_ice_tcp_bytes_out_total") > 50_000.0);
    assert!(server.counter("hoinghi_ice_tcp_bytes_in_total") > 50_000.0);

    // Leaving closes the point's TCP connections on the server.
    point.leave();
    let closed = eventually(Duration::from_secs(10), || {
        server.gauge("hoinghi_ice_tcp_connections") == 0.0
    })
    .await;
    assert!(
        closed,
        "the server kept the TCP connections of a point that left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acceptor_closes_what_is_not_ice() {
    let server = common::start(1).await;
    let port = server.sfu.ice_tcp_port().expect("ICE-TCP is on");
    let closed_by_server = |mut s: TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        // EOF (or a reset) is the server closing; a timeout would be it keeping the connection.
        match s.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    };

    // Not RFC 4571 framed STUN: an HTTP request.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(closed_by_server(s), "an HTTP request was not refused");

    // A framed binding request naming a connection that does not exist.
    let stun = stun_binding_request("deadbeefw0n999:x");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&(stun.len() as u16).to_be_bytes()).unwrap();
    s.write_all(&stun).unwrap();
    assert!(closed_by_server(s), "an unknown ufrag was not refused");

    // A ufrag naming a worker that does not exist.
    let stun = stun_binding_request("deadbeefw7n1:x");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&(stun.len() as u16).to_be_bytes()).unwrap();
    s.write_all(&stun).unwrap();
    assert!(closed_by_server(s), "an unknown worker was not refused");

    let refused = eventually(Duration::from_secs(5), || {
        server.counter("hoinghi_ice_tcp_refused_total") >= 2.0
    })
    .await;
    assert!(refused, "refusals are counted");
    assert_eq!(server.gauge("hoinghi_ice_tcp_connections"), 0.0);
    // And the media plane still serves: a point joins and gets the chair over UDP.
    let chair = Point::join(config(&server, "chair", true, None))
        .await
        .unwrap();
    let point = Point::join(config(&server, "point-1", false, None))
        .await
        .unwrap();
    let ok = eventually(Duration::from_secs(30), || {
        packets(&point.snapshot(), "video").iter().any(|&n| n >= 30)
    })
    .await;
    drop(chair);
    assert!(ok, "media after hostile TCP connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_cannot_hold_every_pending_slot() {
    // 8 connections that never speak are held (up to 5 s each); the next one from the same
    // address is closed at once instead of waiting its turn.
    let server = common::start(1).await;
    let port = server.sfu.ice_tcp_port().expect("ICE-TCP is on");
    let idle: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let held = eventually(Duration::from_secs(5), || {
        server.counter("hoinghi_ice_tcp_refused_total") == 0.0
    })
    .await;
    assert!(held, "idle connections under the cap are held, not refused");
    let mut extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut buf = [0u8; 8];
    // Closed well before the 5 s a pending connection may wait: EOF or reset within 3 s.
    let closed = match extra.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(
        closed,
        "the 9th idle connection from one host was not refused"
    );
    let counted = eventually(Duration::from_secs(5), || {
        server.counter("hoinghi_ice_tcp_refused_total") >= 1.0
    })
    .await;
    assert!(counted);
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_when_the_media_plane_is_bound_to_every_interface() {
    // `hoinghi serve` listening on 0.0.0.0 binds its media sockets to 0.0.0.0 and announces the
    // public address: the engine must see packets as arriving at the announced address.
    let server = TestServer::start_with(
        ([127, 0, 0, 1], 0).into(),
        sfu::SfuConfig {
            public_ip: [127, 0, 0, 1].into(),
            bind_ip: [0, 0, 0, 0].into(),
            base_port: 0,
            workers: 1,
            ice_tcp_port: Some(0),
        },
    )
    .await
    .expect("server starts");
    let _chair = Point::join(config(&server, "chair", true, None))
        .await
        .unwrap();
    let point = Point::join(config(&server, "point-1", false, None))
        .await
        .unwrap();
    let tcp_point = Point::join(config(
        &server,
        "point-2",
        false,
        LinkParams::profile("tcp-only"),
    ))
    .await
    .unwrap();
    let ok = eventually(Duration::from_secs(40), || {
        packets(&point.snapshot(), "video").iter().any(|&n| n >= 30)
            && packets(&tcp_point.snapshot(), "video")
                .iter()
                .any(|&n| n >= 30)
    })
    .await;
    assert!(
        ok,
        "no media with the media plane on 0.0.0.0 (udp {:?}, tcp {:?})",
        packets(&point.snapshot(), "video"),
        packets(&tcp_point.snapshot(), "video")
    );
}

/// A STUN binding request with USERNAME and a dummy MESSAGE-INTEGRITY (the acceptor routes by
/// USERNAME only; the connection would check the integrity).
fn stun_binding_request(username: &str) -> Vec<u8> {
    let mut attrs = Vec::new();
    attrs.extend_from_slice(&0x0006u16.to_be_bytes());
    attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attrs.extend_from_slice(username.as_bytes());
    while attrs.len() % 4 != 0 {
        attrs.push(0);
    }
    attrs.extend_from_slice(&0x0008u16.to_be_bytes());
    attrs.extend_from_slice(&20u16.to_be_bytes());
    attrs.extend_from_slice(&[0u8; 20]);
    let mut msg = Vec::new();
    msg.extend_from_slice(&0x0001u16.to_be_bytes());
    msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    msg.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    msg.extend_from_slice(&[7u8; 12]);
    msg.extend_from_slice(&attrs);
    msg
}
