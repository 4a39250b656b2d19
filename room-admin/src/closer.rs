//! Meetings that end by the clock: a background task warns their chair, then closes them for
//! everyone connected.
//!
//! Every [`INTERVAL`] the task calls [`warn_due`] and [`close_due`] with the current time.
//! [`warn_due`] tells the chair of each meeting ending within [`WARN_MINUTES`] minutes (10, then
//! 2) that it is about to end (`meeting_ending`; the chair may extend it by 15 or 30 minutes).
//! [`close_due`] marks each meeting past its planned end and not closed yet (still `scheduled`:
//! not cancelled, not ended from the panel or by the chair) `ended` at its planned end,
//! refreshes the join directory, disconnects everyone in it with the `bye` code
//! `schedule_ended` ("Cuộc họp đã hết giờ theo lịch", not the chair's doing), and writes
//! `meeting.ended_by_clock` in the audit log. The database update is conditional, so a meeting
//! is closed once even if two calls race. The time is a parameter: tests drive it without
//! sleeping.

use std::collections::HashSet;
use std::time::Duration;

use crate::api::AdminState;
use crate::db;
use crate::error::StoreError;
use crate::meetings;

/// How often the task looks for meetings to warn about and to close: a warning or an end is
/// at most this late.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// The chair is warned this many minutes before the planned end.
pub const WARN_MINUTES: [i64; 2] = [10, 2];

/// Warnings already given: (meeting, planned end, minutes). An extension moves the end, so the
/// warnings come again before the new end.
#[derive(Debug, Default)]
pub struct Warned(HashSet<(String, i64, i64)>);

/// Warns the chair of every meeting whose planned end is [`WARN_MINUTES`] away or less, once per
/// threshold and planned end. Returns (meeting, minutes left) of each warning given.
pub async fn warn_due(
    state: &AdminState,
    now: i64,
    warned: &mut Warned,
) -> Result<Vec<(String, u32)>, StoreError> {
    let mut given = Vec::new();
    let widest = WARN_MINUTES.iter().max().copied().unwrap_or(0) * 60;
    let ending = meetings::ending_within(state.db(), now, widest).await?;
    // Forget the warnings of meetings no longer about to end (ended, extended, cancelled).
    warned
        .0
        .retain(|(id, end, _)| ending.iter().any(|m| &m.id == id && m.ends_at == *end));
    for m in ending {
        let left = m.ends_at - now;
        // The smallest threshold reached is the one to say; the larger ones are then moot.
        let Some(threshold) = WARN_MINUTES
            .iter()
            .copied()
            .filter(|t| left <= t * 60)
            .min()
        else {
            continue;
        };
        if !warned.0.insert((m.id.clone(), m.ends_at, threshold)) {
            continue;
        }
        for t in WARN_MINUTES.iter().filter(|t| **t > threshold) {
            warned.0.insert((m.id.clone(), m.ends_at, *t));
        }
        let minutes_left = u32::try_from((left + 59) / 60).unwrap_or(u32::MAX);
        let chairs = state.warn_end(&m.id, m.ends_at, minutes_left);
        tracing::info!(meeting = %m.id, minutes_left, chairs, "chair warned of the planned end");
        given.push((m.id, minutes_left));
    }
    Ok(given)
}

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
        let connected = state.end_by_schedule(&m.id, ENDED_BY_CLOCK);
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

/// Starts the task: [`warn_due`] and [`close_due`] now, then every `every`. A failure is
/// logged and retried at the next tick. Abort the handle to stop it.
pub fn spawn(state: AdminState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned = Warned::default();
        loop {
            tick.tick().await;
            if let Err(e) = warn_due(&state, db::unix_now(), &mut warned).await {
                tracing::error!("cannot warn the chairs of meetings about to end: {e}");
            }
            if let Err(e) = close_due(&state, db::unix_now()).await {
                tracing::error!("cannot close the meetings that reached their end: {e}");
            }
        }
    })
}
