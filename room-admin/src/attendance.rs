//! Attendance: every join and leave, and the per-meeting report.
//!
//! [`AttendanceRecorder`] is the signaling layer's `RoomObserver`. Signaling calls it from the
//! session task, which must not wait on a disk: each event is stamped with the time it happened
//! and put on a bounded queue; one task writes the queue to the database in order. If the queue
//! is full (the disk stalled during a join storm of thousands), the event is dropped and counted
//! in a log line rather than slowing the meeting.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use signaling::auth::{Grant, RoomObserver};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::db::{self, Db};
use crate::error::StoreError;
use crate::meetings::{self, Meeting, Seat};
use crate::timefmt;

/// Events waiting for the writer.
pub const QUEUE: usize = 4096;
/// A first join later than this after the start counts as late.
pub const LATE_AFTER_SECS: i64 = 5 * 60;

#[derive(Debug)]
enum Event {
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
}

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
}

async fn write_loop(db: Db, mut rx: mpsc::Receiver<Event>) {
    while let Some(event) = rx.recv().await {
        if let Err(e) = write(&db, &event).await {
            tracing::error!("cannot record attendance: {e}");
        }
    }
}

async fn write(db: &Db, event: &Event) -> Result<(), sqlx::Error> {
    match event {
        Event::Joined {
            grant,
            participant,
            at,
        } => {
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
        }
        Event::Left {
            meeting,
            participant,
            at,
            seconds,
        } => {
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
        }
    }
    Ok(())
}

/// One seat's line in the attendance report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttendanceRow {
    pub seat: String,
    pub point_code: Option<String>,
    pub name: String,
    pub role: String,
    /// `present`, `late` or `absent`.
    pub status: String,
    /// First join, Unix seconds.
    pub first_join: Option<i64>,
    pub last_leave: Option<i64>,
    /// How many times it connected.
    pub joins: i64,
    /// Whole minutes connected, all connections added up (an open connection counts up to now).
    pub minutes: i64,
    /// Connected at the time of the report.
    pub connected: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttendanceReport {
    pub meeting_id: String,
    pub title: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub present: usize,
    pub late: usize,
    pub absent: usize,
    pub rows: Vec<AttendanceRow>,
}

/// The report of a meeting at `now`.
pub async fn report(db: &Db, id: &str, now: i64) -> Result<AttendanceReport, StoreError> {
    let m = meetings::get(db, id).await?;
    let seats = meetings::seats(db, id).await?;
    let records: Vec<(String, i64, Option<i64>, Option<f64>)> = sqlx::query_as(
        "SELECT seat, joined_at, left_at, seconds FROM attendance WHERE meeting_id = $1 \
         ORDER BY joined_at",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    Ok(build_report(&m, &seats, &records, now))
}

fn build_report(
    m: &Meeting,
    seats: &[Seat],
    records: &[(String, i64, Option<i64>, Option<f64>)],
    now: i64,
) -> AttendanceReport {
    let mut rows = Vec::new();
    let (mut present, mut late, mut absent) = (0, 0, 0);
    for seat in seats {
        let mine: Vec<_> = records.iter().filter(|r| r.0 == seat.seat).collect();
        let first_join = mine.iter().map(|r| r.1).min();
        let last_leave = mine.iter().filter_map(|r| r.2).max();
        let connected = mine.iter().any(|r| r.2.is_none());
        let seconds: f64 = mine
            .iter()
            .map(|r| match (r.2, r.3) {
                (Some(_), Some(s)) => s,
                (Some(left), None) => (left - r.1) as f64,
                (None, _) => (now.min(m.effective_end()).max(r.1) - r.1) as f64,
            })
            .sum();
        let status = match first_join {
            None => {
                absent += 1;
                "absent"
            }
            Some(t) if t > m.starts_at + LATE_AFTER_SECS => {
                late += 1;
                "late"
            }
            Some(_) => {
                present += 1;
                "present"
            }
        };
        rows.push(AttendanceRow {
            seat: seat.seat.clone(),
            point_code: seat.point_code.clone(),
            name: seat.name.clone(),
            role: seat.role.clone(),
            status: status.into(),
            first_join,
            last_leave,
            joins: mine.len() as i64,
            minutes: (seconds / 60.0).round() as i64,
            connected,
        });
    }
    AttendanceReport {
        meeting_id: m.id.clone(),
        title: m.title.clone(),
        starts_at: m.starts_at,
        ends_at: m.ends_at,
        present,
        late,
        absent,
        rows,
    }
}

/// The report as CSV for Excel: UTF-8 with a BOM (without it Excel reads Vietnamese as
/// Windows-1252), CRLF line ends, times in Vietnam time.
pub fn to_csv(r: &AttendanceReport) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let _ = w.write_record([
        "code",
        "name",
        "role",
        "status",
        "first_join",
        "last_leave",
        "joins",
        "minutes",
    ]);
    for row in &r.rows {
        let t = |v: Option<i64>| v.map(timefmt::local_display).unwrap_or_default();
        let _ = w.write_record([
            row.point_code.clone().unwrap_or_else(|| row.seat.clone()),
            csv_safe(&row.name),
            row.role.clone(),
            row.status.clone(),
            t(row.first_join),
            t(row.last_leave),
            row.joins.to_string(),
            row.minutes.to_string(),
        ]);
    }
    let body = w.into_inner().unwrap_or_default();
    let mut out = b"\xEF\xBB\xBF".to_vec();
    out.extend(body);
    out
}

/// Text that a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading
/// apostrophe: a name typed as `=HYPERLINK(...)` stays text in Excel.
pub fn csv_safe(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meeting() -> Meeting {
        Meeting {
            id: "m-1".into(),
            title: "Họp".into(),
            agenda: String::new(),
            starts_at: 1000,
            ends_at: 5000,
            open_minutes: 30,
            capacity: 10,
            status: "scheduled".into(),
            ended_at: None,
            created_by: "admin".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn seat(code: &str) -> Seat {
        Seat {
            meeting_id: "m-1".into(),
            seat: code.into(),
            point_code: Some(code.into()),
            name: format!("Xã {code}"),
            role: "point".into(),
            jti: String::new(),
            issued_at: 0,
        }
    }

    #[test]
    fn present_late_absent_and_minutes() {
        let seats = [seat("a"), seat("b"), seat("c")];
        let records = vec![
            ("a".to_string(), 900, Some(1500), Some(600.0)),
            ("a".to_string(), 1600, None, None),
            ("b".to_string(), 2000, Some(2600), Some(600.0)),
        ];
        let r = build_report(&meeting(), &seats, &records, 2200);
        assert_eq!((r.present, r.late, r.absent), (1, 1, 1));
        assert_eq!(r.rows[0].minutes, 20); // 600 s + (2200 - 1600) s
        assert!(r.rows[0].connected);
        assert_eq!(r.rows[1].status, "late");
        assert_eq!(r.rows[2].status, "absent");
        let csv = to_csv(&r);
        assert!(csv.starts_with(b"\xEF\xBB\xBFcode,name"));
        assert!(
            String::from_utf8(csv)
                .unwrap()
                .contains("a,Xã a,point,present")
        );
    }

    #[test]
    fn formulas_stay_text() {
        assert_eq!(csv_safe("=1+1"), "'=1+1");
        assert_eq!(csv_safe("Xã Cao Sơn"), "Xã Cao Sơn");
    }
}
