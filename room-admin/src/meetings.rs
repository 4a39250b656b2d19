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

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db::{self, Db, Tx};
use crate::error::{Check, StoreError};
use crate::points;
use crate::timefmt;

pub const MAX_TITLE: usize = 200;
pub const MAX_AGENDA: usize = 10_000;
pub const MAX_SEATS: usize = 1000;
pub const MAX_OBSERVERS: usize = 50;
/// Relay seats of one meeting: a national meeting seats one per province (34), with room to
/// spare.
pub const MAX_RELAYS: usize = 64;
/// Longest name of an observer or a relay seat.
pub const MAX_SEAT_NAME: usize = 100;
pub const DEFAULT_OPEN_MINUTES: i64 = 30;
pub const MAX_OPEN_MINUTES: i64 = 24 * 60;
pub const DEFAULT_CAPACITY: i64 = 500;
pub const MAX_CAPACITY: i64 = 1000;
/// Longest meeting.
pub const MAX_DURATION_SECS: i64 = 24 * 3600;
/// A start time this far in the past still counts as "now" (a form filled in slowly).
pub const PAST_SLACK_SECS: i64 = 5 * 60;

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

/// One seat of a meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, ToSchema)]
pub struct Seat {
    pub meeting_id: String,
    /// The point code, or `obs-…` for an observer.
    pub seat: String,
    pub point_code: Option<String>,
    pub name: String,
    /// `chair`, `point`, `observer` or `relay`.
    pub role: String,
    /// Id of the only join token accepted for this seat.
    #[serde(skip)]
    pub jti: String,
    pub issued_at: i64,
}

/// What staff fill in to schedule a meeting.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeetingInput {
    pub title: String,
    #[serde(default)]
    pub agenda: String,
    /// RFC 3339 (`2025-06-02T08:00:00+07:00`) or Vietnam local time (`2025-06-02T08:00`).
    pub starts_at: String,
    pub ends_at: String,
    /// Joins open this many minutes before the start (default 30).
    #[serde(default)]
    pub open_minutes: Option<i64>,
    /// Most participants at once (default 500).
    #[serde(default)]
    pub capacity: Option<i64>,
    /// Code of the chair point (usually the province hall).
    pub chair_point: String,
    /// Codes of invited points.
    #[serde(default)]
    pub points: Vec<String>,
    /// Invite every enabled point of these kinds too.
    #[serde(default)]
    pub invite_kinds: Vec<String>,
    /// Invite every enabled point.
    #[serde(default)]
    pub invite_all: bool,
    /// Names of observers (watch only).
    #[serde(default)]
    pub observers: Vec<String>,
    /// Names of relay seats (e.g. the province whose server will relay the meeting to its own
    /// halls): each gets a link with the role `relay`. Leaving a name out of an edit removes
    /// its seat, and its link stops working.
    #[serde(default)]
    pub relays: Vec<String>,
}

/// New times for a copy of a meeting.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyInput {
    pub starts_at: String,
    pub ends_at: String,
    /// Title of the copy (default: the same title).
    #[serde(default)]
    pub title: Option<String>,
}

/// A seat as planned from the input, before token ids.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlannedSeat {
    seat: Option<String>,
    point_code: Option<String>,
    name: String,
    role: &'static str,
}

struct Plan {
    title: String,
    agenda: String,
    starts_at: i64,
    ends_at: i64,
    open_minutes: i64,
    capacity: i64,
    seats: Vec<PlannedSeat>,
}

