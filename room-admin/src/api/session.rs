//! Logging in and out, and who is asking.
//!
//! The session cookie `hoinghi_admin` is HttpOnly (scripts cannot read it), SameSite=Strict (no
//! other site can make the browser send it), Secure when the server runs TLS, and scoped to
//! `/api`. Every state-changing request (POST, PUT, PATCH, DELETE) must also carry the session's
//! CSRF token in the `X-CSRF-Token` header (synchronizer token): a forged cross-site request
//! has the cookie at most, never the token. Login itself needs a JSON body, which a cross-site
//! form cannot send.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AdminState;
use super::error::{ApiError, ApiJson, ErrorBody};
use crate::accounts;
use crate::db;

pub const COOKIE: &str = "hoinghi_admin";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The client's address (the TCP peer), for the audit log and throttling.
pub fn client_ip(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// A logged-in staff member; for state-changing methods, with a checked CSRF token.
#[derive(Debug, Clone)]
pub struct Staff {
    pub username: String,
    pub role: String,
    pub ip: String,
    pub csrf: String,
    /// The account's password must be changed before anything else (the bootstrap account).
    pub must_change_password: bool,
    cookie: String,
}

impl Staff {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

/// The `error.code` of every answer but the password change's while the account's password
/// must be changed.
pub const PASSWORD_CHANGE_REQUIRED: &str = "password_change_required";

/// A logged-in staff member whose password must be changed is refused everything but
/// [`StaffAnyPassword`]'s routes (who am I, log out, change the password).
impl FromRequestParts<AdminState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, ApiError> {
        let StaffAnyPassword(staff) = StaffAnyPassword::from_request_parts(parts, state).await?;
        if staff.must_change_password {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                PASSWORD_CHANGE_REQUIRED,
                "Hãy đổi mật khẩu trước khi dùng trang quản trị. / Change your password before \
                 using the admin panel.",
            ));
        }
        Ok(staff)
    }
}

/// A logged-in staff member, also while the account's password must be changed: for the
/// routes that let it be changed.
pub struct StaffAnyPassword(pub Staff);

impl FromRequestParts<AdminState> for StaffAnyPassword {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, ApiError> {
        let cookie = cookie_value(&parts.headers).ok_or_else(ApiError::unauthenticated)?;
        let session = accounts::session(state.db(), &cookie, db::unix_now())
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "Thiếu hoặc sai mã chống giả mạo (X-CSRF-Token). Hãy tải lại trang. / \
                     Missing or wrong anti-forgery token (X-CSRF-Token). Reload the page.",
                ));
            }
        }
        Ok(StaffAnyPassword(Staff {
            username: session.account.username,
            role: session.account.role,
            ip: client_ip(parts),
            csrf: session.csrf,
            must_change_password: session.account.must_change_password,
            cookie,
        }))
    }
}

/// The client's address as an extractor (for login, before there is a session).
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(ClientIp(client_ip(parts)))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub username: String,
    pub password: String,
}

/// Who is logged in, and the token to send as `X-CSRF-Token`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub username: String,
    pub role: String,
    pub csrf_token: String,
    /// Until the password is changed (`POST /api/v1/auth/password`), every other route answers
    /// 403 `password_change_required`.
    pub must_change_password: bool,
}

fn set_cookie(state: &AdminState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{COOKIE}={value}; Path=/api; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Log in: sets the session cookie and returns the CSRF token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "session",
    request_body = LoginInput,
    responses(
        (status = 200, body = Me),
        (status = 401, body = ErrorBody, description = "wrong user name or password"),
        (status = 429, body = ErrorBody, description = "too many failed attempts"),
    ))]
