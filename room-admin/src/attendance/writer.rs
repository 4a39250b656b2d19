//! The events the recorder queues, and the one task that writes them to the database in
//! order.

use signaling::auth::{Grant, LinkSummary};
use tokio::sync::{mpsc, oneshot};

use crate::db::Db;
use crate::meetings;

/// One thing that happened in a room, stamped when it happened, waiting for the writer.
#[derive(Debug)]
pub(super) enum Event {
    Joined {
        grant: Grant,
        participant: String,
        at: i64,
    },
    Left {
        meeting: String,
        participant: String,
        at: i64,
        seconds: f64,
    },
    Link {
        meeting: String,
        participant: String,
        link: LinkSummary,
    },
    RollCall {
        meeting: String,
        seat: String,
        at_ms: i64,
    },
    Chat {
        meeting: String,
        seat: String,
        to_chair: bool,
        text: String,
        at_ms: i64,
    },
    Control {
        meeting: String,
        actor: String,
        action: String,
        target: Option<String>,
        at: i64,
    },
    /// The chair ended the meeting.
    Ended {
        meeting: String,
        by: String,
        at: i64,
    },
    /// The chair extended the meeting.
    Extended {
        meeting: String,
        by: String,
        minutes: u32,
        ends_at: i64,
        at: i64,
    },
    /// Answered once every event queued before it is written.
    Flush(oneshot::Sender<()>),
}

pub(super) async fn write_loop(db: Db, mut rx: mpsc::Receiver<Event>) {
    while let Some(event) = rx.recv().await {
        if let Err(e) = write(&db, event).await {
            tracing::error!("cannot record attendance: {e}");
        }
    }
}

/// Audit entries of room actions name the point as the actor and have no client address (the
/// action came over the point's WebSocket, not from the panel).
pub const ROOM_ACTION_PREFIX: &str = "room.";

async fn write(db: &Db, event: Event) -> Result<(), sqlx::Error> {
    match event {
        Event::Joined {
            grant,
            participant,
            at,
        } => write_join(db, grant, participant, at).await?,
        Event::Left {
            meeting,
            participant,
            at,
            seconds,
        } => write_leave(db, meeting, participant, at, seconds).await?,
        Event::Link {
            meeting,
            participant,
            link,
        } => write_link(db, meeting, participant, link).await?,
        Event::RollCall {
            meeting,
            seat,
            at_ms,
        } => write_roll_call(db, meeting, seat, at_ms).await?,
        Event::Chat {
            meeting,
            seat,
            to_chair,
            text,
            at_ms,
        } => write_chat(db, meeting, seat, to_chair, text, at_ms).await?,
        Event::Control {
            meeting,
            actor,
            action,
            target,
            at,
        } => write_control(db, meeting, actor, action, target, at).await?,
        Event::Ended { meeting, by, at } => {
            // The test room is not stored; an already ended meeting keeps its first end.
            if let Err(e) = meetings::end_by_chair(db, &meeting, &by, at).await {
                tracing::error!(meeting, "cannot record the chair's end of the meeting: {e}");
            }
        }
        Event::Extended {
            meeting,
            by,
            minutes,
            ends_at,
            at,
        } => write_extension(db, meeting, by, minutes, ends_at, at).await?,
        Event::Flush(done) => {
            let _ = done.send(());
        }
    }
    Ok(())
}

async fn write_join(
    db: &Db,
    grant: Grant,
    participant: String,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO attendance (meeting_id, seat, name, role, participant, joined_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&grant.meeting_id)
    .bind(&grant.point)
    .bind(&grant.name)
    .bind(crate::links::role_str(grant.role))
    .bind(participant)
    .bind(at)
    .execute(db.pool())
    .await?;
    Ok(())
}

async fn write_leave(
    db: &Db,
    meeting: String,
    participant: String,
    at: i64,
    seconds: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE attendance SET left_at = $1, seconds = $2 \
         WHERE meeting_id = $3 AND participant = $4 AND left_at IS NULL",
    )
    .bind(at)
    .bind(seconds)
    .bind(meeting)
    .bind(participant)
    .execute(db.pool())
    .await?;
    Ok(())
}

async fn write_link(
    db: &Db,
    meeting: String,
    participant: String,
    link: LinkSummary,
) -> Result<(), sqlx::Error> {
    // Participant ids are unique per process; the newest row is this connection's.
    sqlx::query(
        "UPDATE attendance SET link_samples = $1, rtt_ms_mean = $2, loss_mean = $3, \
         loss_max = $4 WHERE id = (SELECT MAX(id) FROM attendance \
         WHERE meeting_id = $5 AND participant = $6)",
    )
    .bind(i64::from(link.samples))
    .bind(link.rtt_ms_mean.filter(|v| v.is_finite()))
    .bind(finite(link.loss_mean))
    .bind(finite(link.loss_max))
    .bind(meeting)
    .bind(participant)
    .execute(db.pool())
    .await?;
    Ok(())
}

async fn write_roll_call(
    db: &Db,
    meeting: String,
    seat: String,
    at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO roll_call_answers (meeting_id, seat, answered_ms) VALUES ($1, $2, $3)",
    )
    .bind(meeting)
    .bind(seat)
    .bind(at_ms)
    .execute(db.pool())
    .await?;
    Ok(())
}

async fn write_chat(
    db: &Db,
    meeting: String,
    seat: String,
    to_chair: bool,
    text: String,
    at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chat_messages (meeting_id, seat, to_chair, text, sent_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(meeting)
    .bind(seat)
    .bind(to_chair)
    .bind(text)
    .bind(at_ms)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A room action, into the audit log (see [`ROOM_ACTION_PREFIX`]).
async fn write_control(
    db: &Db,
    meeting: String,
    actor: String,
    action: String,
    target: Option<String>,
    at: i64,
) -> Result<(), sqlx::Error> {
    let detail = target.map(|t| format!("point {t}")).unwrap_or_default();
    sqlx::query(
        "INSERT INTO audit_log (at, actor, ip, action, target, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(at)
    .bind(actor)
    .bind("-")
    .bind(format!("{ROOM_ACTION_PREFIX}{action}"))
    .bind(meeting)
    .bind(detail)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The chair's extension: the meeting's new planned end, and an audit entry.
async fn write_extension(
    db: &Db,
    meeting: String,
    by: String,
    minutes: u32,
    ends_at: i64,
    at: i64,
) -> Result<(), sqlx::Error> {
    match meetings::extend_to(db, &meeting, ends_at, at).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(meeting, "extension of an ended meeting not stored"),
        Err(e) => tracing::error!(meeting, "cannot store the meeting's extension: {e}"),
    }
    let until = crate::timefmt::local_display(ends_at);
    let detail = format!("+{minutes} min, until {until}");
    sqlx::query(
        "INSERT INTO audit_log (at, actor, ip, action, target, detail) \
         VALUES ($1, $2, '-', $3, $4, $5)",
    )
    .bind(at)
    .bind(by)
    .bind(format!("{ROOM_ACTION_PREFIX}extend_meeting"))
    .bind(meeting)
    .bind(detail)
    .execute(db.pool())
    .await?;
    Ok(())
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}
