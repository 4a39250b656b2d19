//! What each participant publishes, as its client declares it (`publish_state`).
//!
//! A hall whose PC has no camera (or no microphone) never publishes one, and a hall with no
//! device at all never sends a `publish_offer`: from the media plane alone the chair cannot tell
//! "no camera" from "still connecting". So the client says what it has; the server keeps it in
//! the roster entry (`media`) and tells everyone when it changes (`participant_media`). Each
//! change is a message to every member, so a seat may change it only a few times per window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sfu::ParticipantId;

use crate::Inner;
use crate::meeting::{Refusal, Seat};
use crate::protocol::{ErrorCode, MediaState, PROTOCOL_VERSION, Role, ServerMessage};
use crate::room::Room;

/// Changes of one seat's declared media allowed per [`CHANGE_WINDOW`]: a device plugged in or
/// out now and then, never a stream of broadcasts to a 150-point room.
pub const CHANGE_BURST: usize = 5;
pub const CHANGE_WINDOW: Duration = Duration::from_secs(10);

/// Recent changes of one seat's declared media (a sliding window).
#[derive(Debug, Default)]
pub(crate) struct ChangeLimiter {
    times: VecDeque<Instant>,
}

impl ChangeLimiter {
    /// Whether one more change may go now; counts it when it may.
    fn allow(&mut self, now: Instant) -> bool {
        while self
            .times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= CHANGE_WINDOW)
        {
            self.times.pop_front();
        }
        if self.times.len() >= CHANGE_BURST {
            return false;
        }
        self.times.push_back(now);
        true
    }
}

/// Why a declaration was not recorded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MediaRefused {
    /// Not a member of this room (it left meanwhile).
    NotMember,
    /// Too many changes in [`CHANGE_WINDOW`].
    RateLimited,
}

impl Room {
    /// Records what `id` publishes. Returns the `participant_media` to tell everyone when it
    /// changed, `None` when it did not (a repeat costs nothing and is not counted).
    pub(crate) fn set_media(
        &mut self,
        id: ParticipantId,
        media: MediaState,
        now: Instant,
    ) -> Result<Option<ServerMessage>, MediaRefused> {
        let m = self.members.get_mut(&id).ok_or(MediaRefused::NotMember)?;
        if m.info.media == Some(media) {
            return Ok(None);
        }
        if !m.media_changes.allow(now) {
            return Err(MediaRefused::RateLimited);
        }
        m.info.media = Some(media);
        Ok(Some(ServerMessage::ParticipantMedia {
            v: PROTOCOL_VERSION,
            participant: id.to_string(),
            media,
        }))
    }
}

/// `publish_state` of a joined participant: recorded, and told to everyone when it changed.
pub(crate) fn declare(
    inner: &Inner,
    seat: &Seat,
    media: MediaState,
) -> Result<Vec<ServerMessage>, Refusal> {
    if seat.role == Role::Observer {
        return Err((ErrorCode::Forbidden, "observers do not publish".to_owned()));
    }
    let mut rooms = inner.rooms();
    let room = rooms.get_mut(&seat.meeting).ok_or((
        ErrorCode::InvalidState,
        "the meeting is not running".to_owned(),
    ))?;
    match room.set_media(seat.id, media, Instant::now()) {
        Ok(Some(msg)) => {
            tracing::debug!(point = %seat.point, audio = media.audio, video = media.video, "publish state");
            room.broadcast(&msg, None);
            Ok(Vec::new())
        }
        Ok(None) => Ok(Vec::new()),
        Err(MediaRefused::NotMember) => Err((
            ErrorCode::InvalidState,
            "this seat is no longer in the meeting".to_owned(),
        )),
        Err(MediaRefused::RateLimited) => {
            tracing::warn!(point = %seat.point, "publish_state rate limited");
            Err((
                ErrorCode::RateLimited,
                format!(
                    "\"publish_state\" may change at most {CHANGE_BURST} times in {} s; wait a \
                     moment",
                    CHANGE_WINDOW.as_secs()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::auth::Grant;

    fn grant(point: &str, role: Role) -> Grant {
        Grant {
            meeting_id: "m".into(),
            meeting_title: "M".into(),
            point: point.into(),
            name: format!("Điểm {point}"),
            role,
            capacity: 0,
        }
    }

    const NO_CAMERA: MediaState = MediaState {
        audio: true,
        video: false,
    };

    #[test]
    fn a_change_is_told_to_everyone_and_kept_in_the_roster_a_repeat_is_not() {
        let mut room = Room::new("m".into(), "M".into(), 0);
        let (tx, _rx) = mpsc::channel(8);
        room.join(ParticipantId(2), &grant("a", Role::Point), tx)
            .unwrap();
        let now = Instant::now();
        let told = room.set_media(ParticipantId(2), NO_CAMERA, now).unwrap();
        assert_eq!(
            told,
            Some(ServerMessage::ParticipantMedia {
                v: PROTOCOL_VERSION,
                participant: "p2".into(),
                media: NO_CAMERA,
            })
        );
        assert_eq!(
            room.member_info(ParticipantId(2)).unwrap().media,
            Some(NO_CAMERA)
        );
        assert_eq!(room.set_media(ParticipantId(2), NO_CAMERA, now), Ok(None));
        assert_eq!(
            room.set_media(ParticipantId(9), NO_CAMERA, now),
            Err(MediaRefused::NotMember)
        );
    }

    #[test]
    fn changes_beyond_the_burst_are_refused_until_the_window_passes() {
        let mut room = Room::new("m".into(), "M".into(), 0);
        let (tx, _rx) = mpsc::channel(8);
        room.join(ParticipantId(2), &grant("a", Role::Point), tx)
            .unwrap();
        let start = Instant::now();
        let flip = |i: usize| MediaState {
            audio: true,
            video: i.is_multiple_of(2),
        };
        for i in 0..CHANGE_BURST {
            assert!(matches!(
                room.set_media(ParticipantId(2), flip(i), start),
                Ok(Some(_))
            ));
        }
        let refused = room.set_media(ParticipantId(2), flip(CHANGE_BURST), start);
        assert_eq!(refused, Err(MediaRefused::RateLimited));
        let later = start + CHANGE_WINDOW;
        assert!(matches!(
            room.set_media(ParticipantId(2), flip(CHANGE_BURST), later),
            Ok(Some(_))
        ));
    }
}
