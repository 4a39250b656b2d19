//! The attendance report as a CSV file for Excel, in the panel's language: Vietnamese by default
//! (the staff who open it read Vietnamese headers and words, `docs/glossary.md`), English on
//! request (`?lang=en`). Codes, names, numbers and times are the same in both.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::attendance::{AttendanceReport, LinkStats};
use crate::timefmt;

/// The language of the file's headers and words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    /// Column headers, in the order of [`to_csv`]'s cells.
    fn headers(self) -> [&'static str; 10] {
        match self {
            Lang::Vi => [
                "Mã",
                "Tên",
                "Vai trò",
                "Trạng thái",
                "Vào lúc",
                "Rời lúc",
                "Số lần vào",
                "Số phút",
                "Trả lời điểm danh",
                "Chất lượng đường truyền",
            ],
            Lang::En => [
                "Code",
                "Name",
                "Role",
                "Status",
                "Joined at",
                "Left at",
                "Joins",
                "Minutes",
                "Roll call",
                "Link quality",
            ],
        }
    }

    /// A seat's role (`chair`, `point`, `observer`) in words.
    fn role(self, role: &str) -> String {
        let (vi, en) = match role {
            "chair" => ("Điểm cầu chủ trì", "Chair point"),
            "point" => ("Điểm cầu", "Point"),
            "observer" => ("Người theo dõi", "Observer"),
            "relay" => ("Điểm cầu chuyển tiếp", "Relay seat"),
            other => (other, other),
        };
        self.pick(vi, en)
    }

    /// A report status (`present`, `late`, `absent`, `not_joined`) in words.
    fn status(self, status: &str) -> String {
        let (vi, en) = match status {
            "present" => ("Có mặt", "Present"),
            "late" => ("Đến muộn", "Late"),
            "absent" => ("Vắng mặt", "Absent"),
            "not_joined" => ("Chưa vào", "Not joined yet"),
            other => (other, other),
        };
        self.pick(vi, en)
    }

    fn quality(self, quality: &str) -> String {
        let (vi, en) = match quality {
            "good" => ("tốt", "good"),
            "fair" => ("trung bình", "fair"),
            "poor" => ("kém", "poor"),
            other => (other, other),
        };
        self.pick(vi, en)
    }

    fn pick(self, vi: &str, en: &str) -> String {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
        .to_owned()
    }

    /// The link column: `RTT 85 ms; mất gói TB 1.2%; tối đa 3.4% (tốt)` (no comma: the cell
    /// stays unquoted).
    pub fn link_text(self, l: &LinkStats) -> String {
        let rtt = l
            .rtt_ms_mean
            .map_or_else(|| "RTT ?".to_owned(), |r| format!("RTT {r:.0} ms"));
        let (mean, max) = match self {
            Lang::Vi => ("mất gói TB", "tối đa"),
            Lang::En => ("mean loss", "max"),
        };
        format!(
            "{rtt}; {mean} {:.1}%; {max} {:.1}% ({})",
            l.loss_mean * 100.0,
            l.loss_max * 100.0,
            self.quality(&l.quality)
        )
    }
}

/// The report as CSV for Excel: UTF-8 with a BOM (without it Excel reads Vietnamese as
/// Windows-1252), CRLF line ends, times in Vietnam time (`HH:mm dd/MM/yyyy`).
pub fn to_csv(r: &AttendanceReport, lang: Lang) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let _ = w.write_record(lang.headers());
    for row in &r.rows {
        let t = |v: Option<i64>| v.map(timefmt::local_display).unwrap_or_default();
        let cells = [
            row.point_code.clone().unwrap_or_else(|| row.seat.clone()),
            row.name.clone(),
            lang.role(&row.role),
            lang.status(&row.status),
            t(row.first_join),
            t(row.last_leave),
            row.joins.to_string(),
            row.minutes.to_string(),
            row.roll_call
                .iter()
                .map(|t| timefmt::local_display_secs(*t))
                .collect::<Vec<_>>()
                .join("; "),
            row.link
                .as_ref()
                .map(|l| lang.link_text(l))
                .unwrap_or_default(),
        ];
        // Every cell, not only the name: a point code like `-A1-A2` is a formula to Excel too.
        let _ = w.write_record(cells.iter().map(|c| csv_safe(c)));
    }
    let body = w.into_inner().unwrap_or_default();
    let mut out = b"\xEF\xBB\xBF".to_vec();
    out.extend(body);
    out
}

