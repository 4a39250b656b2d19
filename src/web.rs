//! The HTTP side of the binary: `/healthz`, the embedded web client, and the layers every
//! response goes through (body limit, security headers). Signaling's router (`/ws`) and the link
//! test are merged in by the caller. `/metrics` is a separate app ([`metrics_app`]) for its own
//! listener (`--metrics-listen`): it is not served on the web port.
//!
//! No request logging layer on purpose: join tokens travel in URLs (`/join?t=...`), and a log
//! of request URIs would be a log of keys.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, TextEncoder};
use rust_embed::RustEmbed;
use tower_http::limit::RequestBodyLimitLayer;

/// Largest request body accepted anywhere. Nothing we serve takes uploads yet; a bound keeps a
/// client from making us buffer without end.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Content-Security-Policy of HTML pages: our own scripts only, WebSocket to us, camera and
/// screen streams as media. Inline styles are allowed (cheap to misuse only for looks); inline
/// scripts are not.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
     connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// The `web-client/` folder, compiled into the binary (read from disk in debug builds, which
/// lets the web client be edited without rebuilding). `allow_missing`: the binary still builds
/// from a checkout that has no web client yet.
#[derive(RustEmbed)]
#[folder = "web-client/"]
#[allow_missing = true]
struct WebClient;

/// The Prometheus endpoint alone, for the metrics listener.
pub fn metrics_app(registry: prometheus::Registry) -> Router {
    Router::new()
        .route("/metrics", get(metrics).with_state(registry))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::middleware::map_response(security_headers))
}

/// The whole HTTP application: our routes, `extra` (signaling's `/ws`, the admin API), the
/// common layers, and `linktest` (`crate::linktest::router`) after them.
pub fn app(extra: Router, linktest: Router) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/",
            get(|headers: HeaderMap| async move { asset::<WebClient>("index.html", &headers) }),
        )
        .route(
            "/join",
            get(|headers: HeaderMap| async move { asset::<WebClient>("join.html", &headers) }),
        )
        .route(
            "/admin",
            get(|headers: HeaderMap| async move {
                asset::<WebClient>("admin/index.html", &headers)
            }),
        )
        .merge(extra)
        .fallback(static_file)
        .layer(axum::middleware::map_response(security_headers))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(api_body_limit_as_json))
        .merge(linktest) // after the layers: it caps its own bodies at 4 MiB
}

/// The body limit answers a bare 413; API clients get the API's JSON error instead.
async fn api_body_limit_as_json(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let bare = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|t| !t.to_str().is_ok_and(|t| t.starts_with("application/json")));
    if is_api && response.status() == StatusCode::PAYLOAD_TOO_LARGE && bare {
        return room_admin::api::error::ApiError::too_large().into_response();
    }
    response
}

