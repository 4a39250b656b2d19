//! A linked meeting through the real `hoinghi serve` (the cascade, issue 13, downstream side):
//! the upstream is an in-process server whose chair sends a simulcast camera; downstream, the
//! bootstrap account links a meeting to the upstream relay link over `/api/v1`, and a commune
//! joining that meeting with its own link receives the upstream chair's camera (its ladder's
//! resolutions) and microphone, re-published by the server's relay, and its `room_state` says
//! so (`upstream: live`, then `lost` when the upstream program stops). Unlinking stops the
//! relay: it leaves the upstream seat.

mod common;
mod serve_harness;

use std::time::Duration;

use common::{eventually, small_point};
use loadtest::layers::Ladder;
use loadtest::point::{Point, PointConfig};
use serde_json::{Value, json};
use serve_harness::{Server, admin_session, post, request};
use signaling::protocol::{Role, UpstreamState};

const WAIT: Duration = Duration::from_secs(60);

fn relay_seated(up: &common::TestServer) -> bool {
    up.signaling
        .live("bench")
        .iter()
        .any(|p| p.role == Role::Relay)
}

/// The commune's received video streams: (layer by keyframe resolution, packets).
fn video_layers(p: &Point, ladder: &Ladder) -> Vec<(Option<usize>, u64)> {
    p.snapshot()
        .streams
        .values()
        .filter(|st| st.kind.as_deref() == Some("video"))
        .map(|st| (st.dimensions.and_then(|d| ladder.layer_of(d)), st.packets))
        .collect()
}

fn audio_packets(p: &Point) -> u64 {
    p.snapshot()
        .streams
        .values()
        .filter(|st| st.kind.as_deref() == Some("audio"))
        .map(|st| st.packets)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_linked_over_the_api_shows_the_upstream_chair_to_its_communes() {
    let ladder = Ladder::simulcast(&[60, 150, 300]).expect("valid ladder");
    let up = common::start(1).await;
    let national = Point::join(PointConfig {
        video_fps: 20,
        publish_layers: Some(ladder.clone()),
        receive_ladder: ladder.clone(),
        ..small_point(&up, "chair", true)
    })
    .await
    .expect("the upstream chair joins");

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-tls"]);
    let port = server.port;
    let session = admin_session(&server, "liên kết trung ương");
    for point in [
        json!({"code": "06", "name": "UBND tỉnh", "kind": "province_hall"}),
        json!({"code": "xa-1", "name": "UBND xã Một", "kind": "commune"}),
    ] {
        let created = post(port, "/api/v1/points", Some(&session), &point);
        assert_eq!(created.status, 201, "{}", created.body);
    }
    // Open now (its join window began), live in a minute.
    let starts = room_admin::db::unix_now() + 60;
    let meeting = json!({
        "title": "Hội nghị trực tuyến toàn quốc",
        "starts_at": room_admin::timefmt::utc_rfc3339(starts),
        "ends_at": room_admin::timefmt::utc_rfc3339(starts + 7_200),
        "chair_point": "06",
        "points": ["xa-1"],
    });
    let created = post(port, "/api/v1/meetings", Some(&session), &meeting);
    assert_eq!(created.status, 201, "{}", created.body);
    let detail: Value = serde_json::from_str(&created.body).unwrap();
    let id = detail["meeting"]["id"].as_str().unwrap().to_owned();
    let commune_link = detail["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["seat"] == "xa-1")
        .and_then(|s| s["link"].as_str())
        .expect("the commune's link")
        .to_owned();
    let commune_token = commune_link.split("t=").nth(1).unwrap().to_owned();

    let uri = format!("/api/v1/meetings/{id}/upstream");
    let link = format!("http://{}/join?t=relay-tinh", up.http);
    let linked = request(port, "PUT", &uri, Some(&session), &json!({"link": link}));
    assert_eq!(linked.status, 200, "{}", linked.body);
    assert!(
        eventually(WAIT, || relay_seated(&up)).await,
        "the relay never joined upstream"
    );

    let commune = Point::join(PointConfig {
        ws_url: format!("ws://127.0.0.1:{port}/ws"),
        token: commune_token,
        receive_ladder: ladder.clone(),
        ..small_point(&up, "unused", false)
    })
    .await
    .expect("the commune joins the linked meeting");
    let program = eventually(WAIT, || {
        let video = video_layers(&commune, &ladder);
        video
            .iter()
            .any(|(layer, packets)| layer.is_some() && *packets > 20)
            && audio_packets(&commune) > 20
    })
    .await;
    assert!(
        program,
        "the commune does not receive the upstream chair: {:?} audio {}; server log:\n{}",
        video_layers(&commune, &ladder),
        audio_packets(&commune),
        server.stderr.lock().unwrap()
    );
    let state = request(port, "GET", &uri, Some(&session), &Value::Null);
    assert_eq!(state.status, 200, "{}", state.body);
    let state: Value = serde_json::from_str(&state.body).unwrap();
    assert_eq!(state["relay"], "relaying");
    assert!(
        !state.to_string().contains("relay-tinh"),
        "the token is shown: {state}"
    );

    let live = eventually(WAIT, || {
        commune.snapshot().upstream == Some(UpstreamState::Live)
    })
    .await;
    assert!(
        live,
        "the commune's room_state does not say the program is the upstream's"
    );

    // The upstream program stops: the pages are told, and the API says so.
    national.leave();
    let lost = eventually(WAIT, || {
        commune.snapshot().upstream == Some(UpstreamState::Lost)
    })
    .await;
    assert!(lost, "the commune is not told the upstream is lost");
    let state = request(port, "GET", &uri, Some(&session), &Value::Null);
    let state: Value = serde_json::from_str(&state.body).unwrap();
    assert_eq!(state["relay"], "lost");

    let unlinked = request(port, "DELETE", &uri, Some(&session), &Value::Null);
    assert_eq!(unlinked.status, 204, "{}", unlinked.body);
    let left = eventually(WAIT, || !relay_seated(&up)).await;
    assert!(
        left,
        "the relay of an unlinked meeting stays in the upstream meeting"
    );
    let log = server.stderr.lock().unwrap().clone();
    assert!(
        !log.contains("relay-tinh"),
        "the token is in the server's log"
    );
    assert!(server.terminate().success());
}
