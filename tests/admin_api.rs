//! The admin REST API through its router (`tower::ServiceExt::oneshot`), on a temporary SQLite
//! file: every endpoint's success and its rejections, the session and CSRF rules, the bad-input
//! classes of issue 4, and the OpenAPI document.

mod admin;

use std::time::{Duration, SystemTime};

use admin::*;
use axum::http::{StatusCode, header};
use room_admin::api::LiveSeat;
use serde_json::{Value, json};

// --- OpenAPI ------------------------------------------------------------------------------------

/// Every route the API serves, as `METHOD path`.
const ROUTES: &[&str] = &[
    "POST /api/v1/auth/login",
    "POST /api/v1/auth/logout",
    "GET /api/v1/auth/me",
    "POST /api/v1/auth/password",
    "GET /api/v1/points",
    "POST /api/v1/points",
    "GET /api/v1/points/{code}",
    "PUT /api/v1/points/{code}",
    "POST /api/v1/points/{code}/disable",
    "POST /api/v1/points/{code}/enable",
    "POST /api/v1/points/import",
    "GET /api/v1/points/{code}/calendar.ics",
    "GET /api/v1/meetings",
    "POST /api/v1/meetings",
    "GET /api/v1/meetings/{id}",
    "PUT /api/v1/meetings/{id}",
    "POST /api/v1/meetings/{id}/cancel",
    "POST /api/v1/meetings/{id}/end",
    "POST /api/v1/meetings/{id}/copy",
    "POST /api/v1/meetings/{id}/seats/{seat}/reissue",
    "GET /api/v1/meetings/{id}/seats/{seat}/qr.svg",
    "GET /api/v1/meetings/{id}/attendance",
    "GET /api/v1/meetings/{id}/attendance.csv",
    "GET /api/v1/meetings/{id}/upstream",
    "PUT /api/v1/meetings/{id}/upstream",
    "DELETE /api/v1/meetings/{id}/upstream",
    "GET /api/v1/accounts",
    "POST /api/v1/accounts",
    "POST /api/v1/accounts/{username}/password",
    "POST /api/v1/accounts/{username}/disable",
    "POST /api/v1/accounts/{username}/enable",
    "GET /api/v1/audit",
    "GET /api/v1/dashboard",
    "GET /api/v1/calendar.ics",
    "GET /api/v1/points/{code}/calendar-feed",
    "POST /api/v1/points/{code}/calendar-feed/reissue",
    "GET /api/v1/calendar/feed",
    "POST /api/v1/calendar/feed/reissue",
    "POST /api/v1/join/check",
];

/// Routes without a session: calendar feeds, whose key is in the URL (without one: 404).
const PUBLIC_ROUTES: &[&str] = &[
    "GET /api/v1/calendar/all.ics",
    "GET /api/v1/calendar/points/{file}",
];