/// Text that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab or CR first) gets a
/// leading apostrophe: a name typed as `=HYPERLINK(...)` stays text in Excel. Apply it to every
/// cell of every CSV export.
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
    use crate::attendance::AttendanceRow;

    fn row(seat: &str, role: &str, status: &str) -> AttendanceRow {
        AttendanceRow {
            seat: seat.into(),
            point_code: Some(seat.into()),
            name: format!("Xã {seat}"),
            role: role.into(),
            status: status.into(),
            first_join: (status != "absent" && status != "not_joined").then_some(1700),
            last_leave: None,
            joins: 1,
            minutes: 20,
            connected: true,
            roll_call: vec![1700, 2100],
            link: Some(LinkStats {
                samples: 40,
                rtt_ms_mean: Some(150.0),
                loss_mean: 0.02,
                loss_max: 0.2,
                quality: "fair".into(),
            }),
        }
    }

    fn report() -> AttendanceReport {
        AttendanceReport {
            meeting_id: "m-1".into(),
            title: "Họp".into(),
            starts_at: 1000,
            ends_at: 5000,
            present: 1,
            late: 0,
            absent: 1,
            not_joined: 1,
            answered_roll_call: 1,
            rows: vec![
                row("06", "chair", "present"),
                row("a", "point", "absent"),
                row("b", "point", "not_joined"),
            ],
        }
    }

    #[test]
    fn vietnamese_by_default_with_words_not_codes() {
        let text = String::from_utf8(to_csv(&report(), Lang::default())).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "\u{feff}Mã,Tên,Vai trò,Trạng thái,Vào lúc,Rời lúc,Số lần vào,Số phút,\
             Trả lời điểm danh,Chất lượng đường truyền"
        );
        // 1700 s after the epoch is 07:28 on 1 January 1970 in Vietnam.
        assert_eq!(
            lines[1],
            "06,Xã 06,Điểm cầu chủ trì,Có mặt,07:28 01/01/1970,,1,20,\
             07:28:20 01/01/1970; 07:35:00 01/01/1970,\
             RTT 150 ms; mất gói TB 2.0%; tối đa 20.0% (trung bình)"
        );
        assert!(
            lines[2].starts_with("a,Xã a,Điểm cầu,Vắng mặt,,"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].starts_with("b,Xã b,Điểm cầu,Chưa vào,,"),
            "{}",
            lines[3]
        );
    }

    #[test]
    fn english_on_request() {
        let text = String::from_utf8(to_csv(&report(), Lang::En)).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "\u{feff}Code,Name,Role,Status,Joined at,Left at,Joins,Minutes,Roll call,\
             Link quality"
        );
        assert!(
            lines[1].starts_with("06,Xã 06,Chair point,Present,07:28 01/01/1970,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].ends_with(",RTT 150 ms; mean loss 2.0%; max 20.0% (fair)"),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("a,Xã a,Point,Absent,"), "{}", lines[2]);
        assert!(
            lines[3].starts_with("b,Xã b,Point,Not joined yet,"),
            "{}",
            lines[3]
        );
    }

    #[test]
    fn formulas_stay_text() {
        assert_eq!(csv_safe("=1+1"), "'=1+1");
        assert_eq!(csv_safe("Xã Cao Sơn"), "Xã Cao Sơn");
    }
}
