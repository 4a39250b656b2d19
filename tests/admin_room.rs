//! What happens inside a meeting, as the control plane records and acts on it: roll-call
//! answers, link summaries, chat and room actions reach the attendance report, the meeting's
//! detail and the audit log; re-issuing a link, uninviting a point, cancelling or ending a
//! meeting disconnects the sessions concerned. Through the recorder and the API on a temporary
//! database, then end to end with the real signaling layer and WebSocket clients.

mod admin;

use std::time::Duration;

use admin::*;
use axum::http::StatusCode;
use room_admin::api::LiveSeat;
use room_admin::attendance::AttendanceRecorder;
use serde_json::{Value, json};
use signaling::auth::{Authorizer, LinkSummary, RoomObserver};

const FIVE: [&str; 5] = ["058", "060", "061", "02191", "02194"];

/// A meeting of the chair `06` and five points, starting in a minute (joins are open).
async fn meeting_now(app: &App, s: &Session) -> Value {
    let mut body = meeting_body(0, 2, &FIVE);
    body["starts_at"] = json!(room_admin::timefmt::utc_rfc3339(
        room_admin::db::unix_now() + 60
    ));
    let res = app.post("/api/v1/meetings", s, body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()
}

fn id_of(d: &Value) -> String {
    d["meeting"]["id"].as_str().unwrap().to_owned()
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

fn row<'a>(report: &'a Value, seat: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["seat"] == seat)
        .unwrap()
}

// --- the recorder: roll call, link summary, chat, room actions ----------------------------------

