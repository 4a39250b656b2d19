//! Who receives whom: the town-hall routing policy, a pure function of the roster and the
//! controls.

use std::collections::BTreeSet;

use sfu::{ParticipantId, Subscription};

use super::Room;
use crate::controls::Controls;
use crate::protocol::Role;

/// Thumbnails the chair receives before its page reports what is on screen.
pub const DEFAULT_THUMBNAILS: usize = 24;

impl Room {
    /// Who receives whom, from the roster and the controls (see [`routing`]).
    pub fn routing(&self) -> Vec<(ParticipantId, Vec<Subscription>)> {
        let members: Vec<(ParticipantId, Role, &str)> = self
            .members
            .iter()
            .map(|(id, m)| (*id, m.info.role, m.info.point.as_str()))
            .collect();
        routing(&members, &self.controls, self.viewport.as_ref())
    }
}

/// The town-hall routing policy (DESIGN.md, "the program"), a pure function:
/// - everyone receives the chair (microphone, camera, screen);
/// - everyone receives the floor holder's camera (and its screen when the chair allows it);
/// - a point's microphone reaches anyone only while it holds the floor or the chair opened it;
/// - the chair receives every point's camera as a thumbnail (lowest simulcast layer, last in
///   line for its bandwidth), except those its viewport says are
///   off screen (before its first viewport: the first [`DEFAULT_THUMBNAILS`] points, so a chair
///   joining a full room is not flooded with 300 streams it cannot show);
/// - in discussion mode everyone also receives the cameras of the most recent speakers;
/// - points never receive other points otherwise; observers publish nothing;
/// - a relay seat (a downstream server) is a point on both sides: it receives the program as a
///   point does (but every simulcast layer of each video, each on an m-line of its own), and
///   what it publishes is routed as a point's;
/// - in a linked meeting, the upstream seat (this server's relay client) is the program while it
///   is connected: everyone receives it whole, and it replaces the local chair for everyone but
///   the chairs (the relay client leaves the seat when the upstream is lost, and the local
///   chair is the program again); it receives the local chair's camera (every layer),
///   microphone and share, or the camera and microphone of the point the chair sends up
///   instead, which the relay client sends up (see [`upward`]).
pub fn routing(
    members: &[(ParticipantId, Role, &str)],
    c: &Controls,
    viewport: Option<&BTreeSet<ParticipantId>>,
) -> Vec<(ParticipantId, Vec<Subscription>)> {
    let first_points: BTreeSet<ParticipantId> = members
        .iter()
        .filter(|(_, role, _)| role.acts_as_point())
        .map(|(id, _, _)| *id)
        .take(DEFAULT_THUMBNAILS)
        .collect();
    let upstream = members.iter().any(|(_, role, _)| *role == Role::Upstream);
    members
        .iter()
        .map(|&(id, role, _)| {
            if role == Role::Upstream {
                return (id, upward(members, c));
            }
            let subs = members
                .iter()
                .filter(|&&(other, _, _)| other != id)
                .filter_map(|&(other, other_role, point)| {
                    let sub = match other_role {
                        Role::Observer => return None,
                        Role::Upstream => Subscription::all(other),
                        Role::Chair if upstream && role != Role::Chair => return None,
                        Role::Chair => Subscription::all(other),
                        // A relay seat is published as a point: a thumbnail for the chair, its
                        // camera and microphone to everyone only while it holds the floor.
                        Role::Point | Role::Relay => {
                            let floor = c.holds_floor(point);
                            let discussed =
                                c.discussion && c.recent_speakers.iter().any(|p| p == point);
                            let on_screen = match viewport {
                                Some(v) => v.contains(&other),
                                None => first_points.contains(&other),
                            };
                            let program = floor || discussed;
                            Subscription {
                                publisher: other,
                                audio: c.audio_open(point),
                                camera: program || (role == Role::Chair && on_screen),
                                screen: floor && c.share_allowed,
                                // The chair's grid shows the lowest layer; the floor holder and
                                // the discussed speakers are the program, at the best layer
                                // each link allows.
                                thumbnail: !program,
                                every_layer: false,
                            }
                        }
                    };
                    // A relay serves each layer on to its own halls: it takes them all.
                    let sub = Subscription {
                        every_layer: role == Role::Relay,
                        ..sub
                    };
                    (sub.audio || sub.camera || sub.screen).then_some(sub)
                })
                .collect();
            (id, subs)
        })
        .collect()
}

