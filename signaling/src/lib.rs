//! # hoinghi signaling
//!
//! The WebSocket protocol between clients and the server, the per-connection session, and the
//! room state that decides who receives whom.
//!
//! # Layout
//! - [`protocol`]: every message on the wire (serde types), parsing with stable error codes.
//! - [`auth`]: the [`auth::Authorizer`] trait that turns a join token into a [`auth::Grant`].
//! - [`controls`]: floor, hands, microphones, roll call, discussion (pure state machine).
//! - [`room`]: one meeting's roster and routing policy (pure, synchronous).
//! - `session`: one task per WebSocket: parse, authorise, talk to the room and the media plane.
//! - `metrics`: Prometheus metrics of the signaling layer.
//! - [`turn`]: time-limited TURN credentials (coturn's REST API scheme) for `joined`.
//!
//! [`Signaling`] holds the rooms and serves `GET /ws`.

pub mod auth;
pub mod controls;
mod meeting;
mod metrics;
pub mod protocol;
pub mod room;
mod session;

pub use session::Timeouts;
pub mod turn;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sfu::{ParticipantId, Sfu};

use metrics::SignalingMetrics;
use room::Room;

/// Open WebSockets a server accepts by default: a province's few hundred points many times
/// over, far below what exhausts file descriptors.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4_096;

/// A snapshot of one connected participant, for the admin panel and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveParticipant {
    pub id: String,
    pub point: String,
    pub name: String,
    pub role: protocol::Role,
}

/// The signaling service; cheap to clone.
#[derive(Clone)]
pub struct Signaling {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub sfu: Sfu,
    pub auth: Arc<dyn auth::Authorizer>,
    pub observer: Arc<dyn auth::RoomObserver>,
    /// Open WebSockets (joined or not) are bounded by this semaphore.
    pub connections: Arc<tokio::sync::Semaphore>,
    pub max_connections: usize,
    pub rooms: Mutex<HashMap<String, Room>>,
    pub next_participant: AtomicU64,
    pub metrics: SignalingMetrics,
    /// TURN servers handed to every participant in `joined`, with its own credentials.
    pub turn: Option<turn::TurnConfig>,
    pub timeouts: Timeouts,
}

impl Inner {
    pub fn rooms(&self) -> MutexGuard<'_, HashMap<String, Room>> {
        // Room updates are single synchronous steps; state after a panic is still usable.
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn next_participant(&self) -> ParticipantId {
        ParticipantId(self.next_participant.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

impl Signaling {
    pub fn new(sfu: Sfu, auth: Arc<dyn auth::Authorizer>, registry: &prometheus::Registry) -> Self {
        Self::with_observer(sfu, auth, Arc::new(auth::NoObserver), registry)
    }

    /// Like [`Signaling::new`], telling `observer` of every join and leave (attendance).
    pub fn with_observer(
        sfu: Sfu,
        auth: Arc<dyn auth::Authorizer>,
        observer: Arc<dyn auth::RoomObserver>,
        registry: &prometheus::Registry,
    ) -> Self {
        let metrics = match SignalingMetrics::new(registry) {
            Ok(m) => m,
            Err(e) => {
                // Only a name clash (a second Signaling on one registry, in tests) gets here.
                tracing::warn!("signaling metrics not registered: {e}");
                SignalingMetrics::unregistered()
            }
        };
        Signaling {
            inner: Arc::new(Inner {
                sfu,
                auth,
                observer,
                connections: Arc::new(tokio::sync::Semaphore::new(DEFAULT_MAX_CONNECTIONS)),
                max_connections: DEFAULT_MAX_CONNECTIONS,
                timeouts: Timeouts::default(),
                rooms: Mutex::new(HashMap::new()),
                next_participant: AtomicU64::new(0),
                metrics,
                turn: None,
            }),
        }
    }

    /// Caps the open WebSockets (default [`DEFAULT_MAX_CONNECTIONS`]). Call before serving.
    pub fn with_max_connections(mut self, max: usize) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.connections = Arc::new(tokio::sync::Semaphore::new(max));
            inner.max_connections = max;
        }
        self
    }

    /// How long sessions wait for their clients (tests shorten them). Call before serving.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.timeouts = timeouts;
        }
        self
    }

    /// Hands every participant the TURN servers of `turn` in `joined`, with credentials of its
    /// own. Call before serving or cloning: once shared, the service is not reconfigured.
    pub fn with_turn(mut self, turn: turn::TurnConfig) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.turn = Some(turn),
            // Only a caller that cloned first gets here; clients would silently lack a relay.
            None => tracing::error!("TURN configuration ignored: Signaling was already shared"),
        }
        self
    }

    /// `GET /ws`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/ws", get(upgrade))
            .with_state(self.clone())
    }

    /// Disconnects the connected seat of `point` in `meeting` (its link was re-issued or its
    /// invitation withdrawn): it is told `bye` with `reason` and its connection closes. Returns
    /// whether such a seat was connected.
    pub fn kick(&self, meeting: &str, point: &str, reason: &str) -> bool {
        let rooms = self.inner.rooms();
        let Some(room) = rooms.get(meeting) else {
            return false;
        };
        let mut found = false;
        for m in room.members.values().filter(|m| m.info.point == point) {
            found = true;
            let _ = m.tx.try_send(protocol::ServerMessage::Bye {
                v: protocol::PROTOCOL_VERSION,
                code: protocol::ByeCode::Revoked,
                reason: reason.to_owned(),
            });
        }
        found
    }

    /// Ends a meeting for everyone connected (cancelled or ended from the admin panel): each
    /// gets `meeting_ended` then `bye`. Returns how many were connected.
    pub fn close_meeting(&self, meeting: &str, reason: &str) -> usize {
        let rooms = self.inner.rooms();
        let Some(room) = rooms.get(meeting) else {
            return 0;
        };
        room.broadcast(
            &protocol::ServerMessage::MeetingEnded {
                v: protocol::PROTOCOL_VERSION,
            },
            None,
        );
        room.broadcast(
            &protocol::ServerMessage::Bye {
                v: protocol::PROTOCOL_VERSION,
                code: protocol::ByeCode::MeetingEnded,
                reason: reason.to_owned(),
            },
            None,
        );
        room.len()
    }

    /// Who is connected to a meeting right now.
    pub fn live(&self, meeting: &str) -> Vec<LiveParticipant> {
        self.inner
            .rooms()
            .get(meeting)
            .map(|r| {
                r.members
                    .values()
                    .map(|m| LiveParticipant {
                        id: m.info.id.clone(),
                        point: m.info.point.clone(),
                        name: m.info.name.clone(),
                        role: m.info.role,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

async fn upgrade(State(s): State<Signaling>, ws: WebSocketUpgrade) -> Response {
    // Bounded like any server resource: past the cap a new socket is refused before upgrading
    // (and a socket that never joins is closed, see `session`).
    let Ok(permit) = s.inner.connections.clone().try_acquire_owned() else {
        tracing::warn!(
            "WebSocket refused: {} connections open",
            s.inner.max_connections
        );
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "too many connections; retry shortly",
        )
            .into_response();
    };
    ws.max_message_size(session::WS_HARD_LIMIT)
        .max_frame_size(session::WS_HARD_LIMIT)
        .on_upgrade(move |socket| async move {
            session::run(s.inner, socket).await;
            drop(permit);
        })
}
