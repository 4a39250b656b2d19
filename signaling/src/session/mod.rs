//! One WebSocket connection: a task that reads client frames, answers them, and relays what the
//! room and the media plane have to say to this participant.
//!
//! States: `AwaitingJoin` → `Joined` → closed. Everything the client sends is parsed into a typed
//! message first; any failure becomes an `error` message with a stable code. Only the errors
//! listed as fatal close the connection.
//!
//! Every close the server decides on is announced first: a fatal `error` or a `bye` is flushed
//! before the close frame, and the close code follows from it (see [`ByeCode::close_code`]).
//!
//! # Layout
//! - `handle`: one client message, answered.
//! - `join`: a token becomes a seat (or a refusal); the seat is given back at the end.
//! - `convert`: media-plane events as protocol messages.
//! - `resume`: a lost socket's seat parked for a grace period, and taken over by the client's
//!   next socket (same participant, no roster churn).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{SinkExt, StreamExt};
use sfu::{MediaEvent, ParticipantId};
use tokio::sync::{mpsc, watch};

mod convert;
mod handle;
mod join;
mod resume;

pub(crate) use resume::{DEFAULT_GRACE, Resumes};

use convert::media_message;
use handle::handle_text;
use join::leave;

use crate::Inner;
use crate::admission::Ticket;
use crate::auth::Grant;
use crate::meeting::{self, Seat};
use crate::protocol::{ByeCode, ErrorCode, PROTOCOL_VERSION, Role, ServerMessage};

/// Frames above this are cut by the WebSocket layer itself; between the protocol limit
/// (192 KiB) and this one the client gets a typed `too_large` error before the close.
pub(crate) const WS_HARD_LIMIT: usize = 384 * 1024;
const ROOM_QUEUE: usize = 256;
const MEDIA_QUEUE: usize = 64;
/// How long the last message and the close frame may take to leave: a client that stopped
/// reading must not hold its session (or a shutdown) open.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long a session waits for its client (see [`Timeouts::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A connection that sends nothing (not even a pong) for this long is closed.
    pub idle: Duration,
    /// Pings go out this often; the idle limit is checked on the same tick.
    pub ping: Duration,
    /// A socket must join within this long after it opened; it is closed at that moment.
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
    /// Rung when a newer socket resumes this seat: park it now (see `resume`).
    takeover: Arc<tokio::sync::Notify>,
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
    /// The join deadline passed without a `join`.
    JoinDeadline,
    /// A newer socket took this unjoined socket's slot (see `admission`).
    Evicted,
    /// The server is shutting down; the retry hint in milliseconds.
    Restart(u64),
    /// A newer socket resumes this seat.
    Takeover,
}

/// What to do after handling one frame.
enum Next {
    Continue,
    Close(u16, &'static str),
}

/// How the loop ended: the last message for the client (if any) and the close frame (if any).
struct Ending {
    last: Option<ServerMessage>,
    close: Option<(u16, &'static str)>,
    /// The client may come back for its seat (see `resume`): park it rather than leave.
    resumable: bool,
}

impl Ending {
    /// The connection is gone or unusable: nothing more to send.
    fn lost() -> Self {
        Self {
            last: None,
            close: None,
            resumable: true,
        }
    }

    /// The server closes without a message: `resumable` says whether the seat is parked.
    fn close(code: u16, reason: &'static str, resumable: bool) -> Self {
        Self {
            last: None,
            close: Some((code, reason)),
            resumable,
        }
    }

    fn with(last: ServerMessage, code: u16, reason: &'static str) -> Self {
        Self {
            last: Some(last),
            close: Some((code, reason)),
            resumable: false,
        }
    }

