//! One WebSocket connection: a task that reads client frames, answers them, and relays what the
//! room and the media plane have to say to this participant.
//!
//! States: `AwaitingJoin` → `Joined` → closed. Everything the client sends is parsed into a typed
//! message first; any failure becomes an `error` message with a stable code. Only the errors
//! listed as fatal close the connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use sfu::{MediaEvent, ParticipantId, SfuError};
use tokio::sync::mpsc;

mod convert;
mod join;

use convert::media_message;
use join::{join, leave};

use crate::Inner;
use crate::auth::Grant;
use crate::meeting::{self, Seat};
use crate::protocol::{
    self, ClientMessage, ErrorCode, PROTOCOL_VERSION, PcKind, Role, ServerMessage,
};

/// Frames above this are cut by the WebSocket layer itself; between the protocol limit (64 KiB)
/// and this one the client gets a typed `too_large` error before the close.
pub(crate) const WS_HARD_LIMIT: usize = 256 * 1024;
const ROOM_QUEUE: usize = 256;
const MEDIA_QUEUE: usize = 64;
/// How long a session waits for its client (see [`Timeouts::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A connection that sends nothing (not even a pong) for this long is closed.
    pub idle: Duration,
    /// Pings go out this often; the other limits are checked on the same tick.
    pub ping: Duration,
    /// A socket must join within this long (checked on the ping tick, so up to one tick later).
    pub join: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(60),
            ping: Duration::from_secs(20),
            join: Duration::from_secs(15),
        }
    }
}
/// Token bucket: bursts of 60 messages, 30 per second sustained (trickle ICE is the busiest).
const RATE_BURST: f64 = 60.0;
const RATE_PER_SEC: f64 = 30.0;
/// After this many refused messages in a row the client is not listening: close.
const RATE_STRIKES: u32 = 100;

struct Joined {
    id: ParticipantId,
    meeting: String,
    role: Role,
    grant: Grant,
    since: Instant,
    seat: Seat,
}

/// The queues a joined session listens to, kept apart from [`Joined`] so the select loop can
/// borrow them while a handler updates the session.
struct Inbox {
    room_rx: mpsc::Receiver<ServerMessage>,
    media_rx: mpsc::Receiver<MediaEvent>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    strikes: u32,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * RATE_PER_SEC;
        self.tokens = (self.tokens + refill).min(RATE_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.strikes = 0;
            true
        } else {
            self.strikes += 1;
            false
        }
    }
}

/// What woke the session loop.
enum Wake {
    Frame(Option<Result<Message, axum::Error>>),
    Out(Option<Inbound>),
    Tick,
}

/// What to do after handling one frame.
enum Next {
    Continue,
    Close(u16, &'static str),
}

pub(crate) async fn run(inner: Arc<Inner>, socket: WebSocket) {
    let opened = Instant::now();
    let timeouts = inner.timeouts;
    let (mut sink, mut stream) = socket.split();
    let mut joined: Option<Joined> = None;
    let mut inbox: Option<Inbox> = None;
    let mut bucket = Bucket {
        tokens: RATE_BURST,
        at: opened,
        strikes: 0,
    };
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + timeouts.ping, timeouts.ping);
    let mut last_heard = Instant::now();

