//! One client message: parsed, authorised by the session's state and role, and answered.

use std::sync::Arc;
use std::time::Instant;

use sfu::SfuError;

use super::join::{join, resume as resume_seat};
use super::{Inbox, Joined, Next, error};
use crate::Inner;
use crate::meeting;
use crate::protocol::{
    self, ClientMessage, ErrorCode, PROTOCOL_VERSION, PcKind, RequestId, Role, ServerMessage,
};

pub(super) async fn handle_text(
    inner: &Arc<Inner>,
    joined: &mut Option<Joined>,
    inbox: &mut Option<Inbox>,
    opened: Instant,
    text: &str,
) -> (Vec<ServerMessage>, Next) {
    let (frame, request_id) = match protocol::parse_client_frame(text) {
        Ok(f) => (f.message, f.request_id),
        Err(e) => {
            let fatal = e.code.is_fatal();
            let reply = with_request_id(error(inner, e.code, e.message, e.request), e.request_id);
            let next = if fatal {
                Next::Close(e.code.close_code(), close_reason(e.code))
            } else {
                Next::Continue
            };
            return (vec![reply], next);
        }
    };
    let (mut replies, mut next) = handle_message(inner, joined, inbox, opened, frame).await;
    // Every fatal error closes, whichever path produced it.
    for r in &mut replies {
        if let ServerMessage::Error { code, fatal, .. } = r
            && *fatal
            && matches!(next, Next::Continue)
        {
            next = Next::Close(code.close_code(), close_reason(*code));
        }
    }
    if let Some(id) = request_id {
        replies = replies
            .into_iter()
            .map(|r| with_request_id(r, Some(id.clone())))
            .collect();
    }
    (replies, next)
}

/// The close frame's reason after a fatal error.
fn close_reason(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::TooLarge => "message too large",
        ErrorCode::NotJoined => "not joined",
        _ => "join refused",
    }
}

/// Stamps an `error` with the `request_id` of the message it answers.
fn with_request_id(msg: ServerMessage, id: Option<RequestId>) -> ServerMessage {
    match msg {
        ServerMessage::Error {
            v,
            code,
            message,
            request,
            fatal,
            request_id: None,
        } => ServerMessage::Error {
            v,
            code,
            message,
            request,
            fatal,
            request_id: id,
        },
        other => other,
    }
}

async fn handle_message(
    inner: &Arc<Inner>,
    joined: &mut Option<Joined>,
    inbox: &mut Option<Inbox>,
    opened: Instant,
    msg: ClientMessage,
) -> (Vec<ServerMessage>, Next) {
    let kind = msg.kind();
    inner.metrics.messages.with_label_values(&[kind]).inc();
    let req = Some(kind.to_owned());
    let one = |m| (vec![m], Next::Continue);

    let Some(j) = joined.as_mut() else {
        return match msg {
            ClientMessage::Join {
                token,
                resume,
                chain,
                ..
            } => {
                // A resume that does not name a seat this join may take is a fresh join.
                let resumed = match resume {
                    Some(r) => resume_seat(inner, &token, &r).await,
                    None => None,
                };
                if let Some((state, queues, replies)) = resumed {
                    *joined = Some(state);
                    *inbox = Some(queues);
                    return (replies, Next::Continue);
                }
                match join(inner, &token, &chain, opened).await {
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
                }
            }
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
        ClientMessage::RestartSubscribe { revision, .. } => {
            match sfu.restart_subscribe(id, revision).await {
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

pub(super) fn bye(reason: &str) -> ServerMessage {
    ServerMessage::Bye {
        v: PROTOCOL_VERSION,
        code: protocol::ByeCode::Left,
        reason: reason.into(),
        retry_after_ms: None,
    }
}

/// Maps a media-plane failure to a client error without leaking internals.
pub(super) fn sfu_error(inner: &Inner, e: SfuError, request: Option<String>) -> ServerMessage {
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
