//! What a client sends.

use serde::{Deserialize, Serialize};

use super::{ChatTarget, IceCandidate, PcKind, TrackSource};

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
        /// program comes through, its own first, at most [`MAX_CHAIN`](super::MAX_CHAIN). A
        /// server refuses a relay whose chain holds its own id (`relay_loop`): the meeting would
        /// relay itself.
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
