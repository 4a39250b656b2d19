//! A hand raised one level up (issue 13): the linked meeting's chair raises the relay seat's
//! hand in the upstream meeting on behalf of one of its points (`raise_hand_up`, shown to the
//! meeting as `room_state.hand_up`). The local session reads what the chair wants from
//! `room_state` and the upstream session raises or lowers the relay seat's hand to match, with
//! a text naming the point it is for, so the upstream chair sees which commune asks.

use std::collections::HashMap;

use signaling::Signaling;
use signaling::protocol::{
    ClientMessage, HandInfo, MAX_HAND_TEXT, PROTOCOL_VERSION, ParticipantInfo, ServerMessage,
};

/// What the upstream meeting's `room_state` says of the relay seat: whether its hand is in the
/// queue there, and whether it holds the floor there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpView {
    pub hand: bool,
    pub floor: bool,
}

impl UpView {
    /// What `m` says of the seat `me` (its participant id upstream), when it is a `room_state`.
    pub fn of(m: &ServerMessage, me: &str) -> Option<UpView> {
        match m {
            ServerMessage::RoomState { floor, hands, .. } => Some(UpView {
                hand: hands.iter().any(|h| h.participant.as_deref() == Some(me)),
                floor: floor
                    .as_ref()
                    .is_some_and(|f| f.participant.as_deref() == Some(me)),
            }),
            _ => None,
        }
    }
}

/// What the relay tells the linked meeting of the upstream one: whether the relay seat holds
/// the floor there, and how many times a hand it raised there went without its asking
/// (granted or lowered by the upstream chair): each lowers the linked meeting's `hand_up`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upward {
    pub floor: bool,
    pub gone: u64,
}

/// The program seat's end of [`Upward`]: what the upstream says of the relay seat, for the
/// program seat to tell the linked meeting (the floor; a hand gone is the supervisor's).
#[derive(Clone)]
pub struct Downward {
    pub view: tokio::sync::watch::Receiver<Upward>,
    pub signaling: Signaling,
}

/// The hands gone upstream that the linked meeting has been told of, kept by the supervisor
/// for the relay's life (not by a program seat's session, which comes and goes with the
/// upstream program): a hand the upstream drops while no program seat is in the linked
/// meeting is lowered there all the same, and a program seat that joins later does not take
/// the count it finds as already told.
#[derive(Debug, Default)]
pub struct GoneTold {
    told: u64,
}

impl GoneTold {
    /// The upstream session now says `now`: whether a hand went since the linked meeting was
    /// last told (then its `hand_up` is to be lowered, and the hand no longer wanted up).
    pub fn lower(&mut self, now: &Upward) -> bool {
        let lower = now.gone != self.told;
        self.told = now.gone;
        lower
    }
}

/// The relay seat's hand upstream as its session follows it: raised by it and not seen go
/// since (`raised`), and seen in the queue since it was raised (`seen`).
#[derive(Debug, Default)]
pub struct Follow {
    raised: bool,
    seen: bool,
}

impl Follow {
    /// The session sends `m` (a raise or a lower). Whether to send it: a lower of a hand that
    /// is not up there is not.
    pub fn sending(&mut self, m: &ClientMessage) -> bool {
        let raise = matches!(m, ClientMessage::RaiseHand { .. });
        let send = raise || self.raised;
        self.raised = raise;
        self.seen = false;
        send
    }

    /// The upstream refused the last raise as too soon after the one before (a hand lowered
    /// and raised again within its interval): whether to raise it again (once the interval
    /// is over) — while it is still wanted and not seen up there.
    pub fn refused_too_soon(&self) -> bool {
        self.raised && !self.seen
    }

    /// The upstream's `room_state` said `v`: whether the hand went without the relay asking.
    pub fn observe(&mut self, v: UpView) -> bool {
        if v.hand {
            self.seen = self.raised;
            false
        } else if self.seen {
            self.seen = false;
            self.raised = false;
            true
        } else {
            false
        }
    }
}

/// The names of a meeting's participants, by id, as the roster and its changes tell them.
#[derive(Default)]
pub struct Names(HashMap<String, String>);

impl Names {
    pub fn new(roster: &[ParticipantInfo]) -> Names {
        Names(
            roster
                .iter()
                .map(|p| (p.id.clone(), p.name.clone()))
                .collect(),
        )
    }

    /// What the upstream hand should be after `m` (`Some(None)`: lowered), when `m` says.
    pub fn observe(&mut self, m: &ServerMessage) -> Option<Option<String>> {
        match m {
            ServerMessage::ParticipantJoined { participant, .. } => {
                self.0
                    .insert(participant.id.clone(), participant.name.clone());
                None
            }
            ServerMessage::RoomState { hand_up, .. } => {
                Some(hand_up.as_ref().map(|h| self.text(h)))
            }
            _ => None,
        }
    }

    /// "Name: text" (the point's code while it is away), at most [`MAX_HAND_TEXT`] characters
    /// as the upstream takes them.
    pub fn text(&self, hand: &HandInfo) -> String {
        let name = hand
            .participant
            .as_ref()
            .and_then(|id| self.0.get(id))
            .unwrap_or(&hand.point);
        let full = match &hand.text {
            Some(t) if !t.trim().is_empty() => format!("{name}: {t}"),
            _ => name.clone(),
        };
        full.chars().take(MAX_HAND_TEXT).collect()
    }
}

