//! A real meeting for the lifecycle tests: the admin API on a temporary database, and `/ws`
//! served by a real `Signaling` (real media plane on loopback) with the control plane's
//! authorizer and recorder; WebSocket clients that join with the links the API gives.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use room_admin::api::LiveSeat;
use room_admin::attendance::AttendanceRecorder;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::admin::{App, token_of};

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Server {
    pub app: App,
    pub ws_url: String,
    pub recorder: Arc<AttendanceRecorder>,
    pub _sfu: sfu::Sfu,
}

/// The API on a temporary database, and `/ws` served by a real `Signaling` with the control
/// plane's authorizer and recorder, on loopback.
pub async fn server() -> Server {
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
    // The signaling layer needs the app's authorizer and the app's API needs the signaling
    // layer: the API gets a handle that is filled in once the signaling layer exists.
    let holder: Arc<std::sync::OnceLock<signaling::Signaling>> = Arc::default();
    let app = App::build(false, Some(Arc::new(LateSignaling(holder.clone())))).await;
    let recorder = AttendanceRecorder::start(app.db.clone()).await.unwrap();
    let signaling = signaling::Signaling::with_observer(
        sfu.clone(),
        Arc::new(app.authorizer()),
        recorder.clone(),
        &registry,
    );
    let _ = holder.set(signaling.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            signaling
                .router()
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    Server {
        app,
        ws_url: format!("ws://{addr}/ws"),
        recorder,
        _sfu: sfu,
    }
}

/// The signaling layer, set once it exists (it needs the app's authorizer, the app needs it).
struct LateSignaling(Arc<std::sync::OnceLock<signaling::Signaling>>);

impl room_admin::api::LiveSource for LateSignaling {
    fn live(&self, meeting: &str) -> Vec<LiveSeat> {
        self.0
            .get()
            .map(|s| room_admin::api::LiveSource::live(s, meeting))
            .unwrap_or_default()
    }
    fn kick(&self, meeting: &str, seat: &str, reason: &str) -> bool {
        self.0
            .get()
            .is_some_and(|s| room_admin::api::LiveSource::kick(s, meeting, seat, reason))
    }
    fn close_meeting(&self, meeting: &str, reason: &str) -> usize {
        self.0.get().map_or(0, |s| {
            room_admin::api::LiveSource::close_meeting(s, meeting, reason)
        })
    }
    fn end_by_schedule(&self, meeting: &str, reason: &str) -> usize {
        self.0.get().map_or(0, |s| {
            room_admin::api::LiveSource::end_by_schedule(s, meeting, reason)
        })
    }
    fn warn_end(&self, meeting: &str, ends_at: i64, minutes_left: u32) -> usize {
        self.0.get().map_or(0, |s| {
            room_admin::api::LiveSource::warn_end(s, meeting, ends_at, minutes_left)
        })
    }
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next message of type `kind` (others skipped), or `None` when the socket closes first.
pub async fn next_of(ws: &mut Ws, kind: &str) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} within 10 s"));
        match msg {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == kind {
                    return Some(v);
                }
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

pub async fn join(url: &str, link: &str) -> (Ws, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    send(
        &mut ws,
        json!({"type": "join", "v": 1, "token": token_of(link)}),
    )
    .await;
    let first = loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("socket closed before an answer to join")
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["type"] == "joined" || v["type"] == "error" || v["type"] == "bye" {
            break v;
        }
    };
    (ws, first)
}

/// Whether the socket closes (after any messages) within 10 s.
pub async fn closes(ws: &mut Ws) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}
