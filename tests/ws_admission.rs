//! WebSocket admission under a flood (issue 9, item 1): one address opening upgrades as fast as
//! it can must not lock anyone out; sockets that never join are cut at the join deadline.
//!
//! The service is served with connect info, as the binary serves it, on 127.0.0.1; clients bind
//! their own source address inside 127.0.0.0/8 so that "another address" is real.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use signaling::{AdmissionLimits, Signaling, Timeouts};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message};

type Ws = WebSocketStream<TcpStream>;

/// The fixed-token service with per-address limits applied to loopback too.
fn service(limits: AdmissionLimits, timeouts: Timeouts) -> (Signaling, prometheus::Registry) {
    let registry = prometheus::Registry::new();
    let sfu = sfu::Sfu::start(
        sfu::SfuConfig {
            public_ip: [127, 0, 0, 1].into(),
            bind_ip: [127, 0, 0, 1].into(),
            base_port: 0,
            workers: 1,
            ice_tcp_port: None,
        },
        &registry,
    )
    .unwrap();
    let signaling = Signaling::new(
        sfu,
        std::sync::Arc::new(loadtest::inprocess::FixedTokens),
        &registry,
    )
    .with_admission(AdmissionLimits {
        exempt_loopback: false,
        ..limits
    })
    .with_timeouts(timeouts);
    (signaling, registry)
}

/// Serves `/ws` with the client's address known; the server's address.
async fn serve(signaling: &Signaling) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = signaling
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(axum::serve(listener, app).into_future());
    addr
}

/// A WebSocket to `server` from source address `from`: the socket, or the HTTP status that
/// refused it and its `Retry-After`.
async fn open(server: SocketAddr, from: Ipv4Addr) -> Result<Ws, (u16, Option<u64>)> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    let stream = socket.connect(server).await.unwrap();
    match tokio_tungstenite::client_async(format!("ws://{server}/ws"), stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(resp)) => {
            let retry = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            Err((resp.status().as_u16(), retry))
        }
        Err(e) => panic!("upgrade failed without an HTTP answer: {e}"),
    }
}

/// Next JSON message, `None` once closed (with the close code, if a close frame came).
async fn recv(ws: &mut Ws) -> Result<Value, Option<u16>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Err(_) => panic!("nothing from the server in 20 s"),
            Ok(Some(Ok(Message::Text(t)))) => return Ok(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Close(frame)))) => return Err(frame.map(|f| f.code.into())),
            Ok(None | Some(Err(_))) => return Err(None),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Sends `join` and waits for `joined` (skipping room events).
async fn join(ws: &mut Ws, token: &str) -> Value {
    let join = json!({"v": 1, "type": "join", "token": token}).to_string();
    ws.send(Message::Text(join.into())).await.unwrap();
    loop {
        let v = recv(ws).await.expect("joined before any close");
        match v["type"].as_str() {
            Some("joined") => return v,
            Some("error") => panic!("join refused: {v}"),
            _ => continue,
        }
    }
}

fn counter(registry: &prometheus::Registry, name: &str, label: Option<&str>) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| label.is_none_or(|l| m.get_label().iter().any(|p| p.value() == l)))
        .map(|m| m.get_counter().value())
        .sum()
}

const FLOODER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const NEIGHBOUR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

