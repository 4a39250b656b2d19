//! `POST /api/v1/join/check`: what a join link is for, before joining. Public (the link is the
//! key), rate-limited per address.
//!
//! The pre-join page calls it first: a point that opens tomorrow's link sees the meeting's
//! title, its own name and when joins open, and counts down, instead of a refusal; a link that
//! was replaced or has expired is said so before any device check. The answer has its own flat
//! shape, `{"error": "<code>", "message": "..."}` on refusal, for the page to switch on.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AdminState;
use super::error::ApiBytes;
use super::session::ClientIp;
use crate::authorizer::{Checked, Refusal};
use crate::meetings::MeetingState;
use crate::tokens::{MAX_TOKEN_BYTES, VerifyError, unix_secs};
use crate::{db, links};

/// Checks per address per window.
pub const PER_IP: u32 = 30;
pub const WINDOW_SECS: i64 = 60;
/// Addresses remembered at once; when full, the expired windows go first, then everything.
const MAX_KEYS: usize = 10_000;

/// A fixed window counter per address.
#[derive(Debug, Default)]
pub struct CheckLimiter {
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl CheckLimiter {
    /// Counts one check from `ip` at `now`; seconds to wait when over the limit.
    pub fn hit(&self, ip: &str, now: i64) -> Result<(), i64> {
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS && !map.contains_key(ip) {
            map.retain(|_, (start, _)| now - *start < WINDOW_SECS);
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        let (start, count) = map.entry(ip.to_owned()).or_insert((now, 0));
        if now - *start >= WINDOW_SECS {
            (*start, *count) = (now, 0);
        }
        if *count >= PER_IP {
            return Err((*start + WINDOW_SECS - now).max(1));
        }
        *count += 1;
        Ok(())
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinCheckInput {
    /// The `t=` parameter of the join link.
    pub token: String,
}

/// A valid link: its meeting and seat, and where the meeting stands. Times are Unix seconds.
#[derive(Debug, Serialize, ToSchema)]
pub struct JoinCheck {
    pub meeting_title: String,
    pub point_name: String,
    /// `chair`, `point` or `observer`.
    pub role: String,
    /// Joins are accepted while `open` or `live`; `scheduled`: wait for `opens_at`.
    pub state: MeetingState,
    pub opens_at: i64,
    pub starts_at: i64,
    /// The planned end (later if the chair extends the meeting), or when it was ended.
    pub ends_at: i64,
    /// The server's clock, so the page counts down right on a PC whose clock is off.
    pub server_now: i64,
    /// For people (Vietnamese, then English) when joining is not possible now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The flat refusal of this endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct JoinCheckError {
    /// `invalid`, `expired`, `replaced`, `not_invited`, `point_disabled`, `bad_request` or
    /// `rate_limited`.
    pub error: &'static str,
    pub message: String,
    #[serde(skip)]
    status: StatusCode,
    #[serde(skip)]
    retry_after: Option<i64>,
}

impl JoinCheckError {
    fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        JoinCheckError {
            error,
            message: message.into(),
            status,
            retry_after: None,
        }
    }

    fn bad_request() -> Self {
        JoinCheckError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Cần nội dung JSON {\"token\": \"...\"}. / Expected a JSON body {\"token\": \"...\"}.",
        )
    }
}

impl From<Refusal> for JoinCheckError {
    fn from(r: Refusal) -> Self {
        let (status, code) = match &r {
            Refusal::Token(VerifyError::Expired) => (StatusCode::GONE, "expired"),
            Refusal::Revoked => (StatusCode::GONE, "replaced"),
            Refusal::NotInvited => (StatusCode::FORBIDDEN, "not_invited"),
            Refusal::PointDisabled => (StatusCode::FORBIDDEN, "point_disabled"),
            _ => (StatusCode::BAD_REQUEST, "invalid"),
        };
        JoinCheckError::new(status, code, r.to_string())
    }
}

impl IntoResponse for JoinCheckError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(&self)).into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

/// Check a join link without joining: meeting title, point name, role, state and times.
#[utoipa::path(post, path = "/api/v1/join/check", tag = "join",
    request_body = JoinCheckInput,
    responses(
        (status = 200, body = JoinCheck, description = "the link is valid (the meeting may \
            not be open yet, or be over: see `state`)"),
        (status = 400, body = JoinCheckError, description = "`invalid` or `bad_request`"),
        (status = 403, body = JoinCheckError, description = "`not_invited` or \
            `point_disabled`"),
        (status = 410, body = JoinCheckError, description = "`expired` or `replaced`"),
        (status = 429, body = JoinCheckError, description = "`rate_limited`"),
    ))]
pub async fn check(
    State(state): State<AdminState>,
    ClientIp(ip): ClientIp,
    body: Result<ApiBytes, super::error::ApiError>,
) -> Result<axum::Json<JoinCheck>, JoinCheckError> {
    let now = SystemTime::now();
    let now_secs = i64::try_from(unix_secs(now)).unwrap_or(i64::MAX);
    if let Err(wait) = state.join_checks().hit(&ip, now_secs) {
        return Err(JoinCheckError {
            retry_after: Some(wait),
            ..JoinCheckError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "Kiểm tra liên kết quá nhiều lần. Hãy thử lại sau {wait} giây. / Too many \
                     link checks. Try again in {wait} seconds."
                ),
            )
        });
    }
    let ApiBytes(bytes) = body.map_err(|_| JoinCheckError::bad_request())?;
    if bytes.len() > MAX_TOKEN_BYTES + 64 {
        return Err(JoinCheckError::from(Refusal::Token(VerifyError::Invalid)));
    }
    let input: JoinCheckInput =
        serde_json::from_slice(&bytes).map_err(|_| JoinCheckError::bad_request())?;
    let answer = match state.authorizer().check_at(&input.token, now)? {
        Checked::TestRoom(grant) => JoinCheck {
            meeting_title: grant.meeting_title,
            point_name: grant.name,
            role: links::role_str(grant.role).to_owned(),
            state: MeetingState::Live,
            opens_at: now_secs,
            starts_at: now_secs,
            ends_at: now_secs + 24 * 3600,
            server_now: now_secs,
            message: None,
        },
        Checked::Stored { entry, seat, role } => {
            let m = &entry.meeting;
            let state_now = m.state(now_secs);
            // The authorizer's own words for a meeting that cannot be joined now.
            let message = (!state_now.joinable())
                .then(|| state.authorizer().authorize_at(&input.token, now).err())
                .flatten()
                .map(|r| r.to_string());
            JoinCheck {
                meeting_title: m.title.clone(),
                point_name: entry.seats[&seat].name.clone(),
                role: links::role_str(role).to_owned(),
                state: state_now,
                opens_at: m.opens_at(),
                starts_at: m.starts_at,
                ends_at: m.effective_end(),
                server_now: db::unix_now(),
                message,
            }
        }
    };
    Ok(axum::Json(answer))
}
