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
//! - `media_state`: what each participant publishes, as its client declares it
//!   (`publish_state` → the roster's `media`), so the chair tells "no camera" from "connecting".
//! - `admission`: who may open a WebSocket (caps per address and global, upgrade rate, slots
//!   of sockets that have not joined).
//! - `session`: one task per WebSocket: parse, authorise, talk to the room and the media plane.
//! - [`local`]: the same protocol and session over two in-process queues (the relay client).
//! - [`relay_link`]: an upstream relay seat's join link, parsed and checked (the token kept out
//!   of logs), for the control plane that stores it and the relay client that dials it.
//! - `metrics`: Prometheus metrics of the signaling layer.
//! - `persist`: a meeting's controls saved after each change and restored after a restart
//!   (through [`auth::ControlsStore`]).
//! - [`turn`]: time-limited TURN credentials (coturn's REST API scheme) for `joined`.
//!
//! [`Signaling`] holds the rooms and serves `GET /ws`.

mod admission;
pub mod auth;
pub mod controls;
pub mod local;
mod media_state;
mod meeting;
mod metrics;
mod persist;
pub mod protocol;
pub mod relay_link;
pub mod room;
mod session;

pub use admission::AdmissionLimits;
pub use session::Timeouts;
pub mod turn;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, State, WebSocketUpgrade};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sfu::{ParticipantId, Sfu};

