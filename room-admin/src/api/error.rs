//! The API's error answer and the extractors that produce it.
//!
//! Every failure is `{"error": {"code": "...", "message": "...", "fields": {...}}}` with a
//! status that says the class (400 malformed, 401 not logged in, 403 not allowed or no CSRF
//! token, 404 unknown id, 409 conflicts with what is stored, 413 too large, 415 wrong content
//! type, 422 invalid fields, 429 throttled). A database failure is logged and answered as a
//! bare `internal` error: its text never reaches the client.

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::error::{Fields, StoreError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Fields,
    /// Extra data for the client (the import report of a refused import).
    pub details: Option<serde_json::Value>,
    pub retry_after: Option<i64>,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorInfo,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorInfo {
    /// Stable machine-readable code (`invalid`, `not_found`, `csrf`, ...).
    pub code: String,
    /// For people, Vietnamese then English.
    pub message: String,
    /// Field name → what is wrong with it.
    pub fields: Fields,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: Fields::new(),
            details: None,
            retry_after: None,
        }
    }

    pub fn unauthenticated() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Hãy đăng nhập. / Please log in.",
        )
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Chỉ quản trị viên được làm việc này. / Only an admin may do this.",
        )
    }

    pub fn too_large() -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "Dữ liệu gửi lên quá lớn (tối đa 1 MiB). / The request body is too large (1 MiB \
             at most).",
        )
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Lỗi máy chủ. Hãy thử lại; nếu vẫn lỗi, báo cho quản trị hệ thống. / Server error. \
             Try again; if it persists, tell the system administrator.",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Db(e) => {
                tracing::error!("database error in the admin API: {e}");
                ApiError::internal()
            }
            StoreError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            StoreError::Invalid { message, fields } => ApiError {
                fields,
                ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            },
            StoreError::Conflict { message, fields } => ApiError {
                fields,
                ..ApiError::new(StatusCode::CONFLICT, "conflict", message)
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorInfo {
                code: self.code.to_owned(),
                message: self.message,
                fields: self.fields,
                details: self.details,
            },
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

/// A JSON body whose rejections are [`ApiError`]s.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Cần Content-Type: application/json. / Expected Content-Type: application/json.",
        ),
        JsonRejection::JsonSyntaxError(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            "Nội dung không phải JSON hợp lệ. / The body is not valid JSON.",
        ),
        JsonRejection::JsonDataError(e) => {
            // "Failed to deserialize ...: title: invalid type: ..." → the part after the prefix.
            let text = e.body_text();
            let detail = text.split_once(": ").map_or(text.as_str(), |(_, d)| d);
            let mut fields = Fields::new();
            let field = detail
                .split_once(": ")
                .map(|(f, _)| f)
                .filter(|f| !f.contains(' '))
                .unwrap_or("body");
            let field =
                if detail.starts_with("missing field `") || detail.starts_with("unknown field `") {
                    detail.split('`').nth(1).unwrap_or("body")
                } else {
                    field
                };
            fields.insert(field.to_owned(), detail.to_owned());
            ApiError {
                fields,
                ..ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    format!(
                        "Dữ liệu sai kiểu hoặc thiếu trường. / Wrong type or missing field: {detail}"
                    ),
                )
            }
        }
        JsonRejection::BytesRejection(b) => bytes_rejection(b),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Yêu cầu không hợp lệ. / Bad request.",
        ),
    }
}

pub fn bytes_rejection(b: BytesRejection) -> ApiError {
    if b.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large()
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Không đọc được nội dung gửi lên. / Cannot read the request body.",
        )
    }
}

/// A raw body whose rejections are [`ApiError`]s.
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(ApiBytes)
            .map_err(bytes_rejection)
    }
}

/// Query parameters whose rejections are [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_query",
                    format!(
                        "Tham số không hợp lệ. / Invalid query parameters: {}",
                        e.body_text()
                    ),
                )
            })
    }
}

/// Path parameters whose rejections are [`ApiError`]s.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_: PathRejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_path",
                    "Đường dẫn không hợp lệ. / Invalid path.",
                )
            })
    }
}
