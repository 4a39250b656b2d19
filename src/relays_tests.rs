//! The relays of linked meetings, started and stopped with their meetings and links, on a
//! temporary SQLite database and a real in-process signaling service. The upstream is a closed
//! port: these tests are about which relays run and which seats are granted, not media
//! (`tests/relay_downstream.rs` carries media through a relay).

use std::sync::Arc;

use room_admin::meetings::{self, MeetingInput};
use room_admin::upstream::{self, RelayStatus, UpstreamInput};
use signaling::auth::{AuthError, Authorizer, Grant};
use signaling::protocol::Role;

use super::*;

struct NoTokens;

impl Authorizer for NoTokens {
    fn authorize(&self, _token: &str) -> Result<Grant, AuthError> {
        Err(AuthError::Invalid("no".into()))
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    db: Db,
    relays: Relays,
    auth: WithUpstreamSeats,
    meeting: String,
    starts_at: i64,
}

/// A meeting from `now + 10 min` for 2 h, its 30-minute join window open, linked to a
/// closed local port.
async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_in(dir.path()).await.unwrap();
    let registry = prometheus::Registry::new();
    let sfu = sfu::Sfu::start(
        sfu::SfuConfig {
            public_ip: [127, 0, 0, 1].into(),
            bind_ip: [127, 0, 0, 1].into(),
            base_port: 0,
            workers: 1,
            ice_tcp_port: None,
        },
        &registry,
    )
    .unwrap();
    let seats = Arc::new(UpstreamSeats::default());
    let auth = WithUpstreamSeats {
        seats: seats.clone(),
        inner: Arc::new(NoTokens),
        directory: None,
    };
    let signaling = Signaling::new(sfu, Arc::new(NoTokens), &registry);
    let now = room_admin::db::unix_now();
    let starts_at = now + 600;
    let point: room_admin::points::PointInput = serde_json::from_value(serde_json::json!({
        "code": "06", "name": "UBND tỉnh", "kind": "province_hall",
    }))
    .unwrap();
    room_admin::points::create(&db, &point, now).await.unwrap();
    let input: MeetingInput = serde_json::from_value(serde_json::json!({
        "title": "Hội nghị trực tuyến",
        "chair_point": "06",
        "starts_at": room_admin::timefmt::utc_rfc3339(starts_at),
        "ends_at": room_admin::timefmt::utc_rfc3339(starts_at + 7_200),
        "open_minutes": 30,
    }))
    .unwrap();
    let m = meetings::create(&db, &input, "admin", now).await.unwrap();
    let link = UpstreamInput {
        link: "http://127.0.0.1:9/join?t=relay-token".into(),
        name: None,
        fingerprint: None,
    };
    upstream::set(&db, &m.id, &link, "admin", now)
        .await
        .unwrap();
    let relays = Relays::new(db.clone(), signaling, seats, [127, 0, 0, 1].into());
    Setup {
        _dir: dir,
        db,
        relays,
        auth,
        meeting: m.id,
        starts_at,
    }
}

/// The token of the one granted upstream seat, if any.
fn granted(s: &Setup) -> Vec<(String, Grant)> {
    s.auth
        .seats
        .lock()
        .iter()
        .map(|(t, g)| (t.clone(), g.clone()))
        .collect()
}

