//! What staff fill in to schedule a meeting, its limits, and checking it against the
//! directory and the clock into a [`Plan`] of seats.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::Db;
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
pub(super) struct PlannedSeat {
    pub(super) seat: Option<String>,
    pub(super) point_code: Option<String>,
    pub(super) name: String,
    pub(super) role: &'static str,
}

pub(super) struct Plan {
    pub(super) title: String,
    pub(super) agenda: String,
    pub(super) starts_at: i64,
    pub(super) ends_at: i64,
    pub(super) open_minutes: i64,
    pub(super) capacity: i64,
    pub(super) seats: Vec<PlannedSeat>,
}

/// Checks the input against the directory and the clock. `keep_start` is the stored start of
/// an edited meeting: keeping it is allowed even once it has passed.
pub(super) async fn plan(
    db: &Db,
    input: &MeetingInput,
    now: i64,
    keep_start: Option<i64>,
) -> Result<Plan, StoreError> {
    let mut c = Check::default();
    let title = c.text("title", &input.title, true, MAX_TITLE);
    let agenda = c.text("agenda", &input.agenda, false, MAX_AGENDA);
    let (starts_at, ends_at) = check_times(&mut c, input, now, keep_start);
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
    let seats = plan_seats(&mut c, db, input, observer_names, relay_names).await?;
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

/// Reads the start and end and checks them against each other and the clock (see [`plan`]);
/// `None` where a time does not parse.
fn check_times(
    c: &mut Check,
    input: &MeetingInput,
    now: i64,
    keep_start: Option<i64>,
) -> (Option<i64>, Option<i64>) {
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
    (starts_at, ends_at)
}

/// The seats the input asks for, in order: the chair, the invited points, the observers, the
/// relays.
async fn plan_seats(
    c: &mut Check,
    db: &Db,
    input: &MeetingInput,
    observer_names: Vec<String>,
    relay_names: Vec<String>,
) -> Result<Vec<PlannedSeat>, StoreError> {
    // Points: the chair, the ones picked, the kinds, or all; disabled points cannot be invited.
    let directory: HashMap<String, points::Point> = points::all(db)
        .await?
        .into_iter()
        .map(|p| (p.code.clone(), p))
        .collect();
    let chair_code = input.chair_point.trim();
    let chair = directory.get(chair_code).filter(|p| !p.disabled);
    if chair.is_none() {
        c.fail(
            "chair_point",
            format!(
                "Không có điểm cầu đang dùng mã {chair_code:?}. / No enabled point with code \
                 {chair_code:?}."
            ),
        );
    }
    let invited = invited_points(c, &directory, input, chair_code);

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
    Ok(seats)
}

/// The codes of the enabled points invited besides the chair: the ones picked (an unknown or
/// disabled code among them is refused), every point of the kinds asked for, or all.
fn invited_points<'a>(
    c: &mut Check,
    directory: &'a HashMap<String, points::Point>,
    input: &MeetingInput,
    chair_code: &str,
) -> BTreeSet<&'a str> {
    let usable = |code: &str| directory.get(code).filter(|p| !p.disabled);
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
    invited
}
