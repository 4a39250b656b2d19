//! Link test for the pre-join check page (`web-client/js/linktest.js`): a point measures its
//! round-trip time and the throughput it can reach to and from this server before joining.
//!
//! - `GET /api/linktest/ping`: `204 No Content`, for round-trip time.
//! - `GET /api/linktest/download?bytes=N`: N bytes (default 256 KiB, at most 4 MiB) that do not
//!   compress (pseudo-random), so a compressing proxy on the way cannot flatter the result.
//! - `POST /api/linktest/upload`: reads and discards a body of at most 4 MiB, answers
//!   `{"bytes": n, "ms": t}` (bytes received, milliseconds from the first to the last byte).
//!
//! Every request needs the point's join token as `Authorization: Bearer <token>`, checked by the
//! same authorizer as a join (`401` with a JSON error without a valid one): anonymous clients
//! drained the budget before, and then no real point could test its line. Every answer is
//! `Cache-Control: no-store` (a cached answer measures nothing). The bytes moved are bounded per
//! request (4 MiB), and per 10 s window by three budgets ([`budget`]): the server's (128 MiB,
//! about 100 Mbit/s), a seat's (one meeting and point: 32 MiB) and a client address's (64 MiB, a
//! few halls behind one NAT); `503` with `Retry-After` beyond any of them.
//!
//! The router is merged in `web.rs` after the common layers on purpose: the 1 MiB body limit of
//! the rest of the app would refuse the upload test, so this module bounds its own bodies.

pub mod budget;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use signaling::auth::Authorizer;

use crate::front::limits::AddressKey;
use budget::{Budgets, Limits, Tester};

/// Largest download or upload of one request.
pub const MAX_TRANSFER_BYTES: usize = 4 * 1024 * 1024;
/// Download size when the request does not say.
pub const DEFAULT_DOWNLOAD_BYTES: usize = 256 * 1024;
/// Bytes link tests may move per [`budget::WINDOW`] (downloads and uploads): all together, one
/// seat, one client address.
pub const LIMITS: Limits = Limits {
    total: 128 * 1024 * 1024,
    per_seat: 32 * 1024 * 1024,
    per_address: 64 * 1024 * 1024,
};
/// A bearer token longer than this is not a join token; it is refused before any parsing.
const MAX_TOKEN_BYTES: usize = 4096;

/// The link-test routes, with their own body handling and byte budgets, for the holders of a
/// join token that `authorizer` accepts.
pub fn router(authorizer: Arc<dyn Authorizer>) -> Router {
    router_with_limits(authorizer, LIMITS)
}

fn router_with_limits(authorizer: Arc<dyn Authorizer>, limits: Limits) -> Router {
    let state = LinkTest {
        budgets: Arc::new(Mutex::new(Budgets::new(limits, Instant::now()))),
        authorizer,
    };
    Router::new()
        .route("/api/linktest/ping", get(ping))
        .route("/api/linktest/download", get(download))
        .route("/api/linktest/upload", post(upload))
        // The upload handler counts and caps the body itself, without buffering it.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

#[derive(Clone)]
struct LinkTest {
    budgets: Arc<Mutex<Budgets>>,
    authorizer: Arc<dyn Authorizer>,
}

impl LinkTest {
    /// Takes `n` bytes from `who`'s budgets; false when they do not fit.
    fn take(&self, who: &Tester, n: u64) -> bool {
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        budgets.take(who, n, Instant::now())
    }
}

/// A request from the holder of a valid join token; refused with `401` otherwise.
impl FromRequestParts<LinkTest> for Tester {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &LinkTest) -> Result<Self, Response> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_BYTES);
        let grant = token.and_then(|t| state.authorizer.authorize(t).ok());
        let Some(grant) = grant else {
            let mut res = refuse(
                StatusCode::UNAUTHORIZED,
                "the link test needs a valid join link",
            );
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return Err(res);
        };
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| AddressKey::of(peer.ip()));
        Ok(Tester {
            seat: (grant.meeting_id, grant.point),
            address,
        })
    }
}

/// Headers of every answer here: never stored, never sniffed.
fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ]
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        no_store(),
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

fn busy() -> Response {
    let mut res = refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many link tests at once",
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    res
}

async fn ping(_: Tester) -> Response {
    (StatusCode::NO_CONTENT, no_store()).into_response()
}

#[derive(Deserialize)]
struct DownloadParams {
    bytes: Option<usize>,
}

async fn download(
    State(state): State<LinkTest>,
    who: Tester,
    Query(p): Query<DownloadParams>,
) -> Response {
    let n = p.bytes.unwrap_or(DEFAULT_DOWNLOAD_BYTES);
    if n > MAX_TRANSFER_BYTES {
        return refuse(StatusCode::BAD_REQUEST, "bytes must be at most 4194304");
    }
    if !state.take(&who, n as u64) {
        return busy();
    }
    (
        no_store(),
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        noise().slice(..n),
    )
        .into_response()
}