#[tokio::test]
async fn openapi_document_parses_and_lists_every_route() {
    let app = App::new().await;
    let res = app.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    let doc = res.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in ["get", "post", "put", "delete", "patch"] {
            if let Some(op) = item.get(method) {
                assert!(
                    op["responses"].is_object(),
                    "{method} {path} has no responses"
                );
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    documented.sort();
    let mut expected: Vec<String> = ROUTES
        .iter()
        .chain(PUBLIC_ROUTES)
        .map(|s| s.to_string())
        .collect();
    expected.sort();
    assert_eq!(documented, expected);
    // Every schema a route refers to is defined.
    let text = doc.to_string();
    for r in text.split("\"#/components/schemas/").skip(1) {
        let name = r.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "schema {name} referenced but not defined"
        );
    }
    // And each documented route exists in the router: without a session it answers 401 (or,
    // for login, a validation error), never the API's "no such route".
    for route in ROUTES {
        let (method, path) = route.split_once(' ').unwrap();
        let uri = path
            .replace("{code}", "06")
            .replace("{id}", "m-0")
            .replace("{seat}", "06")
            .replace("{username}", "admin");
        let res = app.call(method, &uri, None, Some(json!({}))).await;
        assert_ne!(res.status, StatusCode::NOT_FOUND, "{route}: {}", res.text());
        assert_ne!(res.status, StatusCode::METHOD_NOT_ALLOWED, "{route}");
    }
    // The public feeds exist too: without a key they answer the JSON 404 of the feed itself.
    for route in PUBLIC_ROUTES {
        let (method, path) = route.split_once(' ').unwrap();
        let res = app
            .call(method, &path.replace("{file}", "06.ics"), None, None)
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{route}");
        assert!(
            res.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("calendar")
        );
    }
    let res = app.call("GET", "/api/v1/no-such-route", None, None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.code(), "not_found");
}

// --- sessions, CSRF, throttling -------------------------------------------------------------------

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_returns_the_csrf_token() {
    let app = App::new().await;
    let res = app.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK);
    let cookie = res.headers[header::SET_COOKIE].to_str().unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/api"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "no TLS, no Secure: {cookie}");
    let me = res.json();
    assert_eq!(me["username"], "admin");
    assert_eq!(me["role"], "admin");
    assert_eq!(me["csrf_token"].as_str().unwrap().len(), 32);

    let tls = App::with_secure_cookies(true).await;
    let res = tls.login("admin", ADMIN_PASSWORD).await;
    assert!(
        res.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
}

#[tokio::test]
async fn me_and_logout() {
    let app = App::new().await;
    let s = app.admin().await;
    let me = app.get("/api/v1/auth/me", &s).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["csrf_token"], s.csrf.as_str());
    let out = app
        .call("POST", "/api/v1/auth/logout", Some(&s), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = app.get("/api/v1/auth/me", &s).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.code(), "unauthenticated");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let app = App::new().await;
    let a = app.login("admin", "wrong password").await;
    let b = app.login("nobody", "wrong password").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(b.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.json(), b.json());
    assert!(a.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account() {
    let app = App::new().await;
    for _ in 0..room_admin::throttle::PER_ACCOUNT {
        assert_eq!(
            app.login("admin", "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Now even the right password is refused, with a time to wait.
    let res = app.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.code(), "too_many_attempts");
    assert!(res.headers.contains_key(header::RETRY_AFTER));
    // Another account from the same address still works (the per-address limit is higher).
    assert_eq!(
        app.login("operator", OPERATOR_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address() {
    let app = App::new().await;
    for i in 0..room_admin::throttle::PER_IP {
        app.login(&format!("user{i}"), "guess").await;
    }
    let res = app.login("operator", OPERATOR_PASSWORD).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn state_changes_without_the_csrf_token_are_refused_and_change_nothing() {
    let app = App::new().await;
    let admin = app.admin().await;
    let operator = app.operator().await;
    let body = json!({"code": "X1", "name": "Điểm X", "kind": "other"});
    let cases = [
        // The admin's cookie, no token.
        Session {
            cookie: admin.cookie.clone(),
            csrf: String::new(),
        },
        // The admin's cookie with the operator's token: tokens are per session.
        Session {
            cookie: admin.cookie.clone(),
            csrf: operator.csrf.clone(),
        },
        // Another user's cookie with a made-up token.
        Session {
            cookie: operator.cookie.clone(),
            csrf: "0".repeat(32),
        },
    ];
    for s in &cases {
        let res = app.post("/api/v1/points", s, body.clone()).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
        assert_eq!(res.code(), "csrf");
    }
    assert_eq!(app.count("points").await, 0);
    // Reading needs no token.
    let read = Session {
        cookie: admin.cookie.clone(),
        csrf: String::new(),
    };
    assert_eq!(
        app.get("/api/v1/points", &read).await.status,
        StatusCode::OK
    );
    // With the token it works.
    assert_eq!(
        app.post("/api/v1/points", &admin, body).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn every_protected_route_needs_a_session() {
    let app = App::new().await;
    // Login and the join link's check are public (the link is the key).
    let public = |r: &&&str| r.contains("/auth/login") || r.contains("/join/check");
    for route in ROUTES.iter().filter(|r| !public(r)) {
        let (method, path) = route.split_once(' ').unwrap();
        let uri = path
            .replace("{code}", "06")
            .replace("{id}", "m-0")
            .replace("{seat}", "06")
            .replace("{username}", "admin");
        let res = app.call(method, &uri, None, Some(json!({}))).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{route}");
        let forged = Session {
            cookie: "f".repeat(64),
            csrf: "x".into(),
        };
        let res = app.call(method, &uri, Some(&forged), Some(json!({}))).await;
        assert_eq!(
            res.status,
            StatusCode::UNAUTHORIZED,
            "{route} with a forged cookie"
        );
    }
}

#[tokio::test]
async fn change_own_password() {
    let app = App::new().await;
    let s = app.operator().await;
    let bad = app
        .post(
            "/api/v1/auth/password",
            &s,
            json!({"current_password": "nope", "new_password": "new password 123"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.json()["error"]["fields"]["current_password"].is_string());
    let ok = app
        .post(
            "/api/v1/auth/password",
            &s,
            json!({"current_password": OPERATOR_PASSWORD, "new_password": "new password 123"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    // Sessions ended; the new password works, the old one does not.
    assert_eq!(
        app.get("/api/v1/auth/me", &s).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("operator", OPERATOR_PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("operator", "new password 123").await.status,
        StatusCode::OK
    );
}

/// The bootstrap account (its password printed on a terminal) may only change its password
/// until it has: every other route answers 403 `password_change_required`, reads and writes.
#[tokio::test]
async fn a_password_that_must_be_changed_allows_nothing_else_until_changed() {
    let app = App::new().await;
    sqlx::query("UPDATE accounts SET must_change_password = TRUE WHERE username = 'admin'")
        .execute(app.db.pool())
        .await
        .unwrap();
    let login = app.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.json()["must_change_password"], true);
    let s = app.admin().await;
    assert_eq!(
        app.get("/api/v1/auth/me", &s).await.json()["must_change_password"],
        true
    );
    for (method, uri, body) in [
        ("GET", "/api/v1/points", None),
        ("GET", "/api/v1/meetings", None),
        ("GET", "/api/v1/accounts", None),
        ("GET", "/api/v1/dashboard", None),
        (
            "POST",
            "/api/v1/accounts",
            Some(
                json!({"username": "it.backan", "password": "một câu dài dễ nhớ", "role": "admin"}),
            ),
        ),
    ] {
        let a = app.call(method, uri, Some(&s), body).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert_eq!(a.code(), "password_change_required", "{method} {uri}");
        assert!(a.text().contains("đổi mật khẩu"), "{}", a.text());
    }
    assert_eq!(app.count("accounts").await, 2, "nothing was created");

    let changed = app
        .post(
            "/api/v1/auth/password",
            &s,
            json!({"current_password": ADMIN_PASSWORD, "new_password": "họp tỉnh sáng thứ hai"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.text());
    let s = app.session("admin", "họp tỉnh sáng thứ hai").await;
    assert_eq!(
        app.get("/api/v1/auth/me", &s).await.json()["must_change_password"],
        false
    );
    assert_eq!(app.get("/api/v1/points", &s).await.status, StatusCode::OK);
    // Logging out is allowed while the change is pending, too.
    sqlx::query("UPDATE accounts SET must_change_password = TRUE WHERE username = 'admin'")
        .execute(app.db.pool())
        .await
        .unwrap();
    let out = app
        .call("POST", "/api/v1/auth/logout", Some(&s), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
}

// --- points --------------------------------------------------------------------------------------

#[tokio::test]
async fn points_create_get_update_disable_enable_search() {
    let app = App::new().await;
    let s = app.operator().await;
    let created = app
        .post(
            "/api/v1/points",
            &s,
            json!({"code": "02191", "name": "Xã Xuân Dương", "kind": "commune",
                   "district": "Huyện Na Rì", "contact_phone": "+84 209 3870 123"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.json()["code"], "02191");

    let dup = app
        .post(
            "/api/v1/points",
            &s,
            json!({"code": "02191", "name": "Khác", "kind": "commune"}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert!(dup.json()["error"]["fields"]["code"].is_string());

    let got = app.get("/api/v1/points/02191", &s).await;
    assert_eq!(got.json()["name"], "Xã Xuân Dương");

    let upd = app
        .call(
            "PUT",
            "/api/v1/points/02191",
            Some(&s),
            Some(json!({"name": "Xã Xuân Dương (mới)", "kind": "commune", "expected_link": "4G"})),
        )
        .await;
    assert_eq!(upd.status, StatusCode::OK, "{}", upd.text());
    assert_eq!(upd.json()["expected_link"], "4G");
    assert_eq!(upd.json()["code"], "02191");

    // Search ignores case and diacritics.
    let found = app.get("/api/v1/points?q=xuan%20duong", &s).await.json();
    assert_eq!(found.as_array().unwrap().len(), 1);

    let off = app
        .call("POST", "/api/v1/points/02191/disable", Some(&s), None)
        .await;
    assert_eq!(off.json()["disabled"], true);
    assert_eq!(
        app.get("/api/v1/points", &s)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let all = app
        .get("/api/v1/points?include_disabled=true", &s)
        .await
        .json();
    assert_eq!(all.as_array().unwrap().len(), 1);
    let on = app
        .call("POST", "/api/v1/points/02191/enable", Some(&s), None)
        .await;
    assert_eq!(on.json()["disabled"], false);

    for uri in ["/api/v1/points/nope", "/api/v1/points/nope/disable"] {
        let method = if uri.ends_with("disable") {
            "POST"
        } else {
            "GET"
        };
        let res = app.call(method, uri, Some(&s), None).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(res.code(), "not_found");
    }
    let res = app
        .call(
            "PUT",
            "/api/v1/points/nope",
            Some(&s),
            Some(json!({"name": "a", "kind": "other"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let res = app
        .get("/api/v1/points?kind=commune&include_disabled=maybe", &s)
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code(), "bad_query");
}

#[tokio::test]
async fn malformed_bodies_get_clear_errors_and_change_nothing() {
    let app = App::new().await;
    let s = app.admin().await;
    let cases: Vec<(&str, Option<Value>, StatusCode, &str)> = vec![
        // wrong type
        (
            "wrong type",
            Some(json!({"code": 6, "name": "a", "kind": "other"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        // missing field
        (
            "missing field",
            Some(json!({"code": "6", "kind": "other"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        // unknown field
        (
            "unknown field",
            Some(json!({"code": "6", "name": "a", "kind": "other", "admin": true})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        // invalid values
        (
            "bad kind",
            Some(json!({"code": "6", "name": "a", "kind": "village"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "bad code",
            Some(json!({"code": "6'; DROP TABLE points;--", "name": "a", "kind": "other"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "empty name",
            Some(json!({"code": "6", "name": "   ", "kind": "other"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "long name",
            Some(json!({"code": "6", "name": "x".repeat(201), "kind": "other"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "control chars",
            Some(json!({"code": "6", "name": "a\u{0007}b", "kind": "other"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "array body",
            Some(json!([1, 2])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
    ];
    for (what, body, status, code) in cases {
        let res = app.call("POST", "/api/v1/points", Some(&s), body).await;
        assert_eq!(res.status, status, "{what}: {}", res.text());
        assert_eq!(res.code(), code, "{what}");
        assert!(res.json()["error"]["message"].as_str().unwrap().len() > 5);
        assert!(
            !res.json()["error"]["fields"]
                .as_object()
                .unwrap()
                .is_empty(),
            "{what}: fields"
        );
    }
    // Not JSON at all, and no content type.
    let req = axum::http::Request::post("/api/v1/points")
        .header(header::COOKIE, format!("hoinghi_admin={}", s.cookie))
        .header("x-csrf-token", &s.csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from("{\"code\": "))
        .unwrap();
    let res = app.send(req).await;
    assert_eq!(
        (res.status, res.code().as_str()),
        (StatusCode::BAD_REQUEST, "bad_json")
    );
    let req = axum::http::Request::post("/api/v1/points")
        .header(header::COOKIE, format!("hoinghi_admin={}", s.cookie))
        .header("x-csrf-token", &s.csrf)
        .body(axum::body::Body::from("code=1"))
        .unwrap();
    let res = app.send(req).await;
    assert_eq!(res.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Oversized body (over axum's 2 MB default on this bare router; the server's 1 MiB limit
    // answers the same JSON, see tests/admin_cli.rs).
    let big = json!({"code": "1", "name": "a", "kind": "other", "notes": "x".repeat(3 << 20)});
    let res = app.post("/api/v1/points", &s, big).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.code(), "too_large");
    assert_eq!(app.count("points").await, 0);
}

#[tokio::test]
async fn sql_metacharacters_and_html_are_stored_as_text() {
    let app = App::new().await;
    let s = app.admin().await;
    let nasty = "Robert'); DROP TABLE points;-- <script>alert('x')</script> & \"quotes\" %_";
    let res = app
        .post(
            "/api/v1/points",
            &s,
            json!({"code": "X-1", "name": nasty, "kind": "other", "notes": nasty,
                   "contact_name": "<img src=x onerror=alert(1)>"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let got = app.get("/api/v1/points/X-1", &s).await.json();
    assert_eq!(got["name"], nasty);
    assert_eq!(got["notes"], nasty);
    assert_eq!(got["contact_name"], "<img src=x onerror=alert(1)>");
    // The table is still there, and a search with LIKE wildcards matches literally.
    assert_eq!(app.count("points").await, 1);
    assert_eq!(
        app.get("/api/v1/points?q=%25_", &s)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get("/api/v1/points?q=%25%25%25", &s)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // A meeting title too.
    app.post(
        "/api/v1/points",
        &s,
        json!({"code": "06", "name": "Tỉnh", "kind": "province_hall"}),
    )
    .await;
    let mut body = meeting_body(2, 1, &["X-1"]);
    body["title"] = json!(nasty);
    let m = app.post("/api/v1/meetings", &s, body).await;
    assert_eq!(m.status, StatusCode::CREATED, "{}", m.text());
    assert_eq!(m.json()["meeting"]["title"], nasty);
}

// --- CSV import ----------------------------------------------------------------------------------

#[tokio::test]
async fn the_bac_kan_list_imports_as_it_is_after_a_dry_run() {
    let app = App::new().await;
    let s = app.operator().await;
    let dry = app
        .post_raw("/api/v1/points/import?dry_run=true", &s, CSV)
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text());
    let r = dry.json();
    assert_eq!(
        (r["rows"].as_u64(), r["created"].as_u64()),
        (Some(122), Some(122))
    );
    assert_eq!(r["applied"], false);
    assert_eq!(app.count("points").await, 0, "a dry run writes nothing");

    let real = app.post_raw("/api/v1/points/import", &s, CSV).await;
    assert_eq!(real.status, StatusCode::OK);
    assert_eq!(real.json()["applied"], true);
    assert_eq!(app.count("points").await, 122);
    // Codes keep their leading zeros, names their diacritics.
    let p = app.get("/api/v1/points/02191", &s).await.json();
    assert_eq!(p["name"], "Xã Xuân Dương");
    assert_eq!(p["kind"], "commune");
    assert_eq!(
        app.get("/api/v1/points/06", &s).await.json()["kind"],
        "province_hall"
    );
    let communes = app.get("/api/v1/points?kind=commune", &s).await.json();
    assert_eq!(communes.as_array().unwrap().len(), 108);

    // Importing again changes nothing; with a BOM and CRLF it is the same file.
    let again = format!("\u{feff}{}", CSV.replace('\n', "\r\n"));
    let r = app
        .post_raw("/api/v1/points/import", &s, again)
        .await
        .json();
    assert_eq!(r["unchanged"].as_u64(), Some(122), "{r}");
    // An edited row is an update.
    let edited = CSV.replace(
        "02191,Xã Xuân Dương,commune,xã,Huyện Na Rì,,,,",
        "02191,Xã Xuân Dương,commune,xã,Huyện Na Rì,Chị Lan,0912345678,4G,",
    );
    let r = app
        .post_raw("/api/v1/points/import?dry_run=true", &s, edited)
        .await
        .json();
    assert_eq!(
        (r["updated"].as_u64(), r["unchanged"].as_u64()),
        (Some(1), Some(121)),
        "{r}"
    );
}

async fn import_error(app: &App, s: &Session, data: Vec<u8>) -> Answer {
    let res = app.post_raw("/api/v1/points/import", s, data).await;
    assert_ne!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(app.count("points").await, 0, "nothing imported");
    res
}

#[tokio::test]
async fn bad_csv_files_are_refused_whole() {
    let app = App::new().await;
    let s = app.admin().await;

    let res = import_error(&app, &s, b"ma,ten,loai\n06,Tinh,province_hall\n".to_vec()).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.json()["error"]["fields"]["file"]
            .as_str()
            .unwrap()
            .contains("Expected header")
    );

    // Windows-1258 / Latin-1 bytes instead of UTF-8.
    let latin: Vec<u8> = CSV
        .bytes()
        .map(|b| if b >= 0x80 { 0xE3 } else { b })
        .collect();
    let res = import_error(&app, &s, latin).await;
    assert!(
        res.json()["error"]["fields"]["file"]
            .as_str()
            .unwrap()
            .contains("UTF-8")
    );

    // A UTF-16 file (what some editors call "Unicode").
    let utf16: Vec<u8> = "\u{feff}code,name,kind\n"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let res = import_error(&app, &s, utf16).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);

    // 100,000 rows: too large a file for a directory (over 1 MiB).
    let mut big = String::from("code,name,kind\n");
    for i in 0..100_000 {
        big.push_str(&format!("{i},a,commune\n"));
    }
    let res = import_error(&app, &s, big.into_bytes()).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.json()["error"]["fields"]["file"]
            .as_str()
            .unwrap()
            .contains("too large")
    );
    // 10,001 short rows fit in the size but not in the row cap.
    let mut many = String::from("code,name,kind\n");
    for i in 0..10_001 {
        many.push_str(&format!("{i},a,other\n"));
    }
    let res = import_error(&app, &s, many.into_bytes()).await;
    assert!(
        res.json()["error"]["fields"]["file"]
            .as_str()
            .unwrap()
            .contains("10000")
    );

    // A multi-megabyte file: over the body limit.
    let res = import_error(&app, &s, vec![b'a'; 3 << 20]).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.code(), "too_large");

    // Row errors: a duplicate code, a bad kind, a short row; the good rows are not imported.
    let rows = format!(
        "{}058,Trùng mã,district,,,,,,\n99999,Xã Lạ,village,,,,,,\n12345,Thiếu cột\n",
        CSV
    );
    let res = import_error(&app, &s, rows.into_bytes()).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.code(), "import_rejected");
    let report = &res.json()["error"]["details"];
    assert_eq!(report["error_count"].as_u64(), Some(3), "{report}");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors[0]["line"].as_u64(), Some(124));
    assert!(
        errors[0]["message"].as_str().unwrap().contains("line 3"),
        "{errors:?}"
    );
    assert_eq!(errors[1]["column"], "kind");
    assert_eq!(errors[2]["line"].as_u64(), Some(126));

    // Empty file, header only.
    import_error(&app, &s, Vec::new()).await;
    import_error(&app, &s, b"code,name,kind\n".to_vec()).await;
}

// --- meetings ------------------------------------------------------------------------------------

async fn app_with_points() -> (App, Session) {
    let app = App::new().await;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    (app, s)
}

const FIVE: [&str; 5] = ["058", "060", "061", "02191", "02194"];

#[tokio::test]
async fn schedule_a_meeting_with_five_points() {
    let (app, s) = app_with_points().await;
    let mut body = meeting_body(2, 2, &FIVE);
    body["observers"] = json!(["Chủ tịch UBND tỉnh"]);
    body["capacity"] = json!(50);
    let res = app.post("/api/v1/meetings", &s, body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let d = res.json();
    let m = &d["meeting"];
    assert_eq!(m["state"], "scheduled");
    assert_eq!(m["capacity"], 50);
    assert_eq!(m["seat_count"], 7);
    assert!(m["starts_local"].as_str().unwrap().ends_with("+07:00"));
    assert!(m["starts_at"].as_str().unwrap().ends_with('Z'));
    let seats = d["seats"].as_array().unwrap();
    assert_eq!(seats[0]["role"], "chair");
    assert_eq!(seats[0]["seat"], "06");
    assert_eq!(seats.iter().filter(|s| s["role"] == "point").count(), 5);
    assert_eq!(seats[6]["role"], "observer");
    assert_eq!(seats[6]["name"], "Chủ tịch UBND tỉnh");
    for seat in seats {
        assert!(
            seat["link"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{BASE}/join?t="))
        );
    }
    let id = m["id"].as_str().unwrap();
    let list = app.get("/api/v1/meetings", &s).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let got = app.get(&format!("/api/v1/meetings/{id}"), &s).await;
    assert_eq!(got.json()["seats"][1]["link"], seats[1]["link"]);
    assert_eq!(
        app.get("/api/v1/meetings/m-nope", &s).await.status,
        StatusCode::NOT_FOUND
    );
    // Time filters.
    let later = app
        .get(&format!("/api/v1/meetings?from={}", local_in(10)), &s)
        .await
        .json();
    assert_eq!(later.as_array().unwrap().len(), 0);
    let bad = app.get("/api/v1/meetings?from=yesterday", &s).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn invite_by_kind_or_all() {
    let (app, s) = app_with_points().await;
    let mut body = meeting_body(2, 1, &[]);
    body["invite_kinds"] = json!(["district", "department"]);
    let d = app.post("/api/v1/meetings", &s, body).await.json();
    assert_eq!(d["meeting"]["seat_count"], 1 + 8 + 5);
    let mut body = meeting_body(2, 1, &[]);
    body["invite_all"] = json!(true);
    let d = app.post("/api/v1/meetings", &s, body).await.json();
    assert_eq!(
        d["meeting"]["seat_count"], 122,
        "the chair once, every other point once"
    );
    // Disabled points are not invited.
    app.call("POST", "/api/v1/points/058/disable", Some(&s), None)
        .await;
    let mut body = meeting_body(2, 1, &[]);
    body["invite_kinds"] = json!(["district"]);
    let d = app.post("/api/v1/meetings", &s, body).await.json();
    assert_eq!(d["meeting"]["seat_count"], 1 + 7);
    let res = app
        .post("/api/v1/meetings", &s, meeting_body(2, 1, &["058"]))
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.json()["error"]["fields"]["points"]
            .as_str()
            .unwrap()
            .contains("058")
    );
}

#[tokio::test]
async fn bad_meeting_input_is_refused_field_by_field() {
    let (app, s) = app_with_points().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"starts_at": local_in(-3), "ends_at": local_in(-2)}),
            "starts_at",
        ),
        (
            json!({"starts_at": local_in(3), "ends_at": local_in(2)}),
            "ends_at",
        ),
        (
            json!({"starts_at": local_in(3), "ends_at": local_in(3)}),
            "ends_at",
        ),
        (json!({"ends_at": local_in(40)}), "ends_at"),
        (json!({"starts_at": "mai lúc 8 giờ"}), "starts_at"),
        (json!({"chair_point": "nope"}), "chair_point"),
        (json!({"points": ["058", "zzz"]}), "points"),
        (json!({"title": ""}), "title"),
        (json!({"capacity": 1}), "capacity"),
        (json!({"capacity": 100000}), "capacity"),
        (json!({"open_minutes": -5}), "open_minutes"),
        (json!({"invite_kinds": ["village"]}), "invite_kinds"),
        (json!({"observers": [""]}), "observers[0]"),
    ];
    for (patch, field) in cases {
        let mut body = meeting_body(2, 2, &FIVE);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let res = app.post("/api/v1/meetings", &s, body.clone()).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{patch}: {}",
            res.text()
        );
        assert!(
            res.json()["error"]["fields"][field].is_string(),
            "{patch}: {}",
            res.text()
        );
    }
    for (body, what) in [
        (json!({"title": "x"}), "missing fields"),
        (
            json!({"title": 5, "starts_at": local_in(2), "ends_at": local_in(3), "chair_point": "06"}),
            "wrong type",
        ),
        (
            json!({"title": "x", "starts_at": local_in(2), "ends_at": local_in(3), "chair_point": "06", "capacity": "many"}),
            "wrong type",
        ),
    ] {
        let res = app.post("/api/v1/meetings", &s, body).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{what}");
    }
    assert_eq!(app.count("meetings").await, 0);
}

#[tokio::test]
async fn update_cancel_end_copy() {
    let (app, s) = app_with_points().await;
    let d = app
        .post("/api/v1/meetings", &s, meeting_body(2, 2, &FIVE))
        .await
        .json();
    let id = d["meeting"]["id"].as_str().unwrap().to_owned();
    let link_058 = link_of(&d, "058");

    // Edit: drop 02194, add 02197; 058 keeps its link.
    let mut body = meeting_body(2, 3, &["058", "060", "061", "02191", "02197"]);
    body["title"] = json!("Đã sửa");
    let res = app
        .call(
            "PUT",
            &format!("/api/v1/meetings/{id}"),
            Some(&s),
            Some(body),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let u = res.json();
    assert_eq!(u["meeting"]["title"], "Đã sửa");
    let seat = |d: &Value, code: &str| {
        d["seats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["seat"] == code)
            .cloned()
    };

    let claims_058 = app
        .tokens
        .verify(
            token_of(seat(&u, "058").unwrap()["link"].as_str().unwrap()),
            SystemTime::now(),
        )
        .unwrap();
    let old_claims = app
        .tokens
        .verify(token_of(&link_058), SystemTime::now())
        .unwrap();
    assert_eq!(
        claims_058.jti, old_claims.jti,
        "a seat that stays keeps its token id"
    );
    assert!(seat(&u, "02194").is_none());
    assert!(seat(&u, "02197").is_some());

    // Copy to another day: same seats, new links.
    let copy = app
        .post(
            &format!("/api/v1/meetings/{id}/copy"),
            &s,
            json!({"starts_at": local_in(26), "ends_at": local_in(27)}),
        )
        .await;
    assert_eq!(copy.status, StatusCode::CREATED, "{}", copy.text());
    let c = copy.json();
    assert_ne!(c["meeting"]["id"], id.as_str());
    assert_eq!(c["meeting"]["title"], "Đã sửa");
    assert_eq!(c["meeting"]["seat_count"], 6);
    assert_ne!(
        seat(&c, "058").unwrap()["link"],
        seat(&u, "058").unwrap()["link"]
    );
    let bad_copy = app
        .post(
            &format!("/api/v1/meetings/{id}/copy"),
            &s,
            json!({"starts_at": local_in(-26), "ends_at": local_in(-25)}),
        )
        .await;
    assert_eq!(bad_copy.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = app
        .post(
            "/api/v1/meetings/m-none/copy",
            &s,
            json!({"starts_at": local_in(2), "ends_at": local_in(3)}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Cancel: then it cannot be edited, cancelled or ended again.
    let res = app
        .call(
            "POST",
            &format!("/api/v1/meetings/{id}/cancel"),
            Some(&s),
            None,
        )
        .await;
    assert_eq!(res.json()["meeting"]["state"], "cancelled");
    for action in ["cancel", "end"] {
        let res = app
            .call(
                "POST",
                &format!("/api/v1/meetings/{id}/{action}"),
                Some(&s),
                None,
            )
            .await;
        assert_eq!(res.status, StatusCode::CONFLICT, "{action}");
    }
    let res = app
        .call(
            "PUT",
            &format!("/api/v1/meetings/{id}"),
            Some(&s),
            Some(meeting_body(2, 2, &FIVE)),
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);

    // End now.
    let cid = c["meeting"]["id"].as_str().unwrap();
    let res = app
        .call(
            "POST",
            &format!("/api/v1/meetings/{cid}/end"),
            Some(&s),
            None,
        )
        .await;
    assert_eq!(res.json()["meeting"]["state"], "ended");
    for action in ["cancel", "end"] {
        let res = app
            .call(
                "POST",
                &format!("/api/v1/meetings/m-none/{action}"),
                Some(&s),
                None,
            )
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn qr_code_of_a_seat_is_an_svg() {
    let (app, s) = app_with_points().await;
    let d = app
        .post("/api/v1/meetings", &s, meeting_body(2, 2, &FIVE))
        .await
        .json();
    let id = d["meeting"]["id"].as_str().unwrap();
    let res = app
        .get(&format!("/api/v1/meetings/{id}/seats/058/qr.svg"), &s)
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(
        res.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("image/svg+xml")
    );
    assert!(res.text().contains("<svg"));
    let res = app
        .get(&format!("/api/v1/meetings/{id}/seats/nope/qr.svg"), &s)
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

// --- join tokens ---------------------------------------------------------------------------------

/// A moment inside the meeting's join window.
fn during(d: &Value) -> SystemTime {
    let starts = room_admin::timefmt::parse(d["meeting"]["starts_at"].as_str().unwrap()).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_secs(starts as u64 + 60)
}

fn link_of(d: &Value, seat: &str) -> String {
    d["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["seat"] == seat)
        .unwrap()["link"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_link_opens_its_meeting_as_its_point_and_no_other() {
    let (app, s) = app_with_points().await;
    let a = app
        .post("/api/v1/meetings", &s, meeting_body(2, 2, &FIVE))
        .await
        .json();
    let b = app
        .post("/api/v1/meetings", &s, meeting_body(2, 2, &["058"]))
        .await
        .json();
    let auth = app.authorizer();
    let t = during(&a);

    let grant = auth.authorize_at(token_of(&link_of(&a, "060")), t).unwrap();
    assert_eq!(grant.meeting_id, a["meeting"]["id"].as_str().unwrap());
    assert_eq!(grant.point, "060");
    assert_eq!(grant.name, "UBND huyện Pác Nặm");
    assert_eq!(grant.role, signaling::protocol::Role::Point);
    let chair = auth.authorize_at(token_of(&link_of(&a, "06")), t).unwrap();
    assert_eq!(chair.role, signaling::protocol::Role::Chair);
    assert_eq!(chair.capacity, 500);

    // A's seat 060 re-signed for meeting B (as if a link were edited): B has no seat 060.
    let mut claims = app.tokens.verify(token_of(&link_of(&a, "060")), t).unwrap();
    claims.meeting = b["meeting"]["id"].as_str().unwrap().to_owned();
    let forged = app.tokens.sign(&claims).unwrap();
    let err = auth.authorize_at(&forged, t).unwrap_err();
    assert!(err.to_string().contains("không được mời"), "{err}");
    // Seat 058 exists in both: A's token id is not B's.
    let mut claims = app.tokens.verify(token_of(&link_of(&a, "058")), t).unwrap();
    claims.meeting = b["meeting"]["id"].as_str().unwrap().to_owned();
    assert!(
        auth.authorize_at(&app.tokens.sign(&claims).unwrap(), t)
            .is_err()
    );
    // A point claiming the chair's role.
    let mut claims = app.tokens.verify(token_of(&link_of(&a, "060")), t).unwrap();
    claims.role = signaling::protocol::Role::Chair;
    assert!(
        auth.authorize_at(&app.tokens.sign(&claims).unwrap(), t)
            .is_err()
    );
    // Tampered token.
    let mut tampered = token_of(&link_of(&a, "060")).to_owned();
    tampered.insert(20, 'x');
    let err = auth.authorize_at(&tampered, t).unwrap_err();
    assert!(err.to_string().contains("không hợp lệ"), "{err}");
}

#[tokio::test]
async fn join_window_revocation_cancellation_and_expiry_have_plain_messages() {
    let (app, s) = app_with_points().await;
    let d = app
        .post("/api/v1/meetings", &s, meeting_body(2, 2, &FIVE))
        .await
        .json();
    let id = d["meeting"]["id"].as_str().unwrap().to_owned();
    let auth = app.authorizer();
    let link = link_of(&d, "061");
    let start = during(&d) - Duration::from_secs(60);

    // Before the window (30 minutes before the start by default): not open yet, with the time.
    let err = auth
        .authorize_at(token_of(&link), start - Duration::from_secs(31 * 60))
        .unwrap_err();
    assert!(err.to_string().contains("chưa mở"), "{err}");
    assert!(
        auth.authorize_at(token_of(&link), start - Duration::from_secs(29 * 60))
            .is_ok()
    );
    // After the end: expired.
    let err = auth
        .authorize_at(token_of(&link), start + Duration::from_secs(3 * 3600))
        .unwrap_err();
    let auth_err: signaling::auth::AuthError = err.clone().into();
    assert!(
        matches!(auth_err, signaling::auth::AuthError::Expired(_)),
        "{err}"
    );
    assert!(
        err.to_string().contains("hết hạn") || err.to_string().contains("kết thúc"),
        "{err}"
    );

    // Re-issue: the old link is refused as replaced, the new one works.
    let res = app
        .call(
            "POST",
            &format!("/api/v1/meetings/{id}/seats/061/reissue"),
            Some(&s),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let new_link = res.json()["link"].as_str().unwrap().to_owned();
    assert_ne!(new_link, link);
    let err = auth.authorize_at(token_of(&link), start).unwrap_err();
    assert!(err.to_string().contains("liên kết mới"), "{err}");
    assert!(auth.authorize_at(token_of(&new_link), start).is_ok());
    let res = app
        .call(
            "POST",
            &format!("/api/v1/meetings/{id}/seats/nope/reissue"),
            Some(&s),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);

    // Uninvited by an edit: refused.
    app.call(
        "PUT",
        &format!("/api/v1/meetings/{id}"),
        Some(&s),
        Some(meeting_body(2, 2, &["058"])),
    )
    .await;
    let err = auth.authorize_at(token_of(&new_link), start).unwrap_err();
    assert!(err.to_string().contains("không được mời"), "{err}");

    // Cancelled: refused.
    let chair = link_of(&d, "06");
    app.call(
        "POST",
        &format!("/api/v1/meetings/{id}/cancel"),
        Some(&s),
        None,
    )
    .await;
    let err = auth.authorize_at(token_of(&chair), start).unwrap_err();
    assert!(err.to_string().contains("hủy"), "{err}");
}

#[tokio::test]
async fn the_test_room_still_works_through_the_same_authorizer() {
    let app = App::new().await;
    let links = room_admin::test_room::links(&app.tokens, BASE, SystemTime::now()).unwrap();
    let grant = app
        .authorizer()
        .authorize_at(token_of(&links.chair), SystemTime::now())
        .unwrap();
    assert_eq!(grant.meeting_id, "test-room");
}

// --- attendance ----------------------------------------------------------------------------------

#[tokio::test]
async fn attendance_is_recorded_and_reported_as_json_and_csv() {
    use signaling::auth::{Authorizer, RoomObserver};
    let (app, s) = app_with_points().await;
    // Starting in a minute: a join now is on time.
    let mut body = meeting_body(0, 2, &FIVE);
    body["starts_at"] = json!(room_admin::timefmt::utc_rfc3339(
        room_admin::db::unix_now() + 60
    ));
    let d = app.post("/api/v1/meetings", &s, body).await.json();
    let id = d["meeting"]["id"].as_str().unwrap().to_owned();
    let grant = app
        .authorizer()
        .authorize(token_of(&link_of(&d, "060")))
        .unwrap();

    let recorder = room_admin::attendance::AttendanceRecorder::start(app.db.clone())
        .await
        .unwrap();
    recorder.joined(&grant, "p1");
    recorder.left(&grant, "p1", 125.0);
    recorder.joined(&grant, "p2");
    app.live.0.lock().unwrap().push((
        id.clone(),
        LiveSeat {
            participant: "p2".into(),
            seat: "060".into(),
            name: grant.name.clone(),
            role: "point".into(),
        },
    ));

    let mut report = Value::Null;
    for _ in 0..100 {
        report = app
            .get(&format!("/api/v1/meetings/{id}/attendance"), &s)
            .await
            .json();
        if report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["seat"] == "060" && r["joins"] == 2)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rows = report["rows"].as_array().unwrap();
    let row = rows.iter().find(|r| r["seat"] == "060").unwrap();
    assert_eq!(row["status"], "present", "{report}");
    assert_eq!(row["joins"], 2);
    assert_eq!(row["minutes"], 2);
    assert_eq!(row["connected"], true);
    assert_eq!(report["present"], 1);
    // The meeting is not over: the others have not joined yet, they are not absent.
    assert_eq!(report["not_joined"], 5);
    assert_eq!(report["absent"], 0);
    let other = rows.iter().find(|r| r["seat"] == "02191").unwrap();
    assert_eq!(other["status"], "not_joined");

    let csv = app
        .get(&format!("/api/v1/meetings/{id}/attendance.csv"), &s)
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    assert!(csv.body.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM for Excel");
    // In Vietnamese by default: headers, roles and statuses in words ("Chưa vào", not
    // "Vắng mặt", before the meeting is over).
    let text = csv.text();
    assert!(
        text.starts_with(
            "\u{feff}Mã,Tên,Vai trò,Trạng thái,Vào lúc,Rời lúc,Số lần vào,Số phút,\
             Trả lời điểm danh,Chất lượng đường truyền\r\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("060,UBND huyện Pác Nặm,Điểm cầu,Có mặt,"),
        "{text}"
    );
    assert!(
        text.contains("02191,Xã Xuân Dương,Điểm cầu,Chưa vào,"),
        "{text}"
    );
    assert!(!text.contains("Vắng mặt"), "{text}");
    // In English on request (the panel passes its language).
    let en = app
        .get(&format!("/api/v1/meetings/{id}/attendance.csv?lang=en"), &s)
        .await
        .text();
    assert!(
        en.starts_with("\u{feff}Code,Name,Role,Status,Joined at,Left at,Joins,Minutes,"),
        "{en}"
    );
    assert!(en.contains("060,UBND huyện Pác Nặm,Point,Present,"), "{en}");
    assert!(
        en.contains("02191,Xã Xuân Dương,Point,Not joined yet,"),
        "{en}"
    );
    assert!(
        en.contains("06,Hội trường UBND tỉnh Bắc Kạn,Chair point,"),
        "{en}"
    );
    let bad = app
        .get(&format!("/api/v1/meetings/{id}/attendance.csv?lang=fr"), &s)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
    // Seats by kind, then code: the chair, the districts, then the communes.
    let order: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seat"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["06", "058", "060", "061", "02191", "02194"]);
    let lines: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(lines, order, "the CSV in the same order");

    // The meeting detail shows who is connected.
    let detail = app.get(&format!("/api/v1/meetings/{id}"), &s).await.json();
    assert_eq!(detail["live"].as_array().unwrap().len(), 1);
    assert!(!link_of(&detail, "060").is_empty());
    assert!(
        detail["seats"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["seat"] == "060" && s["connected"] == true)
    );
    // Dashboard: today's meeting, with who is connected.
    let dash = app.get("/api/v1/dashboard", &s).await.json();
    let today = dash["today"].as_array().unwrap();
    assert!(
        today
            .iter()
            .any(|m| m["meeting"]["id"] == id.as_str() && m["live"].as_array().unwrap().len() == 1),
        "{dash}"
    );

    assert_eq!(
        app.get("/api/v1/meetings/m-none/attendance", &s)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/meetings/m-none/attendance.csv", &s)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

// --- accounts and audit --------------------------------------------------------------------------

#[tokio::test]
async fn accounts_are_for_admins_only() {
    let app = App::new().await;
    let admin = app.admin().await;
    let op = app.operator().await;
    assert_eq!(
        app.get("/api/v1/accounts", &op).await.status,
        StatusCode::FORBIDDEN
    );
    let res = app
        .post(
            "/api/v1/accounts",
            &op,
            json!({"username": "x1", "password": "long enough pw", "role": "admin"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("accounts").await, 2);

    let res = app
        .post(
            "/api/v1/accounts",
            &admin,
            json!({"username": "it.nari", "password": "long enough pw", "role": "operator"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert!(
        res.json().get("password_hash").is_none(),
        "hashes never leave the server"
    );
    for (body, field) in [
        (
            json!({"username": "it.nari", "password": "long enough pw", "role": "operator"}),
            "username",
        ),
        (
            json!({"username": "Bad Name", "password": "long enough pw", "role": "operator"}),
            "username",
        ),
        (
            json!({"username": "short", "password": "short", "role": "operator"}),
            "password",
        ),
        (
            json!({"username": "rolly", "password": "long enough pw", "role": "root"}),
            "role",
        ),
    ] {
        let res = app.post("/api/v1/accounts", &admin, body).await;
        assert!(
            res.status == StatusCode::CONFLICT || res.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            res.text()
        );
        assert!(
            res.json()["error"]["fields"][field].is_string(),
            "{field}: {}",
            res.text()
        );
    }
    let list = app.get("/api/v1/accounts", &admin).await.json();
    assert_eq!(list.as_array().unwrap().len(), 3);

    // Password reset and disable end the sessions; a disabled account cannot log in.
    let nari = app.session("it.nari", "long enough pw").await;
    let res = app
        .post(
            "/api/v1/accounts/it.nari/password",
            &admin,
            json!({"password": "another long pw"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/auth/me", &nari).await.status,
        StatusCode::UNAUTHORIZED
    );
    let res = app
        .post(
            "/api/v1/accounts/it.nari/password",
            &admin,
            json!({"password": "short"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let res = app
        .call(
            "POST",
            "/api/v1/accounts/it.nari/disable",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(res.json()["disabled"], true);
    assert_eq!(
        app.login("it.nari", "another long pw").await.status,
        StatusCode::UNAUTHORIZED
    );
    let res = app
        .call(
            "POST",
            "/api/v1/accounts/it.nari/enable",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(res.json()["disabled"], false);
    assert_eq!(
        app.login("it.nari", "another long pw").await.status,
        StatusCode::OK
    );
    // The last admin cannot lock everyone out.
    let res = app
        .call("POST", "/api/v1/accounts/admin/disable", Some(&admin), None)
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    for action in ["disable", "enable"] {
        let res = app
            .call(
                "POST",
                &format!("/api/v1/accounts/nobody/{action}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
    }
    let res = app
        .post(
            "/api/v1/accounts/nobody/password",
            &admin,
            json!({"password": "long enough pw"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_actions_are_in_the_audit_log_with_who_and_where() {
    let (app, s) = app_with_points().await;
    app.login("admin", "wrong").await;
    let d = app
        .post("/api/v1/meetings", &s, meeting_body(2, 2, &FIVE))
        .await
        .json();
    let id = d["meeting"]["id"].as_str().unwrap();
    app.call(
        "POST",
        &format!("/api/v1/meetings/{id}/cancel"),
        Some(&s),
        None,
    )
    .await;
    let log = app.get("/api/v1/audit", &s).await.json();
    let entries = log.as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "login",
        "point.import",
        "login.failed",
        "meeting.create",
        "meeting.cancel",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    assert_eq!(actions[0], "meeting.cancel", "newest first");
    assert_eq!(entries[0]["actor"], "admin");
    assert_eq!(entries[0]["ip"], "192.0.2.10");
    assert_eq!(entries[0]["target"], id);
    let page = app
        .get(
            &format!("/api/v1/audit?limit=2&before={}", entries[0]["id"]),
            &s,
        )
        .await
        .json();
    assert_eq!(page.as_array().unwrap().len(), 2);
    assert_eq!(page[0]["action"], entries[1]["action"]);
    assert_eq!(
        app.get("/api/v1/audit?limit=abc", &s).await.status,
        StatusCode::BAD_REQUEST
    );
}

// --- calendars -----------------------------------------------------------------------------------

#[tokio::test]
async fn calendars_for_all_and_per_point() {
    let (app, s) = app_with_points().await;
    let d = app
        .post("/api/v1/meetings", &s, meeting_body(2, 2, &FIVE))
        .await
        .json();
    let id = d["meeting"]["id"].as_str().unwrap();
    app.post("/api/v1/meetings", &s, meeting_body(5, 1, &["058"]))
        .await;
    let all = app.get("/api/v1/calendar.ics", &s).await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(
        all.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    let text = all.text();
    assert_eq!(text.matches("BEGIN:VEVENT").count(), 2);
    assert!(
        !text.contains("join?t="),
        "the province calendar carries no links"
    );

    let one = app.get("/api/v1/points/060/calendar.ics", &s).await.text();
    assert_eq!(one.matches("BEGIN:VEVENT").count(), 1);
    assert!(one.contains(&format!("UID:{id}@hoinghi")));
    assert!(one.replace("\r\n ", "").contains(&link_of(&d, "060")));
    assert_eq!(
        app.get("/api/v1/points/none/calendar.ics", &s).await.status,
        StatusCode::NOT_FOUND
    );
}

/// Checks an answer is a valid iCalendar feed and returns its unfolded lines.
fn ics_lines(a: &Answer) -> Vec<String> {
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(
        a.headers[header::CONTENT_TYPE].to_str().unwrap(),
        "text/calendar; charset=utf-8"
    );
    assert!(a.headers.get(header::SET_COOKIE).is_none());
    let text = a.text();
    assert!(text.ends_with("\r\n"));
    // Every line ends with CRLF: no bare LF or CR.
    assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
    assert_eq!(text.matches('\r').count(), text.matches("\r\n").count());
    let lines: Vec<String> = text
        .replace("\r\n ", "")
        .trim_end_matches("\r\n")
        .split("\r\n")
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.first().unwrap(), "BEGIN:VCALENDAR");
    assert_eq!(lines.last().unwrap(), "END:VCALENDAR");
    assert!(lines.iter().any(|l| l == "VERSION:2.0"));
    assert_eq!(
        lines.iter().filter(|l| *l == "BEGIN:VEVENT").count(),
        lines.iter().filter(|l| *l == "END:VEVENT").count()
    );
    for l in &lines {
        assert!(l.contains(':'), "not a content line: {l:?}");
        if let Some(t) = l
            .strip_prefix("DTSTART:")
            .or_else(|| l.strip_prefix("DTEND:"))
        {
            // UTC date-time: 20250602T010000Z.
            assert_eq!(t.len(), 16, "{l}");
            assert!(t.ends_with('Z') && t.as_bytes()[8] == b'T', "{l}");
            assert!(
                t[..8]
                    .bytes()
                    .chain(t[9..15].bytes())
                    .all(|b| b.is_ascii_digit())
            );
        }
    }
    lines
}

fn uids(lines: &[String]) -> Vec<String> {
    let mut u: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("UID:"))
        .map(str::to_owned)
        .collect();
    u.sort();
    u
}

/// A GET without cookie (a calendar program).
async fn anonymous(app: &App, uri: &str) -> Answer {
    app.call("GET", uri, None, None).await
}

fn path_of(url: &str) -> &str {
    url.strip_prefix(BASE)
        .expect("the feed URL is on the server's base URL")
}

#[tokio::test]
async fn point_feeds_are_subscribed_without_login_and_reissued() {
    let (app, s) = app_with_points().await;
    let a = app
        .post("/api/v1/meetings", &s, meeting_body(2, 2, &FIVE))
        .await
        .json();
    let b = app
        .post("/api/v1/meetings", &s, meeting_body(5, 1, &["060"]))
        .await
        .json();
    let c = app
        .post("/api/v1/meetings", &s, meeting_body(8, 1, &["058"]))
        .await
        .json();
    let id = |d: &Value| d["meeting"]["id"].as_str().unwrap().to_owned();

    let feed = app.get("/api/v1/points/060/calendar-feed", &s).await;
    assert_eq!(feed.status, StatusCode::OK, "{}", feed.text());
    let feed = feed.json();
    let url = feed["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{BASE}/api/v1/calendar/points/060.ics?key=")),
        "{url}"
    );
    assert!(
        feed["webcal_url"]
            .as_str()
            .unwrap()
            .starts_with("webcal://hoinghi.test:8443/")
    );
    // Asking again shows the same URL.
    assert_eq!(
        app.get("/api/v1/points/060/calendar-feed", &s).await.json()["url"],
        url
    );

    // Success, without a cookie: that point's meetings only, with its own links.
    let ok = anonymous(&app, path_of(&url)).await;
    let lines = ics_lines(&ok);
    assert_eq!(
        lines.iter().filter(|l| *l == "BEGIN:VEVENT").count(),
        2,
        "one VEVENT per meeting of 060"
    );
    let mut want = vec![format!("{}@hoinghi", id(&a)), format!("{}@hoinghi", id(&b))];
    want.sort();
    assert_eq!(uids(&lines), want);
    let text = lines.join("\n");
    assert!(!text.contains(&id(&c)), "another point's meeting is absent");
    assert!(text.contains(&link_of(&a, "060")));
    assert!(!text.contains(&link_of(&a, "058")), "no other seat's link");

    // Wrong, missing, or another point's key; unknown point: the same JSON 404.
    let key = url.split_once("key=").unwrap().1.to_owned();
    let other = app.get("/api/v1/points/058/calendar-feed", &s).await.json()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_key = other.split_once("key=").unwrap().1.to_owned();
    let mut wrong = key.clone();
    wrong.replace_range(..1, if wrong.starts_with('0') { "1" } else { "0" });
    for uri in [
        format!("/api/v1/calendar/points/060.ics?key={wrong}"),
        "/api/v1/calendar/points/060.ics".to_owned(),
        "/api/v1/calendar/points/060.ics?key=".to_owned(),
        format!("/api/v1/calendar/points/060.ics?key={other_key}"),
        format!("/api/v1/calendar/points/none.ics?key={key}"),
        format!("/api/v1/calendar/points/060?key={key}"),
        format!("/api/v1/calendar/all.ics?key={key}"),
    ] {
        let res = anonymous(&app, &uri).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(res.code(), "not_found", "{uri}");
        assert!(
            !res.text().contains("060"),
            "{uri}: says nothing of the point"
        );
    }
    // The other point's URL works and has only its own meetings.
    let l058 = ics_lines(&anonymous(&app, path_of(&other)).await);
    let mut want = vec![format!("{}@hoinghi", id(&a)), format!("{}@hoinghi", id(&c))];
    want.sort();
    assert_eq!(uids(&l058), want);

    // Re-issue: the old URL stops, the new one works; the audit log says who.
    let res = app
        .post("/api/v1/points/060/calendar-feed/reissue", &s, json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let new_url = res.json()["url"].as_str().unwrap().to_owned();
    assert_ne!(new_url, url);
    assert_eq!(
        anonymous(&app, path_of(&url)).await.status,
        StatusCode::NOT_FOUND
    );
    ics_lines(&anonymous(&app, path_of(&new_url)).await);
    assert_eq!(
        app.get("/api/v1/points/060/calendar-feed", &s).await.json()["url"],
        new_url
    );
    let audit = app.get("/api/v1/audit", &s).await.json();
    assert!(audit.as_array().unwrap().iter().any(|e| {
        e["action"] == "point.calendar_feed_reissue"
            && e["target"] == "060"
            && e["actor"] == "admin"
    }));
    // A disabled point's feed stops.
    app.post("/api/v1/points/060/disable", &s, json!({})).await;
    assert_eq!(
        anonymous(&app, path_of(&new_url)).await.status,
        StatusCode::NOT_FOUND
    );
    // Unknown points have no feed to show.
    assert_eq!(
        app.get("/api/v1/points/none/calendar-feed", &s)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_all_meetings_feed_has_every_meeting_and_no_link() {
    let (app, s) = app_with_points().await;
    let a = app
        .post("/api/v1/meetings", &s, meeting_body(2, 2, &FIVE))
        .await
        .json();
    app.post("/api/v1/meetings", &s, meeting_body(5, 1, &["060"]))
        .await;
    let op = app.operator().await;
    let url = app.get("/api/v1/calendar/feed", &op).await.json()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.starts_with(&format!("{BASE}/api/v1/calendar/all.ics?key=")));
    let lines = ics_lines(&anonymous(&app, path_of(&url)).await);
    assert_eq!(lines.iter().filter(|l| *l == "BEGIN:VEVENT").count(), 2);
    let text = lines.join("\n");
    assert!(!text.contains("join?t="), "never a join link");
    assert!(!text.contains(token_of(&link_of(&a, "060"))));

    let key = url.split_once("key=").unwrap().1;
    assert_eq!(
        anonymous(&app, &format!("/api/v1/calendar/points/060.ics?key={key}"))
            .await
            .status,
        StatusCode::NOT_FOUND,
        "the all-meetings key opens no point's feed"
    );
    assert_eq!(
        anonymous(&app, "/api/v1/calendar/all.ics?key=00")
            .await
            .code(),
        "not_found"
    );
    let new_url = app
        .post("/api/v1/calendar/feed/reissue", &op, json!({}))
        .await
        .json()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_url, url);
    assert_eq!(
        anonymous(&app, path_of(&url)).await.status,
        StatusCode::NOT_FOUND
    );
    ics_lines(&anonymous(&app, path_of(&new_url)).await);
}

#[tokio::test]
async fn points_list_pages_with_a_total() {
    let app = App::new().await;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    let all = app.get("/api/v1/points", &s).await;
    assert_eq!(all.headers["x-total-count"], "122");
    let all = all.json();
    assert_eq!(all.as_array().unwrap().len(), 122, "no limit: every point");
    let page = app.get("/api/v1/points?limit=50&offset=100", &s).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["x-total-count"], "122");
    let page = page.json();
    let page = page.as_array().unwrap();
    assert_eq!(page.len(), 22);
    assert_eq!(page[0]["code"], all[100]["code"]);
    let res = app.get("/api/v1/points?limit=3&q=Pác%20Nặm", &s).await;
    assert!(res.json().as_array().unwrap().len() <= 3);
    let total: usize = res.headers["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(total >= 1);
    for bad in ["limit=0", "limit=10001", "offset=-1"] {
        let res = app.get(&format!("/api/v1/points?{bad}"), &s).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            res.text()
        );
    }
    let res = app.get("/api/v1/points?limit=abc", &s).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code(), "bad_query");
}

// --- meetings that end by the clock --------------------------------------------------------------

fn ends_at(d: &Value) -> i64 {
    room_admin::timefmt::parse(d["meeting"]["ends_at"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn meetings_are_closed_once_when_their_end_passes() {
    use room_admin::api::LiveSource;
    use room_admin::{closer, db};
    let (app, s) = app_with_points().await;
    let a = app
        .post("/api/v1/meetings", &s, meeting_body(2, 2, &FIVE))
        .await
        .json();
    let b = app
        .post("/api/v1/meetings", &s, meeting_body(5, 1, &["060"]))
        .await
        .json();
    let cancelled = app
        .post("/api/v1/meetings", &s, meeting_body(3, 1, &["060"]))
        .await
        .json();
    let ended = app
        .post("/api/v1/meetings", &s, meeting_body(0, 1, &["058"]))
        .await
        .json();
    let id = |d: &Value| d["meeting"]["id"].as_str().unwrap().to_owned();
    let (ida, idb) = (id(&a), id(&b));
    app.post(
        &format!("/api/v1/meetings/{}/cancel", id(&cancelled)),
        &s,
        json!({}),
    )
    .await;
    let res = app
        .post(
            &format!("/api/v1/meetings/{}/end", id(&ended)),
            &s,
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let panel_actions = app.live.actions().len();
    for seat in ["06", "058"] {
        app.live.0.lock().unwrap().push((
            ida.clone(),
            LiveSeat {
                participant: format!("p-{seat}"),
                seat: seat.into(),
                name: seat.into(),
                role: "point".into(),
            },
        ));
    }

    // Before the end: nothing happens.
    let now = db::unix_now();
    assert!(closer::close_due(&app.state, now).await.unwrap().is_empty());
    assert!(
        closer::close_due(&app.state, ends_at(&a) - 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.live.actions().len(), panel_actions);

    // At its end, the meeting is closed through the live source, once.
    assert_eq!(
        closer::close_due(&app.state, ends_at(&a)).await.unwrap(),
        vec![ida.clone()]
    );
    assert_eq!(
        app.live.actions()[panel_actions..],
        [format!("close {ida}: {}", closer::ENDED_BY_CLOCK)]
    );
    assert!(app.live.live(&ida).is_empty(), "everyone disconnected");
    assert!(
        closer::close_due(&app.state, ends_at(&a) + 30)
            .await
            .unwrap()
            .is_empty(),
        "closed once"
    );
    let detail = app.get(&format!("/api/v1/meetings/{ida}"), &s).await.json();
    assert_eq!(detail["meeting"]["state"], "ended");
    assert_eq!(detail["meeting"]["status"], "ended");
    assert_eq!(detail["meeting"]["ends_at"], a["meeting"]["ends_at"]);
    let audit = app.get("/api/v1/audit", &s).await.json();
    let entries: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "meeting.ended_by_clock")
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["target"], ida.as_str());
    assert_eq!(entries[0]["actor"], closer::ACTOR);
    assert!(
        entries[0]["detail"]
            .as_str()
            .unwrap()
            .ends_with("(2 connected)")
    );
    // Its links are refused even inside the planned times: the directory knows.
    assert!(
        app.authorizer()
            .authorize_at(token_of(&link_of(&a, "058")), during(&a))
            .is_err()
    );

    // Later: only the other scheduled meeting; cancelled and panel-ended ones are left alone.
    let far = ends_at(&b) + 3600;
    assert_eq!(
        closer::close_due(&app.state, far).await.unwrap(),
        vec![idb.clone()]
    );
    assert!(closer::close_due(&app.state, far).await.unwrap().is_empty());
    let closes: Vec<String> = app
        .live
        .actions()
        .into_iter()
        .filter(|a| a.starts_with("close "))
        .collect();
    assert_eq!(
        closes.len(),
        4,
        "cancel, end now, and the two by the clock: {closes:?}"
    );
}
