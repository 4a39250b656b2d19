//! `/api/v1/meetings`: scheduling, seats and their links, QR codes, attendance.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use super::session::Staff;
use super::{AdminState, LiveSeat};
use crate::attendance::{self, AttendanceReport};
use crate::attendance_csv::{self, Lang};
use crate::chat::{self, ChatMessage};
use crate::db;
use crate::error::StoreError;
use crate::meetings::{self, CopyInput, Meeting, MeetingInput, MeetingState, Seat};
use crate::{links, timefmt};

/// What a point's staff read when the panel disconnects them (Vietnamese, then English).
pub const REISSUED: &str = "Liên kết đã được cấp lại: hãy dùng liên kết mới. / \
                            This link was re-issued: use the new one.";
pub const UNINVITED: &str = "Điểm cầu không còn trong danh sách mời của cuộc họp. / \
                             This point is no longer invited to the meeting.";
pub const CANCELLED: &str = "Cuộc họp đã bị hủy. / The meeting was cancelled.";
pub const ENDED: &str = "Cuộc họp đã kết thúc. / The meeting has ended.";

/// A meeting as the panel shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeetingView {
    pub id: String,
    pub title: String,
    pub agenda: String,
    /// RFC 3339, UTC.
    pub starts_at: String,
    pub ends_at: String,
    /// RFC 3339 in Vietnam time (UTC+7).
    pub starts_local: String,
    pub ends_local: String,
    pub open_minutes: i64,
    pub capacity: i64,
    /// Stored status: scheduled, cancelled, ended.
    pub status: String,
    /// State now: scheduled, open, live, ended, cancelled.
    pub state: MeetingState,
    pub seat_count: usize,
    /// Participants connected now.
    pub live_count: usize,
    pub created_by: String,
    /// When it ended (RFC 3339, UTC), if it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Who ended it: `chair:<point>` (the chair point, from its page), `staff:<user>` (the
    /// panel) or `schedule` (its planned end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
}

impl MeetingView {
    pub(crate) fn new(m: &Meeting, seat_count: usize, live_count: usize, now: i64) -> MeetingView {
        MeetingView {
            id: m.id.clone(),
            title: m.title.clone(),
            agenda: m.agenda.clone(),
            starts_at: timefmt::utc_rfc3339(m.starts_at),
            ends_at: timefmt::utc_rfc3339(m.ends_at),
            starts_local: timefmt::local_rfc3339(m.starts_at),
            ends_local: timefmt::local_rfc3339(m.ends_at),
            open_minutes: m.open_minutes,
            capacity: m.capacity,
            status: m.status.clone(),
            state: m.state(now),
            seat_count,
            live_count,
            created_by: m.created_by.clone(),
            ended_at: m.ended_at.map(timefmt::utc_rfc3339),
            ended_by: m.ended_by.clone(),
        }
    }
}

/// One seat, with its current join link.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatView {
    pub seat: String,
    pub point_code: Option<String>,
    pub name: String,
    pub role: String,
    /// The join link to send to this seat (a key: anyone holding it joins as this seat).
    pub link: String,
    /// When the current link was issued (RFC 3339, UTC).
    pub issued_at: String,
    pub connected: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeetingDetail {
    pub meeting: MeetingView,
    pub seats: Vec<SeatView>,
    pub live: Vec<LiveSeat>,
    /// The meeting's chat, oldest first: the newest 500 messages (text as sent: show it as text).
    pub chat: Vec<ChatMessage>,
    /// How many chat messages the meeting has in all.
    pub chat_total: i64,
}

async fn detail(state: &AdminState, m: &Meeting) -> Result<MeetingDetail, ApiError> {
    let now = db::unix_now();
    let seats = meetings::seats(state.db(), &m.id).await?;
    let live = state.live(&m.id);
    let views = seats
        .iter()
        .map(|s| seat_view(state, m, s, &live))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MeetingDetail {
        meeting: MeetingView::new(m, seats.len(), live.len(), now),
        seats: views,
        live,
        chat: chat::list(state.db(), &m.id, chat::DETAIL_LIMIT).await?,
        chat_total: chat::count(state.db(), &m.id).await?,
    })
}

fn seat_view(
    state: &AdminState,
    m: &Meeting,
    s: &Seat,
    live: &[LiveSeat],
) -> Result<SeatView, ApiError> {
    let link = links::link(state.tokens(), state.base_url(), m, s).map_err(|e| {
        tracing::error!("cannot sign a join link: {e}");
        ApiError::internal()
    })?;
    Ok(SeatView {
        seat: s.seat.clone(),
        point_code: s.point_code.clone(),
        name: s.name.clone(),
        role: s.role.clone(),
        link,
        issued_at: timefmt::utc_rfc3339(s.issued_at),
        connected: live.iter().any(|l| l.seat == s.seat),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MeetingQuery {
    /// Meetings ending after this time (RFC 3339 or Vietnam local time).
    pub from: Option<String>,
    /// Meetings starting before this time.
    pub to: Option<String>,
}

fn query_time(field: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    match v.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => timefmt::parse(s).map(Some).ok_or_else(|| {
            StoreError::invalid_field(field, "Thời gian không hợp lệ. / Invalid time.").into()
        }),
    }
}

/// Meetings, earliest first.
#[utoipa::path(get, path = "/api/v1/meetings", tag = "meetings", params(MeetingQuery),
    responses((status = 200, body = Vec<MeetingView>), (status = 401, body = ErrorBody)))]
