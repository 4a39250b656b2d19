//! A meeting's live state: who is connected, in which role, and who receives whom.
//!
//! Plain data behind the registry's mutex, changed only by short synchronous calls (no await
//! while held); every change returns what to tell whom, and the routing is a pure function of
//! the roster, so the tests need neither sockets nor tasks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sfu::{ParticipantId, Subscription};
use tokio::sync::mpsc;

use crate::auth::Grant;
use crate::controls::{Action, Actor, Change, ControlError, Controls};
use crate::media_state::ChangeLimiter;
use crate::persist::Keeper;
use crate::protocol::{PROTOCOL_VERSION, ParticipantInfo, Role, ServerMessage, UpstreamState};

pub(crate) struct Member {
    pub info: ParticipantInfo,
    pub tx: mpsc::Sender<ServerMessage>,
    /// Recent changes of `info.media`, each told to everyone: bounded per seat.
    pub media_changes: ChangeLimiter,
    /// A relay seat's `join.chain` (the servers its program comes through); empty otherwise.
    pub chain: Vec<String>,
}

pub struct Room {
    pub id: String,
    pub title: String,
    capacity: usize,
    pub(crate) members: BTreeMap<ParticipantId, Member>,
    pub controls: Controls,
    /// The chair's visible thumbnails; `None` until the chair reports a viewport.
    pub viewport: Option<BTreeSet<ParticipantId>>,
    /// Recent chat, replayed to whoever joins (late or reconnecting).
    pub(crate) chat_log: std::collections::VecDeque<ServerMessage>,
    /// Where the controls are saved after each change (none in tests of the room alone).
    keeper: Option<Arc<Keeper>>,
    /// In a linked meeting, where the program comes from (see `Signaling::set_upstream`).
    pub(crate) upstream: Option<UpstreamState>,
    /// In a linked meeting, whether the upstream chair gave the relay seat the floor there
    /// (see `Signaling::set_upstream_view`).
    pub(crate) upstream_floor: bool,
}

/// Chat messages kept for replay.
pub const CHAT_HISTORY: usize = 50;
/// Thumbnails the chair receives before its page reports what is on screen.
pub const DEFAULT_THUMBNAILS: usize = 24;

#[derive(Debug, PartialEq, Eq)]
pub enum JoinRefused {
    Full { capacity: usize },
}

pub(crate) struct Joined {
    pub roster: Vec<ParticipantInfo>,
    /// An earlier connection of the same point, now replaced (it is told `bye`).
    pub replaced: Option<ParticipantId>,
}

impl Room {
    pub fn new(id: String, title: String, capacity: usize) -> Self {
        Self {
            id,
            title,
            capacity,
            members: BTreeMap::new(),
            controls: Controls::default(),
            viewport: None,
            chat_log: std::collections::VecDeque::new(),
            keeper: None,
            upstream: None,
            upstream_floor: false,
        }
    }

    /// Saves the controls through `keeper` from now on, starting from `restored` (what the
    /// meeting had decided before a restart) when given.
    pub(crate) fn keep_controls(&mut self, keeper: Arc<Keeper>, restored: Option<Controls>) {
        if let Some(c) = restored {
            self.controls = c;
        }
        self.keeper = Some(keeper);
    }

    /// Applies a control action (see [`Controls::apply`]) against the points connected now;
    /// an accepted one is saved.
    pub(crate) fn apply_control(
        &mut self,
        actor: Actor<'_>,
        action: Action,
        now_ms: u64,
    ) -> Result<Change, ControlError> {
        let present = self.present_points();
        let change = self.controls.apply(actor, action, &present, now_ms)?;
        self.save_controls();
        Ok(change)
    }

    /// What the upstream meeting says of the relay seat: whether it holds the floor there, and
    /// whether the hand it raised there is gone (granted or lowered upstream), which lowers
    /// `hand_up` here. Whether anything changed (then the controls are saved if need be).
    pub(crate) fn upstream_view(&mut self, floor: bool, hand_gone: bool) -> bool {
        let mut changed = self.upstream_floor != floor;
        self.upstream_floor = floor;
        if hand_gone && self.controls.hand_up.take().is_some() {
            self.save_controls();
            changed = true;
        }
        changed
    }

    fn save_controls(&self) {
        if let Some(k) = &self.keeper {
            k.save(&self.id, &self.controls);
        }
    }

    /// Point codes connected as points (the point role, or a relay seat, which takes part as
    /// one: see [`Role::acts_as_point`]).
    pub fn present_points(&self) -> BTreeSet<String> {
        self.members
            .values()
            .filter(|m| m.info.role.acts_as_point())
            .map(|m| m.info.point.clone())
            .collect()
    }

    /// The current participant id of a point, if connected.
    pub fn participant_of(&self, point: &str) -> Option<String> {
        self.members
            .values()
            .find(|m| m.info.point == point)
            .map(|m| m.info.id.clone())
    }

    pub fn member_info(&self, id: ParticipantId) -> Option<&ParticipantInfo> {
        self.members.get(&id).map(|m| &m.info)
    }