    /// A `bye`, then the close code that goes with its code.
    fn bye(msg: ServerMessage) -> Self {
        let (code, reason) = match &msg {
            ServerMessage::Bye { code, .. } => (code.close_code(), code.as_str()),
            _ => (1011, "session ended by server"),
        };
        Self::with(msg, code, reason)
    }
}

/// Serves one connection: `stream` and `sink` are the two halves of a WebSocket (or of an
/// in-process connection, see `local`).
pub(crate) async fn run<St, Si>(inner: Arc<Inner>, mut stream: St, mut sink: Si, mut ticket: Ticket)
where
    St: futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin,
    Si: futures_util::Sink<Message> + Unpin,
{
    let opened = Instant::now();
    let timeouts = inner.timeouts;
    let join_deadline = tokio::time::Instant::now() + timeouts.join;
    let mut restart = inner.shutdown.subscribe();
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

    let ending: Ending = loop {
        let wake = tokio::select! {
            frame = stream.next() => Wake::Frame(frame),
            out = recv_inbox(&mut inbox) => Wake::Out(out),
            _ = ping.tick() => Wake::Tick,
            // Exactly at the deadline, not on the next ping tick: an unjoined socket holds a
            // slot for nothing.
            () = tokio::time::sleep_until(join_deadline), if joined.is_none() => Wake::JoinDeadline,
            () = ticket.evicted(), if joined.is_none() => Wake::Evicted,
            hint = restart_hint(&mut restart) => Wake::Restart(hint),
            () = takeover(joined.as_ref().map(|j| j.takeover.clone())) => Wake::Takeover,
        };
        let frame = match wake {
            Wake::Frame(Some(frame)) => frame,
            Wake::Frame(None) => break Ending::lost(),
            Wake::Tick => {
                if last_heard.elapsed() > timeouts.idle {
                    break Ending::close(1001, "idle timeout", false);
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break Ending::lost();
                }
                continue;
            }
            Wake::JoinDeadline => {
                let e = error(
                    &inner,
                    ErrorCode::NotJoined,
                    "no \"join\" in time; connect again",
                    None,
                );
                break Ending::with(e, 1008, "join timeout");
            }
            Wake::Evicted => {
                let e = error(
                    &inner,
                    ErrorCode::NotJoined,
                    "a newer connection from your address took this one's place before it \
                     joined; connect again and send \"join\" at once",
                    None,
                );
                break Ending::with(e, 1008, "join timeout");
            }
            Wake::Restart(hint) => {
                break Ending::bye(ServerMessage::Bye {
                    v: PROTOCOL_VERSION,
                    code: ByeCode::ServerRestarting,
                    reason: "Máy chủ đang khởi động lại / the server is restarting".into(),
                    retry_after_ms: Some(hint),
                });
            }
            Wake::Takeover => break Ending::close(1000, "resumed by a newer connection", true),
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
            Wake::Out(Some(Inbound::Send(msg @ ServerMessage::Bye { .. }))) => {
                break Ending::bye(msg);
            }
            Wake::Out(Some(Inbound::Send(msg))) => {
                if send(&mut sink, &msg).await.is_err() {
                    break Ending::lost();
                }
                continue;
            }
            // The room dropped us or the media plane went away, without a word.
            Wake::Out(None) => {
                break Ending::close(1011, "session ended by server", false);
            }
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
                    break Ending::lost();
                }
                continue;
            }
            Ok(Message::Close(_)) => break Ending::lost(),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            // A connection reset or cut without a close frame: the line dropped, the seat
            // waits for its client (see `resume`).
            Err(e) if !is_capacity_error(&e) => {
                tracing::debug!("websocket read: {e}");
                break Ending::lost();
            }
            Err(e) => {
                // Oversized frames end here (the WebSocket layer refused them).
                tracing::debug!("websocket read: {e}");
                let e = error(
                    &inner,
                    ErrorCode::TooLarge,
                    "frame refused: too large or malformed",
                    None,
                );
                break Ending::with(e, 1009, "message too large");
            }
        };
        if !bucket.take(Instant::now()) {
            if bucket.strikes > RATE_STRIKES {
                break Ending::close(1008, "too many messages", false);
            }
            let e = error(
                &inner,
                ErrorCode::RateLimited,
                "too many messages; slow down",
                None,
            );
            if send(&mut sink, &e).await.is_err() {
                break Ending::lost();
            }
            continue;
        }
        let was_joined = joined.is_some();
        let (replies, next) = handle_text(&inner, &mut joined, &mut inbox, opened, &text).await;
        if !was_joined && joined.is_some() {
            ticket.joined();
            inner.metrics.ws_counts(&inner.admission);
        }
        let mut failed = false;
        for r in replies {
            if send(&mut sink, &r).await.is_err() {
                failed = true;
                break;
            }
        }
        if failed {
            break Ending::lost();
        }
        if let Next::Close(code, reason) = next {
            break Ending::close(code, reason, false);
        }
    };