#[tokio::test]
async fn one_address_flooding_upgrades_locks_nobody_out() {
    // A server of 256 slots (the production cap is 4,096; the shape is the same) and 4,200
    // upgrades from one address, every accepted socket held open and silent.
    let (signaling, registry) = service(
        AdmissionLimits::with_max_open(256),
        Timeouts {
            join: Duration::from_secs(30),
            ..Timeouts::default()
        },
    );
    let server = serve(&signaling).await;
    let mut held = Vec::new();
    let (mut accepted, mut rate_limited, mut full) = (0, 0, 0);
    for _ in 0..4_200 {
        match open(server, FLOODER).await {
            Ok(ws) => {
                accepted += 1;
                held.push(ws);
            }
            Err((429, retry)) => {
                rate_limited += 1;
                assert!(
                    retry.is_some_and(|s| (1..=60).contains(&s)),
                    "429 says when to retry"
                );
            }
            Err((503, _)) => full += 1,
            Err((status, _)) => panic!("unexpected HTTP {status}"),
        }
    }
    assert!(
        accepted < 256,
        "one address got {accepted} sockets of 256 ({rate_limited} rate-limited, {full} full)"
    );
    assert!(
        rate_limited > 3_000,
        "{rate_limited} upgrades refused for rate"
    );
    assert!(counter(&registry, "hoinghi_ws_refused_total", Some("rate")) > 3_000.0);

    // A chair from another address gets in at once.
    let mut chair = open(server, NEIGHBOUR)
        .await
        .expect("another address is not refused");
    assert_eq!(join(&mut chair, "chair").await["role"], "chair");

    // A point behind the flooding address gets in too, honouring Retry-After.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut point = loop {
        match open(server, FLOODER).await {
            Ok(ws) => break ws,
            Err((429, Some(secs))) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_secs(secs)).await
            }
            Err(other) => panic!("the flooding address's real point refused: {other:?}"),
        }
    };
    assert_eq!(join(&mut point, "point-1").await["role"], "point");
    drop(held);
}

#[tokio::test]
async fn sockets_that_never_join_hold_a_bounded_share_of_the_server() {
    // Forty addresses each hold their 8 unjoined sockets: 320 silent sockets against 64 slots
    // (16 for unjoined sockets). Joined sessions keep their places and new joins still succeed.
    let (signaling, _registry) = service(
        AdmissionLimits::with_max_open(64),
        Timeouts {
            join: Duration::from_secs(30),
            ..Timeouts::default()
        },
    );
    let server = serve(&signaling).await;
    let mut chair = open(server, NEIGHBOUR).await.unwrap();
    join(&mut chair, "chair").await;
    let mut held = Vec::new();
    for host in 10..50u8 {
        for _ in 0..8 {
            match open(server, Ipv4Addr::new(127, 0, 1, host)).await {
                Ok(ws) => held.push(ws),
                Err(other) => panic!("an unjoined socket is admitted (evicting): {other:?}"),
            }
        }
    }
    for i in 0..20u8 {
        let mut p = open(server, Ipv4Addr::new(127, 0, 2, i))
            .await
            .expect("a joining point is admitted");
        join(&mut p, &format!("point-{i}")).await;
        held.push(p);
    }
    // The chair never lost its seat.
    chair
        .send(Message::Text(r#"{"v":1,"type":"ping"}"#.into()))
        .await
        .unwrap();
    loop {
        let v = recv(&mut chair)
            .await
            .expect("the chair is still connected");
        if v["type"] == "pong" {
            break;
        }
    }
}

#[tokio::test]
async fn an_unjoined_socket_is_closed_at_its_join_deadline_not_at_the_next_ping() {
    // Pings every 30 s; the join deadline is 1 s.
    let (signaling, _registry) = service(
        AdmissionLimits::default(),
        Timeouts {
            idle: Duration::from_secs(60),
            ping: Duration::from_secs(30),
            join: Duration::from_secs(1),
        },
    );
    let server = serve(&signaling).await;
    let mut silent = open(server, NEIGHBOUR).await.unwrap();
    let opened = Instant::now();
    let e = recv(&mut silent).await.expect("told before the close");
    assert_eq!(e["code"], "not_joined", "{e}");
    assert_eq!(e["fatal"], true, "{e}");
    let elapsed = opened.elapsed();
    assert!(
        elapsed >= Duration::from_millis(800) && elapsed < Duration::from_secs(10),
        "closed {elapsed:?} after opening, deadline 1 s"
    );
    assert_eq!(recv(&mut silent).await.err(), Some(Some(1008)));
}
