//! Who is connected: admitting (a reconnect replaces its old seat), removing, and sending to
//! the members.

use std::collections::BTreeSet;

use sfu::ParticipantId;
use tokio::sync::mpsc;

use super::Room;
use crate::auth::Grant;
use crate::media_state::ChangeLimiter;
use crate::protocol::{PROTOCOL_VERSION, ParticipantInfo, Role, ServerMessage};

pub(crate) struct Member {
    pub info: ParticipantInfo,
    pub tx: mpsc::Sender<ServerMessage>,
    /// Recent changes of `info.media`, each told to everyone: bounded per seat.
    pub media_changes: ChangeLimiter,
    /// A relay seat's `join.chain` (the servers its program comes through); empty otherwise.
    pub chain: Vec<String>,
}

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
}

fn left(id: ParticipantId) -> ServerMessage {
    ServerMessage::ParticipantLeft {
        v: PROTOCOL_VERSION,
        participant: id.to_string(),
    }
}
