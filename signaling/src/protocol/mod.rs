//! The wire protocol: every message that crosses `/ws`, defined once.
//!
//! The server, `loadtest` and the tests all use these types; `docs/protocol.md` is written from
//! them and a test keeps its examples parseable. Every message is a JSON object with the protocol
//! version `v` and a `type` tag; unknown fields are rejected so that a typo is an error, not a
//! silently ignored field.

use serde::{Deserialize, Serialize};

/// The protocol version this server speaks. A message with another `v` is refused with
/// [`ErrorCode::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest text frame the server accepts; larger frames are refused with
/// [`ErrorCode::TooLarge`] and the connection is closed (we cannot know where the next message
/// starts once we stopped reading one).
pub const MAX_MESSAGE_BYTES: usize = 192 * 1024;

/// Longest join token, in characters.
pub const MAX_TOKEN_CHARS: usize = 2048;

/// Longest textual `request_id`, in characters.
pub const MAX_REQUEST_ID_CHARS: usize = 64;

/// What a client may attach to any message as `request_id`, echoed in an `error` answering
/// that message: a string of 1..64 characters or a non-negative integer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(u64),
    Text(String),
}

impl RequestId {
    /// Reads a `request_id` value, bounded (it is echoed back).
    pub fn from_json(value: serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::Number(n) if n.as_u64().is_some() => {
                Ok(Self::Number(n.as_u64().unwrap_or_default()))
            }
            serde_json::Value::String(s)
                if !s.is_empty() && s.chars().count() <= MAX_REQUEST_ID_CHARS =>
            {
                Ok(Self::Text(s))
            }
            _ => Err(format!(
                "\"request_id\" must be a string of 1..{MAX_REQUEST_ID_CHARS} characters or a \
                 non-negative integer"
            )),
        }
    }
}

/// Largest SDP accepted inside a message. A browser offer with simulcast is ~10 KiB, but a
/// chair's `subscribe_answer` grows with the points on its screen, ~800 bytes a video m-line in
/// Chromium: at 48 KiB a 1366x768 chair whose grid named 60 points had every answer refused
/// and its subscribe connection restarted, a 1280x1024 one never decoded a tile
/// (`tests/browser/chairwalk.mjs`). 160 KiB holds ~200 m-lines.
pub const MAX_SDP_BYTES: usize = 160 * 1024;

/// Which of a participant's two peer connections a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcKind {
    /// The client's sending connection: the client offers, the server answers.
    Publish,
    /// The client's receiving connection: the server offers, the client answers.
    Subscribe,
}

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

/// An ICE candidate in the browser's `RTCIceCandidateInit` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceCandidate {
    /// The `candidate:` attribute line without the `a=` prefix; empty means end of candidates.
    pub candidate: String,
    #[serde(rename = "sdpMid", default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(
        rename = "sdpMLineIndex",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_m_line_index: Option<u16>,
    #[serde(
        rename = "usernameFragment",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub username_fragment: Option<String>,
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

/// A media track the subscribe connection carries, so a client can label what it receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackInfo {
    /// The `mid` of the m-line in the subscribe offer.
    pub mid: String,
    /// The participant whose media this is (also the `msid` stream id in the SDP).
    pub participant: String,
    pub kind: MediaKind,
    /// What the track carries: `microphone`, `camera` or `screen`.
    pub source: Source,
    /// For a relay only: the one simulcast layer this m-line carries, by rank (0 the lowest,
    /// in the publisher's order). Absent for every other role, whose m-line carries the layer
    /// the server picks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<u8>,
}

/// One video a `video_paused` message names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PausedTrack {
    pub participant: String,
    pub source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Audio,
    Video,
}

/// What a published track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Microphone,
    #[default]
    Camera,
    /// Screen or document share, sent with content hint "detail".
    Screen,
}

/// A `publish_offer` m-line's declared source (tracks not declared: microphone for audio,
/// camera for video).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackSource {
    pub mid: String,
    pub source: Source,
}

/// How a participant's media travels to and from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Udp,
    /// ICE-TCP: the hall's network drops UDP (expect more delay on a busy line).
    Tcp,
}

