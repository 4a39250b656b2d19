//! Meeting controls on the wire: turns control, chat and viewport messages into room changes,
//! and voice-activity events into active-speaker updates. Runs inside a session task; every
//! room change is one short critical section on the room registry, never across an await.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sfu::ParticipantId;

use crate::Inner;
use crate::auth::LinkSummary;
use crate::controls::{Action, Actor, ControlError};
use crate::protocol::{
    ClientMessage, ErrorCode, MediaState, PROTOCOL_VERSION, Quality, Role, ServerMessage, Transport,
};

/// A link's quality is repeated at least this often even when its class does not change.
const QUALITY_REFRESH_SECS: u64 = 10;
use crate::room::Room;

/// Chat: at most this many messages per window per participant.
const CHAT_BURST: usize = 5;
const CHAT_WINDOW_SECS: u64 = 10;

/// Per-session state the controls need.
pub(crate) struct Seat {
    pub id: ParticipantId,
    pub meeting: String,
    pub point: String,
    pub name: String,
    pub role: Role,
    chat_times: VecDeque<Instant>,
    /// Last link quality told to the chair, and when.
    last_quality: Option<(Quality, Transport, Instant)>,
    /// Running link figures for the attendance record.
    link: LinkTotals,
}

#[derive(Debug, Default)]
struct LinkTotals {
    samples: u32,
    rtt_samples: u32,
    rtt_sum: f64,
    loss_sum: f64,
    loss_max: f64,
}

impl Seat {
    pub fn link_summary(&self) -> LinkSummary {
        let l = &self.link;
        LinkSummary {
            samples: l.samples,
            rtt_ms_mean: (l.rtt_samples > 0).then(|| l.rtt_sum / f64::from(l.rtt_samples)),
            loss_mean: if l.samples > 0 {
                l.loss_sum / f64::from(l.samples)
            } else {
                0.0
            },
            loss_max: l.loss_max,
        }
    }
}