/// The message that makes the relay seat's hand what `wanted` says.
pub fn message(wanted: Option<String>) -> ClientMessage {
    match wanted {
        Some(text) => ClientMessage::RaiseHand {
            v: PROTOCOL_VERSION,
            text: Some(text),
        },
        None => ClientMessage::LowerHand {
            v: PROTOCOL_VERSION,
            point: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaling::protocol::Role;

    fn hand(point: &str, participant: Option<&str>, text: Option<&str>) -> HandInfo {
        HandInfo {
            point: point.into(),
            participant: participant.map(str::to_owned),
            text: text.map(str::to_owned),
            at: 0,
        }
    }

    #[test]
    fn the_upstream_view_is_about_the_relay_seat_only() {
        let state = |floor: Option<&str>, hands: Vec<HandInfo>| ServerMessage::RoomState {
            v: 1,
            floor: floor.map(|p| signaling::protocol::FloorInfo {
                point: "x".into(),
                participant: Some(p.into()),
                since: 0,
            }),
            hands,
            unmuted: vec![],
            discussion: false,
            share_allowed: false,
            roll_call: None,
            upstream: None,
            sent_up: None,
            hand_up: None,
            upstream_floor: false,
        };
        let mine = hand("relay", Some("p1"), Some("x"));
        let other = hand("tinh-b", Some("p2"), None);
        let view = |m| UpView::of(&m, "p1");
        assert_eq!(
            view(state(None, vec![other.clone(), mine])),
            Some(UpView {
                hand: true,
                floor: false
            })
        );
        assert_eq!(
            view(state(Some("p1"), vec![other.clone()])),
            Some(UpView {
                hand: false,
                floor: true
            })
        );
        assert_eq!(
            view(state(Some("p2"), vec![other])),
            Some(UpView::default())
        );
        assert_eq!(UpView::of(&ServerMessage::Pong { v: 1 }, "p1"), None);
    }

    #[test]
    fn a_hand_goes_when_the_upstream_drops_it_after_showing_it() {
        let up = UpView {
            hand: true,
            floor: false,
        };
        let down = UpView::default();
        let mut f = Follow::default();
        assert!(!f.sending(&message(None)), "nothing raised: no lower");
        assert!(f.sending(&message(Some("x".into()))));
        assert!(!f.observe(down), "not taken yet upstream");
        assert!(!f.observe(up));
        assert!(f.observe(down), "granted or lowered there");
        assert!(!f.observe(down));
        assert!(!f.sending(&message(None)), "already gone");
        // Lowered by the relay itself: not gone without asking.
        assert!(f.sending(&message(Some("y".into()))));
        assert!(!f.observe(up));
        assert!(f.sending(&message(None)));
        assert!(!f.observe(down));
        assert!(!f.refused_too_soon(), "lowered: no raise to repeat");
        assert!(f.sending(&message(Some("z".into()))));
        assert!(f.refused_too_soon());
        assert!(!f.observe(up));
        assert!(!f.refused_too_soon(), "up there already");
    }

    /// The upstream session's count of hands gone, as it reports it over [`Upward`].
    fn report(f: &mut Follow, up: &mut Upward, v: UpView) {
        up.floor = v.floor;
        up.gone = up.gone.wrapping_add(u64::from(f.observe(v)));
    }

    #[test]
    fn a_hand_dropped_upstream_is_lowered_whether_or_not_a_program_seat_was_there() {
        let shown = UpView {
            hand: true,
            floor: false,
        };
        let (mut f, mut up, mut told) = (Follow::default(), Upward::default(), GoneTold::default());
        f.sending(&message(Some("x".into())));
        report(&mut f, &mut up, shown);
        assert!(!told.lower(&up), "still up there");
        // The upstream program is lost: no program seat in the linked meeting. The national
        // chair lowers the hand meanwhile; the supervisor sees it all the same.
        report(&mut f, &mut up, UpView::default());
        assert_eq!(up.gone, 1);
        assert!(told.lower(&up), "lowered with no program seat present");
        // A program seat that joins later finds the same count: nothing more to lower.
        assert!(!told.lower(&up));
        // Raised again and granted (the floor given): lowered once more.
        f.sending(&message(Some("y".into())));
        report(&mut f, &mut up, shown);
        assert!(!told.lower(&up));
        report(
            &mut f,
            &mut up,
            UpView {
                hand: false,
                floor: true,
            },
        );
        assert!(told.lower(&up));
        // A floor change alone lowers nothing.
        report(&mut f, &mut up, UpView::default());
        assert!(!told.lower(&up));
    }

    fn names() -> Names {
        Names::new(&[ParticipantInfo {
            id: "p3".into(),
            point: "xa-a".into(),
            name: "Xã Cao Sơn".into(),
            role: Role::Point,
            media: None,
        }])
    }

    #[test]
    fn the_upstream_hand_names_the_point_it_is_for() {
        let n = names();
        assert_eq!(
            n.text(&hand("xa-a", Some("p3"), Some("Xin phát biểu về mục 2"))),
            "Xã Cao Sơn: Xin phát biểu về mục 2"
        );
        assert_eq!(n.text(&hand("xa-a", Some("p3"), None)), "Xã Cao Sơn");
        assert_eq!(
            n.text(&hand("xa-b", None, Some(" "))),
            "xa-b",
            "away: its code"
        );
        let long = "ô".repeat(200);
        assert_eq!(
            n.text(&hand("xa-a", Some("p3"), Some(&long)))
                .chars()
                .count(),
            MAX_HAND_TEXT
        );
    }
}
