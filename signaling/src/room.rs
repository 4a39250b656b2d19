//! A meeting's live state: who is connected, in which role, and who receives whom.
//!
//! Plain data behind the registry's mutex, changed only by short synchronous calls (no await
//! while held); every change returns what to tell whom, and the routing is a pure function of
//! the roster, so the tests need neither sockets nor tasks.

use std::collections::BTreeMap;

use sfu::ParticipantId;
use tokio::sync::mpsc;

use crate::auth::Grant;
use crate::protocol::{PROTOCOL_VERSION, ParticipantInfo, Role, ServerMessage};

pub(crate) struct Member {
    pub info: ParticipantInfo,
    pub tx: mpsc::Sender<ServerMessage>,
}

pub struct Room {
    pub id: String,
    pub title: String,
    capacity: usize,
    pub(crate) members: BTreeMap<ParticipantId, Member>,
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
    pub fn new(id: String, title: String, capacity: usize) -> Self {
        Self {
            id,
            title,
            capacity,
            members: BTreeMap::new(),
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
                reason: "replaced by a newer connection of the same point".into(),
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
        };
        self.broadcast(
            &ServerMessage::ParticipantJoined {
                v: PROTOCOL_VERSION,
                participant: info.clone(),
            },
            None,
        );
        self.members.insert(id, Member { info, tx });
        Ok(Joined {
            roster: self.members.values().map(|m| m.info.clone()).collect(),
            replaced,
        })
    }

    /// Removes a participant; returns whether it was here.
    pub fn leave(&mut self, id: ParticipantId) -> bool {
        if self.members.remove(&id).is_none() {
            return false;
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

    /// Who receives whom: the chair receives every point; points and observers receive the
    /// chair. Points never receive each other (the "program" policy of DESIGN.md).
    pub fn routing(&self) -> Vec<(ParticipantId, Vec<ParticipantId>)> {
        let roles: Vec<(ParticipantId, Role)> = self
            .members
            .iter()
            .map(|(id, m)| (*id, m.info.role))
            .collect();
        routing(&roles)
    }
}

fn left(id: ParticipantId) -> ServerMessage {
    ServerMessage::ParticipantLeft {
        v: PROTOCOL_VERSION,
        participant: id.to_string(),
    }
}

/// The routing policy as a pure function of (participant, role).
pub fn routing(members: &[(ParticipantId, Role)]) -> Vec<(ParticipantId, Vec<ParticipantId>)> {
    members
        .iter()
        .map(|&(id, role)| {
            let receives = members
                .iter()
                .filter(|&&(other, other_role)| {
                    other != id
                        && match role {
                            Role::Chair => other_role != Role::Observer,
                            Role::Point | Role::Observer => other_role == Role::Chair,
                        }
                })
                .map(|&(other, _)| other)
                .collect();
            (id, receives)
        })
        .collect()
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

    #[test]
    fn chair_receives_points_points_receive_chair_only() {
        let r = routing(&[
            (p(1), Role::Chair),
            (p(2), Role::Point),
            (p(3), Role::Point),
            (p(4), Role::Observer),
        ]);
        assert_eq!(r[0], (p(1), vec![p(2), p(3)]));
        assert_eq!(r[1], (p(2), vec![p(1)]));
        assert_eq!(r[2], (p(3), vec![p(1)]));
        assert_eq!(r[3], (p(4), vec![p(1)]));
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
