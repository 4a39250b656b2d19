//! The wire protocol: every message that crosses `/ws`, defined once.
//!
//! The server, `loadtest` and the tests all use these types; `docs/protocol.md` is written from
//! them and a test keeps its examples parseable. Every message is a JSON object with the protocol
//! version `v` and a `type` tag; unknown fields are rejected so that a typo is an error, not a
//! silently ignored field.
//!
//! # Layout
//! - this module: the version, the size bounds and the `request_id` every message may carry;
//! - `client`: [`ClientMessage`], what a client sends;
//! - `server`: [`ServerMessage`], what the server sends, and what `joined` describes;
//! - `roster`: roles and participants as the roster shows them;
//! - `media`: peer connections, ICE, tracks and link quality;
//! - `controls`: the floor, hands, roll call and chat addressing as `room_state` shows them;
//! - `codes`: the stable codes of `error` and `bye`;
//! - `parse`: one text frame into a [`ClientMessage`], bounds checked, failures classified.

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

mod client;
mod codes;
mod controls;
mod media;
mod parse;
mod roster;
mod server;

pub use client::ClientMessage;
pub use codes::{ByeCode, ErrorCode};
pub use controls::{ChatTarget, FloorInfo, HandInfo, RollCallAnswer, RollCallInfo, UpstreamState};
pub use media::{
    IceCandidate, IceServer, MediaKind, PausedTrack, PcKind, PcState, Quality, Source, TrackInfo,
    TrackSource, Transport,
};
pub use parse::{
    ClientFrame, MAX_CHAIN, MAX_CHAT_CHARS, MAX_HAND_TEXT, MAX_INSTANCE_ID_CHARS, ParseError,
    has_markup, parse_client_frame, parse_client_message, valid_instance_id,
};
pub use roster::{InvitedInfo, MediaState, ParticipantInfo, Role};
pub use server::{MeetingInfo, ServerMessage};

#[cfg(test)]
mod tests;
