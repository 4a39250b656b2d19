//! [`JoinAuthorizer`]: the signaling layer's [`Authorizer`], backed by join tokens and the
//! meeting directory.
//!
//! A join is granted when, in order: the token is correctly signed and not expired; its meeting
//! is the permanent test room (special-cased: it is not stored, see [`test_room`]) or a stored
//! meeting; the seat named in the token exists in that meeting with the token's role; the
//! token's id is the seat's current one (re-issuing a link revokes the old one); and the meeting
//! is open or live. Each refusal has its own plain-language message for the point's staff.

use std::sync::Arc;
use std::time::SystemTime;

use signaling::auth::{AuthError, Authorizer, Grant, InvitedPoint};
use signaling::protocol::Role;

use crate::directory::{Directory, Entry};
use crate::links;
use crate::meetings::{self, MeetingState};
use crate::test_room;
use crate::timefmt;
use crate::tokens::{JoinClaims, JoinTokens, VerifyError, unix_secs};

/// Why a join was refused. The text is shown to the point's staff: Vietnamese, then English.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error(transparent)]
    Token(#[from] VerifyError),
    #[error(
        "Liên kết này đã được thay bằng liên kết mới. Hãy dùng liên kết mới nhất mà cán bộ kỹ \
         thuật gửi. / This link was replaced by a new one. Use the latest link from the IT staff."
    )]
    Revoked,
    #[error(
        "Điểm cầu này không được mời vào cuộc họp. / This point is not invited to the meeting."
    )]
    NotInvited,
    #[error(
        "Điểm cầu này đã bị ngừng sử dụng trong danh bạ. Hãy liên hệ cán bộ kỹ thuật. / This \
         point was disabled in the directory. Contact the IT staff."
    )]
    PointDisabled,
    #[error(
        "Cuộc họp chưa mở. Có thể vào từ {0}. / The meeting is not open yet. Joins open at {0}."
    )]
    NotOpenYet(String),
    #[error("Cuộc họp đã bị hủy. / The meeting was cancelled.")]
    Cancelled,
    #[error("Cuộc họp đã kết thúc. / The meeting has ended.")]
    Ended,
    #[error(
        "Phòng thử nghiệm không có giờ kết thúc để gia hạn. / The test room has no planned end \
         to extend."
    )]
    NoSchedule,
    #[error(
        "Không thể gia hạn: cuộc họp dài tối đa 24 giờ. / Cannot extend: a meeting lasts at most \
         24 hours."
    )]
    TooLong,
}

impl From<Refusal> for AuthError {
    fn from(r: Refusal) -> AuthError {
        match r {
            Refusal::Token(e) => e.into(),
            Refusal::Ended => AuthError::Expired(r.to_string()),
            other => AuthError::Invalid(other.to_string()),
        }
    }
}

/// Turns a join token into a [`Grant`].
#[derive(Debug, Clone)]
pub struct JoinAuthorizer {
    tokens: JoinTokens,
    directory: Arc<Directory>,
}

impl JoinAuthorizer {
    /// An authorizer for the test room only (no stored meetings).
    pub fn new(tokens: JoinTokens) -> JoinAuthorizer {
        JoinAuthorizer::with_directory(tokens, Arc::new(Directory::default()))
    }

    /// An authorizer for the test room and the meetings in `directory`.
    pub fn with_directory(tokens: JoinTokens, directory: Arc<Directory>) -> JoinAuthorizer {
        JoinAuthorizer { tokens, directory }
    }

    /// Whether `token` was signed by this server (whatever its meeting or seat): an upstream
    /// link carrying one points back here, and a meeting linked to it would loop.
    pub fn signed_here(&self, token: &str) -> bool {
        self.tokens.verify_signature(token).is_ok()
    }

    /// What a token is for and where its meeting stands at `now`, whether or not joins are
    /// open yet: the pre-join page's check ([`crate::api::join`]). Refused only when the token
    /// itself is no good (forged, expired, replaced, for a seat that is gone).
    ///
    /// For a stored meeting the token's `exp` is not what decides: the meeting's end is (the
    /// chair may have extended it after the link was sent); an ended meeting is [`Refusal::Ended`]
    /// from [`JoinAuthorizer::authorize_at`]. A token of a meeting no longer in the directory
    /// (ended more than a day ago) is expired when its `exp` passed.
    pub fn check_at(&self, token: &str, now: SystemTime) -> Result<Checked, Refusal> {
        let claims = self.tokens.verify_signature(token)?;
        let expired = unix_secs(now) >= claims.exp;
        if claims.meeting == test_room::MEETING_ID {
            if expired {
                return Err(VerifyError::Expired.into());
            }
            return test_room_grant(claims)
                .map(Checked::TestRoom)
                .ok_or(Refusal::Token(VerifyError::Invalid));
        }
        let Some(entry) = self.directory.get(&claims.meeting) else {
            return Err(Refusal::Token(if expired {
                VerifyError::Expired
            } else {
                VerifyError::Invalid
            }));
        };
        let seat = entry.seats.get(&claims.point).ok_or(Refusal::NotInvited)?;
        if links::parse_role(&seat.role) != Some(claims.role) {
            return Err(Refusal::NotInvited);
        }
        if seat.jti != claims.jti {
            return Err(Refusal::Revoked);
        }
        if seat
            .point_code
            .as_ref()
            .is_some_and(|c| entry.disabled_points.contains(c))
        {
            return Err(Refusal::PointDisabled);
        }
        Ok(Checked::Stored {
            seat: seat.seat.clone(),
            role: claims.role,
            entry,
        })
    }

