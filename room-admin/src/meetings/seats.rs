//! A meeting's seats: writing them (links kept where a seat stays), listing them in order,
//! and reissuing one's link.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::plan::PlannedSeat;
use super::{Meeting, ensure_editable, get, not_found};
use crate::db::{self, Db, Tx};
use crate::error::StoreError;
use crate::points;

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

/// Inserts the planned seats, reusing the token id of an old seat with the same id and role
/// (observers and relays, which have no point code, are matched by name).
pub(super) async fn write_seats(
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
