//! The room's side of the controls: applying an action against the points connected now,
//! saving the result, and the messages that tell the clients.

use std::sync::Arc;

use super::Room;
use crate::controls::{Action, Actor, Change, ControlError, Controls};
use crate::persist::Keeper;
use crate::protocol::{PROTOCOL_VERSION, ServerMessage};

impl Room {
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

    pub(super) fn save_controls(&self) {
        if let Some(k) = &self.keeper {
            k.save(&self.id, &self.controls);
        }
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
}
