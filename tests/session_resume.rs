//! A blip is not a new participant: a point whose socket is lost comes back with its resume
//! token within the grace period and keeps its participant id and the floor, and the others see
//! no `participant_left` / `participant_joined`. Real `/ws` on loopback, real media plane, a
//! short grace; the token is refused for another point, another meeting, and after the grace.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use signaling::auth::{AuthError, Authorizer, Grant};
use signaling::protocol::Role;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const GRACE: Duration = Duration::from_millis(1500);
const WAIT: Duration = Duration::from_secs(30);

/// Tokens `<meeting>/<point>`; the point `chair` is the chair.
struct Tokens;

impl Authorizer for Tokens {
    fn authorize(&self, token: &str) -> Result<Grant, AuthError> {
        let (meeting, point) = token
            .split_once('/')
            .ok_or_else(|| AuthError::Invalid("bad token".into()))?;
        Ok(Grant {
            meeting_id: meeting.into(),
            meeting_title: meeting.into(),
            point: point.into(),
            name: point.into(),
            role: if point == "chair" {
                Role::Chair
            } else {
                Role::Point
            },
            capacity: 0,
        })
    }
}

async fn serve() -> String {
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
    let signaling =
        signaling::Signaling::new(sfu, Arc::new(Tokens), &registry).with_resume_grace(GRACE);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, signaling.router()).into_future());
    url
}

async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")?
        {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Reads until a message of type `kind`; every message read is pushed to `seen`.
async fn until(ws: &mut Ws, kind: &str, seen: &mut Vec<Value>) -> Value {
    loop {
        let m = next(ws)
            .await
            .unwrap_or_else(|| panic!("closed before {kind}"));
        seen.push(m.clone());
        if m["type"] == kind {
            return m;
        }
    }
}

/// Joins with `token` (and `resume`); the `joined` message.
async fn join(url: &str, token: &str, resume: Option<&str>) -> (Ws, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut msg = json!({"v": 1, "type": "join", "token": token});
    if let Some(r) = resume {
        msg["resume"] = json!(r);
    }
    ws.send(Message::text(msg.to_string())).await.unwrap();
    let joined = until(&mut ws, "joined", &mut Vec::new()).await;
    (ws, joined)
}

fn churn(seen: &[Value]) -> Vec<&Value> {
    seen.iter()
        .filter(|m| m["type"] == "participant_left" || m["type"] == "participant_joined")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_back_within_the_grace_keeps_its_seat_and_floor_and_nobody_sees_it_leave() {
    let url = serve().await;
    let (mut chair, _) = join(&url, "m1/chair", None).await;
    let (a, joined) = join(&url, "m1/a", None).await;
    let id = joined["participant"].as_str().unwrap().to_owned();
    let resume = joined["resume_token"]
        .as_str()
        .expect("a resume token")
        .to_owned();
    let mut seen = Vec::new();
    until(&mut chair, "participant_joined", &mut seen).await;
    chair
        .send(Message::text(
            json!({"v": 1, "type": "grant_floor", "point": "a"}).to_string(),
        ))
        .await
        .unwrap();
    until(&mut chair, "room_state", &mut seen).await;

    // The line drops: the socket is gone without a goodbye.
    drop(a);
    let (mut a, joined) = join(&url, "m1/a", Some(&resume)).await;
    assert_eq!(joined["participant"], id.as_str(), "the same participant");
    assert_eq!(joined["resumed"], true);
    let fresh = joined["resume_token"].as_str().unwrap();
    assert_ne!(fresh, resume, "a new token with every joined");
    let state = until(&mut a, "room_state", &mut Vec::new()).await;
    assert_eq!(state["floor"]["point"], "a");
    assert_eq!(state["floor"]["participant"], id.as_str(), "the floor kept");

    // Past the grace, the seat is still there: the chair was told nothing about it.
    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    let mut seen = Vec::new();
    chair
        .send(Message::text(
            json!({"v": 1, "type": "set_discussion", "on": true}).to_string(),
        ))
        .await
        .unwrap();
    let state = until(&mut chair, "room_state", &mut seen).await;
    assert_eq!(state["floor"]["participant"], id.as_str());
    assert!(churn(&seen).is_empty(), "roster churn: {:?}", churn(&seen));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_the_server_still_holds_is_taken_over_by_the_resume() {
    let url = serve().await;
    let (mut chair, _) = join(&url, "m1/chair", None).await;
    let (mut old, joined) = join(&url, "m1/a", None).await;
    until(&mut chair, "participant_joined", &mut Vec::new()).await;
    let id = joined["participant"].as_str().unwrap().to_owned();
    let resume = joined["resume_token"].as_str().unwrap().to_owned();

    // A half-open connection: the client has a new socket before the server saw the old die.
    let (_new, joined) = join(&url, "m1/a", Some(&resume)).await;
    assert_eq!(joined["participant"], id.as_str());
    assert_eq!(joined["resumed"], true);
    while next(&mut old).await.is_some() {}

    let mut seen = Vec::new();
    chair
        .send(Message::text(
            json!({"v": 1, "type": "set_discussion", "on": true}).to_string(),
        ))
        .await
        .unwrap();
    until(&mut chair, "room_state", &mut seen).await;
    assert!(churn(&seen).is_empty(), "roster churn: {:?}", churn(&seen));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_token_is_refused_for_another_point_another_meeting_and_after_the_grace() {
    let url = serve().await;
    let (mut chair, _) = join(&url, "m1/chair", None).await;
    let (a, joined) = join(&url, "m1/a", None).await;
    let id = joined["participant"].as_str().unwrap().to_owned();
    let resume = joined["resume_token"].as_str().unwrap().to_owned();
    until(&mut chair, "participant_joined", &mut Vec::new()).await;
    drop(a);

    // Another point, and the same point of another meeting: fresh seats.
    for token in ["m1/b", "m2/a"] {
        let (_ws, joined) = join(&url, token, Some(&resume)).await;
        assert_ne!(joined["participant"], id.as_str(), "{token}");
        assert!(joined.get("resumed").is_none(), "{token}: {joined}");
    }
    // A forged secret for the right seat.
    let forged = format!("{id}.AAAAAAAAAAAAAAAAAAAAAA");
    let (ws, joined) = join(&url, "m1/a", Some(&forged)).await;
    assert_ne!(joined["participant"], id.as_str());
    // That fresh seat of `a` replaced the parked one: its leave is announced now.
    let left = until(&mut chair, "participant_left", &mut Vec::new()).await;
    assert_eq!(left["participant"], id.as_str());
    drop(ws);
    let (ws, joined) = join(&url, "m1/a", Some(&resume)).await;
    assert!(
        joined.get("resumed").is_none(),
        "the replaced seat's token no longer works"
    );
    let id3 = joined["participant"].as_str().unwrap().to_owned();
    let resume3 = joined["resume_token"].as_str().unwrap().to_owned();

    // After the grace the seat is left and announced, and its token works no more.
    drop(ws);
    loop {
        let left = until(&mut chair, "participant_left", &mut Vec::new()).await;
        if left["participant"] == id3.as_str() {
            break;
        }
    }
    let (_ws, joined) = join(&url, "m1/a", Some(&resume3)).await;
    assert!(joined.get("resumed").is_none(), "{joined}");
    assert_ne!(joined["participant"], id3.as_str());
}
