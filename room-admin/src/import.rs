//! CSV import of a whole directory of points, all or nothing.
//!
//! The file is UTF-8 (a leading BOM, as Excel writes it, is accepted), comma-separated, with a
//! header naming its columns: `code`, `name` and `kind` are required, the other columns of
//! [`COLUMNS`] optional, in any order; an unknown column is an error (it would be silently
//! lost). A dry run reports what would happen row by row; a real run does the same checks and
//! then writes every row in one transaction, or nothing when any row is wrong.
//!
//! A code already in the directory updates that point; a code twice in the file is an error.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::db::Db;
use crate::error::StoreError;
use crate::points::{self, PointInput};

/// Columns a file may have, in the order of the reference file.
pub const COLUMNS: [&str; 9] = [
    "code",
    "name",
    "kind",
    "unit",
    "district",
    "contact_name",
    "contact_phone",
    "expected_link",
    "notes",
];

/// Most rows in one file: a national directory (3,300+ communes) fits with room to spare.
pub const MAX_ROWS: usize = 10_000;
/// Largest file, in bytes (the HTTP body limit is the same).
pub const MAX_BYTES: usize = 1024 * 1024;
/// Row errors listed in a report; the count is always exact.
const MAX_LISTED_ERRORS: usize = 200;

/// What an import did, or would do in a dry run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    /// True when the rows were written (never in a dry run, never with errors).
    pub applied: bool,
    /// Data rows in the file (not counting the header).
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub error_count: usize,
    /// At most 200 of them.
    pub errors: Vec<RowError>,
    /// What happens to each row.
    pub preview: Vec<PreviewRow>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowError {
    /// Line number in the file (the header is line 1).
    pub line: usize,
    pub code: String,
    /// Column, when the error is about one.
    pub column: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PreviewRow {
    pub line: usize,
    pub code: String,
    pub name: String,
    pub kind: String,
    /// `create`, `update` or `unchanged`.
    pub action: String,
}

/// Checks the file and, unless `dry_run` or a row is wrong, writes it. File-level problems
/// (encoding, header, size) are errors; row problems are listed in the report, and a report
/// with errors was not applied.
pub async fn import(
    db: &Db,
    data: &[u8],
    dry_run: bool,
    now: i64,
) -> Result<ImportReport, StoreError> {
    let parsed = parse(data)?;
    let existing: HashMap<String, points::Point> = points::all(db)
        .await?
        .into_iter()
        .map(|p| (p.code.clone(), p))
        .collect();

    let mut report = ImportReport {
        dry_run,
        applied: false,
        rows: parsed.rows.len(),
        created: 0,
        updated: 0,
        unchanged: 0,
        error_count: parsed.errors.len(),
        errors: parsed.errors,
        preview: Vec::new(),
    };
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut writes: Vec<(PointInput, bool)> = Vec::new();
    for (line, input) in parsed.rows {
        let clean = match input.validate() {
            Ok(clean) => clean,
            Err(fields) => {
                for (column, message) in fields {
                    report.error_count += 1;
                    report.errors.push(RowError {
                        line,
                        code: input.code.trim().to_owned(),
                        column: Some(column),
                        message,
                    });
                }
                continue;
            }
        };
        if let Some(first) = first_line.get(&clean.code) {
            report.error_count += 1;
            report.errors.push(RowError {
                line,
                code: clean.code.clone(),
                column: Some("code".into()),
                message: format!(
                    "Mã {:?} trùng với dòng {first}. / Code {:?} repeats line {first}.",
                    clean.code, clean.code
                ),
            });
            continue;
        }
        first_line.insert(clean.code.clone(), line);
        let action = match existing.get(&clean.code) {
            None => {
                report.created += 1;
                writes.push((clean.clone(), true));
                "create"
            }
            Some(p) if clean.same_as(p) => {
                report.unchanged += 1;
                "unchanged"
            }
            Some(_) => {
                report.updated += 1;
                writes.push((clean.clone(), false));
                "update"
            }
        };
        report.preview.push(PreviewRow {
            line,
            code: clean.code,
            name: clean.name,
            kind: clean.kind,
            action: action.into(),
        });
    }
    report.errors.sort_by_key(|e| e.line);
    report.errors.truncate(MAX_LISTED_ERRORS);

    if dry_run || report.error_count > 0 {
        return Ok(report);
    }
    let mut tx = db.begin().await?;
    for (p, new) in &writes {
        if *new {
            points::insert(&mut tx, p, now).await?;
        } else {
            points::write_fields(&mut tx, p, now).await?;
        }
    }
    tx.commit().await?;
    report.applied = true;
    Ok(report)
}

/// The rows of a file (line number, fields as given) and the rows that could not be read.
#[derive(Debug)]
pub struct Parsed {
    pub rows: Vec<(usize, PointInput)>,
    pub errors: Vec<RowError>,
}

/// Reads the file: encoding, header, size and shape. Field values are checked later.
pub fn parse(data: &[u8]) -> Result<Parsed, StoreError> {
    let file_error = |msg: String| StoreError::invalid_field("file", msg);
    if data.len() > MAX_BYTES {
        return Err(file_error(format!(
            "Tệp quá lớn ({} byte, tối đa {MAX_BYTES}). / File too large ({} bytes, at most \
             {MAX_BYTES}).",
            data.len(),
            data.len()
        )));
    }
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let text = std::str::from_utf8(data).map_err(|e| {
        let line = line_number(data, e.valid_up_to());
        file_error(format!(
            "Tệp không phải mã UTF-8 (lỗi ở dòng {line}). Trong Excel hãy chọn \"Lưu thành\" → \
             \"CSV UTF-8\". / The file is not UTF-8 (error on line {line}). In Excel, use \
             \"Save as\" → \"CSV UTF-8\"."
        ))
    })?;
    if text.trim().is_empty() {
        return Err(file_error("Tệp trống. / The file is empty.".into()));
    }
    if text.contains('\0') {
        return Err(file_error(
            "Tệp chứa ký tự NUL: không phải tệp CSV văn bản. / The file contains NUL bytes: \
             not a text CSV file."
                .into(),
        ));
    }

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .delimiter(delimiter(text))
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| {
            file_error(format!(
                "Không đọc được dòng tiêu đề. / Cannot read the header: {e}"
            ))
        })?
        .clone();
    let columns = header_columns(&header).map_err(file_error)?;

    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        if rows.len() + errors.len() >= MAX_ROWS {
            return Err(file_error(format!(
                "Tệp có hơn {MAX_ROWS} dòng dữ liệu. Hãy chia thành nhiều tệp. / The file has \
                 more than {MAX_ROWS} data rows. Split it into several files."
            )));
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(RowError {
                    line: e.position().map_or(line, |p| line_at(text, p.byte())),
                    code: String::new(),
                    column: None,
                    message: format!("Dòng không đọc được. / Unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(line, |p| line_at(text, p.byte()));
        if record.iter().all(|f| f.trim().is_empty()) {
            continue; // blank line, e.g. at the end of the file
        }
        if record.len() != columns.len() {
            errors.push(RowError {
                line,
                code: record.get(0).unwrap_or("").trim().to_owned(),
                column: None,
                message: format!(
                    "Dòng có {} cột, tiêu đề có {}. / The row has {} fields, the header {}.",
                    record.len(),
                    columns.len(),
                    record.len(),
                    columns.len()
                ),
            });
            continue;
        }
        let mut input = PointInput::default();
        for (col, value) in columns.iter().zip(record.iter()) {
            let slot = match *col {
                "code" => &mut input.code,
                "name" => &mut input.name,
                "kind" => &mut input.kind,
                "unit" => &mut input.unit,
                "district" => &mut input.district,
                "contact_name" => &mut input.contact_name,
                "contact_phone" => &mut input.contact_phone,
                "expected_link" => &mut input.expected_link,
                _ => &mut input.notes,
            };
            *slot = value.to_owned();
        }
        rows.push((line, input));
    }
    if rows.is_empty() && errors.is_empty() {
        return Err(file_error(
            "Tệp chỉ có dòng tiêu đề, không có điểm cầu nào. / The file has a header but no rows."
                .into(),
        ));
    }
    Ok(Parsed { rows, errors })
}

/// The line number of a record starting at `byte`. The reader may report the start of a CRLF
/// record as the `\n` of the line before, so that byte is counted as part of this line's start.
fn line_at(text: &str, byte: u64) -> usize {
    let end = usize::try_from(byte)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    line_number(text.as_bytes(), end)
}

/// The line number of the byte at `end`, counting line ends as the CSV reader does: `\n`,
/// `\r\n`, and a lone `\r` (what "CSV (Macintosh)" files end lines with; counting only `\n`
/// put every row of such a file on line 1; found by `fuzz/`'s `csv_import` target).
fn line_number(data: &[u8], end: usize) -> usize {
    let end = end.min(data.len());
    data[..end]
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && data.get(i + 1) != Some(&b'\n')))
        .count()
        + 1
}

/// The known column of each header field, or a message naming what is wrong.
/// The separator the header line uses: `,`, or `;` (what Excel writes with Vietnamese regional
/// settings, where `,` is the decimal mark), or a tab (copied from a spreadsheet). The most
/// frequent of the three in the first line wins; a plain `,` file stays `,`.
fn delimiter(text: &str) -> u8 {
    let first = text.lines().next().unwrap_or("");
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|&d| (first.bytes().filter(|&b| b == d).count(), d == b','))
        .unwrap_or(b',')
}

