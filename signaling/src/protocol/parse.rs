//! Turning one text frame into a [`ClientMessage`], with failures classified into stable codes.

use super::{ClientMessage, ErrorCode, MAX_MESSAGE_BYTES, MAX_SDP_BYTES, PROTOCOL_VERSION};

/// Why a frame could not become a [`ClientMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub code: ErrorCode,
    pub message: String,
    /// The `type` tag when it could be read.
    pub request: Option<String>,
}

/// Parses one text frame into a client message, classifying failures into stable codes.
///
/// Parsing happens in two steps so that the error says *what* is wrong: first as a generic JSON
/// value (bad JSON vs. a wrong shape), then into the typed enum.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ParseError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError {
            code: ErrorCode::TooLarge,
            message: format!(
                "message is {} bytes; the limit is {MAX_MESSAGE_BYTES}",
                text.len()
            ),
            request: None,
        });
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ParseError {
        code: ErrorCode::BadJson,
        message: format!("not valid JSON: {e}"),
        request: None,
    })?;
    let Some(obj) = value.as_object() else {
        return Err(ParseError {
            code: ErrorCode::BadMessage,
            message: "a message must be a JSON object".into(),
            request: None,
        });
    };
    let Some(tag) = obj.get("type").and_then(|t| t.as_str()) else {
        return Err(ParseError {
            code: ErrorCode::UnknownType,
            message: "the field \"type\" is missing or not a string".into(),
            request: None,
        });
    };
    const KNOWN: [&str; 21] = [
        "join",
        "publish_offer",
        "subscribe_answer",
        "candidate",
        "ping",
        "leave",
        "raise_hand",
        "lower_hand",
        "grant_floor",
        "revoke_floor",
        "next_floor",
        "set_mute",
        "start_roll_call",
        "end_roll_call",
        "answer_roll_call",
        "chat",
        "set_discussion",
        "allow_share",
        "viewport",
        "end_meeting",
        "client_stats",
    ];
    // Bounded: the tag is echoed back, so cut anything a client made long.
    let request: String = tag.chars().take(40).collect();
    if !KNOWN.contains(&tag) {
        return Err(ParseError {
            code: ErrorCode::UnknownType,
            message: format!("unknown message type \"{request}\""),
            request: Some(request),
        });
    }
    match obj.get("v").map(|v| v.as_u64()) {
        Some(Some(v)) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(Some(v)) => {
            return Err(ParseError {
                code: ErrorCode::UnsupportedVersion,
                message: format!(
                    "protocol version {v} is not supported; this server speaks {PROTOCOL_VERSION}"
                ),
                request: Some(request),
            });
        }
        _ => {
            return Err(ParseError {
                code: ErrorCode::BadMessage,
                message: "the field \"v\" (protocol version, an integer) is missing or invalid"
                    .into(),
                request: Some(request),
            });
        }
    }
    let msg: ClientMessage = serde_json::from_value(value).map_err(|e| ParseError {
        code: ErrorCode::BadMessage,
        message: format!("invalid \"{request}\" message: {e}"),
        request: Some(request.clone()),
    })?;
    validate(&msg).map_err(|message| ParseError {
        code: ErrorCode::BadMessage,
        message,
        request: Some(request),
    })?;
    Ok(msg)
}

/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 2000;
/// Longest hand-raise text, in characters.
pub const MAX_HAND_TEXT: usize = 140;

/// Text that looks like HTML/XML markup (a tag or an entity-encoded tag). Chat is plain text;
/// pages escape it anyway, but markup is refused so that no export or log carries it.
pub fn has_markup(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(2).any(|w| {
        w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!' || w[1] == b'?')
    }) || text.to_ascii_lowercase().contains("&lt;")
}

/// Bounds that serde cannot express.
fn validate(msg: &ClientMessage) -> Result<(), String> {
    match msg {
        ClientMessage::Join { token, .. } if token.is_empty() || token.len() > 2048 => {
            Err("\"token\" must be 1..2048 characters".into())
        }
        ClientMessage::PublishOffer { sdp, .. } | ClientMessage::SubscribeAnswer { sdp, .. }
            if sdp.len() > MAX_SDP_BYTES =>
        {
            Err(format!("\"sdp\" is longer than {MAX_SDP_BYTES} bytes"))
        }
        ClientMessage::Candidate { candidate, .. } if candidate.candidate.len() > 1024 => {
            Err("\"candidate.candidate\" is longer than 1024 bytes".into())
        }
        ClientMessage::PublishOffer { sources, .. } if sources.len() > 16 => {
            Err("\"sources\" lists more than 16 tracks".into())
        }
        ClientMessage::RaiseHand { text: Some(t), .. } if t.chars().count() > MAX_HAND_TEXT => Err(
            format!("\"text\" is longer than {MAX_HAND_TEXT} characters"),
        ),
        ClientMessage::Chat { text, .. } if text.chars().count() > MAX_CHAT_CHARS => Err(format!(
            "\"text\" is longer than {MAX_CHAT_CHARS} characters"
        )),
        ClientMessage::Chat { text, .. } if text.trim().is_empty() => {
            Err("\"text\" is empty".into())
        }
        ClientMessage::Chat { text, .. }
        | ClientMessage::RaiseHand {
            text: Some(text), ..
        } if has_markup(text) => Err("\"text\" must be plain text, not markup".into()),
        ClientMessage::ClientStats {
            freezes, freeze_ms, ..
        } if *freezes > 10_000 || *freeze_ms > 3_600_000 => Err(
            "\"freezes\" must be at most 10000 and \"freeze_ms\" at most 3600000 per report".into(),
        ),
        ClientMessage::Viewport { visible, .. } if visible.len() > 1000 => {
            Err("\"visible\" lists more than 1000 participants".into())
        }
        _ => Ok(()),
    }
}