/// What an upstream seat receives, for the relay to send up: the chair's camera (every layer:
/// the upstream's points get the layer their own lines carry), microphone and share, or, while
/// the chair sends a connected point up (`send_up`), that point's camera and microphone beside
/// the chair's share. The upstream forwards them to its meeting only while the province holds
/// the floor or is unmuted (the share: holds the floor and the upstream chair allows sharing).
fn upward(members: &[(ParticipantId, Role, &str)], c: &Controls) -> Vec<Subscription> {
    let sent = c.sent_up.as_deref().and_then(|code| {
        members
            .iter()
            .find(|&&(_, role, point)| role.acts_as_point() && point == code)
            .map(|&(id, _, _)| id)
    });
    let chairs = members
        .iter()
        .filter(|&&(_, role, _)| role == Role::Chair)
        .map(|&(chair, _, _)| Subscription {
            every_layer: true,
            audio: sent.is_none(),
            camera: sent.is_none(),
            ..Subscription::all(chair)
        });
    let speaker = sent.map(|speaker| Subscription {
        screen: false,
        every_layer: true,
        ..Subscription::all(speaker)
    });
    speaker.into_iter().chain(chairs).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u64) -> ParticipantId {
        ParticipantId(n)
    }

    fn subs(r: &[(ParticipantId, Vec<Subscription>)], who: u64) -> Vec<(u64, bool, bool)> {
        r.iter()
            .find(|(id, _)| *id == p(who))
            .map(|(_, s)| {
                s.iter()
                    .map(|s| (s.publisher.0, s.audio, s.camera))
                    .collect()
            })
            .unwrap_or_default()
    }

    const MEMBERS: [(ParticipantId, Role, &str); 4] = [
        (ParticipantId(1), Role::Chair, "06"),
        (ParticipantId(2), Role::Point, "a"),
        (ParticipantId(3), Role::Point, "b"),
        (ParticipantId(4), Role::Observer, "o"),
    ];

    #[test]
    fn chair_sees_points_muted_points_hear_and_see_only_the_chair() {
        let r = routing(&MEMBERS, &Controls::default(), None);
        assert_eq!(subs(&r, 1), vec![(2, false, true), (3, false, true)]);
        assert_eq!(subs(&r, 2), vec![(1, true, true)]);
        assert_eq!(subs(&r, 3), vec![(1, true, true)]);
        assert_eq!(subs(&r, 4), vec![(1, true, true)]);
    }

    #[test]
    fn the_floor_holder_reaches_everyone() {
        let c = Controls {
            floor: Some(crate::controls::Floor {
                point: "a".into(),
                since: 0,
            }),
            ..Default::default()
        };
        let r = routing(&MEMBERS, &c, None);
        assert_eq!(subs(&r, 1), vec![(2, true, true), (3, false, true)]);
        assert_eq!(subs(&r, 3), vec![(1, true, true), (2, true, true)]);
        assert_eq!(subs(&r, 4), vec![(1, true, true), (2, true, true)]);
        assert_eq!(
            subs(&r, 2),
            vec![(1, true, true)],
            "the holder does not receive itself"
        );
    }

    /// (publisher, thumbnail) of the cameras `who` receives.
    fn cameras(r: &[(ParticipantId, Vec<Subscription>)], who: u64) -> Vec<(u64, bool)> {
        r.iter()
            .find(|(id, _)| *id == p(who))
            .map(|(_, s)| {
                s.iter()
                    .filter(|s| s.camera)
                    .map(|s| (s.publisher.0, s.thumbnail))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn the_chair_gets_thumbnails_except_the_floor_holder_and_points_get_the_program_whole() {
        let r = routing(&MEMBERS, &Controls::default(), None);
        assert_eq!(cameras(&r, 1), vec![(2, true), (3, true)]);
        assert_eq!(cameras(&r, 2), vec![(1, false)]);
        let c = Controls {
            floor: Some(crate::controls::Floor {
                point: "a".into(),
                since: 0,
            }),
            ..Default::default()
        };
        let r = routing(&MEMBERS, &c, None);
        assert_eq!(cameras(&r, 1), vec![(2, false), (3, true)]);
        assert_eq!(cameras(&r, 3), vec![(1, false), (2, false)]);
    }

    #[test]
    fn an_unmuted_point_is_heard_not_seen_and_the_viewport_pauses_thumbnails() {
        let mut c = Controls::default();
        c.unmuted.insert("b".into());
        let viewport: BTreeSet<ParticipantId> = [p(2)].into();
        let r = routing(&MEMBERS, &c, Some(&viewport));
        assert_eq!(subs(&r, 1), vec![(2, false, true), (3, true, false)]);
        assert_eq!(subs(&r, 2), vec![(1, true, true), (3, true, false)]);
    }

    /// The members of [`MEMBERS`] with point `b` seated as a relay (a province server).
    const WITH_RELAY: [(ParticipantId, Role, &str); 4] = [
        (ParticipantId(1), Role::Chair, "06"),
        (ParticipantId(2), Role::Point, "a"),
        (ParticipantId(3), Role::Relay, "b"),
        (ParticipantId(4), Role::Observer, "o"),
    ];

    #[test]
    fn a_relay_receives_the_program_a_point_receives_and_is_a_thumbnail_to_the_chair() {
        let r = routing(&WITH_RELAY, &Controls::default(), None);
        // Receives: the chair whole, as point `a` does; not point `a`, not the observer.
        assert_eq!(subs(&r, 3), subs(&r, 2));
        assert_eq!(cameras(&r, 3), vec![(1, false)]);
        // Published: its microphone closed, its camera in the chair's grid only.
        assert_eq!(cameras(&r, 1), vec![(2, true), (3, true)]);
        assert_eq!(subs(&r, 1), vec![(2, false, true), (3, false, true)]);
        assert_eq!(subs(&r, 2), vec![(1, true, true)]);
        assert_eq!(subs(&r, 4), vec![(1, true, true)]);
        // Only the relay takes every simulcast layer.
        let every_layer = |who: u64| -> Vec<bool> {
            r.iter()
                .find(|(id, _)| *id == p(who))
                .map(|(_, s)| s.iter().map(|s| s.every_layer).collect())
                .unwrap_or_default()
        };
        assert_eq!(every_layer(3), vec![true]);
        assert_eq!(every_layer(1), vec![false, false]);
        assert_eq!(every_layer(2), vec![false]);
        assert_eq!(every_layer(4), vec![false]);
    }

    #[test]
    fn a_relay_holding_the_floor_reaches_everyone_and_receives_the_floor_holder_otherwise() {
        let floor = |point: &str| Controls {
            floor: Some(crate::controls::Floor {
                point: point.into(),
                since: 0,
            }),
            ..Default::default()
        };
        let r = routing(&WITH_RELAY, &floor("b"), None);
        assert_eq!(cameras(&r, 1), vec![(2, true), (3, false)]);
        assert_eq!(subs(&r, 1), vec![(2, false, true), (3, true, true)]);
        assert_eq!(subs(&r, 2), vec![(1, true, true), (3, true, true)]);
        assert_eq!(subs(&r, 4), vec![(1, true, true), (3, true, true)]);
        let r = routing(&WITH_RELAY, &floor("a"), None);
        assert_eq!(subs(&r, 3), vec![(1, true, true), (2, true, true)]);
        assert_eq!(cameras(&r, 3), vec![(1, false), (2, false)]);
    }

    #[test]
    fn before_a_viewport_the_chair_gets_the_first_thumbnails_only() {
        let mut members: Vec<(ParticipantId, Role, String)> =
            vec![(p(1), Role::Chair, "06".into())];
        for i in 0..40u64 {
            members.push((p(100 + i), Role::Point, format!("x{i}")));
        }
        let view: Vec<(ParticipantId, Role, &str)> = members
            .iter()
            .map(|(id, r, c)| (*id, *r, c.as_str()))
            .collect();
        let r = routing(&view, &Controls::default(), None);
        let cameras = subs(&r, 1).iter().filter(|(_, _, camera)| *camera).count();
        assert_eq!(cameras, DEFAULT_THUMBNAILS);
    }
}
