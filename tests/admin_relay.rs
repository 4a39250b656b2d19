//! Relay seats (the cascade, issue 13) through the admin REST API, on a temporary SQLite file
//! (or PostgreSQL with `HOINGHI_TEST_DATABASE=postgres`): issued with a meeting like observers'
//! seats, their link grants the role `relay` for that meeting only, and re-issuing, editing out
//! or cancelling revokes it like any seat's link.

mod admin;

use std::time::{Duration, SystemTime};

use admin::*;
use axum::http::StatusCode;
use room_admin::authorizer::Refusal;
use serde_json::{Value, json};
use signaling::auth::Authorizer;
use signaling::protocol::Role;

const PROVINCE: &str = "Tỉnh Cao Bằng";

async fn app_with_points() -> (App, Session) {
    let app = App::new().await;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    (app, s)
}

/// A meeting body with points 058 and 060 and the relay seats `relays`.
fn body_with(relays: &[&str]) -> Value {
    let mut body = meeting_body(2, 2, &["058", "060"]);
    body["relays"] = json!(relays);
    body
}

/// A moment inside the meeting's join window.
fn during(d: &Value) -> SystemTime {
    let starts = room_admin::timefmt::parse(d["meeting"]["starts_at"].as_str().unwrap()).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_secs(starts as u64 + 60)
}

