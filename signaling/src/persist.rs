//! A meeting's controls across restarts: a snapshot of what the meeting decided (floor, raised
//! hands, open microphones, discussion, screen share, roll call and its answers) is handed to a
//! [`ControlsStore`] after every accepted change, and loaded again when the room is created at
//! its first join after a start.
//!
//! Saving happens with the room's lock held, so the store only queues (room-admin's writer
//! coalesces bursts and writes off the lock). At shutdown the [`Keeper`] is frozen before the
//! sessions are closed: the departures of a restart (each point's hand leaving the queue as its
//! session ends) are not decisions of the meeting and must not overwrite its last snapshot.
//! Who is speaking right now and the hand-raise rate limit are not kept: they are about the
//! connections, not the meeting.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::Inner;
use crate::auth::ControlsStore;
use crate::controls::{Controls, Floor, Hand, RollCall};

/// The snapshot's format; a stored snapshot of another version is ignored.
const SNAPSHOT_VERSION: u32 = 1;
/// A stored snapshot larger than this is not one of ours: ignored rather than parsed.
const MAX_SNAPSHOT_BYTES: usize = 1 << 20;

/// What is kept of [`Controls`].
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    v: u32,
    floor: Option<Floor>,
    hands: Vec<Hand>,
    unmuted: BTreeSet<String>,
    discussion: bool,
    share_allowed: bool,
    roll_call: Option<RollCall>,
    /// Absent in snapshots saved before `send_up` and `raise_hand_up` existed.
    #[serde(default)]
    sent_up: Option<String>,
    #[serde(default)]
    hand_up: Option<Hand>,
}

impl Snapshot {
    fn of(c: &Controls) -> Self {
        Self {
            v: SNAPSHOT_VERSION,
            floor: c.floor.clone(),
            hands: c.hands.clone(),
            unmuted: c.unmuted.clone(),
            discussion: c.discussion,
            share_allowed: c.share_allowed,
            roll_call: c.roll_call.clone(),
            sent_up: c.sent_up.clone(),
            hand_up: c.hand_up.clone(),
        }
    }

    fn into_controls(self) -> Controls {
        Controls {
            floor: self.floor,
            hands: self.hands,
            unmuted: self.unmuted,
            discussion: self.discussion,
            share_allowed: self.share_allowed,
            roll_call: self.roll_call,
            sent_up: self.sent_up,
            hand_up: self.hand_up,
            ..Controls::default()
        }
    }
}

/// Saves and loads controls through the configured store.
pub(crate) struct Keeper {
    store: Arc<dyn ControlsStore>,
    frozen: AtomicBool,
}

impl Keeper {
    pub fn new(store: Arc<dyn ControlsStore>) -> Self {
        Self {
            store,
            frozen: AtomicBool::new(false),
        }
    }

    /// Hands the store a snapshot of `controls`, unless frozen.
    pub fn save(&self, meeting: &str, controls: &Controls) {
        if self.frozen.load(Ordering::Acquire) {
            return;
        }
        match serde_json::to_string(&Snapshot::of(controls)) {
            Ok(text) => self.store.save(meeting, text),
            Err(e) => tracing::error!(%meeting, "controls not saved: {e}"),
        }
    }

    /// The controls last saved for `meeting`, if any (and its meeting has not ended).
    pub async fn load(&self, meeting: &str) -> Option<Controls> {
        let text = self.store.load(meeting).await?;
        let restored = parse(&text);
        match &restored {
            Some(c) => tracing::info!(
                %meeting,
                floor = ?c.floor.as_ref().map(|f| &f.point),
                hands = c.hands.len(),
                unmuted = c.unmuted.len(),
                "meeting controls restored"
            ),
            None => tracing::warn!(%meeting, "stored meeting controls ignored: not readable"),
        }
        restored
    }

    /// From now on nothing is saved (the server is shutting down).
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::Release);
    }
}

