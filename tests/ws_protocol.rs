//! What a client written from `docs/protocol.md` relies on (issue 9 item 6, issue 10 item 14):
//! every `bye` arrives before the close, the close code matches the `bye`, `request_id` is
//! echoed in errors, and the fatal errors close.

mod common;

use std::time::Duration;

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One thing the server sent: a message, or the end of the connection (with its close frame).
#[derive(Debug)]
enum Got {
    Msg(Value),
    Closed(Option<CloseFrame>),
}

async fn next(ws: &mut Ws) -> Got {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Err(_) => panic!("nothing from the server in 20 s"),
            Ok(Some(Ok(Message::Text(t)))) => return Got::Msg(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Close(frame)))) => return Got::Closed(frame),
            Ok(None | Some(Err(_))) => return Got::Closed(None),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .expect("send");
}

async fn connect(server: &TestServer) -> Ws {
    tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect("connect")
        .0
}

async fn join(server: &TestServer, token: &str) -> Ws {
    let mut ws = connect(server).await;
    send(&mut ws, json!({"v": 1, "type": "join", "token": token})).await;
    loop {
        match next(&mut ws).await {
            Got::Msg(v) if v["type"] == "joined" => return ws,
            Got::Msg(v) if v["type"] == "error" => panic!("join refused: {v}"),
            Got::Msg(_) => continue,
            Got::Closed(c) => panic!("closed while joining: {c:?}"),
        }
    }
}

/// Reads until the connection ends; the `bye` seen (if any) and the close frame.
async fn until_closed(ws: &mut Ws) -> (Option<Value>, Option<CloseFrame>) {
    let mut bye = None;
    loop {
        match next(ws).await {
            Got::Msg(v) if v["type"] == "bye" => {
                assert!(bye.is_none(), "a second bye: {v}");
                bye = Some(v);
            }
            Got::Msg(v) => assert!(bye.is_none(), "{v} after bye"),
            Got::Closed(frame) => return (bye, frame),
        }
    }
}

fn close_code(frame: &Option<CloseFrame>) -> Option<(u16, String)> {
    frame
        .as_ref()
        .map(|f| (u16::from(f.code), f.reason.to_string()))
}

#[tokio::test]
async fn every_replaced_connection_gets_bye_replaced_then_a_normal_close() {
    let server = common::start(1).await;
    let _chair = join(&server, "chair").await;
    let mut old = join(&server, "point-hall").await;
    for round in 0..50 {
        let new = join(&server, "point-hall").await;
        let (bye, close) = until_closed(&mut old).await;
        let bye =
            bye.unwrap_or_else(|| panic!("replacement {round}: closed {close:?} without bye"));
        assert_eq!(bye["code"], "replaced", "replacement {round}: {bye}");
        assert_eq!(
            close_code(&close),
            Some((1000, "replaced".to_owned())),
            "replacement {round}"
        );
        old = new;
    }
}

#[tokio::test]
async fn the_close_after_a_bye_names_that_bye() {
    let server = common::start(1).await;
    let _chair = join(&server, "chair").await;
    let mut revoked = join(&server, "point-revoked").await;
    assert!(
        server
            .signaling
            .kick("bench", "point-revoked", "link re-issued")
    );
    let (bye, close) = until_closed(&mut revoked).await;
    assert_eq!(bye.expect("bye")["code"], "revoked");
    assert_eq!(close_code(&close), Some((1000, "revoked".to_owned())));

    let mut leaving = join(&server, "point-leaving").await;
    send(&mut leaving, json!({"v": 1, "type": "leave"})).await;
    let (bye, close) = until_closed(&mut leaving).await;
    assert_eq!(bye.expect("bye")["code"], "left");
    assert_eq!(close_code(&close), Some((1000, "left".to_owned())));

    let mut ended = join(&server, "point-ended").await;
    server.signaling.close_meeting("bench", "cancelled");
    let (bye, close) = until_closed(&mut ended).await;
    assert_eq!(bye.expect("bye")["code"], "meeting_ended");
    assert_eq!(close_code(&close), Some((1000, "meeting_ended".to_owned())));
}

#[tokio::test]
async fn request_ids_are_echoed_in_the_errors_that_answer_them() {
    let server = common::start(1).await;
    let mut point = join(&server, "point-ids").await;
    send(
        &mut point,
        json!({"v": 1, "type": "grant_floor", "point": "x", "request_id": "g-1"}),
    )
    .await;
    let e = loop {
        if let Got::Msg(v) = next(&mut point).await
            && v["type"] == "error"
        {
            break v;
        }
    };
    assert_eq!(e["code"], "forbidden", "{e}");
    assert_eq!(e["request_id"], "g-1", "{e}");
    send(
        &mut point,
        json!({"v": 1, "type": "ping", "oops": 1, "request_id": 99}),
    )
    .await;
    let e = loop {
        if let Got::Msg(v) = next(&mut point).await
            && v["type"] == "error"
        {
            break v;
        }
    };
    assert_eq!(
        (e["code"].clone(), e["request_id"].clone()),
        (json!("bad_message"), json!(99))
    );
    // A successful message is answered as usual.
    send(
        &mut point,
        json!({"v": 1, "type": "ping", "request_id": 100}),
    )
    .await;
    loop {
        if let Got::Msg(v) = next(&mut point).await
            && v["type"] == "pong"
        {
            break;
        }
    }
}

