//! Admission and departure: a token becomes a seat in the media plane and the room (or a typed
//! refusal), and a seat is given back when the connection ends.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use sfu::ParticipantId;
use tokio::sync::mpsc;

use super::handle::sfu_error;
use super::{Inbox, Joined, MEDIA_QUEUE, ROOM_QUEUE, error};
use crate::Inner;
use crate::auth::{AuthError, Grant};
use crate::meeting::{Seat, apply_routing};
use crate::persist;
use crate::protocol::{self, ErrorCode, MeetingInfo, PROTOCOL_VERSION, Role, ServerMessage};
use crate::room::{JoinRefused, Room};

pub(super) async fn join(
    inner: &Arc<Inner>,
    token: &str,
    chain: &[String],
    opened: Instant,
) -> Result<(Joined, Inbox, ServerMessage), ServerMessage> {
    let req = Some("join".to_owned());
    let grant: Grant = match inner.auth.authorize(token) {
        Ok(g) => g,
        Err(AuthError::Invalid(m)) => return Err(error(inner, ErrorCode::BadToken, m, req)),
        Err(AuthError::Expired(m)) => return Err(error(inner, ErrorCode::TokenExpired, m, req)),
    };
    // A relay whose program already comes through this server would relay this meeting back
    // to itself (A → B → A): refused before it takes a seat. Other roles' chains mean nothing.
    let chain: &[String] = if grant.role == Role::Relay {
        chain
    } else {
        &[]
    };
    if chain.contains(&inner.instance_id) {
        tracing::warn!(meeting = %grant.meeting_id, point = %grant.point, "join refused: relay loop");
        return Err(error(
            inner,
            ErrorCode::RelayLoop,
            "Liên kết tạo vòng lặp: cuộc họp của điểm cầu này đã nhận chương trình qua máy chủ này \
             / a loop: this relay's meeting already takes its program through this server",
            req,
        ));
    }
    let id = inner.next_participant();
    let (media_tx, media_rx) = mpsc::channel(MEDIA_QUEUE);
    if let Err(e) = inner.sfu.join(&grant.meeting_id, id, media_tx).await {
        return Err(sfu_error(inner, e, req));
    }
    let (room_tx, room_rx) = mpsc::channel(ROOM_QUEUE);
    // Read before the lock: the first join after a start brings back what the meeting decided.
    let mut restored = persist::restore(inner, &grant.meeting_id).await;
    let joined = {
        let mut rooms = inner.rooms();
        let room = rooms.entry(grant.meeting_id.clone()).or_insert_with(|| {
            inner.metrics.rooms.inc();
            let mut room = Room::new(
                grant.meeting_id.clone(),
                grant.meeting_title.clone(),
                grant.capacity,
            );
            room.keep_controls(inner.controls.clone(), restored.take());
            room.upstream = inner
                .upstream
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&grant.meeting_id)
                .copied();
            room
        });
        let result = room.join(id, &grant, room_tx);
        if let (Ok(_), Some(m)) = (&result, room.members.get_mut(&id)) {
            m.chain = chain.to_vec();
        }
        if let Ok(j) = &result {
            if j.replaced.is_none() {
                inner.metrics.participants.inc();
            }
            inner.metrics.room_changed(room);
            apply_routing(inner, room);
        } else if room.is_empty() {
            rooms.remove(&grant.meeting_id);
            inner.metrics.rooms.dec();
        }
        result
    };
    let roster = match joined {
        Ok(j) => {
            if let Some(old) = j.replaced {
                inner.sfu.leave(old);
                // A parked seat of the same point is over: its departure is recorded now, and
                // its resume token stops working.
                if let Some((seat, _)) = inner.resumes.expire(old) {
                    super::depart(inner, seat);
                }
                inner.resumes.forget(old);
            }
            j.roster
        }
        Err(JoinRefused::Full { capacity }) => {
            inner.sfu.leave(id);
            return Err(error(
                inner,
                ErrorCode::RoomFull,
                format!(
                    "Phòng họp đã đủ {capacity} điểm cầu / The meeting is full ({capacity} points)"
                ),
                req,
            ));
        }
    };
    inner
        .metrics
        .join_seconds
        .observe(opened.elapsed().as_secs_f64());
    tracing::info!(participant = %id, meeting = %grant.meeting_id, point = %grant.point, role = ?grant.role, "joined");
    inner.observer.joined(&grant, &id.to_string());
    let (resume_token, handle) = inner.resumes.issue(id, &grant.meeting_id, &grant.point);
    let reply = joined_reply(inner, id, &grant, roster, resume_token, false);
    Ok((
        Joined {
            id,
            meeting: grant.meeting_id.clone(),
            role: grant.role,
            since: Instant::now(),
            seat: Seat::new(
                id,
                grant.meeting_id.clone(),
                grant.point.clone(),
                grant.name.clone(),
                grant.role,
            ),
            grant,
            takeover: handle.takeover,
        },
        Inbox { room_rx, media_rx },
        reply,
    ))
}

