//! Meetings, their seats, and their lifecycle.
//!
//! # Lifecycle
//! A meeting is `scheduled` when created. Staff can `cancel` it (before it ends) or `end` it
//! early; everything else follows the clock:
//!
//! ```text
//! scheduled ──(start − open_minutes)──► open ──(start)──► live ──(end, or "end now")──► ended
//!     └──────────────── cancel (any time before it ends) ─────────────► cancelled
//! ```
//! Joins are allowed while `open` or `live`. Stored: `status` (scheduled | cancelled | ended)
//! and the times; the state is computed by [`state_at`], a pure function.
//!
//! # Seats
//! One per participant a meeting expects: the chair point (role `chair`), each invited point
//! (`point`; the seat id is the point code), each observer (`observer`, a name with a seat id
//! `obs-…`) and each relay (`relay`, a downstream hoinghi server that re-serves the meeting to
//! its own halls, named like an observer, with a seat id `relay-…`). Each seat stores the id
//! (`jti`) of the one join token accepted for it.
//!
//! # Layout
//! - this module: [`Meeting`] and [`Seat`] as stored, creating, editing, reading and copying;
//! - `lifecycle`: [`MeetingState`] and the changes of status (cancel, end, extend, close);
//! - `plan`: the limits, what staff fill in, and checking it into a plan of seats;
//! - `seats`: a meeting's seats: writing, listing in order, reissuing a link.

use std::collections::BTreeSet;

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db::{self, Db};
use crate::error::StoreError;
use crate::points;

mod lifecycle;
mod plan;
mod seats;

pub(crate) use lifecycle::ensure_editable;
pub use lifecycle::{
    EndedBy, MeetingState, cancel, close_by_clock, due_to_close, end, end_by, end_by_chair,
    ending_within, extend_to, state_at,
};
pub use plan::{
    CopyInput, DEFAULT_CAPACITY, DEFAULT_OPEN_MINUTES, MAX_AGENDA, MAX_CAPACITY, MAX_DURATION_SECS,
    MAX_OBSERVERS, MAX_OPEN_MINUTES, MAX_RELAYS, MAX_SEAT_NAME, MAX_SEATS, MAX_TITLE, MeetingInput,
    PAST_SLACK_SECS,
};
pub use seats::{Seat, for_point, reissue, seats};

use plan::plan;
use seats::write_seats;

/// A meeting as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct Meeting {
    pub id: String,
    pub title: String,
    pub agenda: String,
    /// Unix seconds, UTC.
    pub starts_at: i64,
    pub ends_at: i64,
    /// Joins open this many minutes before the start.
    pub open_minutes: i64,
    /// Most participants connected at once; joins beyond it are refused.
    pub capacity: i64,
    /// `scheduled`, `cancelled` or `ended` (ended early by staff, or closed by the clock at its
    /// planned end: see [`crate::closer`]).
    pub status: String,
    pub ended_at: Option<i64>,
    /// Who ended it: `chair:<point>`, `staff:<user>` or `schedule` (see [`EndedBy`]).
    pub ended_by: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("Không có cuộc họp {id:?}. / No meeting {id:?}."))
}

pub async fn create(
    db: &Db,
    input: &MeetingInput,
    actor: &str,
    now: i64,
) -> Result<Meeting, StoreError> {
    let plan = plan(db, input, now, None).await?;
    let id = db::new_id("m-");
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO meetings (id, title, agenda, starts_at, ends_at, open_minutes, capacity, \
         status, ended_at, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'scheduled', NULL, $8, $9, $9)",
    )
    .bind(&id)
    .bind(&plan.title)
    .bind(&plan.agenda)
    .bind(plan.starts_at)
    .bind(plan.ends_at)
    .bind(plan.open_minutes)
    .bind(plan.capacity)
    .bind(actor)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    write_seats(&mut tx, &id, &plan.seats, &[], now).await?;
    tx.commit().await?;
    get(db, &id).await
}

/// Replaces a meeting's details and seats. Seats that stay keep their links; new seats get new
/// links; removed seats' links stop working.
pub async fn update(
    db: &Db,
    id: &str,
    input: &MeetingInput,
    now: i64,
) -> Result<Meeting, StoreError> {
    let current = get(db, id).await?;
    ensure_editable(&current, now)?;
    let plan = plan(db, input, now, Some(current.starts_at)).await?;
    let old_seats = seats(db, id).await?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE meetings SET title = $1, agenda = $2, starts_at = $3, ends_at = $4, \
         open_minutes = $5, capacity = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(&plan.title)
    .bind(&plan.agenda)
    .bind(plan.starts_at)
    .bind(plan.ends_at)
    .bind(plan.open_minutes)
    .bind(plan.capacity)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM seats WHERE meeting_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    write_seats(&mut tx, id, &plan.seats, &old_seats, now).await?;
    tx.commit().await?;
    get(db, id).await
}

pub async fn get(db: &Db, id: &str) -> Result<Meeting, StoreError> {
    find(db, id).await?.ok_or_else(|| not_found(id))
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Meeting>, StoreError> {
    Ok(
        sqlx::query_as::<_, Meeting>("SELECT * FROM meetings WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Meetings overlapping `[from, to)`, earliest first (both bounds optional).
pub async fn list(db: &Db, from: Option<i64>, to: Option<i64>) -> Result<Vec<Meeting>, StoreError> {
    Ok(sqlx::query_as::<_, Meeting>(
        "SELECT * FROM meetings WHERE ends_at > $1 AND starts_at < $2 \
         ORDER BY starts_at, id",
    )
    .bind(from.unwrap_or(i64::MIN))
    .bind(to.unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await?)
}

/// A new meeting with the same title, agenda, chair, points, observers and relays, at new
/// times, with new links. Points disabled since are left out.
pub async fn copy(
    db: &Db,
    id: &str,
    input: &CopyInput,
    actor: &str,
    now: i64,
) -> Result<Meeting, StoreError> {
    let m = get(db, id).await?;
    let seats = seats(db, id).await?;
    let enabled: BTreeSet<String> = points::all(db)
        .await?
        .into_iter()
        .filter(|p| !p.disabled)
        .map(|p| p.code)
        .collect();
    let code_of = |s: &Seat| s.point_code.clone().filter(|c| enabled.contains(c));
    let chair = seats
        .iter()
        .find(|s| s.role == "chair")
        .and_then(code_of)
        .unwrap_or_default();
    let new = MeetingInput {
        title: input.title.clone().unwrap_or(m.title),
        agenda: m.agenda,
        starts_at: input.starts_at.clone(),
        ends_at: input.ends_at.clone(),
        open_minutes: Some(m.open_minutes),
        capacity: Some(m.capacity),
        chair_point: chair,
        points: seats
            .iter()
            .filter(|s| s.role == "point")
            .filter_map(code_of)
            .collect(),
        invite_kinds: Vec::new(),
        invite_all: false,
        observers: seats
            .iter()
            .filter(|s| s.role == "observer")
            .map(|s| s.name.clone())
            .collect(),
        relays: seats
            .iter()
            .filter(|s| s.role == "relay")
            .map(|s| s.name.clone())
            .collect(),
    };
    create(db, &new, actor, now).await
}
