//! [`JoinAuthorizer`]: the signaling layer's [`Authorizer`], backed by join tokens and the
//! meeting directory.
//!
//! Only the test room exists for now; when meetings are stored, the lookup below becomes a
//! directory query and the rest stays.

use std::time::SystemTime;

use signaling::auth::{AuthError, Authorizer, Grant};

use crate::test_room;
use crate::tokens::{JoinClaims, JoinTokens, VerifyError};

/// Turns a join token into a [`Grant`].
#[derive(Debug, Clone)]
pub struct JoinAuthorizer {
    tokens: JoinTokens,
}

impl JoinAuthorizer {
    pub fn new(tokens: JoinTokens) -> JoinAuthorizer {
        JoinAuthorizer { tokens }
    }

    /// The decision at a given time (the trait method uses the wall clock).
    pub fn authorize_at(&self, token: &str, now: SystemTime) -> Result<Grant, VerifyError> {
        let claims = self.tokens.verify(token, now)?;
        grant_for(claims).ok_or(VerifyError::Invalid)
    }
}

impl Authorizer for JoinAuthorizer {
    fn authorize(&self, token: &str) -> Result<Grant, AuthError> {
        self.authorize_at(token, SystemTime::now())
            .map_err(AuthError::from)
    }
}

/// The grant for correctly signed claims, or `None` when the meeting or the point does not exist
/// (or the point's role changed since the token was issued).
fn grant_for(claims: JoinClaims) -> Option<Grant> {
    if claims.meeting != test_room::MEETING_ID {
        return None;
    }
    let seat = test_room::find_point(&claims.point)?;
    if seat.role != claims.role {
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

    use signaling::protocol::Role;

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
            sign(&tokens, "test-room", "test-point-9", Role::Point),
            // A point's token claiming the chair's role.
            sign(&tokens, "test-room", "test-point-1", Role::Chair),
        ] {
            assert!(matches!(auth.authorize(&token), Err(AuthError::Invalid(_))));
        }
    }

    #[test]
    fn expired_and_garbage_tokens_are_refused_with_their_kind() {
        let (tokens, auth) = setup();
        let token = sign(&tokens, "test-room", "test-point-1", Role::Point);
        let later = SystemTime::now() + Duration::from_secs(120);
        assert_eq!(auth.authorize_at(&token, later), Err(VerifyError::Expired));
        assert!(matches!(
            auth.authorize("garbage"),
            Err(AuthError::Invalid(_))
        ));
    }
}
