//! A meeting's live state: who is connected, in which role, and who receives whom.
//!
//! Plain data behind the registry's mutex, changed only by short synchronous calls (no await
//! while held); every change returns what to tell whom, and the routing is a pure function of
//! the roster, so the tests need neither sockets nor tasks.
//!
//! # Layout
//! - `roster`: who is connected (admitting, replacing, removing) and sending to them.
//! - `controls`: the room's side of the [`Controls`]: applying, saving and telling them.
//! - `chat`: recent chat kept for replay.
//! - `routing`: who receives whom, a pure function of the roster and the controls.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sfu::ParticipantId;

use crate::controls::Controls;
use crate::persist::Keeper;
use crate::protocol::{ServerMessage, UpstreamState};

mod chat;
mod controls;
mod roster;
mod routing;

pub use chat::CHAT_HISTORY;
pub use roster::JoinRefused;
pub(crate) use roster::Member;
pub use routing::{DEFAULT_THUMBNAILS, routing};

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
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod upstream_tests;
