//! A meeting's controls kept on disk, so that a restart of the server resumes the meeting as it
//! was: the signaling layer's `ControlsStore` on the `room_controls` table.
//!
//! The signaling layer saves with a room's lock held, after every accepted change: a save only
//! replaces the meeting's pending snapshot in memory and wakes the writer task, which writes the
//! newest snapshot of each meeting (a burst of ten changes is one write). Memory stays bounded
//! by the number of meetings with a change not yet written. A load sees a pending snapshot
//! before the stored one, so a room that empties and fills again between two writes finds its
//! latest state. A snapshot never outlives its meeting: loading one of a meeting that has ended
//! (or was cancelled) deletes it, and so does every start for all such meetings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use signaling::auth::{ControlsStore, LoadFuture};
use tokio::sync::Notify;

use crate::db::{self, Db};
use crate::error::StoreError;
use crate::meetings::{self, MeetingState};

/// The `ControlsStore` on SQLite.
pub struct ControlsRecorder {
    db: Db,
    /// Meeting id → newest snapshot not yet written.
    pending: Mutex<HashMap<String, String>>,
    wake: Notify,
    /// Held while a batch is written: writes stay in order, and `flush` waits for one in flight.
    writing: tokio::sync::Mutex<()>,
}

impl ControlsRecorder {
    /// Deletes the snapshots of meetings that have ended, then starts the writer task on the
    /// current runtime.
    pub async fn start(db: Db) -> Result<Arc<ControlsRecorder>, StoreError> {
        let now = db::unix_now();
        sqlx::query(
            "DELETE FROM room_controls WHERE meeting_id IN (SELECT id FROM meetings \
             WHERE status <> 'scheduled' OR ends_at <= $1 OR ended_at IS NOT NULL)",
        )
        .bind(now)
        .execute(db.pool())
        .await?;
        let recorder = Arc::new(ControlsRecorder {
            db,
            pending: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            writing: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(write_loop(recorder.clone()));
        Ok(recorder)
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<String, String>> {
        // Plain inserts and removals: the map is whole even after a panic elsewhere.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes every snapshot saved before this call (tests, shutdown).
    pub async fn flush(&self) {
        self.write_pending().await;
    }

    async fn write_pending(&self) {
        let _order = self.writing.lock().await;
        let batch = std::mem::take(&mut *self.pending());
        for (meeting, snapshot) in batch {
            if let Err(e) = self.write(&meeting, &snapshot).await {
                tracing::error!(%meeting, "cannot save the meeting's controls: {e}");
            }
        }
    }

    async fn write(&self, meeting: &str, snapshot: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO room_controls (meeting_id, snapshot, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (meeting_id) DO UPDATE SET snapshot = excluded.snapshot, \
             updated_at = excluded.updated_at",
        )
        .bind(meeting)
        .bind(snapshot)
        .bind(db::unix_now())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    async fn stored(&self, meeting: &str) -> Result<Option<String>, StoreError> {
        if ended(&self.db, meeting).await? {
            self.pending().remove(meeting);
            sqlx::query("DELETE FROM room_controls WHERE meeting_id = $1")
                .bind(meeting)
                .execute(self.db.pool())
                .await?;
            return Ok(None);
        }
        if let Some(snapshot) = self.pending().get(meeting) {
            return Ok(Some(snapshot.clone()));
        }
        let row: Option<(String,)> =
            sqlx::query_as("SELECT snapshot FROM room_controls WHERE meeting_id = $1")
                .bind(meeting)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(row.map(|(s,)| s))
    }
}

/// Whether `meeting` is a stored meeting that is over (ended, by the chair, staff or the clock,
/// or cancelled). The test room is not stored: never over.
async fn ended(db: &Db, meeting: &str) -> Result<bool, StoreError> {
    Ok(meetings::find(db, meeting).await?.is_some_and(|m| {
        matches!(
            m.state(db::unix_now()),
            MeetingState::Ended | MeetingState::Cancelled
        )
    }))
}

/// Writes pending snapshots whenever woken, for as long as the process runs.
async fn write_loop(recorder: Arc<ControlsRecorder>) {
    loop {
        // Armed before the map is looked at: a save made after the check still wakes it.
        let woken = recorder.wake.notified();
        if recorder.pending().is_empty() {
            woken.await;
        } else {
            recorder.write_pending().await;
        }
    }
}

impl ControlsStore for ControlsRecorder {
    fn load<'a>(&'a self, meeting: &'a str) -> LoadFuture<'a> {
        Box::pin(async move {
            match self.stored(meeting).await {
                Ok(s) => s,
                Err(e) => {
                    // The meeting goes on with fresh controls rather than not at all.
                    tracing::error!(%meeting, "cannot read the meeting's saved controls: {e}");
                    None
                }
            }
        })
    }

    fn save(&self, meeting: &str, snapshot: String) {
        self.pending().insert(meeting.to_owned(), snapshot);
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meetings::MeetingInput;
    use crate::points::{self, PointInput};
    use crate::timefmt;

    async fn meeting(db: &Db) -> String {
        let now = db::unix_now();
        for (code, kind) in [("06", "province_hall"), ("a", "commune")] {
            let input = PointInput {
                code: code.into(),
                name: format!("Điểm {code}"),
                kind: kind.into(),
                ..Default::default()
            };
            points::create(db, &input, now).await.unwrap();
        }
        let input = MeetingInput {
            title: "Họp".into(),
            starts_at: timefmt::utc_rfc3339(now + 60),
            ends_at: timefmt::utc_rfc3339(now + 3600),
            chair_point: "06".into(),
            points: vec!["a".into()],
            ..Default::default()
        };
        meetings::create(db, &input, "admin", now).await.unwrap().id
    }

    async fn open(dir: &std::path::Path) -> Db {
        Db::open_in(dir).await.unwrap()
    }

    #[tokio::test]
    async fn the_last_snapshot_of_a_burst_is_written_and_read_back_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path()).await;
        let id = meeting(&db).await;
        let store = ControlsRecorder::start(db.clone()).await.unwrap();
        for i in 0..100 {
            store.save(&id, format!("{{\"n\":{i}}}"));
        }
        store.flush().await;
        drop(store);
        db.close().await;

        let db = open(dir.path()).await;
        let store = ControlsRecorder::start(db.clone()).await.unwrap();
        assert_eq!(store.load(&id).await.as_deref(), Some("{\"n\":99}"));
        let rows: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM room_controls")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(rows.0, 1);
    }

    #[tokio::test]
    async fn the_writer_task_writes_without_being_asked() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path()).await;
        let store = ControlsRecorder::start(db.clone()).await.unwrap();
        store.save("test-room", "{}".into());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let row: Option<(String,)> =
                sqlx::query_as("SELECT snapshot FROM room_controls WHERE meeting_id = 'test-room'")
                    .fetch_optional(db.pool())
                    .await
                    .unwrap();
            if row.is_some() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never written");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Not stored as a meeting: never over.
        assert_eq!(store.load("test-room").await.as_deref(), Some("{}"));
    }

    #[tokio::test]
    async fn a_pending_snapshot_is_seen_before_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path()).await;
        let store = ControlsRecorder::start(db).await.unwrap();
        let _order = store.writing.lock().await; // the writer cannot write meanwhile
        store.save("m", "{\"new\":1}".into());
        assert_eq!(store.load("m").await.as_deref(), Some("{\"new\":1}"));
    }