/// Checks the input against the directory and the clock. `keep_start` is the stored start of
/// an edited meeting: keeping it is allowed even once it has passed.
async fn plan(
    db: &Db,
    input: &MeetingInput,
    now: i64,
    keep_start: Option<i64>,
) -> Result<Plan, StoreError> {
    let mut c = Check::default();
    let title = c.text("title", &input.title, true, MAX_TITLE);
    let agenda = c.text("agenda", &input.agenda, false, MAX_AGENDA);
    let starts_at = timefmt::parse(&input.starts_at);
    let ends_at = timefmt::parse(&input.ends_at);
    const TIME_FORMAT: &str = "Thời gian không hợp lệ (ví dụ 2025-06-02T08:00). / \
                               Invalid time (e.g. 2025-06-02T08:00 or RFC 3339).";
    if starts_at.is_none() {
        c.fail("starts_at", TIME_FORMAT);
    }
    if ends_at.is_none() {
        c.fail("ends_at", TIME_FORMAT);
    }
    if let (Some(s), Some(e)) = (starts_at, ends_at) {
        if Some(s) != keep_start && s < now - PAST_SLACK_SECS {
            c.fail(
                "starts_at",
                "Thời gian bắt đầu đã qua. / The start time is in the past.",
            );
        }
        if e <= s {
            c.fail(
                "ends_at",
                "Kết thúc phải sau bắt đầu. / The end must be after the start.",
            );
        } else if e - s > MAX_DURATION_SECS {
            c.fail(
                "ends_at",
                "Cuộc họp dài tối đa 24 giờ. / A meeting lasts at most 24 hours.",
            );
        } else if e <= now {
            c.fail(
                "ends_at",
                "Thời gian kết thúc đã qua. / The end time is in the past.",
            );
        }
    }
    let open_minutes = input.open_minutes.unwrap_or(DEFAULT_OPEN_MINUTES);
    if !(0..=MAX_OPEN_MINUTES).contains(&open_minutes) {
        c.fail(
            "open_minutes",
            format!("Từ 0 đến {MAX_OPEN_MINUTES} phút. / 0 to {MAX_OPEN_MINUTES} minutes."),
        );
    }
    let capacity = input.capacity.unwrap_or(DEFAULT_CAPACITY);
    if !(2..=MAX_CAPACITY).contains(&capacity) {
        c.fail(
            "capacity",
            format!("Từ 2 đến {MAX_CAPACITY}. / 2 to {MAX_CAPACITY}."),
        );
    }
    for k in &input.invite_kinds {
        if !points::KINDS.contains(&k.as_str()) {
            c.fail(
                "invite_kinds",
                format!("Loại không hợp lệ: {k:?}. / Unknown kind {k:?}."),
            );
        }
    }
    if input.observers.len() > MAX_OBSERVERS {
        c.fail(
            "observers",
            format!("Tối đa {MAX_OBSERVERS} người dự. / At most {MAX_OBSERVERS} observers."),
        );
    }
    let observer_names = c.names("observers", &input.observers, MAX_SEAT_NAME);
    if input.relays.len() > MAX_RELAYS {
        c.fail(
            "relays",
            format!(
                "Tối đa {MAX_RELAYS} điểm cầu chuyển tiếp. / At most {MAX_RELAYS} relay seats."
            ),
        );
    }
    let relay_names = c.names("relays", &input.relays, MAX_SEAT_NAME);

    // Points: the chair, the ones picked, the kinds, or all; disabled points cannot be invited.
    let directory: HashMap<String, points::Point> = points::all(db)
        .await?
        .into_iter()
        .map(|p| (p.code.clone(), p))
        .collect();
    let usable = |code: &str| directory.get(code).filter(|p| !p.disabled);
    let chair_code = input.chair_point.trim();
    let chair = usable(chair_code);
    if chair.is_none() {
        c.fail(
            "chair_point",
            format!(
                "Không có điểm cầu đang dùng mã {chair_code:?}. / No enabled point with code \
                 {chair_code:?}."
            ),
        );
    }
    let mut invited: BTreeSet<&str> = BTreeSet::new();
    let mut unknown = Vec::new();
    for code in &input.points {
        let code = code.trim();
        match usable(code) {
            Some(p) => {
                invited.insert(&p.code);
            }
            None => unknown.push(code.to_owned()),
        }
    }
    if !unknown.is_empty() {
        unknown.truncate(20);
        c.fail(
            "points",
            format!(
                "Không có điểm cầu đang dùng với các mã: {}. / No enabled point with codes: {}.",
                unknown.join(", "),
                unknown.join(", ")
            ),
        );
    }
    for p in directory.values().filter(|p| !p.disabled) {
        if input.invite_all || input.invite_kinds.contains(&p.kind) {
            invited.insert(&p.code);
        }
    }
    invited.remove(chair_code);

    let mut seats = Vec::new();
    if let Some(chair) = chair {
        seats.push(PlannedSeat {
            seat: Some(chair.code.clone()),
            point_code: Some(chair.code.clone()),
            name: chair.name.clone(),
            role: "chair",
        });
    }
    for code in invited {
        let p = &directory[code];
        seats.push(PlannedSeat {
            seat: Some(p.code.clone()),
            point_code: Some(p.code.clone()),
            name: p.name.clone(),
            role: "point",
        });
    }
    for name in observer_names {
        seats.push(PlannedSeat {
            seat: None,
            point_code: None,
            name,
            role: "observer",
        });
    }
    for name in relay_names {
        seats.push(PlannedSeat {
            seat: None,
            point_code: None,
            name,
            role: "relay",
        });
    }
    if seats.len() > MAX_SEATS {
        c.fail(
            "points",
            format!("Tối đa {MAX_SEATS} điểm cầu. / At most {MAX_SEATS} seats."),
        );
    }
    c.finish()?;
    Ok(Plan {
        title,
        agenda,
        // A start a few minutes in the past (a form filled in slowly) means now: lateness and
        // the attendance report count from when the meeting really began.
        starts_at: starts_at
            .map(|s| {
                if Some(s) != keep_start && (now - PAST_SLACK_SECS..now).contains(&s) {
                    now
                } else {
                    s
                }
            })
            .unwrap_or_default(),
        ends_at: ends_at.unwrap_or_default(),
        open_minutes,
        capacity,
        seats,
    })
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

/// Inserts the planned seats, reusing the token id of an old seat with the same id and role
/// (observers and relays, which have no point code, are matched by name).
async fn write_seats(
    tx: &mut Tx<'_>,
    meeting_id: &str,
    planned: &[PlannedSeat],
    old: &[Seat],
    now: i64,
) -> Result<(), sqlx::Error> {
    for p in planned {
        let previous = old.iter().find(|o| {
            o.role == p.role
                && match &p.seat {
                    Some(seat) => &o.seat == seat,
                    None => o.name == p.name,
                }
        });
        let seat = match (&p.seat, previous) {
            (Some(s), _) => s.clone(),
            (None, Some(o)) => o.seat.clone(),
            (None, None) if p.role == "relay" => db::new_id("relay-"),
            (None, None) => db::new_id("obs-"),
        };
        let (jti, issued_at) = previous.map_or_else(
            || (db::random_hex16(), now),
            |o| (o.jti.clone(), o.issued_at),
        );
        sqlx::query(
            "INSERT INTO seats (meeting_id, seat, point_code, name, role, jti, issued_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(meeting_id)
        .bind(&seat)
        .bind(&p.point_code)
        .bind(&p.name)
        .bind(p.role)
        .bind(&jti)
        .bind(issued_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
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

/// Seats of a meeting: chair first, then points by kind (province hall, departments,
/// districts, communes, others: [`crate::points::KINDS`]'s order) and by code within a kind,
/// then relays, then observers. Codes compare as numbers where they are digits ("9" before "10").
pub async fn seats(db: &Db, id: &str) -> Result<Vec<Seat>, StoreError> {
    let mut rows = sqlx::query_as::<_, SeatWithKind>(
        "SELECT s.*, p.kind AS point_kind FROM seats s \
         LEFT JOIN points p ON p.code = s.point_code WHERE s.meeting_id = $1",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    rows.sort_by(|a, b| a.rank().cmp(&b.rank()));
    Ok(rows.into_iter().map(|r| r.seat).collect())
}

#[derive(FromRow)]
struct SeatWithKind {
    #[sqlx(flatten)]
    seat: Seat,
    point_kind: Option<String>,
}

impl SeatWithKind {
    /// Where the seat goes in a meeting's list: role, then the point's kind, then its code
    /// (digits by value, so "9" < "10" < "0200"; then as text).
    fn rank(&self) -> (u8, usize, u64, &str) {
        let s = &self.seat;
        let role = match s.role.as_str() {
            "chair" => 0,
            "point" => 1,
            "relay" => 2,
            _ => 3,
        };
        let kind = self
            .point_kind
            .as_deref()
            .and_then(|k| points::KINDS.iter().position(|x| *x == k))
            .unwrap_or(points::KINDS.len());
        let number = s.seat.parse::<u64>().unwrap_or(u64::MAX);
        (role, kind, number, s.seat.as_str())
    }
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

/// Meetings a point has a seat in, earliest first.
pub async fn for_point(db: &Db, code: &str) -> Result<Vec<(Meeting, Seat)>, StoreError> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT meeting_id FROM seats WHERE point_code = $1")
        .bind(code)
        .fetch_all(db.pool())
        .await?;
    let mut out = Vec::new();
    for id in ids {
        let m = get(db, &id).await?;
        if let Some(seat) = seats(db, &id)
            .await?
            .into_iter()
            .find(|s| s.point_code.as_deref() == Some(code))
        {
            out.push((m, seat));
        }
    }
    out.sort_by_key(|(m, _)| m.starts_at);
    Ok(out)
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

/// Gives a seat a new token id: the old link stops working at once.
pub async fn reissue(db: &Db, id: &str, seat: &str, now: i64) -> Result<Seat, StoreError> {
    let m = get(db, id).await?;
    ensure_editable(&m, now)?;
    let done = sqlx::query(
        "UPDATE seats SET jti = $1, issued_at = $2 WHERE meeting_id = $3 AND seat = $4",
    )
    .bind(db::random_hex16())
    .bind(now)
    .bind(id)
    .bind(seat)
    .execute(db.pool())
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!(
            "Cuộc họp không có chỗ {seat:?}. / The meeting has no seat {seat:?}."
        )));
    }
    seats(db, id)
        .await?
        .into_iter()
        .find(|s| s.seat == seat)
        .ok_or_else(|| not_found(id))
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
