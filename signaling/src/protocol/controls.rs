//! The meeting's controls as `room_state` shows them (floor, hands, roll call, the upstream
//! link), and who a chat message goes to.

use serde::{Deserialize, Serialize};

/// Where a linked meeting's program comes from (`room_state.upstream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamState {
    /// The upstream program reaches this server: it is the program.
    Live,
    /// The upstream is lost: the local chair is the program until it is back.
    Lost,
}

/// Who a chat message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatTarget {
    All,
    Chair,
}

/// The floor holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloorInfo {
    /// Point code of the holder.
    pub point: String,
    /// Its current participant id; absent while that point is disconnected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    /// When the floor was granted, Unix milliseconds.
    pub since: u64,
}

/// A raised hand, in queue order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandInfo {
    pub point: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    /// Optional short text (≤ 140 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Unix milliseconds.
    pub at: u64,
}

/// One roll-call answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollCallAnswer {
    pub point: String,
    /// Unix milliseconds.
    pub at: u64,
}

/// A roll call in progress (or the last one, once ended).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollCallInfo {
    pub started_at: u64,
    /// Unix milliseconds; absent while the roll call runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
    pub answers: Vec<RollCallAnswer>,
}