    #[tokio::test]
    async fn a_snapshot_does_not_outlive_its_meeting() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path()).await;
        let ended_now = meeting(&db).await;
        let ended_before_start = {
            let input = MeetingInput {
                title: "Họp 2".into(),
                starts_at: timefmt::utc_rfc3339(db::unix_now() + 60),
                ends_at: timefmt::utc_rfc3339(db::unix_now() + 3600),
                chair_point: "06".into(),
                ..Default::default()
            };
            meetings::create(&db, &input, "admin", db::unix_now())
                .await
                .unwrap()
                .id
        };
        let store = ControlsRecorder::start(db.clone()).await.unwrap();
        store.save(&ended_now, "{}".into());
        store.save(&ended_before_start, "{}".into());
        store.flush().await;

        meetings::end(&db, &ended_now, db::unix_now())
            .await
            .unwrap();
        assert_eq!(store.load(&ended_now).await, None);
        let left: Option<(String,)> =
            sqlx::query_as("SELECT meeting_id FROM room_controls WHERE meeting_id = $1")
                .bind(&ended_now)
                .fetch_optional(db.pool())
                .await
                .unwrap();
        assert!(left.is_none(), "deleted, not only hidden");

        // Ended while the server was down: gone at the next start.
        meetings::end(&db, &ended_before_start, db::unix_now())
            .await
            .unwrap();
        drop(store);
        ControlsRecorder::start(db.clone()).await.unwrap();
        let rows: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM room_controls")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(rows.0, 0);
    }
}