#[tokio::test]
async fn a_linked_meeting_runs_its_relay_only_while_open_or_live() {
    let s = setup().await;
    s.relays.sync(s.starts_at - 3_600).await.unwrap();
    assert_eq!(s.relays.relay_state(&s.meeting), None, "before its window");
    assert!(granted(&s).is_empty());

    s.relays.sync(s.starts_at - 60).await.unwrap();
    assert_eq!(s.relays.relay_state(&s.meeting), Some("connecting"));
    let seats = granted(&s);
    assert_eq!(seats.len(), 2, "the program's seat and the floor holder's");
    let floor = seats.iter().find(|(_, g)| g.point == UPSTREAM_FLOOR_POINT);
    assert_eq!(
        floor.map(|(_, g)| (g.role, g.name.as_str())),
        Some((Role::Upstream, "Điểm cầu Trung ương (phát biểu)"))
    );
    let (token, grant) = seats
        .iter()
        .find(|(_, g)| g.point == UPSTREAM_POINT)
        .expect("the program's seat");
    assert_eq!(token.len(), 64, "a 256-bit token");
    assert_eq!(grant.role, Role::Upstream);
    assert_eq!(grant.meeting_id, s.meeting);
    assert_eq!(grant.point, UPSTREAM_POINT);
    assert_eq!(grant.name, upstream::DEFAULT_NAME);
    assert_eq!(s.auth.authorize(token).map(|g| g.role), Ok(Role::Upstream));

    // Still wanted: the same relay keeps running.
    s.relays.sync(s.starts_at + 60).await.unwrap();
    assert!(granted(&s).iter().any(|(t, _)| t == token));

    s.relays.sync(s.starts_at + 7_200).await.unwrap();
    assert_eq!(s.relays.relay_state(&s.meeting), None, "after its end");
    assert!(s.auth.authorize(token).is_err(), "its seat is withdrawn");
}

#[tokio::test]
async fn a_changed_link_restarts_the_relay_and_unlinking_stops_it() {
    let s = setup().await;
    let now = s.starts_at - 60;
    s.relays.sync(now).await.unwrap();
    let first = granted(&s)[0].0.clone();
    let other = UpstreamInput {
        link: "https://127.0.0.1:10/join?t=another".into(),
        name: Some("Chính phủ".into()),
        fingerprint: Some("ab".repeat(32)),
    };
    upstream::set(&s.db, &s.meeting, &other, "admin", now)
        .await
        .unwrap();
    s.relays.sync(now).await.unwrap();
    let seats = granted(&s);
    assert_eq!(seats.len(), 2);
    assert!(
        seats.iter().all(|(t, _)| *t != first),
        "a new relay, new seat tokens"
    );
    assert!(seats.iter().any(|(_, g)| g.name == "Chính phủ"));
    assert!(s.auth.authorize(&first).is_err());

    upstream::remove(&s.db, &s.meeting).await.unwrap();
    s.relays.sync(now).await.unwrap();
    assert_eq!(s.relays.relay_state(&s.meeting), None);
    assert!(granted(&s).is_empty());
}

#[tokio::test]
async fn the_chair_ending_the_meeting_withdraws_its_upstream_seat_at_once() {
    let s = setup().await;
    s.relays.sync(s.starts_at - 60).await.unwrap();
    let token = granted(&s)[0].0.clone();
    s.auth.end_meeting(&s.meeting);
    assert!(s.auth.authorize(&token).is_err());
}

#[tokio::test]
async fn an_upstream_seat_is_refused_once_its_meeting_is_closed_in_the_directory() {
    let mut s = setup().await;
    s.relays.sync(s.starts_at - 60).await.unwrap();
    let token = granted(&s)[0].0.clone();
    let directory = Arc::new(Directory::load(&s.db).await.unwrap());
    s.auth.directory = Some(directory.clone());
    assert!(s.auth.authorize(&token).is_ok(), "open: granted");
    // Cancelled from the panel: the directory knows at once, the relays at their next check.
    meetings::cancel(&s.db, &s.meeting, room_admin::db::unix_now())
        .await
        .unwrap();
    directory.refresh(&s.db, &s.meeting).await.unwrap();
    assert!(s.auth.authorize(&token).is_err(), "closed: refused");
}

#[test]
fn relays_bind_the_media_address_or_the_announced_one() {
    let public: IpAddr = [203, 0, 113, 7].into();
    assert_eq!(bind_ip([0, 0, 0, 0].into(), public), public);
    let lo: IpAddr = [127, 0, 0, 1].into();
    assert_eq!(bind_ip(lo, public), lo);
}