async fn upload(
    State(state): State<LinkTest>,
    who: Tester,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_TRANSFER_BYTES as u64) {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "body over 4194304 bytes");
    }
    // An undeclared length is charged as the largest allowed.
    if !state.take(&who, declared.unwrap_or(MAX_TRANSFER_BYTES as u64)) {
        return busy();
    }
    let mut body = body;
    let mut received = 0usize;
    let mut first: Option<Instant> = None;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(frame) = frame else {
            return refuse(StatusCode::BAD_REQUEST, "the upload was cut");
        };
        if let Some(data) = frame.data_ref() {
            first.get_or_insert_with(Instant::now);
            received += data.len();
            if received > MAX_TRANSFER_BYTES {
                return refuse(StatusCode::PAYLOAD_TOO_LARGE, "body over 4194304 bytes");
            }
        }
    }
    let ms = first.map_or(0, |t| t.elapsed().as_millis() as u64);
    (
        no_store(),
        Json(serde_json::json!({ "bytes": received, "ms": ms })),
    )
        .into_response()
}

/// 4 MiB of pseudo-random bytes, made once (xorshift64*: incompressible is all we need, not
/// unpredictable), shared by every download as zero-copy slices.
fn noise() -> Bytes {
    static NOISE: OnceLock<Bytes> = OnceLock::new();
    NOISE
        .get_or_init(|| {
            let seed = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64);
            let mut x = seed | 1;
            let mut buf = Vec::with_capacity(MAX_TRANSFER_BYTES);
            while buf.len() < MAX_TRANSFER_BYTES {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                buf.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
            }
            Bytes::from(buf)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use axum::http::Request;
    use tower::ServiceExt;

    use signaling::auth::{AuthError, Grant};
    use signaling::protocol::Role;

    /// Accepts `tok-<point>` as a point of meeting `m`.
    struct FakeAuthorizer;

    impl Authorizer for FakeAuthorizer {
        fn authorize(&self, token: &str) -> Result<Grant, AuthError> {
            let point = token
                .strip_prefix("tok-")
                .ok_or_else(|| AuthError::Invalid("bad token".into()))?;
            Ok(Grant {
                meeting_id: "m".into(),
                meeting_title: "M".into(),
                point: point.into(),
                name: point.into(),
                role: Role::Point,
                capacity: 0,
            })
        }
    }

    fn router() -> Router {
        super::router(Arc::new(FakeAuthorizer))
    }

    fn router_with_budget(total: u64) -> Router {
        let limits = Limits {
            total,
            per_seat: total,
            per_address: total,
        };
        router_with_limits(Arc::new(FakeAuthorizer), limits)
    }

    async fn send(app: Router, req: Request<Body>) -> Response {
        app.oneshot(req).await.unwrap()
    }

    fn get_as(uri: &str, token: &str) -> Request<Body> {
        Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    }

    fn get_req(uri: &str) -> Request<Body> {
        get_as(uri, "tok-a")
    }

    fn assert_no_store(res: &Response) {
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(res.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }

    async fn json(res: Response) -> serde_json::Value {
        serde_json::from_slice(&to_bytes(res.into_body(), 1 << 16).await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn ping_is_204_and_not_stored() {
        let res = send(router(), get_req("/api/linktest/ping")).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_no_store(&res);
    }

    #[tokio::test]
    async fn download_sends_the_asked_size() {
        for (uri, n) in [
            ("/api/linktest/download", DEFAULT_DOWNLOAD_BYTES),
            ("/api/linktest/download?bytes=0", 0),
            ("/api/linktest/download?bytes=1000", 1000),
            ("/api/linktest/download?bytes=4194304", MAX_TRANSFER_BYTES),
        ] {
            let res = send(router(), get_req(uri)).await;
            assert_eq!(res.status(), StatusCode::OK, "{uri}");
            assert_no_store(&res);
            assert_eq!(
                res.headers()[header::CONTENT_TYPE],
                "application/octet-stream"
            );
            let body = to_bytes(res.into_body(), MAX_TRANSFER_BYTES + 1)
                .await
                .unwrap();
            assert_eq!(body.len(), n, "{uri}");
        }
    }

    #[tokio::test]
    async fn download_is_incompressible() {
        let res = send(router(), get_req("/api/linktest/download?bytes=65536")).await;
        let body = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        // Every byte value appears, none much more often than the 256 expected: no run or
        // pattern a compressor could use.
        let mut counts = [0u32; 256];
        for b in body.iter() {
            counts[*b as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (150..400).contains(&c)),
            "{counts:?}"
        );
    }

    #[tokio::test]
    async fn download_over_the_cap_or_malformed_is_refused() {
        let res = send(router(), get_req("/api/linktest/download?bytes=4194305")).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_no_store(&res);
        for uri in [
            "/api/linktest/download?bytes=-1",
            "/api/linktest/download?bytes=lots",
        ] {
            let res = send(router(), get_req(uri)).await;
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{uri}");
        }
    }

    fn upload_req(body: Body) -> Request<Body> {
        Request::post("/api/linktest/upload")
            .header(header::AUTHORIZATION, "Bearer tok-a")
            .body(body)
            .unwrap()
    }

    #[tokio::test]
    async fn without_a_valid_join_token_everything_is_401() {
        let long = format!("Bearer tok-{}", "x".repeat(MAX_TOKEN_BYTES));
        for auth in [
            None,
            Some("Bearer forged"),
            Some("tok-a"),
            Some("Bearer "),
            Some(&long),
        ] {
            for req in [
                Request::get("/api/linktest/ping"),
                Request::get("/api/linktest/download?bytes=1000"),
                Request::post("/api/linktest/upload"),
            ] {
                let req = match auth {
                    Some(a) => req.header(header::AUTHORIZATION, a),
                    None => req,
                };
                let res = send(router(), req.body(Body::from("x")).unwrap()).await;
                assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
                assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
                assert_no_store(&res);
                assert!(json(res).await["error"].is_string());
            }
        }
    }

    #[tokio::test]
    async fn one_token_draining_its_budget_does_not_stop_another() {
        let limits = Limits {
            total: 10_000,
            per_seat: 1000,
            per_address: 10_000,
        };
        let app = router_with_limits(Arc::new(FakeAuthorizer), limits);
        let uri = "/api/linktest/download?bytes=1000";
        assert_eq!(
            send(app.clone(), get_as(uri, "tok-a")).await.status(),
            StatusCode::OK
        );
        let drained = send(app.clone(), get_as(uri, "tok-a")).await;
        assert_eq!(drained.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            send(app, get_as(uri, "tok-b")).await.status(),
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn one_address_draining_its_budget_does_not_stop_another() {
        let limits = Limits {
            total: 10_000,
            per_seat: 10_000,
            per_address: 1000,
        };
        let app = router_with_limits(Arc::new(FakeAuthorizer), limits);
        let from = |ip: &str, token: &str| {
            let mut req = get_as("/api/linktest/download?bytes=600", token);
            let peer: SocketAddr = format!("{ip}:5000").parse().unwrap();
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        };
        let send_status = |req| {
            let app = app.clone();
            async move { send(app, req).await.status() }
        };
        assert_eq!(
            send_status(from("192.0.2.1", "tok-a")).await,
            StatusCode::OK
        );
        // Another token from the same address shares the address's budget.
        assert_eq!(
            send_status(from("192.0.2.1", "tok-b")).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            send_status(from("192.0.2.2", "tok-c")).await,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn upload_counts_what_it_received() {
        let res = send(router(), upload_req(Body::from(vec![7u8; 300_000]))).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_no_store(&res);
        assert_eq!(json(res).await["bytes"], 300_000);

        let res = send(router(), upload_req(Body::empty())).await;
        assert_eq!(json(res).await["bytes"], 0);

        let res = send(
            router(),
            upload_req(Body::from(vec![0u8; MAX_TRANSFER_BYTES])),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(json(res).await["bytes"], MAX_TRANSFER_BYTES);
    }

    #[tokio::test]
    async fn upload_over_the_cap_is_refused() {
        // Declared too large: refused before reading.
        let res = send(
            router(),
            upload_req(Body::from(vec![0u8; MAX_TRANSFER_BYTES + 1])),
        )
        .await;
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_no_store(&res);

        // Not declared (streamed): refused once the count passes the cap.
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..5)
            .map(|_| Ok(Bytes::from(vec![1u8; 1024 * 1024])))
            .collect();
        let stream = Body::from_stream(stream_of(chunks));
        let res = send(router(), upload_req(stream)).await;
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    /// A `Stream` over a vector without pulling in a stream crate for one test.
    fn stream_of(
        items: Vec<Result<Bytes, std::io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        futures_util::stream::iter(items)
    }

    #[tokio::test]
    async fn transfers_beyond_the_budget_get_503() {
        let app = router_with_budget(1000);
        let first = send(app.clone(), get_req("/api/linktest/download?bytes=600")).await;
        assert_eq!(first.status(), StatusCode::OK);
        let second = send(app.clone(), get_req("/api/linktest/download?bytes=600")).await;
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_no_store(&second);
        assert!(second.headers().contains_key(header::RETRY_AFTER));
        let res = send(app.clone(), upload_req(Body::from(vec![0u8; 600]))).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        // What still fits passes; ping is never limited.
        let res = send(app.clone(), get_req("/api/linktest/download?bytes=400")).await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = send(app, get_req("/api/linktest/ping")).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }

    /// Merged into the whole app, the link test is not cut by the app's 1 MiB body limit.
    #[tokio::test]
    async fn the_app_lets_a_4_mib_upload_through() {
        let app = crate::web::app(Router::new(), router());
        let body = Body::from(vec![0u8; MAX_TRANSFER_BYTES]);
        let res = send(app.clone(), upload_req(body)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(json(res).await["bytes"], MAX_TRANSFER_BYTES);
        let res = send(app, get_req("/api/linktest/ping")).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }
}
