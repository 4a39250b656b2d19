//! `/api/v1/meetings/{id}/upstream`: link a local meeting to an upstream server's relay seat
//! (the cascade, issue 13, downstream side), see it, unlink it. The link is a secret: answers
//! and the audit log show it cut short.

use axum::extract::State;
use axum::http::StatusCode;

use super::AdminState;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::session::Staff;
use crate::db;
use crate::error::StoreError;
use crate::upstream::{self, UpstreamInput, UpstreamLink, UpstreamView};

fn view(state: &AdminState, l: &UpstreamLink) -> UpstreamView {
    let relay = state
        .relays()
        .relay_state(&l.meeting_id)
        .unwrap_or("stopped");
    UpstreamView::new(l, relay)
}

fn not_linked(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "Cuộc họp {id:?} không liên kết với điểm cầu cấp trên. / Meeting {id:?} has no \
             upstream link."
        ),
    )
}

/// The meeting's upstream link (its token cut short) and what the relay is doing.
#[utoipa::path(get, path = "/api/v1/meetings/{id}/upstream", tag = "meetings",
    params(("id" = String, Path)),
    responses((status = 200, body = UpstreamView), (status = 404, body = ErrorBody)))]
pub async fn get_upstream(
    State(state): State<AdminState>,
    _staff: Staff,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<UpstreamView>, ApiError> {
    let l = upstream::get(state.db(), &id)
        .await?
        .ok_or_else(|| not_linked(&id))?;
    Ok(axum::Json(view(&state, &l)))
}

/// Links the meeting to an upstream relay seat (replacing any previous link): while the
/// meeting is open or live, this server joins the upstream meeting with it and shows the
/// upstream program to the meeting's points.
#[utoipa::path(put, path = "/api/v1/meetings/{id}/upstream", tag = "meetings",
    params(("id" = String, Path)), request_body = UpstreamInput,
    responses((status = 200, body = UpstreamView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_upstream(
    State(state): State<AdminState>,
    staff: Staff,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<UpstreamInput>,
) -> Result<axum::Json<UpstreamView>, ApiError> {
    // A seat of this server's own: the relay would join here and show itself as the program.
    if let Ok(link) = signaling::relay_link::RelayLink::parse(&input.link)
        && state.authorizer().signed_here(link.token())
    {
        return Err(StoreError::invalid_field(
            "link",
            "Liên kết này là của chính máy chủ này, không thể làm điểm cầu cấp trên. / This link \
             is a seat of this server: a meeting linked to it would loop.",
        )
        .into());
    }
    let l = upstream::set(state.db(), &id, &input, &staff.username, db::unix_now()).await?;
    state.relays().changed(&id);
    let v = view(&state, &l);
    state
        .audit(&staff.username, &staff.ip, "upstream.link", &id, &v.link)
        .await;
    Ok(axum::Json(v))
}

/// Unlinks the meeting: its relay stops and the local chair is the program again.
#[utoipa::path(delete, path = "/api/v1/meetings/{id}/upstream", tag = "meetings",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_upstream(
    State(state): State<AdminState>,
    staff: Staff,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if !upstream::remove(state.db(), &id).await? {
        return Err(not_linked(&id));
    }
    state.relays().changed(&id);
    state
        .audit(&staff.username, &staff.ip, "upstream.unlink", &id, "")
        .await;
    Ok(StatusCode::NO_CONTENT)
}