pub async fn list_meetings(
    State(state): State<AdminState>,
    _staff: Staff,
    ApiQuery(q): ApiQuery<MeetingQuery>,
) -> Result<axum::Json<Vec<MeetingView>>, ApiError> {
    let from = query_time("from", &q.from)?;
    let to = query_time("to", &q.to)?;
    let now = db::unix_now();
    let mut out = Vec::new();
    for m in meetings::list(state.db(), from, to).await? {
        let seats = meetings::seats(state.db(), &m.id).await?.len();
        out.push(MeetingView::new(&m, seats, state.live(&m.id).len(), now));
    }
    Ok(axum::Json(out))
}

/// Schedule a meeting.
#[utoipa::path(post, path = "/api/v1/meetings", tag = "meetings", request_body = MeetingInput,
    responses((status = 201, body = MeetingDetail), (status = 422, body = ErrorBody)))]
pub async fn create_meeting(
    State(state): State<AdminState>,
    staff: Staff,
    ApiJson(input): ApiJson<MeetingInput>,
) -> Result<(StatusCode, axum::Json<MeetingDetail>), ApiError> {
    let m = meetings::create(state.db(), &input, &staff.username, db::unix_now()).await?;
    state.meeting_changed(&m.id).await;
    state
        .audit(
            &staff.username,
            &staff.ip,
            "meeting.create",
            &m.id,
            &m.title,
        )
        .await;
    Ok((StatusCode::CREATED, axum::Json(detail(&state, &m).await?)))
}

/// A meeting with its seats, links and who is connected.
#[utoipa::path(get, path = "/api/v1/meetings/{id}", tag = "meetings",
    params(("id" = String, Path)),
    responses((status = 200, body = MeetingDetail), (status = 404, body = ErrorBody)))]