    /// The decision at a given time (the trait method uses the wall clock).
    pub fn authorize_at(&self, token: &str, now: SystemTime) -> Result<Grant, Refusal> {
        let (entry, seat_id, role) = match self.check_at(token, now)? {
            Checked::TestRoom(grant) => return Ok(grant),
            Checked::Stored { entry, seat, role } => (entry, seat, role),
        };
        let m = &entry.meeting;
        let seat = &entry.seats[&seat_id];
        let now = i64::try_from(unix_secs(now)).unwrap_or(i64::MAX);
        match m.state(now) {
            MeetingState::Open | MeetingState::Live => {}
            MeetingState::Scheduled => {
                return Err(Refusal::NotOpenYet(timefmt::local_display(m.opens_at())));
            }
            MeetingState::Cancelled => return Err(Refusal::Cancelled),
            MeetingState::Ended => return Err(Refusal::Ended),
        }
        Ok(Grant {
            meeting_id: m.id.clone(),
            meeting_title: m.title.clone(),
            point: seat.seat.clone(),
            name: seat.name.clone(),
            role,
            capacity: usize::try_from(m.capacity).unwrap_or(0),
        })
    }
}

/// A token that passed [`JoinAuthorizer::check_at`].
#[derive(Debug, Clone)]
pub enum Checked {
    /// A seat of the permanent test room, always open.
    TestRoom(Grant),
    /// A seat of a stored meeting, as the directory has it now.
    Stored {
        entry: Arc<Entry>,
        seat: String,
        role: Role,
    },
}

impl Authorizer for JoinAuthorizer {
    fn authorize(&self, token: &str) -> Result<Grant, AuthError> {
        self.authorize_at(token, SystemTime::now())
            .map_err(AuthError::from)
    }

    /// The chair ended a stored meeting: the directory marks it ended now, so its links are
    /// refused before the database write lands. The permanent test room cannot end.
    fn end_meeting(&self, meeting: &str) {
        let now = crate::db::unix_now();
        self.directory.update(meeting, |e| {
            if e.meeting.state(now) != MeetingState::Cancelled {
                e.meeting.status = "ended".to_owned();
                e.meeting.ended_at = Some(e.meeting.ended_at.unwrap_or(now).min(now));
            }
        });
    }

    /// The chair asks for more time: the directory's copy gets the new planned end at once (the
    /// closer and the links follow it), the database when the recorder writes it. Open or live
    /// stored meetings only, and no longer than [`meetings::MAX_DURATION_SECS`] in all.
    fn extend_meeting(&self, meeting: &str, minutes: u32) -> Result<u64, String> {
        let now = crate::db::unix_now();
        let entry = self
            .directory
            .get(meeting)
            .ok_or_else(|| Refusal::NoSchedule.to_string())?;
        let m = &entry.meeting;
        if !m.state(now).joinable() {
            return Err(Refusal::Ended.to_string());
        }
        let ends_at = m.ends_at + i64::from(minutes) * 60;
        if ends_at - m.starts_at > meetings::MAX_DURATION_SECS {
            return Err(Refusal::TooLong.to_string());
        }
        self.directory.update(meeting, |e| {
            e.meeting.ends_at = e.meeting.ends_at.max(ends_at)
        });
        Ok(u64::try_from(ends_at).unwrap_or(0))
    }

    /// The points invited to a meeting, for the chair's grid: the stored meeting's point and
    /// relay seats in seat-id order, or the test room's listed points.
    fn invited(&self, meeting: &str) -> Vec<InvitedPoint> {
        if meeting == test_room::MEETING_ID {
            return test_room::POINTS
                .iter()
                .map(|p| InvitedPoint {
                    point: p.code.to_owned(),
                    name: p.name.to_owned(),
                })
                .collect();
        }
        let Some(entry) = self.directory.get(meeting) else {
            return Vec::new();
        };
        let mut points: Vec<InvitedPoint> = entry
            .seats
            .values()
            // A relay seat takes part as a point (a province behind it): the chair's grid shows
            // it, connected or not.
            .filter(|s| s.role == "point" || s.role == "relay")
            .map(|s| InvitedPoint {
                point: s.seat.clone(),
                name: s.name.clone(),
            })
            .collect();
        points.sort_by(|a, b| a.point.cmp(&b.point));
        points
    }
}

