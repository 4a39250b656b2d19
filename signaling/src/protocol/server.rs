//! What the server sends, and the meeting and ICE servers `joined` describes.

use serde::{Deserialize, Serialize};

use super::{
    ByeCode, ChatTarget, ErrorCode, FloorInfo, HandInfo, IceCandidate, IceServer, InvitedInfo,
    MediaState, PROTOCOL_VERSION, ParticipantInfo, PausedTrack, PcKind, PcState, Quality,
    RequestId, Role, RollCallInfo, TrackInfo, Transport, UpstreamState,
};

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMessage {
    /// Answer to `join`: who you are and who is already here.
    Joined {
        v: u32,
        /// Your participant id.
        participant: String,
        role: Role,
        meeting: MeetingInfo,
        /// Everyone in the meeting, you included.
        roster: Vec<ParticipantInfo>,
        /// ICE servers the client should configure (empty: the server is reachable directly).
        ice_servers: Vec<IceServer>,
        /// Chair only: every point invited to the meeting, connected or not.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        invited: Vec<InvitedInfo>,
        /// Send it as `resume` in the next `join` after a lost socket (valid for that seat only,
        /// until the grace period after the loss ends).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_token: Option<String>,
        /// This `join` took over the seat named by `resume`: keep your peer connections and
        /// state; omitted when false (a fresh seat: start over).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resumed: bool,
    },
    /// Answer to `publish_offer`.
    PublishAnswer {
        v: u32,
        sdp: String,
    },
    /// A (re)negotiation of the subscribe connection. Answer with `subscribe_answer`.
    SubscribeOffer {
        v: u32,
        /// Increases with each offer; echo it in the answer.
        revision: u64,
        sdp: String,
        /// What each m-line carries.
        tracks: Vec<TrackInfo>,
        /// This offer opens a new subscribe connection: close the previous one and apply the
        /// offer to a new `RTCPeerConnection` (sent after an answer that was refused or never
        /// came; omitted when false).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        restart: bool,
    },
    /// A trickled ICE candidate of the server's side of `pc`.
    Candidate {
        v: u32,
        pc: PcKind,
        candidate: IceCandidate,
    },
    /// Someone joined.
    ParticipantJoined {
        v: u32,
        participant: ParticipantInfo,
    },
    /// What a participant publishes changed (its client sent `publish_state`); the roster's
    /// `media` of that participant from now on.
    ParticipantMedia {
        v: u32,
        participant: String,
        media: MediaState,
    },
    /// Someone left (or their connection dropped).
    ParticipantLeft {
        v: u32,
        participant: String,
    },
    /// State of one of your peer connections as the server sees it.
    ConnectionState {
        v: u32,
        pc: PcKind,
        state: PcState,
    },
    Pong {
        v: u32,
    },
    /// The meeting's controls, sent after `joined` and after every change.
    RoomState {
        v: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        floor: Option<FloorInfo>,
        /// Raised hands in queue order.
        hands: Vec<HandInfo>,
        /// Points whose microphone the chair opened (the floor holder's is open too).
        unmuted: Vec<String>,
        discussion: bool,
        /// Whether the floor holder may share its screen.
        share_allowed: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        roll_call: Option<RollCallInfo>,
        /// In a meeting linked to an upstream server (§3, the upstream seat): `live` while the
        /// upstream program is the program, `lost` while the upstream is lost and the local
        /// chair is the program. Absent in a meeting that is not linked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upstream: Option<UpstreamState>,
        /// The point the chair chose to send up on the upstream relay seat (`send_up`). Absent:
        /// the chair goes up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent_up: Option<String>,
        /// The hand the chair raised in the upstream meeting (`raise_hand_up`): on behalf of
        /// `point` (the chair's own code: the province itself), with its text.
        /// Boxed: rare, and it would make every `ServerMessage` larger.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hand_up: Option<Box<HandInfo>>,
        /// In a linked meeting: the upstream chair gave the floor to this meeting's relay seat
        /// there (the province speaks in the upstream meeting). Omitted when false.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        upstream_floor: bool,
    },
    /// A chat message.
    Chat {
        v: u32,
        /// Sender's participant id, point code and name.
        from: String,
        from_point: String,
        from_name: String,
        to: ChatTarget,
        text: String,
        /// Unix milliseconds.
        at: u64,
    },
    /// The participants whose voice is heard now.
    ActiveSpeakers {
        v: u32,
        participants: Vec<String>,
    },
    /// A participant's link quality (to the chair, and to the participant itself), when its
    /// class changes and every 10 s.
    LinkQuality {
        v: u32,
        participant: String,
        quality: Quality,
        /// Round-trip time; absent until the first receiver report.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_ms: Option<u32>,
        /// Packet loss, 0..1 (the worse of up and down), three decimals.
        loss: f64,
        /// How its media travels (a relay over TCP counts as `udp`: the server sees the relay).
        transport: Transport,
    },
    /// Videos the server stopped sending this client because its link cannot carry even their
    /// lowest layer (audio continues): the complete list, sent whenever it changes.
    VideoPaused {
        v: u32,
        tracks: Vec<PausedTrack>,
    },
    /// The chair ended the meeting; `bye` follows.
    MeetingEnded {
        v: u32,
    },
    /// To the chair, 10 and 2 minutes before the planned end: the meeting ends by itself then
    /// unless the chair extends it (`extend_meeting`).
    MeetingEnding {
        v: u32,
        /// The planned end, Unix milliseconds.
        ends_at: u64,
        /// Whole minutes left (rounded up).
        minutes_left: u32,
    },
    /// To everyone: the chair pushed the planned end back.
    MeetingExtended {
        v: u32,
        /// The new planned end, Unix milliseconds.
        ends_at: u64,
        /// By how many minutes.
        minutes: u32,
    },
    /// Last message before the server closes the socket on purpose.
    Bye {
        v: u32,
        /// Why, as a stable code a client can act on.
        code: ByeCode,
        /// Plain-language detail.
        reason: String,
        /// With `server_restarting`: how long to wait before joining again, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Something you sent was refused. `code` is stable; `message` is for people.
    Error {
        v: u32,
        code: ErrorCode,
        message: String,
        /// The `type` of the message that was refused, when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
        /// Whether the server closes the connection after this error.
        fatal: bool,
        /// The `request_id` of the refused message, when it carried one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<RequestId>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeetingInfo {
    pub id: String,
    pub title: String,
}

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>, request: Option<String>) -> Self {
        Self::Error {
            v: PROTOCOL_VERSION,
            code,
            message: message.into(),
            request,
            fatal: code.is_fatal(),
            request_id: None,
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising our own plain data types cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}