pub(super) fn leave(inner: &Inner, id: ParticipantId, meeting: &str) {
    {
        let mut rooms = inner.rooms();
        if let Some(room) = rooms.get_mut(meeting) {
            if room.leave(id) {
                inner.metrics.participants.dec();
                inner.metrics.room_changed(room);
                apply_routing(inner, room);
            }
            if room.is_empty() {
                rooms.remove(meeting);
                inner.metrics.rooms.dec();
                inner.metrics.room_closed(meeting);
            }
        }
    }
    inner.sfu.leave(id);
    tracing::info!(participant = %id, %meeting, "left");
}

/// The `joined` message for a seat (fresh or resumed).
fn joined_reply(
    inner: &Inner,
    id: ParticipantId,
    grant: &Grant,
    roster: Vec<protocol::ParticipantInfo>,
    resume_token: String,
    resumed: bool,
) -> ServerMessage {
    ServerMessage::Joined {
        v: PROTOCOL_VERSION,
        participant: id.to_string(),
        role: grant.role,
        meeting: MeetingInfo {
            id: grant.meeting_id.clone(),
            title: grant.meeting_title.clone(),
        },
        roster,
        // Fresh for every join: a re-join after a long outage gets a new expiry.
        ice_servers: inner
            .turn
            .as_ref()
            .map(|t| vec![t.ice_server(&id.to_string(), SystemTime::now())])
            .unwrap_or_default(),
        invited: if grant.role == Role::Chair {
            inner
                .auth
                .invited(&grant.meeting_id)
                .into_iter()
                .map(|i| protocol::InvitedInfo {
                    point: i.point,
                    name: i.name,
                })
                .collect()
        } else {
            Vec::new()
        },
        resume_token: Some(resume_token),
        resumed,
    }
}

/// Takes over a parked seat (see `resume`) for `join` with `resume`: the session's state and
/// queues, and what to send first (`joined` with `resumed`, the controls, the chat that came
/// while the socket was away). `None` when the token does not name a seat this join may take
/// (another meeting or point, an old token, the grace over): the join goes on as a fresh one.
pub(super) async fn resume(
    inner: &Arc<Inner>,
    token: &str,
    resume: &str,
) -> Option<(Joined, Inbox, Vec<ServerMessage>)> {
    // A bad join token is reported by the fresh join that follows.
    let grant = inner.auth.authorize(token).ok()?;
    let (mut joined, mut inbox) = inner
        .resumes
        .claim(resume, &grant.meeting_id, &grant.point)
        .await?;
    // What the room queued meanwhile: the `joined` roster and `room_state` below are newer than
    // any roster or controls event, chat is kept, and a `bye` (link revoked, meeting ended)
    // means the seat is over.
    let mut chat = Vec::new();
    while let Ok(msg) = inbox.room_rx.try_recv() {
        match msg {
            ServerMessage::Chat { .. } => chat.push(msg),
            ServerMessage::Bye { .. } => {
                super::depart(inner, joined);
                return None;
            }
            _ => {}
        }
    }
    let (resume_token, handle) =
        inner
            .resumes
            .issue(joined.id, &joined.meeting, &joined.grant.point);
    joined.takeover = handle.takeover;
    let mut replies = Vec::new();
    {
        let rooms = inner.rooms();
        let room = rooms.get(&joined.meeting)?;
        let roster = room.members.values().map(|m| m.info.clone()).collect();
        replies.push(joined_reply(
            inner,
            joined.id,
            &joined.grant,
            roster,
            resume_token,
            true,
        ));
        replies.push(room.state_message());
        if !room.controls.speaking.is_empty() {
            replies.push(room.speakers_message());
        }
    }
    replies.extend(chat);
    tracing::info!(participant = %joined.id, meeting = %joined.meeting, "resumed");
    Some((joined, inbox, replies))
}