#[tokio::test]
async fn a_join_without_a_usable_token_and_a_message_before_join_are_fatal() {
    let server = common::start(1).await;
    for join in [
        json!({"v": 1, "type": "join"}),
        json!({"v": 1, "type": "join", "token": ""}),
        json!({"v": 1, "type": "join", "token": "t".repeat(2049)}),
        json!({"v": 1, "type": "join", "token": 7, "request_id": "j"}),
    ] {
        let mut ws = connect(&server).await;
        send(&mut ws, join.clone()).await;
        let Got::Msg(e) = next(&mut ws).await else {
            panic!("closed without an error for {join:.60}")
        };
        assert_eq!(
            (e["code"].clone(), e["fatal"].clone()),
            (json!("bad_token"), json!(true))
        );
        let (_, close) = until_closed(&mut ws).await;
        assert_eq!(close_code(&close).map(|c| c.0), Some(1008));
    }
    let mut early = connect(&server).await;
    send(&mut early, json!({"v": 1, "type": "raise_hand"})).await;
    let Got::Msg(e) = next(&mut early).await else {
        panic!("closed without an error")
    };
    assert_eq!(
        (e["code"].clone(), e["fatal"].clone()),
        (json!("not_joined"), json!(true))
    );
    let (_, close) = until_closed(&mut early).await;
    assert_eq!(close_code(&close), Some((1008, "not joined".to_owned())));
}

/// Issue 10 item 14: a chair joining a meeting where points already publish gets every routed
/// track in its first `subscribe_offer`, not one track per offer-answer round. Five points
/// publish a camera and a microphone first; the chair (a client that reads the offer and does
/// not answer) must find all five cameras, each once, in the first offer's `tracks`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_subscribe_offer_carries_every_track_ready_at_join() {
    let server = common::start(1).await;
    let mut points = Vec::new();
    for i in 0..5 {
        let token = format!("point-{i}");
        points.push(
            loadtest::point::Point::join(common::small_point(&server, &token, true))
                .await
                .expect("point joins"),
        );
    }
    let published = common::eventually(Duration::from_secs(30), || {
        server.gauge("hoinghi_tracks") >= 10.0
    })
    .await;
    assert!(published, "the points' tracks never arrived");
    let mut chair = join(&server, "chair").await;
    let offer = loop {
        match next(&mut chair).await {
            Got::Msg(v) if v["type"] == "subscribe_offer" => break v,
            Got::Msg(_) => continue,
            Got::Closed(c) => panic!("closed before any offer: {c:?}"),
        }
    };
    assert_eq!(offer["revision"], 1, "{offer}");
    let cameras: Vec<&str> = offer["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .filter(|t| t["kind"] == "video")
        .filter_map(|t| t["participant"].as_str())
        .collect();
    let mut unique = cameras.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        (cameras.len(), unique.len()),
        (5, 5),
        "the first offer's cameras: {cameras:?}"
    );
    drop(points);
}

/// One subscribe offer per answer, also across a restart: a chair that does not answer its
/// first offer, while another camera is routed to it meanwhile, gets its subscribe connection
/// restarted after the answer timeout; the restart offer must be the only offer until it is
/// answered. Before the fix the next offer followed 50-80 ms later (the chair was queued twice),
/// so the client's answer to the restart offer was stale (found by `tests/browser/chairwalk.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_subscribe_connection_gets_one_offer_until_it_answers() {
    let server = common::start(1).await;
    let first = loadtest::point::Point::join(common::small_point(&server, "point-a", true))
        .await
        .expect("point joins");
    let published = common::eventually(Duration::from_secs(30), || {
        server.gauge("hoinghi_tracks") >= 2.0
    })
    .await;
    assert!(published, "point-a's tracks never arrived");
    let mut chair = join(&server, "chair").await;
    let offer = |v: &Value| v["type"] == "subscribe_offer";
    loop {
        match next(&mut chair).await {
            Got::Msg(v) if offer(&v) => break,
            Got::Msg(_) => continue,
            Got::Closed(c) => panic!("closed before any offer: {c:?}"),
        }
    }
    // Not answered; meanwhile a second camera is routed to the chair.
    let second = loadtest::point::Point::join(common::small_point(&server, "point-b", true))
        .await
        .expect("point joins");
    // The answer timeout restarts the connection: the restart offer, then nothing more.
    let restart = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            match next(&mut chair).await {
                Got::Msg(v) if offer(&v) && v["restart"] == true => return v,
                Got::Msg(_) => continue,
                Got::Closed(c) => panic!("closed: {c:?}"),
            }
        }
    })
    .await
    .expect("a restart offer after the answer timeout");
    let quiet = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match next(&mut chair).await {
                Got::Msg(v) if offer(&v) => return v,
                Got::Msg(_) => continue,
                Got::Closed(c) => panic!("closed: {c:?}"),
            }
        }
    })
    .await;
    assert!(
        quiet.is_err(),
        "a second offer before the restart offer {} was answered: {}",
        restart["revision"],
        quiet.map(|v| v["revision"].clone()).unwrap_or_default()
    );
    drop((first, second));
}