pub async fn login(
    axum::extract::State(state): axum::extract::State<AdminState>,
    ClientIp(ip): ClientIp,
    ApiJson(input): ApiJson<LoginInput>,
) -> Result<Response, ApiError> {
    let now = db::unix_now();
    let username: String = input.username.trim().chars().take(64).collect();
    // Reserved before the (slow) hash: parallel guesses cannot all get past the limit.
    let attempt = match state.throttle().reserve(&username, &ip, now) {
        Ok(attempt) => attempt,
        Err(wait) => {
            state
                .audit(&username, &ip, "login.throttled", &username, "")
                .await;
            return Err(too_many_attempts(wait));
        }
    };
    let account = accounts::find(state.db(), &username).await?;
    let hash = account.as_ref().filter(|a| !a.disabled).map_or_else(
        || accounts::dummy_hash().to_owned(),
        |a| a.password_hash.clone(),
    );
    let password_ok = accounts::verify_password_async(hash, input.password).await;
    let account = match account {
        Some(a) if password_ok && !a.disabled => a,
        _ => {
            drop(attempt);
            state
                .audit(&username, &ip, "login.failed", &username, "")
                .await;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "Sai tên đăng nhập hoặc mật khẩu. / Wrong user name or password.",
            ));
        }
    };
    attempt.succeeded();
    let (cookie, csrf) = accounts::start_session(state.db(), &account.username, &ip, now).await?;
    state
        .audit(&account.username, &ip, "login", &account.username, "")
        .await;
    let body = Me {
        username: account.username,
        role: account.role,
        csrf_token: csrf,
        must_change_password: account.must_change_password,
    };
    let cookie = set_cookie(&state, &cookie, accounts::SESSION_SECS);
    Ok(([(header::SET_COOKIE, cookie)], axum::Json(body)).into_response())
}

/// The 429 answer of a throttled password check: how long to wait, in words and in
/// `Retry-After`.
fn too_many_attempts(wait: i64) -> ApiError {
    let (vi, en) = if wait < 60 {
        (format!("{wait} giây"), format!("in {wait} seconds"))
    } else {
        let minutes = (wait + 59) / 60;
        (format!("{minutes} phút"), format!("in {minutes} minutes"))
    };
    ApiError {
        retry_after: Some(wait),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "Nhập sai mật khẩu quá nhiều lần. Hãy thử lại sau {vi}. / Too many wrong \
                 passwords. Try again {en}."
            ),
        )
    }
}

/// Log out: ends the session and clears the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "session",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn logout(
    axum::extract::State(state): axum::extract::State<AdminState>,
    StaffAnyPassword(staff): StaffAnyPassword,
) -> Result<Response, ApiError> {
    accounts::end_session(state.db(), &staff.cookie).await?;
    state
        .audit(&staff.username, &staff.ip, "logout", &staff.username, "")
        .await;
    let cookie = set_cookie(&state, "", 0);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// The logged-in account and its CSRF token.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "session",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(StaffAnyPassword(staff): StaffAnyPassword) -> axum::Json<Me> {
    axum::Json(Me {
        username: staff.username,
        role: staff.role,
        csrf_token: staff.csrf,
        must_change_password: staff.must_change_password,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// Change one's own password (ends all one's sessions, this one included).
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "session",
    request_body = ChangePassword,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "too many wrong current passwords")))]
pub async fn change_own_password(
    axum::extract::State(state): axum::extract::State<AdminState>,
    StaffAnyPassword(staff): StaffAnyPassword,
    ApiJson(input): ApiJson<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    // The new password's rule first: a refusal for it costs no guess of the current one.
    accounts::check_password_field("new_password", &input.new_password, &staff.username)?;
    // The current password is throttled like a login: a stolen session cookie must not become
    // an unlimited password oracle.
    let attempt = state
        .throttle()
        .reserve(&staff.username, &staff.ip, db::unix_now())
        .map_err(too_many_attempts)?;
    let account = accounts::get(state.db(), &staff.username).await?;
    if !accounts::verify_password_async(account.password_hash, input.current_password).await {
        drop(attempt);
        state
            .audit(
                &staff.username,
                &staff.ip,
                "account.password_failed",
                &staff.username,
                "own",
            )
            .await;
        return Err(crate::error::StoreError::invalid_field(
            "current_password",
            "Mật khẩu hiện tại không đúng. / The current password is wrong.",
        )
        .into());
    }
    attempt.succeeded();
    accounts::set_password(
        state.db(),
        &staff.username,
        &input.new_password,
        db::unix_now(),
    )
    .await?;
    state
        .audit(
            &staff.username,
            &staff.ip,
            "account.password",
            &staff.username,
            "own",
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