impl Seat {
    pub fn new(
        id: ParticipantId,
        meeting: String,
        point: String,
        name: String,
        role: Role,
    ) -> Self {
        Self {
            id,
            meeting,
            point,
            name,
            role,
            chat_times: VecDeque::new(),
            last_quality: None,
            link: LinkTotals::default(),
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A refusal to send back: code and plain-language message.
pub(crate) type Refusal = (ErrorCode, String);

/// Handles one control-plane message of a joined participant. Returns what to send back to the
/// sender only (everyone else hears through the room).
pub(crate) fn handle(
    inner: &Inner,
    seat: &mut Seat,
    msg: ClientMessage,
) -> Result<Vec<ServerMessage>, Refusal> {
    let kind = match &msg {
        // The audit log must tell muting from unmuting.
        ClientMessage::SetMute { muted: true, .. } => "set_mute:muted",
        ClientMessage::SetMute { muted: false, .. } => "set_mute:unmuted",
        other => other.kind(),
    };
    let action = match msg {
        ClientMessage::RaiseHand { text, .. } => Action::RaiseHand { text },
        ClientMessage::LowerHand { point, .. } => Action::LowerHand { point },
        ClientMessage::GrantFloor { point, .. } => Action::Grant { point },
        ClientMessage::RevokeFloor { .. } => Action::Revoke,
        ClientMessage::NextFloor { .. } => Action::Next,
        ClientMessage::SetMute { point, muted, .. } => Action::SetMute { point, muted },
        ClientMessage::StartRollCall { .. } => Action::StartRollCall,
        ClientMessage::EndRollCall { .. } => Action::EndRollCall,
        ClientMessage::AnswerRollCall { .. } => Action::AnswerRollCall,
        ClientMessage::SetDiscussion { on, .. } => Action::SetDiscussion(on),
        ClientMessage::AllowShare { allowed, .. } => Action::AllowShare(allowed),
        ClientMessage::SendUp { point, .. } => Action::SendUp { point },
        ClientMessage::RaiseHandUp { point, text, .. } => Action::RaiseHandUp { point, text },
        ClientMessage::LowerHandUp { .. } => Action::LowerHandUp,
        ClientMessage::Chat { to, text, .. } => return chat(inner, seat, to, text),
        ClientMessage::Viewport { visible, .. } => return viewport(inner, seat, &visible),
        ClientMessage::EndMeeting { .. } => return end_meeting(inner, seat),
        ClientMessage::PublishState { audio, video, .. } => {
            return crate::media_state::declare(inner, seat, MediaState { audio, video });
        }
        ClientMessage::ExtendMeeting { minutes, .. } => {
            return extend_meeting(inner, seat, minutes);
        }
        _ => return Ok(Vec::new()),
    };
    let answering = matches!(action, Action::AnswerRollCall);
    let target = match &action {
        Action::Grant { point } => Some(point.clone()),
        Action::LowerHand { point } | Action::SetMute { point, .. } => point.clone(),
        _ => None,
    };
    let at = now_ms();
    {
        let mut rooms = inner.rooms();
        let room = rooms.get_mut(&seat.meeting).ok_or((
            ErrorCode::InvalidState,
            "the meeting is not running".to_owned(),
        ))?;
        let actor = Actor {
            point: &seat.point,
            role: seat.role,
        };
        let change = room
            .apply_control(actor, action.clone(), at)
            .map_err(|e| refusal(&seat.point, &action, e))?;
        room.broadcast(&room.state_message(), None);
        if change.routing {
            apply_routing(inner, room);
        }
    }
    tracing::info!(meeting = %seat.meeting, point = %seat.point, ?action, "control");
    inner
        .observer
        .control(&seat.meeting, &seat.point, kind, target.as_deref());
    if answering {
        inner
            .observer
            .roll_call_answer(&seat.meeting, &seat.point, at);
    }
    Ok(Vec::new())
}

fn refusal(point: &str, action: &Action, e: ControlError) -> Refusal {
    // Refused control actions are worth an operator's look (a point trying chair actions).
    tracing::warn!(%point, ?action, ?e, "control refused");
    match e {
        ControlError::Forbidden(m) => (ErrorCode::Forbidden, m.to_owned()),
        ControlError::NotInRoom(p) => (
            ErrorCode::NotInRoom,
            format!(
                "point \"{}\" is not connected to this meeting",
                p.chars().take(40).collect::<String>()
            ),
        ),
        ControlError::InvalidState(m) => (ErrorCode::InvalidState, m.to_owned()),
        ControlError::RateLimited => (
            ErrorCode::RateLimited,
            "too many hand raises; wait a moment".to_owned(),
        ),
    }
}

fn chat(
    inner: &Inner,
    seat: &mut Seat,
    to: crate::protocol::ChatTarget,
    text: String,
) -> Result<Vec<ServerMessage>, Refusal> {
    let now = Instant::now();
    while seat
        .chat_times
        .front()
        .is_some_and(|t| now.duration_since(*t).as_secs() >= CHAT_WINDOW_SECS)
    {
        seat.chat_times.pop_front();
    }
    if seat.chat_times.len() >= CHAT_BURST {
        tracing::warn!(point = %seat.point, "chat rate limited");
        return Err((
            ErrorCode::RateLimited,
            "too many chat messages; wait a moment".to_owned(),
        ));
    }
    seat.chat_times.push_back(now);
    let at = now_ms();
    let msg = ServerMessage::Chat {
        v: PROTOCOL_VERSION,
        from: seat.id.to_string(),
        from_point: seat.point.clone(),
        from_name: seat.name.clone(),
        to,
        text: text.clone(),
        at,
    };
    {
        let mut rooms = inner.rooms();
        let room = rooms.get_mut(&seat.meeting).ok_or((
            ErrorCode::InvalidState,
            "the meeting is not running".to_owned(),
        ))?;
        room.record_chat(msg.clone());
        match to {
            crate::protocol::ChatTarget::All => room.broadcast(&msg, None),
            crate::protocol::ChatTarget::Chair => {
                room.send_to_chairs(&msg);
                if seat.role != Role::Chair {
                    room.send_to(seat.id, msg.clone());
                }
            }
        }
    }
    inner.observer.chat(
        &seat.meeting,
        &seat.point,
        to == crate::protocol::ChatTarget::Chair,
        &text,
        at,
    );
    Ok(Vec::new())
}

fn viewport(inner: &Inner, seat: &Seat, visible: &[String]) -> Result<Vec<ServerMessage>, Refusal> {
    if seat.role != Role::Chair {
        return Err((
            ErrorCode::Forbidden,
            "only the chair reports a viewport".to_owned(),
        ));
    }
    let ids: BTreeSet<ParticipantId> = visible
        .iter()
        .filter_map(|s| s.strip_prefix('p')?.parse().ok().map(ParticipantId))
        .collect();
    let mut rooms = inner.rooms();
    if let Some(room) = rooms.get_mut(&seat.meeting) {
        room.viewport = Some(ids);
        apply_routing(inner, room);
    }
    Ok(Vec::new())
}

fn end_meeting(inner: &Inner, seat: &Seat) -> Result<Vec<ServerMessage>, Refusal> {
    if seat.role != Role::Chair {
        tracing::warn!(point = %seat.point, "end_meeting refused");
        return Err((
            ErrorCode::Forbidden,
            "only the chair may end the meeting".to_owned(),
        ));
    }
    let rooms = inner.rooms();
    if let Some(room) = rooms.get(&seat.meeting) {
        tracing::info!(meeting = %seat.meeting, "meeting ended by the chair");
        // Links refused first, then everyone told: nobody rejoins an ended meeting.
        inner.auth.end_meeting(&seat.meeting);
        inner.observer.meeting_ended(&seat.meeting, &seat.point);
        inner
            .observer
            .control(&seat.meeting, &seat.point, "end_meeting", None);
        room.broadcast(
            &ServerMessage::MeetingEnded {
                v: PROTOCOL_VERSION,
            },
            None,
        );
        room.broadcast(
            &ServerMessage::Bye {
                v: PROTOCOL_VERSION,
                code: crate::protocol::ByeCode::MeetingEnded,
                reason: "meeting ended".into(),
                retry_after_ms: None,
            },
            None,
        );
    }
    Ok(Vec::new())
}

/// How much longer the chair may ask for at once.
pub const EXTENSIONS: [u32; 2] = [15, 30];

fn extend_meeting(inner: &Inner, seat: &Seat, minutes: u32) -> Result<Vec<ServerMessage>, Refusal> {
    if seat.role != Role::Chair {
        tracing::warn!(point = %seat.point, "extend_meeting refused");
        return Err((
            ErrorCode::Forbidden,
            "only the chair may extend the meeting".to_owned(),
        ));
    }
    if !EXTENSIONS.contains(&minutes) {
        return Err((
            ErrorCode::BadMessage,
            "\"minutes\" must be 15 or 30".to_owned(),
        ));
    }
    let ends_at = inner
        .auth
        .extend_meeting(&seat.meeting, minutes)
        .map_err(|why| (ErrorCode::InvalidState, why))?;
    tracing::info!(meeting = %seat.meeting, minutes, ends_at, "meeting extended by the chair");
    inner
        .observer
        .meeting_extended(&seat.meeting, &seat.point, minutes, ends_at);
    if let Some(room) = inner.rooms().get(&seat.meeting) {
        room.broadcast(
            &ServerMessage::MeetingExtended {
                v: PROTOCOL_VERSION,
                ends_at: ends_at.saturating_mul(1000),
                minutes,
            },
            None,
        );
    }
    Ok(Vec::new())
}

impl crate::Signaling {
    /// Tells the chairs of `meeting` that it ends by itself at `ends_at` (Unix seconds), in
    /// `minutes_left` minutes, unless extended. How many chairs were told.
    pub fn warn_end(&self, meeting: &str, ends_at: u64, minutes_left: u32) -> usize {
        let rooms = self.inner.rooms();
        let Some(room) = rooms.get(meeting) else {
            return 0;
        };
        let chairs = room
            .members
            .values()
            .filter(|m| m.info.role == Role::Chair)
            .count();
        room.send_to_chairs(&ServerMessage::MeetingEnding {
            v: PROTOCOL_VERSION,
            ends_at: ends_at.saturating_mul(1000),
            minutes_left,
        });
        chairs
    }

    /// Ends a meeting that reached its planned end, for everyone connected: `meeting_ended`,
    /// then `bye` with the code `schedule_ended` (not the chair's doing). How many were
    /// connected.
    pub fn end_by_schedule(&self, meeting: &str, reason: &str) -> usize {
        let rooms = self.inner.rooms();
        let Some(room) = rooms.get(meeting) else {
            return 0;
        };
        room.broadcast(
            &ServerMessage::MeetingEnded {
                v: PROTOCOL_VERSION,
            },
            None,
        );
        room.broadcast(
            &ServerMessage::Bye {
                v: PROTOCOL_VERSION,
                code: crate::protocol::ByeCode::ScheduleEnded,
                reason: reason.to_owned(),
                retry_after_ms: None,
            },
            None,
        );
        room.len()
    }
}

/// The participant's own microphone started or stopped carrying speech.
pub(crate) fn speaking(inner: &Inner, seat: &Seat, speaking: bool) {
    let mut rooms = inner.rooms();
    let Some(room) = rooms.get_mut(&seat.meeting) else {
        return;
    };
    // A closed microphone reaches nobody: it is not an active speaker either.
    if speaking && seat.role.acts_as_point() && !room.controls.audio_open(&seat.point) {
        return;
    }
    let (changed, routing) = room.controls.speaking(&seat.point, speaking);
    if changed {
        room.broadcast(&room.speakers_message(), None);
    }
    if routing {
        apply_routing(inner, room);
    }
}

/// The media plane measured this participant's link: tell the chair (and the participant) when
/// the class changes, and every few seconds so a newly joined chair learns it too.
pub(crate) fn link_quality(
    inner: &Inner,
    seat: &mut Seat,
    rtt_ms: Option<u32>,
    loss: f32,
    over_tcp: bool,
) {
    let l = &mut seat.link;
    l.samples += 1;
    if let Some(r) = rtt_ms {
        l.rtt_samples += 1;
        l.rtt_sum += f64::from(r);
    }
    l.loss_sum += f64::from(loss);
    l.loss_max = l.loss_max.max(f64::from(loss));
    let quality = Quality::classify(rtt_ms, loss);
    let transport = if over_tcp {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    let now = Instant::now();
    let due = match seat.last_quality {
        Some((q, t, at)) => {
            q != quality
                || t != transport
                || now.duration_since(at).as_secs() >= QUALITY_REFRESH_SECS
        }
        None => true,
    };
    if !due {
        return;
    }
    seat.last_quality = Some((quality, transport, now));
    let msg = ServerMessage::LinkQuality {
        v: PROTOCOL_VERSION,
        participant: seat.id.to_string(),
        quality,
        rtt_ms,
        loss: (f64::from(loss) * 1000.0).round() / 1000.0,
        transport,
    };
    let rooms = inner.rooms();
    if let Some(room) = rooms.get(&seat.meeting) {
        room.send_to_chairs(&msg);
        if seat.role != Role::Chair {
            room.send_to(seat.id, msg);
        }
    }
}

pub(crate) fn apply_routing(inner: &Inner, room: &Room) {
    for (subscriber, subs) in room.routing() {
        inner.sfu.set_receives(subscriber, subs);
    }
}
