//! The stable codes a client can act on: why a message was refused (`error`) and why a
//! session ends (`bye`).

use serde::{Deserialize, Serialize};

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
