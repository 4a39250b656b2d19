//! A meeting linked to an upstream relay seat (the cascade, issue 13, downstream side) through
//! the admin REST API, on a temporary SQLite file (or PostgreSQL with
//! `HOINGHI_TEST_DATABASE=postgres`): the link is checked before it is stored, stored whole,
//! and never shown or audited whole; an ended meeting cannot be linked; unlinking removes it.

mod admin;

use admin::*;
use axum::http::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoicmVsYXkifQ.c2lnbmF0dXJl";

fn link() -> String {
    format!("https://hop-truc-tuyen.gov.vn:8443/join?t={TOKEN}")
}

async fn meeting(app: &App, s: &Session) -> String {
    app.import_bac_kan(s).await;
    let d = app
        .post("/api/v1/meetings", s, meeting_body(2, 2, &["058", "060"]))
        .await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.text());
    d.json()["meeting"]["id"].as_str().unwrap().to_owned()
}

async fn put(app: &App, s: &Session, id: &str, body: Value) -> Answer {
    app.call(
        "PUT",
        &format!("/api/v1/meetings/{id}/upstream"),
        Some(s),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_meeting_is_linked_and_the_link_is_shown_and_audited_cut_short() {
    let app = App::new().await;
    let s = app.admin().await;
    let id = meeting(&app, &s).await;
    let res = put(&app, &s, &id, json!({"link": link()})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let v = res.json();
    assert_eq!(
        v["link"],
        "https://hop-truc-tuyen.gov.vn:8443/join?t=eyJhbG…"
    );
    assert_eq!(v["name"], "Điểm cầu Trung ương");
    assert_eq!(v["relay"], "stopped");
    assert_eq!(v["updated_by"], "admin");
    let got = app
        .get(&format!("/api/v1/meetings/{id}/upstream"), &s)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json()["link"], v["link"]);
    // Stored whole, for the relay to dial.
    let stored = room_admin::upstream::get(&app.db, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.link, link());
    // Nowhere in an answer or the audit log whole.
    let log = app.get("/api/v1/audit", &s).await;
    assert!(log.text().contains("upstream.link"), "{}", log.text());
    for text in [res.text(), got.text(), log.text()] {
        assert!(!text.contains(TOKEN), "the token leaked: {text}");
    }
    // Relinked with a name: replaced.
    let res = put(
        &app,
        &s,
        &id,
        json!({"link": "http://10.0.0.5:8080/join?t=abc", "name": "Chính phủ"}),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["name"], "Chính phủ");
    assert_eq!(res.json()["link"], "http://10.0.0.5:8080/join?t=abc…");
    // An https upstream with its own certificate: pinned by the fingerprint it prints.
    let printed = (0..32u8)
        .map(|i| format!("{i:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let res = put(
        &app,
        &s,
        &id,
        json!({"link": link(), "fingerprint": printed}),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let shown = res.json()["fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(shown, printed.to_uppercase());
    let stored = room_admin::upstream::get(&app.db, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.tls_pin().map(|p| p[31]), Some(31));
}

#[tokio::test]
async fn bad_links_and_names_are_refused_field_by_field() {
    let app = App::new().await;
    let s = app.admin().await;
    let id = meeting(&app, &s).await;
    let long = format!("https://h/join?t={}", "a".repeat(5_000));
    for (body, field) in [
        (json!({"link": "ftp://h/join?t=a"}), "link"),
        (json!({"link": "https://user@h/join?t=a"}), "link"),
        (json!({"link": "https://h/admin"}), "link"),
        (json!({"link": long}), "link"),
        (json!({"link": link(), "name": ""}), "name"),
        (json!({"link": link(), "name": "x".repeat(101)}), "name"),
        (json!({"link": link(), "name": "a\u{7}b"}), "name"),
        (
            json!({"link": link(), "fingerprint": "AB:CD"}),
            "fingerprint",
        ),
        (
            json!({"link": link(), "fingerprint": "zz".repeat(32)}),
            "fingerprint",
        ),
        (
            json!({"link": "http://h/join?t=a", "fingerprint": "ab".repeat(32)}),
            "fingerprint",
        ),
    ] {
        let res = put(&app, &s, &id, body.clone()).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            res.json()["error"]["fields"].get(field).is_some(),
            "{body}: {}",
            res.text()
        );
    }
    let res = put(&app, &s, &id, json!({"link": link(), "extra": 1})).await;
    assert_eq!(
        res.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        res.text()
    );
    let res = put(&app, &s, "no-such-meeting", json!({"link": link()})).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert!(
        room_admin::upstream::get(&app.db, &id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn unlinking_removes_the_link_and_an_ended_meeting_cannot_be_linked() {
    let app = App::new().await;
    let s = app.admin().await;
    let id = meeting(&app, &s).await;
    assert_eq!(
        put(&app, &s, &id, json!({"link": link()})).await.status,
        StatusCode::OK
    );
    let uri = format!("/api/v1/meetings/{id}/upstream");
    let del = app.call("DELETE", &uri, Some(&s), None).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.text());
    assert_eq!(app.get(&uri, &s).await.status, StatusCode::NOT_FOUND);
    let again = app.call("DELETE", &uri, Some(&s), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let cancel = app
        .call(
            "POST",
            &format!("/api/v1/meetings/{id}/cancel"),
            Some(&s),
            None,
        )
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.text());
    let res = put(&app, &s, &id, json!({"link": link()})).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
}

#[tokio::test]
async fn a_relay_seat_of_this_server_is_refused_as_an_upstream_link() {
    let app = App::new().await;
    let s = app.admin().await;
    app.import_bac_kan(&s).await;
    let mut body = meeting_body(2, 2, &["058", "060"]);
    body["relays"] = json!(["Tỉnh Cao Bằng"]);
    let d = app.post("/api/v1/meetings", &s, body).await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.text());
    let own = d.json()["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|seat| seat["role"] == "relay")
        .expect("a relay seat")["link"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app
        .post("/api/v1/meetings", &s, meeting_body(2, 2, &["058", "060"]))
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text());
    let id = other.json()["meeting"]["id"].as_str().unwrap().to_owned();
    let res = put(&app, &s, &id, json!({ "link": own })).await;
    assert_eq!(
        res.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        res.text()
    );
    assert!(res.text().contains("would loop"), "{}", res.text());
    assert!(
        room_admin::upstream::get(&app.db, &id)
            .await
            .unwrap()
            .is_none(),
        "nothing stored"
    );
}
