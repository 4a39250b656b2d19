//! The admin REST API under `/api/v1`, and its OpenAPI document at `/api/v1/openapi.json`.
//!
//! Every route is declared once, with its `#[utoipa::path]`, and registered through
//! `utoipa_axum`: the router and the document come from the same list, so the document cannot
//! miss a route. The admin panel (`/admin`) uses only this API.
//!
//! # Layout
//! - [`error`]: the JSON error answer and extractors that map every rejection to it.
//! - [`session`]: login, logout, the session cookie, CSRF check, the `Staff` extractor.
//! - [`points`]: the directory and CSV import.
//! - [`meetings`]: meetings, seats, links, QR codes, attendance.
//! - [`admin`]: accounts, audit log, dashboard, calendars.
//! - [`calendar`]: calendar subscription feeds (no login: a key in the URL).
//! - [`join`]: the public check of a join link before joining (no login: the link is the key).
//! - [`upstream`]: a meeting's link to an upstream relay seat (the cascade, downstream side).

pub mod admin;
pub mod calendar;
pub mod error;
pub mod join;
pub mod meetings;
pub mod points;
pub mod session;
pub mod upstream;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::{self, Db};
use crate::directory::Directory;
use crate::throttle::LoginThrottle;
use crate::tokens::JoinTokens;

/// The running meetings, as the API sees them: who is connected right now, and the two ways
/// the panel acts on connections (the signaling layer, or a fake in tests).
pub trait LiveSource: Send + Sync + 'static {
    fn live(&self, meeting: &str) -> Vec<LiveSeat>;
    /// Disconnects a seat's connections, telling them `reason` (its link was re-issued, or it
    /// is no longer invited). Whether one was connected.
    fn kick(&self, _meeting: &str, _seat: &str, _reason: &str) -> bool {
        false
    }
    /// Ends a running meeting for everyone in it (cancelled or ended from the panel). How many
    /// were connected.
    fn close_meeting(&self, _meeting: &str, _reason: &str) -> usize {
        0
    }
    /// Ends a meeting that reached its planned end: like [`LiveSource::close_meeting`], with the
    /// `bye` code that says the schedule ended it (not the chair).
    fn end_by_schedule(&self, meeting: &str, reason: &str) -> usize {
        self.close_meeting(meeting, reason)
    }
    /// Tells the meeting's chair that it ends by itself at `ends_at` (Unix seconds), in
    /// `minutes_left` minutes. How many chairs were told.
    fn warn_end(&self, _meeting: &str, _ends_at: i64, _minutes_left: u32) -> usize {
        0
    }
}

/// One connected participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LiveSeat {
    pub participant: String,
    /// The seat (point code, `obs-…`, or a test-room seat).
    pub seat: String,
    pub name: String,
    pub role: String,
}

/// A `LiveSource` that knows nobody (no signaling attached).
pub struct NobodyLive;

impl LiveSource for NobodyLive {
    fn live(&self, _meeting: &str) -> Vec<LiveSeat> {
        Vec::new()
    }
}

/// The real thing: the signaling layer of this process.
impl LiveSource for signaling::Signaling {
    fn live(&self, meeting: &str) -> Vec<LiveSeat> {
        signaling::Signaling::live(self, meeting)
            .into_iter()
            .map(|p| LiveSeat {
                participant: p.id,
                seat: p.point,
                name: p.name,
                role: crate::links::role_str(p.role).to_owned(),
            })
            .collect()
    }

    fn kick(&self, meeting: &str, seat: &str, reason: &str) -> bool {
        signaling::Signaling::kick(self, meeting, seat, reason)
    }

    fn close_meeting(&self, meeting: &str, reason: &str) -> usize {
        signaling::Signaling::close_meeting(self, meeting, reason)
    }

    fn end_by_schedule(&self, meeting: &str, reason: &str) -> usize {
        signaling::Signaling::end_by_schedule(self, meeting, reason)
    }

    fn warn_end(&self, meeting: &str, ends_at: i64, minutes_left: u32) -> usize {
        let ends_at = u64::try_from(ends_at).unwrap_or(0);
        signaling::Signaling::warn_end(self, meeting, ends_at, minutes_left)
    }
}

/// What the handlers share; cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    tokens: JoinTokens,
    directory: Arc<Directory>,
    base_url: String,
    secure_cookies: bool,
    live: Arc<dyn LiveSource>,
    relays: Arc<dyn crate::upstream::RelayStatus>,
    throttle: LoginThrottle,
    join_checks: join::CheckLimiter,
}

impl AdminState {
    /// `base_url` is `scheme://host[:port]` of join links; `secure_cookies` adds `Secure` to the
    /// session cookie (on whenever TLS is).
    pub fn new(
        db: Db,
        tokens: JoinTokens,
        directory: Arc<Directory>,
        base_url: String,
        secure_cookies: bool,
        live: Arc<dyn LiveSource>,
    ) -> AdminState {
        AdminState {
            inner: Arc::new(Inner {
                db,
                tokens,
                directory,
                base_url,
                secure_cookies,
                live,
                relays: Arc::new(crate::upstream::NoRelays),
                throttle: LoginThrottle::default(),
                join_checks: join::CheckLimiter::default(),
            }),
        }
    }

