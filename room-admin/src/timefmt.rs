//! Times: stored as Unix seconds (UTC), shown in Vietnam time.
//!
//! Vietnam (Asia/Ho_Chi_Minh) is UTC+7 all year with no daylight saving time since 1975, so a
//! fixed offset is the exact rule, not an approximation, and needs no time-zone database.

use time::format_description::well_known::Rfc3339;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Asia/Ho_Chi_Minh.
pub const VIETNAM: UtcOffset = offset!(+7);

/// Parses an API time: RFC 3339 with an offset (`2025-06-02T08:00:00+07:00`, `...Z`), or a local
/// Vietnam time without offset as an HTML `datetime-local` field sends it (`2025-06-02T08:00`,
/// seconds optional). Returns Unix seconds.
pub fn parse(input: &str) -> Option<i64> {
    let s = input.trim();
    if s.len() > 40 {
        return None;
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let with_secs = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let no_secs = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let local = PrimitiveDateTime::parse(s, with_secs)
        .or_else(|_| PrimitiveDateTime::parse(s, no_secs))
        .ok()?;
    Some(local.assume_offset(VIETNAM).unix_timestamp())
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// RFC 3339 in UTC: `2025-06-02T01:00:00Z`.
pub fn utc_rfc3339(unix: i64) -> String {
    at(unix).format(&Rfc3339).unwrap_or_default()
}

/// RFC 3339 in Vietnam time: `2025-06-02T08:00:00+07:00`.
pub fn local_rfc3339(unix: i64) -> String {
    at(unix)
        .to_offset(VIETNAM)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// What people read: `08:00 02/06/2025` (Vietnam time).
pub fn local_display(unix: i64) -> String {
    let f = format_description!("[hour]:[minute] [day]/[month]/[year]");
    at(unix).to_offset(VIETNAM).format(f).unwrap_or_default()
}

/// With seconds, for roll-call answers: `08:00:05 02/06/2025` (Vietnam time).
pub fn local_display_secs(unix: i64) -> String {
    let f = format_description!("[hour]:[minute]:[second] [day]/[month]/[year]");
    at(unix).to_offset(VIETNAM).format(f).unwrap_or_default()
}

/// `YYYYMMDDTHHMMSSZ` for iCalendar.
pub fn ics_utc(unix: i64) -> String {
    let f = format_description!("[year][month][day]T[hour][minute][second]Z");
    at(unix).format(f).unwrap_or_default()
}

/// Unix seconds of 00:00 Vietnam time on the day that contains `unix`.
pub fn local_day_start(unix: i64) -> i64 {
    let local = at(unix).to_offset(VIETNAM);
    local.replace_time(time::Time::MIDNIGHT).unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_local_times_agree() {
        let a = parse("2025-06-02T08:00:00+07:00").unwrap();
        assert_eq!(parse("2025-06-02T01:00:00Z"), Some(a));
        assert_eq!(parse("2025-06-02T08:00"), Some(a));
        assert_eq!(parse("2025-06-02T08:00:00"), Some(a));
        assert_eq!(utc_rfc3339(a), "2025-06-02T01:00:00Z");
        assert_eq!(local_rfc3339(a), "2025-06-02T08:00:00+07:00");
        assert_eq!(local_display(a), "08:00 02/06/2025");
        assert_eq!(local_display_secs(a + 5), "08:00:05 02/06/2025");
        assert_eq!(ics_utc(a), "20250602T010000Z");
    }

    #[test]
    fn garbage_is_none() {
        for s in [
            "",
            "tomorrow",
            "2025-13-01T08:00",
            "2025-06-02",
            "'; DROP TABLE x",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
    }

    #[test]
    fn local_day_starts_at_midnight_vietnam_time() {
        // 23:30 on 1 June in Vietnam is 16:30 UTC; its day began at 17:00 UTC on 31 May.
        let t = parse("2025-06-01T23:30").unwrap();
        assert_eq!(local_day_start(t), parse("2025-06-01T00:00").unwrap());
        assert_eq!(utc_rfc3339(local_day_start(t)), "2025-05-31T17:00:00Z");
    }
}
