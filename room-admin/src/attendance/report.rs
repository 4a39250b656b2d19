//! A meeting's attendance report, built from the connections and roll-call answers written.

use serde::Serialize;
use signaling::protocol::Quality;
use utoipa::ToSchema;

use crate::db::Db;
use crate::error::StoreError;
use crate::meetings::{self, Meeting, MeetingState, Seat};
use crate::test_room;

/// A first join later than this after the start counts as late.
pub const LATE_AFTER_SECS: i64 = 5 * 60;

/// One seat's line in the attendance report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttendanceRow {
    pub seat: String,
    pub point_code: Option<String>,
    pub name: String,
    pub role: String,
    /// `present`, `late`, `not_joined` (not connected yet, and the meeting is not over) or
    /// `absent` (never connected to a meeting that is over).
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
    /// Roll-call answers ("có mặt"), Unix seconds, earliest first (one per roll call answered).
    pub roll_call: Vec<i64>,
    /// The link over the connections that have ended (none yet: `null`).
    pub link: Option<LinkStats>,
}

/// A seat's link over its ended connections, from the media plane's 2-second samples.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LinkStats {
    /// 2-second samples behind these figures.
    pub samples: i64,
    /// Mean round-trip time, milliseconds (`null`: never measured).
    pub rtt_ms_mean: Option<f64>,
    /// Packet loss, 0..1: the mean over the samples and the worst sample.
    pub loss_mean: f64,
    pub loss_max: f64,
    /// `good`, `fair` or `poor`, by the chair page's rule on the means (loss under 2 % and RTT
    /// under 150 ms is good; under 8 % and 400 ms fair).
    pub quality: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttendanceReport {
    pub meeting_id: String,
    pub title: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub present: usize,
    pub late: usize,
    /// Seats never connected to a meeting that is over.
    pub absent: usize,
    /// Seats not connected yet to a meeting that is not over (they may still come).
    pub not_joined: usize,
    /// Seats that answered at least one roll call.
    pub answered_roll_call: usize,
    pub rows: Vec<AttendanceRow>,
}

/// One connection as stored.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
struct Record {
    seat: String,
    joined_at: i64,
    left_at: Option<i64>,
    seconds: Option<f64>,
    link_samples: Option<i64>,
    rtt_ms_mean: Option<f64>,
    loss_mean: Option<f64>,
    loss_max: Option<f64>,
}

