//! The control plane under pressure and under attack: admin writes while points join, the login
//! throttle raced from one address and aimed at someone else's account, password rules, CSV
//! cells a spreadsheet would run, and the database's file modes. Through the API on a real
//! SQLite file in a temporary directory.

#[path = "../../tests/admin/mod.rs"]
mod admin;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use admin::*;
use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use room_admin::attendance::AttendanceRecorder;
use serde_json::{Value, json};
use signaling::auth::{Authorizer, RoomObserver};
use tower::ServiceExt;

/// A request from the client address `ip`.
async fn send_from(app: &App, ip: &str, mut req: Request<Body>) -> Answer {
    req.extensions_mut().insert(ConnectInfo(
        format!("{ip}:40000").parse::<SocketAddr>().unwrap(),
    ));
    let res = app.router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = to_bytes(res.into_body(), 16 << 20).await.unwrap().to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

fn json_post(uri: &str, body: &Value) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// --- 9.3: admin writes during a join storm -------------------------------------------------------

/// Before `BEGIN IMMEDIATE`, a point created from the panel (a read, then a write, in one
/// transaction) failed at once with "database is locked" whenever an attendance write committed
/// in between: a 500 for the IT staff in the middle of the meeting's join storm.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_writes_during_twenty_joins_a_second_never_answer_5xx() {
    let app = Arc::new(App::new().await);
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    let d = app
        .post("/api/v1/meetings", &s, meeting_body(0, 2, &["058", "060"]))
        .await
        .json();
    let link = d["seats"][1]["link"].as_str().unwrap().to_owned();
    let grant = app.authorizer().authorize(token_of(&link)).unwrap();
    let recorder = AttendanceRecorder::start(app.db.clone()).await.unwrap();

    // Joins at 20 a second (each with its leave), as a storm of reconnecting points writes them.
    let storm = {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            for i in 0..120 {
                tick.tick().await;
                let p = format!("p{i}");
                recorder.joined(&grant, &p);
                recorder.left(&grant, &p, 1.0);
            }
        })
    };
    // Meanwhile three members of staff create and edit points as fast as the API answers.
    let mut staff = Vec::new();
    for w in 0..3 {
        let (app, s) = (app.clone(), s.clone());
        staff.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..40 {
                let code = format!("T{w}-{i}");
                let body = json!({"code": code, "name": format!("Điểm {code}"), "kind": "other"});
                let a = app.post("/api/v1/points", &s, body).await;
                statuses.push((a.status, a.text()));
                let edit = json!({"code": code, "name": "Đổi tên", "kind": "commune"});
                let a = app
                    .call(
                        "PUT",
                        &format!("/api/v1/points/{code}"),
                        Some(&s),
                        Some(edit),
                    )
                    .await;
                statuses.push((a.status, a.text()));
            }
            statuses
        }));
    }
    let mut all = Vec::new();
    for h in staff {
        all.extend(h.await.unwrap());
    }
    storm.await.unwrap();
    recorder.flush().await;
    let failed: Vec<_> = all.iter().filter(|(st, _)| st.is_server_error()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} admin writes failed: {:?}",
        failed.len(),
        all.len(),
        failed.first()
    );
    assert_eq!(recorder.dropped(), 0);
    let joins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM attendance")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(joins, 120);
}

// --- 9.8: file modes -----------------------------------------------------------------------------

/// An operator who pre-created the data dir 0755 (and a umask of 022) got a world-readable
/// database and `-wal`: password hashes and every link readable by any local user.
#[tokio::test]
async fn database_files_are_private_in_a_world_readable_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = room_admin::Db::open_in(dir.path()).await.unwrap();
    room_admin::accounts::bootstrap(&db, room_admin::db::unix_now())
        .await
        .unwrap();
    let path = dir.path().join(room_admin::db::DB_FILE);
    for f in room_admin::db::companion_files(&path) {
        if f.exists() {
            assert_eq!(mode_of(&f), 0o600, "{}", f.display());
        }
    }
    assert!(dir.path().join("hoinghi.db-wal").exists());
    db.close().await;

    // Files an older version left readable are narrowed at the next open.
    for f in ["hoinghi.db", "hoinghi.db-wal", "hoinghi.db-shm"] {
        let p = dir.path().join(f);
        if p.exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let db = room_admin::Db::open_in(dir.path()).await.unwrap();
    for f in room_admin::db::companion_files(&path) {
        if f.exists() {
            assert_eq!(mode_of(&f), 0o600, "{}", f.display());
        }
    }
    db.close().await;
}

// --- 9.4: the login throttle ---------------------------------------------------------------------

