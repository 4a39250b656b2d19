//! Routing in a linked meeting (the cascade, downstream side): the upstream seat is the program.

use std::collections::BTreeSet;

use sfu::{ParticipantId, Subscription};

use super::routing;
use crate::controls::{Controls, Floor};
use crate::protocol::Role;

/// (publisher, audio, camera, screen, thumbnail) of each subscription of `who`.
fn received(
    r: &[(ParticipantId, Vec<Subscription>)],
    who: u64,
) -> Vec<(u64, bool, bool, bool, bool)> {
    r.iter()
        .find(|(id, _)| id.0 == who)
        .map(|(_, subs)| {
            subs.iter()
                .map(|s| (s.publisher.0, s.audio, s.camera, s.screen, s.thumbnail))
                .collect()
        })
        .unwrap_or_default()
}

const LINKED: [(ParticipantId, Role, &str); 5] = [
    (ParticipantId(1), Role::Chair, "tinh"),
    (ParticipantId(2), Role::Point, "xa-a"),
    (ParticipantId(3), Role::Point, "xa-b"),
    (ParticipantId(4), Role::Observer, "o"),
    (ParticipantId(5), Role::Upstream, "trung-uong"),
];

#[test]
fn the_upstream_seat_replaces_the_local_chair_for_points_and_observers() {
    let r = routing(&LINKED, &Controls::default(), None);
    let whole = (5, true, true, true, false);
    assert_eq!(received(&r, 2), vec![whole]);
    assert_eq!(received(&r, 3), vec![whole]);
    assert_eq!(received(&r, 4), vec![whole]);
}

#[test]
fn the_local_chair_receives_the_upstream_program_and_keeps_its_grid() {
    let r = routing(&LINKED, &Controls::default(), None);
    assert_eq!(
        received(&r, 1),
        vec![
            (2, false, true, false, true),
            (3, false, true, false, true),
            (5, true, true, true, false),
        ]
    );
}

#[test]
fn the_upstream_seat_receives_the_local_chair_and_its_share_to_send_up_and_nothing_else() {
    let floor = Controls {
        floor: Some(Floor {
            point: "xa-a".into(),
            since: 0,
        }),
        ..Default::default()
    };
    for c in [floor, Controls::default()] {
        let r = routing(&LINKED, &c, None);
        assert_eq!(received(&r, 5), vec![(1, true, true, true, false)]);
        let every_layer: Vec<bool> = r
            .iter()
            .find(|(id, _)| id.0 == 5)
            .map(|(_, s)| s.iter().map(|s| s.every_layer).collect())
            .unwrap_or_default();
        assert_eq!(every_layer, vec![true]);
    }
}

#[test]
fn a_local_floor_holder_still_reaches_everyone_beside_the_upstream_program() {
    let floor = Controls {
        floor: Some(Floor {
            point: "xa-a".into(),
            since: 0,
        }),
        ..Default::default()
    };
    let r = routing(&LINKED, &floor, None);
    assert_eq!(
        received(&r, 3),
        vec![(2, true, true, false, false), (5, true, true, true, false)]
    );
}

#[test]
fn without_the_upstream_seat_the_local_chair_is_the_program_again() {
    let r = routing(&LINKED[..4], &Controls::default(), None);
    assert_eq!(received(&r, 2), vec![(1, true, true, true, false)]);
    let viewport: BTreeSet<ParticipantId> = BTreeSet::new();
    let r = routing(&LINKED[..4], &Controls::default(), Some(&viewport));
    assert_eq!(received(&r, 4), vec![(1, true, true, true, false)]);
}

#[test]
fn a_point_the_chair_sends_up_replaces_the_chairs_camera_and_microphone_beside_its_share() {
    let sent = Controls {
        sent_up: Some("xa-a".into()),
        ..Default::default()
    };
    let r = routing(&LINKED, &sent, None);
    assert_eq!(
        received(&r, 5),
        vec![
            (2, true, true, false, false),
            (1, false, false, true, false)
        ]
    );
    let every_layer = r
        .iter()
        .find(|(id, _)| id.0 == 5)
        .is_some_and(|(_, s)| s.iter().all(|s| s.every_layer));
    assert!(every_layer, "the upstream's points need every layer");
    // Nothing changes for the meeting itself: the point's microphone stays closed to others.
    assert_eq!(received(&r, 3), vec![(5, true, true, true, false)]);
}

#[test]
fn a_point_sent_up_that_is_not_here_leaves_the_chair_going_up() {
    let sent = Controls {
        sent_up: Some("xa-gone".into()),
        ..Default::default()
    };
    let r = routing(&LINKED, &sent, None);
    assert_eq!(received(&r, 5), vec![(1, true, true, true, false)]);
}

#[test]
fn the_upstream_floor_shows_and_a_hand_gone_upstream_lowers_hand_up() {
    use crate::controls::Hand;
    use crate::protocol::ServerMessage;
    let mut room = super::Room::new("m".into(), "t".into(), 10);
    room.controls.hand_up = Some(Hand {
        point: "xa-a".into(),
        text: None,
        at: 0,
    });
    let state = |room: &super::Room| match room.state_message() {
        ServerMessage::RoomState {
            hand_up,
            upstream_floor,
            ..
        } => (hand_up.map(|h| h.point), upstream_floor),
        _ => unreachable!(),
    };
    assert_eq!(state(&room), (Some("xa-a".into()), false));
    assert!(!room.upstream_view(false, false), "nothing changed");
    assert!(room.upstream_view(true, true), "granted upstream");
    assert_eq!(state(&room), (None, true));
    assert!(!room.upstream_view(true, true), "no hand left to lower");
    assert!(room.upstream_view(false, false), "taken back upstream");
    assert_eq!(state(&room), (None, false));
}
