//! Recent chat, replayed to whoever joins.

use super::Room;
use crate::protocol::{Role, ServerMessage};

/// Chat messages kept for replay.
pub const CHAT_HISTORY: usize = 50;

impl Room {
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
}
