//! A meeting's end and who may still join, through the real signaling path: the chair's "end
//! meeting" ends it in the database too, and a point disabled in the directory is disconnected
//! and refused.

#[path = "../../tests/admin/mod.rs"]
mod admin;
mod live;

use admin::*;
use axum::http::StatusCode;
use live::*;
use serde_json::{Value, json};

/// A meeting of the chair `06` and three points, starting in a minute (joins are open).
async fn meeting_now(app: &App, s: &Session) -> Value {
    let mut body = meeting_body(0, 2, &["058", "060", "061"]);
    body["starts_at"] = json!(room_admin::timefmt::utc_rfc3339(
        room_admin::db::unix_now() + 60
    ));
    let res = app.post("/api/v1/meetings", s, body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()
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

/// Before, the points got `meeting_ended` but the database still said live, the panel showed
/// "Đang họp" and the same links joined again into an empty room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chairs_end_ends_the_meeting_for_good() {
    let srv = server().await;
    let app = &srv.app;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    let d = meeting_now(app, &s).await;
    let id = d["meeting"]["id"].as_str().unwrap().to_owned();

    let (mut chair, j) = join(&srv.ws_url, &link_of(&d, "06")).await;
    assert_eq!(j["type"], "joined", "{j}");
    let (mut p058, j) = join(&srv.ws_url, &link_of(&d, "058")).await;
    assert_eq!(j["type"], "joined", "{j}");

    send(&mut chair, json!({"type": "end_meeting", "v": 1})).await;
    assert!(next_of(&mut p058, "meeting_ended").await.is_some());
    let bye = next_of(&mut p058, "bye").await.expect("bye");
    assert_eq!(bye["code"], "meeting_ended", "{bye}");
    assert!(closes(&mut p058).await);
    assert!(closes(&mut chair).await);

    // Nobody gets back in, the chair included; a late point is refused too.
    for seat in ["058", "06", "061"] {
        let (_ws, refused) = join(&srv.ws_url, &link_of(&d, seat)).await;
        assert_eq!(refused["type"], "error", "{seat}: {refused}");
        assert_eq!(refused["code"], "token_expired", "{seat}: {refused}");
        assert!(
            refused["message"].as_str().unwrap().contains("đã kết thúc"),
            "{refused}"
        );
    }

    // The database and the panel say ended, by whom and when; the audit log has it.
    srv.recorder.flush().await;
    let m = app.get(&format!("/api/v1/meetings/{id}"), &s).await.json();
    assert_eq!(m["meeting"]["state"], "ended", "{m}");
    assert_eq!(m["meeting"]["status"], "ended", "{m}");
    assert_eq!(m["meeting"]["ended_by"], "chair:06", "{m}");
    assert!(m["meeting"]["ended_at"].is_string(), "{m}");
    let audit = app.get("/api/v1/audit", &s).await.json();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "room.end_meeting" && e["target"] == id.as_str()),
        "{audit}"
    );
    // A reload of the directory from the database (a restart) keeps it ended.
    app.directory.refresh(&app.db, &id).await.unwrap();
    let (_ws, refused) = join(&srv.ws_url, &link_of(&d, "058")).await;
    assert_eq!(refused["code"], "token_expired", "{refused}");
    // The late point is absent, not present.
    let report = app
        .get(&format!("/api/v1/meetings/{id}/attendance"), &s)
        .await
        .json();
    let row = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["seat"] == "061")
        .unwrap()
        .clone();
    assert_eq!(row["joins"], 0, "{row}");
    assert_eq!(row["first_join"], Value::Null, "{row}");
}

/// Before, a point disabled while invited to a live meeting stayed connected and joined again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_point_is_disconnected_and_refused() {
    let srv = server().await;
    let app = &srv.app;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    let d = meeting_now(app, &s).await;
    let (mut p060, j) = join(&srv.ws_url, &link_of(&d, "060")).await;
    assert_eq!(j["type"], "joined", "{j}");

    let a = app.post("/api/v1/points/060/disable", &s, json!({})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let bye = next_of(&mut p060, "bye").await.expect("bye");
    assert_eq!(bye["code"], "revoked", "{bye}");
    assert!(closes(&mut p060).await);
    let (_ws, refused) = join(&srv.ws_url, &link_of(&d, "060")).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("ngừng sử dụng"),
        "{refused}"
    );
    // Enabled again, the same link joins.
    app.post("/api/v1/points/060/enable", &s, json!({})).await;
    let (_ws, j) = join(&srv.ws_url, &link_of(&d, "060")).await;
    assert_eq!(j["type"], "joined", "{j}");
}