/// The grant for correctly signed test-room claims, or `None` when the seat does not exist (the
/// chair and `test-point-1` .. `test-point-500` do) or has another role than the token's.
fn test_room_grant(claims: JoinClaims) -> Option<Grant> {
    if test_room::seat_role(&claims.point)? != claims.role {
        return None;
    }
    Some(Grant {
        meeting_id: claims.meeting,
        meeting_title: test_room::TITLE.to_owned(),
        point: claims.point,
        name: claims.name,
        role: claims.role,
        capacity: test_room::CAPACITY,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::secret::Secret;

    fn setup() -> (JoinTokens, JoinAuthorizer) {
        let tokens = JoinTokens::new(&Secret::generate());
        (tokens.clone(), JoinAuthorizer::new(tokens))
    }

    fn sign(tokens: &JoinTokens, meeting: &str, point: &str, role: Role) -> String {
        let claims = JoinClaims::new(
            meeting,
            point,
            role,
            "Tên",
            SystemTime::now(),
            Duration::from_secs(60),
        );
        tokens.sign(&claims).unwrap()
    }

    #[test]
    fn invited_lists_the_test_rooms_points_and_nothing_for_unknown_meetings() {
        let (_, auth) = setup();
        let invited = auth.invited(test_room::MEETING_ID);
        assert_eq!(
            invited.iter().map(|i| i.point.as_str()).collect::<Vec<_>>(),
            ["test-point-1", "test-point-2", "test-point-3"]
        );
        assert_eq!(invited[0].name, "Điểm cầu thử nghiệm 1");
        assert!(auth.invited("no-such-meeting").is_empty());
    }

    #[test]
    fn test_room_links_grant_their_seats() {
        let (tokens, auth) = setup();
        let links = test_room::links(&tokens, "http://localhost:8443", SystemTime::now()).unwrap();
        let chair_token = links.chair.split_once("t=").unwrap().1;
        let grant = auth.authorize(chair_token).unwrap();
        assert_eq!(
            grant,
            Grant {
                meeting_id: "test-room".into(),
                meeting_title: "Phòng thử nghiệm".into(),
                point: "test-chair".into(),
                name: "Điểm cầu chủ trì (thử nghiệm)".into(),
                role: Role::Chair,
                capacity: 500,
            }
        );
        for (i, link) in links.points.iter().enumerate() {
            let grant = auth.authorize(link.split_once("t=").unwrap().1).unwrap();
            assert_eq!(grant.role, Role::Point);
            assert_eq!(grant.point, format!("test-point-{}", i + 1));
        }
    }

    #[test]
    fn unknown_meeting_or_point_is_invalid() {
        let (tokens, auth) = setup();
        for token in [
            sign(&tokens, "other-meeting", "test-chair", Role::Chair),
            sign(&tokens, "test-room", "test-point-0", Role::Point),
            sign(&tokens, "test-room", "test-point-501", Role::Point),
            sign(&tokens, "test-room", "test-point-007", Role::Point),
            sign(&tokens, "test-room", "test-point-x", Role::Point),
            // A point's token claiming the chair's role.
            sign(&tokens, "test-room", "test-point-1", Role::Chair),
        ] {
            assert!(matches!(auth.authorize(&token), Err(AuthError::Invalid(_))));
        }
    }

    #[test]
    fn load_test_points_up_to_five_hundred_are_granted() {
        let (tokens, auth) = setup();
        for n in [4, 9, 300, 500] {
            let code = test_room::point_code(n);
            let claims = JoinClaims::new(
                "test-room",
                &code,
                Role::Point,
                &test_room::point_name(n),
                SystemTime::now(),
                Duration::from_secs(60),
            );
            let grant = auth.authorize(&tokens.sign(&claims).unwrap()).unwrap();
            assert_eq!(grant.point, code);
            assert_eq!(grant.name, format!("Điểm cầu thử nghiệm {n}"));
            assert_eq!(grant.role, Role::Point);
            assert_eq!(grant.capacity, 500);
        }
        // A load-test point cannot claim the chair's role.
        let chair = sign(&tokens, "test-room", "test-point-400", Role::Chair);
        assert!(matches!(auth.authorize(&chair), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn expired_and_garbage_tokens_are_refused_with_their_kind() {
        let (tokens, auth) = setup();
        let token = sign(&tokens, "test-room", "test-point-1", Role::Point);
        let later = SystemTime::now() + Duration::from_secs(120);
        assert_eq!(
            auth.authorize_at(&token, later),
            Err(Refusal::Token(VerifyError::Expired))
        );
        assert!(matches!(
            auth.authorize("garbage"),
            Err(AuthError::Invalid(_))
        ));
    }
}