pub async fn get_meeting(
    State(state): State<AdminState>,
    _staff: Staff,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<MeetingDetail>, ApiError> {
    let m = meetings::get(state.db(), &id).await?;
    Ok(axum::Json(detail(&state, &m).await?))
}

/// Change a meeting (not once cancelled or ended). Seats that stay keep their links.
#[utoipa::path(put, path = "/api/v1/meetings/{id}", tag = "meetings",
    params(("id" = String, Path)), request_body = MeetingInput,
    responses((status = 200, body = MeetingDetail), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_meeting(
    State(state): State<AdminState>,
    staff: Staff,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<MeetingInput>,
) -> Result<axum::Json<MeetingDetail>, ApiError> {
    let before = meetings::seats(state.db(), &id).await?;
    let m = meetings::update(state.db(), &id, &input, db::unix_now()).await?;
    state.meeting_changed(&m.id).await;
    // Seats no longer in the meeting: their links stopped working; whoever is connected on one
    // leaves now.
    let after = meetings::seats(state.db(), &id).await?;
    for gone in before
        .iter()
        .filter(|b| !after.iter().any(|a| a.seat == b.seat))
    {
        state.kick(&m.id, &gone.seat, UNINVITED);
    }
    state
        .audit(
            &staff.username,
            &staff.ip,
            "meeting.update",
            &m.id,
            &m.title,
        )
        .await;
    Ok(axum::Json(detail(&state, &m).await?))
}

/// Cancel a meeting: its links stop working.
#[utoipa::path(post, path = "/api/v1/meetings/{id}/cancel", tag = "meetings",
    params(("id" = String, Path)),
    responses((status = 200, body = MeetingDetail), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn cancel_meeting(
    State(state): State<AdminState>,
    staff: Staff,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<MeetingDetail>, ApiError> {
    let m = meetings::cancel(state.db(), &id, db::unix_now()).await?;
    state.meeting_changed(&m.id).await;
    state.close_meeting(&m.id, CANCELLED);
    state
        .audit(
            &staff.username,
            &staff.ip,
            "meeting.cancel",
            &m.id,
            &m.title,
        )
        .await;
    Ok(axum::Json(detail(&state, &m).await?))
}

/// End a meeting now: no more joins, links expire.
#[utoipa::path(post, path = "/api/v1/meetings/{id}/end", tag = "meetings",
    params(("id" = String, Path)),
    responses((status = 200, body = MeetingDetail), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn end_meeting(
    State(state): State<AdminState>,
    staff: Staff,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<MeetingDetail>, ApiError> {
    let by = meetings::EndedBy::Staff(&staff.username);
    let m = meetings::end_by(state.db(), &id, by, db::unix_now()).await?;
    state.meeting_changed(&m.id).await;
    state.close_meeting(&m.id, ENDED);
    state
        .audit(&staff.username, &staff.ip, "meeting.end", &m.id, &m.title)
        .await;
    Ok(axum::Json(detail(&state, &m).await?))
}

/// A new meeting like this one, at new times, with new links.
#[utoipa::path(post, path = "/api/v1/meetings/{id}/copy", tag = "meetings",
    params(("id" = String, Path)), request_body = CopyInput,
    responses((status = 201, body = MeetingDetail), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn copy_meeting(
    State(state): State<AdminState>,
    staff: Staff,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<CopyInput>,
) -> Result<(StatusCode, axum::Json<MeetingDetail>), ApiError> {
    let m = meetings::copy(state.db(), &id, &input, &staff.username, db::unix_now()).await?;
    state.meeting_changed(&m.id).await;
    state
        .audit(
            &staff.username,
            &staff.ip,
            "meeting.copy",
            &m.id,
            &format!("from {id}"),
        )
        .await;
    Ok((StatusCode::CREATED, axum::Json(detail(&state, &m).await?)))
}

/// A new link for one seat; the old link stops working at once.
#[utoipa::path(post, path = "/api/v1/meetings/{id}/seats/{seat}/reissue", tag = "meetings",
    params(("id" = String, Path), ("seat" = String, Path)),
    responses((status = 200, body = SeatView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn reissue_link(
    State(state): State<AdminState>,
    staff: Staff,
    ApiPath((id, seat)): ApiPath<(String, String)>,
) -> Result<axum::Json<SeatView>, ApiError> {
    let s = meetings::reissue(state.db(), &id, &seat, db::unix_now()).await?;
    // The directory first: a reconnect with the old link is refused from here on.
    state.meeting_changed(&id).await;
    let kicked = state.kick(&id, &seat, REISSUED);
    let detail = if kicked {
        format!("{seat} (disconnected)")
    } else {
        seat.clone()
    };
    state
        .audit(&staff.username, &staff.ip, "link.reissue", &id, &detail)
        .await;
    let m = meetings::get(state.db(), &id).await?;
    Ok(axum::Json(seat_view(&state, &m, &s, &state.live(&id))?))
}

/// The seat's join link as a QR code (SVG), to scan with a phone or print.
#[utoipa::path(get, path = "/api/v1/meetings/{id}/seats/{seat}/qr.svg", tag = "meetings",
    params(("id" = String, Path), ("seat" = String, Path)),
    responses((status = 200, content_type = "image/svg+xml", body = String),
        (status = 404, body = ErrorBody)))]
pub async fn seat_qr(
    State(state): State<AdminState>,
    _staff: Staff,
    ApiPath((id, seat)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let m = meetings::get(state.db(), &id).await?;
    let s = meetings::seats(state.db(), &id)
        .await?
        .into_iter()
        .find(|s| s.seat == seat)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("Cuộc họp không có chỗ {seat:?}. / The meeting has no seat {seat:?}."),
            )
        })?;
    let link = seat_view(&state, &m, &s, &[])?.link;
    let code = qrcode::QrCode::with_error_correction_level(link.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| {
            tracing::error!("cannot make a QR code: {e}");
            ApiError::internal()
        })?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .build();
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response())
}

/// Who attended: present, late, absent, minutes connected.
#[utoipa::path(get, path = "/api/v1/meetings/{id}/attendance", tag = "meetings",
    params(("id" = String, Path)),
    responses((status = 200, body = AttendanceReport), (status = 404, body = ErrorBody)))]
pub async fn attendance(
    State(state): State<AdminState>,
    _staff: Staff,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<AttendanceReport>, ApiError> {
    Ok(axum::Json(
        attendance::report(state.db(), &id, db::unix_now()).await?,
    ))
}

/// The language of the attendance CSV.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CsvQuery {
    /// `vi` (default) or `en`: the headers, roles, statuses and link words.
    #[param(value_type = Option<String>)]
    pub lang: Option<Lang>,
}

/// The attendance report as CSV (UTF-8 with BOM, for Excel), in Vietnamese unless `lang=en`.
#[utoipa::path(get, path = "/api/v1/meetings/{id}/attendance.csv", tag = "meetings",
    params(("id" = String, Path), CsvQuery),
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn attendance_csv(
    State(state): State<AdminState>,
    _staff: Staff,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<CsvQuery>,
) -> Result<Response, ApiError> {
    let report = attendance::report(state.db(), &id, db::unix_now()).await?;
    // The id is ours (`m-` and hex), safe in a header.
    let filename = format!("attendance-{}.csv", report.meeting_id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        attendance_csv::to_csv(&report, q.lang.unwrap_or_default()),
    )
        .into_response())
}