#[tokio::test]
async fn room_events_reach_the_report_the_detail_and_the_audit_log() {
    let app = App::new().await;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    let d = meeting_now(&app, &s).await;
    let id = id_of(&d);
    let auth = app.authorizer();
    let grant = auth.authorize(token_of(&link_of(&d, "060"))).unwrap();
    let recorder = AttendanceRecorder::start(app.db.clone()).await.unwrap();

    // 060 connects twice; each connection ends with its link summary.
    let answered_ms = room_admin::db::unix_now() as u64 * 1000 + 250;
    recorder.joined(&grant, "p1");
    recorder.roll_call_answer(&id, "060", answered_ms);
    recorder.left(&grant, "p1", 60.0);
    recorder.link_summary(
        &grant,
        "p1",
        &LinkSummary {
            samples: 30,
            rtt_ms_mean: Some(80.0),
            loss_mean: 0.01,
            loss_max: 0.04,
        },
    );
    recorder.joined(&grant, "p2");
    recorder.left(&grant, "p2", 20.0);
    recorder.link_summary(
        &grant,
        "p2",
        &LinkSummary {
            samples: 10,
            rtt_ms_mean: Some(120.0),
            loss_mean: 0.05,
            loss_max: 0.12,
        },
    );
    // Chat with markup and SQL (signaling refuses markup; the store does not rely on it).
    let nasty = "<script>alert(1)</script> '; DROP TABLE chat_messages; --";
    recorder.chat(&id, "060", true, nasty, answered_ms + 1000);
    recorder.chat(
        &id,
        "06",
        false,
        "Xin chào các điểm cầu",
        answered_ms + 2000,
    );
    // The chair's actions.
    recorder.control(&id, "06", "start_roll_call", None);
    recorder.control(&id, "06", "grant_floor", Some("060"));
    recorder.flush().await;
    assert_eq!(recorder.dropped(), 0);

    let report = app
        .get(&format!("/api/v1/meetings/{id}/attendance"), &s)
        .await
        .json();
    let r = row(&report, "060");
    assert_eq!(r["roll_call"], json!([answered_ms / 1000]), "{report}");
    assert_eq!(report["answered_roll_call"], 1);
    assert_eq!(row(&report, "061")["roll_call"], json!([]));
    assert_eq!(row(&report, "061")["link"], Value::Null);
    let link = &r["link"];
    assert_eq!(link["samples"], 40);
    assert_eq!(link["rtt_ms_mean"], 90.0); // (30 × 80 + 10 × 120) / 40
    assert!((link["loss_mean"].as_f64().unwrap() - 0.02).abs() < 1e-9);
    assert_eq!(link["loss_max"], 0.12);
    assert_eq!(link["quality"], "fair");

    let csv = app
        .get(&format!("/api/v1/meetings/{id}/attendance.csv"), &s)
        .await
        .text();
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with(",Trả lời điểm danh,Chất lượng đường truyền"),
        "{header}"
    );
    assert!(
        header.starts_with("\u{feff}Mã,Tên,Vai trò,Trạng thái,"),
        "{header}"
    );
    let line = csv.lines().find(|l| l.starts_with("060,")).unwrap();
    let answered_local = room_admin::timefmt::local_display_secs((answered_ms / 1000) as i64);
    assert!(line.contains(&answered_local), "{line}");
    assert!(
        line.ends_with("RTT 90 ms; mất gói TB 2.0%; tối đa 12.0% (trung bình)"),
        "{line}"
    );

    // The chat is with the meeting, oldest first, text as sent, with the sender's name.
    let detail = app.get(&format!("/api/v1/meetings/{id}"), &s).await.json();
    assert_eq!(detail["chat_total"], 2);
    let chat = detail["chat"].as_array().unwrap();
    assert_eq!(chat.len(), 2);
    assert_eq!(chat[0]["seat"], "060");
    assert_eq!(chat[0]["name"], "UBND huyện Pác Nặm");
    assert_eq!(chat[0]["text"], nasty);
    assert_eq!(chat[0]["to_chair"], true);
    assert_eq!(chat[0]["sent_ms"], answered_ms + 1000);
    assert_eq!(chat[1]["to_chair"], false);

    // The chair's actions are in the audit log: the point as the actor, no client address.
    let audit = app.get("/api/v1/audit", &s).await.json();
    let entries = audit.as_array().unwrap();
    let grant_entry = entries
        .iter()
        .find(|e| e["action"] == "room.grant_floor")
        .expect("grant_floor audited");
    assert_eq!(grant_entry["actor"], "06");
    assert_eq!(grant_entry["ip"], "-");
    assert_eq!(grant_entry["target"], id.as_str());
    assert_eq!(grant_entry["detail"], "point 060");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "room.start_roll_call" && e["detail"] == "")
    );
}

// --- the panel disconnects what it revokes --------------------------------------------------------

fn connect(app: &App, meeting: &str, seat: &str) {
    app.live.0.lock().unwrap().push((
        meeting.to_owned(),
        LiveSeat {
            participant: format!("p-{seat}"),
            seat: seat.to_owned(),
            name: seat.to_owned(),
            role: "point".into(),
        },
    ));
}