fn header_columns(header: &csv::StringRecord) -> Result<Vec<&'static str>, String> {
    let expected = COLUMNS.join(",");
    let mut out: Vec<&'static str> = Vec::new();
    for field in header {
        let name = field.trim().to_lowercase();
        let Some(col) = COLUMNS.iter().find(|c| **c == name) else {
            return Err(format!(
                "Cột {name:?} không được hỗ trợ. Tiêu đề đúng: {expected} / Unknown column \
                 {name:?}. Expected header: {expected}"
            ));
        };
        if out.contains(col) {
            return Err(format!(
                "Cột {name:?} xuất hiện hai lần. / Column {name:?} appears twice."
            ));
        }
        out.push(col);
    }
    for required in ["code", "name", "kind"] {
        if !out.contains(&required) {
            return Err(format!(
                "Thiếu cột {required:?}. Tiêu đề đúng: {expected} / Missing column \
                 {required:?}. Expected header: {expected}"
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_error(data: &[u8]) -> String {
        match parse(data) {
            Err(StoreError::Invalid { fields, .. }) => fields["file"].clone(),
            other => panic!("expected a file error, got {other:?}"),
        }
    }

    #[test]
    fn header_problems_are_named() {
        assert!(file_error(b"code,name\n1,a\n").contains("\"kind\""));
        assert!(file_error(b"code,name,kind,email\n").contains("\"email\""));
        assert!(file_error(b"code,name,kind,code\n").contains("hai l"));
        assert!(file_error(b"code,name,kind\n").contains("no rows"));
        assert!(file_error(b"").contains("empty"));
    }

    #[test]
    fn latin1_is_refused_with_its_line() {
        // "Xã" in Windows-1258/Latin-1-ish bytes on line 2.
        let msg = file_error(b"code,name,kind\n1,X\xe3,commune\n");
        assert!(msg.contains("UTF-8") && msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn semicolon_and_tab_separated_files_are_read_like_commas() {
        for sep in [";", "\t"] {
            // A comma inside a name is not a separator in these files.
            let text =
                format!("code{sep}name{sep}kind\r\n02000{sep}Xã Cao Sơn, Bắc Kạn{sep}commune\r\n");
            let parsed = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{sep:?}: {e:?}"));
            assert_eq!(parsed.rows.len(), 1, "{sep:?}");
            assert_eq!(parsed.rows[0].1.code, "02000");
            assert_eq!(parsed.rows[0].1.name, "Xã Cao Sơn, Bắc Kạn");
        }
    }

    #[test]
    fn bom_and_crlf_and_any_column_order_are_fine() {
        let parsed =
            parse("\u{feff}kind,name,code\r\ncommune,Xã Cao Sơn,02000\r\n".as_bytes()).unwrap();
        assert!(parsed.errors.is_empty());
        let (line, p) = &parsed.rows[0];
        assert_eq!(*line, 2);
        assert_eq!(
            (p.code.as_str(), p.name.as_str(), p.kind.as_str()),
            ("02000", "Xã Cao Sơn", "commune")
        );
    }

    #[test]
    fn too_many_rows_is_a_file_error() {
        let mut data = String::from("code,name,kind\n");
        for i in 0..=MAX_ROWS {
            data.push_str(&format!("{i},a,commune\n"));
        }
        assert!(file_error(data.as_bytes()).contains("10000"));
    }

    #[test]
    fn rows_of_a_file_with_carriage_return_line_ends_have_their_own_lines() {
        let parsed = parse(b"code,name,kind\r1,a\r2,b,commune\r\r3,c,commune\r").unwrap();
        let lines: Vec<usize> = parsed.rows.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, vec![3, 5]);
        assert_eq!(parsed.errors[0].line, 2);
        let msg = file_error(b"code,name,kind\r1,X\xe3,commune\r");
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn short_rows_are_row_errors() {
        let parsed = parse(b"code,name,kind\n1,a\n2,b,commune\n").unwrap();
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(parsed.errors.len(), 1);
        assert_eq!(parsed.errors[0].line, 2);
    }
}
