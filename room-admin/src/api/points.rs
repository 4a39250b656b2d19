//! `/api/v1/points`: the directory, and CSV import.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::AdminState;
use super::error::{ApiBytes, ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use super::session::Staff;
use crate::db;
use crate::import::{self, ImportReport};
use crate::points::{self, Point, PointInput};
use crate::{ics, links, meetings};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PointQuery {
    /// Words in the code, name, district or unit (case and diacritics ignored).
    #[serde(default)]
    pub q: String,
    /// Only this kind.
    pub kind: Option<String>,
    /// Include disabled points.
    #[serde(default)]
    pub include_disabled: bool,
    /// At most this many points (1 to 10,000; default: all). The total is in `X-Total-Count`.
    pub limit: Option<i64>,
    /// Skip this many points first (default 0).
    pub offset: Option<i64>,
}

/// Most points one page may hold (a province has a few hundred).
pub const MAX_PAGE: i64 = 10_000;

/// Search the directory, by code. Paged with `limit` and `offset`; `X-Total-Count` is the number
/// of matches.
#[utoipa::path(get, path = "/api/v1/points", tag = "points", params(PointQuery),
    responses((status = 200, body = Vec<Point>,
        headers(("X-Total-Count" = i64, description = "Points matching, all pages"))),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_points(
    State(state): State<AdminState>,
    _staff: Staff,
    ApiQuery(q): ApiQuery<PointQuery>,
) -> Result<Response, ApiError> {
    let kind = q.kind.as_deref().filter(|k| !k.is_empty());
    if q.limit.is_some_and(|l| !(1..=MAX_PAGE).contains(&l)) {
        return Err(crate::error::StoreError::invalid_field(
            "limit",
            format!("Từ 1 đến {MAX_PAGE}. / 1 to {MAX_PAGE}."),
        )
        .into());
    }
    if q.offset.is_some_and(|o| o < 0) {
        return Err(crate::error::StoreError::invalid_field(
            "offset",
            "Không được âm. / Must not be negative.",
        )
        .into());
    }
    let found = points::search(state.db(), &q.q, kind, q.include_disabled).await?;
    let total = found.len();
    let page: Vec<Point> = found
        .into_iter()
        .skip(usize::try_from(q.offset.unwrap_or(0)).unwrap_or(usize::MAX))
        .take(usize::try_from(q.limit.unwrap_or(MAX_PAGE)).unwrap_or(0))
        .collect();
    Ok((
        [(
            header::HeaderName::from_static("x-total-count"),
            total.to_string(),
        )],
        axum::Json(page),
    )
        .into_response())
}

/// Add a point.
#[utoipa::path(post, path = "/api/v1/points", tag = "points", request_body = PointInput,
    responses((status = 201, body = Point), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_point(
    State(state): State<AdminState>,
    staff: Staff,
    ApiJson(input): ApiJson<PointInput>,
) -> Result<(StatusCode, axum::Json<Point>), ApiError> {
    let p = points::create(state.db(), &input, db::unix_now()).await?;
    state
        .audit(&staff.username, &staff.ip, "point.create", &p.code, &p.name)
        .await;
    Ok((StatusCode::CREATED, axum::Json(p)))
}

/// One point.
#[utoipa::path(get, path = "/api/v1/points/{code}", tag = "points",
    params(("code" = String, Path)),
    responses((status = 200, body = Point), (status = 404, body = ErrorBody)))]
pub async fn get_point(
    State(state): State<AdminState>,
    _staff: Staff,
    ApiPath(code): ApiPath<String>,
) -> Result<axum::Json<Point>, ApiError> {
    Ok(axum::Json(points::get(state.db(), &code).await?))
}

/// The fields of a point that can change (everything but its code).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointUpdate {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub district: String,
    #[serde(default)]
    pub contact_name: String,
    #[serde(default)]
    pub contact_phone: String,
    #[serde(default)]
    pub expected_link: String,
    #[serde(default)]
    pub notes: String,
}

/// Edit a point (its code never changes).
#[utoipa::path(put, path = "/api/v1/points/{code}", tag = "points",
    params(("code" = String, Path)), request_body = PointUpdate,
    responses((status = 200, body = Point), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_point(
    State(state): State<AdminState>,
    staff: Staff,
    ApiPath(code): ApiPath<String>,
    ApiJson(u): ApiJson<PointUpdate>,
) -> Result<axum::Json<Point>, ApiError> {
    let input = PointInput {
        code: code.clone(),
        name: u.name,
        kind: u.kind,
        unit: u.unit,
        district: u.district,
        contact_name: u.contact_name,
        contact_phone: u.contact_phone,
        expected_link: u.expected_link,
        notes: u.notes,
    };
    let p = points::update(state.db(), &code, &input, db::unix_now()).await?;
    state
        .audit(&staff.username, &staff.ip, "point.update", &p.code, &p.name)
        .await;
    Ok(axum::Json(p))
}

/// Disable a point: it can no longer be invited (history is kept), its links stop working in
/// every meeting it is invited to, and a connection of it in a running meeting is closed.
#[utoipa::path(post, path = "/api/v1/points/{code}/disable", tag = "points",
    params(("code" = String, Path)),
    responses((status = 200, body = Point), (status = 404, body = ErrorBody)))]
