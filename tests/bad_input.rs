//! Hostile and broken input on `/ws`: every case gets a typed error with a stable code; the
//! connection stays usable where that is safe, and the server keeps serving everyone else.

mod common;

use std::time::Duration;

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &TestServer) -> Ws {
    tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect("connect")
        .0
}

async fn send(ws: &mut Ws, text: impl Into<String>) {
    ws.send(Message::Text(text.into().into()))
        .await
        .expect("send");
}

/// Next JSON message from the server, skipping events; `None` when the socket closed.
async fn recv(ws: &mut Ws) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("server answered in time");
        match frame {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("server sends JSON");
                if matches!(
                    v["type"].as_str(),
                    Some(
                        "participant_joined"
                            | "participant_left"
                            | "connection_state"
                            | "room_state"
                            | "active_speakers"
                    )
                ) {
                    continue;
                }
                return Some(v);
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

async fn expect_error(ws: &mut Ws, code: &str) -> Value {
    let v = recv(ws).await.expect("an error message before any close");
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["code"], code, "{v}");
    let msg = v["message"].as_str().unwrap_or_default();
    assert!(
        !msg.is_empty() && !msg.contains("panicked") && !msg.contains("src/"),
        "{v}"
    );
    v
}

async fn still_usable(ws: &mut Ws) {
    send(ws, r#"{"v":1,"type":"ping"}"#).await;
    assert_eq!(recv(ws).await.expect("pong")["type"], "pong");
}

async fn expect_closed(ws: &mut Ws) {
    assert!(recv(ws).await.is_none(), "connection should be closed");
}

async fn joined(server: &TestServer, token: &str) -> Ws {
    let mut ws = connect(server).await;
    send(
        &mut ws,
        json!({"v":1,"type":"join","token":token}).to_string(),
    )
    .await;
    let v = recv(&mut ws).await.expect("joined");
    assert_eq!(v["type"], "joined", "{v}");
    ws
}

#[tokio::test]
async fn malformed_messages_get_typed_errors_and_the_connection_survives() {
    let server = common::start(1).await;
    let mut ws = connect(&server).await;

    send(&mut ws, "{not json").await;
    expect_error(&mut ws, "bad_json").await;
    still_usable(&mut ws).await;

    send(&mut ws, r#"{"v":1,"type":"teleport"}"#).await;
    let e = expect_error(&mut ws, "unknown_type").await;
    assert_eq!(e["request"], "teleport");

    send(&mut ws, r#"{"v":1,"type":"ping","extra":42}"#).await;
    expect_error(&mut ws, "bad_message").await;

    send(&mut ws, r#"{"v":9,"type":"ping"}"#).await;
    expect_error(&mut ws, "unsupported_version").await;

    ws.send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    expect_error(&mut ws, "bad_json").await;

    still_usable(&mut ws).await;

    // Anything but join, ping or leave before joining is the fatal `not_joined`.
    send(&mut ws, r#"{"v":1,"type":"publish_offer","sdp":"v=0"}"#).await;
    let e = expect_error(&mut ws, "not_joined").await;
    assert_eq!(e["fatal"], true, "{e}");
    expect_closed(&mut ws).await;
}

#[tokio::test]
async fn oversized_frames_are_refused_and_closed() {
    let server = common::start(1).await;
    // Above the protocol limit but within what the WebSocket layer reads: typed error, close.
    let mut ws = connect(&server).await;
    let over = signaling::protocol::MAX_MESSAGE_BYTES + 6 * 1024;
    let big = json!({"v":1,"type":"publish_offer","sdp":"a".repeat(over)}).to_string();
    send(&mut ws, big).await;
    expect_error(&mut ws, "too_large").await;
    expect_closed(&mut ws).await;
    // Far above: the WebSocket layer refuses it; still an error code, then close.
    let mut ws = connect(&server).await;
    send(&mut ws, "x".repeat(1024 * 1024)).await;
    expect_error(&mut ws, "too_large").await;
    expect_closed(&mut ws).await;
}

#[tokio::test]
async fn bad_and_expired_tokens_are_refused_and_closed() {
    let server = common::start(1).await;
    let mut ws = connect(&server).await;
    send(&mut ws, r#"{"v":1,"type":"join","token":"forged"}"#).await;
    let e = expect_error(&mut ws, "bad_token").await;
    assert_eq!(e["fatal"], true);
    expect_closed(&mut ws).await;

    let mut ws = connect(&server).await;
    send(&mut ws, r#"{"v":1,"type":"join","token":"expired"}"#).await;
    expect_error(&mut ws, "token_expired").await;
    expect_closed(&mut ws).await;
}

#[tokio::test]
async fn bad_sdp_and_unknown_connections_after_join() {
    let server = common::start(1).await;
    let mut ws = joined(&server, "point-1").await;

    send(
        &mut ws,
        r#"{"v":1,"type":"publish_offer","sdp":"this is not SDP"}"#,
    )
    .await;
    expect_error(&mut ws, "bad_sdp").await;
    still_usable(&mut ws).await;

    let cand = json!({"v":1,"type":"candidate","pc":"subscribe",
        "candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}});
    send(&mut ws, cand.to_string()).await;
    expect_error(&mut ws, "no_such_connection").await;

    send(
        &mut ws,
        r#"{"v":1,"type":"subscribe_answer","revision":1,"sdp":"v=0"}"#,
    )
    .await;
    expect_error(&mut ws, "no_such_connection").await;

    send(&mut ws, r#"{"v":1,"type":"join","token":"point-1"}"#).await;
    expect_error(&mut ws, "already_joined").await;
    still_usable(&mut ws).await;

    // An observer may not publish.
    let mut obs = joined(&server, "observer-1").await;
    send(&mut obs, r#"{"v":1,"type":"publish_offer","sdp":"v=0"}"#).await;
    expect_error(&mut obs, "forbidden").await;

    // Everyone else is still served: a new participant joins normally.
    let mut other = joined(&server, "point-2").await;
    still_usable(&mut other).await;
    send(&mut ws, r#"{"v":1,"type":"leave"}"#).await;
    assert_eq!(recv(&mut ws).await.expect("bye")["type"], "bye");
}

#[tokio::test]
async fn floods_are_rate_limited_not_fatal() {
    let server = common::start(1).await;
    let mut ws = connect(&server).await;
    for _ in 0..80 {
        send(&mut ws, r#"{"v":1,"type":"ping"}"#).await;
    }
    let mut limited = 0;
    let mut pongs = 0;
    for _ in 0..80 {
        match recv(&mut ws).await.expect("answer")["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(limited > 0, "a burst of 80 exceeds the bucket");
    assert!(pongs >= 60, "the burst allowance is served");
}

/// The next message of type `kind`, skipping others.
async fn next_of_type(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("server answered in time");
        match frame {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("JSON");
                if v["type"] == kind {
                    return v;
                }
            }
            other => panic!("connection ended waiting for {kind}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn points_sending_chair_controls_or_floods_are_refused_and_nothing_changes() {
    let server = common::start(1).await;
    let mut chair = joined(&server, "chair").await;
    let mut a = joined(&server, "point-a").await;
    let _b = joined(&server, "point-b").await;

    for (msg, code) in [
        (
            json!({"v":1,"type":"grant_floor","point":"point-a"}),
            "forbidden",
        ),
        (
            json!({"v":1,"type":"set_mute","point":"point-b","muted":false}),
            "forbidden",
        ),
        (json!({"v":1,"type":"set_mute","muted":false}), "forbidden"),
        (json!({"v":1,"type":"start_roll_call"}), "forbidden"),
        (json!({"v":1,"type":"end_meeting"}), "forbidden"),
        (
            json!({"v":1,"type":"lower_hand","point":"point-b"}),
            "forbidden",
        ),
        (
            json!({"v":1,"type":"viewport","visible":["p1"]}),
            "forbidden",
        ),
        (json!({"v":1,"type":"answer_roll_call"}), "invalid_state"),
        (
            json!({"v":1,"type":"chat","to":"all","text":"x".repeat(2001)}),
            "bad_message",
        ),
        (
            json!({"v":1,"type":"chat","to":"all","text":"<img src=x onerror=alert(1)>"}),
            "bad_message",
        ),
    ] {
        send(&mut a, msg.to_string()).await;
        expect_error(&mut a, code).await;
    }
    // The chair naming a point that is not here.
    send(
        &mut chair,
        json!({"v":1,"type":"grant_floor","point":"nobody"}).to_string(),
    )
    .await;
    expect_error(&mut chair, "not_in_room").await;
    send(&mut chair, json!({"v":1,"type":"revoke_floor"}).to_string()).await;
    expect_error(&mut chair, "invalid_state").await;

    // Floods: hand raises and chat are rate-limited.
    send(&mut a, json!({"v":1,"type":"raise_hand"}).to_string()).await;
    let state = next_of_type(&mut a, "room_state").await;
    assert_eq!(state["hands"].as_array().map(Vec::len), Some(1));
    send(&mut a, json!({"v":1,"type":"raise_hand"}).to_string()).await;
    expect_error(&mut a, "rate_limited").await;
    let mut limited = false;
    for i in 0..8 {
        send(
            &mut a,
            json!({"v":1,"type":"chat","to":"all","text":format!("tin {i}")}).to_string(),
        )
        .await;
    }
    for _ in 0..8 {
        let v = recv(&mut a).await.expect("answer");
        if v["type"] == "error" {
            assert_eq!(v["code"], "rate_limited");
            limited = true;
        }
    }
    assert!(limited, "8 chat messages in a burst exceed 5 per 10 s");

    // Nothing changed by the refused actions: no floor, nobody unmuted, no roll call; the
    // chair can still run the meeting.
    send(
        &mut chair,
        json!({"v":1,"type":"start_roll_call"}).to_string(),
    )
    .await;
    // Earlier states (a's hand) may be queued first; the roll call's is the one to check.
    let mut state = next_of_type(&mut chair, "room_state").await;
    while state.get("roll_call").is_none() {
        state = next_of_type(&mut chair, "room_state").await;
    }
    assert!(state.get("floor").is_none(), "{state}");
    assert_eq!(state["unmuted"], json!([]));
    assert!(state["roll_call"]["started_at"].as_u64().is_some());
    assert_eq!(state["hands"][0]["point"], "point-a");
}

#[tokio::test]
async fn the_control_plane_can_disconnect_a_seat_or_end_the_meeting() {
    let server = common::start(1).await;
    let mut chair = joined(&server, "chair").await;
    let mut a = joined(&server, "point-a").await;
    let mut b = joined(&server, "point-b").await;

    assert!(server.signaling.kick("bench", "point-a", "link re-issued"));
    let bye = next_of_type(&mut a, "bye").await;
    assert_eq!(bye["reason"], "link re-issued");
    assert_eq!(bye["code"], "revoked");
    expect_closed(&mut a).await;
    assert!(
        !server.signaling.kick("bench", "point-a", "again"),
        "no longer connected"
    );
    still_usable(&mut b).await;

    assert_eq!(
        server.signaling.close_meeting("bench", "meeting cancelled"),
        2
    );
    for ws in [&mut chair, &mut b] {
        next_of_type(ws, "meeting_ended").await;
        let bye = next_of_type(ws, "bye").await;
        assert_eq!(bye["reason"], "meeting cancelled");
        assert_eq!(bye["code"], "meeting_ended");
        expect_closed(ws).await;
    }
}

#[tokio::test]
async fn late_joiners_get_the_chat_they_may_see() {
    let server = common::start(1).await;
    let mut chair = joined(&server, "chair").await;
    let mut a = joined(&server, "point-a").await;
    send(
        &mut chair,
        json!({"v":1,"type":"chat","to":"all","text":"Chào các điểm cầu"}).to_string(),
    )
    .await;
    send(
        &mut a,
        json!({"v":1,"type":"chat","to":"chair","text":"Chỉ gửi chủ trì"}).to_string(),
    )
    .await;
    next_of_type(&mut a, "chat").await;
    next_of_type(&mut a, "chat").await;

    let mut b = connect(&server).await;
    send(
        &mut b,
        json!({"v":1,"type":"join","token":"point-b"}).to_string(),
    )
    .await;
    next_of_type(&mut b, "joined").await;
    let first = next_of_type(&mut b, "chat").await;
    assert_eq!(first["text"], "Chào các điểm cầu");
    // The message to the chair is not replayed to another point.
    still_usable(&mut b).await;

    let mut chair2 = connect(&server).await;
    send(
        &mut chair2,
        json!({"v":1,"type":"join","token":"chair"}).to_string(),
    )
    .await;
    next_of_type(&mut chair2, "joined").await;
    next_of_type(&mut chair2, "chat").await;
    assert_eq!(
        next_of_type(&mut chair2, "chat").await["text"],
        "Chỉ gửi chủ trì"
    );
}

#[tokio::test]
async fn client_freeze_reports_feed_the_metrics_and_are_bounded() {
    let server = common::start(1).await;
    let mut a = joined(&server, "point-a").await;
    send(
        &mut a,
        json!({"v":1,"type":"client_stats","freezes":3,"freeze_ms":1500}).to_string(),
    )
    .await;
    send(
        &mut a,
        json!({"v":1,"type":"client_stats","freezes":1,"freeze_ms":99999999}).to_string(),
    )
    .await;
    expect_error(&mut a, "bad_message").await;
    still_usable(&mut a).await;
    assert_eq!(server.counter("hoinghi_client_freezes_total"), 3.0);
    assert_eq!(server.counter("hoinghi_client_freeze_seconds_total"), 1.5);
}

#[tokio::test]
async fn websockets_beyond_the_cap_are_refused_and_slots_come_back() {
    let url = serve_ws(fixed_tokens_signaling().with_max_connections(2)).await;

    // Two joined sessions fill the server (an unjoined socket would give its slot away).
    let (mut a, _) = tokio_tungstenite::connect_async(&url).await.expect("first");
    send(&mut a, r#"{"v":1,"type":"join","token":"point-a"}"#).await;
    next_of_type(&mut a, "joined").await;
    let (mut b, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("second");
    send(&mut b, r#"{"v":1,"type":"join","token":"point-b"}"#).await;
    next_of_type(&mut b, "joined").await;
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("a third socket must be refused with 503, got {other:?}"),
    }
    // Closing one frees its slot.
    a.close(None).await.unwrap();
    while a.next().await.is_some() {}
    let mut reconnected = false;
    for _ in 0..50 {
        if tokio_tungstenite::connect_async(&url).await.is_ok() {
            reconnected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reconnected, "the slot of a closed socket is given back");
}

#[tokio::test]
async fn a_socket_that_never_joins_is_told_and_closed() {
    // The production limits shortened: join within 400 ms, checked every 100 ms.
    let url = serve_ws(fixed_tokens_signaling().with_timeouts(signaling::Timeouts {
        idle: Duration::from_secs(60),
        ping: Duration::from_millis(100),
        join: Duration::from_millis(400),
    }))
    .await;

    let (mut silent, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let opened = std::time::Instant::now();
    let e = expect_error(&mut silent, "not_joined").await;
    // Not at once (the server's clock started a moment before ours: a margin of one tick).
    assert!(
        opened.elapsed() >= Duration::from_millis(300),
        "told long before its deadline: {e}"
    );
    expect_closed(&mut silent).await;

    // One that joins in time stays.
    let (mut prompt, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    send(
        &mut prompt,
        json!({"v": 1, "type": "join", "token": "point-1"}).to_string(),
    )
    .await;
    let joined = next_of_type(&mut prompt, "joined").await;
    assert_eq!(joined["role"], "point");
    tokio::time::sleep(Duration::from_millis(800)).await;
    still_usable(&mut prompt).await;
}

/// A signaling service with the load generator's fixed tokens over a one-worker media plane on
/// loopback, for tests that configure the service themselves.
fn fixed_tokens_signaling() -> signaling::Signaling {
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
    signaling::Signaling::new(
        sfu,
        std::sync::Arc::new(loadtest::inprocess::FixedTokens),
        &registry,
    )
}

/// Serves the `/ws` of `signaling` on a free loopback port; its URL.
async fn serve_ws(signaling: signaling::Signaling) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, signaling.router()).into_future());
    url
}
