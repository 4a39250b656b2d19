//! Turning one text frame into a [`ClientMessage`], with failures classified into stable codes.

use super::{
    ClientMessage, ErrorCode, MAX_MESSAGE_BYTES, MAX_SDP_BYTES, MAX_TOKEN_CHARS, PROTOCOL_VERSION,
    RequestId,
};

/// Why a frame could not become a [`ClientMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub code: ErrorCode,
    pub message: String,
    /// The `type` tag when it could be read.
    pub request: Option<String>,
    /// The client's `request_id` when it could be read.
    pub request_id: Option<RequestId>,
}

impl ParseError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            request: None,
            request_id: None,
        }
    }

    fn about(mut self, request: &str, request_id: &Option<RequestId>) -> Self {
        self.request = Some(request.to_owned());
        self.request_id = request_id.clone();
        self
    }
}

/// One client frame: the message and the `request_id` the client attached to it, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    pub message: ClientMessage,
    pub request_id: Option<RequestId>,
}

/// Parses one text frame into a client message, classifying failures into stable codes.
/// A `request_id` is accepted and dropped; [`parse_client_frame`] keeps it.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ParseError> {
    parse_client_frame(text).map(|f| f.message)
}

/// Parses one text frame into a client message and its optional `request_id`.
///
/// Parsing happens in two steps so that the error says *what* is wrong: first as a generic JSON
/// value (bad JSON vs. a wrong shape), then into the typed enum.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, ParseError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::new(
            ErrorCode::TooLarge,
            format!(
                "message is {} bytes; the limit is {MAX_MESSAGE_BYTES}",
                text.len()
            ),
        ));
    }
    let mut value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ParseError::new(ErrorCode::BadJson, format!("not valid JSON: {e}")))?;
    let Some(obj) = value.as_object_mut() else {
        return Err(ParseError::new(
            ErrorCode::BadMessage,
            "a message must be a JSON object",
        ));
    };
    // Not part of any message's own fields: taken out before the typed parse.
    let request_id = match obj.remove("request_id").map(RequestId::from_json) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(message)) => return Err(ParseError::new(ErrorCode::BadMessage, message)),
    };
    let Some(tag) = obj.get("type").and_then(|t| t.as_str()) else {
        return Err(ParseError {
            request_id,
            ..ParseError::new(
                ErrorCode::UnknownType,
                "the field \"type\" is missing or not a string",
            )
        });
    };
    const KNOWN: [&str; 27] = [
        "join",
        "publish_offer",
        "subscribe_answer",
        "restart_subscribe",
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
        "send_up",
        "raise_hand_up",
        "lower_hand_up",
        "viewport",
        "end_meeting",
        "extend_meeting",
        "client_stats",
        "publish_state",
    ];
    // Bounded: the tag is echoed back, so cut anything a client made long.
    let request: String = tag.chars().take(40).collect();
    if !KNOWN.contains(&tag) {
        return Err(ParseError::new(
            ErrorCode::UnknownType,
            format!("unknown message type \"{request}\""),
        )
        .about(&request, &request_id));
    }
    match obj.get("v").map(|v| v.as_u64()) {
        Some(Some(v)) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(Some(v)) => {
            return Err(ParseError::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {v} is not supported; this server speaks {PROTOCOL_VERSION}"
                ),
            )
            .about(&request, &request_id));
        }
        _ => {
            return Err(ParseError::new(
                ErrorCode::BadMessage,
                "the field \"v\" (protocol version, an integer) is missing or invalid",
            )
            .about(&request, &request_id));
        }
    }
    // A join without a usable token is a refused join, whatever the shape of the rest.
    if tag == "join" {
        let fine = obj
            .get("token")
            .and_then(|t| t.as_str())
            .is_some_and(|t| !t.is_empty() && t.chars().count() <= MAX_TOKEN_CHARS);
        if !fine {
            return Err(ParseError::new(
                ErrorCode::BadToken,
                format!("\"token\" must be a string of 1..{MAX_TOKEN_CHARS} characters"),
            )
            .about(&request, &request_id));
        }
    }
    let msg: ClientMessage = serde_json::from_value(value).map_err(|e| {
        ParseError::new(
            ErrorCode::BadMessage,
            format!("invalid \"{request}\" message: {}", clip(&e.to_string())),
        )
        .about(&request, &request_id)
    })?;
    validate(&msg).map_err(|message| {
        ParseError::new(ErrorCode::BadMessage, message).about(&request, &request_id)
    })?;
    Ok(ClientFrame {
        message: msg,
        request_id,
    })
}

