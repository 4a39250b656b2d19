//! Join links of stored meetings: one per seat, signed with the data dir's secret.
//!
//! The token of a seat is rebuilt from what is stored (meeting, seat, role, name, the seat's
//! token id and issue time, the meeting's end as expiry), so the panel can show the same link
//! again at any time without the server keeping links. Re-issuing gives the seat a new token id:
//! the authorizer accepts only the stored one, so the old link stops working at once.

use signaling::protocol::Role;

use crate::meetings::{Meeting, Seat};
use crate::test_room;
use crate::tokens::{JOIN_AUDIENCE, JoinClaims, JoinTokens, SignError};

pub fn role_str(role: Role) -> &'static str {
    match role {
        Role::Chair => "chair",
        Role::Point => "point",
        Role::Observer => "observer",
        Role::Relay => "relay",
        // Never a stored seat: the relay client's own seat in a linked meeting.
        Role::Upstream => "upstream",
    }
}

pub fn parse_role(s: &str) -> Option<Role> {
    match s {
        "chair" => Some(Role::Chair),
        "point" => Some(Role::Point),
        "observer" => Some(Role::Observer),
        "relay" => Some(Role::Relay),
        _ => None,
    }
}

/// The claims of a seat's current token.
pub fn claims(m: &Meeting, seat: &Seat) -> JoinClaims {
    JoinClaims {
        aud: JOIN_AUDIENCE.to_owned(),
        meeting: m.id.clone(),
        point: seat.seat.clone(),
        role: parse_role(&seat.role).unwrap_or(Role::Observer),
        name: seat.name.clone(),
        iat: u64::try_from(seat.issued_at.min(m.ends_at)).unwrap_or(0),
        exp: u64::try_from(m.effective_end()).unwrap_or(0),
        jti: seat.jti.clone(),
    }
}

/// The seat's join link on the server at `base_url`.
pub fn link(
    tokens: &JoinTokens,
    base_url: &str,
    m: &Meeting,
    seat: &Seat,
) -> Result<String, SignError> {
    Ok(test_room::join_link(
        base_url,
        &tokens.sign(&claims(m, seat))?,
    ))
}
