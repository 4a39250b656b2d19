//! A point tells the server what it publishes (`publish_state`), and the chair learns it: as
//! `participant_media` when it changes, and in the roster's `media` when the chair joins later
//! (issue 10, item 9: "không có camera" instead of "Đang kết nối" forever). Real server, real
//! `/ws`, raw JSON as a third-party client would send it.

mod common;

use std::time::Duration;

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .expect("send");
}

/// The next message of `type` `kind`, skipping others; panics after 20 s or on a close.
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    // One deadline for the whole wait: the server's pings must not keep extending it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("no {kind} from the server in 20 s"),
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == kind {
                    return v;
                }
            }
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("closed while waiting for {kind}: {other:?}"),
        }
    }
}

/// Joins with `token`; the socket and its `joined`.
async fn join(server: &TestServer, token: &str) -> (Ws, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect("connect");
    send(&mut ws, json!({"v": 1, "type": "join", "token": token})).await;
    let joined = next_of(&mut ws, "joined").await;
    (ws, joined)
}

fn roster_entry<'a>(joined: &'a Value, point: &str) -> &'a Value {
    joined["roster"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["point"] == point)
        .unwrap_or_else(|| panic!("{point} not in the roster: {joined}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chair_learns_that_a_point_has_no_camera() {
    let server = common::start(1).await;
    let (mut chair, _) = join(&server, "chair").await;
    let (mut point, joined) = join(&server, "point-nocam").await;
    let me = joined["participant"].as_str().unwrap().to_owned();
    assert!(
        roster_entry(&joined, "point-nocam").get("media").is_none(),
        "nothing declared yet: no media in the roster"
    );

    send(
        &mut point,
        json!({"v": 1, "type": "publish_state", "audio": true, "video": false}),
    )
    .await;
    let told = next_of(&mut chair, "participant_media").await;
    assert_eq!(
        told,
        json!({"v": 1, "type": "participant_media", "participant": me, "media": {"audio": true, "video": false}})
    );

    // A chair that joins later (a reload: the new socket takes the seat over) reads it in the
    // roster.
    let (mut chair, joined2) = join(&server, "chair").await;
    assert_eq!(
        roster_entry(&joined2, "point-nocam")["media"],
        json!({"audio": true, "video": false})
    );

    // Nothing at all: no device, no publish_offer; the chair still knows.
    send(
        &mut point,
        json!({"v": 1, "type": "publish_state", "audio": false, "video": false, "request_id": 3}),
    )
    .await;
    let told = next_of(&mut chair, "participant_media").await;
    assert_eq!(told["media"], json!({"audio": false, "video": false}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_state_is_typed_bounded_and_refused_to_observers() {
    let server = common::start(1).await;
    let (mut point, _) = join(&server, "point-a").await;

    // Typed: a string for a boolean, a missing or an unknown field are refused, not guessed.
    for bad in [
        json!({"v": 1, "type": "publish_state", "audio": "no", "video": false, "request_id": 1}),
        json!({"v": 1, "type": "publish_state", "audio": true, "request_id": 1}),
        json!({"v": 1, "type": "publish_state", "audio": true, "video": true, "screen": true, "request_id": 1}),
    ] {
        send(&mut point, bad.clone()).await;
        let e = next_of(&mut point, "error").await;
        assert_eq!(
            (&e["code"], &e["fatal"], &e["request_id"]),
            (&json!("bad_message"), &json!(false), &json!(1)),
            "{bad} → {e}"
        );
    }

    // Bounded: each change goes to every member, so a seat gets a few per window.
    let mut refused = None;
    for i in 0..12 {
        send(
            &mut point,
            json!({"v": 1, "type": "publish_state", "audio": true, "video": i % 2 == 0, "request_id": i}),
        )
        .await;
        send(&mut point, json!({"v": 1, "type": "ping"})).await;
        let v = loop {
            let v = next_of_any(&mut point).await;
            if v["type"] == "pong" || v["type"] == "error" {
                break v;
            }
        };
        if v["type"] == "error" {
            refused = Some(v);
            break;
        }
    }
    let refused = refused.expect("12 changes in a row were all accepted");
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert_eq!(refused["request"], "publish_state", "{refused}");

    // Observers publish nothing.
    let (mut observer, _) = join(&server, "observer-x").await;
    send(
        &mut observer,
        json!({"v": 1, "type": "publish_state", "audio": false, "video": false}),
    )
    .await;
    let e = next_of(&mut observer, "error").await;
    assert_eq!(e["code"], "forbidden", "{e}");
}

async fn next_of_any(ws: &mut Ws) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("nothing from the server in 20 s"),
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).unwrap(),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("closed: {other:?}"),
        }
    }
}
