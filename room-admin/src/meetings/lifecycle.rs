//! A meeting's lifecycle: its state at a time (a pure function of the stored status and
//! times), and the changes of status staff, the chair and the clock make.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Meeting, get};
use crate::db::Db;
use crate::error::StoreError;

/// The state of a meeting at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MeetingState {
    /// Before its join window.
    Scheduled,
    /// Joins allowed; not started yet.
    Open,
    /// Started, not ended.
    Live,
    Ended,
    Cancelled,
}

impl MeetingState {
    pub fn joinable(self) -> bool {
        matches!(self, MeetingState::Open | MeetingState::Live)
    }
}

/// The meeting's state at `now` (Unix seconds).
pub fn state_at(
    status: &str,
    starts_at: i64,
    ends_at: i64,
    open_minutes: i64,
    now: i64,
) -> MeetingState {
    match status {
        "cancelled" => MeetingState::Cancelled,
        "ended" => MeetingState::Ended,
        _ if now >= ends_at => MeetingState::Ended,
        _ if now >= starts_at => MeetingState::Live,
        _ if now >= starts_at - open_minutes * 60 => MeetingState::Open,
        _ => MeetingState::Scheduled,
    }
}

impl Meeting {
    pub fn state(&self, now: i64) -> MeetingState {
        state_at(
            &self.status,
            self.starts_at,
            self.effective_end(),
            self.open_minutes,
            now,
        )
    }

    /// When joins open: `open_minutes` before the start.
    pub fn opens_at(&self) -> i64 {
        self.starts_at - self.open_minutes * 60
    }

    /// When joins stop: the planned end, or when staff ended it.
    pub fn effective_end(&self) -> i64 {
        self.ended_at.map_or(self.ends_at, |e| e.min(self.ends_at))
    }
}

pub(crate) fn ensure_editable(m: &Meeting, now: i64) -> Result<(), StoreError> {
    match m.state(now) {
        MeetingState::Cancelled => Err(StoreError::conflict(
            "Cuộc họp đã bị hủy. / The meeting was cancelled.",
        )),
        MeetingState::Ended => Err(StoreError::conflict(
            "Cuộc họp đã kết thúc. / The meeting has ended.",
        )),
        _ => Ok(()),
    }
}

pub async fn cancel(db: &Db, id: &str, now: i64) -> Result<Meeting, StoreError> {
    let m = get(db, id).await?;
    ensure_editable(&m, now)?;
    set_status(db, id, "cancelled", None, now).await
}

/// Who ended a meeting, as stored in `ended_by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndedBy<'a> {
    /// The chair point, from its page.
    Chair(&'a str),
    /// A member of staff, from the panel.
    Staff(&'a str),
    /// The planned end passed.
    Schedule,
}

impl EndedBy<'_> {
    pub fn stored(&self) -> String {
        match self {
            EndedBy::Chair(point) => format!("chair:{point}"),
            EndedBy::Staff(user) => format!("staff:{user}"),
            EndedBy::Schedule => "schedule".to_owned(),
        }
    }
}

/// Ends a meeting now: joins stop and the links expire.
pub async fn end(db: &Db, id: &str, now: i64) -> Result<Meeting, StoreError> {
    let m = get(db, id).await?;
    ensure_editable(&m, now)?;
    set_status(db, id, "ended", Some(now), now).await
}

/// [`end`], recording who did it.
pub async fn end_by(db: &Db, id: &str, by: EndedBy<'_>, now: i64) -> Result<Meeting, StoreError> {
    end(db, id, now).await?;
    record_ended_by(db, id, &by).await?;
    get(db, id).await
}