    let close: Option<(u16, &'static str)> = loop {
        let wake = tokio::select! {
            frame = stream.next() => Wake::Frame(frame),
            out = recv_inbox(&mut inbox) => Wake::Out(out),
            _ = ping.tick() => Wake::Tick,
        };
        let frame = match wake {
            Wake::Frame(Some(frame)) => frame,
            Wake::Frame(None) => break None,
            Wake::Tick => {
                if last_heard.elapsed() > timeouts.idle {
                    break Some((1001, "idle timeout"));
                }
                if joined.is_none() && opened.elapsed() > timeouts.join {
                    // A socket that never joins holds a connection slot for nothing.
                    let e = error(
                        &inner,
                        ErrorCode::NotJoined,
                        "no \"join\" in time; connect again",
                        None,
                    );
                    let _ = send(&mut sink, &e).await;
                    break Some((1008, "join timeout"));
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
                continue;
            }
            Wake::Out(Some(Inbound::Speaking(speaking))) => {
                if let Some(j) = &joined {
                    meeting::speaking(&inner, &j.seat, speaking);
                }
                continue;
            }
            Wake::Out(Some(Inbound::Link(rtt_ms, loss, over_tcp))) => {
                if let Some(j) = &mut joined {
                    meeting::link_quality(&inner, &mut j.seat, rtt_ms, loss, over_tcp);
                }
                continue;
            }
            Wake::Out(Some(Inbound::Send(msg))) => {
                let bye = matches!(msg, ServerMessage::Bye { .. });
                if send(&mut sink, &msg).await.is_err() {
                    break None;
                }
                if bye {
                    break Some((1000, "replaced"));
                }
                continue;
            }
            // The room dropped us or the media plane went away.
            Wake::Out(None) => break Some((1011, "session ended by server")),
        };
        last_heard = Instant::now();
        let text = match frame {
            Ok(Message::Text(t)) => t,
            Ok(Message::Binary(_)) => {
                let e = error(
                    &inner,
                    ErrorCode::BadJson,
                    "binary frames are not accepted; send JSON text",
                    None,
                );
                if send(&mut sink, &e).await.is_err() {
                    break None;
                }
                continue;
            }
            Ok(Message::Close(_)) => break None,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Err(e) => {
                // Oversized frames end here (the WebSocket layer refused them).
                tracing::debug!("websocket read: {e}");
                let e = error(
                    &inner,
                    ErrorCode::TooLarge,
                    "frame refused: too large or malformed",
                    None,
                );
                let _ = send(&mut sink, &e).await;
                break Some((1009, "message too large"));
            }
        };
        if !bucket.take(Instant::now()) {
            if bucket.strikes > RATE_STRIKES {
                break Some((1008, "too many messages"));
            }
            let e = error(
                &inner,
                ErrorCode::RateLimited,
                "too many messages; slow down",
                None,
            );
            if send(&mut sink, &e).await.is_err() {
                break None;
            }
            continue;
        }
        let (replies, next) = handle_text(&inner, &mut joined, &mut inbox, opened, &text).await;
        let mut failed = false;
        for r in replies {
            if send(&mut sink, &r).await.is_err() {
                failed = true;
                break;
            }
        }
        if failed {
            break None;
        }
        if let Next::Close(code, reason) = next {
            break Some((code, reason));
        }
    };

    if let Some((code, reason)) = close {
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            })))
            .await;
    }
    if let Some(j) = joined {
        leave(&inner, j.id, &j.meeting);
        let participant = j.id.to_string();
        inner
            .observer
            .left(&j.grant, &participant, j.since.elapsed().as_secs_f64());
        inner
            .observer
            .link_summary(&j.grant, &participant, &j.seat.link_summary());
    }
}

/// What arrived for a joined session.
enum Inbound {
    Send(ServerMessage),
    Speaking(bool),
    Link(Option<u32>, f32, bool),
}

/// The next message for the client from the room or the media plane; never resolves before join.
async fn recv_inbox(inbox: &mut Option<Inbox>) -> Option<Inbound> {
    match inbox {
        Some(i) => tokio::select! {
            msg = i.room_rx.recv() => msg.map(Inbound::Send),
            event = i.media_rx.recv() => event.map(|e| match e {
                MediaEvent::Speaking { speaking } => Inbound::Speaking(speaking),
                MediaEvent::LinkQuality {
                    rtt_ms,
                    loss,
                    over_tcp,
                } => Inbound::Link(rtt_ms, loss, over_tcp),
                other => Inbound::Send(media_message(other)),
            }),
        },
        None => std::future::pending().await,
    }
}

async fn send<S>(sink: &mut S, msg: &ServerMessage) -> Result<(), ()>
where
    S: futures_util::Sink<Message> + Unpin,
{
    sink.send(Message::Text(msg.to_json().into()))
        .await
        .map_err(|_| ())
}

fn error(
    inner: &Inner,
    code: ErrorCode,
    message: impl Into<String>,
    request: Option<String>,
) -> ServerMessage {
    let code_name = serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    inner
        .metrics
        .errors
        .with_label_values(&[code_name.as_str()])
        .inc();
    ServerMessage::error(code, message, request)
}

