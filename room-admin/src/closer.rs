//! Meetings that end by the clock: a background task closes them for everyone connected.
//!
//! Every [`INTERVAL`] the task calls [`close_due`] with the current time. Each meeting past its
//! planned end and not closed yet (still `scheduled`: not cancelled, not ended from the panel)
//! is marked `ended` at its planned end, the join directory is refreshed, the live source's
//! `close_meeting` (the same path as the panel's "end now") disconnects everyone in it, and the
//! audit log gets `meeting.ended_by_clock`. The database update is conditional, so a meeting is
//! closed once even if two calls race. The time is a parameter: tests drive it without sleeping.

use std::time::Duration;

use crate::api::AdminState;
use crate::db;
use crate::error::StoreError;
use crate::meetings;

/// How often the task looks for meetings to close.
pub const INTERVAL: Duration = Duration::from_secs(30);

/// What the connected participants read.
pub const ENDED_BY_CLOCK: &str = "Cuộc họp đã hết giờ theo lịch. / The meeting reached its \
                                  scheduled end.";

/// Audit actor of the task's actions (no account did them).
pub const ACTOR: &str = "server";

/// Closes every meeting whose planned end is at or before `now` and that is not closed yet.
/// Returns the ids it closed, in end order.
pub async fn close_due(state: &AdminState, now: i64) -> Result<Vec<String>, StoreError> {
    let mut closed = Vec::new();
    for m in meetings::due_to_close(state.db(), now).await? {
        if !meetings::close_by_clock(state.db(), &m.id, now).await? {
            continue;
        }
        state.meeting_changed(&m.id).await;
        let connected = state.close_meeting(&m.id, ENDED_BY_CLOCK);
        tracing::info!(meeting = %m.id, connected, "meeting ended by the clock");
        state
            .audit(
                ACTOR,
                "-",
                "meeting.ended_by_clock",
                &m.id,
                &format!("{} ({connected} connected)", m.title),
            )
            .await;
        closed.push(m.id);
    }
    Ok(closed)
}

/// Starts the task: [`close_due`] now, then every `every`. A failure is logged and retried at
/// the next tick. Abort the handle to stop it.
pub fn spawn(state: AdminState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = close_due(&state, db::unix_now()).await {
                tracing::error!("cannot close the meetings that reached their end: {e}");
            }
        }
    })
}
