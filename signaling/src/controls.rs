//! The meeting's controls as a pure state machine: floor, raised hands, microphones, roll call,
//! discussion mode, active speakers.
//!
//! State is keyed by **point code**, not by connection: a commune on a flaky link that reconnects
//! keeps the floor and its open microphone. Every action is checked against the actor's role and
//! the room's state here, so a point cannot grant itself the floor whatever its client sends.
//! Actions arrive one at a time (the room's mutex serialises them): "two grants at once" means
//! two grants in some order, and the later one wins, leaving exactly one holder.
//!
//! What a restart must not lose (floor, hands, microphones, discussion, share, roll call) is
//! saved as a snapshot after every accepted change (see `persist`); who is speaking right now
//! and the hand-raise rate limit are not.

use std::collections::{BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::protocol::{FloorInfo, HandInfo, Role, RollCallAnswer, RollCallInfo};

/// Active speakers remembered for discussion mode.
pub const DISCUSSION_SPEAKERS: usize = 4;
/// A point may raise its hand at most once per this many milliseconds.
const HAND_INTERVAL_MS: u64 = 2_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    RaiseHand { text: Option<String> },
    LowerHand { point: Option<String> },
    Grant { point: String },
    Revoke,
    Next,
    SetMute { point: Option<String>, muted: bool },
    StartRollCall,
    EndRollCall,
    AnswerRollCall,
    SetDiscussion(bool),
    AllowShare(bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// The actor's role may not do this.
    Forbidden(&'static str),
    /// The named point is not connected to this meeting as a point.
    NotInRoom(String),
    /// The action does not fit the current state.
    InvalidState(&'static str),
    RateLimited,
}

/// What an accepted action changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Who receives whom changed: recompute routing.
    pub routing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Floor {
    pub point: String,
    pub since: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hand {
    pub point: String,
    pub text: Option<String>,
    pub at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollCall {
    pub started_at: u64,
    pub ended_at: Option<u64>,
    /// In answer order, one per point.
    pub answers: Vec<(String, u64)>,
}

#[derive(Debug, Default)]
pub struct Controls {
    pub floor: Option<Floor>,
    pub hands: Vec<Hand>,
    pub unmuted: BTreeSet<String>,
    pub discussion: bool,
    pub share_allowed: bool,
    pub roll_call: Option<RollCall>,
    /// Points that spoke most recently, most recent first (for discussion mode).
    pub recent_speakers: VecDeque<String>,
    /// Points speaking right now.
    pub speaking: BTreeSet<String>,
    pub(crate) last_hand: HashMap<String, u64>,
}

/// Who acts.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub point: &'a str,
    pub role: Role,
}

fn chair_only(actor: Actor<'_>) -> Result<(), ControlError> {
    if actor.role == Role::Chair {
        Ok(())
    } else {
        Err(ControlError::Forbidden("only the chair may do this"))
    }
}

fn point_only(actor: Actor<'_>) -> Result<(), ControlError> {
    if actor.role.acts_as_point() {
        Ok(())
    } else {
        Err(ControlError::Forbidden(
            "only a participating point may do this",
        ))
    }
}

impl Controls {
    /// Applies one action. `present` lists the point codes connected as points right now.
    pub fn apply(
        &mut self,
        actor: Actor<'_>,
        action: Action,
        present: &BTreeSet<String>,
        now_ms: u64,
    ) -> Result<Change, ControlError> {
        let need_present = |p: &str| {
            if present.contains(p) {
                Ok(())
            } else {
                Err(ControlError::NotInRoom(p.to_owned()))
            }
        };
        match action {
            Action::RaiseHand { text } => {
                point_only(actor)?;
                if self.floor.as_ref().is_some_and(|f| f.point == actor.point) {
                    return Err(ControlError::InvalidState("you already have the floor"));
                }
                if let Some(&last) = self.last_hand.get(actor.point)
                    && now_ms.saturating_sub(last) < HAND_INTERVAL_MS
                {
                    return Err(ControlError::RateLimited);
                }
                self.last_hand.insert(actor.point.to_owned(), now_ms);
                match self.hands.iter_mut().find(|h| h.point == actor.point) {
                    // Keeps its place in the queue; only the text changes.
                    Some(h) => h.text = text,
                    None => self.hands.push(Hand {
                        point: actor.point.to_owned(),
                        text,
                        at: now_ms,
                    }),
                }
                Ok(Change { routing: false })
            }
            Action::LowerHand { point } => {
                let target = match point {
                    None => {
                        point_only(actor)?;
                        actor.point.to_owned()
                    }
                    Some(p) if p == actor.point => p,
                    Some(p) => {
                        chair_only(actor)?;
                        p
                    }
                };
                let before = self.hands.len();
                self.hands.retain(|h| h.point != target);
                if self.hands.len() == before {
                    return Err(ControlError::InvalidState("that hand is not raised"));
                }
                Ok(Change { routing: false })
            }
            Action::Grant { point } => {
                chair_only(actor)?;
                need_present(&point)?;
                self.hands.retain(|h| h.point != point);
                self.floor = Some(Floor {
                    point,
                    since: now_ms,
                });
                Ok(Change { routing: true })
            }
            Action::Revoke => {
                // The chair ends anyone's turn; the point holding the floor may hand it back.
                if actor.role != Role::Chair && !self.holds_floor(actor.point) {
                    return Err(ControlError::Forbidden(
                        "only the chair or the point holding the floor may do this",
                    ));
                }
                if self.floor.take().is_none() {
                    return Err(ControlError::InvalidState("nobody holds the floor"));
                }
                Ok(Change { routing: true })
            }
            Action::Next => {
                chair_only(actor)?;
                let Some(i) = self.hands.iter().position(|h| present.contains(&h.point)) else {
                    return Err(ControlError::InvalidState(
                        "no raised hand to pass the floor to",
                    ));
                };
                let hand = self.hands.remove(i);
                self.floor = Some(Floor {
                    point: hand.point,
                    since: now_ms,
                });
                Ok(Change { routing: true })
            }
            Action::SetMute { point, muted } => {
                chair_only(actor)?;
                match point {
                    Some(p) => {
                        need_present(&p)?;
                        if muted {
                            self.unmuted.remove(&p);
                        } else {
                            self.unmuted.insert(p);
                        }
                    }
                    None if muted => self.unmuted.clear(),
                    None => self.unmuted.extend(present.iter().cloned()),
                }
                Ok(Change { routing: true })
            }
            Action::StartRollCall => {
                chair_only(actor)?;
                if self
                    .roll_call
                    .as_ref()
                    .is_some_and(|r| r.ended_at.is_none())
                {
                    return Err(ControlError::InvalidState("a roll call is already running"));
                }
                self.roll_call = Some(RollCall {
                    started_at: now_ms,
                    ended_at: None,
                    answers: Vec::new(),
                });
                Ok(Change { routing: false })
            }
            Action::EndRollCall => {
                chair_only(actor)?;
                match &mut self.roll_call {
                    Some(r) if r.ended_at.is_none() => {
                        r.ended_at = Some(now_ms);
                        Ok(Change { routing: false })
                    }
                    _ => Err(ControlError::InvalidState("no roll call is running")),
                }
            }
            Action::AnswerRollCall => {
                point_only(actor)?;
                match &mut self.roll_call {
                    Some(r) if r.ended_at.is_none() => {
                        // The first answer counts; pressing again changes nothing.
                        if !r.answers.iter().any(|(p, _)| p == actor.point) {
                            r.answers.push((actor.point.to_owned(), now_ms));
                        }
                        Ok(Change { routing: false })
                    }
                    _ => Err(ControlError::InvalidState("no roll call is running")),
                }
            }
            Action::SetDiscussion(on) => {
                chair_only(actor)?;
                self.discussion = on;
                Ok(Change { routing: true })
            }
            Action::AllowShare(allowed) => {
                chair_only(actor)?;
                self.share_allowed = allowed;
                Ok(Change { routing: true })
            }
        }
    }

    /// Whether a point's microphone is open: it holds the floor or the chair unmuted it.
    pub fn audio_open(&self, point: &str) -> bool {
        self.floor.as_ref().is_some_and(|f| f.point == point) || self.unmuted.contains(point)
    }

    pub fn holds_floor(&self, point: &str) -> bool {
        self.floor.as_ref().is_some_and(|f| f.point == point)
    }

    /// Voice activity of a point or chair changed. Returns (speakers changed, routing changed).
    pub fn speaking(&mut self, point: &str, speaking: bool) -> (bool, bool) {
        let changed = if speaking {
            self.speaking.insert(point.to_owned())
        } else {
            self.speaking.remove(point)
        };
        let mut routing = false;
        if speaking {
            let was_first = self.recent_speakers.front().is_some_and(|p| p == point);
            if !was_first {
                let known = self.recent_speakers.iter().any(|p| p == point);
                self.recent_speakers.retain(|p| p != point);
                self.recent_speakers.push_front(point.to_owned());
                self.recent_speakers.truncate(DISCUSSION_SPEAKERS);
                // Only a new face in the set changes who receives whom.
                routing = self.discussion && !known;
            }
        }
        (changed, routing)
    }

    /// A point left: its hand leaves the queue (it asks again when back). Floor and open
    /// microphone stay with the point code, so a quick reconnect keeps them.
    pub fn left(&mut self, point: &str) {
        self.hands.retain(|h| h.point != point);
        self.speaking.remove(point);
    }

    pub fn floor_info(&self, participant_of: impl Fn(&str) -> Option<String>) -> Option<FloorInfo> {
        self.floor.as_ref().map(|f| FloorInfo {
            point: f.point.clone(),
            participant: participant_of(&f.point),
            since: f.since,
        })
    }

    pub fn hand_infos(&self, participant_of: impl Fn(&str) -> Option<String>) -> Vec<HandInfo> {
        self.hands
            .iter()
            .map(|h| HandInfo {
                point: h.point.clone(),
                participant: participant_of(&h.point),
                text: h.text.clone(),
                at: h.at,
            })
            .collect()
    }

    pub fn roll_call_info(&self) -> Option<RollCallInfo> {
        self.roll_call.as_ref().map(|r| RollCallInfo {
            started_at: r.started_at,
            ended_at: r.ended_at,
            answers: r
                .answers
                .iter()
                .map(|(point, at)| RollCallAnswer {
                    point: point.clone(),
                    at: *at,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIR: Actor<'static> = Actor {
        point: "06",
        role: Role::Chair,
    };

    fn pt(code: &'static str) -> Actor<'static> {
        Actor {
            point: code,
            role: Role::Point,
        }
    }

    fn present(codes: &[&str]) -> BTreeSet<String> {
        codes.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn hand_grant_revoke_cycle() {
        let mut c = Controls::default();
        let here = present(&["a", "b"]);
        c.apply(
            pt("a"),
            Action::RaiseHand {
                text: Some("xin phát biểu".into()),
            },
            &here,
            0,
        )
        .unwrap();
        c.apply(pt("b"), Action::RaiseHand { text: None }, &here, 10)
            .unwrap();
        assert_eq!(c.hands.len(), 2);
        assert!(c.apply(CHAIR, Action::Next, &here, 20).unwrap().routing);
        assert!(c.holds_floor("a") && c.audio_open("a") && !c.audio_open("b"));
        assert_eq!(c.hands.len(), 1, "the granted hand leaves the queue");
        c.apply(CHAIR, Action::Revoke, &here, 30).unwrap();
        assert!(!c.audio_open("a"));
        assert_eq!(
            c.apply(CHAIR, Action::Revoke, &here, 31),
            Err(ControlError::InvalidState("nobody holds the floor"))
        );
    }

    #[test]
    fn points_cannot_use_chair_actions() {
        let mut c = Controls::default();
        let here = present(&["a", "b"]);
        for action in [
            Action::Grant { point: "a".into() },
            Action::Revoke,
            Action::Next,
            Action::SetMute {
                point: Some("b".into()),
                muted: false,
            },
            Action::SetMute {
                point: None,
                muted: false,
            },
            Action::StartRollCall,
            Action::EndRollCall,
            Action::SetDiscussion(true),
            Action::AllowShare(true),
            Action::LowerHand {
                point: Some("b".into()),
            },
        ] {
            assert!(
                matches!(
                    c.apply(pt("a"), action.clone(), &here, 0),
                    Err(ControlError::Forbidden(_))
                ),
                "{action:?}"
            );
        }
        assert!(
            c.floor.is_none() && c.unmuted.is_empty() && c.roll_call.is_none() && !c.discussion
        );
        // And the chair cannot raise a hand or answer a roll call.
        assert!(matches!(
            c.apply(CHAIR, Action::RaiseHand { text: None }, &here, 0),
            Err(ControlError::Forbidden(_))
        ));
    }

    #[test]
    fn the_floor_holder_hands_the_floor_back_but_cannot_end_another_turn() {
        let mut c = Controls::default();
        let here = present(&["a", "b"]);
        c.apply(CHAIR, Action::Grant { point: "a".into() }, &here, 10)
            .unwrap();
        assert!(matches!(
            c.apply(pt("b"), Action::Revoke, &here, 11),
            Err(ControlError::Forbidden(_))
        ));
        assert!(c.holds_floor("a"));
        let change = c.apply(pt("a"), Action::Revoke, &here, 12).unwrap();
        assert!(change.routing, "its microphone closes for everyone");
        assert!(c.floor.is_none() && !c.audio_open("a"));
    }

    #[test]
    fn actions_on_absent_points_are_refused() {
        let mut c = Controls::default();
        let here = present(&["a"]);
        assert_eq!(
            c.apply(CHAIR, Action::Grant { point: "zz".into() }, &here, 0),
            Err(ControlError::NotInRoom("zz".into()))
        );
        assert_eq!(
            c.apply(
                CHAIR,
                Action::SetMute {
                    point: Some("zz".into()),
                    muted: false
                },
                &here,
                0
            ),
            Err(ControlError::NotInRoom("zz".into()))
        );
        assert!(c.floor.is_none() && c.unmuted.is_empty());
    }

    #[test]
    fn two_grants_leave_exactly_one_holder() {
        let mut c = Controls::default();
        let here = present(&["a", "b"]);
        c.apply(CHAIR, Action::Grant { point: "a".into() }, &here, 0)
            .unwrap();
        c.apply(CHAIR, Action::Grant { point: "b".into() }, &here, 0)
            .unwrap();
        assert!(c.holds_floor("b") && !c.holds_floor("a"));
        assert!(
            !c.audio_open("a"),
            "the previous holder's microphone closes"
        );
    }

    #[test]
    fn the_floor_survives_a_reconnect_of_its_holder_but_hands_do_not() {
        let mut c = Controls::default();
        let here = present(&["a", "b"]);
        c.apply(pt("b"), Action::RaiseHand { text: None }, &here, 0)
            .unwrap();
        c.apply(CHAIR, Action::Grant { point: "a".into() }, &here, 0)
            .unwrap();
        c.left("a");
        c.left("b");
        assert!(
            c.holds_floor("a"),
            "floor is keyed by point, not connection"
        );
        assert!(c.hands.is_empty());
        // While "a" is away, Next finds nobody present with a hand.
        let away = present(&["b"]);
        assert!(matches!(
            c.apply(CHAIR, Action::Next, &away, 5),
            Err(ControlError::InvalidState(_))
        ));
    }

    #[test]
    fn hand_floods_are_rate_limited_and_do_not_duplicate() {
        let mut c = Controls::default();
        let here = present(&["a"]);
        c.apply(pt("a"), Action::RaiseHand { text: None }, &here, 0)
            .unwrap();
        assert_eq!(
            c.apply(pt("a"), Action::RaiseHand { text: None }, &here, 500),
            Err(ControlError::RateLimited)
        );
        c.apply(
            pt("a"),
            Action::RaiseHand {
                text: Some("again".into()),
            },
            &here,
            2_500,
        )
        .unwrap();
        assert_eq!(c.hands.len(), 1);
        assert_eq!(c.hands[0].at, 0, "keeps its place in the queue");
    }

    #[test]
    fn roll_call_records_first_answers_only_while_running() {
        let mut c = Controls::default();
        let here = present(&["a", "b"]);
        assert!(matches!(
            c.apply(pt("a"), Action::AnswerRollCall, &here, 0),
            Err(ControlError::InvalidState(_))
        ));
        c.apply(CHAIR, Action::StartRollCall, &here, 100).unwrap();
        c.apply(pt("a"), Action::AnswerRollCall, &here, 150)
            .unwrap();
        c.apply(pt("a"), Action::AnswerRollCall, &here, 170)
            .unwrap();
        c.apply(pt("b"), Action::AnswerRollCall, &here, 180)
            .unwrap();
        c.apply(CHAIR, Action::EndRollCall, &here, 200).unwrap();
        let r = c.roll_call_info().unwrap();
        assert_eq!(
            r.answers
                .iter()
                .map(|a| (a.point.as_str(), a.at))
                .collect::<Vec<_>>(),
            vec![("a", 150), ("b", 180)]
        );
        assert_eq!(r.ended_at, Some(200));
        assert!(matches!(
            c.apply(pt("b"), Action::AnswerRollCall, &here, 300),
            Err(ControlError::InvalidState(_))
        ));
    }

    #[test]
    fn mute_all_and_unmute_all() {
        let mut c = Controls::default();
        let here = present(&["a", "b"]);
        c.apply(
            CHAIR,
            Action::SetMute {
                point: None,
                muted: false,
            },
            &here,
            0,
        )
        .unwrap();
        assert!(c.audio_open("a") && c.audio_open("b"));
        c.apply(
            CHAIR,
            Action::SetMute {
                point: None,
                muted: true,
            },
            &here,
            0,
        )
        .unwrap();
        assert!(!c.audio_open("a") && !c.audio_open("b"));
    }

    #[test]
    fn recent_speakers_keep_the_last_four() {
        let mut c = Controls {
            discussion: true,
            ..Default::default()
        };
        for p in ["a", "b", "c", "d", "e"] {
            let (_, routing) = c.speaking(p, true);
            assert!(routing, "{p} is new to the set");
        }
        assert_eq!(c.recent_speakers, ["e", "d", "c", "b"]);
        assert_eq!(
            c.speaking("c", true),
            (false, false),
            "already speaking and in the set"
        );
        assert_eq!(c.recent_speakers, ["c", "e", "d", "b"]);
    }
}