async fn metrics(State(registry): State<prometheus::Registry>) -> Response {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&registry.gather(), &mut body) {
        Ok(()) => ([(header::CONTENT_TYPE, encoder.format_type())], body).into_response(),
        Err(e) => {
            tracing::error!("cannot encode metrics: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Any other GET is a file of the web client, or 404.
async fn static_file(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::NOT_FOUND.into_response();
    }
    match safe_asset_path(uri.path()) {
        Some(path) => asset::<WebClient>(path, &headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The embedded-file name for a request path, or `None` for anything that could step outside
/// the folder (debug builds read from disk) or name a directory.
fn safe_asset_path(path: &str) -> Option<&str> {
    let rel = path.strip_prefix('/')?;
    let ok = !rel.is_empty()
        && rel
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && !rel.contains(['\\', '\0']);
    ok.then_some(rel)
}

/// Serves one embedded file with its content type and an ETag, so browsers revalidate cheaply
/// (`no-cache` means "ask before reuse": a new binary can change any file).
fn asset<E: RustEmbed>(path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = E::get(path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let cache = [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))];
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, cache, [(header::ETAG, etag)]).into_response();
    }
    let content_type = content_type(file.metadata.mimetype());
    (
        cache,
        [(header::CONTENT_TYPE, content_type), (header::ETAG, etag)],
        Body::from(file.data),
    )
        .into_response()
}

/// The file's MIME type, with `charset=utf-8` for text: our pages are Vietnamese, and a browser
/// guessing another charset would garble the diacritics.
fn content_type(mime: &str) -> String {
    let textual = mime.starts_with("text/")
        || mime == "application/javascript"
        || mime == "application/json"
        || mime == "image/svg+xml";
    if textual && !mime.contains("charset") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

/// Headers on every response; the page policies on HTML only.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Join tokens are in page URLs: never send them to another site as a Referer.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            "permissions-policy",
            HeaderValue::from_static("camera=(self), microphone=(self), display-capture=(self)"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use axum::http::Request;
    use axum::routing::post;
    use tower::ServiceExt;

    /// Our app plus two test routes standing in for the web client and signaling.
    fn test_app() -> Router {
        let extra = Router::new()
            .route(
                "/page",
                get(|| async { axum::response::Html("<p>xin chào</p>") }),
            )
            .route(
                "/echo",
                post(|body: axum::body::Bytes| async move { body.len().to_string() }),
            );
        app(extra, Router::new())
    }

    async fn send(app: Router, req: Request<Body>) -> Response {
        app.oneshot(req).await.unwrap()
    }

    fn get_req(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn healthz_is_ok() {
        let res = send(test_app(), get_req("/healthz")).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(to_bytes(res.into_body(), 100).await.unwrap(), "ok");
    }

    #[tokio::test]
    async fn html_gets_page_policies_and_everything_gets_nosniff() {
        let res = send(test_app(), get_req("/page")).await;
        let h = res.headers();
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("connect-src 'self' ws: wss:"), "{csp}");
        assert!(csp.contains("media-src 'self' blob: mediastream:"), "{csp}");

        let res = send(test_app(), get_req("/healthz")).await;
        assert_eq!(res.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(res.headers()[header::REFERRER_POLICY], "no-referrer");
        assert!(res.headers().get(header::CONTENT_SECURITY_POLICY).is_none());
    }

    #[tokio::test]
    async fn body_over_one_mib_is_refused() {
        let small = Request::post("/echo")
            .body(Body::from(vec![0u8; 1000]))
            .unwrap();
        assert_eq!(send(test_app(), small).await.status(), StatusCode::OK);
        let big = Request::post("/echo")
            .body(Body::from(vec![0u8; MAX_BODY_BYTES + 1]))
            .unwrap();
        assert_eq!(
            send(test_app(), big).await.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[tokio::test]
    async fn missing_files_and_traversal_are_404() {
        for uri in [
            "/no-such-file.js",
            "/../Cargo.toml",
            "/a/../../Cargo.toml",
            "/a//b",
        ] {
            let res = send(test_app(), get_req(uri)).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{uri}");
        }
    }

    #[tokio::test]
    async fn metrics_are_not_served_on_the_web_port() {
        let res = send(test_app(), get_req("/metrics")).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn metrics_are_prometheus_text() {
        let registry = prometheus::Registry::new();
        let counter = prometheus::IntCounter::new("hoinghi_test_total", "test").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc();
        let res = send(metrics_app(registry), get_req("/metrics")).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let body = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("hoinghi_test_total 1"), "{text}");
    }

    #[test]
    fn asset_paths() {
        assert_eq!(safe_asset_path("/js/app.js"), Some("js/app.js"));
        assert_eq!(safe_asset_path("/"), None);
        assert_eq!(safe_asset_path("/js/"), None);
        assert_eq!(safe_asset_path("/./x"), None);
        assert_eq!(safe_asset_path("/a\\..\\b"), None);
    }

    #[test]
    fn text_types_get_utf8() {
        assert_eq!(content_type("text/html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("application/javascript"),
            "application/javascript; charset=utf-8"
        );
        assert_eq!(content_type("image/png"), "image/png");
    }

    /// Real embedded files for the serving logic, independent of what `web-client/` holds yet.
    #[derive(RustEmbed)]
    #[folder = "src/"]
    struct SourceFiles;

    #[test]
    fn embedded_files_are_served_with_type_and_etag() {
        let res = asset::<SourceFiles>("web.rs", &HeaderMap::new());
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().contains_key(header::CONTENT_TYPE));
        let etag = res.headers()[header::ETAG].clone();
        assert_eq!(etag.len(), 64 + 2);

        let mut conditional = HeaderMap::new();
        conditional.insert(header::IF_NONE_MATCH, etag);
        let res = asset::<SourceFiles>("web.rs", &conditional);
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

        let res = asset::<SourceFiles>("no-such.rs", &HeaderMap::new());
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}