fn parse(text: &str) -> Option<Controls> {
    if text.len() > MAX_SNAPSHOT_BYTES {
        return None;
    }
    let snapshot: Snapshot = serde_json::from_str(text).ok()?;
    (snapshot.v == SNAPSHOT_VERSION).then(|| snapshot.into_controls())
}

/// The stored controls for a room about to be created for `meeting`; `None` when the room
/// exists already (its live controls win) or nothing was stored.
pub(crate) async fn restore(inner: &Inner, meeting: &str) -> Option<Controls> {
    if inner.rooms().contains_key(meeting) {
        return None;
    }
    inner.controls.load(meeting).await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::controls::{Action, Actor};
    use crate::protocol::Role;

    #[derive(Default)]
    struct MemoryStore(Mutex<HashMap<String, String>>);

    impl ControlsStore for MemoryStore {
        fn load<'a>(&'a self, meeting: &'a str) -> crate::auth::LoadFuture<'a> {
            let found = self.0.lock().unwrap().get(meeting).cloned();
            Box::pin(std::future::ready(found))
        }

        fn save(&self, meeting: &str, snapshot: String) {
            self.0.lock().unwrap().insert(meeting.to_owned(), snapshot);
        }
    }

    fn decided() -> Controls {
        let chair = Actor {
            point: "06",
            role: Role::Chair,
        };
        let point = |code| Actor {
            point: code,
            role: Role::Point,
        };
        let here: BTreeSet<String> = ["a", "b", "c"].iter().map(|p| p.to_string()).collect();
        let mut c = Controls::default();
        let mut act = |actor, action, at| c.apply(actor, action, &here, at).unwrap();
        act(chair, Action::Grant { point: "a".into() }, 1);
        act(
            point("b"),
            Action::RaiseHand {
                text: Some("xin phát biểu".into()),
            },
            2,
        );
        act(
            chair,
            Action::SetMute {
                point: Some("c".into()),
                muted: false,
            },
            3,
        );
        act(chair, Action::StartRollCall, 4);
        act(point("a"), Action::AnswerRollCall, 5);
        act(chair, Action::AllowShare(true), 6);
        c.speaking("a", true);
        c
    }

    #[tokio::test]
    async fn what_the_meeting_decided_comes_back_and_who_speaks_now_does_not() {
        let store = Arc::new(MemoryStore::default());
        let keeper = Keeper::new(store.clone());
        let before = decided();
        keeper.save("m", &before);
        let after = keeper.load("m").await.expect("restored");
        assert_eq!(after.floor, before.floor);
        assert_eq!(after.hands, before.hands);
        assert_eq!(after.unmuted, before.unmuted);
        assert_eq!(after.roll_call, before.roll_call);
        assert!(after.share_allowed && !after.discussion);
        assert!(after.speaking.is_empty() && after.recent_speakers.is_empty());
        assert!(keeper.load("other").await.is_none());
    }

    #[tokio::test]
    async fn a_frozen_keeper_saves_nothing() {
        let store = Arc::new(MemoryStore::default());
        let keeper = Keeper::new(store.clone());
        let mut c = decided();
        keeper.save("m", &c);
        keeper.freeze();
        c.left("b");
        keeper.save("m", &c);
        let after = keeper.load("m").await.unwrap();
        assert_eq!(after.hands.len(), 1, "the hand raised before the shutdown");
    }

    #[tokio::test]
    async fn unreadable_or_foreign_snapshots_are_ignored() {
        let store = Arc::new(MemoryStore::default());
        let keeper = Keeper::new(store.clone());
        for text in [
            "not json".to_owned(),
            r#"{"v":99,"floor":null,"hands":[],"unmuted":[],"discussion":false,"share_allowed":false,"roll_call":null}"#.to_owned(),
            format!("\"{}\"", "x".repeat(MAX_SNAPSHOT_BYTES)),
        ] {
            store.save("m", text);
            assert!(keeper.load("m").await.is_none());
        }
    }
}
