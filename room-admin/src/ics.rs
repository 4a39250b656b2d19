//! iCalendar (RFC 5545) export of the schedule, for halls that subscribe from their calendar.
//!
//! Times are written in UTC (`...Z`): every calendar program shows them in the reader's zone,
//! and no VTIMEZONE block is needed. Text is escaped and lines folded at 75 octets, on character
//! boundaries so Vietnamese letters are never cut in half.

use crate::meetings::Meeting;
use crate::timefmt;

/// One event: the meeting, and optionally the point's own join link.
pub struct Event<'a> {
    pub meeting: &'a Meeting,
    pub link: Option<String>,
}

/// A calendar named `name` with `events`.
pub fn calendar(name: &str, events: &[Event<'_>]) -> String {
    let mut out = String::new();
    line(&mut out, "BEGIN:VCALENDAR");
    line(&mut out, "VERSION:2.0");
    line(&mut out, "PRODID:-//hoinghi//room-admin//VI");
    line(&mut out, "CALSCALE:GREGORIAN");
    line(&mut out, "METHOD:PUBLISH");
    line(&mut out, &format!("X-WR-CALNAME:{}", escape(name)));
    line(&mut out, "X-WR-TIMEZONE:Asia/Ho_Chi_Minh");
    for e in events {
        let m = e.meeting;
        line(&mut out, "BEGIN:VEVENT");
        line(&mut out, &format!("UID:{}@hoinghi", m.id));
        line(
            &mut out,
            &format!("DTSTAMP:{}", timefmt::ics_utc(m.updated_at)),
        );
        line(
            &mut out,
            &format!("LAST-MODIFIED:{}", timefmt::ics_utc(m.updated_at)),
        );
        line(
            &mut out,
            &format!("DTSTART:{}", timefmt::ics_utc(m.starts_at)),
        );
        line(&mut out, &format!("DTEND:{}", timefmt::ics_utc(m.ends_at)));
        line(&mut out, &format!("SUMMARY:{}", escape(&m.title)));
        let mut description = m.agenda.clone();
        if let Some(link) = &e.link {
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str("Liên kết tham gia / Join link: ");
            description.push_str(link);
        }
        if !description.is_empty() {
            line(&mut out, &format!("DESCRIPTION:{}", escape(&description)));
        }
        let status = if m.status == "cancelled" {
            "CANCELLED"
        } else {
            "CONFIRMED"
        };
        line(&mut out, &format!("STATUS:{status}"));
        line(&mut out, "END:VEVENT");
    }
    line(&mut out, "END:VCALENDAR");
    out
}

/// TEXT value escaping (RFC 5545 §3.3.11).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends a content line folded at 75 octets, with CRLF.
fn line(out: &mut String, content: &str) {
    let mut width = 0;
    for c in content.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meeting(title: &str) -> Meeting {
        Meeting {
            id: "m-1".into(),
            title: title.into(),
            agenda: "Nội dung; mục 1, mục 2\ndòng 2".into(),
            starts_at: 1_748_826_000,
            ends_at: 1_748_833_200,
            open_minutes: 30,
            capacity: 100,
            status: "scheduled".into(),
            ended_at: None,
            ended_by: None,
            created_by: "admin".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn events_are_escaped_folded_and_in_utc() {
        let m = meeting(&"Hội nghị trực tuyến ".repeat(10));
        let ics = calendar(
            "Lịch",
            &[Event {
                meeting: &m,
                link: Some("https://x/join?t=abc".into()),
            }],
        );
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"));
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        assert!(ics.contains("DTSTART:20250602T010000Z\r\n"), "{ics}");
        assert!(ics.contains("Nội dung\\; mục 1\\, mục 2\\ndòng 2"));
        for l in ics.split("\r\n") {
            assert!(l.len() <= 75, "{l:?}");
        }
        // Unfolding gives back the title.
        let unfolded = ics.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("SUMMARY:{}", m.title)));
        assert!(unfolded.contains("join?t=abc"));
    }
}