/// The seats of a meeting detail with the role `relay`.
fn relay_seats(d: &Value) -> Vec<Value> {
    d["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["role"] == "relay")
        .cloned()
        .collect()
}

fn link(seat: &Value) -> String {
    seat["link"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_relay_seat_is_issued_with_its_meeting_and_its_link_grants_the_relay_role() {
    let (app, s) = app_with_points().await;
    let mut body = body_with(&[PROVINCE, "Tỉnh Lạng Sơn", PROVINCE]);
    body["observers"] = json!(["Chủ tịch UBND tỉnh"]);
    let res = app.post("/api/v1/meetings", &s, body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let d = res.json();
    assert_eq!(
        d["meeting"]["seat_count"],
        1 + 2 + 2 + 1,
        "a repeated name is one seat"
    );
    let roles: Vec<&str> = d["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["chair", "point", "point", "relay", "relay", "observer"],
        "relays listed after the points, before the observers"
    );
    let relays = relay_seats(&d);
    let cao_bang = relays.iter().find(|r| r["name"] == PROVINCE).unwrap();
    assert!(cao_bang["seat"].as_str().unwrap().starts_with("relay-"));
    assert!(cao_bang["point_code"].is_null());

    let auth = app.authorizer();
    let grant = auth
        .authorize_at(token_of(&link(cao_bang)), during(&d))
        .unwrap();
    assert_eq!(grant.role, Role::Relay);
    assert_eq!(grant.name, PROVINCE);
    assert_eq!(grant.point, cao_bang["seat"].as_str().unwrap());
    assert_eq!(grant.meeting_id, d["meeting"]["id"].as_str().unwrap());
    assert_eq!(
        grant.capacity, 500,
        "bounded by the meeting's cap like any seat"
    );
    // The chair's grid lists the relay seats with the points, connected or not.
    let invited = auth.invited(&grant.meeting_id);
    assert!(
        invited
            .iter()
            .any(|p| p.point == grant.point && p.name == PROVINCE)
    );
    assert_eq!(invited.len(), 2 + 2);
}

#[tokio::test]
async fn a_relay_link_is_bound_to_its_role_and_meeting() {
    let (app, s) = app_with_points().await;
    let a = app
        .post("/api/v1/meetings", &s, body_with(&[PROVINCE]))
        .await
        .json();
    let b = app
        .post("/api/v1/meetings", &s, body_with(&[PROVINCE]))
        .await
        .json();
    let auth = app.authorizer();
    let t = during(&a);
    let relay = link(&relay_seats(&a)[0]);

    // A's relay token re-signed for meeting B (same name, B's seat has its own id and token id).
    let mut claims = app.tokens.verify(token_of(&relay), t).unwrap();
    claims.meeting = b["meeting"]["id"].as_str().unwrap().to_owned();
    let forged = app.tokens.sign(&claims).unwrap();
    assert_eq!(
        auth.authorize_at(&forged, t).unwrap_err(),
        Refusal::NotInvited
    );
    // The relay seat claiming the chair's role, and a point's seat claiming the relay's.
    let mut claims = app.tokens.verify(token_of(&relay), t).unwrap();
    claims.role = Role::Chair;
    let forged = app.tokens.sign(&claims).unwrap();
    assert_eq!(
        auth.authorize_at(&forged, t).unwrap_err(),
        Refusal::NotInvited
    );
    let point = a["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["seat"] == "058")
        .unwrap();
    let mut claims = app.tokens.verify(token_of(&link(point)), t).unwrap();
    claims.role = Role::Relay;
    let forged = app.tokens.sign(&claims).unwrap();
    assert_eq!(
        auth.authorize_at(&forged, t).unwrap_err(),
        Refusal::NotInvited
    );
}

#[tokio::test]
async fn a_relay_link_is_revoked_by_reissue_and_by_an_edit_that_leaves_it_out() {
    let (app, s) = app_with_points().await;
    let d = app
        .post("/api/v1/meetings", &s, body_with(&[PROVINCE]))
        .await
        .json();
    let id = d["meeting"]["id"].as_str().unwrap().to_owned();
    let auth = app.authorizer();
    let t = during(&d);
    let seat = relay_seats(&d)[0]["seat"].as_str().unwrap().to_owned();
    let first = link(&relay_seats(&d)[0]);

    // An edit that keeps the relay keeps its link.
    let res = app
        .call(
            "PUT",
            &format!("/api/v1/meetings/{id}"),
            Some(&s),
            Some(body_with(&[PROVINCE])),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(link(&relay_seats(&res.json())[0]), first);
    assert!(auth.authorize_at(token_of(&first), t).is_ok());

    // Re-issued: the old link is refused as replaced, and whoever held it is disconnected.
    let res = app
        .call(
            "POST",
            &format!("/api/v1/meetings/{id}/seats/{seat}/reissue"),
            Some(&s),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let second = link(&res.json());
    assert_ne!(second, first);
    assert_eq!(
        auth.authorize_at(token_of(&first), t).unwrap_err(),
        Refusal::Revoked
    );
    assert_eq!(
        auth.authorize_at(token_of(&second), t).unwrap().role,
        Role::Relay
    );
    assert!(
        app.live
            .actions()
            .iter()
            .any(|a| a.starts_with(&format!("kick {id} {seat}"))),
        "{:?}",
        app.live.actions()
    );

    // Edited out: the link stops working and the seat is disconnected.
    let res = app
        .call(
            "PUT",
            &format!("/api/v1/meetings/{id}"),
            Some(&s),
            Some(body_with(&[])),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(relay_seats(&res.json()).is_empty());
    assert_eq!(
        auth.authorize_at(token_of(&second), t).unwrap_err(),
        Refusal::NotInvited
    );
    let kicks = app
        .live
        .actions()
        .iter()
        .filter(|a| a.starts_with(&format!("kick {id} {seat}")))
        .count();
    assert_eq!(kicks, 2, "{:?}", app.live.actions());
}

#[tokio::test]
async fn a_copied_meeting_gets_its_relay_seats_with_new_links() {
    let (app, s) = app_with_points().await;
    let d = app
        .post("/api/v1/meetings", &s, body_with(&[PROVINCE]))
        .await
        .json();
    let id = d["meeting"]["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/api/v1/meetings/{id}/copy"),
            &s,
            json!({"starts_at": local_in(30), "ends_at": local_in(31)}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let copy = relay_seats(&res.json());
    assert_eq!(copy.len(), 1);
    assert_eq!(copy[0]["name"], PROVINCE);
    assert_ne!(link(&copy[0]), link(&relay_seats(&d)[0]));
}

#[tokio::test]
async fn bad_relay_input_is_refused_field_by_field() {
    let (app, s) = app_with_points().await;
    let too_many: Vec<String> = (0..=room_admin::meetings::MAX_RELAYS)
        .map(|i| format!("Tỉnh {i}"))
        .collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!([""]), "relays[0]"),
        (json!(["Tỉnh A", "   "]), "relays[1]"),
        (json!(["x".repeat(101)]), "relays[0]"),
        (json!(["Tỉnh\u{7}A"]), "relays[0]"),
        (json!(too_many), "relays"),
    ];
    for (relays, field) in cases {
        let mut body = meeting_body(2, 2, &["058"]);
        body["relays"] = relays.clone();
        let res = app.post("/api/v1/meetings", &s, body).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{relays}: {}",
            res.text()
        );
        assert!(
            res.json()["error"]["fields"][field].is_string(),
            "{relays}: {}",
            res.text()
        );
    }
    for relays in [json!("Tỉnh A"), json!([5]), json!({"name": "Tỉnh A"})] {
        let mut body = meeting_body(2, 2, &["058"]);
        body["relays"] = relays.clone();
        let res = app.post("/api/v1/meetings", &s, body).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{relays}");
    }
    assert_eq!(app.count("meetings").await, 0);
}
