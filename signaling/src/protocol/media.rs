//! Peer connections, ICE, the tracks a connection carries, and link quality.

use serde::{Deserialize, Serialize};

/// Which of a participant's two peer connections a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcKind {
    /// The client's sending connection: the client offers, the server answers.
    Publish,
    /// The client's receiving connection: the server offers, the client answers.
    Subscribe,
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