fn login_body(user: &str, password: &str) -> Value {
    json!({"username": user, "password": password})
}

/// Before the reservation, all 30 of these passwords were hashed and checked (the limit was
/// counted only after each check failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_parallel_wrong_logins_from_one_address_check_at_most_the_limit() {
    let app = Arc::new(App::new().await);
    let mut tries = Vec::new();
    for i in 0..30 {
        let app = app.clone();
        tries.push(tokio::spawn(async move {
            let req = json_post(
                "/api/v1/auth/login",
                &login_body("admin", &format!("guess {i}")),
            );
            send_from(&app, "198.51.100.7", req).await.status
        }));
    }
    let mut checked = 0;
    for t in tries {
        match t.await.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        checked <= room_admin::throttle::PER_ACCOUNT,
        "{checked} passwords checked"
    );
}

/// Before, five failures from any address locked the real admin out for 15 minutes.
#[tokio::test]
async fn a_guesser_elsewhere_cannot_lock_the_owner_out() {
    let app = App::new().await;
    for _ in 0..room_admin::throttle::PER_ACCOUNT + 3 {
        let req = json_post("/api/v1/auth/login", &login_body("admin", "wrong guess"));
        let st = send_from(&app, "203.0.113.66", req).await.status;
        assert!(
            st == StatusCode::UNAUTHORIZED || st == StatusCode::TOO_MANY_REQUESTS,
            "{st}"
        );
    }
    // The guesser is locked out, even with the right password.
    let req = json_post("/api/v1/auth/login", &login_body("admin", ADMIN_PASSWORD));
    let a = send_from(&app, "203.0.113.66", req).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.headers.contains_key(header::RETRY_AFTER));
    // The owner, from the province's office, is not.
    let req = json_post("/api/v1/auth/login", &login_body("admin", ADMIN_PASSWORD));
    assert_eq!(
        send_from(&app, "192.0.2.44", req).await.status,
        StatusCode::OK
    );
}

/// Guesses from many addresses slow the account down (a wait of seconds), never lock it.
#[tokio::test]
async fn guesses_from_many_addresses_only_slow_the_account_down() {
    let app = App::new().await;
    for i in 0..room_admin::throttle::SLOW_AFTER {
        let req = json_post("/api/v1/auth/login", &login_body("admin", "wrong guess"));
        let _ = send_from(&app, &format!("203.0.113.{i}"), req).await;
    }
    let owner = || json_post("/api/v1/auth/login", &login_body("admin", ADMIN_PASSWORD));
    let mut a = send_from(&app, "192.0.2.44", owner()).await;
    if a.status == StatusCode::TOO_MANY_REQUESTS {
        let wait: u64 = a.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(wait <= room_admin::throttle::SPACING_SECS as u64, "{wait}");
        assert!(a.text().contains("giây"), "{}", a.text());
        // The answer said when: exactly then, the owner is in.
        tokio::time::sleep(Duration::from_secs(wait)).await;
        a = send_from(&app, "192.0.2.44", owner()).await;
    }
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
}

/// Before, `/auth/password` checked the current password without limit: a stolen session
/// cookie was an unlimited password oracle.
#[tokio::test]
async fn wrong_current_passwords_are_throttled_too() {
    let app = App::new().await;
    let s = app.operator().await;
    let change = |current: &str| json!({"current_password": current, "new_password": "một mật khẩu mới dài"});
    for _ in 0..room_admin::throttle::PER_ACCOUNT {
        let a = app
            .post("/api/v1/auth/password", &s, change("wrong guess"))
            .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text());
    }
    let a = app
        .post("/api/v1/auth/password", &s, change(OPERATOR_PASSWORD))
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text());
    assert_eq!(a.code(), "too_many_attempts");
}

