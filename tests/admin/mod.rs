//! Shared helpers of the admin API tests: a router on a temporary database (SQLite, or
//! PostgreSQL: `room_admin::db::testing`), requests with or without a session, and the JSON
//! answers.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use room_admin::api::{AdminState, LiveSeat, LiveSource};
use room_admin::{Db, Directory, JoinAuthorizer, JoinTokens, Secret, accounts, db};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const ADMIN_PASSWORD: &str = "mật khẩu quản trị 2025";
pub const OPERATOR_PASSWORD: &str = "night shift staff 1";
pub const BASE: &str = "https://hoinghi.test:8443";
/// A byte-identical copy of `shared/data/points-bac-kan.csv` (122 points of Bắc Kạn).
pub const CSV: &str = include_str!("../fixtures/points-bac-kan.csv");

/// Who the fake signaling layer says is connected (`.0`), and what the API asked it to do
/// (`.1`: `kick <meeting> <seat>: <reason>` and `close <meeting>: <reason>`). A kick or a close
/// disconnects the matching seats.
#[derive(Default)]
pub struct FakeLive(pub Mutex<Vec<(String, LiveSeat)>>, pub Mutex<Vec<String>>);

impl FakeLive {
    /// What the API asked so far.
    pub fn actions(&self) -> Vec<String> {
        self.1.lock().unwrap().clone()
    }
}

impl LiveSource for FakeLive {
    fn live(&self, meeting: &str) -> Vec<LiveSeat> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m == meeting)
            .map(|(_, s)| s.clone())
            .collect()
    }

    fn kick(&self, meeting: &str, seat: &str, reason: &str) -> bool {
        self.1
            .lock()
            .unwrap()
            .push(format!("kick {meeting} {seat}: {reason}"));
        let mut live = self.0.lock().unwrap();
        let before = live.len();
        live.retain(|(m, s)| !(m == meeting && s.seat == seat));
        live.len() != before
    }

    fn close_meeting(&self, meeting: &str, reason: &str) -> usize {
        self.1
            .lock()
            .unwrap()
            .push(format!("close {meeting}: {reason}"));
        let mut live = self.0.lock().unwrap();
        let before = live.len();
        live.retain(|(m, _)| m != meeting);
        before - live.len()
    }
}

pub struct App {
    pub router: Router,
    pub state: AdminState,
    pub db: Db,
    pub tokens: JoinTokens,
    pub directory: Arc<Directory>,
    pub live: Arc<FakeLive>,
    pub _dir: tempfile::TempDir,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `error.code` of a JSON error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

#[derive(Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

impl App {
    pub async fn new() -> App {
        App::with_secure_cookies(false).await
    }

    pub async fn with_secure_cookies(secure: bool) -> App {
        App::build(secure, None).await
    }

    /// `source`: what the API asks who is connected and tells to disconnect (default: the
    /// `FakeLive` in `live`).
    pub async fn build(secure: bool, source: Option<Arc<dyn LiveSource>>) -> App {
        let dir = tempfile::tempdir().unwrap();
        // SQLite in `dir`, or a fresh PostgreSQL database with HOINGHI_TEST_DATABASE=postgres.
        let db = db::testing::open_for_test(dir.path()).await;
        let now = db::unix_now();
        for (user, pw, role) in [
            ("admin", ADMIN_PASSWORD, "admin"),
            ("operator", OPERATOR_PASSWORD, "operator"),
        ] {
            accounts::create(
                &db,
                &accounts::NewAccount {
                    username: user.into(),
                    password: pw.into(),
                    role: role.into(),
                },
                now,
            )
            .await
            .unwrap();
        }
        let tokens = JoinTokens::new(&Secret::generate());
        let directory = Arc::new(Directory::load(&db).await.unwrap());
        let live = Arc::new(FakeLive::default());
        let state = AdminState::new(
            db.clone(),
            tokens.clone(),
            directory.clone(),
            BASE.into(),
            secure,
            source.unwrap_or_else(|| live.clone()),
        );
        App {
            router: room_admin::api::router(state.clone()),
            state,
            db,
            tokens,
            directory,
            live,
            _dir: dir,
        }
    }

    pub fn authorizer(&self) -> JoinAuthorizer {
        JoinAuthorizer::with_directory(self.tokens.clone(), self.directory.clone())
    }

    pub async fn send(&self, req: Request<Body>) -> Answer {
        let mut req = req;
        req.extensions_mut().insert(ConnectInfo(
            "192.0.2.10:5000".parse::<SocketAddr>().unwrap(),
        ));
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = to_bytes(res.into_body(), 64 << 20).await.unwrap().to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A request with the session's cookie and CSRF token, JSON body when given.
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        session: Option<&Session>,
        body: Option<Value>,
    ) -> Answer {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(s) = session {
            b = b
                .header(header::COOKIE, format!("hoinghi_admin={}", s.cookie))
                .header("x-csrf-token", &s.csrf);
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    pub async fn get(&self, uri: &str, s: &Session) -> Answer {
        self.call("GET", uri, Some(s), None).await
    }

    pub async fn post(&self, uri: &str, s: &Session, body: Value) -> Answer {
        self.call("POST", uri, Some(s), Some(body)).await
    }

    /// A raw body (CSV import).
    pub async fn post_raw(&self, uri: &str, s: &Session, body: impl Into<Body>) -> Answer {
        let req = Request::post(uri)
            .header(header::COOKIE, format!("hoinghi_admin={}", s.cookie))
            .header("x-csrf-token", &s.csrf)
            .header(header::CONTENT_TYPE, "text/csv")
            .body(body.into())
            .unwrap();
        self.send(req).await
    }

    pub async fn login(&self, user: &str, password: &str) -> Answer {
        self.call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"username": user, "password": password})),
        )
        .await
    }

    pub async fn session(&self, user: &str, password: &str) -> Session {
        let a = self.login(user, password).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        let set = a.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
        let cookie = set
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("hoinghi_admin=")
            .unwrap()
            .to_owned();
        Session {
            cookie,
            csrf: a.json()["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn admin(&self) -> Session {
        self.session("admin", ADMIN_PASSWORD).await
    }

    pub async fn operator(&self) -> Session {
        self.session("operator", OPERATOR_PASSWORD).await
    }

    pub async fn import_bac_kan(&self, s: &Session) {
        let a = self.post_raw("/api/v1/points/import", s, CSV).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql: &'static str = match table {
            "points" => "SELECT COUNT(*) FROM points",
            "meetings" => "SELECT COUNT(*) FROM meetings",
            "seats" => "SELECT COUNT(*) FROM seats",
            "accounts" => "SELECT COUNT(*) FROM accounts",
            "audit_log" => "SELECT COUNT(*) FROM audit_log",
            _ => panic!("table {table}"),
        };
        sqlx::query_scalar(sql)
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }
}

/// Vietnam local time `hours` from now, as the panel's datetime field sends it.
pub fn local_in(hours: i64) -> String {
    let t = db::unix_now() + hours * 3600;
    room_admin::timefmt::local_rfc3339(t)[..16].to_owned()
}

/// A meeting body starting in `start_h` hours for `len_h` hours with `points`.
pub fn meeting_body(start_h: i64, len_h: i64, points: &[&str]) -> Value {
    json!({
        "title": "Hội nghị trực tuyến tháng 6",
        "agenda": "Triển khai nhiệm vụ",
        "starts_at": local_in(start_h),
        "ends_at": local_in(start_h + len_h),
        "chair_point": "06",
        "points": points,
    })
}

/// The token of a join link.
pub fn token_of(link: &str) -> &str {
    link.split_once("/join?t=").expect("a join link").1
}
