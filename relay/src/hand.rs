//! A hand raised one level up (issue 13): the linked meeting's chair raises the relay seat's
//! hand in the upstream meeting on behalf of one of its points (`raise_hand_up`, shown to the
//! meeting as `room_state.hand_up`). The local session reads what the chair wants from
//! `room_state` and the upstream session raises or lowers the relay seat's hand to match, with
//! a text naming the point it is for, so the upstream chair sees which commune asks.

use std::collections::HashMap;

use signaling::protocol::{
    ClientMessage, HandInfo, MAX_HAND_TEXT, PROTOCOL_VERSION, ParticipantInfo, ServerMessage,
};

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