    /// The controls as the clients see them.
    pub fn state_message(&self) -> ServerMessage {
        let c = &self.controls;
        let of = |p: &str| self.participant_of(p);
        ServerMessage::RoomState {
            v: PROTOCOL_VERSION,
            floor: c.floor_info(of),
            hands: c.hand_infos(of),
            unmuted: c.unmuted.iter().cloned().collect(),
            discussion: c.discussion,
            share_allowed: c.share_allowed,
            roll_call: c.roll_call_info(),
            upstream: self.upstream,
            sent_up: c.sent_up.clone(),
            hand_up: c.hand_up_info(of).map(Box::new),
            upstream_floor: self.upstream_floor,
        }
    }

    /// Participants speaking now, for the active-speaker highlight.
    pub fn speakers_message(&self) -> ServerMessage {
        ServerMessage::ActiveSpeakers {
            v: PROTOCOL_VERSION,
            participants: self
                .controls
                .speaking
                .iter()
                .filter_map(|p| self.participant_of(p))
                .collect(),
        }
    }

    /// Remembers a chat message for replay to later joiners.
    pub(crate) fn record_chat(&mut self, msg: ServerMessage) {
        if self.chat_log.len() == CHAT_HISTORY {
            self.chat_log.pop_front();
        }
        self.chat_log.push_back(msg);
    }

    /// The chat a participant may see: messages to everyone, and those to the chair when it is
    /// the chair or their sender.
    pub(crate) fn chat_history_for(&self, role: Role, point: &str) -> Vec<ServerMessage> {
        self.chat_log
            .iter()
            .filter(|m| match m {
                ServerMessage::Chat { to, from_point, .. } => {
                    *to == crate::protocol::ChatTarget::All
                        || role == Role::Chair
                        || from_point == point
                }
                _ => false,
            })
            .cloned()
            .collect()
    }

    /// Sends to the chair(s) only.
    pub(crate) fn send_to_chairs(&self, msg: &ServerMessage) {
        for m in self.members.values().filter(|m| m.info.role == Role::Chair) {
            let _ = m.tx.try_send(msg.clone());
        }
    }

    pub(crate) fn send_to(&self, id: ParticipantId, msg: ServerMessage) {
        if let Some(m) = self.members.get(&id) {
            let _ = m.tx.try_send(msg);
        }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Admits a participant. A point that is already connected (a reconnect racing the old
    /// connection's timeout) replaces its old seat rather than being refused or doubled.
    pub(crate) fn join(
        &mut self,
        id: ParticipantId,
        grant: &Grant,
        tx: mpsc::Sender<ServerMessage>,
    ) -> Result<Joined, JoinRefused> {
        let replaced = self
            .members
            .iter()
            .find(|(_, m)| m.info.point == grant.point)
            .map(|(id, _)| *id);
        if let Some(old) = replaced
            && let Some(m) = self.members.remove(&old)
        {
            let _ = m.tx.try_send(ServerMessage::Bye {
                v: PROTOCOL_VERSION,
                code: crate::protocol::ByeCode::Replaced,
                reason: "replaced by a newer connection of the same point".into(),
                retry_after_ms: None,
            });
            self.broadcast(&left(old), None);
        }
        if self.capacity > 0 && self.members.len() >= self.capacity {
            return Err(JoinRefused::Full {
                capacity: self.capacity,
            });
        }
        let info = ParticipantInfo {
            id: id.to_string(),
            point: grant.point.clone(),
            name: grant.name.clone(),
            role: grant.role,
            media: None,
        };
        self.broadcast(
            &ServerMessage::ParticipantJoined {
                v: PROTOCOL_VERSION,
                participant: info.clone(),
            },
            None,
        );
        self.members.insert(
            id,
            Member {
                info,
                tx,
                media_changes: ChangeLimiter::default(),
                chain: Vec::new(),
            },
        );
        Ok(Joined {
            roster: self.members.values().map(|m| m.info.clone()).collect(),
            replaced,
        })
    }

    /// Removes a participant; returns whether it was here.
    pub fn leave(&mut self, id: ParticipantId) -> bool {
        let Some(m) = self.members.remove(&id) else {
            return false;
        };
        if !self.members.values().any(|o| o.info.point == m.info.point) {
            let hands = self.controls.hands.len();
            self.controls.left(&m.info.point);
            if self.controls.hands.len() != hands {
                self.save_controls();
            }
        }
        if let Some(v) = &mut self.viewport {
            v.remove(&id);
        }
        self.broadcast(&left(id), None);
        true
    }

    /// Sends to every member but `except`. A member whose queue is full misses the message;
    /// its session notices the lag and resynchronises (see `session`).
    pub(crate) fn broadcast(&self, msg: &ServerMessage, except: Option<ParticipantId>) {
        for (id, m) in &self.members {
            if Some(*id) != except && m.tx.try_send(msg.clone()).is_err() {
                tracing::warn!(participant = %id, "roster event not delivered: queue full or closed");
            }
        }
    }

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

fn left(id: ParticipantId) -> ServerMessage {
    ServerMessage::ParticipantLeft {
        v: PROTOCOL_VERSION,
        participant: id.to_string(),
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
}

#[cfg(test)]
#[path = "room_upstream_tests.rs"]
mod upstream_tests;