/// A link's quality class, for a traffic-light icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Loss under 2 % and RTT under 150 ms.
    Good,
    /// Loss under 8 % and RTT under 400 ms.
    Fair,
    Poor,
}

impl Quality {
    pub fn classify(rtt_ms: Option<u32>, loss: f32) -> Self {
        let rtt = rtt_ms.unwrap_or(0);
        if loss < 0.02 && rtt < 150 {
            Self::Good
        } else if loss < 0.08 && rtt < 400 {
            Self::Fair
        } else {
            Self::Poor
        }
    }
}

/// Why the server ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByeCode {
    /// You sent `leave`.
    Left,
    /// The same point joined from another window or PC; do not reconnect by yourself.
    Replaced,
    /// Your link was re-issued or your invitation withdrawn; this link no longer works.
    Revoked,
    /// The meeting ended or was cancelled.
    MeetingEnded,
    /// The meeting reached its planned end (the schedule, not the chair, ended it).
    ScheduleEnded,
    /// The server is restarting (an update, a reboot): join again after `retry_after_ms`.
    ServerRestarting,
}

impl ByeCode {
    /// The WebSocket close code that follows this `bye`: 1012 (service restart) for a restart,
    /// 1000 (normal closure) otherwise.
    pub fn close_code(self) -> u16 {
        match self {
            Self::ServerRestarting => 1012,
            _ => 1000,
        }
    }

    /// The close frame's reason: the code's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Replaced => "replaced",
            Self::Revoked => "revoked",
            Self::MeetingEnded => "meeting_ended",
            Self::ScheduleEnded => "schedule_ended",
            Self::ServerRestarting => "server_restarting",
        }
    }
}

/// Where a linked meeting's program comes from (`room_state.upstream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamState {
    /// The upstream program reaches this server: it is the program.
    Live,
    /// The upstream is lost: the local chair is the program until it is back.
    Lost,
}

/// Who a chat message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatTarget {
    All,
    Chair,
}

/// The floor holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloorInfo {
    /// Point code of the holder.
    pub point: String,
    /// Its current participant id; absent while that point is disconnected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    /// When the floor was granted, Unix milliseconds.
    pub since: u64,
}

/// A raised hand, in queue order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandInfo {
    pub point: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    /// Optional short text (≤ 140 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Unix milliseconds.
    pub at: u64,
}

/// One roll-call answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollCallAnswer {
    pub point: String,
    /// Unix milliseconds.
    pub at: u64,
}