/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 2000;
/// Longest hand-raise text, in characters.
pub const MAX_HAND_TEXT: usize = 140;
/// Longest point code `send_up` may name, in characters (seat codes are far shorter).
pub const MAX_POINT_CHARS: usize = 128;
/// A relay `join`'s `chain` lists at most this many servers (a cascade is a few levels deep:
/// national, province, district).
pub const MAX_CHAIN: usize = 16;
/// An instance id is 1..=this many characters of `a`-`z`, `0`-`9` and `-`.
pub const MAX_INSTANCE_ID_CHARS: usize = 64;

/// Whether `id` has the shape of a server's instance id.
pub fn valid_instance_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_INSTANCE_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Text that looks like HTML/XML markup (a tag or an entity-encoded tag). Chat is plain text;
/// pages escape it anyway, but markup is refused so that no export or log carries it.
pub fn has_markup(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(2).any(|w| {
        w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!' || w[1] == b'?')
    }) || text.to_ascii_lowercase().contains("&lt;")
}

/// Longest serde error text echoed back, in characters.
const MAX_DETAIL_CHARS: usize = 200;

/// A serde error cut short: it quotes what the client sent (an unknown field's name, a wrong
/// value), which may be most of a 64 KiB frame (found by `fuzz/`'s `signaling_message` target).
fn clip(detail: &str) -> String {
    match detail.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((at, _)) => format!("{}…", &detail[..at]),
        None => detail.to_owned(),
    }
}

/// Bounds that serde cannot express.
fn validate(msg: &ClientMessage) -> Result<(), String> {
    match msg {
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
        ClientMessage::RaiseHand { text: Some(t), .. }
        | ClientMessage::RaiseHandUp { text: Some(t), .. }
            if t.chars().count() > MAX_HAND_TEXT =>
        {
            Err(format!(
                "\"text\" is longer than {MAX_HAND_TEXT} characters"
            ))
        }
        ClientMessage::Chat { text, .. } if text.chars().count() > MAX_CHAT_CHARS => Err(format!(
            "\"text\" is longer than {MAX_CHAT_CHARS} characters"
        )),
        ClientMessage::Chat { text, .. } if text.trim().is_empty() => {
            Err("\"text\" is empty".into())
        }
        ClientMessage::Chat { text, .. }
        | ClientMessage::RaiseHand {
            text: Some(text), ..
        }
        | ClientMessage::RaiseHandUp {
            text: Some(text), ..
        } if has_markup(text) => Err("\"text\" must be plain text, not markup".into()),
        ClientMessage::ClientStats {
            freezes, freeze_ms, ..
        } if *freezes > 10_000 || *freeze_ms > 3_600_000 => Err(
            "\"freezes\" must be at most 10000 and \"freeze_ms\" at most 3600000 per report".into(),
        ),
        ClientMessage::SendUp { point: Some(p), .. }
        | ClientMessage::RaiseHandUp { point: Some(p), .. }
            if p.chars().count() > MAX_POINT_CHARS =>
        {
            Err(format!(
                "\"point\" is longer than {MAX_POINT_CHARS} characters"
            ))
        }
        ClientMessage::Join { chain, .. } if chain.len() > MAX_CHAIN => {
            Err(format!("\"chain\" lists more than {MAX_CHAIN} servers"))
        }
        ClientMessage::Join { chain, .. } if !chain.iter().all(|id| valid_instance_id(id)) => {
            Err(format!(
                "\"chain\" entries are 1..{MAX_INSTANCE_ID_CHARS} characters of a-z, 0-9 and -"
            ))
        }
        ClientMessage::Viewport { visible, .. } if visible.len() > 1000 => {
            Err("\"visible\" lists more than 1000 participants".into())
        }
        _ => Ok(()),
    }
}