#[tokio::test]
async fn reissue_uninvite_cancel_and_end_disconnect_through_the_live_source() {
    let app = App::new().await;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    let d = meeting_now(&app, &s).await;
    let id = id_of(&d);
    for seat in ["06", "060", "061"] {
        connect(&app, &id, seat);
    }

    // Re-issue 061's link: 061 is disconnected with a message its staff understand.
    let res = app
        .post(
            &format!("/api/v1/meetings/{id}/seats/061/reissue"),
            &s,
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let actions = app.live.actions();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert!(
        actions[0].starts_with(&format!("kick {id} 061: ")),
        "{actions:?}"
    );
    assert!(actions[0].contains("cấp lại"), "{actions:?}");
    assert_eq!(res.json()["connected"], false);
    let audit = app.get("/api/v1/audit?limit=1", &s).await.json();
    assert_eq!(audit[0]["action"], "link.reissue");
    assert_eq!(audit[0]["detail"], "061 (disconnected)");

    // Uninvite 060 by an edit: 060 is disconnected; the others stay.
    let mut body = meeting_body(0, 2, &["058", "061"]);
    body["starts_at"] = json!(d["meeting"]["starts_at"]);
    body["ends_at"] = json!(d["meeting"]["ends_at"]);
    let res = app
        .call(
            "PUT",
            &format!("/api/v1/meetings/{id}"),
            Some(&s),
            Some(body),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let actions = app.live.actions();
    let kicked: Vec<&String> = actions[1..].iter().collect();
    assert_eq!(kicked.len(), 3, "060, 02191 and 02194 left: {actions:?}");
    assert!(
        kicked
            .iter()
            .any(|a| a.starts_with(&format!("kick {id} 060: ")) && a.contains("không còn"))
    );
    assert_eq!(
        app.state
            .live(&id)
            .iter()
            .map(|l| l.seat.as_str())
            .collect::<Vec<_>>(),
        ["06"]
    );

    // End it from the panel: everyone in it is told and disconnected.
    let res = app
        .post(&format!("/api/v1/meetings/{id}/end"), &s, json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let last = app.live.actions().pop().unwrap();
    assert!(
        last.starts_with(&format!("close {id}: ")) && last.contains("kết thúc"),
        "{last}"
    );
    assert!(app.state.live(&id).is_empty());

    // Cancel another: the same, with its own reason.
    let d2 = meeting_now(&app, &s).await;
    let id2 = id_of(&d2);
    connect(&app, &id2, "058");
    let res = app
        .post(&format!("/api/v1/meetings/{id2}/cancel"), &s, json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let last = app.live.actions().pop().unwrap();
    assert!(
        last.starts_with(&format!("close {id2}: ")) && last.contains("hủy"),
        "{last}"
    );

    // A refused action disconnects nobody.
    let before = app.live.actions().len();
    let res = app
        .post(&format!("/api/v1/meetings/{id2}/end"), &s, json!({}))
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(app.live.actions().len(), before);
}

// --- end to end: the real signaling layer and WebSocket clients -----------------------------------

// The server and the WebSocket helpers are shared with room-admin's lifecycle tests.
#[path = "../room-admin/tests/live/mod.rs"]
mod live;
use live::{closes, join, next_of, send, server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_sessions_roll_call_chat_then_reissue_and_end_disconnect_them() {
    let srv = server().await;
    let app = &srv.app;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    let d = meeting_now(app, &s).await;
    let id = id_of(&d);

    let (mut chair, j) = join(&srv.ws_url, &link_of(&d, "06")).await;
    assert_eq!(j["type"], "joined", "{j}");
    // The chair learns every invited point, connected or not, for its grid.
    let mut invited: Vec<&str> = j["invited"]
        .as_array()
        .expect("invited list for the chair")
        .iter()
        .filter_map(|i| i["point"].as_str())
        .collect();
    invited.sort_unstable();
    let mut expected = FIVE.to_vec();
    expected.sort_unstable();
    assert_eq!(invited, expected);
    let (mut p060, j) = join(&srv.ws_url, &link_of(&d, "060")).await;
    assert_eq!(j["type"], "joined", "{j}");
    assert!(
        j.get("invited").is_none(),
        "only the chair gets the invite list"
    );
    let (mut p061, j) = join(&srv.ws_url, &link_of(&d, "061")).await;
    assert_eq!(j["type"], "joined", "{j}");
    let live = app.get(&format!("/api/v1/meetings/{id}"), &s).await.json();
    assert_eq!(live["live"].as_array().unwrap().len(), 3, "{live}");

    // Roll call: the chair starts it, 060 answers; 060 writes to the chair.
    send(&mut chair, json!({"type": "start_roll_call", "v": 1})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    send(&mut p060, json!({"type": "answer_roll_call", "v": 1})).await;
    send(
        &mut p060,
        json!({"type": "chat", "v": 1, "to": "chair", "text": "Có mặt & sẵn sàng '; --"}),
    )
    .await;
    assert!(next_of(&mut chair, "chat").await.is_some());

    // Re-issue 061's link: its session gets a bye with the reason and is closed; the old link
    // no longer joins.
    let res = app
        .post(
            &format!("/api/v1/meetings/{id}/seats/061/reissue"),
            &s,
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let bye = next_of(&mut p061, "bye").await.expect("a bye for 061");
    assert!(bye["reason"].as_str().unwrap().contains("cấp lại"), "{bye}");
    assert!(closes(&mut p061).await, "061's socket stays open");
    let (_old, refused) = join(&srv.ws_url, &link_of(&d, "061")).await;
    assert_ne!(refused["type"], "joined", "{refused}");
    let new_link = res.json()["link"].as_str().unwrap().to_owned();
    let (mut p061b, j) = join(&srv.ws_url, &new_link).await;
    assert_eq!(j["type"], "joined", "{j}");

    // End from the panel: everyone is told and disconnected.
    let res = app
        .post(&format!("/api/v1/meetings/{id}/end"), &s, json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    for ws in [&mut chair, &mut p060, &mut p061b] {
        assert!(next_of(ws, "meeting_ended").await.is_some());
        let bye = next_of(ws, "bye").await.expect("a bye");
        assert!(
            bye["reason"].as_str().unwrap().contains("kết thúc"),
            "{bye}"
        );
    }
    for ws in [&mut chair, &mut p060, &mut p061b] {
        assert!(closes(ws).await);
    }

    // What the room did is stored: the roll-call answer, the chat, the chair's action.
    let mut report = Value::Null;
    for _ in 0..100 {
        srv.recorder.flush().await;
        report = app
            .get(&format!("/api/v1/meetings/{id}/attendance"), &s)
            .await
            .json();
        if row(&report, "060")["connected"] == false && row(&report, "061")["joins"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        row(&report, "060")["roll_call"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert_eq!(row(&report, "060")["status"], "present");
    assert_eq!(row(&report, "061")["joins"], 2, "{report}");
    assert_eq!(report["answered_roll_call"], 1);
    let detail = app.get(&format!("/api/v1/meetings/{id}"), &s).await.json();
    assert_eq!(detail["chat"][0]["text"], "Có mặt & sẵn sàng '; --");
    assert_eq!(detail["chat"][0]["to_chair"], true);
    let audit = app.get("/api/v1/audit", &s).await.json();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "room.start_roll_call" && e["actor"] == "06"),
        "{audit}"
    );
}

#[tokio::test]
async fn the_test_room_has_an_attendance_report_with_roll_call() {
    let app = App::new().await;
    let s = app.admin().await;
    let links =
        room_admin::test_room::links(&app.tokens, BASE, std::time::SystemTime::now()).unwrap();
    let grant = app
        .authorizer()
        .authorize(token_of(&links.points[0]))
        .unwrap();
    let recorder = AttendanceRecorder::start(app.db.clone()).await.unwrap();
    recorder.joined(&grant, "p1");
    recorder.roll_call_answer("test-room", &grant.point, 1_800_000_000_000);
    recorder.flush().await;

    let report = app
        .get("/api/v1/meetings/test-room/attendance", &s)
        .await
        .json();
    assert_eq!(report["rows"].as_array().unwrap().len(), 4, "{report}");
    let r = row(&report, "test-point-1");
    assert_eq!(r["status"], "present");
    assert_eq!(r["connected"], true);
    assert_eq!(r["roll_call"], json!([1_800_000_000]));
    // The test room never ends: a seat not seen is not joined yet, never absent.
    assert_eq!(row(&report, "test-chair")["status"], "not_joined");
    let csv = app
        .get("/api/v1/meetings/test-room/attendance.csv", &s)
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.text()
            .contains("test-point-1,Điểm cầu thử nghiệm 1,Điểm cầu,Có mặt")
    );
}
