//! ICE-TCP's pending slots under a flood (issue 9, item 8): connections that never send their
//! first binding request are held a few seconds each, and hosts that fill their quotas must not
//! keep another host's connection out. Clients bind their own source address in 127.0.0.0/8.

mod common;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpSocket;

/// A TCP connection to `port` on 127.0.0.1 from `from`, as a blocking std stream.
async fn connect(from: Ipv4Addr, port: u16) -> std::net::TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    let stream = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Whether the server keeps `stream` open for `wait` (a refused one is closed at once).
fn held_for(stream: &mut std::net::TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 8];
    match stream.read(&mut buf) {
        // End of stream: closed. Bytes (never sent to a pending connection) would mean open.
        Ok(n) => n > 0,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_at_their_quota_do_not_keep_another_host_out() {
    let server = common::start(1).await;
    let port = server.sfu.ice_tcp_port().expect("ICE-TCP is on");
    // Eight hosts, 64 silent connections each: what once held all 512 slots.
    let mut flood = Vec::new();
    for host in 1..=8u8 {
        for _ in 0..64 {
            flood.push(connect(Ipv4Addr::new(127, 0, 3, host), port).await);
        }
    }
    let mut hall = connect(Ipv4Addr::new(127, 0, 0, 2), port).await;
    assert!(
        held_for(&mut hall, Duration::from_secs(2)),
        "a hall's ICE-TCP connection was refused while eight hosts flooded"
    );
    drop(flood);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_makes_room_for_a_host_holding_nothing() {
    let server = common::start(1).await;
    let port = server.sfu.ice_tcp_port().expect("ICE-TCP is on");
    // 64 hosts at their quota of 8: every one of the 512 slots is taken.
    let mut flood = Vec::new();
    for host in 1..=64u8 {
        for _ in 0..8 {
            flood.push(connect(Ipv4Addr::new(127, 0, 4, host), port).await);
        }
    }
    let mut hall = connect(Ipv4Addr::new(127, 0, 0, 2), port).await;
    assert!(
        held_for(&mut hall, Duration::from_secs(2)),
        "a host holding no pending slot was refused by a full pool"
    );
    let displaced = common::eventually(Duration::from_secs(5), || {
        server.counter("hoinghi_ice_tcp_refused_total") >= 1.0
    })
    .await;
    assert!(
        displaced,
        "a flooding host's oldest connection gave its slot"
    );
    drop(flood);
}
