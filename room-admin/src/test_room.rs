//! The permanent test room: a meeting that always exists, so IT staff can check a point's camera,
//! microphone and network before a real meeting, with no admin work.
//!
//! One chair and three listed points; their links are printed at every start (`hoinghi serve`)
//! and by `hoinghi links test-room`. They are valid for a year, and every start issues fresh ones
//! (older ones keep working until they expire or the secret is deleted).
//!
//! Beyond the three listed points, the room accepts `test-point-4` .. `test-point-500`
//! ([`MAX_POINTS`], "Điểm cầu thử nghiệm N"): seats for load tests against a real server
//! (`hoinghi-loadtest --tokens DATA_DIR` signs their tokens with the data dir's secret). No link
//! is printed for them.

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

/// Highest point number the test room accepts: `test-point-1` .. `test-point-{MAX_POINTS}`.
pub const MAX_POINTS: usize = CAPACITY;

/// Code of point `n` (1-based): `test-point-N`.
pub fn point_code(n: usize) -> String {
    format!("test-point-{n}")
}

/// Display name of point `n` (1-based): `Điểm cầu thử nghiệm N`.
pub fn point_name(n: usize) -> String {
    format!("Điểm cầu thử nghiệm {n}")
}

/// The number of a test point's code: `Some(N)` for `test-point-N` with 1 ≤ N ≤ [`MAX_POINTS`]
/// written without a sign or leading zeros; `None` for anything else.
pub fn point_number(code: &str) -> Option<usize> {
    let digits = code.strip_prefix("test-point-")?;
    if digits.is_empty()
        || digits.len() > 4
        || digits.starts_with('0')
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let n: usize = digits.parse().ok()?;
    (1..=MAX_POINTS).contains(&n).then_some(n)
}

/// The role of the seat with this code, if the test room has it: the chair, or any point
/// `test-point-N` with 1 ≤ N ≤ [`MAX_POINTS`] (listed or not).
pub fn seat_role(code: &str) -> Option<Role> {
    if code == CHAIR.code {
        Some(CHAIR.role)
    } else {
        point_number(code).map(|_| Role::Point)
    }
}

/// Every listed seat of the test room (chair and three points), chair first.
pub fn seats() -> impl Iterator<Item = &'static TestPoint> {
    std::iter::once(&CHAIR).chain(POINTS.iter())
}

/// The listed seat with this point code, if any (see [`seat_role`] for every accepted seat).
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

    #[test]
    fn listed_points_match_the_numbered_ones() {
        for (i, p) in POINTS.iter().enumerate() {
            assert_eq!(p.code, point_code(i + 1));
            assert_eq!(p.name, point_name(i + 1));
            assert_eq!(point_number(p.code), Some(i + 1));
        }
        assert_eq!(MAX_POINTS, 500);
        assert_eq!(CAPACITY, 500);
    }

    #[test]
    fn point_numbers_are_one_to_five_hundred() {
        assert_eq!(point_number("test-point-1"), Some(1));
        assert_eq!(point_number("test-point-4"), Some(4));
        assert_eq!(point_number("test-point-500"), Some(500));
        for bad in [
            "test-point-0",
            "test-point-501",
            "test-point-1000",
            "test-point-99999999999999999999999",
            "test-point-",
            "test-point-01",
            "test-point-+5",
            "test-point--5",
            "test-point-5 ",
            "test-point-٥",
            "test-point",
            "test-chair",
            "point-5",
        ] {
            assert_eq!(point_number(bad), None, "{bad}");
            assert_ne!(seat_role(bad), Some(Role::Point), "{bad}");
        }
        assert_eq!(seat_role("test-chair"), Some(Role::Chair));
        assert_eq!(seat_role("test-point-250"), Some(Role::Point));
        assert_eq!(seat_role("test-point-501"), None);
    }
}
