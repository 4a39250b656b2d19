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

/// Before, the schedule stopped the meeting without a warning, nobody could extend it, and the
/// points read "Điểm cầu chủ trì đã kết thúc cuộc họp" (bye `meeting_ended`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_warns_the_chair_lets_it_extend_and_ends_with_its_own_reason() {
    use room_admin::closer;
    let srv = server().await;
    let app = &srv.app;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    let d = meeting_now(app, &s).await;
    let id = d["meeting"]["id"].as_str().unwrap().to_owned();
    let ends = room_admin::timefmt::parse(d["meeting"]["ends_at"].as_str().unwrap()).unwrap();
    let (mut chair, j) = join(&srv.ws_url, &link_of(&d, "06")).await;
    assert_eq!(j["type"], "joined", "{j}");
    let point_link = link_of(&d, "058");
    let (mut p058, j) = join(&srv.ws_url, &point_link).await;
    assert_eq!(j["type"], "joined", "{j}");

    // 10 minutes before, then 2: the chair is warned once each.
    let mut warned = closer::Warned::default();
    let given = closer::warn_due(&app.state, ends - 600, &mut warned)
        .await
        .unwrap();
    assert_eq!(given, vec![(id.clone(), 10)]);
    let w = next_of(&mut chair, "meeting_ending").await.unwrap();
    assert_eq!(w["minutes_left"], 10, "{w}");
    assert_eq!(w["ends_at"], json!(ends * 1000), "{w}");
    let again = closer::warn_due(&app.state, ends - 590, &mut warned)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let given = closer::warn_due(&app.state, ends - 100, &mut warned)
        .await
        .unwrap();
    assert_eq!(given, vec![(id.clone(), 2)]);
    assert_eq!(
        next_of(&mut chair, "meeting_ending").await.unwrap()["minutes_left"],
        2
    );

    // Only the chair extends, by 15 or 30 minutes.
    send(
        &mut p058,
        json!({"type": "extend_meeting", "v": 1, "minutes": 15}),
    )
    .await;
    assert_eq!(
        next_of(&mut p058, "error").await.unwrap()["code"],
        "forbidden"
    );
    send(
        &mut chair,
        json!({"type": "extend_meeting", "v": 1, "minutes": 20}),
    )
    .await;
    assert_eq!(
        next_of(&mut chair, "error").await.unwrap()["code"],
        "bad_message"
    );
    send(
        &mut chair,
        json!({"type": "extend_meeting", "v": 1, "minutes": 15}),
    )
    .await;
    let new_end = ends + 15 * 60;
    for ws in [&mut chair, &mut p058] {
        let x = next_of(ws, "meeting_extended").await.unwrap();
        assert_eq!(x["ends_at"], json!(new_end * 1000), "{x}");
        assert_eq!(x["minutes"], 15, "{x}");
    }
    srv.recorder.flush().await;
    let m = app.get(&format!("/api/v1/meetings/{id}"), &s).await.json();
    assert_eq!(
        room_admin::timefmt::parse(m["meeting"]["ends_at"].as_str().unwrap()),
        Some(new_end),
        "{m}"
    );
    let audit = app.get("/api/v1/audit", &s).await.json();
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "room.extend_meeting")
        .unwrap_or_else(|| panic!("{audit}"))
        .clone();
    assert_eq!(entry["actor"], "06");
    assert!(
        entry["detail"].as_str().unwrap().starts_with("+15 min"),
        "{entry}"
    );
    // The link sent before (its token says the old end) works until the new end.
    let after_old_end = std::time::UNIX_EPOCH + std::time::Duration::from_secs((ends + 60) as u64);
    assert!(
        app.authorizer()
            .authorize_at(token_of(&point_link), after_old_end)
            .is_ok()
    );
    // Nothing is closed at the old end; warnings come again before the new one.
    assert!(
        closer::close_due(&app.state, ends)
            .await
            .unwrap()
            .is_empty()
    );
    let given = closer::warn_due(&app.state, new_end - 600, &mut warned)
        .await
        .unwrap();
    assert_eq!(given, vec![(id.clone(), 10)]);

    // At the new end: the points are told the schedule ended it, not the chair.
    assert_eq!(
        closer::close_due(&app.state, new_end).await.unwrap(),
        vec![id.clone()]
    );
    assert!(next_of(&mut p058, "meeting_ended").await.is_some());
    let bye = next_of(&mut p058, "bye").await.unwrap();
    assert_eq!(bye["code"], "schedule_ended", "{bye}");
    assert!(
        bye["reason"]
            .as_str()
            .unwrap()
            .contains("hết giờ theo lịch"),
        "{bye}"
    );
}