pub async fn disable_point(
    State(state): State<AdminState>,
    staff: Staff,
    ApiPath(code): ApiPath<String>,
) -> Result<axum::Json<Point>, ApiError> {
    let p = points::set_disabled(state.db(), &code, true, db::unix_now()).await?;
    let mut kicked = Vec::new();
    for meeting in state.point_changed(&p.code).await {
        if state.kick(&meeting, &p.code, POINT_DISABLED) {
            kicked.push(meeting);
        }
    }
    let detail = if kicked.is_empty() {
        String::new()
    } else {
        format!("disconnected from {}", kicked.join(", "))
    };
    state
        .audit(
            &staff.username,
            &staff.ip,
            "point.disable",
            &p.code,
            &detail,
        )
        .await;
    Ok(axum::Json(p))
}

/// What a disabled point's staff read when its connection is closed.
pub const POINT_DISABLED: &str = "Điểm cầu này đã bị ngừng sử dụng trong danh bạ. Hãy liên hệ \
                                  cán bộ kỹ thuật. / This point was disabled in the directory. \
                                  Contact the IT staff.";

/// Enable a disabled point.
#[utoipa::path(post, path = "/api/v1/points/{code}/enable", tag = "points",
    params(("code" = String, Path)),
    responses((status = 200, body = Point), (status = 404, body = ErrorBody)))]
pub async fn enable_point(
    State(state): State<AdminState>,
    staff: Staff,
    ApiPath(code): ApiPath<String>,
) -> Result<axum::Json<Point>, ApiError> {
    let p = points::set_disabled(state.db(), &code, false, db::unix_now()).await?;
    state.point_changed(&p.code).await;
    state
        .audit(&staff.username, &staff.ip, "point.enable", &p.code, "")
        .await;
    Ok(axum::Json(p))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Only check and preview; write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Import points from a CSV file (the request body, UTF-8). All rows or none.
#[utoipa::path(post, path = "/api/v1/points/import", tag = "points", params(ImportQuery),
    request_body(content = String, content_type = "text/csv",
        description = "header code,name,kind[,unit,district,contact_name,contact_phone,\
                       expected_link,notes]"),
    responses(
        (status = 200, body = ImportReport, description = "checked (dry run) or imported"),
        (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody,
            description = "file-level error, or row errors with the report in `details`")))]
pub async fn import_points(
    State(state): State<AdminState>,
    staff: Staff,
    ApiQuery(q): ApiQuery<ImportQuery>,
    ApiBytes(body): ApiBytes,
) -> Result<axum::Json<ImportReport>, ApiError> {
    let report = import::import(state.db(), &body, q.dry_run, db::unix_now()).await?;
    if report.error_count > 0 {
        return Err(ApiError {
            details: serde_json::to_value(&report).ok(),
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "import_rejected",
                format!(
                    "{} lỗi trong tệp; chưa nhập dòng nào. / {} errors in the file; nothing was \
                     imported.",
                    report.error_count, report.error_count
                ),
            )
        });
    }
    if report.applied {
        let detail = format!(
            "{} created, {} updated, {} unchanged",
            report.created, report.updated, report.unchanged
        );
        state
            .audit(&staff.username, &staff.ip, "point.import", "", &detail)
            .await;
    }
    Ok(axum::Json(report))
}

/// The point's meetings as an iCalendar file, with its own join links.
#[utoipa::path(get, path = "/api/v1/points/{code}/calendar.ics", tag = "calendar",
    params(("code" = String, Path)),
    responses((status = 200, content_type = "text/calendar", body = String),
        (status = 404, body = ErrorBody)))]
pub async fn point_calendar(
    State(state): State<AdminState>,
    _staff: Staff,
    ApiPath(code): ApiPath<String>,
) -> Result<Response, ApiError> {
    let p = points::get(state.db(), &code).await?;
    let body = point_ics(&state, &p).await?;
    Ok(calendar_response(body, &format!("hoinghi-{}.ics", p.code)))
}

/// The point's meetings (and only those) as iCalendar text, each with the point's join link.
pub(crate) async fn point_ics(state: &AdminState, p: &Point) -> Result<String, ApiError> {
    let list = meetings::for_point(state.db(), &p.code).await?;
    let links: Vec<Option<String>> = list
        .iter()
        .map(|(m, seat)| links::link(state.tokens(), state.base_url(), m, seat).ok())
        .collect();
    let events: Vec<ics::Event<'_>> = list
        .iter()
        .zip(links)
        .map(|((m, _), link)| ics::Event { meeting: m, link })
        .collect();
    Ok(ics::calendar(&p.name, &events))
}

pub(crate) fn calendar_response(body: String, filename: &str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}