/// The report of a meeting at `now`. The permanent test room is not stored: its report covers
/// its fixed seats over everything recorded since the first join (a check tool, not a meeting,
/// always running).
pub async fn report(db: &Db, id: &str, now: i64) -> Result<AttendanceReport, StoreError> {
    let (m, seats) = if id == test_room::MEETING_ID {
        test_room_meeting(db, now).await?
    } else {
        (meetings::get(db, id).await?, meetings::seats(db, id).await?)
    };
    let records: Vec<Record> = sqlx::query_as(
        "SELECT seat, joined_at, left_at, seconds, link_samples, rtt_ms_mean, loss_mean, \
         loss_max FROM attendance WHERE meeting_id = $1 ORDER BY joined_at",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    let answers: Vec<(String, i64)> = sqlx::query_as(
        "SELECT seat, answered_ms FROM roll_call_answers WHERE meeting_id = $1 \
         ORDER BY answered_ms",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    Ok(build_report(&m, &seats, &records, &answers, now))
}

/// The test room as a meeting from its first recorded join to now, with its fixed seats.
async fn test_room_meeting(db: &Db, now: i64) -> Result<(Meeting, Vec<Seat>), StoreError> {
    let first: Option<i64> =
        sqlx::query_scalar("SELECT MIN(joined_at) FROM attendance WHERE meeting_id = $1")
            .bind(test_room::MEETING_ID)
            .fetch_one(db.pool())
            .await?;
    let starts_at = first.unwrap_or(now).min(now);
    let m = Meeting {
        id: test_room::MEETING_ID.into(),
        title: test_room::TITLE.into(),
        agenda: String::new(),
        starts_at,
        // Always running: a seat not seen is "not joined yet", never absent.
        ends_at: now + 1,
        open_minutes: 0,
        capacity: test_room::CAPACITY as i64,
        status: "scheduled".into(),
        ended_at: None,
        ended_by: None,
        created_by: String::new(),
        created_at: starts_at,
        updated_at: now,
    };
    let seats = test_room::seats()
        .map(|p| Seat {
            meeting_id: m.id.clone(),
            seat: p.code.into(),
            point_code: None,
            name: p.name.into(),
            role: crate::links::role_str(p.role).into(),
            jti: String::new(),
            issued_at: starts_at,
        })
        .collect();
    Ok((m, seats))
}

/// Adds up the link summaries of a seat's connections, weighted by their sample counts.
fn link_stats(records: &[&Record]) -> Option<LinkStats> {
    let (mut n, mut rtt_n, mut rtt_sum, mut loss_sum, mut loss_max) =
        (0i64, 0i64, 0.0, 0.0, 0.0f64);
    for r in records {
        let Some(samples) = r.link_samples.filter(|s| *s > 0) else {
            continue;
        };
        n += samples;
        if let Some(rtt) = r.rtt_ms_mean {
            rtt_n += samples;
            rtt_sum += rtt * samples as f64;
        }
        loss_sum += r.loss_mean.unwrap_or(0.0) * samples as f64;
        loss_max = loss_max.max(r.loss_max.unwrap_or(0.0));
    }
    if n == 0 {
        return None;
    }
    let rtt_ms_mean = (rtt_n > 0).then(|| rtt_sum / rtt_n as f64);
    let loss_mean = loss_sum / n as f64;
    let quality = Quality::classify(rtt_ms_mean.map(|r| r.round() as u32), loss_mean as f32);
    Some(LinkStats {
        samples: n,
        rtt_ms_mean,
        loss_mean,
        loss_max,
        quality: match quality {
            Quality::Good => "good",
            Quality::Fair => "fair",
            Quality::Poor => "poor",
        }
        .into(),
    })
}

fn build_report(
    m: &Meeting,
    seats: &[Seat],
    records: &[Record],
    answers: &[(String, i64)],
    now: i64,
) -> AttendanceReport {
    // A seat not seen yet is only absent once the meeting is over: before the start, or while
    // it runs, it may still come ("Chưa vào", docs/glossary.md).
    let over = !matches!(
        m.state(now),
        MeetingState::Scheduled | MeetingState::Open | MeetingState::Live
    );
    let rows: Vec<AttendanceRow> = seats
        .iter()
        .map(|seat| seat_row(m, seat, records, answers, now, over))
        .collect();
    let count = |status: &str| rows.iter().filter(|r| r.status == status).count();
    let (present, late, absent, not_joined) = (
        count("present"),
        count("late"),
        count("absent"),
        count("not_joined"),
    );
    let answered = rows.iter().filter(|r| !r.roll_call.is_empty()).count();
    AttendanceReport {
        meeting_id: m.id.clone(),
        title: m.title.clone(),
        starts_at: m.starts_at,
        ends_at: m.ends_at,
        present,
        late,
        absent,
        not_joined,
        answered_roll_call: answered,
        rows,
    }
}

/// One seat's line: its connections added up, its status (`over`: the meeting is over, so a
/// seat never seen is absent) and its roll-call answers.
fn seat_row(
    m: &Meeting,
    seat: &Seat,
    records: &[Record],
    answers: &[(String, i64)],
    now: i64,
    over: bool,
) -> AttendanceRow {
    let mine: Vec<&Record> = records.iter().filter(|r| r.seat == seat.seat).collect();
    let first_join = mine.iter().map(|r| r.joined_at).min();
    let last_leave = mine.iter().filter_map(|r| r.left_at).max();
    let connected = mine.iter().any(|r| r.left_at.is_none());
    let seconds: f64 = mine
        .iter()
        .map(|r| match (r.left_at, r.seconds) {
            (Some(_), Some(s)) => s,
            (Some(left), None) => (left - r.joined_at) as f64,
            (None, _) => (now.min(m.effective_end()).max(r.joined_at) - r.joined_at) as f64,
        })
        .sum();
    let status = match first_join {
        None if over => "absent",
        None => "not_joined",
        Some(t) if t > m.starts_at + LATE_AFTER_SECS => "late",
        Some(_) => "present",
    };
    let roll_call: Vec<i64> = answers
        .iter()
        .filter(|a| a.0 == seat.seat)
        .map(|a| a.1.div_euclid(1000))
        .collect();
    AttendanceRow {
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
        roll_call,
        link: link_stats(&mine),
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
            ended_by: None,
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

    fn rec(seat: &str, joined: i64, left: Option<i64>, secs: Option<f64>) -> Record {
        Record {
            seat: seat.into(),
            joined_at: joined,
            left_at: left,
            seconds: secs,
            ..Record::default()
        }
    }

    #[test]
    fn present_late_absent_and_minutes() {
        let seats = [seat("a"), seat("b"), seat("c")];
        let records = vec![
            rec("a", 900, Some(1500), Some(600.0)),
            rec("a", 1600, None, None),
            rec("b", 2000, Some(2600), Some(600.0)),
        ];
        let answers = vec![("a".to_string(), 1_700_123), ("a".to_string(), 2_100_000)];
        let r = build_report(&meeting(), &seats, &records, &answers, 2200);
        assert_eq!((r.present, r.late, r.absent, r.not_joined), (1, 1, 0, 1));
        assert_eq!(r.rows[0].minutes, 20); // 600 s + (2200 - 1600) s
        assert!(r.rows[0].connected);
        assert_eq!(r.rows[0].roll_call, vec![1700, 2100]);
        assert_eq!(r.answered_roll_call, 1);
        assert_eq!(r.rows[1].status, "late");
        // The meeting runs until 5000: a seat not seen yet may still come.
        assert_eq!(r.rows[2].status, "not_joined");
    }

    #[test]
    fn not_joined_before_the_end_absent_after_it() {
        let seats = [seat("a")];
        let m = meeting();
        for (now, status) in [(0, "not_joined"), (1500, "not_joined"), (5000, "absent")] {
            let r = build_report(&m, &seats, &[], &[], now);
            assert_eq!(r.rows[0].status, status, "at {now}");
            assert_eq!(
                (r.absent, r.not_joined),
                (
                    usize::from(status == "absent"),
                    usize::from(status != "absent")
                )
            );
        }
        // Ended early by the chair or staff: absent from then on.
        let ended = Meeting {
            status: "ended".into(),
            ended_at: Some(1200),
            ..meeting()
        };
        assert_eq!(
            build_report(&ended, &seats, &[], &[], 1300).rows[0].status,
            "absent"
        );
    }

    #[test]
    fn link_stats_are_weighted_by_samples_and_classified() {
        let mut a = rec("a", 0, Some(100), Some(100.0));
        (a.link_samples, a.rtt_ms_mean, a.loss_mean, a.loss_max) =
            (Some(30), Some(100.0), Some(0.01), Some(0.05));
        let mut b = rec("a", 200, Some(300), Some(100.0));
        (b.link_samples, b.rtt_ms_mean, b.loss_mean, b.loss_max) =
            (Some(10), Some(300.0), Some(0.05), Some(0.2));
        // Ended before any sample: left out.
        let mut c = rec("a", 400, Some(401), Some(1.0));
        c.link_samples = Some(0);
        let l = link_stats(&[&a, &b, &c]).unwrap();
        assert_eq!(l.samples, 40);
        assert_eq!(l.rtt_ms_mean, Some(150.0));
        assert!((l.loss_mean - 0.02).abs() < 1e-9);
        assert_eq!(l.loss_max, 0.2);
        assert_eq!(l.quality, "fair");
        assert_eq!(link_stats(&[&c]), None);
        let no_rtt = Record {
            link_samples: Some(3),
            ..Record::default()
        };
        let l = link_stats(&[&no_rtt]).unwrap();
        assert_eq!((l.rtt_ms_mean, l.quality.as_str()), (None, "good"));
    }
}
