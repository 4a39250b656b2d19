//! The permanent test room: a meeting that always exists, so IT staff can check a point's camera,
//! microphone and network before a real meeting, with no admin work.
//!
//! One chair and three points; its links are printed at every start (`hoinghi serve`) and by
//! `hoinghi links test-room`. They are valid for a year, and every start issues fresh ones (older
//! ones keep working until they expire or the secret is deleted).

use std::time::{Duration, SystemTime};

use serde::Serialize;
use signaling::protocol::Role;

use crate::tokens::{JoinClaims, JoinTokens, SignError};

pub const MEETING_ID: &str = "test-room";
pub const TITLE: &str = "Phòng thử nghiệm";
/// Participant cap of the test room. Large enough for a whole province to test at once, bounded
/// so a leaked link cannot fill the server.
pub const CAPACITY: usize = 500;
/// Lifetime of the test room's links.
pub const TOKEN_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// One seat of the test room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestPoint {
    /// Point code, carried in the token.
    pub code: &'static str,
    /// Display name.
    pub name: &'static str,
    pub role: Role,
}

pub const CHAIR: TestPoint = TestPoint {
    code: "test-chair",
    name: "Điểm cầu chủ trì (thử nghiệm)",
    role: Role::Chair,
};

pub const POINTS: [TestPoint; 3] = [
    TestPoint {
        code: "test-point-1",
        name: "Điểm cầu thử nghiệm 1",
        role: Role::Point,
    },
    TestPoint {
        code: "test-point-2",
        name: "Điểm cầu thử nghiệm 2",
        role: Role::Point,
    },
    TestPoint {
        code: "test-point-3",
        name: "Điểm cầu thử nghiệm 3",
        role: Role::Point,
    },
];

/// Every seat of the test room, chair first.
pub fn seats() -> impl Iterator<Item = &'static TestPoint> {
    std::iter::once(&CHAIR).chain(POINTS.iter())
}

/// The seat with this point code, if any.
pub fn find_point(code: &str) -> Option<&'static TestPoint> {
    seats().find(|p| p.code == code)
}

/// The test room's join links. Serializes as `{"chair": URL, "points": [URL, URL, URL]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestRoomLinks {
    pub chair: String,
    pub points: Vec<String>,
}

impl TestRoomLinks {
    /// `(display name, link)` for every seat, chair first, for a human-readable listing.
    pub fn labeled(&self) -> Vec<(&'static str, &str)> {
        std::iter::once((CHAIR.name, self.chair.as_str()))
            .chain(
                POINTS
                    .iter()
                    .map(|p| p.name)
                    .zip(self.points.iter().map(String::as_str)),
            )
            .collect()
    }
}

/// The join link for `token` on the server at `base_url` (scheme://host[:port], no path).
///
/// Appending `&autojoin=1` to a link puts the web client in kiosk mode (it joins without the
/// pre-join screen), for unattended room PCs.
pub fn join_link(base_url: &str, token: &str) -> String {
    // A JWT is base64url and dots only: nothing to percent-encode.
    format!("{}/join?t={token}", base_url.trim_end_matches('/'))
}

/// Issues fresh links for every seat, valid from `now` for [`TOKEN_TTL`].
pub fn links(
    tokens: &JoinTokens,
    base_url: &str,
    now: SystemTime,
) -> Result<TestRoomLinks, SignError> {
    let link = |seat: &TestPoint| -> Result<String, SignError> {
        let claims = JoinClaims::new(MEETING_ID, seat.code, seat.role, seat.name, now, TOKEN_TTL);
        Ok(join_link(base_url, &tokens.sign(&claims)?))
    };
    Ok(TestRoomLinks {
        chair: link(&CHAIR)?,
        points: POINTS.iter().map(link).collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn token_of(link: &str) -> &str {
        link.split_once("/join?t=").expect("join link shape").1
    }

    #[test]
    fn four_links_each_verify_to_their_seat() {
        let tokens = JoinTokens::new(&Secret::generate());
        let now = SystemTime::now();
        let links = links(&tokens, "https://10.0.0.5:8443/", now).unwrap();
        assert_eq!(links.points.len(), 3);

        let all: Vec<&String> = std::iter::once(&links.chair)
            .chain(links.points.iter())
            .collect();
        for (link, seat) in all.into_iter().zip(seats()) {
            assert!(link.starts_with("https://10.0.0.5:8443/join?t="), "{link}");
            let claims = tokens.verify(token_of(link), now).unwrap();
            assert_eq!(claims.meeting, MEETING_ID);
            assert_eq!(claims.point, seat.code);
            assert_eq!(claims.role, seat.role);
            assert_eq!(claims.name, seat.name);
            assert_eq!(claims.exp - claims.iat, TOKEN_TTL.as_secs());
        }
        assert_eq!(
            tokens.verify(token_of(&links.chair), now).unwrap().role,
            Role::Chair
        );
    }

    #[test]
    fn links_stay_valid_for_a_year_and_no_longer() {
        let tokens = JoinTokens::new(&Secret::generate());
        let now = SystemTime::now();
        let links = links(&tokens, "http://localhost:8443", now).unwrap();
        let token = token_of(&links.points[0]);
        let almost = now + TOKEN_TTL - Duration::from_secs(60);
        assert!(tokens.verify(token, almost).is_ok());
        assert!(tokens.verify(token, now + TOKEN_TTL).is_err());
    }

    #[test]
    fn json_shape_is_chair_and_points() {
        let links = TestRoomLinks {
            chair: "c".into(),
            points: vec!["1".into(), "2".into(), "3".into()],
        };
        assert_eq!(
            serde_json::to_value(&links).unwrap(),
            serde_json::json!({"chair": "c", "points": ["1", "2", "3"]})
        );
        let labeled = links.labeled();
        assert_eq!(labeled[0], ("Điểm cầu chủ trì (thử nghiệm)", "c"));
        assert_eq!(labeled[3], ("Điểm cầu thử nghiệm 3", "3"));
    }

    #[test]
    fn seats_are_found_by_code() {
        assert_eq!(find_point("test-chair"), Some(&CHAIR));
        assert_eq!(
            find_point("test-point-2").map(|p| p.role),
            Some(Role::Point)
        );
        assert_eq!(find_point("test-point-4"), None);
    }
}