use admission::{Admission, Refusal};
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
    /// Saves each meeting's controls, so that a restart resumes the meeting as it was.
    pub controls: Arc<persist::Keeper>,
    /// Seats of lost sockets kept for a resume, and the resume tokens.
    pub resumes: session::Resumes,
    /// Open WebSockets: caps, per address and global, and the upgrade rate.
    pub admission: Arc<Admission>,
    /// Set once, by [`Signaling::shutdown`]: the retry hint (ms) every session is told.
    pub shutdown: tokio::sync::watch::Sender<Option<u64>>,
    pub rooms: Mutex<HashMap<String, Room>>,
    /// Where each linked meeting's program comes from, kept for rooms created later.
    pub upstream: Mutex<HashMap<String, protocol::UpstreamState>>,
    pub next_participant: AtomicU64,
    pub metrics: SignalingMetrics,
    /// TURN servers handed to every participant in `joined`, with its own credentials.
    pub turn: Option<turn::TurnConfig>,
    pub timeouts: Timeouts,
    /// This server's instance id, for relay loops (see [`Signaling::with_instance_id`]).
    pub instance_id: String,
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
                controls: Arc::new(persist::Keeper::new(Arc::new(auth::NoControlsStore))),
                resumes: session::Resumes::new(session::DEFAULT_GRACE),
                admission: Arc::new(Admission::new(AdmissionLimits::default())),
                shutdown: tokio::sync::watch::Sender::new(None),
                timeouts: Timeouts::default(),
                rooms: Mutex::new(HashMap::new()),
                upstream: Mutex::new(HashMap::new()),
                next_participant: AtomicU64::new(0),
                metrics,
                turn: None,
                // Random per process unless set from the data dir: distinct servers differ.
                instance_id: format!("{:016x}", rand::random::<u64>()),
            }),
        }
    }

    /// Caps the open WebSockets (default [`DEFAULT_MAX_CONNECTIONS`]), a quarter of them for
    /// sockets that have not joined yet. Call before serving.
    pub fn with_max_connections(self, max: usize) -> Self {
        let current = self.inner.admission.limits().clone();
        let scaled = AdmissionLimits::with_max_open(max);
        // A per-address cap equal to the whole (no cap) stays no cap.
        let per_address_open = if current.per_address_open >= current.max_open {
            scaled.max_open
        } else {
            current.per_address_open
        };
        self.with_admission(AdmissionLimits {
            max_open: scaled.max_open,
            max_unjoined: scaled.max_unjoined,
            per_address_open,
            ..current
        })
    }

    /// Sets every limit on open WebSockets (see [`AdmissionLimits`]). Call before serving.
    pub fn with_admission(mut self, limits: AdmissionLimits) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.admission = Arc::new(Admission::new(limits)),
            None => tracing::error!("WebSocket limits ignored: Signaling was already shared"),
        }
        self
    }

    /// Saves every meeting's controls in `store` after each change and restores them when the
    /// meeting's room is created again (after a restart). Call before serving.
    pub fn with_controls_store(mut self, store: Arc<dyn auth::ControlsStore>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.controls = Arc::new(persist::Keeper::new(store)),
            None => tracing::error!("controls store ignored: Signaling was already shared"),
        }
        self
    }

    /// How long the seat of a lost socket waits for its client to resume it (default 15 s;
    /// tests shorten it). Call before serving.
    pub fn with_resume_grace(mut self, grace: Duration) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.resumes = session::Resumes::new(grace),
            None => tracing::error!("resume grace ignored: Signaling was already shared"),
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

    /// This server's instance id (default: random for the life of the process): the `serve`
    /// command sets one derived from its data dir, so that it outlives restarts. It is what a
    /// relay `join`'s `chain` names; an id of another shape is ignored. Call before serving.
    pub fn with_instance_id(mut self, id: String) -> Self {
        if !protocol::valid_instance_id(&id) {
            tracing::error!("instance id ignored: not 1..64 characters of a-z, 0-9 and -");
            return self;
        }
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.instance_id = id,
            None => tracing::error!("instance id ignored: Signaling was already shared"),
        }
        self
    }

    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// The `chain` for the `join` of `meeting`'s relay to its upstream: this server's instance
    /// id, then the ids in the chains of the relay seats in `meeting` now (the servers whose
    /// programs reach it), each once, at most [`protocol::MAX_CHAIN`].
    pub fn relay_chain(&self, meeting: &str) -> Vec<String> {
        let mut chain = vec![self.inner.instance_id.clone()];
        let rooms = self.inner.rooms();
        let Some(room) = rooms.get(meeting) else {
            return chain;
        };
        let below = room
            .members
            .values()
            .filter(|m| m.info.role == protocol::Role::Relay)
            .flat_map(|m| &m.chain);
        for id in below {
            if chain.len() >= protocol::MAX_CHAIN {
                break;
            }
            if !chain.contains(id) {
                chain.push(id.clone());
            }
        }
        chain
    }

    /// A connection to this service from inside the process (see [`local`]): the protocol of
    /// `/ws`, admitted and bounded like a WebSocket.
    pub fn connect_local(&self) -> Result<local::LocalConnection, local::LocalRefused> {
        local::connect(&self.inner)
    }

    /// Says where a linked meeting's program comes from (`None`: the meeting is not linked, or
    /// no longer): everyone in it gets `room_state` with the new `upstream` when it changes.
    pub fn set_upstream(&self, meeting: &str, state: Option<protocol::UpstreamState>) {
        {
            let mut all = self
                .inner
                .upstream
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match state {
                Some(s) => all.insert(meeting.to_owned(), s),
                None => all.remove(meeting),
            };
        }
        let mut rooms = self.inner.rooms();
        if let Some(room) = rooms.get_mut(meeting)
            && room.upstream != state
        {
            room.upstream = state;
            room.broadcast(&room.state_message(), None);
        }
    }

    /// Tells a linked meeting what the upstream meeting says of its relay seat (see
    /// [`room::Room::upstream_view`]): whether it holds the floor upstream
    /// (`room_state.upstream_floor`), and whether its hand there is gone (granted or lowered
    /// upstream: `room_state.hand_up` is cleared). Everyone in it gets `room_state` on a change.
    pub fn set_upstream_view(&self, meeting: &str, floor: bool, hand_gone: bool) {
        let mut rooms = self.inner.rooms();
        if let Some(room) = rooms.get_mut(meeting)
            && room.upstream_view(floor, hand_gone)
        {
            room.broadcast(&room.state_message(), None);
        }
    }

    /// Lowers a linked meeting's `room_state.hand_up`: the hand its relay raised upstream is
    /// gone there (granted or lowered by the upstream chair), whether or not the meeting's
    /// `upstream` seat is in it. Everyone in it gets `room_state` on a change.
    pub fn lower_hand_up(&self, meeting: &str) {
        let mut rooms = self.inner.rooms();
        if let Some(room) = rooms.get_mut(meeting) {
            let floor = room.upstream_floor;
            if room.upstream_view(floor, true) {
                room.broadcast(&room.state_message(), None);
            }
        }
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
                retry_after_ms: None,
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
                retry_after_ms: None,
            },
            None,
        );
        room.len()
    }

    /// Ends every session for a restart: new sockets are refused (503), every open one is told
    /// `bye` `server_restarting` with `retry_after` as its hint and closed (each seat is left, so
    /// the observer records the departure). Waits at most `wait` for the sessions to finish;
    /// returns how many were still open then.
    pub async fn shutdown(&self, retry_after: Duration, wait: Duration) -> usize {
        let admission = &self.inner.admission;
        admission.stop();
        // The departures that follow are the restart's, not the meeting's: keep the controls
        // as they were decided.
        self.inner.controls.freeze();
        let open = admission.counts().0;
        tracing::info!(
            open,
            "telling every WebSocket session the server is restarting"
        );
        let hint = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
        self.inner.shutdown.send_replace(Some(hint));
        if tokio::time::timeout(wait, admission.until_idle())
            .await
            .is_err()
        {
            tracing::warn!("WebSocket sessions still open {wait:?} after the shutdown notice");
        }
        admission.counts().0
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

/// The client's address when the app is served with connect info (the binary does); `None`
/// otherwise (tests serving the bare router), and then only the global caps apply.
struct ClientAddr(Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

async fn upgrade(
    State(s): State<Signaling>,
    ClientAddr(addr): ClientAddr,
    ws: WebSocketUpgrade,
) -> Response {
    // Bounded like any server resource, and per address so that one address cannot lock
    // everyone out (see `admission`); a socket that never joins is closed at its deadline.
    let inner = &s.inner;
    let admitted = match inner.admission.admit(addr.map(|a| a.ip()), Instant::now()) {
        Ok(a) => a,
        Err(refusal) => return refuse(inner, addr, refusal),
    };
    if admitted.evicted > 0 {
        inner.metrics.ws_evicted.inc_by(admitted.evicted as u64);
    }
    inner.metrics.ws_counts(&inner.admission);
    let ticket = admitted.ticket;
    ws.max_message_size(session::WS_HARD_LIMIT)
        .max_frame_size(session::WS_HARD_LIMIT)
        .on_upgrade(move |socket| async move {
            let inner = s.inner;
            let (sink, stream) = futures_util::StreamExt::split(socket);
            session::run(inner.clone(), stream, sink, ticket).await;
            inner.metrics.ws_counts(&inner.admission);
        })
}

/// 429 with `Retry-After` for an address upgrading too fast, 503 for the caps.
fn refuse(inner: &Inner, addr: Option<SocketAddr>, refusal: Refusal) -> Response {
    inner
        .metrics
        .ws_refused
        .with_label_values(&[refusal.reason()])
        .inc();
    // Debug level: a flood would otherwise write a line per attempt.
    tracing::debug!(?addr, reason = refusal.reason(), "WebSocket refused");
    let (status, retry_after, text) = match refusal {
        Refusal::Rate { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            retry_after.as_secs_f64().ceil().max(1.0) as u64,
            "too many connections from your address; retry after the Retry-After delay",
        ),
        Refusal::Stopping => (
            StatusCode::SERVICE_UNAVAILABLE,
            5,
            "the server is restarting; retry shortly",
        ),
        Refusal::AddressFull | Refusal::ServerFull | Refusal::TooManyAddresses => (
            StatusCode::SERVICE_UNAVAILABLE,
            5,
            "too many connections; retry shortly",
        ),
    };
    let mut response = (status, text).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}