async fn handle_text(
    inner: &Arc<Inner>,
    joined: &mut Option<Joined>,
    inbox: &mut Option<Inbox>,
    opened: Instant,
    text: &str,
) -> (Vec<ServerMessage>, Next) {
    let msg = match protocol::parse_client_message(text) {
        Ok(m) => m,
        Err(e) => {
            let fatal = e.code.is_fatal();
            let reply = error(inner, e.code, e.message, e.request);
            return (
                vec![reply],
                if fatal {
                    Next::Close(1009, "message too large")
                } else {
                    Next::Continue
                },
            );
        }
    };
    let kind = msg.kind();
    inner.metrics.messages.with_label_values(&[kind]).inc();
    let req = Some(kind.to_owned());
    let one = |m| (vec![m], Next::Continue);

    let Some(j) = joined.as_mut() else {
        return match msg {
            ClientMessage::Join { token, .. } => match join(inner, &token, opened).await {
                Ok((state, queues, reply)) => {
                    let mut replies = vec![reply];
                    if let Some(room) = inner.rooms().get(&state.meeting) {
                        replies.push(room.state_message());
                        if !room.controls.speaking.is_empty() {
                            replies.push(room.speakers_message());
                        }
                        replies.extend(room.chat_history_for(state.role, &state.grant.point));
                    }
                    *joined = Some(state);
                    *inbox = Some(queues);
                    (replies, Next::Continue)
                }
                Err(reply) => (vec![reply], Next::Close(1008, "join refused")),
            },
            ClientMessage::Ping { .. } => one(ServerMessage::Pong {
                v: PROTOCOL_VERSION,
            }),
            ClientMessage::Leave { .. } => (vec![bye("left")], Next::Close(1000, "left")),
            _ => one(error(
                inner,
                ErrorCode::NotJoined,
                "send \"join\" first",
                req,
            )),
        };
    };
    let id = j.id;
    let sfu = &inner.sfu;
    match msg {
        ClientMessage::Join { .. } => one(error(
            inner,
            ErrorCode::AlreadyJoined,
            "this connection has already joined",
            req,
        )),
        ClientMessage::PublishOffer { sdp, sources, .. } => {
            if j.role == Role::Observer {
                return one(error(
                    inner,
                    ErrorCode::Forbidden,
                    "observers do not publish",
                    req,
                ));
            }
            let sources = sources
                .into_iter()
                .map(|s| {
                    let source = match s.source {
                        protocol::Source::Microphone => sfu::TrackSource::Microphone,
                        protocol::Source::Camera => sfu::TrackSource::Camera,
                        protocol::Source::Screen => sfu::TrackSource::Screen,
                    };
                    (s.mid, source)
                })
                .collect();
            match sfu.publish_offer(id, sdp, sources).await {
                Ok(sdp) => one(ServerMessage::PublishAnswer {
                    v: PROTOCOL_VERSION,
                    sdp,
                }),
                Err(e) => one(sfu_error(inner, e, req)),
            }
        }
        ClientMessage::SubscribeAnswer { revision, sdp, .. } => {
            match sfu.subscribe_answer(id, revision, sdp).await {
                Ok(()) => (vec![], Next::Continue),
                Err(e) => one(sfu_error(inner, e, req)),
            }
        }
        ClientMessage::Candidate { pc, candidate, .. } => {
            let pc = match pc {
                PcKind::Publish => sfu::PcKind::Publish,
                PcKind::Subscribe => sfu::PcKind::Subscribe,
            };
            let c = sfu::RemoteCandidate {
                candidate: candidate.candidate,
                sdp_mid: candidate.sdp_mid,
                sdp_m_line_index: candidate.sdp_m_line_index,
                username_fragment: candidate.username_fragment,
            };
            match sfu.add_candidate(id, pc, c).await {
                Ok(()) => (vec![], Next::Continue),
                Err(e) => one(sfu_error(inner, e, req)),
            }
        }
        ClientMessage::Ping { .. } => one(ServerMessage::Pong {
            v: PROTOCOL_VERSION,
        }),
        ClientMessage::Leave { .. } => (vec![bye("left")], Next::Close(1000, "left")),
        ClientMessage::ClientStats {
            freezes, freeze_ms, ..
        } => {
            inner.metrics.client_freezes.inc_by(u64::from(freezes));
            inner
                .metrics
                .client_freeze_seconds
                .inc_by(f64::from(freeze_ms) / 1000.0);
            (vec![], Next::Continue)
        }
        other => match meeting::handle(inner, &mut j.seat, other) {
            Ok(replies) => (replies, Next::Continue),
            Err((code, message)) => one(error(inner, code, message, req)),
        },
    }
}

fn bye(reason: &str) -> ServerMessage {
    ServerMessage::Bye {
        v: PROTOCOL_VERSION,
        code: protocol::ByeCode::Left,
        reason: reason.into(),
    }
}

/// Maps a media-plane failure to a client error without leaking internals.
fn sfu_error(inner: &Inner, e: SfuError, request: Option<String>) -> ServerMessage {
    let (code, message) = match &e {
        SfuError::NoSuchConnection => (
            ErrorCode::NoSuchConnection,
            "that peer connection does not exist yet".to_owned(),
        ),
        SfuError::BadSdp(detail) => (
            ErrorCode::BadSdp,
            format!("the SDP was refused: {}", truncate(detail, 200)),
        ),
        SfuError::BadCandidate(detail) => (
            ErrorCode::BadMessage,
            format!("the ICE candidate was refused: {}", truncate(detail, 200)),
        ),
        SfuError::StaleAnswer { .. } | SfuError::NoOfferPending => {
            (ErrorCode::BadMessage, e.to_string())
        }
        SfuError::Busy => (
            ErrorCode::Internal,
            "the media server is busy; retry shortly".to_owned(),
        ),
        _ => {
            tracing::error!("media plane: {e}");
            (
                ErrorCode::Internal,
                "internal error; the server log has details".to_owned(),
            )
        }
    };
    error(inner, code, message, request)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