    /// Reports and drives the server's relay clients (linked meetings). Call before sharing.
    pub fn with_relays(mut self, relays: Arc<dyn crate::upstream::RelayStatus>) -> AdminState {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.relays = relays,
            None => tracing::error!("relay status ignored: AdminState was already shared"),
        }
        self
    }

    pub(crate) fn relays(&self) -> &dyn crate::upstream::RelayStatus {
        self.inner.relays.as_ref()
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn tokens(&self) -> &JoinTokens {
        &self.inner.tokens
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    pub fn live(&self, meeting: &str) -> Vec<LiveSeat> {
        self.inner.live.live(meeting)
    }

    pub(crate) fn kick(&self, meeting: &str, seat: &str, reason: &str) -> bool {
        self.inner.live.kick(meeting, seat, reason)
    }

    pub(crate) fn close_meeting(&self, meeting: &str, reason: &str) -> usize {
        self.inner.live.close_meeting(meeting, reason)
    }

    pub(crate) fn end_by_schedule(&self, meeting: &str, reason: &str) -> usize {
        self.inner.live.end_by_schedule(meeting, reason)
    }

    pub(crate) fn warn_end(&self, meeting: &str, ends_at: i64, minutes_left: u32) -> usize {
        self.inner.live.warn_end(meeting, ends_at, minutes_left)
    }

    pub(crate) fn throttle(&self) -> &LoginThrottle {
        &self.inner.throttle
    }

    pub(crate) fn join_checks(&self) -> &join::CheckLimiter {
        &self.inner.join_checks
    }

    /// The join authorizer over this state's tokens and directory (the one signaling uses
    /// decides the same).
    pub fn authorizer(&self) -> crate::JoinAuthorizer {
        crate::JoinAuthorizer::with_directory(
            self.inner.tokens.clone(),
            self.inner.directory.clone(),
        )
    }

    pub(crate) fn secure_cookies(&self) -> bool {
        self.inner.secure_cookies
    }

    /// Tells the join authorizer that a meeting changed.
    pub(crate) async fn meeting_changed(&self, id: &str) {
        if let Err(e) = self.inner.directory.refresh(&self.inner.db, id).await {
            tracing::error!(meeting = id, "cannot refresh the meeting directory: {e}");
        }
    }

    /// Tells the join authorizer that a point was disabled or enabled: every meeting it has a
    /// seat in is re-read. Returns those meetings.
    pub(crate) async fn point_changed(&self, code: &str) -> Vec<String> {
        let meetings = self.inner.directory.meetings_of_point(code);
        for id in &meetings {
            self.meeting_changed(id).await;
        }
        meetings
    }

    /// Writes an audit entry; a failure is logged (the action itself already happened).
    pub(crate) async fn audit(
        &self,
        actor: &str,
        ip: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) {
        if let Err(e) =
            crate::audit::record(self.db(), db::unix_now(), actor, ip, action, target, detail).await
        {
            tracing::error!(action, "cannot write the audit log: {e}");
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hoinghi admin API",
        description = "Points, meetings, join links, attendance, accounts and audit log of a \
                       hoinghi server. Log in with POST /api/v1/auth/login; send the returned \
                       csrf_token as the X-CSRF-Token header on every POST, PUT and DELETE.",
        version = "1"
    ),
    tags(
        (name = "session"), (name = "points"), (name = "meetings"),
        (name = "accounts"), (name = "audit"), (name = "dashboard"), (name = "calendar"),
        (name = "join")
    )
)]
struct ApiDoc;

/// Path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// The routes with their documentation, before the state is attached.
pub fn documented() -> OpenApiRouter<AdminState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session::login))
        .routes(routes!(session::logout))
        .routes(routes!(session::me))
        .routes(routes!(session::change_own_password))
        .routes(routes!(points::list_points, points::create_point))
        .routes(routes!(points::get_point, points::update_point))
        .routes(routes!(points::disable_point))
        .routes(routes!(points::enable_point))
        .routes(routes!(points::import_points))
        .routes(routes!(points::point_calendar))
        .routes(routes!(meetings::list_meetings, meetings::create_meeting))
        .routes(routes!(meetings::get_meeting, meetings::update_meeting))
        .routes(routes!(meetings::cancel_meeting))
        .routes(routes!(meetings::end_meeting))
        .routes(routes!(meetings::copy_meeting))
        .routes(routes!(meetings::reissue_link))
        .routes(routes!(meetings::seat_qr))
        .routes(routes!(meetings::attendance))
        .routes(routes!(meetings::attendance_csv))
        .routes(routes!(
            upstream::get_upstream,
            upstream::set_upstream,
            upstream::remove_upstream
        ))
        .routes(routes!(admin::list_accounts, admin::create_account))
        .routes(routes!(admin::set_account_password))
        .routes(routes!(admin::disable_account))
        .routes(routes!(admin::enable_account))
        .routes(routes!(admin::audit_log))
        .routes(routes!(admin::dashboard))
        .routes(routes!(admin::calendar))
        .routes(routes!(calendar::point_feed))
        .routes(routes!(calendar::reissue_point_feed))
        .routes(routes!(calendar::all_feed))
        .routes(routes!(calendar::reissue_all_feed))
        .routes(routes!(calendar::all_feed_ics))
        .routes(routes!(calendar::point_feed_ics))
        .routes(routes!(join::check))
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().split_for_parts().1
}

/// Every `/api/v1` route, plus the OpenAPI document, with `state` attached.
pub fn router(state: AdminState) -> Router {
    let (router, doc) = documented().split_for_parts();
    let doc = Arc::new(doc);
    router
        .route(
            OPENAPI_PATH,
            get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        // Not a fallback: the binary merges this router with others that have theirs.
        .route(
            "/api/v1/{*rest}",
            axum::routing::any(|| async {
                error::ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "not_found",
                    "Không có địa chỉ API này. / No such API route.",
                )
            }),
        )
        .with_state(state)
}