/// A roll call in progress (or the last one, once ended).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollCallInfo {
    pub started_at: u64,
    /// Unix milliseconds; absent while the roll call runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
    pub answers: Vec<RollCallAnswer>,
}

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// First message of every connection.
    Join {
        v: u32,
        /// The signed join token from the join link (`t=` parameter).
        token: String,
        /// The `resume_token` of the last `joined` on this link: within the grace period after
        /// the socket was lost, the same seat is taken over (same participant, no roster churn).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
        /// A relay's join (the cascade): the instance ids of the servers whose meetings its
        /// program comes through, its own first, at most [`MAX_CHAIN`]. A server refuses a
        /// relay whose chain holds its own id (`relay_loop`): the meeting would relay itself.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        chain: Vec<String>,
    },
    /// SDP offer of the publish connection (first publish, or a renegotiation).
    PublishOffer {
        v: u32,
        sdp: String,
        /// Which m-line carries what; needed only for a screen share.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sources: Vec<TrackSource>,
    },
    /// SDP answer to a `subscribe_offer`, echoing its `revision`.
    SubscribeAnswer { v: u32, revision: u64, sdp: String },
    /// The subscribe connection on which the client applied offer `revision` failed (its path
    /// is dead): the server replaces it with a new one, whose first offer says `restart`.
    RestartSubscribe { v: u32, revision: u64 },
    /// A trickled ICE candidate of the client's side of `pc`.
    Candidate {
        v: u32,
        pc: PcKind,
        candidate: IceCandidate,
    },
    /// Keep-alive; answered with `pong`.
    Ping { v: u32 },
    /// Leave the meeting; the server closes the socket after `bye`.
    Leave { v: u32 },
    /// Point: ask for the floor, with an optional short text (≤ 140 characters).
    RaiseHand {
        v: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// Point: withdraw its own hand. Chair: lower the hand of `point`.
    LowerHand {
        v: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        point: Option<String>,
    },
    /// Chair: give the floor to `point` (its microphone opens, its camera goes to everyone).
    GrantFloor { v: u32, point: String },
    /// Chair: take the floor back.
    RevokeFloor { v: u32 },
    /// Chair: pass the floor to the first hand in the queue.
    NextFloor { v: u32 },
    /// Chair: mute or unmute `point`, or every point when `point` is absent.
    SetMute {
        v: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        point: Option<String>,
        muted: bool,
    },
    /// Chair: start a roll call (điểm danh).
    StartRollCall { v: u32 },
    /// Chair: end the roll call.
    EndRollCall { v: u32 },
    /// Point: answer the roll call ("có mặt").
    AnswerRollCall { v: u32 },
    /// A chat message (≤ 2,000 characters, plain text).
    Chat {
        v: u32,
        to: ChatTarget,
        text: String,
    },
    /// Chair: discussion mode forwards the most recent active speakers to everyone.
    SetDiscussion { v: u32, on: bool },
    /// Chair: allow the floor holder to share its screen.
    AllowShare { v: u32, allowed: bool },
    /// Chair, in a linked meeting: who the relay sends up on the upstream relay seat, `point`
    /// (a connected point), or the chair itself when `point` is absent or the chair's own.
    SendUp {
        v: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        point: Option<String>,
    },
    /// Chair, in a linked meeting: raise the relay seat's hand in the upstream meeting on
    /// behalf of `point` (a connected point; absent: the province itself), with `text`.
    RaiseHandUp {
        v: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        point: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// Chair, in a linked meeting: lower the hand raised upstream.
    LowerHandUp { v: u32 },
    /// Chair: the points whose thumbnails are on screen (others are paused to save bandwidth).
    Viewport { v: u32, visible: Vec<String> },
    /// Chair: end the meeting for everyone.
    EndMeeting { v: u32 },
    /// Chair: push the planned end back by `minutes` (15 or 30).
    ExtendMeeting { v: u32, minutes: u32 },
    /// What the client publishes (or that it publishes nothing): after `joined`, and again when
    /// a device appears or goes away.
    PublishState { v: u32, audio: bool, video: bool },
    /// What the client's decoders saw since its last report (video freezes), for operators.
    ClientStats {
        v: u32,
        /// Freezes since the last report (`freezeCount` deltas of inbound video).
        freezes: u32,
        /// Their total duration in milliseconds (`totalFreezesDuration` deltas).
        freeze_ms: u32,
    },
}

impl ClientMessage {
    /// The version the sender claimed.
    pub fn version(&self) -> u32 {
        match self {
            Self::Join { v, .. }
            | Self::PublishOffer { v, .. }
            | Self::SubscribeAnswer { v, .. }
            | Self::RestartSubscribe { v, .. }
            | Self::Candidate { v, .. }
            | Self::Ping { v }
            | Self::Leave { v }
            | Self::RaiseHand { v, .. }
            | Self::LowerHand { v, .. }
            | Self::GrantFloor { v, .. }
            | Self::RevokeFloor { v }
            | Self::NextFloor { v }
            | Self::SetMute { v, .. }
            | Self::StartRollCall { v }
            | Self::EndRollCall { v }
            | Self::AnswerRollCall { v }
            | Self::Chat { v, .. }
            | Self::SetDiscussion { v, .. }
            | Self::AllowShare { v, .. }
            | Self::SendUp { v, .. }
            | Self::RaiseHandUp { v, .. }
            | Self::LowerHandUp { v }
            | Self::Viewport { v, .. }
            | Self::EndMeeting { v }
            | Self::ExtendMeeting { v, .. }
            | Self::PublishState { v, .. }
            | Self::ClientStats { v, .. } => *v,
        }
    }

    /// The tag, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Join { .. } => "join",
            Self::PublishOffer { .. } => "publish_offer",
            Self::SubscribeAnswer { .. } => "subscribe_answer",
            Self::RestartSubscribe { .. } => "restart_subscribe",
            Self::Candidate { .. } => "candidate",
            Self::Ping { .. } => "ping",
            Self::Leave { .. } => "leave",
            Self::RaiseHand { .. } => "raise_hand",
            Self::LowerHand { .. } => "lower_hand",
            Self::GrantFloor { .. } => "grant_floor",
            Self::RevokeFloor { .. } => "revoke_floor",
            Self::NextFloor { .. } => "next_floor",
            Self::SetMute { .. } => "set_mute",
            Self::StartRollCall { .. } => "start_roll_call",
            Self::EndRollCall { .. } => "end_roll_call",
            Self::AnswerRollCall { .. } => "answer_roll_call",
            Self::Chat { .. } => "chat",
            Self::SetDiscussion { .. } => "set_discussion",
            Self::AllowShare { .. } => "allow_share",
            Self::SendUp { .. } => "send_up",
            Self::RaiseHandUp { .. } => "raise_hand_up",
            Self::LowerHandUp { .. } => "lower_hand_up",
            Self::Viewport { .. } => "viewport",
            Self::EndMeeting { .. } => "end_meeting",
            Self::ExtendMeeting { .. } => "extend_meeting",
            Self::PublishState { .. } => "publish_state",
            Self::ClientStats { .. } => "client_stats",
        }
    }
}

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Peer connection state as the server reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcState {
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

/// Stable error codes. Clients may switch on them; the set only grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON, or was binary.
    BadJson,
    /// `type` missing or not one this server knows.
    UnknownType,
    /// A field is missing, of the wrong type, out of range, or unexpected.
    BadMessage,
    /// The frame exceeded 64 KiB. Fatal.
    TooLarge,
    /// `v` is not a version this server speaks.
    UnsupportedVersion,
    /// The join token is missing, too long, malformed, forged or revoked. Fatal.
    BadToken,
    /// The join token's meeting is over or the token has expired. Fatal.
    TokenExpired,
    /// The meeting is at its participant cap. Fatal.
    RoomFull,
    /// The connection has not joined: a message other than `join`, `ping` or `leave` came
    /// before `join` succeeded, or no `join` came in time. Fatal.
    NotJoined,
    /// `join` was sent twice on one connection.
    AlreadyJoined,
    /// The SDP could not be parsed or applied.
    BadSdp,
    /// The message refers to a peer connection that does not exist (yet).
    NoSuchConnection,
    /// Your role may not do this.
    Forbidden,
    /// Too many messages; slow down.
    RateLimited,
    /// The message names a point that is not in this meeting (or not connected).
    NotInRoom,
    /// The action does not fit the meeting's state (e.g. answering when no roll call runs).
    InvalidState,
    /// Something failed on the server; details are in its log, not here.
    Internal,
    /// A relay's `join` whose `chain` holds this server's instance id: its meeting already
    /// takes its program, directly or not, from this server's meeting (a loop). Fatal.
    RelayLoop,
}

impl ErrorCode {
    /// Errors after which the server closes the connection.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            Self::TooLarge
                | Self::BadToken
                | Self::TokenExpired
                | Self::RoomFull
                | Self::NotJoined
                | Self::RelayLoop
        )
    }
}

impl ErrorCode {
    /// The WebSocket close code after a fatal error: 1009 (message too big) for `too_large`,
    /// 1008 (policy violation) for the others.
    pub fn close_code(self) -> u16 {
        match self {
            Self::TooLarge => 1009,
            _ => 1008,
        }
    }
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

mod parse;
pub use parse::{
    ClientFrame, MAX_CHAIN, MAX_CHAT_CHARS, MAX_HAND_TEXT, MAX_INSTANCE_ID_CHARS, ParseError,
    has_markup, parse_client_frame, parse_client_message, valid_instance_id,
};

#[cfg(test)]
mod tests;
