//! What the cascade's tests share: two (or more) in-process servers, an upstream chair, a
//! province chair and a commune, the relay between them, and waits on what reaches whom.

#![allow(dead_code)]

use std::time::Duration;

use crate::common::{self, TestServer, eventually, small_point};
use loadtest::layers::Ladder;
use loadtest::point::{Point, PointConfig};
use relay::{Relay, RelayConfig, RelayLink, RelayState};

pub const WAIT: Duration = Duration::from_secs(60);

/// The participant id of the linked meeting's upstream seat (the program), when connected.
pub fn upstream_seat(down: &TestServer) -> Option<String> {
    seat_of(down, "upstream-trung-uong")
}

/// The participant id of the seat `point` in the in-process meeting, when connected.
pub fn seat_of(server: &TestServer, point: &str) -> Option<String> {
    server
        .signaling
        .live("bench")
        .into_iter()
        .find(|p| p.point == point)
        .map(|p| p.id)
}

/// Packets of `kind` that `at` received from the participant `from`.
pub fn packets_from_id(at: &Point, from: &str, kind: &str) -> u64 {
    at.snapshot()
        .streams
        .values()
        .filter(|st| st.stream_id == from && st.kind.as_deref() == Some(kind))
        .map(|st| st.packets)
        .sum()
}

pub fn with_ladder(
    server: &TestServer,
    token: &str,
    publish: bool,
    ladder: &Ladder,
) -> PointConfig {
    PointConfig {
        video_fps: 20,
        video_frame_bytes: 600,
        publish_layers: publish.then(|| ladder.clone()),
        receive_ladder: ladder.clone(),
        ..small_point(server, token, publish)
    }
}

pub fn relay_to(up: &TestServer, down: &TestServer) -> Relay {
    relay_as(up, down, "relay-tinh")
}

/// A relay taking the upstream's relay seat `seat`.
pub fn relay_as(up: &TestServer, down: &TestServer, seat: &str) -> Relay {
    relay_at(&up.http.to_string(), down, seat)
}

/// A relay taking relay seat `seat` of the upstream at `upstream` (host:port).
fn relay_at(upstream: &str, down: &TestServer, seat: &str) -> Relay {
    let link = RelayLink::parse(&format!("http://{upstream}/join?t={seat}")).expect("link");
    let cfg = RelayConfig {
        floor_token: Some("upstream-floor".into()),
        ..RelayConfig::new(
            link,
            "bench".into(),
            "upstream-trung-uong".into(),
            [127, 0, 0, 1].into(),
        )
    };
    Relay::spawn(cfg, down.signaling.clone())
}

/// Waits until `at` has received more than `n` more packets of video and of audio from `from`
/// than it had when called.
pub async fn receives_more(at: &Point, from: &str, n: u64) -> bool {
    let (v0, a0) = (
        packets_from_id(at, from, "video"),
        packets_from_id(at, from, "audio"),
    );
    eventually(WAIT, || {
        packets_from_id(at, from, "video") > v0 + n && packets_from_id(at, from, "audio") > a0 + n
    })
    .await
}

/// Waits until the relay relays and `commune` receives the upstream seat's camera and
/// microphone; returns the seat's participant id.
pub async fn program_reaches(relay: &Relay, down: &TestServer, commune: &Point) -> String {
    let relaying = eventually(WAIT, || {
        relay.state() == RelayState::Relaying && upstream_seat(down).is_some()
    })
    .await;
    assert!(relaying, "the relay does not relay: {:?}", relay.state());
    let seat = upstream_seat(down).unwrap_or_default();
    assert!(
        receives_more(commune, &seat, 20).await,
        "the commune does not receive the upstream chair's camera and microphone: {:?}",
        commune.snapshot().errors
    );
    seat
}

/// One upstream server with its chair (a simulcast camera), one downstream server with its
/// local chair and a commune.
pub struct Cascade {
    pub ladder: Ladder,
    pub up: TestServer,
    pub down: TestServer,
    pub national: Point,
    pub province: Point,
    pub commune: Point,
}

/// The ladder of the national chair's camera.
pub fn ladder() -> Ladder {
    Ladder::simulcast(&[60, 150, 300]).expect("valid ladder")
}

/// The national chair on `up`: a simulcast camera of `ladder`, and a microphone.
pub async fn national_chair(up: &TestServer, ladder: &Ladder) -> Point {
    Point::join(with_ladder(up, "chair", true, ladder))
        .await
        .expect("the upstream chair joins")
}

/// A province on `down`: its chair (a small camera) and a commune receiving `ladder`.
pub async fn province(down: &TestServer, ladder: &Ladder) -> (Point, Point) {
    let chair = Point::join(small_point(down, "chair", true))
        .await
        .expect("the local chair joins");
    let commune = Point::join(with_ladder(down, "point-xa", false, ladder))
        .await
        .expect("a commune joins");
    (chair, commune)
}

impl Cascade {
    pub async fn start() -> Cascade {
        let ladder = ladder();
        let up = common::start(1).await;
        let down = common::start(1).await;
        let national = national_chair(&up, &ladder).await;
        let (province, commune) = province(&down, &ladder).await;
        Cascade {
            ladder,
            up,
            down,
            national,
            province,
            commune,
        }
    }
}

/// A TCP proxy between the relay and the upstream's `/ws` (the WebRTC media does not pass
/// through it): it can sever every connection it carries, as a line that drops does, while
/// the media path stays up.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    pub async fn start(target: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let cut = tokio::sync::watch::channel(0u64).0;
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (cut_rx, count) = (cut.subscribe(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut cut = cut_rx.clone();
                cut.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    // Either side closing, or a cut, drops both sockets.
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            cut,
            accepted,
        }
    }

    /// Severs every connection open now (new ones are carried again).
    pub fn sever(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A relay taking the upstream's relay seat `seat` through `proxy`.
pub fn relay_via(proxy: &Proxy, down: &TestServer, seat: &str) -> Relay {
    relay_at(&proxy.addr.to_string(), down, seat)
}

/// Client messages of type `kind` the server `at` accepted so far.
pub fn messages(at: &TestServer, kind: &str) -> f64 {
    at.registry
        .gather()
        .iter()
        .filter(|f| f.name() == "hoinghi_signaling_messages_total")
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == "type" && l.value() == kind)
        })
        .map(|m| m.get_counter().value())
        .sum()
}