/// The chair ended a meeting at `at`. Whether this call recorded it: `false` when the meeting
/// had already ended, was cancelled, or is not stored (the test room).
pub async fn end_by_chair(db: &Db, id: &str, point: &str, at: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        // CASE, not SQLite's two-argument MIN: the same SQL must run on PostgreSQL (LEAST).
        "UPDATE meetings SET status = 'ended', \
         ended_at = CASE WHEN $1 < ends_at THEN $1 ELSE ends_at END, ended_by = $2, \
         updated_at = $1 WHERE id = $3 AND status = 'scheduled'",
    )
    .bind(at)
    .bind(EndedBy::Chair(point).stored())
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn record_ended_by(db: &Db, id: &str, by: &EndedBy<'_>) -> Result<(), StoreError> {
    sqlx::query("UPDATE meetings SET ended_by = $1 WHERE id = $2")
        .bind(by.stored())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The chair extended a meeting: its planned end becomes `ends_at` (never earlier than it is).
/// Whether it was recorded: `false` when the meeting has ended or was cancelled since.
pub async fn extend_to(db: &Db, id: &str, ends_at: i64, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        // CASE, not SQLite's two-argument MAX (PostgreSQL has GREATEST instead).
        "UPDATE meetings SET ends_at = CASE WHEN $1 > ends_at THEN $1 ELSE ends_at END, \
         updated_at = $2 WHERE id = $3 AND status = 'scheduled'",
    )
    .bind(ends_at)
    .bind(now)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Meetings still `scheduled` whose planned end is after `now` and at most `within` seconds
/// later: the ones whose chair is warned.
pub async fn ending_within(db: &Db, now: i64, within: i64) -> Result<Vec<Meeting>, StoreError> {
    Ok(sqlx::query_as::<_, Meeting>(
        "SELECT * FROM meetings WHERE status = 'scheduled' AND ends_at > $1 AND ends_at <= $2 \
         ORDER BY ends_at, id",
    )
    .bind(now)
    .bind(now.saturating_add(within))
    .fetch_all(db.pool())
    .await?)
}

/// Meetings past their planned end (at `now`) that nothing closed yet: still `scheduled`.
pub async fn due_to_close(db: &Db, now: i64) -> Result<Vec<Meeting>, StoreError> {
    Ok(sqlx::query_as::<_, Meeting>(
        "SELECT * FROM meetings WHERE status = 'scheduled' AND ends_at <= $1 \
         ORDER BY ends_at, id",
    )
    .bind(now)
    .fetch_all(db.pool())
    .await?)
}

/// Marks a meeting that reached its planned end as `ended` (at that end). Whether this call
/// did it: `false` when it was already ended, cancelled, or not due, so that two callers never
/// both close the same meeting.
pub async fn close_by_clock(db: &Db, id: &str, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE meetings SET status = 'ended', ended_at = ends_at, ended_by = 'schedule', \
         updated_at = $1 WHERE id = $2 AND status = 'scheduled' AND ends_at <= $1",
    )
    .bind(now)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn set_status(
    db: &Db,
    id: &str,
    status: &str,
    ended_at: Option<i64>,
    now: i64,
) -> Result<Meeting, StoreError> {
    sqlx::query("UPDATE meetings SET status = $1, ended_at = $2, updated_at = $3 WHERE id = $4")
        .bind(status)
        .bind(ended_at)
        .bind(now)
        .bind(id)
        .execute(db.pool())
        .await?;
    get(db, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_follows_the_clock_and_the_status() {
        let (s, e) = (10_000, 20_000);
        let at = |status, now| state_at(status, s, e, 30, now);
        assert_eq!(at("scheduled", s - 30 * 60 - 1), MeetingState::Scheduled);
        assert_eq!(at("scheduled", s - 30 * 60), MeetingState::Open);
        assert_eq!(at("scheduled", s - 1), MeetingState::Open);
        assert_eq!(at("scheduled", s), MeetingState::Live);
        assert_eq!(at("scheduled", e - 1), MeetingState::Live);
        assert_eq!(at("scheduled", e), MeetingState::Ended);
        assert_eq!(at("cancelled", s), MeetingState::Cancelled);
        assert_eq!(at("ended", s), MeetingState::Ended);
        assert!(MeetingState::Open.joinable() && MeetingState::Live.joinable());
        assert!(!MeetingState::Scheduled.joinable() && !MeetingState::Ended.joinable());
    }
}
