//! Roles and participants as the roster shows them.

use serde::{Deserialize, Serialize};

/// A participant's role in a meeting; decides what it may send and what it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The chairing point (province hall): receives every point, everyone receives it.
    Chair,
    /// A participating point (commune hall): receives the chair.
    Point,
    /// Watches the chair, publishes nothing.
    Observer,
    /// A downstream hoinghi server seated in this meeting (the cascade, issue 13): a province
    /// whose own halls watch this meeting through it. To the meeting it is a point (it raises
    /// hands, takes the floor, answers the roll call; its camera and microphone go out only
    /// while it holds the floor or is unmuted); it receives what a point receives.
    Relay,
    /// The upstream program in a meeting linked to an upstream relay seat (the cascade, issue
    /// 13, downstream side): a seat this server's own relay client takes, never a link. It
    /// publishes what the upstream meeting sends its relay seat and receives nothing; while it
    /// is connected, the points and observers receive it where they would receive the local
    /// chair (the local chair receives it too, and keeps its grid and controls).
    Upstream,
}

impl Role {
    /// Whether this role takes part as a point does: raises a hand, takes the floor, is
    /// unmuted by the chair, answers the roll call, shows in the chair's grid. A relay seat
    /// does all of it for the province behind it.
    pub fn acts_as_point(self) -> bool {
        matches!(self, Role::Point | Role::Relay)
    }
}

/// One participant as the roster shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantInfo {
    /// Server-assigned id, unique within the meeting for the life of the connection.
    pub id: String,
    /// The point's code in the directory (e.g. `"06"`), stable across reconnects.
    pub point: String,
    /// Display name, e.g. "UBND xã Cao Sơn".
    pub name: String,
    pub role: Role,
    /// What it publishes, once its client said so (`publish_state`); absent before that, and
    /// for clients that never say (the chair's grid then shows "connecting" as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaState>,
}

/// What a participant publishes, as its client declared it: whether it has a microphone and a
/// camera to send. A point without either never sends a `publish_offer`, so only this tells
/// the chair "no camera" apart from "still connecting".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaState {
    /// A microphone is (being) published.
    pub audio: bool,
    /// A camera is (being) published.
    pub video: bool,
}

/// A point invited to the meeting (sent to the chair in `joined`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitedInfo {
    pub point: String,
    pub name: String,
}