    let resumable = ending.resumable && inner.shutdown.borrow().is_none();
    finish(&mut sink, ending).await;
    if let Some(j) = joined {
        match inbox.take() {
            Some(i) if resumable => park(&inner, j, i),
            _ => depart(&inner, j),
        }
    }
    drop(ticket);
}

/// Keeps a lost session's seat for the grace period (see `resume`), then leaves it unless a
/// newer socket took it over.
fn park(inner: &Arc<Inner>, j: Joined, inbox: Inbox) {
    let id = j.id;
    match inner.resumes.park(j, inbox) {
        None => {
            tracing::info!(participant = %id, "connection lost: seat kept for a resume");
            let inner = inner.clone();
            tokio::spawn(async move {
                tokio::time::sleep(inner.resumes.grace).await;
                if let Some((j, _inbox)) = inner.resumes.expire(id) {
                    depart(&inner, j);
                }
            });
        }
        Some((j, _inbox)) => depart(inner, j),
    }
}

/// The seat is given back for good: the room and the observer are told.
fn depart(inner: &Inner, j: Joined) {
    inner.resumes.forget(j.id);
    leave(inner, j.id, &j.meeting);
    let participant = j.id.to_string();
    inner
        .observer
        .left(&j.grant, &participant, j.since.elapsed().as_secs_f64());
    inner
        .observer
        .link_summary(&j.grant, &participant, &j.seat.link_summary());
}

/// Whether the WebSocket layer refused a frame for its size. Its error type is not public
/// through axum: tungstenite's capacity errors read "Space limit exceeded: …".
fn is_capacity_error(e: &axum::Error) -> bool {
    e.to_string().contains("Space limit exceeded")
}

/// Resolves when a newer socket resumes this seat; never before join.
async fn takeover(notify: Option<Arc<tokio::sync::Notify>>) {
    match notify {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

/// Sends the last message, then the close frame, each before the one after it, within
/// [`CLOSE_GRACE`].
async fn finish<S>(sink: &mut S, ending: Ending)
where
    S: futures_util::Sink<Message> + Unpin,
{
    let flush = async {
        if let Some(msg) = &ending.last
            && send(sink, msg).await.is_err()
        {
            return;
        }
        if let Some((code, reason)) = ending.close {
            let _ = sink
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static(reason),
                })))
                .await;
        }
    };
    if tokio::time::timeout(CLOSE_GRACE, flush).await.is_err() {
        tracing::debug!("client did not take its last message in time");
    }
}

/// The retry hint once the server starts shutting down; never resolves before.
async fn restart_hint(rx: &mut watch::Receiver<Option<u64>>) -> u64 {
    let hint = rx.wait_for(Option::is_some).await.map(|hint| *hint);
    match hint {
        Ok(hint) => hint.unwrap_or_default(),
        // The service itself is gone: nothing will ever be announced.
        Err(_) => std::future::pending().await,
    }
}

/// What arrived for a joined session.
enum Inbound {
    Send(ServerMessage),
    Speaking(bool),
    Link(Option<u32>, f32, bool),
}

/// The next message for the client from the room or the media plane; never resolves before join.
///
/// The room's queue comes first, and is drained before the end of the media plane's is
/// reported: a replaced seat's `bye` is queued by the room just before the media plane lets go
/// of the old seat, and must reach the client rather than lose a race to that closing.
async fn recv_inbox(inbox: &mut Option<Inbox>) -> Option<Inbound> {
    match inbox {
        Some(i) => tokio::select! {
            biased;
            Some(msg) = i.room_rx.recv() => Some(Inbound::Send(msg)),
            event = i.media_rx.recv() => match event {
                Some(MediaEvent::Speaking { speaking }) => Some(Inbound::Speaking(speaking)),
                Some(MediaEvent::LinkQuality {
                    rtt_ms,
                    loss,
                    over_tcp,
                }) => Some(Inbound::Link(rtt_ms, loss, over_tcp)),
                Some(other) => Some(Inbound::Send(media_message(other))),
                None => i.room_rx.try_recv().ok().map(Inbound::Send),
            },
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