/// Every place a password is set refuses short and common ones with a message that says why.
#[tokio::test]
async fn every_password_setter_refuses_short_and_common_passwords() {
    let app = App::new().await;
    let s = app.admin().await;
    for bad in [
        "mười một kt",
        "Password1234",
        "123456789012",
        "hhhhhhhhhhhhhhhh",
    ] {
        let a = app
            .post(
                "/api/v1/accounts",
                &s,
                json!({"username": "it.nari", "password": bad, "role": "operator"}),
            )
            .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let why = a.json()["error"]["fields"]["password"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            why.contains("Mật khẩu") && why.contains("password"),
            "{why}"
        );
        let a = app
            .post(
                "/api/v1/accounts/operator/password",
                &s,
                json!({"password": bad}),
            )
            .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let a = app
            .post(
                "/api/v1/auth/password",
                &s,
                json!({"current_password": ADMIN_PASSWORD, "new_password": bad}),
            )
            .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(a.json()["error"]["fields"]["new_password"].is_string());
    }
    // Twelve characters that are not on the list pass.
    let a = app
        .post(
            "/api/v1/accounts",
            &s,
            json!({"username": "it.nari", "password": "xK7#pQ2!vL9m", "role": "operator"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
}

// --- 10.2: the join link's check before joining ------------------------------------------------

fn seat_link(d: &Value, seat: &str) -> String {
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

async fn check(app: &App, ip: &str, token: &str) -> Answer {
    send_from(
        app,
        ip,
        json_post("/api/v1/join/check", &json!({"token": token})),
    )
    .await
}

/// Before, the only answer a point opening tomorrow's link could get was the join's refusal,
/// which the page showed as "Liên kết không hợp lệ".
#[tokio::test]
async fn tomorrows_link_says_which_meeting_which_point_and_when_it_opens() {
    let app = App::new().await;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    let d = app
        .post("/api/v1/meetings", &s, meeting_body(24, 2, &["058"]))
        .await
        .json();
    let a = check(&app, "192.0.2.1", token_of(&seat_link(&d, "058"))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let c = a.json();
    assert_eq!(c["meeting_title"], "Hội nghị trực tuyến tháng 6");
    assert_eq!(c["point_name"], d["seats"][1]["name"]);
    assert_eq!(c["role"], "point");
    assert_eq!(c["state"], "scheduled");
    let starts = c["starts_at"].as_i64().unwrap();
    assert_eq!(c["opens_at"].as_i64().unwrap(), starts - 30 * 60);
    assert_eq!(c["ends_at"].as_i64().unwrap(), starts + 2 * 3600);
    let now = room_admin::db::unix_now();
    assert!((c["server_now"].as_i64().unwrap() - now).abs() <= 5);
    assert!(c["message"].as_str().unwrap().contains("chưa mở"), "{c}");
    // The chair's link says chair; a meeting open now says so.
    let chair = check(&app, "192.0.2.1", token_of(&seat_link(&d, "06"))).await;
    assert_eq!(chair.json()["role"], "chair");
    let now_d = app
        .post("/api/v1/meetings", &s, meeting_body(0, 2, &["058"]))
        .await
        .json();
    let c = check(&app, "192.0.2.1", token_of(&seat_link(&now_d, "058")))
        .await
        .json();
    assert_eq!(c["state"], "live", "{c}");
    assert!(c.get("message").is_none());
}

#[tokio::test]
async fn bad_links_get_a_flat_error_with_a_stable_code() {
    let app = App::new().await;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    let d = app
        .post("/api/v1/meetings", &s, meeting_body(0, 2, &["058", "060"]))
        .await
        .json();
    let id = d["meeting"]["id"].as_str().unwrap();
    let old = seat_link(&d, "058");
    app.post(
        &format!("/api/v1/meetings/{id}/seats/058/reissue"),
        &s,
        json!({}),
    )
    .await;
    app.post("/api/v1/points/060/disable", &s, json!({})).await;
    let expired = {
        let claims = room_admin::JoinClaims::new(
            "test-room",
            "test-point-1",
            signaling::protocol::Role::Point,
            "x",
            std::time::SystemTime::now() - Duration::from_secs(7200),
            Duration::from_secs(60),
        );
        app.tokens.sign(&claims).unwrap()
    };
    for (token, status, code) in [
        ("garbage".to_owned(), StatusCode::BAD_REQUEST, "invalid"),
        ("x".repeat(5000), StatusCode::BAD_REQUEST, "invalid"),
        (token_of(&old).to_owned(), StatusCode::GONE, "replaced"),
        (expired, StatusCode::GONE, "expired"),
        (
            token_of(&seat_link(&d, "060")).to_owned(),
            StatusCode::FORBIDDEN,
            "point_disabled",
        ),
    ] {
        let a = check(&app, "192.0.2.2", &token).await;
        assert_eq!(a.status, status, "{code}: {}", a.text());
        let body = a.json();
        assert_eq!(body["error"], code, "{body}");
        assert!(body["message"].as_str().unwrap().contains(" / "), "{body}");
    }
    for raw in ["not json", "{\"token\": 5}", "{\"token\": \"a\", \"x\": 1}"] {
        let req = Request::post("/api/v1/join/check")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(raw))
            .unwrap();
        let a = send_from(&app, "192.0.2.2", req).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{raw}");
        assert_eq!(a.json()["error"], "bad_request");
    }
}

#[tokio::test]
async fn link_checks_are_rate_limited_per_address() {
    let app = App::new().await;
    let limit = room_admin::api::join::PER_IP;
    for _ in 0..limit {
        assert_eq!(
            check(&app, "198.51.100.9", "garbage").await.status,
            StatusCode::BAD_REQUEST
        );
    }
    let a = check(&app, "198.51.100.9", "garbage").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.json()["error"], "rate_limited");
    assert!(a.headers.contains_key(header::RETRY_AFTER));
    // Another hall is not affected.
    assert_eq!(
        check(&app, "198.51.100.10", "garbage").await.status,
        StatusCode::BAD_REQUEST
    );
}

// --- 9.8: a disabled point --------------------------------------------------------------------

/// Before, disabling a point invited to a live meeting left its link working.
#[tokio::test]
async fn a_disabled_point_cannot_join_and_is_disconnected() {
    let app = App::new().await;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    let d = app
        .post("/api/v1/meetings", &s, meeting_body(0, 2, &["058", "060"]))
        .await
        .json();
    let id = d["meeting"]["id"].as_str().unwrap().to_owned();
    let link = seat_link(&d, "060");
    let auth = app.authorizer();
    assert!(auth.authorize(token_of(&link)).is_ok());
    app.live.0.lock().unwrap().push((
        id.clone(),
        room_admin::api::LiveSeat {
            participant: "p1".into(),
            seat: "060".into(),
            name: "Xã".into(),
            role: "point".into(),
        },
    ));
    let a = app.post("/api/v1/points/060/disable", &s, json!({})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let refused = auth.authorize(token_of(&link)).unwrap_err();
    assert!(refused.to_string().contains("ngừng sử dụng"), "{refused}");
    assert!(
        app.live
            .actions()
            .iter()
            .any(|a| a.starts_with(&format!("kick {id} 060:"))),
        "{:?}",
        app.live.actions()
    );
    // The other points are not concerned; enabled again, the same link works.
    assert!(auth.authorize(token_of(&seat_link(&d, "058"))).is_ok());
    app.post("/api/v1/points/060/enable", &s, json!({})).await;
    assert!(auth.authorize(token_of(&link)).is_ok());
}

// --- 9.8: CSV cells a spreadsheet would run -------------------------------------------------------

/// Before, only the name was neutralised: a point code like `-A1-A2` stayed a live formula.
#[tokio::test]
async fn every_attendance_csv_cell_that_starts_a_formula_stays_text() {
    let app = App::new().await;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    for (code, name) in [("-A1-A2", "+Xã Một"), ("A3", "@SUM(1)"), ("A4", "=1+1")] {
        let a = app
            .post(
                "/api/v1/points",
                &s,
                json!({"code": code, "name": name, "kind": "commune"}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    }
    let d = app
        .post(
            "/api/v1/meetings",
            &s,
            meeting_body(0, 2, &["-A1-A2", "A3", "A4"]),
        )
        .await
        .json();
    let id = d["meeting"]["id"].as_str().unwrap();
    for lang in ["", "?lang=en"] {
        let csv = app
            .get(&format!("/api/v1/meetings/{id}/attendance.csv{lang}"), &s)
            .await
            .text();
        let mut rows = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
        let mut seen = 0;
        for row in rows.records() {
            let row = row.unwrap();
            for cell in row.iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "live formula {cell:?} in {csv}"
                );
            }
            seen += 1;
        }
        assert_eq!(seen, 4, "{csv}");
        assert!(csv.contains("'-A1-A2,'+Xã Một,"), "{csv}");
    }
}

// --- 10.2: a start a few minutes ago means now ---------------------------------------------------

#[tokio::test]
async fn a_start_a_few_minutes_ago_means_now() {
    let app = App::new().await;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    let now = room_admin::db::unix_now();
    let mut body = meeting_body(0, 2, &["058"]);
    body["starts_at"] = json!(room_admin::timefmt::utc_rfc3339(now - 180));
    let a = app.post("/api/v1/meetings", &s, body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let m = &a.json()["meeting"];
    let starts = room_admin::timefmt::parse(m["starts_at"].as_str().unwrap()).unwrap();
    assert!((now..=now + 5).contains(&starts), "{m}");
    assert_eq!(m["state"], "live", "{m}");
    // Further back than the slack is still refused.
    let mut body = meeting_body(0, 2, &["058"]);
    body["starts_at"] = json!(room_admin::timefmt::utc_rfc3339(now - 3600));
    let a = app.post("/api/v1/meetings", &s, body).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
}
