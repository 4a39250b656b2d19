//! [`AttendanceRecorder`], the signaling layer's `RoomObserver`: each event is stamped with
//! the time it happened and queued for the writer, never waited on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use signaling::auth::{Grant, LinkSummary, RoomObserver};
use tokio::sync::{mpsc, oneshot};

use super::writer::{Event, write_loop};
use crate::db::{self, Db};
use crate::error::StoreError;

/// Events waiting for the writer.
pub const QUEUE: usize = 4096;

/// The `RoomObserver` that records attendance.
pub struct AttendanceRecorder {
    tx: mpsc::Sender<Event>,
    dropped: AtomicU64,
}

impl AttendanceRecorder {
    /// Starts the writer task on the current runtime. Sessions left open by a previous run (the
    /// process was killed) are closed first, at the time of this start.
    pub async fn start(db: Db) -> Result<Arc<AttendanceRecorder>, StoreError> {
        let now = db::unix_now();
        sqlx::query(
            "UPDATE attendance SET left_at = $1, seconds = $1 - joined_at WHERE left_at IS NULL",
        )
        .bind(now)
        .execute(db.pool())
        .await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(db, rx));
        Ok(Arc::new(AttendanceRecorder {
            tx,
            dropped: AtomicU64::new(0),
        }))
    }

    fn send(&self, event: Event) {
        if self.tx.try_send(event).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                dropped = n,
                "attendance queue full or closed: event not recorded"
            );
        }
    }

    /// Waits until every event recorded before this call is in the database (tests, shutdown).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Event::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Unix milliseconds from signaling, as stored.
fn ms(at: u64) -> i64 {
    i64::try_from(at).unwrap_or(i64::MAX)
}

impl RoomObserver for AttendanceRecorder {
    fn joined(&self, grant: &Grant, participant: &str) {
        self.send(Event::Joined {
            grant: grant.clone(),
            participant: participant.to_owned(),
            at: db::unix_now(),
        });
    }

    fn left(&self, grant: &Grant, participant: &str, seconds: f64) {
        self.send(Event::Left {
            meeting: grant.meeting_id.clone(),
            participant: participant.to_owned(),
            at: db::unix_now(),
            seconds,
        });
    }

    fn link_summary(&self, grant: &Grant, participant: &str, link: &LinkSummary) {
        self.send(Event::Link {
            meeting: grant.meeting_id.clone(),
            participant: participant.to_owned(),
            link: *link,
        });
    }

    fn roll_call_answer(&self, meeting: &str, point: &str, at: u64) {
        self.send(Event::RollCall {
            meeting: meeting.to_owned(),
            seat: point.to_owned(),
            at_ms: ms(at),
        });
    }

    fn chat(&self, meeting: &str, point: &str, to_chair: bool, text: &str, at: u64) {
        self.send(Event::Chat {
            meeting: meeting.to_owned(),
            seat: point.to_owned(),
            to_chair,
            text: text.to_owned(),
            at_ms: ms(at),
        });
    }

    fn control(&self, meeting: &str, actor_point: &str, action: &str, target: Option<&str>) {
        self.send(Event::Control {
            meeting: meeting.to_owned(),
            actor: actor_point.to_owned(),
            action: action.to_owned(),
            target: target.map(str::to_owned),
            at: db::unix_now(),
        });
    }

    fn meeting_extended(&self, meeting: &str, by_point: &str, minutes: u32, ends_at: u64) {
        self.send(Event::Extended {
            meeting: meeting.to_owned(),
            by: by_point.to_owned(),
            minutes,
            ends_at: i64::try_from(ends_at).unwrap_or(i64::MAX),
            at: db::unix_now(),
        });
    }

    fn meeting_ended(&self, meeting: &str, by_point: &str) {
        self.send(Event::Ended {
            meeting: meeting.to_owned(),
            by: by_point.to_owned(),
            at: db::unix_now(),
        });
    }
}
