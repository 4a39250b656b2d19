//! Calendar subscriptions without login: feed URLs that calendar programs poll.
//!
//! - `GET /api/v1/calendar/all.ics?key=…`: every meeting, never a join link (for IT staff).
//! - `GET /api/v1/calendar/points/{code}.ics?key=…`: that point's meetings only, each with the
//!   point's join link (the key is as secret as the link).
//!
//! The key is the feed's random secret ([`crate::feeds`]); the panel shows the URL (logged in)
//! and re-issues it, which stops the old URL at once. A wrong or missing key, an unknown or a
//! disabled point all get the same 404: the answer never tells whether a point exists.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AdminState;
use super::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use super::session::Staff;
use crate::feeds::{self, FeedKey};
use crate::{db, points, timefmt};

/// A calendar feed as the panel shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedView {
    /// The subscription URL (a key: anyone holding it reads the feed).
    pub url: String,
    /// The same URL with `webcal://`, which calendar programs open as a subscription.
    pub webcal_url: String,
    /// When the key was issued, RFC 3339 in Vietnam time.
    pub issued_local: String,
}

impl FeedView {
    fn new(state: &AdminState, path: &str, key: &FeedKey) -> FeedView {
        let url = format!("{}{path}?key={}", state.base_url(), key.feed_key);
        let webcal_url = match url.split_once("://") {
            Some((_, rest)) => format!("webcal://{rest}"),
            None => url.clone(),
        };
        FeedView {
            url,
            webcal_url,
            issued_local: timefmt::local_rfc3339(key.issued_at),
        }
    }
}

fn point_path(code: &str) -> String {
    format!("/api/v1/calendar/points/{code}.ics")
}

const ALL_PATH: &str = "/api/v1/calendar/all.ics";

#[derive(Debug, Deserialize, IntoParams)]
pub struct FeedQuery {
    /// The feed key from the subscription URL.
    pub key: Option<String>,
}

fn no_feed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "Không có lịch này: địa chỉ sai hoặc đã được cấp lại. / No such calendar: the address \
         is wrong or was re-issued.",
    )
}

fn feed_response(body: String, filename: &str) -> Response {
    let mut res = super::points::calendar_response(body, filename);
    // Personal (it may carry join links): no shared cache keeps it.
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    res
}

/// The point's feed URL (created on first use).
#[utoipa::path(get, path = "/api/v1/points/{code}/calendar-feed", tag = "calendar",
    params(("code" = String, Path)),
    responses((status = 200, body = FeedView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn point_feed(
    State(state): State<AdminState>,
    _staff: Staff,
    ApiPath(code): ApiPath<String>,
) -> Result<axum::Json<FeedView>, ApiError> {
    let p = points::get(state.db(), &code).await?;
    let key =
        feeds::get_or_create(state.db(), &feeds::point_scope(&p.code), db::unix_now()).await?;
    Ok(axum::Json(FeedView::new(
        &state,
        &point_path(&p.code),
        &key,
    )))
}

/// A new feed URL for the point; the old one stops working.
#[utoipa::path(post, path = "/api/v1/points/{code}/calendar-feed/reissue", tag = "calendar",
    params(("code" = String, Path)),
    responses((status = 200, body = FeedView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn reissue_point_feed(
    State(state): State<AdminState>,
    staff: Staff,
    ApiPath(code): ApiPath<String>,
) -> Result<axum::Json<FeedView>, ApiError> {
    let p = points::get(state.db(), &code).await?;
    let key = feeds::reissue(state.db(), &feeds::point_scope(&p.code), db::unix_now()).await?;
    state
        .audit(
            &staff.username,
            &staff.ip,
            "point.calendar_feed_reissue",
            &p.code,
            "",
        )
        .await;
    Ok(axum::Json(FeedView::new(
        &state,
        &point_path(&p.code),
        &key,
    )))
}

/// The all-meetings feed URL (created on first use).
#[utoipa::path(get, path = "/api/v1/calendar/feed", tag = "calendar",
    responses((status = 200, body = FeedView), (status = 401, body = ErrorBody)))]
pub async fn all_feed(
    State(state): State<AdminState>,
    _staff: Staff,
) -> Result<axum::Json<FeedView>, ApiError> {
    let key = feeds::get_or_create(state.db(), feeds::ALL, db::unix_now()).await?;
    Ok(axum::Json(FeedView::new(&state, ALL_PATH, &key)))
}

/// A new all-meetings feed URL; the old one stops working.
#[utoipa::path(post, path = "/api/v1/calendar/feed/reissue", tag = "calendar",
    responses((status = 200, body = FeedView), (status = 401, body = ErrorBody)))]
pub async fn reissue_all_feed(
    State(state): State<AdminState>,
    staff: Staff,
) -> Result<axum::Json<FeedView>, ApiError> {
    let key = feeds::reissue(state.db(), feeds::ALL, db::unix_now()).await?;
    state
        .audit(
            &staff.username,
            &staff.ip,
            "calendar.feed_reissue",
            feeds::ALL,
            "",
        )
        .await;
    Ok(axum::Json(FeedView::new(&state, ALL_PATH, &key)))
}

/// Subscription feed of every meeting, without join links. No login: the key is the access.
#[utoipa::path(get, path = "/api/v1/calendar/all.ics", tag = "calendar", params(FeedQuery),
    responses((status = 200, content_type = "text/calendar", body = String),
        (status = 404, body = ErrorBody, description = "wrong or missing key")))]
pub async fn all_feed_ics(
    State(state): State<AdminState>,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> Result<Response, ApiError> {
    let key = q.key.unwrap_or_default();
    if !feeds::check(state.db(), feeds::ALL, &key).await? {
        return Err(no_feed());
    }
    Ok(feed_response(
        super::admin::all_ics(&state).await?,
        "hoinghi.ics",
    ))
}

/// Subscription feed of one point: its meetings only, each with its join link. No login: the
/// key is the access. `file` is `<code>.ics`.
#[utoipa::path(get, path = "/api/v1/calendar/points/{file}", tag = "calendar",
    params(("file" = String, Path, description = "`<point code>.ics`"), FeedQuery),
    responses((status = 200, content_type = "text/calendar", body = String),
        (status = 404, body = ErrorBody,
            description = "wrong or missing key, or no such point (not told apart)")))]
pub async fn point_feed_ics(
    State(state): State<AdminState>,
    ApiPath(file): ApiPath<String>,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> Result<Response, ApiError> {
    let code = file.strip_suffix(".ics").ok_or_else(no_feed)?;
    let key = q.key.unwrap_or_default();
    if !points::valid_code(code)
        || !feeds::check(state.db(), &feeds::point_scope(code), &key).await?
    {
        return Err(no_feed());
    }
    let p = match points::find(state.db(), code).await? {
        Some(p) if !p.disabled => p,
        _ => return Err(no_feed()),
    };
    let body = super::points::point_ics(&state, &p).await?;
    Ok(feed_response(body, &format!("hoinghi-{}.ics", p.code)))
}
