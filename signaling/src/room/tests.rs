//! The room's roster and controls together: joins, seats, caps and the floor.

use tokio::sync::mpsc;

use super::*;
use crate::auth::Grant;
use crate::controls::{Action, Actor, ControlError};
use crate::protocol::Role;

fn grant(point: &str, role: Role) -> Grant {
    Grant {
        meeting_id: "m".into(),
        meeting_title: "M".into(),
        point: point.into(),
        name: format!("Điểm {point}"),
        role,
        capacity: 0,
    }
}

fn p(n: u64) -> ParticipantId {
    ParticipantId(n)
}

#[test]
fn a_relay_is_present_for_the_floor_and_its_speech_opens_only_with_the_floor() {
    let mut room = Room::new("m".into(), "M".into(), 0);
    let (tx1, _rx1) = mpsc::channel(8);
    let (tx2, _rx2) = mpsc::channel(8);
    room.join(p(1), &grant("06", Role::Chair), tx1).unwrap();
    room.join(p(2), &grant("relay-x", Role::Relay), tx2)
        .unwrap();
    assert_eq!(room.present_points(), ["relay-x".to_owned()].into());
    let chair = Actor {
        point: "06",
        role: Role::Chair,
    };
    let relay = Actor {
        point: "relay-x",
        role: Role::Relay,
    };
    room.apply_control(relay, Action::RaiseHand { text: None }, 0)
        .unwrap();
    let change = room
        .apply_control(
            chair,
            Action::Grant {
                point: "relay-x".into(),
            },
            10,
        )
        .unwrap();
    assert!(change.routing);
    assert!(room.controls.holds_floor("relay-x"));
    assert!(room.controls.hands.is_empty());
    // Only the chair grants: a relay cannot take the floor for itself.
    assert!(matches!(
        room.apply_control(
            relay,
            Action::Grant {
                point: "relay-x".into()
            },
            20
        ),
        Err(ControlError::Forbidden(_))
    ));
}

#[test]
fn a_relay_seat_holds_one_connection_and_counts_against_the_cap() {
    let mut room = Room::new("m".into(), "M".into(), 2);
    let (tx1, _rx1) = mpsc::channel(8);
    let (tx_old, mut rx_old) = mpsc::channel(8);
    let (tx_new, _rx_new) = mpsc::channel(8);
    let (tx3, _rx3) = mpsc::channel(8);
    room.join(p(1), &grant("06", Role::Chair), tx1).unwrap();
    room.join(p(2), &grant("relay-x", Role::Relay), tx_old)
        .unwrap();
    // A second connection of the same relay seat replaces the first.
    let j = room
        .join(p(3), &grant("relay-x", Role::Relay), tx_new)
        .unwrap();
    assert_eq!(j.replaced, Some(p(2)));
    assert!(matches!(
        rx_old.try_recv().unwrap(),
        ServerMessage::Bye { .. }
    ));
    // It holds a place like any seat: the room of two is full.
    assert_eq!(
        room.join(p(4), &grant("a", Role::Point), tx3).err(),
        Some(JoinRefused::Full { capacity: 2 })
    );
}

#[test]
fn join_broadcasts_and_cap_is_enforced() {
    let mut room = Room::new("m".into(), "M".into(), 2);
    let (tx1, mut rx1) = mpsc::channel(8);
    let (tx2, _rx2) = mpsc::channel(8);
    let (tx3, _rx3) = mpsc::channel(8);
    let j = room.join(p(1), &grant("chair", Role::Chair), tx1).unwrap();
    assert_eq!(j.roster.len(), 1);
    room.join(p(2), &grant("a", Role::Point), tx2).unwrap();
    assert!(matches!(
        rx1.try_recv().unwrap(),
        ServerMessage::ParticipantJoined { participant, .. } if participant.point == "a"
    ));
    assert_eq!(
        room.join(p(3), &grant("b", Role::Point), tx3).err(),
        Some(JoinRefused::Full { capacity: 2 })
    );
    assert_eq!(room.len(), 2);
    assert!(room.leave(p(2)));
    assert!(!room.leave(p(2)));
    assert!(
        matches!(rx1.try_recv().unwrap(), ServerMessage::ParticipantLeft { participant, .. } if participant == "p2")
    );
}

#[test]
fn a_reconnecting_point_replaces_its_old_seat() {
    let mut room = Room::new("m".into(), "M".into(), 2);
    let (tx1, _rx1) = mpsc::channel(8);
    let (tx_old, mut rx_old) = mpsc::channel(8);
    let (tx_new, _rx_new) = mpsc::channel(8);
    room.join(p(1), &grant("chair", Role::Chair), tx1).unwrap();
    room.join(p(2), &grant("a", Role::Point), tx_old).unwrap();
    // The room is full, but the same point coming back takes its own seat.
    let j = room.join(p(3), &grant("a", Role::Point), tx_new).unwrap();
    assert_eq!(j.replaced, Some(p(2)));
    assert_eq!(room.len(), 2);
    assert!(matches!(
        rx_old.try_recv().unwrap(),
        ServerMessage::Bye { .. }
    ));
}
