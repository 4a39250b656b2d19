//! Session resume: a blip of a point's line is not a new participant.
//!
//! Every `joined` carries a resume token (`<participant>.<secret>`, a fresh 128-bit secret each
//! time). When a joined session's socket is lost without a goodbye, the seat is **parked**
//! instead of left: it stays in the room (nobody is told `participant_left`), its media plane
//! connections stay, its queues keep filling. A new socket that sends `join` with the same join
//! token and `resume` within the grace period takes the parked seat over: same participant id,
//! floor and microphone kept, no roster churn for the others. Only when the grace passes is
//! the seat left and the departure announced.
//!
//! The token is bound to its participant and, through the join token that must come with it, to
//! the meeting and the point: a token of another meeting or point, an old token, or one after
//! the grace is refused, and the join goes on as a fresh one (with the usual replacement of
//! the old seat). When a client comes back before the server noticed that its old socket died
//! (a half-open TCP connection), the old session is told to park at once and hand the seat over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use sfu::ParticipantId;
use tokio::sync::Notify;

use super::{Inbox, Joined};

/// How long a lost session's seat waits for its client by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(15);
/// How long a resuming client waits for its old session to let go of the seat.
const TAKEOVER_WAIT: Duration = Duration::from_secs(2);
/// A `resume` longer than this is not one of ours.
pub(crate) const MAX_RESUME_LEN: usize = 64;

struct Slot {
    meeting: String,
    point: String,
    secret: String,
    /// Rung to make the live session of this seat park now (a newer socket resumes it).
    takeover: Arc<Notify>,
    /// Rung when the seat is parked.
    parked_signal: Arc<Notify>,
    parked: Option<(Joined, Inbox)>,
}

/// Resume tokens and parked seats of one signaling service.
pub(crate) struct Resumes {
    slots: Mutex<HashMap<ParticipantId, Slot>>,
    pub grace: Duration,
}

/// What a joined session keeps to be told to let go of its seat.
pub(crate) struct Handle {
    pub takeover: Arc<Notify>,
}

impl Resumes {
    pub fn new(grace: Duration) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            grace,
        }
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<ParticipantId, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new resume token for a seat that just joined or resumed (an older one stops working).
    pub fn issue(&self, id: ParticipantId, meeting: &str, point: &str) -> (String, Handle) {
        let secret =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        let takeover = Arc::new(Notify::new());
        self.slots().insert(
            id,
            Slot {
                meeting: meeting.to_owned(),
                point: point.to_owned(),
                secret: secret.clone(),
                takeover: takeover.clone(),
                parked_signal: Arc::new(Notify::new()),
                parked: None,
            },
        );
        (format!("{id}.{secret}"), Handle { takeover })
    }

    /// Parks a lost session's seat; gives it back when the seat has no resume slot (leave it
    /// now).
    pub(super) fn park(&self, joined: Joined, inbox: Inbox) -> Option<(Joined, Inbox)> {
        let mut slots = self.slots();
        match slots.get_mut(&joined.id) {
            Some(slot) if slot.parked.is_none() => {
                slot.parked_signal.notify_one();
                slot.parked = Some((joined, inbox));
                None
            }
            _ => Some((joined, inbox)),
        }
    }

    /// The parked seat of `id`, once its grace is over (to be left); `None` when it was resumed.
    pub(super) fn expire(&self, id: ParticipantId) -> Option<(Joined, Inbox)> {
        let mut slots = self.slots();
        if slots.get(&id).is_some_and(|s| s.parked.is_some()) {
            return slots.remove(&id).and_then(|s| s.parked);
        }
        None
    }

    /// The seat is gone for good: its token stops working.
    pub fn forget(&self, id: ParticipantId) {
        self.slots().remove(&id);
    }

    /// Takes over the seat named by `token` for a client that joined `meeting` as `point`, if
    /// the token is its current one and the seat is parked (or parks within a short wait).
    pub(super) async fn claim(
        &self,
        token: &str,
        meeting: &str,
        point: &str,
    ) -> Option<(Joined, Inbox)> {
        if token.len() > MAX_RESUME_LEN {
            return None;
        }
        let (id, secret) = token.split_once('.')?;
        let id = ParticipantId(id.strip_prefix('p')?.parse().ok()?);
        let parked_signal = {
            let mut slots = self.slots();
            let slot = slots.get_mut(&id)?;
            if slot.meeting != meeting
                || slot.point != point
                || !same(slot.secret.as_bytes(), secret.as_bytes())
            {
                return None;
            }
            if let Some(seat) = slot.parked.take() {
                return Some(seat);
            }
            // Still attached to a socket the server has not seen die: ask it to let go.
            slot.takeover.notify_one();
            slot.parked_signal.clone()
        };
        if tokio::time::timeout(TAKEOVER_WAIT, parked_signal.notified())
            .await
            .is_err()
        {
            tracing::debug!(participant = %id, "resume: the old session did not let go in time");
        }
        self.slots().get_mut(&id)?.parked.take()
    }
}

/// Compares secrets in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
