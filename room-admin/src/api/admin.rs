//! Accounts (admin only), the audit log, the dashboard and the whole schedule as a calendar.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use super::meetings::MeetingView;
use super::session::Staff;
use super::{AdminState, LiveSeat};
use crate::accounts::{self, Account, NewAccount};
use crate::audit::{self, AuditEntry};
use crate::{db, ics, meetings, test_room, timefmt};

/// Every account.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts",
    responses((status = 200, body = Vec<Account>), (status = 403, body = ErrorBody)))]
pub async fn list_accounts(
    State(state): State<AdminState>,
    staff: Staff,
) -> Result<axum::Json<Vec<Account>>, ApiError> {
    staff.require_admin()?;
    Ok(axum::Json(accounts::list(state.db()).await?))
}

/// Create an account (admin only).
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = Account), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_account(
    State(state): State<AdminState>,
    staff: Staff,
    ApiJson(new): ApiJson<NewAccount>,
) -> Result<(StatusCode, axum::Json<Account>), ApiError> {
    staff.require_admin()?;
    let a = accounts::create(state.db(), &new, db::unix_now()).await?;
    state
        .audit(
            &staff.username,
            &staff.ip,
            "account.create",
            &a.username,
            &a.role,
        )
        .await;
    Ok((StatusCode::CREATED, axum::Json(a)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub password: String,
}

/// Set an account's password (admin only); its sessions end.
#[utoipa::path(post, path = "/api/v1/accounts/{username}/password", tag = "accounts",
    params(("username" = String, Path)), request_body = NewPassword,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn set_account_password(
    State(state): State<AdminState>,
    staff: Staff,
    ApiPath(username): ApiPath<String>,
    ApiJson(input): ApiJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    staff.require_admin()?;
    accounts::set_password(state.db(), &username, &input.password, db::unix_now()).await?;
    state
        .audit(
            &staff.username,
            &staff.ip,
            "account.password",
            &username,
            "",
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Disable an account (admin only); its sessions end. The last admin cannot be disabled.
#[utoipa::path(post, path = "/api/v1/accounts/{username}/disable", tag = "accounts",
    params(("username" = String, Path)),
    responses((status = 200, body = Account), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn disable_account(
    State(state): State<AdminState>,
    staff: Staff,
    ApiPath(username): ApiPath<String>,
) -> Result<axum::Json<Account>, ApiError> {
    staff.require_admin()?;
    let a = accounts::set_disabled(state.db(), &username, true, db::unix_now()).await?;
    state
        .audit(&staff.username, &staff.ip, "account.disable", &username, "")
        .await;
    Ok(axum::Json(a))
}

/// Enable an account (admin only).
#[utoipa::path(post, path = "/api/v1/accounts/{username}/enable", tag = "accounts",
    params(("username" = String, Path)),
    responses((status = 200, body = Account), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn enable_account(
    State(state): State<AdminState>,
    staff: Staff,
    ApiPath(username): ApiPath<String>,
) -> Result<axum::Json<Account>, ApiError> {
    staff.require_admin()?;
    let a = accounts::set_disabled(state.db(), &username, false, db::unix_now()).await?;
    state
        .audit(&staff.username, &staff.ip, "account.enable", &username, "")
        .await;
    Ok(axum::Json(a))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At most this many entries (default 100, at most 1000).
    pub limit: Option<i64>,
    /// Entries older than this id (paging).
    pub before: Option<i64>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 401, body = ErrorBody)))]
pub async fn audit_log(
    State(state): State<AdminState>,
    _staff: Staff,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<axum::Json<Vec<AuditEntry>>, ApiError> {
    Ok(axum::Json(
        audit::list(state.db(), q.limit.unwrap_or(100), q.before).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardMeeting {
    pub meeting: MeetingView,
    pub live: Vec<LiveSeat>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    /// Now, RFC 3339 in Vietnam time.
    pub now_local: String,
    /// Meetings of today (Vietnam time), earliest first.
    pub today: Vec<DashboardMeeting>,
    /// Who is in the permanent test room.
    pub test_room: Vec<LiveSeat>,
}

/// Today's meetings and who is connected right now.
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "dashboard",
    responses((status = 200, body = Dashboard), (status = 401, body = ErrorBody)))]
pub async fn dashboard(
    State(state): State<AdminState>,
    _staff: Staff,
) -> Result<axum::Json<Dashboard>, ApiError> {
    let now = db::unix_now();
    let day = timefmt::local_day_start(now);
    let mut today = Vec::new();
    for m in meetings::list(state.db(), Some(day), Some(day + 24 * 3600)).await? {
        let seats = meetings::seats(state.db(), &m.id).await?.len();
        let live = state.live(&m.id);
        today.push(DashboardMeeting {
            meeting: MeetingView::new(&m, seats, live.len(), now),
            live,
        });
    }
    Ok(axum::Json(Dashboard {
        now_local: timefmt::local_rfc3339(now),
        today,
        test_room: state.live(test_room::MEETING_ID),
    }))
}

/// Every meeting as an iCalendar file (no join links: it is the whole province's schedule).
#[utoipa::path(get, path = "/api/v1/calendar.ics", tag = "calendar",
    responses((status = 200, content_type = "text/calendar", body = String),
        (status = 401, body = ErrorBody)))]
pub async fn calendar(
    State(state): State<AdminState>,
    _staff: Staff,
) -> Result<Response, ApiError> {
    Ok(super::points::calendar_response(
        all_ics(&state).await?,
        "hoinghi.ics",
    ))
}

/// Every meeting as iCalendar text, without any join link.
pub(crate) async fn all_ics(state: &AdminState) -> Result<String, ApiError> {
    let all = meetings::list(state.db(), None, None).await?;
    let events: Vec<ics::Event<'_>> = all
        .iter()
        .map(|m| ics::Event {
            meeting: m,
            link: None,
        })
        .collect();
    Ok(ics::calendar("hoinghi", &events))
}
