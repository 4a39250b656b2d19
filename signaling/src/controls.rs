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
    RaiseHand {
        text: Option<String>,
    },
    LowerHand {
        point: Option<String>,
    },
    Grant {
        point: String,
    },
    Revoke,
    Next,
    SetMute {
        point: Option<String>,
        muted: bool,
    },
    StartRollCall,
    EndRollCall,
    AnswerRollCall,
    SetDiscussion(bool),
    AllowShare(bool),
    /// Who goes up on the upstream relay seat: a point, or the chair (`None`).
    SendUp {
        point: Option<String>,
    },
    /// Raise the relay seat's hand upstream on behalf of a point, or of the chair (`None`).
    RaiseHandUp {
        point: Option<String>,
        text: Option<String>,
    },
    LowerHandUp,
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
    /// In a linked meeting, the point whose camera and microphone go up instead of the chair's.
    pub sent_up: Option<String>,
    /// In a linked meeting, the hand the relay raises upstream: on behalf of `point` (the
    /// chair's own code: the province itself).
    pub hand_up: Option<Hand>,
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
            Action::SendUp { point } => {
                chair_only(actor)?;
                self.sent_up = match point {
                    Some(p) if p != actor.point => {
                        need_present(&p)?;
                        Some(p)
                    }
                    _ => None,
                };
                Ok(Change { routing: true })
            }
            Action::RaiseHandUp { point, text } => {
                chair_only(actor)?;
                let point = match point {
                    Some(p) if p != actor.point => {
                        need_present(&p)?;
                        p
                    }
                    _ => actor.point.to_owned(),
                };
                self.hand_up = Some(Hand {
                    point,
                    text,
                    at: now_ms,
                });
                Ok(Change { routing: false })
            }
            Action::LowerHandUp => {
                chair_only(actor)?;
                if self.hand_up.take().is_none() {
                    return Err(ControlError::InvalidState("no hand is raised upstream"));
                }
                Ok(Change { routing: false })
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

    pub fn hand_up_info(
        &self,
        participant_of: impl Fn(&str) -> Option<String>,
    ) -> Option<HandInfo> {
        self.hand_up.as_ref().map(|h| HandInfo {
            point: h.point.clone(),
            participant: participant_of(&h.point),
            text: h.text.clone(),
            at: h.at,
        })
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
#[path = "controls_tests.rs"]
mod tests;
